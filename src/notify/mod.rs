//! Notifications (CONTRACT section 11): events go to `[[notify]]` targets, each from
//! its own queue in the database's outbox.
//!
//! The daemon writes events (`daemon::announce`) in the transaction of the change they
//! announce; this module delivers them. [`run`] keeps one task per target (`worker`)
//! in step with the config, and prunes what every target is done with. `send` is one
//! attempt in the target's format; `event` and `text` make the events' JSON and words.
//! `offramp notify list` and `notify test` are [`list`] and [`test`].

pub mod event;
pub mod send;
pub mod text;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::config::{Config, Notify};
use crate::store::Store;

/// How often events every target is done with are dropped from the outbox.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// The cursor name of the e-mail subscriptions' queue.
pub const MAIL_QUEUE: &str = "@mail";

/// Keeps one delivery task per configured target (restarted when its settings change
/// on a reload, stopped when it is removed), and prunes the outbox.
/// `configs`: the config in force, sent anew on every reload.
pub async fn run(store: Arc<Store>, mut configs: tokio::sync::watch::Receiver<Arc<Config>>) {
    let mut workers: HashMap<String, (Notify, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        let config = configs.borrow_and_update().clone();
        workers.retain(|name, (t, task)| {
            let keep = config.notify.iter().any(|n| n == t);
            if !keep {
                task.abort();
                tracing::info!(target: "offramp::notify", notify = %name, "notify target stopped");
            } else if task.is_finished() {
                // A queue never stops by itself: one that did (it could not make its
                // HTTP client) is started again at the next turn.
                tracing::warn!(target: "offramp::notify", notify = %name, "notify target's queue stopped; starting it again");
                return false;
            }
            keep
        });
        for t in &config.notify {
            if !workers.contains_key(&t.name) {
                let task = tokio::spawn(worker::run(store.clone(), t.clone()));
                workers.insert(t.name.clone(), (t.clone(), task));
            }
        }
        tokio::select! {
            r = configs.changed() => if r.is_err() { return },
            _ = prune.tick() => {
                let s = store.clone();
                let left = tokio::task::spawn_blocking(move || s.prune_events()).await;
                match left {
                    Ok(Ok(n)) => {
                        if let Some(m) = crate::metrics::get() {
                            m.notify.outbox(n);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(target: "offramp::notify", "{e}"),
                    Err(_) => {}
                }
            }
        }
    }
}

/// Runs `work` on a thread of its own (`offramp-notify`, with its own runtime) at a
/// lower CPU priority (nice +10) than the proxy and the control socket: deliveries are
/// background work.
pub fn spawn_thread(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let started = std::thread::Builder::new()
        .name("offramp-notify".into())
        .spawn(move || {
            // Linux: a thread's nice value is its own, and threads it starts (the
            // runtime's blocking pool) inherit it. Failing to lower it is harmless.
            // SAFETY: gettid has no arguments; setpriority on this thread's own id
            // changes nothing else.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid);
                if let Ok(tid) = libc::id_t::try_from(tid) {
                    libc::setpriority(libc::PRIO_PROCESS, tid, 10);
                }
            }
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work),
                Err(e) => tracing::error!(target: "offramp::notify", "cannot start the delivery runtime: {e}; nothing is delivered"),
            }
        });
    if let Err(e) = started {
        tracing::error!(target: "offramp::notify", "cannot start the delivery thread: {e}; nothing is delivered");
    }
}

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| crate::text::rfc3339(t.into()))
        .map_or(Value::Null, Value::String)
}

/// `offramp notify list`: every target with what it has pending, failed and last did.
pub fn list(config: &Config, store: &Store) -> Result<Value, String> {
    let mut out = Vec::new();
    for t in &config.notify {
        let row = store.target(&t.name).map_err(|e| e.to_string())?;
        let pending = store
            .pending(row.cursor, &worker::classes(t))
            .map_err(|e| e.to_string())?;
        let (failed, failures) = store.failures(&t.name, 20).map_err(|e| e.to_string())?;
        let status = if row.attempts > 0 {
            "retrying"
        } else if pending > 0 {
            "pending"
        } else {
            "ok"
        };
        out.push(json!({
            "id": t.name,
            "name": t.name,
            "format": t.format.as_str(),
            "status": status,
            "pending": pending,
            "failed": failed,
            "delivered": row.delivered,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "last_ok": rfc3339(row.last_ok),
            "next_attempt": if row.attempts > 0 { rfc3339(row.next_at) } else { Value::Null },
            "failures": failures.iter().map(|f| json!({
                "event": f.uid,
                "type": f.kind,
                "at": rfc3339(Some(f.at)),
                "error": f.error,
                "failed_at": rfc3339(Some(f.failed_at)),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

/// `offramp notify test NAME`: one attempt with a test event, now, outside the queue.
pub fn test(target: &Notify, store: Option<&Arc<Store>>) -> Result<Value, String> {
    let e = event::test(OffsetDateTime::now_utc());
    let client = send::client(target)?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "notify test needs the daemon's runtime".to_string())?;
    let r = handle.block_on(send::deliver(&client, target, store, &e.body));
    match r {
        Ok(status) => {
            tracing::info!(target: "offramp::notify", notify = %target.name, status, "test event delivered");
            Ok(json!({"name": target.name, "delivered": true, "status": status, "event": e.uid}))
        }
        Err(f) => {
            tracing::warn!(target: "offramp::notify", notify = %target.name, error = %f.error, "test event not delivered");
            Err(format!(
                "test event not delivered to {}: {}",
                target.name, f.error
            ))
        }
    }
}
