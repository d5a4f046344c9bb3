//! Active health checks of every upstream (CONTRACT section 10): what is checked, how
//! often, and when an upstream counts as down (`fall` failures in a row) or up again
//! (`rise` passes in a row).
//!
//! Owns: the checker tasks (one per site and upstream, jittered, at most
//! `MAX_CONCURRENT` checks at once, each with its own connection and timeout) and the
//! up/down state machine. Reports each change of an upstream's state on a channel; what
//! a change means for a site (its component status, `auto_offline`, uptime) is the
//! daemon's, and the request path sees it only in the snapshot the daemon publishes.
//! The checks themselves are `probe`'s.

pub mod probe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::config::{Config, Health, HostPattern, Site};
use probe::{Failure, Probe, Reason};

/// Checks in flight at once, whatever the number of upstreams.
pub const MAX_CONCURRENT: usize = 32;

/// An upstream's state as the checks last decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpState {
    Up,
    Down,
}

/// A change of one upstream's state, for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub site: String,
    /// The upstream as written in the config (`http://10.1.1.4:8080`).
    pub upstream: String,
    pub state: UpState,
    /// Why the last check failed (`Down` only).
    pub failure: Option<Failure>,
}

/// A site as its checks see it: the combination of its upstreams' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No upstream checked yet, or checks off.
    Unknown,
    /// Every upstream checked is up.
    Up,
    /// Some upstreams down, some up.
    Partial,
    /// Every upstream down.
    Down,
}

impl Verdict {
    /// The verdict of a site whose upstreams are in `states` (`None`: not yet checked).
    pub fn of(states: impl IntoIterator<Item = Option<UpState>>) -> Verdict {
        let (mut up, mut down, mut unknown) = (0, 0, 0);
        for s in states {
            match s {
                Some(UpState::Up) => up += 1,
                Some(UpState::Down) => down += 1,
                None => unknown += 1,
            }
        }
        match (up, down, unknown) {
            (0, 0, _) => Verdict::Unknown,
            (_, 0, _) => Verdict::Up,
            (0, _, 0) => Verdict::Down,
            _ => Verdict::Partial,
        }
    }

    /// Whether visitors can be served (at least one upstream up): what
    /// `offramp_site_up` and uptime count; `None` before any check.
    pub fn serving(self) -> Option<bool> {
        match self {
            Verdict::Unknown => None,
            Verdict::Down => Some(false),
            Verdict::Up | Verdict::Partial => Some(true),
        }
    }

    /// The component status it gives (`None`: it says nothing).
    pub fn status(self) -> Option<crate::platform::ComponentStatus> {
        use crate::platform::ComponentStatus as S;
        match self {
            Verdict::Unknown => None,
            Verdict::Up => Some(S::Operational),
            Verdict::Partial => Some(S::PartialOutage),
            Verdict::Down => Some(S::MajorOutage),
        }
    }
}

/// The `Host` checks of `site` send: its first exact host, else its first wildcard's
/// base (`*.x.example` → `x.example`).
pub fn check_host(site: &Site) -> String {
    site.hosts
        .iter()
        .find_map(|h| match h {
            HostPattern::Exact(n) => Some(n.clone()),
            HostPattern::Wildcard(_) => None,
        })
        .or_else(|| {
            site.hosts.iter().find_map(|h| match h {
                HostPattern::Wildcard(base) => Some(base.clone()),
                HostPattern::Exact(_) => None,
            })
        })
        .unwrap_or_default()
}

/// One upstream to check, and how.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    site: String,
    host: String,
    upstream: crate::config::Upstream,
    health: Health,
    connect_timeout: Duration,
    tls_verify: bool,
}

fn targets(config: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    for s in &config.sites {
        let Some(h) = &s.health else { continue };
        for u in &s.upstreams {
            out.push(Target {
                site: s.name.clone(),
                host: check_host(s),
                upstream: u.clone(),
                health: h.clone(),
                connect_timeout: s.connect_timeout,
                tls_verify: s.tls_verify,
            });
        }
    }
    out
}

/// Checks the upstreams of the config in `configs` until the sender is gone, starting
/// over (with each upstream's state kept by the daemon) when a reload changes what is
/// checked. `initial` is the state each upstream had when its checks start.
pub async fn run(
    mut configs: watch::Receiver<Arc<Config>>,
    reports: mpsc::UnboundedSender<Report>,
    initial: impl Fn(&str, &str) -> Option<UpState> + Send + 'static,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut current: Vec<Target> = Vec::new();
    let mut tasks = JoinSet::new();
    loop {
        let next = targets(&configs.borrow_and_update());
        if next != current {
            tasks.abort_all();
            for t in &next {
                let start = initial(&t.site, &t.upstream.url);
                tasks.spawn(check_loop(t.clone(), start, limit.clone(), reports.clone()));
            }
            current = next;
        }
        if configs.changed().await.is_err() {
            tasks.abort_all();
            return;
        }
    }
}

/// `fall` failures in a row make an upstream down, `rise` passes in a row up again; the
/// first check of an upstream never seen decides it at once (up on a pass, down only
/// after `fall` failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub state: Option<UpState>,
    passes: u32,
    failures: u32,
}

impl Counter {
    /// Starting from `state` (`None`: never checked).
    pub fn new(state: Option<UpState>) -> Counter {
        Counter {
            state,
            passes: 0,
            failures: 0,
        }
    }

    /// Counts one check; the new state when it changed.
    pub fn record(&mut self, passed: bool, health: &Health) -> Option<UpState> {
        if passed {
            self.passes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.passes = 0;
        }
        let next = match self.state {
            None if passed => Some(UpState::Up),
            Some(UpState::Down) if passed && self.passes >= health.rise => Some(UpState::Up),
            None | Some(UpState::Up) if !passed && self.failures >= health.fall => {
                Some(UpState::Down)
            }
            _ => None,
        };
        if let Some(n) = next {
            self.state = Some(n);
        }
        next
    }
}

async fn check_loop(
    t: Target,
    start: Option<UpState>,
    limit: Arc<Semaphore>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let probe = match Probe::new(
        &t.upstream,
        &t.host,
        &t.health,
        t.connect_timeout,
        t.tls_verify,
    ) {
        Ok(p) => p,
        Err(e) => {
            warn!(target: "offramp::health", site = %t.site, upstream = %t.upstream.url, "{e}; not checking it");
            return;
        }
    };
    let interval = t.health.interval;
    // Jittered within one interval, so many upstreams are not all checked together.
    let jitter = interval.mul_f64(random_fraction());
    let mut next = tokio::time::Instant::now() + jitter;
    let mut counter = Counter::new(start);
    let mut probe = probe;
    let metrics = crate::metrics::get();
    let histogram = metrics.map(|m| m.health.check_histogram(&t.site));
    loop {
        tokio::time::sleep_until(next).await;
        next += interval;
        let outcome = {
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            let began = Instant::now();
            let result = probe.check().await;
            if let Some(h) = &histogram {
                h.observe(began.elapsed().as_secs_f64());
            }
            result
        };
        let failure = match outcome {
            Ok(code) if t.health.accepts(code) => None,
            Ok(code) => Some(Failure {
                reason: Reason::Status,
                detail: format!("answered {code}, expected {}", show_expect(&t.health)),
            }),
            Err(f) => Some(f),
        };
        if let (Some(f), Some(m)) = (&failure, metrics) {
            m.health
                .count_check_failure(&t.site, &t.upstream.url, f.reason.as_str());
        }
        if let Some(f) = &failure {
            debug!(target: "offramp::health", site = %t.site, upstream = %t.upstream.url, reason = f.reason.as_str(), "check failed: {}", f.detail);
        }
        if let Some(state) = counter.record(failure.is_none(), &t.health) {
            let report = Report {
                site: t.site.clone(),
                upstream: t.upstream.url.clone(),
                state,
                failure,
            };
            if reports.send(report).is_err() {
                return;
            }
        }
        // A check that took longer than the interval is followed by the next at once,
        // never by a burst catching up.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

fn show_expect(h: &Health) -> String {
    h.expect
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A fraction in [0, 1) from the OS's randomness (0 if it has none to give).
fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_and_rise() {
        let h = Health {
            fall: 3,
            rise: 2,
            ..Health::default()
        };
        let mut c = Counter::new(None);
        assert_eq!(c.record(true, &h), Some(UpState::Up));
        assert_eq!(c.record(false, &h), None);
        assert_eq!(c.record(false, &h), None);
        assert_eq!(c.record(true, &h), None, "a pass resets the failures");
        assert_eq!(c.record(false, &h), None);
        assert_eq!(c.record(false, &h), None);
        assert_eq!(c.record(false, &h), Some(UpState::Down));
        assert_eq!(c.record(false, &h), None);
        assert_eq!(c.record(true, &h), None);
        assert_eq!(c.record(true, &h), Some(UpState::Up));
        let mut never = Counter::new(None);
        assert_eq!(never.record(false, &h), None);
        assert_eq!(never.record(false, &h), None);
        assert_eq!(never.record(false, &h), Some(UpState::Down));
    }

    #[test]
    fn verdicts() {
        use UpState::*;
        assert_eq!(Verdict::of([None, None]), Verdict::Unknown);
        assert_eq!(Verdict::of([Some(Up), None]), Verdict::Up);
        assert_eq!(Verdict::of([Some(Up), Some(Down)]), Verdict::Partial);
        assert_eq!(Verdict::of([Some(Down), None]), Verdict::Partial);
        assert_eq!(Verdict::of([Some(Down), Some(Down)]), Verdict::Down);
        assert_eq!(Verdict::of([]), Verdict::Unknown);
    }
}
