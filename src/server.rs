//! `offramp serve`: binds everything, runs the proxy on worker threads, and shuts down
//! gracefully.
//!
//! Listeners are bound here, before any thread starts, so a busy port is a clear error
//! and port 0 works (the bound address is logged: `listening proto=http addr=...`).
//! Each worker thread runs its own single-threaded tokio runtime with an accept loop on
//! every listener, and hands connections to Pingora's HTTP proxy app. A control
//! runtime on the main thread runs the control socket, the config watcher, signals and
//! the expiry timer. Owns: process lifecycle. Does not own: what a request gets.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::apps::{HttpServerOptions, ServerApp};
use std::os::fd::AsRawFd;

use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::server::configuration::ServerConf;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::daemon::Daemon;
use crate::proxy::{Proxy, Scheme};
use crate::{control, demo};

type ProxyApp = pingora::proxy::HttpProxy<Proxy>;

/// Counts open client connections; the guard decrements on drop.
#[derive(Default)]
pub struct ConnCounter(AtomicUsize);

struct ConnGuard(Arc<ConnCounter>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
        if let Some(m) = crate::metrics::get() {
            m.open_connections.dec();
        }
    }
}

impl ConnCounter {
    fn enter(self: &Arc<Self>) -> ConnGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        if let Some(m) = crate::metrics::get() {
            m.open_connections.inc();
        }
        ConnGuard(self.clone())
    }

    /// Open connections right now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    let l =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))?;
    Ok(l)
}

fn ensure_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                warn!("cannot create directory {}: {e}", dir.display());
            }
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Returns an error message for start-up failures.
pub fn serve(config_path: &Path) -> Result<(), String> {
    let config =
        Config::load(config_path).map_err(|e| format!("invalid config, not starting:\n{e}"))?;
    let _ = crate::metrics::get();
    let threads = config.server.threads;

    let http: Vec<TcpListener> = config
        .server
        .http
        .iter()
        .map(|a| bind(*a, "server.http"))
        .collect::<Result<_, _>>()?;
    let https: Vec<TcpListener> = config
        .server
        .https
        .iter()
        .map(|a| bind(*a, "server.https"))
        .collect::<Result<_, _>>()?;
    let https_port = https
        .first()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let demo_listener = match &config.demo {
        Some(d) => Some(bind(d.listen, "demo.listen")?),
        None => None,
    };
    let admin_listener = match config.server.admin {
        Some(a) => Some(bind(a, "server.admin")?),
        None => None,
    };
    ensure_parent_dir(&config.server.control);
    ensure_parent_dir(&config.server.state);
    let control_listener = control::bind(&config.server.control, config.server.control_group)?;

    let (daemon, warnings) = Daemon::new(config);
    // The config's own warnings (a certificate expiring soon...): the same level as on
    // a reload.
    for w in warnings {
        warn!("{w}");
    }
    let daemon = Arc::new(daemon);
    let tls_acceptor = match daemon.resolver() {
        Some(r) => Some(Arc::new(
            pingora::listeners::tls::Acceptor::from_server_config(Arc::new(
                crate::tls::server_config(r)?,
            )),
        )),
        None if !https.is_empty() => return Err("HTTPS listeners without certificates".into()),
        None => None,
    };

    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let conf = Arc::new(conf);
    let proxy = |scheme| Proxy::new(daemon.snapshot(), scheme, https_port);
    // HTTP/1 idle connections are timed out by `guard::Guarded`; HTTP/2 ones by Pingora.
    let mut h2_idle = HttpServerOptions::default();
    h2_idle.h2_idle_timeout = Some(crate::limits::KEEPALIVE_TIMEOUT);
    let h1 = pingora::proxy::http_proxy(&conf, proxy(Scheme::Http));
    let mut h2c = pingora::proxy::http_proxy(&conf, proxy(Scheme::Http));
    let mut opts = h2_idle.clone();
    opts.h2c = true;
    h2c.server_options = Some(opts);
    let mut tls = pingora::proxy::http_proxy(&conf, proxy(Scheme::Https));
    tls.server_options = Some(h2_idle);
    let apps = Arc::new(Apps {
        h1: Arc::new(h1),
        h2c: Arc::new(h2c),
        tls: Arc::new(tls),
        acceptor: tls_acceptor,
        fast: crate::fast::FastPath::new(daemon.snapshot()),
    });

    for (proto, list) in [("http", &http), ("https", &https)] {
        for l in list {
            if let Ok(a) = l.local_addr() {
                info!("listening proto={proto} addr={a}");
            }
        }
    }
    if let Some(l) = &admin_listener {
        if let Ok(a) = l.local_addr() {
            info!("listening proto=admin addr={a} (/metrics, /healthz)");
        }
    }
    if let Some(l) = &demo_listener {
        if let Ok(a) = l.local_addr() {
            info!("listening proto=demo addr={a} (built-in demo origin, for trying offramp out)");
        }
    }

    let nofile = crate::guard::raise_nofile_limit();
    let max_conns = crate::guard::connection_limit(nofile);
    info!(
        max_connections = max_conns,
        open_files_limit = nofile,
        "client connection limit"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let conns = Arc::new(ConnCounter::default());
    let mut inboxes = Vec::with_capacity(threads);
    let mut senders = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        senders.push(tx);
        inboxes.push(rx);
    }
    let balance = Arc::new(Balance {
        open: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
        inboxes: senders,
    });
    let mut workers = Vec::new();
    for (i, mut inbox) in inboxes.into_iter().enumerate() {
        let listeners: Vec<(TcpListener, bool)> = http
            .iter()
            .map(|l| (l, false))
            .chain(https.iter().map(|l| (l, true)))
            .map(|(l, tls)| {
                l.try_clone()
                    .map(|l| (l, tls))
                    .map_err(|e| format!("cannot share listener: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let apps = apps.clone();
        let shutdown = shutdown_rx.clone();
        let mut stop = stop_rx.clone();
        let conns = conns.clone();
        let balance = balance.clone();
        let handle = std::thread::Builder::new()
            .name(format!("offramp-w{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!("cannot start worker runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    let worker = Arc::new(Worker::start(i, apps, shutdown, balance));
                    // Connections other workers accepted and handed to this one.
                    let w = worker.clone();
                    tokio::spawn(async move {
                        while let Some(h) = inbox.recv().await {
                            match tokio::net::TcpStream::from_std(h.tcp) {
                                Ok(tcp) => w.spawn_conn(tcp, h.peer, h.tls, h.guard, h.load),
                                Err(e) => tracing::debug!("cannot take over a connection: {e}"),
                            }
                        }
                    });
                    for (l, tls) in listeners {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => {
                                tokio::spawn(accept_loop(
                                    l,
                                    tls,
                                    worker.clone(),
                                    conns.clone(),
                                    max_conns,
                                ));
                            }
                            Err(e) => error!("cannot register listener: {e}"),
                        }
                    }
                    let _ = stop.wait_for(|s| *s).await;
                });
                crate::fast::pool_clear();
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(handle);
    }
    drop(http);
    drop(https);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("offramp-ctl")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start control runtime: {e}"))?;
    let drained = rt.block_on(async {
        // Install every handler before saying "ready": an early SIGHUP must reload, not kill.
        let signals = Signals::install()?;
        tokio::spawn(control::serve(control_listener, daemon.clone()));
        tokio::spawn(daemon.clone().run_expiry());
        tokio::spawn(crate::watch::watch(daemon.clone(), signals.hup));
        if let Some(l) = admin_listener {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(crate::metrics::serve_admin(l));
                }
                Err(e) => error!("cannot start the admin listener: {e}"),
            }
        }
        if let Some(l) = demo_listener {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(demo::serve(l));
                }
                Err(e) => error!("cannot start the demo origin: {e}"),
            }
        }
        info!(pid = std::process::id(), threads, "ready");
        crate::sd_notify::notify("READY=1");
        let (mut term, mut int) = (signals.term, signals.int);
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
        crate::sd_notify::notify("STOPPING=1");
        // As reloaded: `grace` is not bound at start-up.
        let grace = daemon.config().server.grace;
        info!(open_connections = conns.open(), grace = %crate::duration::format(grace), "shutting down: draining connections");
        let _ = shutdown_tx.send(true);
        apps.h1.cleanup().await;
        apps.h2c.cleanup().await;
        apps.tls.cleanup().await;
        let deadline = Instant::now() + grace;
        while conns.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if conns.open() > 0 {
            warn!(open_connections = conns.open(), "grace period over, closing remaining connections");
        }
        Ok::<(), String>(())
    });
    drained?;
    let _ = stop_tx.send(true);
    control::cleanup(&daemon.config().server.control);
    for w in workers {
        let _ = w.join();
    }
    rt.shutdown_timeout(Duration::from_millis(100));
    info!("stopped");
    Ok(())
}

/// The signals offramp handles itself.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let make = |k| signal(k).map_err(|e| format!("cannot install signal handler: {e}"));
        Ok(Signals {
            hup: make(SignalKind::hangup())?,
            term: make(SignalKind::terminate())?,
            int: make(SignalKind::interrupt())?,
        })
    }
}

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
struct Balance {
    open: Vec<AtomicUsize>,
    inboxes: Vec<tokio::sync::mpsc::UnboundedSender<Handover>>,
}

/// A connection accepted by one worker for another (already counted as that one's).
struct Handover {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    tls: bool,
    guard: ConnGuard,
    load: WorkerLoad,
}

/// One worker thread's side of serving connections.
struct Worker {
    index: usize,
    apps: Arc<Apps>,
    shutdown: watch::Receiver<bool>,
    /// The fast path waits on a channel of this thread's own, so idle connections on
    /// different workers do not contend for one lock; a task forwards the drain signal.
    fast_shutdown: watch::Receiver<bool>,
    balance: Arc<Balance>,
}

/// Counts a connection as one worker's while it lives.
struct WorkerLoad(Arc<Balance>, usize);

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
    fn start(
        index: usize,
        apps: Arc<Apps>,
        shutdown: watch::Receiver<bool>,
        balance: Arc<Balance>,
    ) -> Worker {
        let (local_tx, local_rx) = watch::channel(false);
        tokio::spawn(crate::fast::date_ticker());
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
    fn spawn_conn(
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

async fn accept_loop(
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
