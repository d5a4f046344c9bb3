//! One health check: a `GET` of the site's health path from one upstream, on a
//! connection of its own (never the proxy's pool), with the site's host as `Host`, its
//! `tls_verify`, `User-Agent: offramp-health/VERSION` and one timeout for the whole
//! answer head.
//!
//! A check needs the status line and nothing else: it is one request written once
//! per probe, the answer's head read with `httparse` (the parser the proxy uses), the
//! body skipped by its length or its chunks (the fast path's chunk reader), TLS by
//! tokio-rustls on the proxy's rustls. A general HTTP client (reqwest) did the same at
//! three times the CPU per check (URL parsing and formatting, redirect and retry
//! layers, a connection task per check): 5.5 % of a core for 200 checks a second,
//! against a target of 2 % (PERFORMANCE.md).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use rustls::pki_types::ServerName;

use crate::config::{Health, Upstream};

/// `User-Agent` of every check, so upstreams and their logs can tell checks from visitors.
pub const USER_AGENT: &str = concat!("offramp-health/", env!("CARGO_PKG_VERSION"));

/// Why a check failed, as the metric's `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Refused or unreachable.
    Connect,
    /// No answer head within `timeout` (an upstream that accepts and never answers).
    Timeout,
    /// The TLS handshake failed (a certificate that does not verify, among others).
    Tls,
    /// An answer that is not HTTP.
    Protocol,
    /// The connection was reset or closed before an answer.
    Reset,
    /// A status `expect` does not accept.
    Status,
}

impl Reason {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Connect => "connect",
            Reason::Timeout => "timeout",
            Reason::Tls => "tls",
            Reason::Protocol => "protocol",
            Reason::Reset => "reset",
            Reason::Status => "status",
        }
    }
}

/// A failed check: its reason and one line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

/// A connection kept between checks.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// What checks one upstream of one site: its address, the request (made once), the
/// TLS settings of an `https://` upstream, and the connection kept from the last check.
///
/// Checks keep their connection alive between them when the upstream allows it (the
/// answer's body is read to its end, at most `MAX_BODY`): a new TCP (and TLS)
/// connection per check costs several times the CPU of the check itself. A kept
/// connection the upstream has closed meanwhile is replaced at once, and the check
/// does not count as failed for it.
pub struct Probe {
    addr: SocketAddr,
    request: Vec<u8>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    connect_timeout: Duration,
    kept: Option<Box<dyn Stream>>,
}

/// The longest answer head read (a longer one is not an answer a check expects).
const MAX_HEAD: usize = 16 * 1024;
/// The longest body read to keep a connection; past it, the connection is closed.
const MAX_BODY: u64 = 1024 * 1024;

/// How an answer's body ends, from its head (RFC 9112 section 6.3).
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the upstream closes: the connection cannot be kept.
    Close,
}

impl Probe {
    /// A probe of `upstream` for a site answering to `host`, or why none can be made.
    pub fn new(
        upstream: &Upstream,
        host: &str,
        health: &Health,
        connect_timeout: Duration,
        tls_verify: bool,
    ) -> Result<Probe, String> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n",
            health.path
        )
        .into_bytes();
        let tls = if upstream.tls {
            let config = client_tls(tls_verify)?;
            let name = ServerName::try_from(upstream.host.clone())
                .map_err(|e| format!("{:?} is not a TLS server name: {e}", upstream.host))?;
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Probe {
            addr: upstream.addr,
            request,
            tls,
            timeout: health.timeout,
            connect_timeout: connect_timeout.min(health.timeout),
            kept: None,
        })
    }

    /// Runs one check: the status code, or why there is none. Never longer than the
    /// timeout, whatever the peer does.
    pub async fn check(&mut self) -> Result<u16, Failure> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.exchange(deadline)).await {
            Ok(r) => r,
            Err(_) => {
                self.kept = None;
                Err(Failure {
                    reason: Reason::Timeout,
                    detail: format!("no answer within {}", crate::duration::format(self.timeout)),
                })
            }
        }
    }

    async fn exchange(&mut self, deadline: tokio::time::Instant) -> Result<u16, Failure> {
        if let Some(mut s) = self.kept.take() {
            match ask(&mut s, &self.request).await {
                Ok((code, framing, rest)) => {
                    return Ok(self.finish(s, code, framing, rest, deadline).await)
                }
                // Closed while idle (the upstream's keep-alive timeout): not a failure of
                // the upstream; a new connection decides.
                Err(None) => {}
                Err(Some(f)) => return Err(f),
            }
        }
        let mut s = self.connect().await?;
        match ask(&mut s, &self.request).await {
            Ok((code, framing, rest)) => Ok(self.finish(s, code, framing, rest, deadline).await),
            Err(f) => Err(f.unwrap_or(Failure {
                reason: Reason::Reset,
                detail: "closed without answering".into(),
            })),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, Failure> {
        let connect = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr));
        let tcp = match connect.await {
            Err(_) => {
                return Err(Failure {
                    reason: Reason::Timeout,
                    detail: format!(
                        "no connection within {}",
                        crate::duration::format(self.connect_timeout)
                    ),
                })
            }
            Ok(Err(e)) => {
                return Err(Failure {
                    reason: match e.kind() {
                        std::io::ErrorKind::TimedOut => Reason::Timeout,
                        // Reset so quickly that the connect itself reports it (the
                        // upstream accepted and reset at once): a reset, not a refusal.
                        std::io::ErrorKind::ConnectionReset => Reason::Reset,
                        _ => Reason::Connect,
                    },
                    detail: e.to_string(),
                });
            }
            Ok(Ok(t)) => t,
        };
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => match connector.connect(name.clone(), tcp).await {
                Ok(tls) => Ok(Box::new(tls)),
                Err(e) => Err(handshake_failure(&e)),
            },
        }
    }

    /// Reads the rest of the body (within the check's time) to keep the connection.
    async fn finish(
        &mut self,
        mut s: Box<dyn Stream>,
        code: u16,
        framing: Framing,
        rest: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> u16 {
        let drained = tokio::time::timeout_at(deadline, drain(&mut s, framing, rest)).await;
        if matches!(drained, Ok(true)) {
            self.kept = Some(s);
        }
        code
    }
}

/// Sends the request and reads the answer's head: its status, how its body ends, and
/// the bytes read past the head. `Err(None)`: closed before any byte of an answer.
async fn ask(
    s: &mut Box<dyn Stream>,
    request: &[u8],
) -> Result<(u16, Framing, Vec<u8>), Option<Failure>> {
    let reset = |e: std::io::Error| Failure {
        reason: Reason::Reset,
        detail: e.to_string(),
    };
    if s.write_all(request).await.is_err() {
        return Err(None);
    }
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 4096];
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Err(None),
            Err(e) => return Err(Some(reset(e))),
        };
        if n == 0 {
            if buf.is_empty() {
                return Err(None);
            }
            return Err(Some(Failure {
                reason: Reason::Protocol,
                detail: "closed in the middle of the answer's head".into(),
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
        // Interim answers (103 Early Hints) come before the one that counts.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = resp.code.unwrap_or(0);
                    if (100..200).contains(&code) {
                        buf.drain(..len);
                        continue;
                    }
                    let framing = framing_of(code, resp.version, resp.headers);
                    buf.drain(..len);
                    return Ok((code, framing, buf));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => break,
                Ok(httparse::Status::Partial) => {
                    return Err(Some(Failure {
                        reason: Reason::Protocol,
                        detail: format!("an answer head longer than {MAX_HEAD} bytes"),
                    }))
                }
                Err(e) => {
                    return Err(Some(Failure {
                        reason: Reason::Protocol,
                        detail: format!("not an HTTP answer: {e}"),
                    }))
                }
            }
        }
    }
}

fn framing_of(code: u16, version: Option<u8>, headers: &[httparse::Header<'_>]) -> Framing {
    let mut length = None;
    let mut chunked = false;
    let mut close = version != Some(1);
    for h in headers {
        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match (v.parse::<u64>(), length) {
                (Ok(n), None) => length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => close = true,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().ends_with("chunked");
            close |= !chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    if close {
        return Framing::Close;
    }
    match (code, chunked, length) {
        (204 | 304, _, _) => Framing::None,
        (_, true, _) => Framing::Chunked,
        (_, false, Some(n)) => Framing::Length(n),
        (_, false, None) => Framing::Close,
    }
}

/// Reads a body to its end; true when the connection can be kept.
async fn drain(s: &mut Box<dyn Stream>, framing: Framing, rest: Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match framing {
        Framing::None => rest.is_empty(),
        Framing::Close => false,
        Framing::Length(n) if n > MAX_BODY => false,
        Framing::Length(n) => {
            let mut left = n.saturating_sub(rest.len() as u64);
            if rest.len() as u64 > n {
                return false;
            }
            while left > 0 {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(k) if k as u64 > left => return false,
                    Ok(k) => left -= k as u64,
                }
            }
            true
        }
        Framing::Chunked => {
            let mut decoder = crate::fast::chunked::Chunked::default();
            let mut total = rest.len() as u64;
            match decoder.feed(&rest) {
                Ok(Some(end)) => return end == rest.len(),
                Ok(None) => {}
                Err(()) => return false,
            }
            loop {
                let k = match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(k) => k,
                };
                total += k as u64;
                if total > MAX_BODY {
                    return false;
                }
                match decoder.feed(&chunk[..k]) {
                    Ok(Some(end)) => return end == k,
                    Ok(None) => {}
                    Err(()) => return false,
                }
            }
        }
    }
}

/// A failed TLS handshake: `tls` when rustls refused it (a certificate that does not
/// verify, no common version), `reset` when the peer closed it.
fn handshake_failure(e: &std::io::Error) -> Failure {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(t) => Failure {
            reason: Reason::Tls,
            detail: format!("TLS: {t}"),
        },
        None if e.kind() == std::io::ErrorKind::InvalidData => Failure {
            reason: Reason::Tls,
            detail: format!("TLS: {e}"),
        },
        None => Failure {
            reason: Reason::Reset,
            detail: format!("during the TLS handshake: {e}"),
        },
    }
}

/// The rustls client settings of checks: the system's roots (as the proxy's own
/// upstream connections), or no verification at all for `tls_verify = false`. Built
/// once each.
fn client_tls(verify: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    type Cell = OnceLock<Result<Arc<rustls::ClientConfig>, String>>;
    static VERIFIED: Cell = OnceLock::new();
    static UNVERIFIED: Cell = OnceLock::new();
    let cell = if verify { &VERIFIED } else { &UNVERIFIED };
    cell.get_or_init(|| crate::tls::client_config(verify).map(Arc::new))
        .clone()
}
