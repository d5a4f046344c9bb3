//! Uptime bookkeeping: the time each checked site spends up, down or neither, added to
//! its UTC days as it passes, kept in memory for the pages and written to the database
//! every `FLUSH_EVERY` and at shutdown.
//!
//! Every publish (and one every `REFRESH_EVERY` at the least) first accounts for the
//! time since the previous one with the class the site had then (the class only changes when something is published: a health verdict,
//! a flip, a window edge, a reload). Under maintenance (offline by a flip, the config
//! or a window) and before a site's first check the time counts as neither. When the
//! database cannot take a flush, that time is dropped, so the gap reads "no data" and
//! never as downtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::{Date, OffsetDateTime};
use tracing::warn;

use super::{now, publish, Daemon, Inner};
use crate::platform::uptime::{split_days, UptimeDay, DAYS_SHOWN};
use crate::state::Decision;

/// How often accrued time is written to the database.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);
/// How often the pages' uptime moves on between changes (today's bar during an outage).
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// What a stretch of time counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Up,
    Down,
    Neither,
}

/// Uptime in memory: the days shown (from the database and since), what is not yet
/// written, and each site's class since when.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Site → its days; shared with the published view.
    pub(super) days: Arc<BTreeMap<String, Vec<UptimeDay>>>,
    pending: BTreeMap<(String, Date), (u64, u64)>,
    marks: BTreeMap<String, (OffsetDateTime, Class)>,
    /// The last flush failed (logged once until one succeeds).
    failing: bool,
}

impl Book {
    /// Starts from the database's days.
    pub(super) fn loaded(days: BTreeMap<String, Vec<UptimeDay>>) -> Book {
        Book {
            days: Arc::new(days),
            ..Book::default()
        }
    }
}

/// The first day kept in memory (the days shown, and a margin for midnight).
pub(super) fn memory_from(t: OffsetDateTime) -> Date {
    t.date() - time::Duration::days(DAYS_SHOWN as i64 + 1)
}

/// Accounts for the time since each site's last mark, then marks every checked site
/// with the class it has now.
/// `decisions`: each site's at `t`, in config order.
pub(super) fn accrue(inner: &mut Inner, decisions: &[Decision], t: OffsetDateTime) {
    let mut classes = Vec::with_capacity(inner.config.sites.len());
    for (s, d) in inner.config.sites.iter().zip(decisions) {
        if s.health.is_none() {
            continue;
        }
        let serving = inner.health.verdict(&inner.config, &s.name).serving();
        let class = match serving {
            _ if d.under_maintenance() => Class::Neither,
            None => Class::Neither,
            Some(false) => Class::Down,
            Some(true) => Class::Up,
        };
        classes.push((s.name.clone(), class));
    }
    let book = &mut inner.uptime;
    let mut added: Vec<(String, Date, u64, u64)> = Vec::new();
    for (site, _) in &classes {
        if let Some((since, was)) = book.marks.get(site) {
            if *was != Class::Neither {
                for (day, ms) in split_days(*since, t) {
                    let (up, down) = if *was == Class::Up { (ms, 0) } else { (0, ms) };
                    added.push((site.clone(), day, up, down));
                }
            }
        }
    }
    book.marks = classes.into_iter().map(|(s, c)| (s, (t, c))).collect();
    if added.is_empty() {
        return;
    }
    let days = Arc::make_mut(&mut book.days);
    for (site, day, up, down) in added {
        let p = book.pending.entry((site.clone(), day)).or_default();
        p.0 += up;
        p.1 += down;
        add_day(days.entry(site).or_default(), day, up, down, true);
    }
    let from = memory_from(t);
    for list in days.values_mut() {
        list.retain(|d| d.day >= from);
    }
}

/// Adds (or with `add = false` takes back) time on `day` of one site's list.
/// The list is kept oldest first (as the database loads it).
fn add_day(list: &mut Vec<UptimeDay>, day: Date, up: u64, down: u64, add: bool) {
    let i = match list.binary_search_by_key(&day, |d| d.day) {
        Ok(i) => i,
        Err(i) => {
            list.insert(
                i,
                UptimeDay {
                    day,
                    up_ms: 0,
                    down_ms: 0,
                },
            );
            i
        }
    };
    let entry = &mut list[i];
    if add {
        entry.up_ms = entry.up_ms.saturating_add(up);
        entry.down_ms = entry.down_ms.saturating_add(down);
    } else {
        entry.up_ms = entry.up_ms.saturating_sub(up);
        entry.down_ms = entry.down_ms.saturating_sub(down);
    }
}

impl Daemon {
    /// Accounts for the time until now, writes what is pending, and publishes (so the
    /// day bars move on). Called every `FLUSH_EVERY` and at shutdown.
    pub fn flush_uptime(&self) {
        let mut inner = self.lock();
        let t = now();
        publish(&self.snapshot, &mut inner, t);
        let pending = std::mem::take(&mut inner.uptime.pending);
        let Some(store) = inner.store.clone() else {
            return;
        };
        let rows: Vec<(String, UptimeDay)> = pending
            .iter()
            .map(|((site, day), (up, down))| {
                (
                    site.clone(),
                    UptimeDay {
                        day: *day,
                        up_ms: *up,
                        down_ms: *down,
                    },
                )
            })
            .collect();
        let keep_days = inner
            .config
            .status
            .as_ref()
            .map_or(crate::config::DEFAULT_UPTIME_DAYS, |s| s.uptime_days);
        let keep_from = t.date() - time::Duration::days(i64::from(keep_days) - 1);
        match store.add_uptime(&rows, keep_from) {
            Ok(()) => {
                // What the database no longer keeps, the pages no longer show.
                let old = inner
                    .uptime
                    .days
                    .values()
                    .any(|l| l.iter().any(|d| d.day < keep_from));
                if old {
                    for list in Arc::make_mut(&mut inner.uptime.days).values_mut() {
                        list.retain(|d| d.day >= keep_from);
                    }
                    publish(&self.snapshot, &mut inner, t);
                }
                if inner.uptime.failing {
                    tracing::info!(target: "offramp::health", "uptime is written to the database again");
                }
                inner.uptime.failing = false;
            }
            Err(e) => {
                if !inner.uptime.failing {
                    warn!(target: "offramp::health", "uptime not recorded: {e}; the time shows as no data");
                }
                inner.uptime.failing = true;
                let days = Arc::make_mut(&mut inner.uptime.days);
                for ((site, day), (up, down)) in pending {
                    if let Some(list) = days.get_mut(&site) {
                        add_day(list, day, up, down, false);
                    }
                }
                publish(&self.snapshot, &mut inner, t);
            }
        }
    }

    /// Accounts and publishes every `REFRESH_EVERY`, and flushes every `FLUSH_EVERY`,
    /// for ever.
    pub async fn run_uptime(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let per_flush = (FLUSH_EVERY.as_secs() / REFRESH_EVERY.as_secs()).max(1);
        let mut n = 0u64;
        loop {
            tick.tick().await;
            n += 1;
            let d = self.clone();
            if n % per_flush == 0 {
                // The database write may take a moment: off the control runtime's thread.
                let _ = tokio::task::spawn_blocking(move || d.flush_uptime()).await;
            } else {
                d.refresh_uptime();
            }
        }
    }

    /// Accounts for the time until now and publishes, without writing (so today's bar
    /// follows an outage in progress).
    fn refresh_uptime(&self) {
        let mut inner = self.lock();
        let t = now();
        publish(&self.snapshot, &mut inner, t);
    }
}
