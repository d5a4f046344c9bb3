//! One target's queue: a task that follows the outbox from the target's cursor, one
//! event at a time and in order, and never holds more than the event it is sending.
//! A failed attempt waits (0.5 s doubling up to 5 min, or a 429's `Retry-After`) and
//! is tried again, across restarts (the wait and the count are in the database); an
//! event older than `give_up_after` when it fails is given up on, with every other
//! pending event that old.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};

use super::send::{deliver, Failure};
use crate::config::Notify;
use crate::store::Store;

/// The first retry's wait; each further one doubles, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events read from the outbox at once (only to skip the ones a target does not take).
const BATCH: usize = 64;

/// The wait before attempt `attempts + 1` without jitter: 0.5 s · 2^attempts, at
/// most 5 minutes (the mail queue's too).
pub fn backoff_base(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.min(20))
        .min(MAX_BACKOFF)
}

/// The wait before attempt `attempts + 1`, with up to a tenth of jitter so that
/// targets failing together do not retry together.
pub fn backoff(attempts: u32) -> Duration {
    let base = backoff_base(attempts);
    let mut b = [0u8; 2];
    let jitter = match getrandom::fill(&mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b)) * (base.as_millis() as u64 / 10) / 65_535,
        Err(_) => 0,
    };
    base + Duration::from_millis(jitter)
}

/// The event classes `target` takes.
pub fn classes(target: &Notify) -> Vec<&'static str> {
    target.events.iter().map(|c| c.as_str()).collect()
}

fn wants(target: &Notify, class: &str) -> bool {
    target.events.iter().any(|c| c.as_str() == class)
}

/// Runs a database call off the runtime's threads.
async fn db<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let s = store.clone();
    crate::store::blocking(move || f(&s)).await
}

fn to_std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// How often a target's progress is written while it delivers: a crash re-sends at
/// most what was delivered in this time (at least once), and a busy target does not
/// make a database write per event.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// What a target has delivered and not yet written.
struct Progress {
    cursor: i64,
    /// The cursor as the database has it.
    written: i64,
    delivered: u64,
    last_ok: Option<OffsetDateTime>,
    flushed: std::time::Instant,
}

impl Progress {
    /// Delivered (or passed) more than the database says.
    fn dirty(&self) -> bool {
        self.cursor != self.written || self.delivered > 0
    }

    async fn flush(&mut self, store: &Arc<Store>, name: &str) {
        if !self.dirty() {
            return;
        }
        let (n, cursor, count, at) = (name.to_string(), self.cursor, self.delivered, self.last_ok);
        match db(store, move |s| s.progress(&n, cursor, count, at)).await {
            Ok(()) => {
                self.written = cursor;
                self.delivered = 0;
                self.last_ok = None;
                self.flushed = std::time::Instant::now();
            }
            // Kept for the next flush; a crash before it re-sends (at least once).
            Err(e) => warn!(target: "offramp::notify", notify = %name, "{e}"),
        }
    }
}

/// Delivers `target`'s events until the task is aborted (the target was removed or
/// changed by a reload).
pub async fn run(store: Arc<Store>, target: Notify) {
    let client = match super::send::client(&target) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "offramp::notify", notify = %target.name, "{e}");
            return;
        }
    };
    let name = target.name.clone();
    let mut wake = store.wake();
    let mut gauge_at = std::time::Instant::now() - Duration::from_secs(10);
    'fresh: loop {
        let n = name.clone();
        let row = match db(&store, move |s| s.target(&n)).await {
            Ok(r) => r,
            Err(e) => {
                warn!(target: "offramp::notify", notify = %name, "{e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let mut p = Progress {
            cursor: row.cursor,
            written: row.cursor,
            delivered: 0,
            last_ok: None,
            flushed: std::time::Instant::now(),
        };
        if let Some(next) = row.next_at.filter(|_| row.attempts > 0) {
            let wait = next - OffsetDateTime::now_utc();
            if wait.is_positive() {
                tokio::time::sleep(to_std(wait)).await;
            }
        }
        loop {
            // Marks the current value seen: an event written from here on wakes the wait.
            wake.borrow_and_update();
            if gauge_at.elapsed() >= Duration::from_secs(1) {
                gauge_at = std::time::Instant::now();
                if let Some(m) = crate::metrics::get() {
                    let (cursor, classes) = (p.cursor, classes(&target));
                    if let Ok(n) = db(&store, move |s| s.pending(cursor, &classes)).await {
                        m.notify.pending(&name, n);
                    }
                }
            }
            let cursor = p.cursor;
            let batch = match db(&store, move |s| s.events_after(cursor, BATCH)).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(target: "offramp::notify", notify = %name, "{e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                if let Some(m) = crate::metrics::get() {
                    m.notify.pending(&name, 0);
                }
                // Nothing to send. Progress is written once `FLUSH_EVERY` has passed
                // since the last write (a burst is one write, not one per event)...
                if p.dirty() {
                    let due = FLUSH_EVERY.saturating_sub(p.flushed.elapsed());
                    tokio::select! {
                        r = wake.changed() => {
                            if r.is_err() {
                                p.flush(&store, &name).await;
                                return;
                            }
                        }
                        () = tokio::time::sleep(due) => p.flush(&store, &name).await,
                    }
                    continue;
                }
                // ... then nothing happens until an event is written.
                if wake.changed().await.is_err() {
                    return;
                }
                continue;
            }
            for e in batch {
                if !wants(&target, &e.class) {
                    p.cursor = e.seq;
                    continue;
                }
                let t0 = std::time::Instant::now();
                let result = deliver(&client, &target, Some(&store), &e.body).await;
                let now = OffsetDateTime::now_utc();
                match result {
                    Ok(status) => {
                        p.cursor = e.seq;
                        p.delivered += 1;
                        p.last_ok = Some(now);
                        if let Some(m) = crate::metrics::get() {
                            m.notify.delivered(&name);
                        }
                        info!(target: "offramp::notify", notify = %name, event = %e.uid, kind = %e.kind, status, ms = t0.elapsed().as_millis() as u64, "delivered");
                        if p.flushed.elapsed() >= FLUSH_EVERY {
                            p.flush(&store, &name).await;
                        }
                    }
                    Err(f) => {
                        // What went before it is written first: the failure (and its
                        // count) is this event's.
                        let attempts = if p.cursor == row.cursor {
                            row.attempts
                        } else {
                            0
                        };
                        p.flush(&store, &name).await;
                        failed(&store, &target, &e, p.cursor, attempts, f, now).await;
                        continue 'fresh;
                    }
                }
            }
        }
    }
}

/// Records a failed attempt: the next one's time, or giving up on what is too old.
async fn failed(
    store: &Arc<Store>,
    target: &Notify,
    e: &crate::store::StoredEvent,
    from: i64,
    attempts: u32,
    f: Failure,
    now: OffsetDateTime,
) {
    let name = target.name.clone();
    if let Some(m) = crate::metrics::get() {
        m.notify.failed(&name);
    }
    let give_up = time::Duration::try_from(target.give_up_after).unwrap_or(time::Duration::MAX);
    if now - e.at >= give_up {
        let cutoff = now - give_up;
        let (n, err, classes) = (name.clone(), f.error.clone(), classes(target));
        match db(store, move |s| {
            s.give_up(&n, from, &classes, cutoff, &err, now)
        })
        .await
        {
            Ok(count) => {
                if let Some(m) = crate::metrics::get() {
                    m.notify.given_up(&name, count);
                }
                warn!(target: "offramp::notify", notify = %name, events = count, error = %f.error, give_up_after = %crate::duration::format(target.give_up_after), "gave up on events older than give_up_after");
            }
            Err(err) => warn!(target: "offramp::notify", notify = %name, "{err}"),
        }
        return;
    }
    // A 429's Retry-After is followed, but no sooner than the backoff (no hot loop on
    // `Retry-After: 0`) and no later than the backoff's longest wait, nor past the time
    // this event is given up on (a target cannot park its queue for a year).
    let left = give_up
        .checked_sub(now - e.at)
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::ZERO);
    let floor = backoff(attempts);
    let wait = match f.retry_after {
        Some(r) => r
            .clamp(floor.min(MAX_BACKOFF), MAX_BACKOFF.max(floor))
            .min(left.max(floor)),
        None => floor,
    };
    let next = now
        .checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::ZERO))
        .unwrap_or(now);
    let (n, err) = (name.clone(), f.error.clone());
    if let Err(err) = db(store, move |s| s.attempt_failed(&n, &err, next)).await {
        warn!(target: "offramp::notify", notify = %name, "{err}");
        tokio::time::sleep(wait).await;
    }
    warn!(target: "offramp::notify", notify = %name, event = %e.uid, kind = %e.kind, attempt = attempts + 1, error = %f.error, retry_in_ms = wait.as_millis() as u64, "delivery failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let a = backoff(0);
        assert!(
            a >= Duration::from_millis(500) && a <= Duration::from_millis(550),
            "{a:?}"
        );
        let b = backoff(3);
        assert!(
            b >= Duration::from_secs(4) && b <= Duration::from_millis(4400),
            "{b:?}"
        );
        let c = backoff(40);
        assert!(
            c >= MAX_BACKOFF && c <= MAX_BACKOFF + MAX_BACKOFF / 10,
            "{c:?}"
        );
    }
}
