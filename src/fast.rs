//! The HTTP/1.1 fast path for plain-HTTP client connections.
//!
//! Pingora's proxy loop costs about 1.4x nginx's CPU per request before offramp adds
//! anything (PERFORMANCE.md): per-request header maps, a two-task body pipeline, a
//! locked upstream pool with a watcher task per idle connection. The requests a home
//! lab sees most — HTTP/1.1, no request body, no upgrade, a known host that is online
//! behind a plain-HTTP upstream or offline with a redirect — are answered here instead:
//! one read and one write per hop, a per-thread upstream keep-alive pool without locks,
//! and buffers owned by the connection.
//!
//! Everything else (request bodies, upgrades, `Expect`, absolute-form targets, HTTP/1.0,
//! unknown or malformed hosts, maintenance pages, HTTPS redirects, TLS upstreams, heads
//! over 16 KiB) is handed to the Pingora app together with the bytes already read, and
//! the connection stays with Pingora from then on. The answers are the same either way:
//! the integration tests run through both paths.
//!
//! Owns: HTTP/1.1 framing on the fast path, the per-thread upstream pool. Does not own:
//! routing (see `routes`), pages (see `maintenance`), the access-log format (see `proxy`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use pingora::upstreams::peer::Peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant as TInstant, Sleep};

use crate::config::{OfflineCode, SiteState};
use crate::maintenance;
use crate::metrics::Outcome;
use crate::proxy;
use crate::routes::Snapshot;

/// A request head that is not complete within this many bytes goes to Pingora.
const MAX_HEAD: usize = 16 * 1024;
/// More request headers than this: Pingora.
const MAX_REQ_HEADERS: usize = 64;
/// An upstream response head larger than this, or with more headers, is a 502.
const MAX_RESP_HEAD: usize = 64 * 1024;
const MAX_RESP_HEADERS: usize = 128;
/// A response up to this size whose body trails its head is sent in one write...
const COALESCE_MAX: usize = 32 * 1024;
/// ...if the rest arrives within this time.
const COALESCE_WAIT: Duration = Duration::from_millis(2);
/// Read buffers grow in steps of this size.
const IO_CHUNK: usize = 16 * 1024;
/// Idle upstream connections kept per upstream address and worker thread.
const POOL_MAX_IDLE: usize = 128;
/// Idle upstream connections live this long when the peer sets no idle timeout.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// How a connection left the fast path.
pub enum End {
    /// Closed (by either side, or after a `Connection: close` exchange).
    Closed,
    /// Hand the connection to Pingora; these bytes were read and not answered yet, and
    /// the request they begin started arriving at that instant.
    Fallback(TcpStream, Vec<u8>, Instant),
}

/// One timer per client connection for every deadline it waits on (the idle limit, a
/// request head's, the upstream's answer): re-armed only when a wait needs an earlier
/// deadline than the one set, or when it fires before the deadline waited for (at most
/// once per idle period of a busy connection). A tokio timer created and dropped per wait
/// cost more than the rest of a request's bookkeeping.
struct Timer(Pin<Box<Sleep>>);

impl Timer {
    fn new() -> Timer {
        Timer(Box::pin(tokio::time::sleep_until(
            TInstant::now() + Duration::from_secs(24 * 3600),
        )))
    }

    /// Runs `fut` to completion (`Some`) unless `deadline` passes first (`None`).
    async fn within<F: Future>(&mut self, deadline: TInstant, fut: F) -> Option<F::Output> {
        if self.0.deadline() > deadline {
            self.0.as_mut().reset(deadline);
        }
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            while self.0.as_mut().poll(cx).is_ready() {
                if TInstant::now() >= deadline {
                    return Poll::Ready(None);
                }
                self.0.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }
}

struct Idle {
    stream: TcpStream,
    expires: Instant,
}

thread_local! {
    /// Idle upstream connections of this worker thread, newest last, by address. Each
    /// worker runs a current-thread runtime, so a connection is only ever used by the
    /// runtime whose reactor it is registered with, and no lock is needed.
    static POOL: RefCell<Vec<(SocketAddr, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// An idle connection to `addr` that the upstream has not closed, if any.
fn pool_take(addr: SocketAddr, now: Instant) -> Option<TcpStream> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = &mut p.iter_mut().find(|(a, _)| *a == addr)?.1;
        while let Some(idle) = list.pop() {
            if idle.expires <= now {
                // Newest last: everything below is older still.
                list.clear();
                return None;
            }
            // Readable while idle means closed or garbage: either way not reusable. No
            // syscall unless the reactor saw the socket become readable.
            let mut b = [0u8; 1];
            if matches!(idle.stream.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(idle.stream);
            }
        }
        None
    })
}

fn pool_put(addr: SocketAddr, stream: TcpStream, idle: Duration, now: Instant) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = match p.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                p.push((addr, Vec::new()));
                p.len() - 1
            }
        };
        let list = &mut p[i].1;
        if list.len() >= POOL_MAX_IDLE {
            list.remove(0);
        }
        list.push(Idle {
            stream,
            expires: now + idle,
        });
    })
}

/// Drops this thread's idle upstream connections whose idle time is over (each worker
/// runs it periodically, so upstreams that left the config do not keep sockets open).
pub fn pool_sweep() {
    POOL.with(|p| {
        let now = Instant::now();
        let mut p = p.borrow_mut();
        for (_, list) in p.iter_mut() {
            list.retain(|i| i.expires > now);
        }
        p.retain(|(_, l)| !l.is_empty());
    })
}

/// Drops every idle upstream connection of this thread (before its runtime goes away).
pub fn pool_clear() {
    POOL.with(|p| p.borrow_mut().clear());
}

/// What a complete request head turned into.
enum Plan {
    /// Not complete yet.
    NeedMore,
    /// Not for the fast path.
    Fallback,
    /// `out` holds the complete response (an offline redirect).
    Respond(Done),
    /// `out` holds the request for the upstream.
    Proxy(Upstream, Done),
}

/// What is known about a request once its head is parsed.
struct Done {
    /// Bytes of the client buffer the request head took.
    consumed: usize,
    snap: Arc<Snapshot>,
    site: u32,
    outcome: Outcome,
    status: u16,
    body_bytes: usize,
    keepalive: bool,
    head_only: bool,
    /// The method is idempotent (RFC 9110 section 9.2.2): the request may be sent again
    /// when a pooled upstream connection turns out to be closed.
    idempotent: bool,
    /// Owned copies for the access log line, only when it is written.
    log: Option<LogInfo>,
}

struct LogInfo {
    host: String,
    method: String,
    path: String,
}

struct Upstream {
    addr: SocketAddr,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    idle: Duration,
}

/// Why a proxied request failed.
enum Failure {
    /// Before anything was sent to the client: answer with this status (502/504).
    Status(u16),
    /// After the response head went out (or the client went away): close.
    Cut,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hdr {
    Host,
    ContentLength,
    Connection,
    /// Hop-by-hop or set by offramp: not forwarded.
    Drop,
    /// Needs Pingora (bodies, upgrades, expectations).
    Fallback,
    Other,
}

fn classify(name: &[u8]) -> Hdr {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Hdr::Drop,
        4 if is("host") => Hdr::Host,
        6 if is("expect") => Hdr::Fallback,
        7 if is("upgrade") => Hdr::Fallback,
        7 if is("trailer") => Hdr::Drop,
        10 if is("connection") => Hdr::Connection,
        10 if is("keep-alive") => Hdr::Drop,
        14 if is("content-length") => Hdr::ContentLength,
        14 if is("http2-settings") => Hdr::Fallback,
        15 if is("x-forwarded-for") => Hdr::Drop,
        16 if is("proxy-connection") || is("x-forwarded-host") => Hdr::Drop,
        17 if is("transfer-encoding") => Hdr::Fallback,
        17 if is("x-forwarded-proto") => Hdr::Drop,
        18 if is("proxy-authenticate") => Hdr::Drop,
        19 if is("proxy-authorization") => Hdr::Drop,
        _ => Hdr::Other,
    }
}

/// The fast path of one plain-HTTP listener set; reads the shared snapshot.
pub struct FastPath {
    snapshot: Arc<ArcSwap<Snapshot>>,
}

impl FastPath {
    /// A fast path over the daemon's snapshot.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>) -> FastPath {
        FastPath { snapshot }
    }

    /// The snapshot it reads (also what requests handed to Pingora are counted in).
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.snapshot
    }

    /// Serves requests on `tcp` until it closes or a request needs Pingora. `initial`
    /// holds the bytes already read from it (the start of the first request, which
    /// began arriving at `first_byte`). `shutdown` turns true when the server drains:
    /// idle connections close then.
    pub async fn serve(
        &self,
        mut tcp: TcpStream,
        client: SocketAddr,
        initial: Vec<u8>,
        first_byte: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut buf: Vec<u8> = initial;
        buf.reserve(4096usize.saturating_sub(buf.len()));
        // The same for every request of the connection: formatted once.
        let forwarded = forwarded_headers(client.ip());
        let mut timer = Timer::new();
        // Registered once for the connection's life, not once per request.
        let mut drain = std::pin::pin!(shutdown.wait_for(|s| *s));
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        let mut ubuf: Vec<u8> = Vec::new();
        // The upstream request, while `out` takes the client's response head.
        let mut req: Vec<u8> = Vec::new();
        // Set when the first bytes of a request head arrived: the whole head must follow
        // within `crate::limits::REQUEST_HEAD_TIMEOUT`.
        let mut head_deadline: Option<tokio::time::Instant> = None;
        // When the current request's first bytes were read (or the previous request
        // ended, for a pipelined one). Clock reads are a visible share of a redirect's
        // cost, so the ones taken are reused.
        let mut start = first_byte;
        loop {
            let plan = if buf.is_empty() {
                Plan::NeedMore
            } else {
                self.plan(&buf, &forwarded, &mut out)
            };
            match plan {
                Plan::NeedMore => {
                    if buf.len() >= MAX_HEAD {
                        return End::Fallback(tcp, buf, start);
                    }
                    if buf.capacity() - buf.len() < 1024 {
                        buf.reserve(IO_CHUNK);
                    }
                    let read = if buf.is_empty() {
                        // Between requests: the same idle limit as `guard` sets for Pingora,
                        // and no waiting past a drain.
                        let deadline = TInstant::from_std(start) + crate::limits::KEEPALIVE_TIMEOUT;
                        let idle = timer.within(deadline, async {
                            tokio::select! {
                                biased;
                                r = tcp.read_buf(&mut buf) => Some(r),
                                _ = &mut drain => None,
                            }
                        });
                        match idle.await {
                            Some(Some(r)) => r,
                            _ => return End::Closed,
                        }
                    } else {
                        let deadline = *head_deadline.get_or_insert_with(|| {
                            TInstant::from_std(start) + crate::limits::REQUEST_HEAD_TIMEOUT
                        });
                        match timer.within(deadline, tcp.read_buf(&mut buf)).await {
                            Some(r) => r,
                            None => {
                                let _ = write_client(&mut tcp, TIMEOUT_408).await;
                                return End::Closed;
                            }
                        }
                    };
                    match read {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(_) => {
                            if head_deadline.is_none() {
                                start = Instant::now();
                            }
                            continue;
                        }
                    }
                }
                Plan::Fallback => return End::Fallback(tcp, buf, start),
                Plan::Respond(mut done) => {
                    head_deadline = None;
                    if write_client(&mut tcp, &out).await.is_err() {
                        done.status = 0;
                        finish(&done, client.ip(), start, Some("WriteError"));
                        return End::Closed;
                    }
                    start = finish(&done, client.ip(), start, None);
                    if !done.keepalive || draining(drain.as_mut()) {
                        return End::Closed;
                    }
                    consume(&mut buf, done.consumed);
                }
                Plan::Proxy(up, mut done) => {
                    head_deadline = None;
                    std::mem::swap(&mut out, &mut req);
                    let r = proxy_exchange(
                        &up, &req, &mut tcp, &mut ubuf, &mut out, &mut done, start, &mut timer,
                    )
                    .await;
                    match r {
                        Ok(()) => start = finish(&done, client.ip(), start, None),
                        Err(Failure::Status(code)) => {
                            let site = done.snap.table.sites.get(done.site as usize);
                            if let Some(site) = site {
                                site.counters.upstream_error();
                            }
                            // The same link as the Pingora path's error page (the fast path
                            // serves plain HTTP without `redirect_https` only).
                            let link = site.and_then(|s| {
                                let port = tcp.local_addr().map_or(0, |a| a.port());
                                proxy::error_page_link(&done.snap, s, "http", port)
                            });
                            let body = maintenance::upstream_error_page(code, link.as_deref());
                            simple_response(&mut out, code, &[], &body, done.head_only, false);
                            done.status = code;
                            done.body_bytes = if done.head_only { 0 } else { body.len() };
                            let _ = write_client(&mut tcp, &out).await;
                            let etype = if code == 504 {
                                "ReadTimedout"
                            } else {
                                "ConnectError"
                            };
                            finish(&done, client.ip(), start, Some(etype));
                            return End::Closed;
                        }
                        Err(Failure::Cut) => {
                            if done.status >= 500 {
                                if let Some(site) = done.snap.table.sites.get(done.site as usize) {
                                    site.counters.upstream_error();
                                }
                            }
                            finish(&done, client.ip(), start, Some("ConnectionClosed"));
                            return End::Closed;
                        }
                    }
                    if !done.keepalive || draining(drain.as_mut()) {
                        return End::Closed;
                    }
                    consume(&mut buf, done.consumed);
                }
            }
        }
    }

    /// Parses the head at the start of `buf` and decides what to do with it, writing
    /// the response or the upstream request into `out`.
    fn plan(&self, buf: &[u8], forwarded: &[u8], out: &mut Vec<u8>) -> Plan {
        let mut headers = [httparse::EMPTY_HEADER; MAX_REQ_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let consumed = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Plan::NeedMore,
            Err(_) => return Plan::Fallback,
        };
        let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
            return Plan::Fallback;
        };
        if !target.starts_with('/')
            || method == "CONNECT"
            || target.len() > crate::limits::MAX_REQUEST_TARGET
        {
            return Plan::Fallback;
        }
        let mut host: Option<&[u8]> = None;
        let mut keepalive = true;
        for h in req.headers.iter() {
            match classify(h.name.as_bytes()) {
                Hdr::Host if host.is_some() => return Plan::Fallback,
                Hdr::Host => host = Some(h.value),
                Hdr::ContentLength => {
                    if h.value.trim_ascii() != b"0" {
                        return Plan::Fallback;
                    }
                }
                Hdr::Connection => {
                    for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                        if token.eq_ignore_ascii_case(b"close") {
                            keepalive = false;
                        } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                            // Nominated hop-by-hop headers: Pingora's sanitizer handles them.
                            return Plan::Fallback;
                        }
                    }
                }
                Hdr::Fallback => return Plan::Fallback,
                Hdr::Drop | Hdr::Other => {}
            }
        }
        let Some(host) = host else {
            return Plan::Fallback;
        };
        let snap = self.snapshot.load_full();
        if snap.table.redirect_https || target.as_bytes().starts_with(b"/.well-known/") {
            return Plan::Fallback;
        }
        let idx = match snap.table.lookup(host) {
            Ok(Some(i)) => i,
            _ => return Plan::Fallback,
        };
        let (Some(site), Some(state)) = (
            snap.table.sites.get(idx as usize),
            snap.states.get(idx as usize),
        ) else {
            return Plan::Fallback;
        };
        let head_only = method == "HEAD";
        let idempotent = matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        );
        let log = proxy::access_log_on(&snap).then(|| LogInfo {
            host: String::from_utf8_lossy(host).into_owned(),
            method: method.to_string(),
            path: target.to_string(),
        });
        if state.state == SiteState::Offline {
            let (OfflineCode::Found | OfflineCode::Temporary, Some(prefix)) =
                (site.code, site.status_url.as_deref())
            else {
                return Plan::Fallback;
            };
            let loc = crate::text::location(prefix, site.keep_uri, target.as_bytes());
            let status = site.code.status();
            let body_len = redirect_response(out, status, &loc, head_only, keepalive);
            let body_bytes = if head_only { 0 } else { body_len };
            return Plan::Respond(Done {
                consumed,
                site: idx,
                outcome: Outcome::Redirected,
                status,
                body_bytes,
                keepalive,
                head_only,
                idempotent,
                log,
                snap,
            });
        }
        if site.peers.iter().any(|p| p.is_tls()) {
            return Plan::Fallback;
        }
        let peer = site.pick_peer();
        let Some(addr) = peer.address().as_inet().copied() else {
            return Plan::Fallback;
        };
        let o = &peer.options;
        let up = Upstream {
            addr,
            connect_timeout: o.connection_timeout.unwrap_or(Duration::from_secs(10)),
            read_timeout: o.read_timeout.unwrap_or(Duration::from_secs(60)),
            write_timeout: o.write_timeout.unwrap_or(Duration::from_secs(60)),
            idle: o.idle_timeout.unwrap_or(DEFAULT_IDLE),
        };
        out.clear();
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for h in req.headers.iter() {
            if matches!(
                classify(h.name.as_bytes()),
                Hdr::Other | Hdr::Host | Hdr::ContentLength
            ) {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(forwarded);
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n\r\n");
        Plan::Proxy(
            up,
            Done {
                consumed,
                site: idx,
                outcome: Outcome::Proxied,
                status: 0,
                body_bytes: 0,
                keepalive,
                head_only,
                idempotent,
                log,
                snap,
            },
        )
    }
}

/// `X-Forwarded-For` and `X-Forwarded-Proto` lines for requests from `client`.
fn forwarded_headers(client: IpAddr) -> Vec<u8> {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; the upstream gets a.b.c.d
    // as from the Pingora path.
    format!(
        "x-forwarded-for: {}\r\nx-forwarded-proto: http\r\n",
        client.to_canonical()
    )
    .into_bytes()
}

/// Whether the server is draining, without waiting. `drain` completes once, when it
/// is; it is not polled again after that (the connection closes).
fn draining<F: Future>(drain: Pin<&mut F>) -> bool {
    let mut drain = drain;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    drain.as_mut().poll(&mut cx).is_ready()
}

/// What `guard` answers a request head that is not complete in time.
const TIMEOUT_408: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Writes to the client; a client that takes no bytes for `crate::limits::WRITE_TIMEOUT` is
/// dropped. (The timer is only armed when the write does not complete at once.)
async fn write_client(tcp: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    write_timeout(tcp, data, crate::limits::WRITE_TIMEOUT).await
}

/// Writes all of `data`; fails when a write makes no progress for `limit`.
async fn write_timeout(tcp: &mut TcpStream, data: &[u8], limit: Duration) -> io::Result<()> {
    let mut data = data;
    while !data.is_empty() {
        match tcp.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tokio::time::timeout(limit, tcp.write(data)).await {
            Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    Ok(())
}

fn consume(buf: &mut Vec<u8>, n: usize) {
    if n >= buf.len() {
        buf.clear();
    } else {
        buf.drain(..n);
    }
}

/// Counts the request and writes its access-log line (when on); returns the time it
/// ended.
fn finish(done: &Done, client: IpAddr, start: Instant, error: Option<&str>) -> Instant {
    let end = Instant::now();
    let elapsed = end - start;
    let site = done.snap.table.sites.get(done.site as usize);
    if let Some(site) = site {
        site.counters.request(done.outcome, done.status, elapsed);
    }
    if let Some(l) = &done.log {
        let state = match done.outcome {
            Outcome::Proxied => "online",
            _ => "offline",
        };
        proxy::access_log(&proxy::AccessLine {
            client: Some(client),
            host: &l.host,
            site: site.map_or("-", |s| &s.name),
            state,
            method: &l.method,
            path: &l.path,
            status: done.status,
            bytes: done.body_bytes,
            elapsed,
            error,
        });
    }
    end
}

/// A complete response offramp writes itself: the same headers as `proxy::respond`,
/// plus the `Date` and `Connection` Pingora adds.
pub(crate) fn simple_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
    head_only: bool,
    keepalive: bool,
) {
    simple_head(out, status, headers, body.len(), keepalive);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
}

fn simple_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body_len: usize,
    keepalive: bool,
) {
    out.clear();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ");
    push_decimal(out, body_len);
    out.extend_from_slice(b"\r\nCache-Control: no-store\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Date: ");
    push_date(out);
    out.extend_from_slice(if keepalive {
        b"\r\nConnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
}

thread_local! {
    /// This thread's `Date` value and the second it is for.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sets this thread's `Date` to the current second.
fn refresh_date() {
    let secs = unix_secs();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            let v = pingora::protocols::http::date::get_cached_date();
            *d = (secs, v.as_bytes().to_vec());
        }
    });
}

/// Keeps this thread's `Date` current without a clock read per response: wakes at
/// every second boundary. Each worker runs one.
pub async fn date_ticker() {
    loop {
        refresh_date();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let to_next = Duration::from_nanos(1_000_000_000 - u64::from(nanos));
        tokio::time::sleep(to_next + Duration::from_millis(1)).await;
    }
}

fn push_date(out: &mut Vec<u8>) {
    DATE.with(|d| {
        if d.borrow().0 == u64::MAX {
            refresh_date();
        }
        out.extend_from_slice(&d.borrow().1);
    });
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `maintenance::redirect_page` split where the location goes, so a redirect's body is
/// written straight into the output buffer. `None` when the page does not have the
/// shape expected (then the page function is called per request).
fn redirect_template() -> Option<&'static [String; 3]> {
    static TEMPLATE: std::sync::OnceLock<Option<[String; 3]>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            // Nothing in it is escaped by html_escape, and no page text contains it.
            const MARK: &str = "\u{1}offramp-location\u{1}";
            let page = maintenance::redirect_page(MARK);
            let parts: Vec<&str> = page.split(MARK).collect();
            match parts[..] {
                [a, b, c] => Some([a.to_string(), b.to_string(), c.to_string()]),
                _ => None,
            }
        })
        .as_ref()
}

/// Writes a complete redirect to `loc` into `out`; returns the body's length.
fn redirect_response(
    out: &mut Vec<u8>,
    status: u16,
    loc: &str,
    head_only: bool,
    keepalive: bool,
) -> usize {
    let Some([a, b, c]) = redirect_template() else {
        let body = maintenance::redirect_page(loc);
        simple_response(
            out,
            status,
            &[("Location", loc)],
            &body,
            head_only,
            keepalive,
        );
        return body.len();
    };
    let escaped_len = crate::text::html_escaped_len(loc.as_bytes());
    let body_len = a.len() + b.len() + c.len() + 2 * escaped_len;
    simple_head(out, status, &[("Location", loc)], body_len, keepalive);
    if !head_only {
        out.extend_from_slice(a.as_bytes());
        let first = out.len();
        crate::text::push_html_escaped(out, loc.as_bytes());
        let escaped = first..out.len();
        out.extend_from_slice(b.as_bytes());
        out.extend_from_within(escaped);
        out.extend_from_slice(c.as_bytes());
    }
    body_len
}

/// How the upstream response body ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes.
    Close,
}

/// A parsed upstream response head.
struct RespHead {
    len: usize,
    status: u16,
    framing: Framing,
    /// The upstream connection may carry another request after this response.
    reusable: bool,
}

/// Parses the upstream response head at the start of `ubuf` and writes the client's
/// head into `out`. `Ok(None)`: incomplete.
fn response_head(
    ubuf: &[u8],
    head_only: bool,
    keepalive: bool,
    out: &mut Vec<u8>,
) -> Result<Option<RespHead>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESP_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(ubuf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if ubuf.len() < MAX_RESP_HEAD => return Ok(None),
        _ => return Err(()),
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(());
    };
    if !(100..=599).contains(&status) {
        return Err(());
    }
    let mut reusable = version == 1;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let mut date = false;
    for h in resp.headers.iter() {
        let n = h.name.as_bytes();
        if n.eq_ignore_ascii_case(b"content-length") {
            // Digits only: `+5` or `5, 5` would be read differently by different clients.
            let v = proxy::parse_length(h.value).ok_or(())?;
            if length.is_some_and(|l| l != v) {
                return Err(());
            }
            length = Some(v);
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if n.eq_ignore_ascii_case(b"connection") {
            if h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                reusable = false;
            }
        } else if n.eq_ignore_ascii_case(b"date") {
            date = true;
        }
    }
    let framing = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if te {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::Close
    };
    // Both framings at once (RFC 9112 section 6.3): Transfer-Encoding wins for this
    // response, and the connection is not trusted with another.
    if framing == Framing::Close || (te && length.is_some()) {
        reusable = false;
    }
    let client_keepalive = keepalive && framing != Framing::Close;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let n = h.name.as_bytes();
        let skip = n.eq_ignore_ascii_case(b"connection")
            || n.eq_ignore_ascii_case(b"keep-alive")
            || (te && n.eq_ignore_ascii_case(b"content-length"));
        if !skip {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    if !date {
        out.extend_from_slice(b"Date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    if (100..200).contains(&status) {
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(if client_keepalive {
            b"Connection: keep-alive\r\n\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
    }
    Ok(Some(RespHead {
        len,
        status,
        framing,
        reusable,
    }))
}

async fn connect(up: &Upstream) -> Result<TcpStream, Failure> {
    match tokio::time::timeout(up.connect_timeout, TcpStream::connect(up.addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => {
            tracing::debug!(upstream = %up.addr, "connect failed: {e}");
            Err(Failure::Status(502))
        }
        Err(_) => Err(Failure::Status(502)),
    }
}

fn reserve(b: &mut Vec<u8>) {
    if b.capacity() - b.len() < 4096 {
        b.reserve(IO_CHUNK);
    }
}

/// Reads the upstream's response head into `ubuf` and the client's version of it into
/// `out`. `Ok(None)`: the connection closed before sending any byte (retryable when it
/// came from the pool). Informational responses (103) go to the client as they come.
async fn read_head(
    up: &Upstream,
    conn: &mut TcpStream,
    ubuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    client: &mut TcpStream,
    done: &Done,
    timer: &mut Timer,
) -> Result<Option<RespHead>, Failure> {
    ubuf.clear();
    // After an informational response went to the client, nothing may be retried.
    let mut informed = false;
    // The answer's head (or the next one after a 1xx) must come within `read_timeout`.
    let mut deadline = TInstant::now() + up.read_timeout;
    loop {
        reserve(ubuf);
        match timer.within(deadline, conn.read_buf(ubuf)).await {
            None if informed => return Err(Failure::Cut),
            None => return Err(Failure::Status(504)),
            Some(Ok(0)) | Some(Err(_)) if informed => return Err(Failure::Cut),
            Some(Ok(0)) | Some(Err(_)) if ubuf.is_empty() => return Ok(None),
            Some(Ok(0)) | Some(Err(_)) => return Err(Failure::Status(502)),
            Some(Ok(_)) => {}
        }
        loop {
            match response_head(ubuf, done.head_only, done.keepalive, out) {
                Err(()) => return Err(Failure::Status(502)),
                Ok(None) => break,
                Ok(Some(h)) if h.status == 101 => return Err(Failure::Status(502)),
                Ok(Some(h)) if (100..200).contains(&h.status) => {
                    informed = true;
                    if write_client(client, out).await.is_err() {
                        return Err(Failure::Cut);
                    }
                    deadline = TInstant::now() + up.read_timeout;
                    consume(ubuf, h.len);
                    if ubuf.is_empty() {
                        break;
                    }
                }
                Ok(Some(h)) => return Ok(Some(h)),
            }
        }
    }
}

/// One request to the upstream and its response to the client.
#[allow(clippy::too_many_arguments)]
async fn proxy_exchange(
    up: &Upstream,
    request: &[u8],
    client: &mut TcpStream,
    ubuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    done: &mut Done,
    started: Instant,
    timer: &mut Timer,
) -> Result<(), Failure> {
    // A pooled connection the upstream closed meanwhile fails before any response byte:
    // then the request (which has no body) is sent once more on a new connection.
    let mut fresh = false;
    let (mut conn, head) = loop {
        let pooled = if fresh {
            None
        } else {
            pool_take(up.addr, started)
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(up).await?,
        };
        match write_timeout(&mut conn, request, up.write_timeout).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Failure::Status(504)),
            Err(_) if reused && done.idempotent => {
                fresh = true;
                continue;
            }
            Err(_) => return Err(Failure::Status(502)),
        }
        match read_head(up, &mut conn, ubuf, out, client, done, timer).await? {
            Some(h) => break (conn, h),
            None if reused && done.idempotent => fresh = true,
            None => return Err(Failure::Status(502)),
        }
    };
    done.status = head.status;
    // An upstream often writes head and body separately (nginx: writev, then sendfile).
    // Forwarding the head alone costs a write, a segment and a wake-up of the client
    // more; so for a small body of known length, wait briefly for the rest and send it
    // all at once (what nginx's `postpone_output` achieves). Streams (chunked, or
    // until close) are forwarded as they come.
    if let Framing::Length(n) = head.framing {
        if (head.len as u64).saturating_add(n) <= COALESCE_MAX as u64 {
            let deadline = tokio::time::Instant::now() + COALESCE_WAIT;
            while ((ubuf.len() - head.len) as u64) < n {
                reserve(ubuf);
                match tokio::time::timeout_at(deadline, conn.read_buf(ubuf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    // Timed out: send what is there. Closed or failed: the loop below
                    // sees it again and cuts the response short.
                    _ => break,
                }
            }
        }
    }
    // The head and whatever body arrived with it go out in one write.
    let mut body = &ubuf[head.len..];
    let mut complete = false;
    let mut extra = false;
    let mut remaining = 0u64;
    let mut chunks = Chunked::default();
    match head.framing {
        Framing::Empty => {
            complete = true;
            extra = !body.is_empty();
            body = &[];
        }
        Framing::Length(n) => {
            if body.len() as u64 >= n {
                extra = body.len() as u64 > n;
                body = &body[..n as usize];
                complete = true;
            } else {
                remaining = n - body.len() as u64;
            }
        }
        Framing::Chunked => match chunks.feed(body) {
            Err(()) => return Err(Failure::Status(502)),
            Ok(Some(end)) => {
                extra = end < body.len();
                body = &body[..end];
                complete = true;
            }
            Ok(None) => {}
        },
        Framing::Close => {}
    }
    out.extend_from_slice(body);
    done.body_bytes = body.len();
    if write_client(client, out).await.is_err() {
        return Err(Failure::Cut);
    }
    while !complete {
        ubuf.clear();
        reserve(ubuf);
        let deadline = TInstant::now() + up.read_timeout;
        let n = match timer.within(deadline, conn.read_buf(ubuf)).await {
            Some(Ok(0)) if head.framing == Framing::Close => {
                complete = true;
                0
            }
            Some(Ok(0)) | Some(Err(_)) | None => return Err(Failure::Cut),
            Some(Ok(n)) => n,
        };
        let mut piece = &ubuf[..n];
        match head.framing {
            Framing::Length(_) => {
                if piece.len() as u64 >= remaining {
                    extra = piece.len() as u64 > remaining;
                    piece = &piece[..remaining as usize];
                    complete = true;
                } else {
                    remaining -= piece.len() as u64;
                }
            }
            Framing::Chunked => match chunks.feed(piece) {
                Err(()) => return Err(Failure::Cut),
                Ok(Some(end)) => {
                    extra = end < piece.len();
                    piece = &piece[..end];
                    complete = true;
                }
                Ok(None) => {}
            },
            Framing::Empty | Framing::Close => {}
        }
        if !piece.is_empty() {
            done.body_bytes += piece.len();
            if write_client(client, piece).await.is_err() {
                return Err(Failure::Cut);
            }
        }
    }
    if head.framing == Framing::Close {
        done.keepalive = false;
    }
    if head.reusable && !extra {
        // `started` is slightly early for the idle clock: it only shortens the idle life.
        pool_put(up.addr, conn, up.idle, started);
    }
    Ok(())
}

/// Finds the end of a chunked body as it streams past (RFC 9112 section 7.1).
#[derive(Default)]
struct Chunked {
    state: ChunkState,
    size: u64,
    digits: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
}

impl Chunked {
    /// Takes the next bytes of the body; `Ok(Some(n))`: the body ended after `n` of them.
    fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ()> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.size > u64::MAX >> 8 {
                            return Err(());
                        }
                        let v = (b as char).to_digit(16).ok_or(())?;
                        self.size = self.size * 16 + u64::from(v);
                        self.digits = true;
                    }
                    b';' | b' ' | b'\t' if self.digits => self.state = Ext,
                    b'\r' if self.digits => self.state = SizeLf,
                    _ => return Err(()),
                },
                Ext => {
                    if b == b'\r' {
                        self.state = SizeLf;
                    } else if b == b'\n' {
                        return Err(());
                    }
                }
                SizeLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    self.state = if self.size == 0 { TrailerStart } else { Data };
                }
                Data => {
                    let take = (self.size).min((data.len() - i) as u64);
                    self.size -= take;
                    i += take as usize;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                DataCr if b == b'\r' => self.state = DataLf,
                DataLf if b == b'\n' => {
                    self.state = Size;
                    self.digits = false;
                }
                DataCr | DataLf => return Err(()),
                TrailerStart => self.state = if b == b'\r' { EndLf } else { TrailerLine },
                TrailerLine => {
                    if b == b'\r' {
                        self.state = TrailerLf;
                    }
                }
                TrailerLf if b == b'\n' => self.state = TrailerStart,
                EndLf if b == b'\n' => return Ok(Some(i + 1)),
                TrailerLf | EndLf => return Err(()),
            }
            i += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_end_is_found_across_pieces() {
        let body = b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let first = c.feed(&body[..split]).unwrap();
            let end = match first {
                Some(e) => e,
                None => split + c.feed(&body[split..]).unwrap().expect("end"),
            };
            assert_eq!(&body[end..], b"NEXT", "split at {split}");
        }
        assert!(Chunked::default().feed(b"zz\r\n").is_err());
        assert!(Chunked::default().feed(b"\r\n").is_err());
        assert!(Chunked::default().feed(b"4\r\nwikiXX").is_err());
    }

    #[test]
    fn redirect_body_is_the_maintenance_page() {
        for loc in ["https://s.example/a?b=1&c='\"<>", "https://s.example/"] {
            let mut out = Vec::new();
            let n = redirect_response(&mut out, 302, loc, false, true);
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert_eq!(body, maintenance::redirect_page(loc));
            assert_eq!(n, body.len());
            assert!(head.contains(&format!("Content-Length: {n}\r\n")), "{head}");
            assert!(head.contains(&format!("Location: {loc}\r\n")), "{head}");
        }
    }

    #[test]
    fn response_framing() {
        let mut out = Vec::new();
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            false,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(3));
        assert!(!h.reusable);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"), "{text}");
        assert!(!text.contains("Connection: close"));
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!String::from_utf8_lossy(&out).contains("Content-Length"));
        let h = response_head(b"HTTP/1.1 200 OK\r\n\r\n", false, true, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Close);
        assert!(String::from_utf8_lossy(&out).ends_with("Connection: close\r\n\r\n"));
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            true,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false,
            true,
            &mut out
        )
        .is_err());
        assert!(response_head(b"garbage\r\n\r\n", false, true, &mut out).is_err());
        assert!(
            response_head(b"HTTP/1.1 200 OK\r\nContent-", false, true, &mut out)
                .unwrap()
                .is_none()
        );
    }
}
