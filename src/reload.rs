//! When to re-read the config: a file watch on the config file, and SIGHUP. (`offramp
//! reload` arrives through the control socket and calls the same `Daemon::reload`.)
//!
//! The watch is on the file's directory, not the file, so editors that save by writing
//! a new file and renaming it over the old one (vim, `sed -i`, atomic writers) keep
//! being seen. Bursts of events are debounced into one reload. Owns: triggers only;
//! what a reload does is `Daemon::reload`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::daemon::Daemon;

/// Quiet time after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Reloads on file changes and on SIGHUP until the process exits.
pub async fn watch(daemon: Arc<Daemon>, mut hup: Signal) {
    let config = daemon.config();
    let file = config.file.clone();
    // The certs directory as configured at start-up: HTTPS listeners (and so the need
    // for certificates) do not change without a restart.
    let certs = config.tls.as_ref().map(|t| t.dir.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let _watcher = start_watcher(file.clone(), certs, tx);
    if _watcher.is_none() {
        warn!("config file watch unavailable; reload with SIGHUP or `offramp reload`");
    }
    loop {
        tokio::select! {
            Some(()) = rx.recv() => {
                // Debounce: wait until events stop for DEBOUNCE.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                info!(target: "offramp::reload", file = %file.display(), "config or certificates changed, reloading");
                run_reload(&daemon).await;
            }
            Some(()) = hup.recv() => {
                info!(target: "offramp::reload", "SIGHUP received, reloading");
                run_reload(&daemon).await;
            }
        }
    }
}

async fn run_reload(daemon: &Arc<Daemon>) {
    let d = daemon.clone();
    // Reading the file and resolving upstream names block: keep them off the runtime.
    match tokio::task::spawn_blocking(move || d.reload()).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => {} // already logged and recorded by the daemon
        Err(e) => error!(target: "offramp::reload", "reload task failed: {e}"),
    }
}

/// Whether a file event in the certs directory can change the certificates.
fn is_cert_file(p: &Path) -> bool {
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let ext = p.extension().and_then(|e| e.to_str());
    !hidden && matches!(ext, Some("crt" | "key"))
}

fn start_watcher(
    file: PathBuf,
    certs: Option<PathBuf>,
    tx: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let dir = file.parent()?.to_path_buf();
    let name = file.file_name()?.to_os_string();
    let certs_dir = certs.clone();
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            let ours = ev.paths.iter().any(|p| {
                p.file_name() == Some(name.as_os_str())
                    || (certs_dir.as_deref().is_some_and(|d| p.parent() == Some(d))
                        && is_cert_file(p))
            });
            let relevant = !matches!(ev.kind, notify::EventKind::Access(_));
            if ours && relevant {
                let _ = tx.send(());
            }
        }
        Err(e) => warn!(target: "offramp::reload", "file watch error: {e}"),
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(target: "offramp::reload", "cannot start the file watch: {e}");
            return None;
        }
    };
    if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
        warn!(target: "offramp::reload", "cannot watch {}: {e}", dir.display());
        return None;
    }
    if let Some(c) = certs.filter(|c| *c != dir) {
        if let Err(e) = w.watch(&c, RecursiveMode::NonRecursive) {
            warn!(target: "offramp::reload", "cannot watch the certs directory {}: {e}; reload with SIGHUP or `offramp reload` after renewing", c.display());
        }
    }
    // The caller keeps the watcher alive: dropping it stops the watch.
    Some(w)
}
