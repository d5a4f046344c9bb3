//! The command layer's executor: [`Daemon::run`] carries out a [`Command`] from the
//! control socket or the write API (one function, so both behave alike), and
//! [`Daemon::attach_store`] gives the daemon its database at start-up.
//!
//! Every change is checked completely, then written to the database in one
//! transaction, and only then applied in memory and published: a refused or failed
//! command leaves nothing behind. Incidents are `incidents`', maintenance windows
//! `windows`'.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::flips::{Target, Until};
use super::{now, publish, Daemon, Inner};
use crate::config::{Config, SiteState};
use crate::platform::{By, CmdError, Command, ComponentStatus, Incident, Maintenance};
use crate::store::{Loaded, SetStatus, Store, StoreError};

/// What the database holds, kept in memory: the pages and the request path read the
/// snapshot built from it, never the database.
#[derive(Debug, Default, Clone)]
pub(super) struct Records {
    /// Newest `created_at` first.
    pub incidents: Arc<Vec<Incident>>,
    /// Newest `start` first.
    pub maintenances: Arc<Vec<Maintenance>>,
    /// Component statuses set through the API.
    pub set: BTreeMap<String, SetStatus>,
    /// Alertmanager alerts firing, by fingerprint.
    pub alerts: BTreeMap<String, crate::store::AlertRow>,
}

impl Daemon {
    /// Hands the daemon its open database and what it holds; windows in force (one
    /// that started while offramp was down) apply from this moment.
    pub fn attach_store(&self, store: Store, loaded: Loaded) {
        let mut inner = self.lock();
        let store = Arc::new(store);
        inner.store = Some(store.clone());
        let Loaded {
            mut incidents,
            mut maintenances,
            components,
            alerts,
        } = loaded;
        incidents.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        maintenances.sort_by_key(|m| std::cmp::Reverse(m.start));
        inner.platform = Records {
            incidents: Arc::new(incidents),
            maintenances: Arc::new(maintenances),
            set: components,
            alerts,
        };
        let t = now();
        super::announce::register_targets(&inner);
        match store.load_announced() {
            Ok(map) => {
                inner.announced = super::announce::Announced {
                    loaded: true,
                    map,
                    unwritten: Default::default(),
                };
            }
            Err(e) => {
                tracing::error!(target: "offramp::notify", "{e}; nothing is announced until offramp restarts")
            }
        }
        match store.load_uptime(super::uptime::memory_from(t)) {
            Ok(days) => inner.uptime = super::uptime::Book::loaded(days),
            Err(e) => {
                tracing::error!(target: "offramp::health", "{e}; the uptime bars start empty")
            }
        }
        self.windows_changed(&mut inner, t);
    }

    /// Executes one command on behalf of `by`. The value is what the command answers:
    /// an incident or maintenance object, an array of them, or `{"sites": [...]}`.
    pub fn run(&self, cmd: Command, by: &By) -> Result<Value, CmdError> {
        match cmd {
            Command::Status { sites } => {
                let (sites, global, reload) = self.status(&sites).map_err(site_error)?;
                Ok(json!({"sites": sites, "global": global, "reload": reload}))
            }
            Command::Offline {
                sites,
                all,
                reason,
                until,
            } => {
                let until = until
                    .map(|u| super::flips::parse_until_spec(&u))
                    .transpose()
                    .map_err(CmdError::Refused)?;
                self.run_flip(SiteState::Offline, sites, all, reason, until, by)
            }
            Command::Online { sites, all, reason } => {
                self.run_flip(SiteState::Online, sites, all, reason, None, by)
            }
            Command::Reset { sites, all } => {
                let target = target(sites, all)?;
                let sites = self.reset(&target, by).map_err(site_error)?;
                Ok(json!({ "sites": sites }))
            }
            Command::Reload {} => {
                let report = self.reload().map_err(CmdError::Refused)?;
                Ok(json!({ "reload": report }))
            }
            Command::ComponentSet { name, status } => self.component_set(&name, status, by),
            Command::Alerts { alerts } => self.alerts(alerts),
            Command::NotifyList {} => self.notify_list(),
            Command::NotifyTest { name } => self.notify_test(&name),
            Command::SubscribersList {} => self.subscribers_list(),
            Command::SubscribersRemove { address } => self.subscribers_remove(&address, by),
            other => self.run_records(other, by),
        }
    }

    fn run_flip(
        &self,
        state: SiteState,
        sites: Vec<String>,
        all: bool,
        reason: Option<String>,
        until: Option<Until>,
        by: &By,
    ) -> Result<Value, CmdError> {
        let target = target(sites, all)?;
        let reason = reason.filter(|r| !r.trim().is_empty());
        if reason.as_ref().is_some_and(|r| r.len() > 1024) {
            return Err(CmdError::Refused("reason is longer than 1024 bytes".into()));
        }
        let sites = self
            .flip(state, &target, reason, until, by)
            .map_err(site_error)?;
        Ok(json!({ "sites": sites }))
    }

    fn notify_list(&self) -> Result<Value, CmdError> {
        let (config, store) = {
            let inner = self.lock();
            (inner.config.clone(), inner.store.clone())
        };
        let store = store.ok_or_else(|| {
            CmdError::Unavailable("the status platform has no database in this process".into())
        })?;
        crate::notify::list(&config, &store).map_err(CmdError::Unavailable)
    }

    /// One attempt, outside the lock: a slow target delays only this answer.
    fn notify_test(&self, name: &str) -> Result<Value, CmdError> {
        let (config, store) = {
            let inner = self.lock();
            (inner.config.clone(), inner.store.clone())
        };
        let target = config
            .notify
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| CmdError::NotFound(format!("unknown notify target {name:?}")))?;
        crate::notify::test(target, store.as_ref()).map_err(CmdError::Refused)
    }

    fn component_set(
        &self,
        name: &str,
        status: ComponentStatus,
        by: &By,
    ) -> Result<Value, CmdError> {
        let mut inner = self.lock();
        if !is_component(&inner.config, name) {
            return Err(CmdError::NotFound(format!("unknown component {name:?}")));
        }
        let t = now();
        let set = (status != ComponentStatus::Operational).then(|| SetStatus {
            status,
            at: t,
            by: by.0.clone(),
        });
        let before = inner.platform.clone();
        match set.clone() {
            Some(s) => inner.platform.set.insert(name.to_string(), s),
            None => inner.platform.set.remove(name),
        };
        super::announce::save_with_events(&mut inner, before, Default::default(), t, |s, a| {
            s.set_component_status(name, set.as_ref(), a)
        })?;
        publish(&self.snapshot, &mut inner, t);
        tracing::info!(target: "offramp::platform", component = name, status = status.api(), by = %by.0, "component status set");
        Ok(json!({"name": name, "status": status}))
    }

    /// Incidents and maintenances: checked, written, then applied under one lock.
    fn run_records(&self, cmd: Command, by: &By) -> Result<Value, CmdError> {
        let mut inner = self.lock();
        let t = now();
        match cmd {
            Command::IncidentList { all } => Ok(Value::Array(
                inner
                    .platform
                    .incidents
                    .iter()
                    .filter(|i| all || i.is_open())
                    .map(incident_json)
                    .collect(),
            )),
            Command::IncidentShow { id } => find_incident(&inner, &id).map(incident_json),
            Command::MaintenanceList { all } => Ok(Value::Array(
                inner
                    .platform
                    .maintenances
                    .iter()
                    .filter(|m| all || !m.status_at(t).is_over())
                    .map(|m| maintenance_json(m, t))
                    .collect(),
            )),
            Command::MaintenanceShow { id } => {
                find_maintenance(&inner, &id).map(|m| maintenance_json(m, t))
            }
            cmd if super::incidents::handles(&cmd) => {
                let incident = super::incidents::apply(&inner, cmd, by, t)?;
                let out = incident_json(&incident);
                let before = inner
                    .platform
                    .incidents
                    .iter()
                    .find(|i| i.id == incident.id)
                    .cloned();
                let kind = super::announce::incident_kind(before.as_ref(), &incident);
                let before = inner.platform.clone();
                let list = Arc::make_mut(&mut inner.platform.incidents);
                match list.iter_mut().find(|i| i.id == incident.id) {
                    Some(slot) => *slot = incident.clone(),
                    None => list.insert(0, incident.clone()),
                }
                let explicit =
                    super::announce::only(crate::notify::event::incident(kind, t, out.clone()));
                super::announce::save_with_events(&mut inner, before, explicit, t, |s, a| {
                    s.save_incident(&incident, a)
                })?;
                tracing::info!(target: "offramp::platform", id = %incident.id, status = incident.status.api(), impact = incident.impact.api(), by = %by.0, name = %incident.name, "incident saved");
                publish(&self.snapshot, &mut inner, t);
                Ok(out)
            }
            cmd => {
                let m = super::windows::apply(&inner, cmd, by, t)?;
                let out = maintenance_json(&m, t);
                let before = inner
                    .platform
                    .maintenances
                    .iter()
                    .find(|x| x.id == m.id)
                    .map(|x| x.status_at(t));
                let after = m.status_at(t);
                // From what was announced (a window's start the timer has not
                // announced yet is announced now, before this command's own event).
                let prev = inner
                    .announced
                    .map
                    .get(&format!("maintenance:{}", m.id))
                    .cloned()
                    .or_else(|| before.map(|b| b.api().to_string()));
                let kinds: Vec<&str> = match prev {
                    None if after == crate::platform::MaintenanceStatus::InProgress => {
                        vec!["maintenance.scheduled", "maintenance.started"]
                    }
                    None => vec!["maintenance.scheduled"],
                    Some(p) if p == after.api() => {
                        vec!["maintenance.updated"]
                    }
                    Some(p) => super::announce::maintenance_kinds(&p, after),
                };
                let before = inner.platform.clone();
                let list = Arc::make_mut(&mut inner.platform.maintenances);
                match list.iter_mut().find(|x| x.id == m.id) {
                    Some(slot) => *slot = m.clone(),
                    None => list.push(m.clone()),
                }
                list.sort_by_key(|m| std::cmp::Reverse(m.start));
                let explicit = crate::store::Announce {
                    events: kinds
                        .into_iter()
                        .map(|k| crate::notify::event::maintenance(k, t, out.clone()))
                        .collect(),
                    announced: vec![(
                        format!("maintenance:{}", m.id),
                        Some(after.api().to_string()),
                    )],
                };
                super::announce::save_with_events(&mut inner, before, explicit, t, |s, a| {
                    s.save_maintenance(&m, a)
                })?;
                tracing::info!(target: "offramp::platform", id = %m.id, status = m.status_at(t).api(), by = %by.0, name = %m.name, "maintenance saved");
                self.windows_changed(&mut inner, t);
                Ok(out)
            }
        }
    }
}

/// The automatic windows of `maintenances`.
pub(super) fn windows_of(maintenances: &[Maintenance]) -> Vec<crate::platform::Window> {
    maintenances
        .iter()
        .filter_map(Maintenance::window)
        .collect()
}

fn target(sites: Vec<String>, all: bool) -> Result<Target, CmdError> {
    match (all, sites.is_empty()) {
        (true, true) => Ok(Target::All),
        (true, false) => Err(CmdError::Invalid(
            "give site names or \"all\", not both".into(),
        )),
        (false, _) => Ok(Target::Sites(sites)),
    }
}

/// A flip's or status's error: an unknown site is a 404, anything else a refusal.
fn site_error(e: String) -> CmdError {
    if e.starts_with("unknown site") {
        CmdError::NotFound(e)
    } else {
        CmdError::Refused(e)
    }
}

pub(super) fn store(inner: &Inner) -> Result<&Store, CmdError> {
    inner.store.as_deref().ok_or_else(|| {
        CmdError::Unavailable("the status platform has no database in this process".into())
    })
}

pub(super) fn unavailable(e: StoreError) -> CmdError {
    tracing::error!(target: "offramp::platform", "{e}");
    CmdError::Unavailable(e.to_string())
}

/// A site or a `[[component]]`.
pub(super) fn is_component(config: &Config, name: &str) -> bool {
    config.site(name).is_some() || config.components.iter().any(|c| c.name == name)
}

pub(super) fn find_incident<'a>(inner: &'a Inner, id: &str) -> Result<&'a Incident, CmdError> {
    inner
        .platform
        .incidents
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| CmdError::NotFound(format!("unknown incident {id:?}")))
}

pub(super) fn find_maintenance<'a>(
    inner: &'a Inner,
    id: &str,
) -> Result<&'a Maintenance, CmdError> {
    inner
        .platform
        .maintenances
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| CmdError::NotFound(format!("unknown maintenance {id:?}")))
}

pub(super) fn incident_json(i: &Incident) -> Value {
    serde_json::to_value(i).unwrap_or(Value::Null)
}

/// A maintenance as answered: its `status` is the one it has now (the clock's).
pub(super) fn maintenance_json(m: &Maintenance, t: OffsetDateTime) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    v["status"] = json!(m.status_at(t));
    v
}

/// A fresh short ID (12 of a-z0-9, as Statuspage's), not in `taken`.
pub(super) fn new_id(taken: impl Fn(&str) -> bool) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let mut bytes = [0u8; 12];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness: the clock's nanoseconds still make IDs unique enough
            // with the `taken` check below.
            let n = now().unix_timestamp_nanos().to_le_bytes();
            bytes.copy_from_slice(&n[..12]);
        }
        let id: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        if !taken(&id) {
            return id;
        }
    }
}
