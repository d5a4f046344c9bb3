//! Pingora's side of the data path (h2c, TLS, HTTP/2, request bodies, upgrades, and
//! every HTTP/1.1 request the fast path hands over): thin hooks around the one request
//! decision. `request_filter` extracts the request's facts, calls `request::decide` and
//! writes `request::answer`'s reply; `upstream_*` apply `request::forward`;
//! `fail_to_proxy` maps Pingora's error into `request::upstream_error`.
//!
//! Owns: the `ProxyHttp` hooks only. Does not own: any decision (see `request`), page
//! contents (see `reply`), listeners (see `server`).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::Method;
use pingora::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorType, Result};

use crate::metrics::Outcome;
use crate::reply::Reply;
use crate::request::forward::{self, Length};
use crate::request::upstream_error::UpstreamError;
use crate::request::{access, location, Decision, Facts, Listener, Scheme};
use crate::routes::HostError;
use crate::snapshot::Snapshot;

/// The proxy application: reads the shared snapshot, never writes it.
pub struct Proxy {
    snapshot: Arc<ArcSwap<Snapshot>>,
    listener: Listener,
}

impl Proxy {
    /// A proxy for listeners of the given scheme.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, scheme: Scheme, https_port: Option<u16>) -> Proxy {
        Proxy {
            snapshot,
            listener: Listener { scheme, https_port },
        }
    }

    fn facts<'a>(&self, session: &'a Session) -> Facts<'a> {
        let req = session.req_header();
        Facts {
            listener: self.listener,
            local_port: local_port(session),
            host: request_host(req),
            method: req.method.as_str().as_bytes(),
            target: request_target(req),
            target_len: req.raw_path().len(),
            peer: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
        }
    }
}

fn local_port(session: &Session) -> u16 {
    session
        .server_addr()
        .and_then(|a| a.as_inet())
        .map_or(0, |a| a.port())
}

/// Per-request state.
pub struct RequestCtx {
    start: Instant,
    snap: Option<Arc<Snapshot>>,
    site: Option<u32>,
    outcome: Outcome,
    /// A subscription page: its query (a token) is kept out of the access log.
    redact: bool,
}

/// The request's host: the target's authority for absolute-form and HTTP/2, else `Host`.
///
/// Pingora has already refused (400) a `Host` that differs from an absolute-form
/// target's authority, duplicate `Host` headers and ambiguous targets.
fn request_host(req: &RequestHeader) -> Result<&[u8], HostError> {
    if let Some(a) = req.uri.authority() {
        return Ok(a.as_str().as_bytes());
    }
    if let RawTargetAuthority::Absolute { authority, .. } = raw_target_authority(req.raw_path()) {
        return Ok(authority);
    }
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => Ok(h.as_bytes()),
        (None, _) => Err(HostError::Missing),
        (Some(_), Some(_)) => Err(HostError::Malformed),
    }
}

/// Path and query as the client sent them (an absolute-form target reduced to its path
/// and query, so the redirect never carries the client's scheme or authority).
fn request_target(req: &RequestHeader) -> &[u8] {
    if req.uri.authority().is_some() {
        return req
            .uri
            .path_and_query()
            .map_or(b"/", |pq| pq.as_str().as_bytes());
    }
    let raw = req.raw_path();
    match raw_target_authority(raw) {
        RawTargetAuthority::None => raw,
        RawTargetAuthority::Absolute { path_and_query, .. } if !path_and_query.is_empty() => {
            path_and_query
        }
        _ => b"/",
    }
}

/// Request bodies up to this size sent to a site that is not proxied (offline, unknown
/// host) are read and discarded so the connection can stay open; larger ones are never
/// read: the answer is sent and the connection closed after it.
pub const DISCARD_BODY_LIMIT: u64 = 1024 * 1024;
/// How long discarding such a body may take.
const DISCARD_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Before answering a request offramp does not proxy: discard a small request body so
/// keep-alive survives. Pingora closes the connection otherwise (it never reads a body
/// it was not asked to), which is also what happens to large or unknown-length bodies.
async fn discard_small_body(session: &mut Session) {
    if session.is_body_empty() {
        return;
    }
    let req = session.req_header();
    let expects_continue = req.headers.contains_key(http::header::EXPECT);
    let small = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n <= DISCARD_BODY_LIMIT);
    if small && !expects_continue {
        if let Ok(Err(e)) =
            tokio::time::timeout(DISCARD_BODY_TIMEOUT, session.drain_request_body()).await
        {
            tracing::debug!("discarding a request body: {e}");
        }
    }
}

/// A target's path, without its query.
fn path_only(target: &[u8]) -> &[u8] {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => &target[..i],
        None => target,
    }
}

/// Writes `reply` from `request_filter` without closing keep-alive (unless it says so).
async fn respond(session: &mut Session, reply: &Reply) -> Result<()> {
    let mut h = ResponseHeader::build(reply.status, Some(reply.fixed.len() + 5))?;
    h.insert_header("Content-Type", reply.content_type)?;
    h.insert_header("Content-Length", reply.body_len().to_string())?;
    h.insert_header("Cache-Control", "no-store")?;
    if let Some(l) = &reply.location {
        h.insert_header("Location", l.as_str())?;
    }
    if let Some(s) = reply.retry_after {
        h.insert_header("Retry-After", s.to_string())?;
    }
    for (k, v) in reply.fixed {
        h.insert_header(*k, *v)?;
    }
    if reply.close {
        session.set_keepalive(None);
    }
    discard_small_body(session).await;
    let head_only = session.req_header().method == Method::HEAD;
    session.write_response_header(Box::new(h), false).await?;
    // A HEAD answer ends with an empty body, so that an HTTP/2 stream is closed the same
    // way whatever hook writes it (ending it with the head alone left a reset after it
    // in `fail_to_proxy`).
    let body = match head_only {
        true => bytes::Bytes::new(),
        false => reply.body_bytes(),
    };
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            snap: None,
            site: None,
            outcome: Outcome::Proxied,
            redact: false,
        }
    }

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {
        // No response compression module: offramp passes bodies through untouched.
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::guard::request_started(session);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snap = self.snapshot.load_full();
        let facts = self.facts(session);
        let decision = crate::request::decide(&snap, &facts);
        ctx.site = decision.site();
        ctx.outcome = decision.outcome();
        if let Decision::Subscription { origin, page } = decision {
            let peer = facts.peer;
            ctx.redact = true;
            let target = request_target(session.req_header()).to_vec();
            let reply =
                crate::subscribe::session::serve(session, &snap, peer, &origin, &target, page)
                    .await;
            ctx.snap = Some(snap);
            respond(session, &reply).await?;
            return Ok(true);
        }
        let reply = crate::request::answer(&snap, &facts, decision);
        ctx.snap = Some(snap);
        match reply {
            Some(reply) => {
                respond(session, &reply).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (site, down) = ctx
            .snap
            .as_ref()
            .zip(ctx.site)
            .and_then(|(s, i)| {
                let down = s.states.get(i as usize).map_or(0, |e| e.down);
                s.table.sites.get(i as usize).map(|r| (r, down))
            })
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no site selected"))?;
        Ok(Box::new(site.pick_peer(down).clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Pingora has already removed the hop-by-hop fields (see `request::forward`).
        match session.client_addr().and_then(|a| a.as_inet()) {
            Some(a) => upstream.insert_header(
                "x-forwarded-for",
                forward::forwarded_for(a.ip()).to_string(),
            )?,
            None => {
                upstream.remove_header("x-forwarded-for");
            }
        }
        upstream.insert_header(
            "x-forwarded-proto",
            forward::forwarded_proto(self.listener.scheme),
        )?;
        // An absolute-form target goes upstream in origin-form, as origin servers expect.
        let origin_form = match raw_target_authority(upstream.raw_path()) {
            RawTargetAuthority::Absolute { path_and_query, .. } => {
                Some(if path_and_query.is_empty() {
                    b"/".to_vec()
                } else {
                    path_and_query.to_vec()
                })
            }
            _ => None,
        };
        if let Some(target) = origin_form {
            upstream.set_raw_path(&target)?;
        }
        // Pingora reads one body of a repeated identical length (`5, 5`): the upstream
        // gets that one value, never a list it might read differently.
        if let Length::Repeated(n) = content_length(&upstream.headers) {
            upstream.insert_header(http::header::CONTENT_LENGTH, n.to_string())?;
        }
        let host = request_host(session.req_header()).ok().map(<[u8]>::to_vec);
        if let Some(host) = host {
            upstream.insert_header("x-forwarded-host", host.as_slice())?;
            // HTTP/2 and absolute-form requests carry the host in the URI: give the
            // upstream an HTTP/1.1 Host header with the same value.
            if upstream.headers.get(http::header::HOST).is_none()
                || upstream.uri.authority().is_some()
            {
                upstream.insert_header(http::header::HOST, host.as_slice())?;
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Three digits is all the parser checks; a status outside 100-599 is garbage.
        let status = upstream_response.status.as_u16();
        if !(100..=599).contains(&status) {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                format!("upstream answered with status {status}"),
            )
            .into_up());
        }
        // The same hop-by-hop fields as the fast path drops (see `request::forward`),
        // except on a `101`, whose `Connection: upgrade` and `Upgrade` are the switch.
        if status != 101 {
            strip_hop_by_hop(upstream_response)?;
        }
        match content_length(&upstream_response.headers) {
            Length::None | Length::Plain(_) => {}
            Length::Repeated(n) => {
                upstream_response.insert_header(http::header::CONTENT_LENGTH, n.to_string())?
            }
            Length::Invalid => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "upstream answered with an invalid Content-Length",
                )
                .into_up())
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy
    where
        RequestCtx: Send + Sync,
    {
        let sent = session.response_written().is_some();
        let upstream = UpstreamError::from_pingora(e, sent);
        let code = match (upstream, e.etype()) {
            (_, ErrorType::HTTPStatus(c)) => *c,
            (Some(u), _) => u.status(),
            (None, ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed) => 0,
            (None, _) if e.esource() == &pingora::ErrorSource::Downstream => 400,
            (None, _) => 502,
        };
        if let (Some(snap), Some(_)) = (&ctx.snap, upstream) {
            access::count_upstream_error(snap, ctx.site);
        }
        // An error page written whole ends its HTTP/2 stream cleanly (a reset otherwise);
        // HTTP/1 connections are closed after it all the same (`Reply::close`).
        let mut answered = false;
        if code > 0 && !sent {
            let reply = match (code, &ctx.snap, ctx.site) {
                (500.., Some(snap), Some(site)) => {
                    let (scheme, port) = crate::request::public_scheme_port(
                        snap,
                        self.listener,
                        local_port(session),
                    );
                    let link = location::error_page_link(snap, site, scheme, port);
                    crate::request::upstream_error_reply(code, link.as_deref())
                }
                (500.., _, _) => crate::request::upstream_error_reply(code, None),
                _ => {
                    let mut r = Reply::page(code, crate::reply::pages::client_error_page(code));
                    r.close = true;
                    r
                }
            };
            match respond(session, &reply).await {
                Ok(()) => answered = true,
                Err(err) => tracing::debug!("could not send the error page: {err}"),
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: answered,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        crate::guard::request_finished(session);
        let Some(snap) = &ctx.snap else { return };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.start.elapsed();
        access::count(snap, ctx.site, ctx.outcome, status, elapsed);
        if !access::access_log_on(snap) {
            return;
        }
        let req = session.req_header();
        let host =
            request_host(req).map_or(std::borrow::Cow::Borrowed("-"), String::from_utf8_lossy);
        let error = e.map(|e| {
            let sent = session.response_written().is_some();
            UpstreamError::from_pingora(e, sent).map_or(e.etype().as_str(), |u| u.label())
        });
        access::access_log(&access::AccessLine {
            client: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            host: &host,
            site: access::site_name(snap, ctx.site),
            state: access::state_label(snap, ctx.site, ctx.outcome),
            method: req.method.as_str(),
            path: &String::from_utf8_lossy(match ctx.redact {
                true => path_only(request_target(req)),
                false => request_target(req),
            }),
            status,
            bytes: session.body_bytes_sent(),
            elapsed,
            error,
        });
    }
}

/// Removes the response fields that are never forwarded: `Connection`, `Keep-Alive`,
/// `Proxy-Connection`, and what `Connection` nominates.
fn strip_hop_by_hop(resp: &mut ResponseHeader) -> Result<()> {
    let values = resp
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .map(|v| v.as_bytes());
    let nominated: Vec<Vec<u8>> = match forward::Nominations::parse(values) {
        Ok(n) => n.names().iter().map(|n| n.to_vec()).collect(),
        Err(_) => {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "upstream's Connection header nominates too many fields",
            )
            .into_up())
        }
    };
    for name in &nominated {
        if let Ok(name) = http::HeaderName::from_bytes(name) {
            resp.remove_header(&name);
        }
    }
    for name in ["connection", "keep-alive", "proxy-connection"] {
        resp.remove_header(name);
    }
    Ok(())
}

fn content_length(headers: &http::HeaderMap) -> Length {
    forward::content_length(
        headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .map(|v| v.as_bytes()),
    )
}
