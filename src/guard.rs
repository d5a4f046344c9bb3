//! Limits on client connections that Pingora does not enforce by itself: a deadline and
//! a size cap for each HTTP/1 request head, an idle timeout for kept-alive connections,
//! a cap on open connections, and the file-descriptor limit that cap depends on.
//!
//! Pingora 0.9 times out each *read* of a request head (60 s) but not the head as a
//! whole, so a client trickling one byte a second holds its connection for as long as
//! it likes, and after the first request a kept-alive connection waits for the next one
//! forever. [`Guarded`] wraps the client stream and enforces the deadlines itself; the
//! proxy hooks tell it when a request head is complete ([`request_started`]) and when
//! the exchange is over ([`request_finished`]). Owns: these limits. Does not own:
//! listeners (see `server`) or what a request gets (see `proxy`).
//!
//! A request head Pingora cannot accept (malformed syntax, two `Host` fields, a `Host`
//! that differs from an absolute-form target...) never reaches the proxy hooks: Pingora
//! answers a bare `400` itself. While a head is being read, [`Guarded`] replaces that
//! answer with offramp's own 400 page and counts and logs the request like any other.

use std::future::Future as _;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN, IO,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::metrics::Outcome;
use crate::reply::Reply;
use crate::request::access;
use crate::snapshot::Snapshot;

pub use crate::limits::*;

/// File descriptors kept for everything that is not a client connection.
const RESERVED_FDS: u64 = 128;

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

use crate::reply::h1::{TIMEOUT_408, TOO_LARGE_431};

/// An HTTP/1 client stream with a deadline and a size cap on each request head and an
/// idle timeout between requests.
///
/// Phases: `HEAD` (reading a request head: [`REQUEST_HEAD_TIMEOUT`] from its first
/// byte, at most [`MAX_REQUEST_HEAD`] bytes), `BUSY` (a request is being served: only
/// Pingora's own per-read timeouts apply), `IDLE` (waiting for the next request:
/// [`KEEPALIVE_TIMEOUT`]; its first byte starts a new `HEAD`).
pub struct Guarded {
    inner: Stream,
    epoch: Instant,
    phase: AtomicU8,
    /// Start of the current phase, in milliseconds since `epoch`.
    since_ms: AtomicU64,
    head_bytes: usize,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    answered: bool,
    /// For counting and logging requests Pingora refuses before any hook runs.
    snapshot: Arc<ArcSwap<Snapshot>>,
    client: Option<IpAddr>,
    /// offramp's 400 page written in place of Pingora's, and how much of it went out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("phase", &self.phase.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Guarded {
    /// Wraps a client stream whose first request head began to arrive at `head_start`.
    /// Must be called inside a tokio runtime.
    pub fn new(
        inner: Stream,
        head_start: Instant,
        snapshot: Arc<ArcSwap<Snapshot>>,
        client: Option<IpAddr>,
    ) -> Guarded {
        let epoch = head_start;
        Guarded {
            inner,
            epoch,
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
            head_bytes: 0,
            timer: Box::pin(tokio::time::sleep_until(
                (epoch + REQUEST_HEAD_TIMEOUT).into(),
            )),
            timer_at: Some(epoch + REQUEST_HEAD_TIMEOUT),
            answered: false,
            snapshot,
            client,
            replacement: None,
        }
    }

    /// Pingora is answering a request head it refused (only Pingora writes while a
    /// head is read, and only its bare 400 for a refused head): counts and logs it,
    /// and prepares offramp's page in its place.
    fn replace_refusal(&mut self) {
        let elapsed = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.since_ms.load(Ordering::Acquire)));
        let mut reply = Reply::page(400, crate::reply::pages::client_error_page(400));
        reply.close = true;
        let mut out = Vec::with_capacity(reply.body_len() + 160);
        let bytes = crate::reply::h1::write_reply(&mut out, &reply, false, false);
        let snap = self.snapshot.load();
        access::count(&snap, None, Outcome::BadRequest, 400, elapsed);
        if access::access_log_on(&snap) {
            access::access_log(&access::AccessLine {
                client: self.client,
                host: "-",
                site: "-",
                state: "-",
                method: "-",
                path: "-",
                status: 400,
                bytes,
                elapsed,
                error: Some("InvalidHTTPHeader"),
            });
        }
        self.replacement = Some((out, 0));
    }

    fn enter(&self, phase: u8) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
        self.phase.store(phase, Ordering::Release);
    }

    fn deadline(&self, phase: u8) -> Option<Instant> {
        let since = self.epoch + Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        match phase {
            HEAD => Some(since + REQUEST_HEAD_TIMEOUT),
            IDLE => Some(since + KEEPALIVE_TIMEOUT),
            _ => None,
        }
    }

    /// Best effort: a short final answer before the connection is dropped.
    fn answer(&mut self, cx: &mut Context<'_>, response: &[u8]) {
        if self.answered {
            return;
        }
        self.answered = true;
        let _ = Pin::new(&mut self.inner).poll_write(cx, response);
        let _ = Pin::new(&mut self.inner).poll_flush(cx);
    }

    fn expire(&mut self, phase: u8, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if phase == IDLE {
            // End of stream with nothing read: Pingora closes the connection quietly.
            return Poll::Ready(Ok(()));
        }
        self.answer(cx, TIMEOUT_408);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "request head not complete within {}s",
                REQUEST_HEAD_TIMEOUT.as_secs()
            ),
        )))
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let phase = this.phase.load(Ordering::Acquire);
        let deadline = this.deadline(phase);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return this.expire(phase, cx);
        }
        if phase == HEAD && this.head_bytes >= MAX_REQUEST_HEAD {
            this.answer(cx, TOO_LARGE_431);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request head larger than {MAX_REQUEST_HEAD} bytes"),
            )));
        }
        // While a head is read, never read past the cap: what is beyond it is refused.
        let allowance = match phase {
            HEAD => MAX_REQUEST_HEAD - this.head_bytes,
            _ => usize::MAX,
        };
        let (result, n) = if buf.remaining() > allowance {
            let mut limited = buf.take(allowance);
            let r = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
            let n = limited.filled().len();
            // SAFETY: `limited` views the unfilled part of `buf`; the inner stream
            // initialised and filled its first `n` bytes.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            (r, n)
        } else {
            let before = buf.filled().len();
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            (r, buf.filled().len() - before)
        };
        match result {
            Poll::Ready(Ok(())) => {
                if n > 0 {
                    match phase {
                        IDLE => {
                            this.enter(HEAD);
                            this.head_bytes = n;
                        }
                        HEAD => this.head_bytes += n,
                        _ => {}
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if let Some(d) = deadline {
                    if this.timer_at != Some(d) {
                        this.timer.as_mut().reset(d.into());
                        this.timer_at = Some(d);
                    }
                    if this.timer.as_mut().poll(cx).is_ready() {
                        return this.expire(phase, cx);
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_none()
            && this.phase.load(Ordering::Acquire) == HEAD
            && (buf.starts_with(b"HTTP/1.1 400 ") || buf.starts_with(b"HTTP/1.0 400 "))
        {
            this.replace_refusal();
        }
        let Some((page, written)) = &mut this.replacement else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *written < page.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &page[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                other => return other,
            }
        }
        // Pingora's own answer (and its empty body) is swallowed; the connection closes.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() || this.phase.load(Ordering::Acquire) == HEAD {
            // Rare (an answer while a head is read): one slice at a time, through the
            // check above.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for Guarded {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

fn guard_of(session: &pingora::proxy::Session) -> Option<&Guarded> {
    let stream: &dyn IO = &**session.as_downstream().stream()?;
    stream.as_any().downcast_ref::<Guarded>()
}

/// From a proxy hook: the request head is complete and the request is being served.
pub fn request_started(session: &mut pingora::proxy::Session) {
    session.set_write_timeout(Some(WRITE_TIMEOUT));
    if let Some(g) = guard_of(session) {
        g.enter(BUSY);
    }
}

/// From the proxy's last hook: the exchange is over; the connection now waits for the
/// next request (or closes).
pub fn request_finished(session: &mut pingora::proxy::Session) {
    // Pingora would read the rest of an unread request body before the next request,
    // and those bytes would count as the next head: close instead of draining.
    if !(session.is_body_empty() || session.is_body_done()) {
        session.set_keepalive(None);
        return;
    }
    if let Some(g) = guard_of(session) {
        g.enter(IDLE);
    }
}

/// Raises the soft limit on open files to the hard limit (systemd starts services with
/// a soft limit of 1024) and returns the limit in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    // rlim_t is not u64 on every platform.
    #[allow(clippy::unnecessary_cast)]
    let limit = lim.rlim_cur as u64;
    limit
}

/// Client connections allowed at once with `nofile` file descriptors: each proxied
/// request needs two (client and upstream), and some are kept for everything else.
pub fn connection_limit(nofile: u64) -> usize {
    let usable = nofile.saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(usable)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS)
}

/// Rate limit for the "connection limit reached" warning: one per second at most.
pub fn should_warn_limit() -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.swap(now, Ordering::AcqRel) != now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limit_follows_the_fd_limit() {
        assert_eq!(connection_limit(1024), (1024 - 128) / 2);
        assert_eq!(connection_limit(1 << 20), MAX_CONNECTIONS);
        assert_eq!(connection_limit(0), 1);
    }
}
