//! The running daemon's single owner of mutable state: the config in force, the runtime
//! overrides, the last reload result, and the snapshot the proxy reads.
//!
//! Every change (flip, reset, reload, expiry) goes through here under one lock: compute
//! the new state, persist it when it must survive a restart, then publish a new
//! `Snapshot` with one atomic swap. The data path never takes the lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::config::{Config, ConfigError, ConfigErrors, Demo, Server, SiteState};
use crate::routes::{Effective, RouteTable, Snapshot};
use crate::state::{self, Cause, ConfigMark, Decision, HistoryEvent, Override, Source, StateData};
use crate::status::{SiteView, View};
use crate::tls::Resolver;

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

/// One site as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteStatus {
    pub name: String,
    pub state: SiteState,
    pub source: Source,
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub by: Option<u32>,
    pub config_state: SiteState,
}

/// The global override as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalStatus {
    pub state: SiteState,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub by: Option<u32>,
}

/// Result of the last reload, shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    pub ok: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Keys changed in the file whose running values stay in force until a restart, as
    /// of the last config applied (a failed reload does not change them).
    pub needs_restart: Vec<String>,
}

/// Everything `status` answers: sites, the global override, the last reload.
pub type StatusReport = (Vec<SiteStatus>, Option<GlobalStatus>, Option<ReloadStatus>);

/// What a successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Sites whose `state` key changed (their runtime override, if any, was dropped).
    pub state_changed: Vec<String>,
    /// Sites whose runtime override was dropped (removed from the file, or edited).
    pub dropped_overrides: Vec<String>,
    /// Keys that changed but only take effect after a restart; the rest was applied.
    pub needs_restart: Vec<String>,
    /// The certificates changed and the new ones are in force.
    pub certs_reloaded: bool,
}

struct Inner {
    config: Arc<Config>,
    table: Arc<RouteTable>,
    state: StateData,
    state_path: PathBuf,
    last_reload: Option<ReloadStatus>,
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
        };
        if let Err(e) = state::save(&inner.state_path, &inner.state) {
            tracing::error!("{e}; runtime flips will be refused until it can be written");
        }
        let snapshot = Arc::new(ArcSwap::from_pointee(build_snapshot(&inner, t)));
        publish(&snapshot, &inner, t);
        (
            Daemon {
                snapshot,
                resolver,
                inner: Mutex::new(inner),
                reloading: Mutex::new(()),
                applied: tokio::sync::Notify::new(),
                wake_expiry: tokio::sync::Notify::new(),
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

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.lock().config.clone()
    }

    /// Status of the named sites (all when empty), the global override, the last reload.
    pub fn status(&self, sites: &[String]) -> Result<StatusReport, String> {
        let inner = self.lock();
        check_sites(&inner.config, sites)?;
        let t = now();
        let list = site_statuses(&inner, sites, t);
        let global = inner
            .state
            .global
            .as_ref()
            .filter(|g| !g.expired(t))
            .map(|g| GlobalStatus {
                state: g.state,
                since: g.since,
                until: g.until,
                reason: g.reason.clone(),
                by: g.by,
            });
        Ok((list, global, inner.last_reload.clone()))
    }

    /// Flips sites (or all) to `state`. Persisted before it is applied and answered.
    pub fn flip(
        &self,
        state: SiteState,
        target: &Target,
        reason: Option<String>,
        until: Option<Until>,
        by: Option<u32>,
    ) -> Result<Vec<SiteStatus>, String> {
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
            by,
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
            by = by.map_or(-1, i64::from),
            "site state changed"
        );
        let names = target_names(&inner, target);
        Ok(site_statuses(&inner, &names, t))
    }

    /// Returns sites to their config state: per site (the latest action touching them,
    /// so a global override in force no longer covers them until the next `--all`), or
    /// every site with `All`, dropping every runtime override, global included.
    pub fn reset(&self, target: &Target, by: Option<u32>) -> Result<Vec<SiteStatus>, String> {
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
            by = by.map_or(-1, i64::from),
            "runtime overrides dropped"
        );
        let names = target_names(&inner, target);
        Ok(site_statuses(&inner, &names, t))
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
        data.record(self.transitions(&inner.config, &data, t, cause));
        state::save(&inner.state_path, &data)
            .map_err(|e| format!("change refused, nothing was applied: {e}"))?;
        inner.state = data;
        publish(&self.snapshot, inner, t);
        self.wake_expiry.notify_one();
        Ok(())
    }

    /// Resolves after a config was applied (by any trigger) since the last call.
    pub async fn config_applied(&self) {
        self.applied.notified().await
    }

    /// Re-reads the config file and applies it, or keeps the running one on error.
    pub fn reload(&self) -> Result<ReloadReport, String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        crate::sd_notify::reloading();
        let running = self.config();
        let result = match load_in_force(&running.file, &running) {
            Ok((c, needs_restart)) => Ok(self.apply(c, needs_restart)),
            Err(e) => Err(self.reload_failed(&e)),
        };
        crate::sd_notify::notify("READY=1");
        result
    }

    /// Records a failed reload; returns the message.
    pub fn reload_failed(&self, e: &ConfigErrors) -> String {
        if let Some(m) = crate::metrics::get() {
            m.reload_errors.inc();
        }
        let msg = format!("config not applied, the running config stays in force:\n{e}");
        warn!(target: "offramp::reload", "{msg}");
        let mut inner = self.lock();
        let pending = inner
            .last_reload
            .as_ref()
            .map(|r| r.needs_restart.clone())
            .unwrap_or_default();
        inner.last_reload = Some(ReloadStatus {
            ok: false,
            at: now(),
            error: Some(e.to_string()),
            needs_restart: pending,
        });
        msg
    }

    /// Applies a validated config: new routes, last-action-wins for edited states.
    /// Settings bound at start-up keep their running values and are reported.
    pub fn apply_config(&self, new: Config) -> ReloadReport {
        let needs_restart = restart_only_changes(&self.config(), &new);
        self.apply(new, needs_restart)
    }

    fn apply(&self, mut new: Config, needs_restart: Vec<String>) -> ReloadReport {
        let mut inner = self.lock();
        let t = now();
        let old = inner.config.clone();
        let mut report = ReloadReport {
            needs_restart,
            ..ReloadReport::default()
        };
        pin_running(&old)(&mut new.server, &mut new.demo);
        for w in &new.warnings {
            warn!(target: "offramp::reload", "{w}");
        }
        if let (Some(resolver), Some(store)) = (&self.resolver, &new.tls) {
            if old.tls.as_ref() != Some(store) {
                resolver.set(store.clone());
                report.certs_reloaded = true;
            }
        }

        let mut data = inner.state.clone();
        for site in &new.sites {
            match old.site(&site.name) {
                None => {
                    report.added.push(site.name.clone());
                    data.config.insert(
                        site.name.clone(),
                        ConfigMark {
                            state: site.state,
                            seq: 0,
                            since: Some(t),
                        },
                    );
                }
                Some(o) if o.state != site.state => {
                    report.state_changed.push(site.name.clone());
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
                        report.dropped_overrides.push(site.name.clone());
                    }
                }
                Some(_) => {}
            }
        }
        for o in &old.sites {
            if new.site(&o.name).is_none() {
                report.removed.push(o.name.clone());
                data.config.remove(&o.name);
                if data.sites.remove(&o.name).is_some() {
                    report.dropped_overrides.push(o.name.clone());
                }
            }
        }
        data.record(self.transitions(&new, &data, t, Cause::Config));
        if data != inner.state {
            if let Err(e) = state::save(&inner.state_path, &data) {
                // The config still applies; the overrides it dropped are dropped in memory
                // and the file catches up with the next successful write.
                warn!(target: "offramp::reload", "{e}");
            }
        }
        inner.state = data;
        inner.table = Arc::new(RouteTable::build(&new));
        inner.config = Arc::new(new);
        if let Some(m) = crate::metrics::get() {
            m.reloads.inc();
            for name in &report.removed {
                m.forget_site(name);
            }
        }
        inner.last_reload = Some(ReloadStatus {
            ok: true,
            at: t,
            error: None,
            needs_restart: report.needs_restart.clone(),
        });
        publish(&self.snapshot, &inner, t);
        self.wake_expiry.notify_one();
        self.applied.notify_one();
        info!(
            target: "offramp::reload",
            added = ?report.added,
            removed = ?report.removed,
            state_changed = ?report.state_changed,
            dropped_overrides = ?report.dropped_overrides,
            needs_restart = ?report.needs_restart,
            "config reloaded"
        );
        if !report.needs_restart.is_empty() {
            // Most reloads come from the file watch, with nobody reading the reply.
            let socket = if report.needs_restart.iter().any(|k| k == "server.control") {
                format!(
                    "; until then the control socket stays at {} (offramp --socket {0})",
                    old.server.control.display()
                )
            } else {
                String::new()
            };
            warn!(
                target: "offramp::reload",
                "changed in the config but only applied after a restart: {}; the running values stay in force, the rest of the change is applied{socket}",
                report.needs_restart.join(", ")
            );
        }
        report
    }

    /// The changes of effective state that `data` under `config` makes to the snapshot
    /// in force, for the history. Sites that are new have no previous state to change.
    fn transitions(
        &self,
        config: &Config,
        data: &StateData,
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
                let d = data.decide(&s.name, s.state, t);
                (d.state != before).then(|| HistoryEvent {
                    at: t,
                    site: s.name.clone(),
                    state: d.state,
                    cause,
                    reason: d.reason,
                    until: d.until,
                    by: d.by,
                })
            })
            .collect()
    }

    /// Expires `--until` overrides on time: sleeps until the next one, then republishes.
    pub async fn run_expiry(self: Arc<Self>) {
        loop {
            let next = self.lock().state.next_expiry(now());
            let wait = next.map(|u| {
                let d = u - now();
                std::time::Duration::from_micros(
                    d.whole_microseconds().clamp(0, i128::from(u64::MAX)) as u64,
                )
            });
            match wait {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => self.expire(),
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
        data.record(self.transitions(&inner.config, &data, t, Cause::Expired));
        if let Err(e) = state::save(&inner.state_path, &data) {
            // Expired overrides are ignored when deciding anyway; the file catches up later.
            warn!(target: "offramp::control", "{e}");
        }
        inner.state = data;
        publish(&self.snapshot, &inner, t);
        count("expired");
        info!(target: "offramp::control", sites = %expired.join(","), "runtime override expired");
    }
}

/// The settings bound at start-up, by key, whose values differ between the running
/// config and `new`: they wait for a restart.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<String> {
    let (r, n) = (&running.server, &new.server);
    [
        ("server.http", r.http != n.http),
        ("server.https", r.https != n.https),
        ("server.threads", r.threads != n.threads),
        ("server.control", r.control != n.control),
        ("server.control_group", r.control_group != n.control_group),
        ("server.state", r.state != n.state),
        (
            "server.admin/demo",
            r.admin != n.admin || running.demo != new.demo,
        ),
    ]
    .iter()
    .filter(|(_, changed)| *changed)
    .map(|(k, _)| k.to_string())
    .collect()
}

/// Puts back the running values of the settings bound at start-up.
fn pin_running(running: &Config) -> impl Fn(&mut Server, &mut Option<Demo>) + '_ {
    move |server, demo| {
        let r = &running.server;
        server.http = r.http.clone();
        server.https = r.https.clone();
        server.threads = r.threads;
        server.control = r.control.clone();
        server.control_group = r.control_group;
        server.state = r.state.clone();
        server.admin = r.admin;
        *demo = running.demo.clone();
    }
}

/// Reads and validates the config file as it will be in force: valid as written (a
/// restart would use it so), and valid with the running values of the settings that
/// need a restart to change — e.g. a new host must have a certificate while the HTTPS
/// listeners still run, even if the file no longer has any. Also returns those keys.
fn load_in_force(file: &Path, running: &Config) -> Result<(Config, Vec<String>), ConfigErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line: 0,
            key: String::new(),
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    let written = Config::parse(&text, file)?;
    let needs_restart = restart_only_changes(running, &written);
    if needs_restart.is_empty() {
        return Ok((written, needs_restart));
    }
    let pin = pin_running(running);
    match Config::parse_pinned(&text, file, &pin) {
        Ok(c) => Ok((c, needs_restart)),
        Err(ConfigErrors(errors)) => Err(ConfigErrors(
            errors
                .into_iter()
                .map(|mut e| {
                    e.message.push_str(&format!(
                        " (checked against the running {}, which keep their values until a restart)",
                        needs_restart.join(", ")
                    ));
                    e
                })
                .collect(),
        )),
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

fn decide(inner: &Inner, name: &str, config_state: SiteState, t: OffsetDateTime) -> Decision {
    inner.state.decide(name, config_state, t)
}

fn site_statuses(inner: &Inner, names: &[String], t: OffsetDateTime) -> Vec<SiteStatus> {
    inner
        .config
        .sites
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .map(|s| {
            let d = decide(inner, &s.name, s.state, t);
            SiteStatus {
                name: s.name.clone(),
                state: d.state,
                source: d.source,
                since: d.since,
                until: d.until,
                reason: d.reason,
                by: d.by,
                config_state: s.state,
            }
        })
        .collect()
}

/// Makes a new snapshot current and brings the per-site state gauges up to date.
fn publish(cell: &ArcSwap<Snapshot>, inner: &Inner, t: OffsetDateTime) {
    let snap = build_snapshot(inner, t);
    if let Some(m) = crate::metrics::get() {
        for (site, st) in inner.config.sites.iter().zip(&snap.states) {
            m.set_site_offline(&site.name, st.state == SiteState::Offline);
        }
    }
    cell.store(Arc::new(snap));
}

fn count(action: &str) {
    if let Some(m) = crate::metrics::get() {
        m.flips.with_label_values(&[action]).inc();
    }
}

fn build_snapshot(inner: &Inner, t: OffsetDateTime) -> Snapshot {
    let mut states = Vec::with_capacity(inner.config.sites.len());
    let mut sites = Vec::with_capacity(inner.config.sites.len());
    for s in &inner.config.sites {
        let d = decide(inner, &s.name, s.state, t);
        states.push(Effective {
            state: d.state,
            until: d.until.map(SystemTime::from),
        });
        sites.push(SiteView::new(&s.name, d.state, d.since, d.until, d.reason));
    }
    let status = inner.config.status.as_ref();
    let view = View {
        title: status.map_or_else(|| "Status".to_string(), |s| s.title.clone()),
        links: status.map(|s| s.links.clone()).unwrap_or_default(),
        sites,
        history: inner
            .state
            .history
            .iter()
            .rev()
            .take(crate::status::HISTORY_SHOWN)
            .cloned()
            .collect(),
        updated_at: t,
    };
    Snapshot {
        table: inner.table.clone(),
        states,
        view: Arc::new(view),
    }
}
