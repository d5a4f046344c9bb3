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

use pingora::server::configuration::ServerConf;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::daemon::Daemon;
use crate::proxy::Proxy;
use crate::request::Scheme;
use crate::{control, demo};

mod worker;

use worker::{accept_loop, Balance, Worker};
pub use worker::{Apps, FIRST_BYTES_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};

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
    ensure_parent_dir(&config.server.data);
    // The database holds history that cannot be rebuilt: one that cannot be used stops
    // the start, naming the file, and is never replaced.
    let store = crate::store::Store::open(&config.server.data).map_err(|e| e.to_string())?;
    let loaded = store.load().map_err(|e| e.to_string())?;
    let control_listener = control::bind(&config.server.control, config.server.control_group)?;

    let (daemon, warnings) = Daemon::new(config);
    daemon.attach_store(store, loaded);
    // The config's own warnings (a certificate expiring soon...): the same level as on
    // a reload.
    for w in warnings {
        warn!("{w}");
    }
    let daemon = Arc::new(daemon);
    // The subscription pages reach the database through it.
    let subscriptions = daemon.store().map(|store| crate::subscribe::Handle {
        store,
        snapshot: daemon.snapshot(),
        configs: daemon.config_updates(),
    });
    if let Some(h) = &subscriptions {
        crate::subscribe::install(h.clone());
    }
    let tls_acceptor = match daemon.resolver() {
        Some(r) => Some(Arc::new(
            pingora::listeners::tls::Acceptor::from_server_config(Arc::new(
                crate::tls::server_config(r)?,
            )),
        )),
        None if !https.is_empty() => return Err("HTTPS listeners without certificates".into()),
        None => None,
    };
    // admin_tls: the admin listener (and the write API's tokens) over TLS, with the same
    // certificates, HTTP/1.1 only.
    let admin_tls = match (daemon.config().server.admin_tls, daemon.resolver()) {
        (true, Some(r)) => {
            let mut c = crate::tls::server_config(r)?;
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(c)))
        }
        (true, None) => return Err("admin_tls needs HTTPS listeners with certificates".into()),
        (false, _) => None,
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
        fast: crate::fast::FastPath::new(daemon.snapshot(), https_port),
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
        tokio::spawn(daemon.clone().run_uptime());
        // Deliveries (targets, and e-mail subscriptions' mails) on a thread of their
        // own at a lower priority: a burst of them never slows a flip or a request.
        if let Some(store) = daemon.store() {
            let configs = daemon.config_updates();
            crate::notify::spawn_thread(async move {
                let mail = subscriptions.map(|h| tokio::spawn(crate::subscribe::run_mail(h)));
                crate::notify::run(store, configs).await;
                if let Some(m) = mail {
                    let _ = m.await;
                }
            });
        }
        // Health checks: the checkers report changes, the daemon applies them.
        let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let d = daemon.clone();
        tokio::spawn(crate::health::run(
            daemon.config_updates(),
            reports_tx,
            move |site: &str, upstream: &str| d.health_state(site, upstream),
        ));
        let d = daemon.clone();
        tokio::spawn(async move {
            while let Some(r) = reports.recv().await {
                d.health_report(r);
            }
        });
        tokio::spawn(crate::watch::watch(daemon.clone(), signals.hup));
        if let Some(l) = admin_listener {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(crate::admin::serve_admin(
                        l,
                        daemon.clone(),
                        admin_tls.clone(),
                    ));
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
    // The uptime accrued since the last flush is not lost with the process.
    daemon.flush_uptime();
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
