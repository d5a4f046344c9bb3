//! What offramp announces (CONTRACT section 11): each change of a site's effective
//! state, of a component's status and of a maintenance's status, found by comparing
//! what is in force with what was last announced (`Inner::announced`, kept in the
//! database with the events). The comparison runs on every publish, so whatever
//! changed a state — a flip, a window's edge, health, an expiry, a config edit, a
//! restart after a crash — is announced once; commands that change the database
//! compute it before they write, so their events go into the same transaction.
//!
//! A key seen for the first time (a new site, a database from before notifications)
//! is recorded without an event: nothing changed that anyone was told about.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::Inner;
use crate::notify::event::{self, SiteChange};
use crate::platform::{MaintenanceStatus, PlatformView};
use crate::state::{Cause, Decision, Source};
use crate::store::Announce;

/// What was last announced, by key; `loaded` once the database's copy is read (no
/// events are made before: a daemon without a database announces nothing).
#[derive(Debug, Default)]
pub(super) struct Announced {
    pub loaded: bool,
    pub map: BTreeMap<String, String>,
    /// Found and taken into `map`, but not yet in the database (a write failed): written
    /// first with the next change.
    pub unwritten: Announce,
}

impl Announced {
    /// Takes in what was written.
    pub fn apply(&mut self, a: &Announce) {
        apply_keys(&mut self.map, a);
    }
}

/// Sets and forgets the keys `a` announces in `map`.
fn apply_keys(map: &mut BTreeMap<String, String>, a: &Announce) {
    for (k, v) in &a.announced {
        match v {
            Some(v) => map.insert(k.clone(), v.clone()),
            None => map.remove(k),
        };
    }
}

/// The `source` of a site event: the cause recorded with the change at `t` when there
/// is one, else what decides the site now.
fn source(inner: &Inner, site: &str, d: &Decision, t: OffsetDateTime) -> &'static str {
    let recorded = inner
        .state
        .history
        .iter()
        .rev()
        .take_while(|h| h.at == t)
        .find(|h| h.site == site);
    match recorded.map(|h| h.cause) {
        Some(Cause::Flip | Cause::Reset) => "flip",
        Some(Cause::Config) => "config",
        Some(Cause::Expired) => "expiry",
        Some(Cause::Maintenance) => "window",
        Some(Cause::Health) => "health",
        None => match d.source {
            Source::Health => "health",
            Source::Maintenance => "window",
            Source::Runtime | Source::All => "flip",
            Source::Config => "config",
        },
    }
}

/// The events of a maintenance going from `before` to `after` (`started` then
/// `completed` for a window that ran while offramp was stopped).
pub(super) fn maintenance_kinds(before: &str, after: MaintenanceStatus) -> Vec<&'static str> {
    use MaintenanceStatus as M;
    let was = |s: M| before == s.api();
    match after {
        M::Scheduled => vec![],
        M::InProgress if was(M::Scheduled) => vec!["maintenance.started"],
        M::Completed if was(M::Scheduled) => vec!["maintenance.started", "maintenance.completed"],
        M::Completed if was(M::InProgress) => vec!["maintenance.completed"],
        M::Cancelled if !was(M::Cancelled) => vec!["maintenance.cancelled"],
        _ => vec![],
    }
}

/// Everything in force at `t` that differs from `announced`: the events, with the
/// keys they set. `decisions` in config order; `platform` as the pages show it.
pub(super) fn diff(
    inner: &Inner,
    announced: &BTreeMap<String, String>,
    decisions: &[Decision],
    platform: &PlatformView,
    t: OffsetDateTime,
) -> Announce {
    let mut a = Announce::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut set = |a: &mut Announce, key: String, value: &str| -> Option<String> {
        seen.insert(key.clone());
        match announced.get(&key) {
            Some(v) if v == value => None,
            prev => {
                a.announced.push((key, Some(value.to_string())));
                prev.cloned()
            }
        }
    };
    for (s, d) in inner.config.sites.iter().zip(decisions) {
        let now = d.state.as_str();
        if set(&mut a, format!("site:{}", s.name), now).is_some() {
            a.events.push(event::site(
                t,
                SiteChange {
                    site: &s.name,
                    online: d.state == crate::config::SiteState::Online,
                    source: source(inner, &s.name, d, t),
                    reason: d.reason.as_deref(),
                    until: d.until,
                    by: d.by_json(),
                },
            ));
        }
    }
    for c in &platform.components {
        let now = c.status.api();
        if let Some(prev) = set(&mut a, format!("component:{}", c.name), now) {
            a.events.push(event::component(t, &c.name, now, &prev));
        }
    }
    for m in platform.maintenances.iter() {
        let now = m.status_at(t);
        if let Some(prev) = set(&mut a, format!("maintenance:{}", m.id), now.api()) {
            for kind in maintenance_kinds(&prev, now) {
                a.events.push(event::maintenance(
                    kind,
                    t,
                    super::platform::maintenance_json(m, t),
                ));
            }
        }
    }
    // Sites, components and windows that are gone: forgotten, so that a name used
    // again starts afresh.
    for k in announced.keys().filter(|k| !seen.contains(*k)) {
        a.announced.push((k.clone(), None));
    }
    a
}

/// `explicit` (a command's own events and keys) followed by what else it changes.
pub(super) fn with_changes(inner: &Inner, explicit: Announce, t: OffsetDateTime) -> Announce {
    if !inner.announced.loaded {
        return explicit;
    }
    let mut map = inner.announced.map.clone();
    apply_keys(&mut map, &explicit);
    let decisions = super::decisions(inner, t);
    let planned: Vec<bool> = decisions.iter().map(Decision::under_maintenance).collect();
    let platform = super::view::platform_view(inner, &planned, t);
    let mut out = inner.announced.unwritten.clone();
    out.extend(explicit);
    out.extend(diff(inner, &map, &decisions, &platform, t));
    out
}

/// Takes in what `publish` found and writes it, after whatever an earlier write could
/// not: once found, a change is never found again, so none is lost or merged while the
/// database refuses writes (a crash meanwhile is covered by the start-up comparison).
///
/// What `publish` finds lives outside the database (a flip in the state file, a
/// window's edge on the clock, health), so its events are written without waiting
/// for the disk (`Store::record_events_lazy`): a power cut may lose the last of them,
/// and start-up then announces them again, comparing the states with what the database
/// says was announced. A flip does not wait for a second fsync.
pub(super) fn record(inner: &mut Inner, a: Announce) {
    if a.is_empty() && inner.announced.unwritten.is_empty() {
        return;
    }
    inner.announced.apply(&a);
    inner.announced.unwritten.extend(a);
    let Some(store) = inner.store.clone() else {
        return;
    };
    match store.record_events_lazy(&inner.announced.unwritten) {
        Ok(()) => inner.announced.unwritten = Announce::default(),
        Err(e) => {
            tracing::error!(target: "offramp::notify", events = inner.announced.unwritten.events.len(), "{e}; the events are kept and written with the next change");
        }
    }
}

/// Writes a change of the platform's records with its events, in the one transaction
/// `save` makes: `inner.platform` already holds the change (so that what else it
/// changes, component statuses, is found), `before` is the records as they were. The
/// events are what was unwritten, then `explicit`, then those changes. A failed write
/// puts `before` back: nothing of the command remains.
pub(super) fn save_with_events(
    inner: &mut Inner,
    before: super::platform::Records,
    explicit: Announce,
    t: OffsetDateTime,
    save: impl FnOnce(&crate::store::Store, &Announce) -> Result<(), crate::store::StoreError>,
) -> Result<(), crate::platform::CmdError> {
    let a = with_changes(inner, explicit, t);
    let saved = super::platform::store(inner)
        .and_then(|s| save(s, &a).map_err(super::platform::unavailable));
    match saved {
        Ok(()) => {
            // The transaction took what was unwritten too.
            inner.announced.apply(&a);
            inner.announced.unwritten = Announce::default();
            Ok(())
        }
        Err(e) => {
            inner.platform = before;
            Err(e)
        }
    }
}

/// Gives every configured target (and the mail queue) its place in the outbox before
/// anything is announced, so that a target new to the database starts right before the
/// events this start or reload makes, never after them.
pub(super) fn register_targets(inner: &Inner) {
    let Some(store) = inner.store.as_ref() else {
        return;
    };
    let names = inner.config.notify.iter().map(|n| n.name.as_str()).chain(
        inner
            .config
            .smtp
            .as_ref()
            .map(|_| crate::notify::MAIL_QUEUE),
    );
    let names: Vec<&str> = names.collect();
    if let Err(e) = store.forget_targets_except(&names) {
        tracing::error!(target: "offramp::notify", "{e}");
    }
    for name in names {
        if let Err(e) = store.target(name) {
            tracing::error!(target: "offramp::notify", notify = %name, "{e}");
        }
    }
}

/// An incident as events: `created`, `resolved` or `updated`.
pub(super) fn incident_kind(
    before: Option<&crate::platform::Incident>,
    after: &crate::platform::Incident,
) -> &'static str {
    match before {
        None => "incident.created",
        Some(b) if b.is_open() && !after.is_open() => "incident.resolved",
        Some(_) => "incident.updated",
    }
}

/// One event with no keys.
pub(super) fn only(e: crate::store::NewEvent) -> Announce {
    Announce {
        events: vec![e],
        announced: Vec::new(),
    }
}
