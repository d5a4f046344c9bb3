//! What health checks change: the state of each upstream as `health` reports it, each
//! site's verdict (up, partial, down), and through it the site's component status,
//! `auto_offline` (state `decide`s with `Decision::with_health`) and uptime. Every
//! change of a verdict is logged and published; the request path sees it only in the
//! snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::{info, warn};

use super::{now, publish, Daemon};
use crate::config::{Config, SiteState};
use crate::health::{Report, UpState, Verdict};
use crate::state::{Cause, HistoryEvent};

/// Every upstream's state as the checks last reported it.
#[derive(Debug, Default, Clone)]
pub(super) struct HealthBook {
    /// (site, upstream URL) → state; absent: not checked yet.
    upstreams: BTreeMap<(String, String), UpState>,
    /// Sites whose every upstream is down, since when.
    pub(super) down_since: BTreeMap<String, OffsetDateTime>,
}

impl HealthBook {
    /// A site's verdict under `config` (`Unknown` for a site without checks).
    pub(super) fn verdict(&self, config: &Config, site: &str) -> Verdict {
        let Some(s) = config.site(site).filter(|s| s.health.is_some()) else {
            return Verdict::Unknown;
        };
        Verdict::of(s.upstreams.iter().map(|u| {
            self.upstreams
                .get(&(site.to_string(), u.url.clone()))
                .copied()
        }))
    }

    /// Bit i set: upstream i of `site` is down (the request path skips it).
    pub(super) fn down_mask(&self, site: &crate::config::Site) -> u64 {
        let mut mask = 0u64;
        for (i, u) in site.upstreams.iter().enumerate().take(64) {
            if self.state(&site.name, &u.url) == Some(UpState::Down) {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The state an upstream had, for a checker that starts over after a reload.
    pub(super) fn state(&self, site: &str, upstream: &str) -> Option<UpState> {
        self.upstreams
            .get(&(site.to_string(), upstream.to_string()))
            .copied()
    }

    /// Keeps only what `config` still checks.
    pub(super) fn retain(&mut self, config: &Config) {
        let mut gone = Vec::new();
        self.upstreams.retain(|(site, url), _| {
            let kept = config
                .site(site)
                .is_some_and(|s| s.health.is_some() && s.upstreams.iter().any(|u| u.url == *url));
            if !kept {
                gone.push((site.clone(), url.clone()));
            }
            kept
        });
        let book = self.clone();
        self.down_since
            .retain(|site, _| book.verdict(config, site) == Verdict::Down);
        // An edit can leave a site with only upstreams already down.
        for s in &config.sites {
            if book.verdict(config, &s.name) == Verdict::Down {
                self.down_since
                    .entry(s.name.clone())
                    .or_insert_with(super::now);
            }
        }
        if let Some(m) = crate::metrics::get() {
            for (site, url) in &gone {
                m.health.forget_upstream(site, url);
            }
            for s in config.sites.iter().filter(|s| s.health.is_none()) {
                m.health.set_site(&s.name, None);
                for u in &s.upstreams {
                    m.health.forget_upstream(&s.name, &u.url);
                }
            }
            for s in config.sites.iter().filter(|s| s.health.is_some()) {
                m.health
                    .set_site(&s.name, book.verdict(config, &s.name).serving());
                for u in &s.upstreams {
                    m.health.set_upstream(
                        &s.name,
                        &u.url,
                        self.state(&s.name, &u.url).map(|st| st == UpState::Up),
                    );
                }
            }
        }
    }
}

impl Daemon {
    /// The state an upstream has now, for a checker that starts (over, after a reload).
    pub fn health_state(&self, site: &str, upstream: &str) -> Option<UpState> {
        self.lock().health.state(site, upstream)
    }

    /// Applies one upstream's change of state.
    pub fn health_report(&self, r: Report) {
        let mut inner = self.lock();
        let t = now();
        let Some(config_state) = inner
            .config
            .site(&r.site)
            .filter(|s| s.upstreams.iter().any(|u| u.url == r.upstream))
            .map(|s| s.state)
        else {
            return;
        };
        let before = inner.health.verdict(&inner.config, &r.site);
        inner
            .health
            .upstreams
            .insert((r.site.clone(), r.upstream.clone()), r.state);
        let after = inner.health.verdict(&inner.config, &r.site);
        match (&r.state, &r.failure) {
            (UpState::Down, Some(f)) => {
                warn!(target: "offramp::health", site = %r.site, upstream = %r.upstream, reason = f.reason.as_str(), "upstream is down: {}", f.detail)
            }
            (UpState::Down, None) => {
                warn!(target: "offramp::health", site = %r.site, upstream = %r.upstream, "upstream is down")
            }
            (UpState::Up, _) => {
                info!(target: "offramp::health", site = %r.site, upstream = %r.upstream, "upstream is up")
            }
        }
        if let Some(m) = crate::metrics::get() {
            m.health
                .set_upstream(&r.site, &r.upstream, Some(r.state == UpState::Up));
            m.health.set_site(&r.site, after.serving());
        }
        if before == after {
            // The site's verdict stands, but the upstreams the proxy skips changed.
            publish(&self.snapshot, &mut inner, t);
            return;
        }
        if after == Verdict::Down {
            inner.health.down_since.insert(r.site.clone(), t);
        } else {
            inner.health.down_since.remove(&r.site);
        }
        info!(target: "offramp::health", site = %r.site, status = after.status().map_or("unknown", |s| s.api()), "site health changed");
        // `auto_offline`: record the change of effective state it makes.
        let old = self.snapshot.load();
        let i = inner.config.sites.iter().position(|s| s.name == r.site);
        let was = i.and_then(|i| old.states.get(i)).map(|e| e.state);
        let d = super::decide(&inner, &r.site, config_state, t);
        if was.is_some_and(|w| w != d.state) {
            info!(target: "offramp::control", site = %r.site, state = d.state.as_str(), source = d.source.as_str(), "site is {} by its health checks", if d.state == SiteState::Offline { "offline" } else { "back online" });
            let mut data = inner.state.clone();
            data.record([HistoryEvent {
                at: t,
                site: r.site.clone(),
                state: d.state,
                cause: Cause::Health,
                reason: d.reason.clone(),
                until: None,
                by: None,
            }]);
            if let Err(e) = crate::state::save(&inner.state_path, &data) {
                // Only the history is new: health itself is never persisted.
                warn!(target: "offramp::control", "{e}");
            }
            inner.state = data;
        }
        publish(&self.snapshot, &mut inner, t);
    }

    /// A copy of the config in force each time one is applied, for the checkers.
    pub fn config_updates(&self) -> tokio::sync::watch::Receiver<Arc<Config>> {
        self.configs.subscribe()
    }
}
