//! The admin listener (`[server] admin`): `/metrics` in the Prometheus text exposition
//! format, `/healthz`, and the write API under `/api/v1/` (see `api`), over a small
//! HTTP/1.1 server of its own, in plain HTTP or with `admin_tls` over TLS: bounded
//! connections, bounded heads, idle timeouts, request bodies only for the API (with a
//! `Content-Length`, at most `api::MAX_BODY`; `Expect: 100-continue` is answered before
//! the body is read). An answer given without reading the whole body (413, 411, a body
//! sent elsewhere) ends the connection: what is left of the body is read and dropped
//! for a moment, never parsed as a request. What the metrics are is `metrics`';
//! binding the listener is `server`'s.

use std::sync::Arc;
use std::time::Duration;

use crate::reply::{h1, Reply};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::metrics::{get, Metrics};

/// Admin connections served at once. Prometheus needs one; the bound keeps a local
/// process that opens connections in a loop from using up memory and file descriptors.
pub const ADMIN_MAX_CONNECTIONS: usize = 32;

/// Serves the admin listener until the process exits: plain HTTP, or TLS with `tls`.
/// Connections beyond [`ADMIN_MAX_CONNECTIONS`] get a 503 and are closed.
pub async fn serve_admin(
    listener: TcpListener,
    daemon: Arc<crate::daemon::Daemon>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let slots = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Best effort and never blocking: the answer fits in the empty send
                    // buffer of a new socket; the socket is closed right after.
                    let _ = s.try_write(&encode_response(
                        503,
                        "text/plain",
                        b"too many admin connections\n",
                        false,
                        true,
                    ));
                    debug!("admin connection from {peer} refused: {ADMIN_MAX_CONNECTIONS} already open");
                    continue;
                };
                let daemon = daemon.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let result = match tls {
                        None => admin_connection(s, daemon).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(ADMIN_TIMEOUT, acceptor.accept(s)).await {
                                Ok(Ok(stream)) => admin_connection(stream, daemon).await,
                                Ok(Err(e)) => Err(e),
                                Err(_) => Ok(()),
                            }
                        }
                    };
                    if let Err(e) = result {
                        debug!("admin connection: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

const ADMIN_MAX_HEAD: usize = 8 * 1024;
/// How long a connection may stay idle, or a request or response take to cross.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the unread input of a connection closed after an answer is read and
/// dropped: closing with unread input makes the kernel send a reset, which can destroy
/// the answer before the client reads it (RFC 9112 section 9.6).
const ADMIN_LINGER: Duration = Duration::from_secs(2);

/// What the admin listener needs of a request head.
struct AdminRequest {
    method: String,
    get: bool,
    head: bool,
    path: String,
    query: String,
    authorization: Option<String>,
    /// `Content-Length` (`None`: none given; an unparsable one is a bad request).
    length: Option<usize>,
    chunked: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 section 10.1.1).
    expect_continue: bool,
    /// HTTP/1.0, `Connection: close`, or a body we do not read: close after answering.
    close: bool,
    /// A body follows that will not be read (outside the API): drain it when closing.
    unread: bool,
}

/// Parses one request head at the start of `buf`: `Ok(None)` while incomplete, else the
/// request and the length of its head.
fn parse_head(buf: &[u8]) -> Result<Option<(AdminRequest, usize)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let mut close = req.version != Some(1);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let api = crate::api::is_api(path);
    let mut authorization = None;
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut unread = false;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
            close = true;
            unread = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| httparse::Error::HeaderValue)?;
            if length.is_some_and(|l| l != n) {
                return Err(httparse::Error::HeaderValue);
            }
            length = Some(n);
            // Bodies are read for the API only: elsewhere, answer, then end the
            // connection rather than read one.
            close |= n != 0 && !api;
            unread |= n != 0 && !api;
        } else if h.name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.into_owned());
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
        }
    }
    // An HTTP/1.0 client does not wait for a 100 (RFC 9110 section 10.1.1).
    expect_continue &= req.version == Some(1);
    let request = AdminRequest {
        method: method.to_string(),
        get: method == "GET",
        head: method == "HEAD",
        path: path.to_string(),
        query: query.to_string(),
        authorization,
        length,
        chunked,
        expect_continue,
        close,
        unread,
    };
    Ok(Some((request, len)))
}

/// Serves one admin connection: requests in turn until it closes, idles out or errs.
async fn admin_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    daemon: Arc<crate::daemon::Daemon>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let req = loop {
            match parse_head(&buf) {
                Ok(Some((req, len))) => {
                    buf.drain(..len);
                    break req;
                }
                Ok(None) if buf.len() > ADMIN_MAX_HEAD => {
                    let out = encode_response(
                        431,
                        "text/plain",
                        b"request header too large\n",
                        false,
                        true,
                    );
                    return finish(&mut s, &out, true).await;
                }
                Ok(None) => {}
                Err(_) => {
                    let out = encode_response(400, "text/plain", b"bad request\n", false, true);
                    return finish(&mut s, &out, true).await;
                }
            }
            let mut chunk = [0u8; 1024];
            let n = match tokio::time::timeout(ADMIN_TIMEOUT, s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head_only = req.head;
        if crate::api::is_api(&req.path) {
            let Some(answer) = api_request(&mut s, &mut buf, &req, &daemon).await? else {
                return Ok(());
            };
            if answer.unread || req.close {
                return finish(&mut s, &answer.out, answer.unread).await;
            }
            match tokio::time::timeout(ADMIN_TIMEOUT, s.write_all(&answer.out)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            }
            continue;
        }
        let out = match (req.get || req.head, req.path.as_str()) {
            (true, "/metrics") => {
                let body = get().map(Metrics::render).unwrap_or_default();
                encode_response(
                    200,
                    "text/plain; version=0.0.4",
                    &body,
                    head_only,
                    req.close,
                )
            }
            (true, "/healthz") => encode_response(200, "text/plain", b"ok\n", head_only, req.close),
            (true, _) => encode_response(404, "text/plain", b"not found\n", head_only, req.close),
            (false, _) => encode_response(
                405,
                "text/plain",
                b"method not allowed\n",
                head_only,
                req.close,
            ),
        };
        if req.close {
            return finish(&mut s, &out, req.unread).await;
        }
        match tokio::time::timeout(ADMIN_TIMEOUT, s.write_all(&out)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
    }
}

/// An API answer, and whether (part of) its request's body was left unread: then the
/// connection ends after it, as what follows is not a request.
struct ApiAnswer {
    out: Vec<u8>,
    unread: bool,
}

/// Reads an API request's body and answers it; `None` when the client went away.
async fn api_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    req: &AdminRequest,
    daemon: &Arc<crate::daemon::Daemon>,
) -> std::io::Result<Option<ApiAnswer>> {
    let head_only = req.head;
    let refuse = |status: u16, msg: &str| ApiAnswer {
        out: encode_api(
            status,
            &serde_json::json!({ "error": msg }),
            &[],
            true,
            head_only,
        ),
        unread: true,
    };
    // No token, no body: a 401 (or 404 without [api]) comes before any 100 Continue,
    // 411 or 413, so a client without a valid token cannot make offramp read a body.
    let config = daemon.config();
    if !crate::api::admits(config.api.as_ref(), req.authorization.as_deref()) {
        let r = crate::api::handle(
            daemon,
            config.api.as_ref(),
            &crate::api::Request {
                method: &req.method,
                path: &req.path,
                query: &req.query,
                authorization: req.authorization.as_deref(),
                body: b"",
            },
        );
        let unread = req.chunked || req.length.unwrap_or(0) > buf.len();
        return Ok(Some(ApiAnswer {
            out: encode_api(r.status, &r.body, r.headers, unread || req.close, head_only),
            unread,
        }));
    }
    if req.chunked {
        return Ok(Some(refuse(411, "send the body with a Content-Length")));
    }
    let n = req.length.unwrap_or(0);
    // Refused up front, so without a 100 Continue: the client need not send the body.
    if n > crate::api::MAX_BODY {
        return Ok(Some(refuse(413, "the body is larger than 1 MiB")));
    }
    // A client that sent its body along already needs no 100 (RFC 9110 section 10.1.1).
    if req.expect_continue && buf.len() < n {
        let sent =
            tokio::time::timeout(ADMIN_TIMEOUT, s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"));
        match sent.await {
            Ok(r) => r?,
            Err(_) => return Ok(None),
        }
    }
    while buf.len() < n {
        let mut chunk = [0u8; 16 * 1024];
        let got = match tokio::time::timeout(ADMIN_TIMEOUT, s.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => return Ok(None),
        };
        if got == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    let body: Vec<u8> = buf.drain(..n).collect();
    let daemon = daemon.clone();
    let (method, path, query, auth) = (
        req.method.clone(),
        req.path.clone(),
        req.query.clone(),
        req.authorization.clone(),
    );
    let close = req.close;
    // The command layer writes to the database: off the runtime's threads.
    let answer = tokio::task::spawn_blocking(move || {
        let config = daemon.config();
        let r = crate::api::handle(
            &daemon,
            config.api.as_ref(),
            &crate::api::Request {
                method: &method,
                path: &path,
                query: &query,
                authorization: auth.as_deref(),
                body: &body,
            },
        );
        encode_api(r.status, &r.body, r.headers, close, head_only)
    })
    .await
    .unwrap_or_else(|e| {
        let error = serde_json::json!({ "error": format!("internal error: {e}") });
        encode_api(500, &error, &[], true, head_only)
    });
    Ok(Some(ApiAnswer {
        out: answer,
        unread: false,
    }))
}

/// An API answer: JSON, with the headers given (the body left out for `head_only`).
fn encode_api(
    status: u16,
    body: &serde_json::Value,
    headers: &'static [(&'static str, &'static str)],
    close: bool,
    head_only: bool,
) -> Vec<u8> {
    let text = format!("{body}\n");
    let mut reply =
        Reply::typed(status, crate::reply::JSON, bytes::Bytes::from(text)).with_fixed(headers);
    reply.close = close;
    let mut out = Vec::with_capacity(256);
    h1::write_reply(&mut out, &reply, head_only, !close);
    out
}

/// Writes the last response of a connection and closes it; with `drain`, then reads
/// and drops what the client still sends, for [`ADMIN_LINGER`] at most.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    out: &[u8],
    drain: bool,
) -> std::io::Result<()> {
    let sent = tokio::time::timeout(ADMIN_TIMEOUT, async {
        s.write_all(out).await?;
        s.shutdown().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    }
    if drain {
        let _ = tokio::time::timeout(ADMIN_LINGER, async {
            let mut sink = [0u8; 16 * 1024];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    Ok(())
}

/// Encodes one whole HTTP/1.1 response (status line, headers, body unless `head_only`)
/// with the shared head writer.
fn encode_response(
    status: u16,
    content_type: &'static str,
    body: &[u8],
    head_only: bool,
    close: bool,
) -> Vec<u8> {
    let mut reply = Reply::typed(status, content_type, bytes::Bytes::copy_from_slice(body));
    reply.close = close;
    let mut out = Vec::with_capacity(body.len() + 160);
    h1::write_reply(&mut out, &reply, head_only, !close);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> AdminRequest {
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, len))) => {
                assert_eq!(len, raw.len());
                r
            }
            other => panic!("{raw:?} did not parse: {:?}", other.map(|o| o.is_some())),
        }
    }

    #[test]
    fn http_1_0_and_connection_close_end_the_connection() {
        assert!(parse("GET /healthz HTTP/1.0\r\n\r\n").close);
        assert!(parse("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").close);
        assert!(parse("GET /healthz HTTP/1.1\r\nconnection: keep-alive, Close\r\n\r\n").close);
        assert!(parse("GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n").close);
        assert!(parse("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").close);
        let keep = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert!(!keep.close);
        assert!(keep.get && !keep.head);
        assert_eq!(keep.path, "/metrics");
    }

    #[test]
    fn expect_100_continue_and_unread_bodies() {
        let api = "POST /api/v1/incidents HTTP/1.1\r\nContent-Length: 5\r\n";
        assert!(parse(&format!("{api}Expect: 100-Continue\r\n\r\n")).expect_continue);
        assert!(!parse(&format!("{api}Expect: something\r\n\r\n")).expect_continue);
        let old =
            "POST /api/v1/incidents HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert!(
            !parse(old).expect_continue,
            "an HTTP/1.0 client does not wait"
        );
        let read = parse(&format!("{api}\r\n"));
        assert!(!read.close && !read.unread, "the API reads its bodies");
        assert!(parse("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unread);
        assert!(parse("POST /api/v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unread);
        assert!(!parse("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").unread);
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert!(matches!(parse_head(b"GET /healthz HTTP/1.1\r\n"), Ok(None)));
        assert!(parse_head(b"GET /healthz HTTP/9.9\r\n\r\n").is_err());
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn closing_responses_say_so() {
        let r = String::from_utf8(encode_response(200, "text/plain", b"ok\n", false, true))
            .unwrap_or_default();
        assert!(r.contains("\r\nConnection: close\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nok\n"), "{r}");
        let r = String::from_utf8(encode_response(200, "text/plain", b"ok\n", true, false))
            .unwrap_or_default();
        assert!(r.ends_with("\r\nConnection: keep-alive\r\n\r\n"), "{r}");
        assert!(
            r.contains("\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"),
            "{r}"
        );
    }
}
