//! When to re-read the config: a file watch on the config file and the certs directory,
//! and SIGHUP. (`offramp reload` arrives through the control socket and calls the same
//! `Daemon::reload`.)
//!
//! The watch is on the file's directory, not the file, so editors that save by writing
//! a new file and renaming it over the old one (vim, `sed -i`, atomic writers) keep
//! being seen. Bursts of events are debounced into one reload. Owns: triggers only;
//! what a reload does is `Daemon::reload`.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tracing::{error, info, warn};

use crate::daemon::Daemon;

/// Quiet time after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// How long a config file that has vanished may take to come back before the reload
/// goes ahead (and fails): editors that move the old file away before writing the new
/// one leave a moment without it, and that moment is not an error.
pub const MISSING_GRACE: Duration = Duration::from_secs(1);

/// Starts the file watch now, before the caller reports ready (an edit made right
/// after start-up must not be missed), and returns the task that reloads on file
/// changes and on SIGHUP until the process exits.
pub fn watch(daemon: Arc<Daemon>, hup: Signal) -> impl Future<Output = ()> + Send + 'static {
    let config = daemon.config();
    let file = config.file.clone();
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let mut watch = FileWatch::start(&file, tx);
    match watch.as_mut() {
        Some(w) => w.set_certs(config.tls.as_ref().map(|t| t.dir.clone())),
        None => warn!("config file watch unavailable; reload with SIGHUP or `offramp reload`"),
    }
    run(daemon, hup, file, rx, watch)
}

async fn run(
    daemon: Arc<Daemon>,
    mut hup: Signal,
    file: PathBuf,
    mut rx: mpsc::UnboundedReceiver<()>,
    mut watch: Option<FileWatch>,
) {
    loop {
        tokio::select! {
            Some(()) = rx.recv() => {
                settle(&mut rx, &file).await;
                info!(target: "offramp::reload", file = %file.display(), "config or certificates changed, reloading");
                run_reload(&daemon).await;
            }
            Some(()) = hup.recv() => {
                info!(target: "offramp::reload", "SIGHUP received, reloading");
                run_reload(&daemon).await;
            }
            // Applied by `offramp reload`: only the certs directory below to follow.
            () = daemon.config_applied() => {}
        }
        // `server.certs` may have been edited: follow the directory now in force, or
        // renewals in the new one would go unnoticed.
        if let Some(w) = watch.as_mut() {
            w.set_certs(daemon.config().tls.as_ref().map(|t| t.dir.clone()));
        }
    }
}

/// Waits until the events stop for `DEBOUNCE` and the config file exists (for at most
/// `MISSING_GRACE` past the first quiet moment without it).
async fn settle(rx: &mut mpsc::UnboundedReceiver<()>, file: &Path) {
    let mut missing_since: Option<Instant> = None;
    loop {
        while let Ok(Some(())) = timeout(DEBOUNCE, rx.recv()).await {}
        if file.exists() {
            return;
        }
        let since = *missing_since.get_or_insert_with(Instant::now);
        let left = MISSING_GRACE.saturating_sub(since.elapsed());
        // Its re-creation is an event; without one in time, reload and report it gone.
        match timeout(left, rx.recv()).await {
            Ok(Some(())) => continue,
            _ => return,
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

/// Whether a watch event calls for a reload: a change to the config file (by `name`) or
/// to a certificate in `certs`, or events lost (an inotify queue overflow comes as a
/// rescan flag, or an event without paths): anything may have changed then.
fn triggers(ev: &notify::Event, name: &OsStr, certs: Option<&Path>) -> bool {
    if ev.need_rescan() || ev.paths.is_empty() {
        return true;
    }
    if matches!(ev.kind, notify::EventKind::Access(_)) {
        return false;
    }
    ev.paths.iter().any(|p| {
        p.file_name() == Some(name)
            || (certs.is_some_and(|d| p.parent() == Some(d)) && is_cert_file(p))
    })
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

/// The notify watcher on the config file's directory, plus the certs directory in force.
struct FileWatch {
    watcher: notify::RecommendedWatcher,
    config_dir: PathBuf,
    /// Read by the event handler to tell certificate events from the rest.
    certs: Arc<Mutex<Option<PathBuf>>>,
}

impl FileWatch {
    fn start(file: &Path, tx: mpsc::UnboundedSender<()>) -> Option<FileWatch> {
        let config_dir = file.parent()?.to_path_buf();
        let name: OsString = file.file_name()?.to_os_string();
        let certs: Arc<Mutex<Option<PathBuf>>> = Arc::default();
        let certs_seen = certs.clone();
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                let certs = certs_seen.lock().unwrap_or_else(PoisonError::into_inner);
                if triggers(&ev, &name, certs.as_deref()) {
                    if ev.need_rescan() || ev.paths.is_empty() {
                        warn!(target: "offramp::reload", "file events were lost (kernel queue overflow); reloading to catch up");
                    }
                    let _ = tx.send(());
                }
            }
            Err(e) => warn!(target: "offramp::reload", "file watch error: {e}"),
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                warn!(target: "offramp::reload", "cannot start the file watch: {e}");
                return None;
            }
        };
        if let Err(e) = watcher.watch(&config_dir, RecursiveMode::NonRecursive) {
            warn!(target: "offramp::reload", "cannot watch {}: {e}", config_dir.display());
            return None;
        }
        Some(FileWatch {
            watcher,
            config_dir,
            certs,
        })
    }

    /// Watches `dir` for certificate changes instead of the previous certs directory.
    fn set_certs(&mut self, dir: Option<PathBuf>) {
        let old = {
            let current = self.certs.lock().unwrap_or_else(PoisonError::into_inner);
            if *current == dir {
                return;
            }
            current.clone()
        };
        // Not under the lock: (un)watching waits for the thread that runs the handler,
        // which takes that lock.
        // The config directory stays watched whatever happens to the certs directory.
        if let Some(old) = old.filter(|d| *d != self.config_dir) {
            let _ = self.watcher.unwatch(&old);
        }
        if let Some(new) = dir.as_ref().filter(|d| **d != self.config_dir) {
            if let Err(e) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                warn!(target: "offramp::reload", "cannot watch the certs directory {}: {e}; reload with SIGHUP or `offramp reload` after renewing", new.display());
            }
        }
        *self.certs.lock().unwrap_or_else(PoisonError::into_inner) = dir;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, EventKind, Flag, ModifyKind};
    use notify::Event;

    #[test]
    fn lost_events_and_relevant_files_trigger_a_reload() {
        let name = OsStr::new("offramp.toml");
        let certs = Path::new("/etc/offramp/certs");
        let ev = |kind, paths: &[&str]| {
            paths
                .iter()
                .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
        };
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(triggers(
            &ev(modify, &["/etc/offramp/offramp.toml"]),
            name,
            Some(certs)
        ));
        assert!(triggers(
            &ev(
                EventKind::Create(CreateKind::File),
                &["/etc/offramp/certs/a.crt"]
            ),
            name,
            Some(certs)
        ));
        assert!(!triggers(
            &ev(modify, &["/etc/offramp/other.toml"]),
            name,
            Some(certs)
        ));
        assert!(!triggers(
            &ev(modify, &["/etc/offramp/certs/.a.key.tmp"]),
            name,
            Some(certs)
        ));
        assert!(!triggers(
            &ev(
                EventKind::Access(AccessKind::Any),
                &["/etc/offramp/offramp.toml"]
            ),
            name,
            None
        ));
        // An inotify queue overflow: a rescan flag, with or without a path.
        assert!(triggers(
            &Event::new(EventKind::Other).set_flag(Flag::Rescan),
            name,
            None
        ));
        assert!(triggers(
            &ev(modify, &["/etc/offramp/other.toml"]).set_flag(Flag::Rescan),
            name,
            None
        ));
        assert!(triggers(&Event::new(EventKind::Any), name, None));
    }
}
