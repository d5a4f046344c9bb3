//! A subscription request on Pingora's path (the fast path hands these over): the
//! client's limit first, then the body, bounded in size and time, then the answer.

use pingora::prelude::*;
use pingora::proxy::Session;

use crate::reply::Reply;
use crate::snapshot::Snapshot;

/// How long reading a subscription request's body may take.
const SUBSCRIPTION_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A status host's subscription page: the client's limit first, then the body (at
/// most `subscribe::MAX_BODY`: 413 past it), then `subscribe`'s answer.
pub async fn serve(
    session: &mut Session,
    snap: &Snapshot,
    peer: Option<std::net::IpAddr>,
    origin: &str,
    target: &[u8],
    page: super::Page,
) -> Reply {
    use super::{self as subscribe, MAX_BODY};
    let view = &*snap.view;
    if let Err(r) = subscribe::admit(view, peer) {
        return r;
    }
    let req = session.req_header();
    let method = req.method.clone();
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cross_site = req
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    let declared = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return subscribe::too_large(view);
    }
    let mut body = Vec::new();
    let read = tokio::time::timeout(SUBSCRIPTION_BODY_TIMEOUT, async {
        while let Some(chunk) = session.read_request_body().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Ok(false);
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<bool, Box<Error>>(true)
    })
    .await;
    match read {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return subscribe::too_large(view),
        Ok(Err(e)) => {
            tracing::debug!("reading a subscription request's body: {e}");
            let mut r = Reply::page(400, crate::reply::pages::client_error_page(400));
            r.close = true;
            return r;
        }
        Err(_) => return subscribe::too_slow(view),
    }
    let req = subscribe::Request {
        page,
        method: &method,
        target,
        content_type: content_type.as_deref(),
        body: &body,
        origin,
        cross_site,
    };
    subscribe::handle(snap, req).await
}
