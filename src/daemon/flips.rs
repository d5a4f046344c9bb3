//! Runtime flips: `offline` / `online` for named sites or all of them, `reset` back to
//! the config file's states, and expiring `--until` overrides on time. Owns the rules of
//! a flip request (known sites, a future `--until`); precedence between overrides is
//! `state`'s, persisting and publishing is `Daemon::commit`'s.

use std::sync::Arc;

use time::OffsetDateTime;
use tracing::{info, warn};

use super::report::{site_statuses, SiteStatus};
use super::{check_sites, now, publish, Daemon, Inner};
use crate::config::SiteState;
use crate::state::{self, Cause, ConfigMark, Override, Source, Who};

/// Which sites an action touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sites(Vec<String>),
    All,
}

/// When a runtime override ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At this time.
    At(OffsetDateTime),
    /// This long after the change is made (the same instant as its `since`).
    After(time::Duration),
}

impl Until {
    /// The end time for a change made at `t`; `None` when out of range.
    pub fn at(self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Until::At(u) => Some(u),
            Until::After(d) => t.checked_add(d),
        }
    }
}

/// Parses `--until`: a duration from the moment the change is made, or an RFC 3339 time.
pub fn parse_until_spec(s: &str) -> Result<Until, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(Until::At(t.to_offset(time::UtcOffset::UTC)));
    }
    match crate::duration::parse(s) {
        Ok(d) if d.is_zero() => Err("--until must be in the future".into()),
        Ok(d) => time::Duration::try_from(d)
            .map(Until::After)
            .map_err(|_| format!("--until {s:?} is too far in the future")),
        Err(_) => Err(format!(
            "invalid --until {s:?}: use a duration (90s, 30m, 2h) or an RFC 3339 time (2026-11-22T18:00:00Z)"
        )),
    }
}

/// Parses `--until` into the time it names from `now`, which must be in the future;
/// exact (a duration of `2s` ends 2 s after `now`, not at a rounded second).
pub fn parse_until(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let t = parse_until_spec(s)?
        .at(now)
        .ok_or_else(|| format!("--until {s:?} is too far in the future"))?;
    if t <= now {
        return Err(format!("--until {s:?} is in the past"));
    }
    Ok(t)
}

impl Daemon {
    /// Flips sites (or all) to `state`. Persisted before it is applied and answered.
    pub fn flip(
        &self,
        state: SiteState,
        target: &Target,
        reason: Option<String>,
        until: Option<Until>,
        by: impl Into<Who>,
    ) -> Result<Vec<SiteStatus>, String> {
        let by: Who = by.into();
        let mut inner = self.lock();
        let t = now();
        let until = match until.map(|u| u.at(t)) {
            Some(None) => return Err("--until is too far in the future".into()),
            Some(Some(u)) => Some(u),
            None => None,
        };
        if let Target::Sites(names) = target {
            if names.is_empty() {
                return Err("name at least one site, or use --all".into());
            }
            check_sites(&inner.config, names)?;
        }
        if let Some(u) = until {
            if u <= t {
                return Err("--until is in the past".into());
            }
        }
        let mut data = inner.state.clone();
        data.prune_expired(t);
        let make = |seq| Override {
            state,
            seq,
            since: t,
            until,
            reason: reason.clone(),
            by: by.uid,
            by_name: by.name.clone(),
        };
        match target {
            Target::All => {
                let seq = data.next_seq();
                data.global = Some(make(seq));
            }
            Target::Sites(names) => {
                for n in names {
                    let seq = data.next_seq();
                    data.sites.insert(n.clone(), make(seq));
                }
            }
        }
        self.commit(&mut inner, data, t, Cause::Flip)?;
        count(state.as_str());
        info!(
            target: "offramp::control",
            action = state.as_str(),
            sites = %target_label(target),
            reason = reason.as_deref().unwrap_or(""),
            until = until.and_then(|u| crate::text::rfc3339(u.into())).as_deref().unwrap_or(""),
            by = by.uid.map_or(-1, i64::from),
            who = %by.label(),
            "site state changed"
        );
        let names = target_names(&inner, target);
        Ok(site_statuses(&inner, &names, t))
    }

    /// Returns sites to their config state: per site (the latest action touching them,
    /// so a global override in force no longer covers them until the next `--all`), or
    /// every site with `All`, dropping every runtime override, global included.
    pub fn reset(&self, target: &Target, by: impl Into<Who>) -> Result<Vec<SiteStatus>, String> {
        let by: Who = by.into();
        let mut inner = self.lock();
        let t = now();
        if let Target::Sites(names) = target {
            if names.is_empty() {
                return Err("name at least one site, or use --all".into());
            }
            check_sites(&inner.config, names)?;
        }
        let mut data = inner.state.clone();
        // Sites not decided by their config now: the reset is what decides them from here.
        let back: Vec<(String, SiteState)> = target_names(&inner, target)
            .iter()
            .filter_map(|n| inner.config.site(n))
            .filter(|s| data.decide(&s.name, s.state, t).source != Source::Config)
            .map(|s| (s.name.clone(), s.state))
            .collect();
        match target {
            Target::All => {
                data.global = None;
                data.sites.clear();
            }
            Target::Sites(names) => {
                for n in names {
                    data.sites.remove(n);
                }
            }
        }
        for (name, state) in back {
            let seq = data.next_seq();
            data.config.insert(
                name,
                ConfigMark {
                    state,
                    seq,
                    since: Some(t),
                },
            );
        }
        self.commit(&mut inner, data, t, Cause::Reset)?;
        count("reset");
        info!(
            target: "offramp::control",
            action = "reset",
            sites = %target_label(target),
            by = by.uid.map_or(-1, i64::from),
            who = %by.label(),
            "runtime overrides dropped"
        );
        let names = target_names(&inner, target);
        Ok(site_statuses(&inner, &names, t))
    }

    /// Expires `--until` overrides on time: sleeps until the next one, then republishes.
    pub async fn run_expiry(self: Arc<Self>) {
        loop {
            let next = {
                let inner = self.lock();
                let t = now();
                let edge = super::windows::next_edge(&inner, t);
                [inner.state.next_expiry(t), edge]
                    .into_iter()
                    .flatten()
                    .min()
            };
            let wait = next.map(|u| {
                let d = u - now();
                std::time::Duration::from_micros(
                    d.whole_microseconds().clamp(0, i128::from(u64::MAX)) as u64,
                )
            });
            match wait {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {
                            self.expire();
                            self.window_edges();
                        }
                        _ = self.wake_expiry.notified() => {}
                    }
                }
                None => self.wake_expiry.notified().await,
            }
        }
    }

    fn expire(&self) {
        let mut inner = self.lock();
        let t = now();
        let mut data = inner.state.clone();
        let expired: Vec<String> = data
            .sites
            .iter()
            .filter(|(_, o)| o.expired(t))
            .map(|(n, _)| n.clone())
            .chain(
                data.global
                    .iter()
                    .filter(|g| g.expired(t))
                    .map(|_| "--all".to_string()),
            )
            .collect();
        if !data.prune_expired(t) {
            return;
        }
        data.record(self.transitions(
            &inner,
            &inner.config,
            &data,
            &inner.windows,
            t,
            Cause::Expired,
        ));
        if let Err(e) = state::save(&inner.state_path, &data) {
            // Expired overrides are ignored when deciding anyway; the file catches up later.
            warn!(target: "offramp::control", "{e}");
        }
        inner.state = data;
        publish(&self.snapshot, &mut inner, t);
        count("expired");
        info!(target: "offramp::control", sites = %expired.join(","), "runtime override expired");
    }
}

fn target_label(target: &Target) -> String {
    match target {
        Target::All => "--all".into(),
        Target::Sites(n) => n.join(","),
    }
}

fn target_names(inner: &Inner, target: &Target) -> Vec<String> {
    match target {
        Target::All => inner.config.sites.iter().map(|s| s.name.clone()).collect(),
        Target::Sites(n) => n.clone(),
    }
}

fn count(action: &str) {
    if let Some(m) = crate::metrics::get() {
        m.flips.with_label_values(&[action]).inc();
    }
}
