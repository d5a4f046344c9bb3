//! Config reloads: re-reading the file (from the file watch, SIGHUP or `offramp
//! reload`), validating it as it will be in force, and applying it with
//! last-action-wins for edited site states. Settings bound at start-up keep their
//! running values and are reported as needing a restart. What triggers a reload is
//! `watch`'s; parsing and validating the file is `config`'s.

use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use super::report::{ReloadReport, ReloadStatus};
use super::{now, publish, Daemon};
use crate::config::{Config, ConfigError, ConfigErrors, Demo, Server};
use crate::routes::RouteTable;
use crate::state::{self, Cause, ConfigMark};

impl Daemon {
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
        // What the checks know applies to the new config (an upstream removed, checks
        // or auto_offline turned off) before the changes it makes are worked out.
        inner.health.retain(&new);
        let events = self.transitions(&inner, &new, &data, &inner.windows, t, Cause::Config);
        for e in &events {
            info!(target: "offramp::reload", site = %e.site, state = e.state.as_str(), cause = ?e.cause, "site is {} after the reload", e.state.as_str());
        }
        data.record(events);
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
        let config = inner.config.clone();
        super::announce::register_targets(&inner);
        publish(&self.snapshot, &mut inner, t);
        self.wake_expiry.notify_one();
        self.applied.notify_one();
        self.configs.send_replace(config);
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
        ("server.data", r.data != n.data),
        ("server.admin_tls", r.admin_tls != n.admin_tls),
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
        server.data = r.data.clone();
        server.admin_tls = r.admin_tls;
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
