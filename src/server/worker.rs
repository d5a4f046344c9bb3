//! Connections on a worker thread: accept (bounded by the connection limit), spread
//! over the workers evenly, tell h2c from HTTP/1.1 by the first bytes, run the fast
//! path, and hand what it does not serve (and h2c, TLS) to Pingora's apps.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::apps::ServerApp;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use tokio::sync::watch;
use tracing::warn;

use super::{ConnCounter, ConnGuard, ProxyApp};

/// The HTTP/2 connection preface a prior-knowledge h2c client starts with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A new connection must send its first bytes within this time or it is closed.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

/// The first bytes of a plain-HTTP connection, read (not peeked, so a client that
/// stops mid-preface or closes costs nothing while it waits), and whether they are the
/// prior-knowledge HTTP/2 preface. `None` when the client closed or sent nothing in
/// [`FIRST_BYTES_TIMEOUT`], or sent only a prefix of the preface within
/// `crate::limits::REQUEST_HEAD_TIMEOUT` of its first byte.
///
/// Pingora's own h2c detection waits for 24 bytes with no deadline, so a short HTTP/1
/// request (`GET / HTTP/1.0` + CRLF CRLF) would hang and an idle connection would stay
/// forever; this decides as soon as the bytes differ from the preface.
async fn first_bytes(stream: &mut tokio::net::TcpStream) -> Option<(bool, Vec<u8>, Instant)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(4096);
    match tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.read_buf(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return None,
    }
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + crate::limits::REQUEST_HEAD_TIMEOUT);
    loop {
        let n = buf.len().min(H2_PREFACE.len());
        if buf[..n] != H2_PREFACE[..n] {
            return Some((false, buf, start));
        }
        if n == H2_PREFACE.len() {
            return Some((true, buf, start));
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// The Pingora apps a connection can be handed to: HTTP/1.1, h2c, or TLS (h2 or
/// HTTP/1.1 by ALPN).
pub struct Apps {
    pub h1: Arc<ProxyApp>,
    pub h2c: Arc<ProxyApp>,
    pub tls: Arc<ProxyApp>,
    pub acceptor: Option<Arc<pingora::listeners::tls::Acceptor>>,
    /// Plain-HTTP/1.1 requests it can answer itself (see `fast`); the rest go to `h1`.
    pub fast: crate::fast::FastPath,
}

/// A TLS handshake must complete within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections per worker and each worker's inbox, so that connections are spread
/// evenly: a worker that accepts a connection while it serves more than another worker
/// hands it over. Keep-alive clients (and load generators) open their connections in a
/// burst, and whichever worker wakes first would otherwise keep most of them for their
/// whole life, and its clients wait for each other while the other worker idles.
pub(super) struct Balance {
    pub(super) open: Vec<AtomicUsize>,
    pub(super) inboxes: Vec<tokio::sync::mpsc::UnboundedSender<Handover>>,
}

/// A connection accepted by one worker for another (already counted as that one's).
pub(super) struct Handover {
    pub(super) tcp: std::net::TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) tls: bool,
    pub(super) guard: ConnGuard,
    pub(super) load: WorkerLoad,
}

/// One worker thread's side of serving connections.
pub(super) struct Worker {
    index: usize,
    apps: Arc<Apps>,
    shutdown: watch::Receiver<bool>,
    /// The fast path waits on a channel of this thread's own, so idle connections on
    /// different workers do not contend for one lock; a task forwards the drain signal.
    fast_shutdown: watch::Receiver<bool>,
    balance: Arc<Balance>,
}

/// Counts a connection as one worker's while it lives.
pub(super) struct WorkerLoad(Arc<Balance>, usize);

impl WorkerLoad {
    fn enter(balance: &Arc<Balance>, worker: usize) -> WorkerLoad {
        if let Some(n) = balance.open.get(worker) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        WorkerLoad(balance.clone(), worker)
    }
}

impl Drop for WorkerLoad {
    fn drop(&mut self) {
        if let Some(n) = self.0.open.get(self.1) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Worker {
    /// Sets up this worker's timers (the `Date` ticker, the upstream pool sweep, the
    /// drain forwarder); call inside its runtime.
    pub(super) fn start(
        index: usize,
        apps: Arc<Apps>,
        shutdown: watch::Receiver<bool>,
        balance: Arc<Balance>,
    ) -> Worker {
        let (local_tx, local_rx) = watch::channel(false);
        tokio::spawn(crate::reply::h1::date_ticker());
        let mut forward = shutdown.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = forward.wait_for(|s| *s) => break,
                    _ = sweep.tick() => crate::fast::pool_sweep(),
                }
            }
            let _ = local_tx.send(true);
        });
        Worker {
            index,
            apps,
            shutdown,
            fast_shutdown: local_rx,
            balance,
        }
    }

    /// The worker that should serve a new connection: this one, unless another serves
    /// at least two fewer.
    fn pick(&self) -> usize {
        let open = &self.balance.open;
        let mine = open
            .get(self.index)
            .map_or(0, |n| n.load(Ordering::Relaxed));
        let (least, n) = open
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.load(Ordering::Relaxed)))
            .min_by_key(|&(_, n)| n)
            .unwrap_or((self.index, mine));
        if n + 1 < mine {
            least
        } else {
            self.index
        }
    }

    /// Serves an accepted connection here, or hands it to a less busy worker.
    fn dispatch(&self, tcp: tokio::net::TcpStream, peer: SocketAddr, tls: bool, guard: ConnGuard) {
        let to = self.pick();
        if to != self.index {
            if let (Some(inbox), Ok(tcp)) = (self.balance.inboxes.get(to), tcp.into_std()) {
                let load = WorkerLoad::enter(&self.balance, to);
                let handover = Handover {
                    tcp,
                    peer,
                    tls,
                    guard,
                    load,
                };
                if let Err(e) = inbox.send(handover) {
                    // That worker is gone (shutting down): serve it here after all.
                    let h = e.0;
                    drop(h.load);
                    if let Ok(tcp) = tokio::net::TcpStream::from_std(h.tcp) {
                        let load = WorkerLoad::enter(&self.balance, self.index);
                        self.spawn_conn(tcp, h.peer, h.tls, h.guard, load);
                    }
                }
            }
            return;
        }
        let load = WorkerLoad::enter(&self.balance, self.index);
        self.spawn_conn(tcp, peer, tls, guard, load);
    }

    /// Serves a connection on this worker; `load` counts it as this worker's.
    pub(super) fn spawn_conn(
        &self,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        tls: bool,
        guard: ConnGuard,
        load: WorkerLoad,
    ) {
        let apps = self.apps.clone();
        let shutdown = self.shutdown.clone();
        let mut fast_shutdown = self.fast_shutdown.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let _load = load;
            let mut tcp = tcp;
            let (h2, mut unanswered, mut head_start) = if tls {
                (false, Vec::new(), Instant::now())
            } else {
                match first_bytes(&mut tcp).await {
                    Some(first) => first,
                    None => return,
                }
            };
            let tcp = if tls || h2 {
                tcp
            } else {
                let initial = std::mem::take(&mut unanswered);
                match apps
                    .fast
                    .serve(tcp, peer, initial, head_start, &mut fast_shutdown)
                    .await
                {
                    crate::fast::End::Closed => return,
                    crate::fast::End::Fallback(tcp, read, start) => {
                        unanswered = read;
                        head_start = start;
                        tcp
                    }
                }
            };
            let mut stream = pingora::protocols::l4::stream::Stream::from(tcp);
            if !unanswered.is_empty() {
                // Pingora reads these first, as if they had just arrived.
                stream.rewind(&unanswered);
            }
            let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
            let _ = digest.peer_addr.set(Some(peer.into()));
            stream.set_socket_digest(digest);
            if tls {
                let Some(acceptor) = &apps.acceptor else {
                    return;
                };
                let handshake =
                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.tls_handshake(stream))
                        .await;
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(client = %peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %peer, "TLS handshake timed out");
                        return;
                    }
                };
                let h2 = matches!(
                    pingora::protocols::Ssl::selected_alpn_proto(&stream),
                    Some(pingora::protocols::ALPN::H2)
                );
                // Over TLS the head deadline starts once the handshake is done.
                let stream = guarded(Box::new(stream), h2, Instant::now(), &apps, peer);
                let _ = apps.tls.process_new(stream, &shutdown).await;
            } else {
                let stream = guarded(Box::new(stream), h2, head_start, &apps, peer);
                let app = if h2 { &apps.h2c } else { &apps.h1 };
                let _ = app.process_new(stream, &shutdown).await;
            }
        });
    }
}

/// An HTTP/1 client stream with `guard`'s limits (HTTP/2 has its own); the request head
/// began arriving at `head_start`.
fn guarded(
    stream: pingora::protocols::Stream,
    h2: bool,
    head_start: Instant,
    apps: &Apps,
    peer: SocketAddr,
) -> pingora::protocols::Stream {
    if h2 {
        return stream;
    }
    Box::new(crate::guard::Guarded::new(
        stream,
        head_start,
        apps.fast.snapshot().clone(),
        Some(peer.ip()),
    ))
}

pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: bool,
    worker: Arc<Worker>,
    conns: Arc<ConnCounter>,
    max_conns: usize,
) {
    let mut shutdown = worker.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if conns.open() >= max_conns {
                    // Closed at once rather than left in the kernel's queue: the client
                    // learns immediately, and the connections in service are unaffected.
                    if crate::guard::should_warn_limit() {
                        warn!(
                            max_connections = max_conns,
                            "connection limit reached, refusing new connections"
                        );
                    }
                    drop(tcp);
                    continue;
                }
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("set_nodelay: {e}");
                }
                worker.dispatch(tcp, peer, tls, conns.enter());
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
