//! The running daemon's single owner of mutable state: the config in force, the runtime
//! overrides, the last reload result, and the snapshot the proxy reads.
//!
//! Every change (flip, reset, reload, expiry) goes through here under one lock: compute
//! the new state, persist it when it must survive a restart, then publish a new
//! `Snapshot` with one atomic swap. The data path never takes the lock.
//!
//! This file owns the `Daemon` itself: start-up from the state file, the lock, and
//! committing and publishing a change. Flips, resets and expiry are in `flips`, config
//! reloads in `reload`, what `status` and `reload` answer in `report`, and the snapshot
//! the proxy reads (with the status page's view) is built in `view`. Precedence between
//! overrides is `state`'s; serving the snapshot is the data path's.

mod alerts;
mod announce;
mod flips;
mod health;
mod incidents;
mod platform;
mod reload;
mod report;
mod subscribers;
mod uptime;
mod view;
mod windows;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::config::{Config, SiteState};
use crate::routes::RouteTable;
use crate::snapshot::Snapshot;
use crate::state::{self, Cause, ConfigMark, Decision, HistoryEvent, Override, StateData};
use crate::tls::Resolver;

pub use flips::{parse_until, parse_until_spec, Target, Until};
pub use report::{GlobalStatus, ReloadReport, ReloadStatus, SiteStatus, StatusReport};

struct Inner {
    config: Arc<Config>,
    table: Arc<RouteTable>,
    state: StateData,
    state_path: PathBuf,
    last_reload: Option<ReloadStatus>,
    /// The automatic maintenance windows of `platform`'s maintenances, in force or not.
    windows: Vec<crate::platform::Window>,
    /// The status platform's records, as the database holds them.
    platform: platform::Records,
    /// The database; `None` until `attach_store` (a daemon without one refuses the
    /// platform's commands, flips still work).
    store: Option<Arc<crate::store::Store>>,
    /// Each upstream's state as the health checks last reported it.
    health: health::HealthBook,
    /// Time up and down of each checked site, by day.
    uptime: uptime::Book,
    /// What was last announced to notification targets.
    announced: announce::Announced,
}

/// The daemon core; shared by the control socket, the reloader and the expiry timer.
pub struct Daemon {
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The HTTPS certificate resolver, when offramp started with HTTPS listeners.
    resolver: Option<Arc<Resolver>>,
    inner: Mutex<Inner>,
    /// Held for a whole reload (read, validate, apply) so that two reloads racing (the
    /// file watch and `offramp reload`) cannot apply an older read over a newer one.
    reloading: Mutex<()>,
    /// Signalled after every applied config, for the file watch to follow `server.certs`.
    applied: tokio::sync::Notify,
    wake_expiry: tokio::sync::Notify,
    /// The config in force, for the health checkers (sent anew on every reload).
    configs: tokio::sync::watch::Sender<Arc<Config>>,
}

/// Now, exactly: `--until` and expiry are decided on this, never on a rounded time
/// (rounding is for display only), so `status` and the proxy agree.
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Daemon {
    /// Starts from a validated config and the state file it names. A state file that
    /// cannot be used is moved aside and logged at error level; offramp then
    /// starts from the config alone rather than refusing to serve.
    pub fn new(config: Config) -> (Daemon, Vec<String>) {
        let warnings = config.warnings.clone();
        let resolver = config
            .tls
            .clone()
            .map(|store| Arc::new(Resolver::new(store)));
        let state_path = config.server.state.clone();
        let mut data = match state::load(&state_path) {
            Ok(d) => d,
            Err(e) => {
                let aside = match state::quarantine(&state_path) {
                    Ok(p) => format!("moved aside to {}", p.display()),
                    Err(qe) => format!("could not be moved aside: {qe}"),
                };
                // Loud: flips made before were lost.
                tracing::error!("{e}; {aside}; starting from the config file's states");
                StateData::default()
            }
        };
        let t = now();
        for (name, o) in data.sites.iter().filter(|(_, o)| o.expired(t)) {
            log_expired_while_stopped(name, o);
        }
        if let Some(g) = data.global.as_ref().filter(|g| g.expired(t)) {
            log_expired_while_stopped("--all", g);
        }
        data.prune_expired(t);
        // Edits made while offramp was stopped are routine: told, not alarmed about.
        for name in data.sites.keys() {
            if config.site(name).is_none() {
                warn!(target: "offramp::control", "dropping the runtime override of site {name:?}: it is no longer in the config");
            }
        }
        data.sites.retain(|name, _| config.site(name).is_some());
        data.config.retain(|name, _| config.site(name).is_some());
        let mut edited = Vec::new();
        for site in &config.sites {
            match data.config.get(&site.name) {
                Some(mark) if mark.state == site.state => {}
                Some(_) => {
                    // The file was edited while offramp was down: the edit is the latest action.
                    let seq = data.next_seq();
                    data.config.insert(
                        site.name.clone(),
                        ConfigMark {
                            state: site.state,
                            seq,
                            since: Some(t),
                        },
                    );
                    if data.sites.remove(&site.name).is_some() {
                        edited.push(site.name.clone());
                    }
                }
                None => {
                    data.config.insert(
                        site.name.clone(),
                        ConfigMark {
                            state: site.state,
                            seq: 0,
                            since: Some(t),
                        },
                    );
                }
            }
        }
        for name in edited {
            warn!(target: "offramp::control", "dropping the runtime override of site {name:?}: its state was edited in the config file while offramp was stopped, and the edit is the latest action");
        }
        let table = Arc::new(RouteTable::build(&config));
        let inner = Inner {
            config: Arc::new(config),
            table,
            state: data,
            state_path,
            last_reload: None,
            windows: Vec::new(),
            platform: platform::Records::default(),
            store: None,
            health: health::HealthBook::default(),
            uptime: uptime::Book::default(),
            announced: announce::Announced::default(),
        };
        if let Err(e) = state::save(&inner.state_path, &inner.state) {
            tracing::error!("{e}; runtime flips will be refused until it can be written");
        }
        let mut inner = inner;
        let snapshot = Arc::new(ArcSwap::from_pointee(view::build_snapshot(
            &inner,
            &decisions(&inner, t),
            t,
        )));
        publish(&snapshot, &mut inner, t);
        let (configs, _) = tokio::sync::watch::channel(inner.config.clone());
        (
            Daemon {
                snapshot,
                resolver,
                inner: Mutex::new(inner),
                reloading: Mutex::new(()),
                applied: tokio::sync::Notify::new(),
                wake_expiry: tokio::sync::Notify::new(),
                configs,
            },
            warnings,
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated (changes are
        // made on a copy and swapped in), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The certificate resolver of the HTTPS listeners (`None` without HTTPS).
    pub fn resolver(&self) -> Option<Arc<Resolver>> {
        self.resolver.clone()
    }

    /// The snapshot cell the proxy reads.
    pub fn snapshot(&self) -> Arc<ArcSwap<Snapshot>> {
        self.snapshot.clone()
    }

    /// The database, once attached.
    pub fn store(&self) -> Option<Arc<crate::store::Store>> {
        self.lock().store.clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.lock().config.clone()
    }

    /// Persists `data` (with the history of what it changes), then makes it current and
    /// publishes a new snapshot.
    fn commit(
        &self,
        inner: &mut Inner,
        mut data: StateData,
        t: OffsetDateTime,
        cause: Cause,
    ) -> Result<(), String> {
        data.record(self.transitions(inner, &inner.config, &data, &inner.windows, t, cause));
        state::save(&inner.state_path, &data)
            .map_err(|e| format!("change refused, nothing was applied: {e}"))?;
        inner.state = data;
        publish(&self.snapshot, inner, t);
        self.wake_expiry.notify_one();
        Ok(())
    }

    /// The changes of effective state that `data` under `config` makes to the snapshot
    /// in force, for the history. Sites that are new have no previous state to change.
    fn transitions(
        &self,
        inner: &Inner,
        config: &Config,
        data: &StateData,
        windows: &[crate::platform::Window],
        t: OffsetDateTime,
        cause: Cause,
    ) -> Vec<HistoryEvent> {
        let old = self.snapshot.load();
        config
            .sites
            .iter()
            .filter_map(|s| {
                let i = old.table.sites.iter().position(|r| *r.name == *s.name)?;
                let before = old.states.get(i)?.state;
                let d = data
                    .decide(&s.name, s.state, t)
                    .with_windows(&s.name, windows, t)
                    .with_health(
                        s.auto_offline,
                        inner.health.down_since.get(&s.name).copied(),
                    );
                (d.state != before).then(|| HistoryEvent {
                    at: t,
                    site: s.name.clone(),
                    state: d.state,
                    // A reset or an edit that hands an outage back to health: the site
                    // goes down because of its checks.
                    cause: if d.source == crate::state::Source::Health {
                        Cause::Health
                    } else {
                        cause
                    },
                    reason: d.reason,
                    until: d.until,
                    by: d.by,
                })
            })
            .collect()
    }
}

fn log_expired_while_stopped(site: &str, o: &Override) {
    info!(
        target: "offramp::control",
        site,
        state = o.state.as_str(),
        until = o.until.and_then(|u| crate::text::rfc3339(u.into())).as_deref().unwrap_or(""),
        reason = o.reason.as_deref().unwrap_or(""),
        "runtime override expired while offramp was stopped; dropped"
    );
}

/// Refuses a request that names a site the config does not have.
fn check_sites(config: &Config, names: &[String]) -> Result<(), String> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| config.site(n).is_none())
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("unknown site: {}", unknown.join(", ")))
    }
}

/// The effective state of one site under the overrides and windows in force at `t`.
fn decide(inner: &Inner, name: &str, config_state: SiteState, t: OffsetDateTime) -> Decision {
    let auto_offline = inner.config.site(name).is_some_and(|s| s.auto_offline);
    inner
        .state
        .decide(name, config_state, t)
        .with_windows(name, &inner.windows, t)
        .with_health(auto_offline, inner.health.down_since.get(name).copied())
}

/// Makes a new snapshot current and brings the per-site state gauges up to date.
/// Every site's decision at `t`, in config order.
fn decisions(inner: &Inner, t: OffsetDateTime) -> Vec<Decision> {
    inner
        .config
        .sites
        .iter()
        .map(|s| decide(inner, &s.name, s.state, t))
        .collect()
}

fn publish(cell: &ArcSwap<Snapshot>, inner: &mut Inner, t: OffsetDateTime) {
    let decisions = decisions(inner, t);
    uptime::accrue(inner, &decisions, t);
    let snap = view::build_snapshot(inner, &decisions, t);
    let announce = inner.announced.loaded.then(|| {
        announce::diff(
            inner,
            &inner.announced.map,
            &decisions,
            &snap.view.platform,
            t,
        )
    });
    if let Some(m) = crate::metrics::get() {
        for (site, st) in inner.config.sites.iter().zip(&snap.states) {
            m.set_site_offline(&site.name, st.state == SiteState::Offline);
        }
    }
    // In force first: the outbox write comes after the swap, never before it.
    cell.store(Arc::new(snap));
    if let Some(a) = announce {
        announce::record(inner, a);
    }
}
