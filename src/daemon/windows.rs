//! Scheduled maintenance: `schedule`, `update`, `complete` and `cancel` checked and
//! turned into the maintenance as it will be stored, and the clock that puts windows in
//! force at their start and ends them at their end.
//!
//! A window's effect on a site is decided with the runtime overrides (`state`'s
//! `Decision::with_windows`), never by changing them: the end of a window gives back
//! exactly what the site would be without it. Starts and ends are met by the daemon's
//! one timer (`flips::run_expiry`), which sleeps until the next `--until` or window
//! edge; start-up applies a window that began while offramp was down.

use time::OffsetDateTime;
use tracing::{info, warn};

use super::platform::{find_maintenance, is_component, new_id, windows_of};
use super::{publish, Daemon, Inner};
use crate::platform::model::{check_message, check_title, MaintenanceUpdate};
use crate::platform::{when, By, CmdError, Command, Maintenance, MaintenanceStatus};
use crate::state::{self, Cause};

impl Daemon {
    /// After the maintenances changed or a window edge passed: recomputes the windows,
    /// records the changes of effective state they make, publishes, re-arms the timer.
    pub(super) fn windows_changed(&self, inner: &mut Inner, t: OffsetDateTime) {
        follow_clock(&mut inner.platform.maintenances, t);
        inner.windows = windows_of(&inner.platform.maintenances);
        let events = self.transitions(
            inner,
            &inner.config,
            &inner.state,
            &inner.windows,
            t,
            Cause::Maintenance,
        );
        for e in &events {
            info!(target: "offramp::control", site = %e.site, state = e.state.as_str(), reason = e.reason.as_deref().unwrap_or(""), "maintenance window {}", if e.state == crate::config::SiteState::Offline { "started" } else { "ended" });
        }
        if !events.is_empty() {
            let mut data = inner.state.clone();
            data.record(events);
            if let Err(e) = state::save(&inner.state_path, &data) {
                // Only the history is new: the windows themselves live in the database.
                warn!(target: "offramp::control", "{e}");
            }
            inner.state = data;
        }
        publish(&self.snapshot, inner, t);
        self.wake_expiry.notify_one();
    }

    /// Called by the timer: applies whatever window starts or ends are due.
    pub(super) fn window_edges(&self) {
        let mut inner = self.lock();
        let t = super::now();
        self.windows_changed(&mut inner, t);
    }
}

/// Sets each maintenance's status to the one the clock gives it (scheduled, in
/// progress, completed), so that what is published reads right without a clock; copies
/// the list only when one changed.
pub(super) fn follow_clock(list: &mut std::sync::Arc<Vec<Maintenance>>, t: OffsetDateTime) {
    if list.iter().any(|m| m.status != m.status_at(t)) {
        for m in std::sync::Arc::make_mut(list) {
            m.status = m.status_at(t);
        }
    }
}

/// The next start or end of a maintenance after `now` (pages change then too, for
/// windows without `auto`), or the next midnight UTC, when the overview's days move on.
pub(super) fn next_edge(inner: &Inner, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let midnight = now.date().next_day().map(|d| d.midnight().assume_utc());
    inner
        .platform
        .maintenances
        .iter()
        .filter(|m| m.status != MaintenanceStatus::Cancelled)
        .flat_map(|m| [m.start, m.end])
        .filter(|e| *e > now)
        .chain(midnight)
        .min()
}

/// The maintenance as `cmd` leaves it.
pub(super) fn apply(
    inner: &Inner,
    cmd: Command,
    by: &By,
    t: OffsetDateTime,
) -> Result<Maintenance, CmdError> {
    let refused = CmdError::Refused;
    match cmd {
        Command::MaintenanceSchedule {
            title,
            sites,
            components,
            start,
            end,
            message,
            auto,
        } => {
            check_title(&title).map_err(refused)?;
            if let Some(m) = &message {
                check_message(m).map_err(refused)?;
            }
            if sites.is_empty() && components.is_empty() {
                return Err(refused("name at least one site or component".into()));
            }
            for s in &sites {
                if inner.config.site(s).is_none() {
                    return Err(refused(format!("unknown site {s:?}")));
                }
            }
            for c in &components {
                if !is_component(&inner.config, c) {
                    return Err(refused(format!("unknown component {c:?}")));
                }
            }
            let (start, end) = when::window(&start, &end, t).map_err(refused)?;
            let taken = |id: &str| {
                inner.platform.incidents.iter().any(|i| i.id == id)
                    || inner.platform.maintenances.iter().any(|m| m.id == id)
            };
            let mut m = Maintenance {
                id: new_id(taken),
                name: title,
                status: MaintenanceStatus::Scheduled,
                sites: dedup(sites),
                components: dedup(components),
                start,
                end,
                auto,
                created_at: t,
                updated_at: t,
                updates: Vec::new(),
            };
            let message = message.unwrap_or_else(|| "Maintenance scheduled.".into());
            let status = m.status_at(t);
            add_update(&mut m, status, message, by, t);
            Ok(m)
        }
        Command::MaintenanceUpdate { id, message, end } => {
            let mut m = open(inner, &id, t)?;
            if message.is_none() && end.is_none() {
                return Err(CmdError::Invalid("give a message or a new end".into()));
            }
            if let Some(msg) = &message {
                check_message(msg).map_err(refused)?;
            }
            if let Some(e) = end {
                let end = when::end(&e, m.start).map_err(refused)?;
                when::check_window(m.start, end, t).map_err(refused)?;
                m.end = end;
            }
            let message = message.unwrap_or_else(|| {
                format!(
                    "The end moved to {}.",
                    crate::text::rfc3339(m.end.into()).unwrap_or_default()
                )
            });
            let status = m.status_at(t);
            add_update(&mut m, status, message, by, t);
            Ok(m)
        }
        Command::MaintenanceComplete { id } => {
            let mut m = open(inner, &id, t)?;
            m.start = m.start.min(t);
            m.end = m.end.min(t);
            m.status = MaintenanceStatus::Completed;
            add_update(
                &mut m,
                MaintenanceStatus::Completed,
                "The scheduled maintenance has been completed.".into(),
                by,
                t,
            );
            Ok(m)
        }
        Command::MaintenanceCancel { id } => {
            let mut m = open(inner, &id, t)?;
            m.status = MaintenanceStatus::Cancelled;
            add_update(
                &mut m,
                MaintenanceStatus::Cancelled,
                "The scheduled maintenance has been cancelled.".into(),
                by,
                t,
            );
            Ok(m)
        }
        _ => Err(CmdError::Invalid("not a maintenance change".into())),
    }
}

/// A maintenance that can still change (not completed or cancelled).
fn open(inner: &Inner, id: &str, t: OffsetDateTime) -> Result<Maintenance, CmdError> {
    let m = find_maintenance(inner, id)?;
    let status = m.status_at(t);
    if status.is_over() {
        return Err(CmdError::Refused(format!(
            "maintenance {id} is {}: it cannot change any more",
            status.api()
        )));
    }
    Ok(m.clone())
}

fn add_update(
    m: &mut Maintenance,
    status: MaintenanceStatus,
    message: String,
    by: &By,
    t: OffsetDateTime,
) {
    let at = m.updates.first().map_or(t, |u| t.max(u.at));
    let taken: Vec<String> = m.updates.iter().map(|u| u.id.clone()).collect();
    m.updates.insert(
        0,
        MaintenanceUpdate {
            id: new_id(|id| taken.iter().any(|x| x == id)),
            status,
            message,
            at,
            by: by.0.clone(),
        },
    );
    m.updated_at = at;
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}
