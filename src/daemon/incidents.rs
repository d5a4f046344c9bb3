//! Incidents: `open`, `update` and `resolve` checked and turned into the incident as it
//! will be stored. Nothing here writes; `platform` stores the result and publishes.
//!
//! Rules: a title of 1–200 characters, messages up to 10,000; every named component is
//! a site or a `[[component]]` (named without a status it gets `partial_outage`); an
//! update without `components` keeps the affected list, with them replaces it; an
//! update of a resolved incident must give a status (which reopens it unless it is
//! `resolved` again). Timeline entries are newest first.

use time::OffsetDateTime;

use super::platform::{find_incident, is_component, new_id};
use super::Inner;
use crate::platform::command::ComponentArg;
use crate::platform::model::{check_message, check_title, DEFAULT_AFFECTED};
use crate::platform::{Affected, By, CmdError, Command, Incident, IncidentStatus, IncidentUpdate};

/// Whether `cmd` is one of the incident changes [`apply`] takes.
pub(super) fn handles(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::IncidentOpen { .. }
            | Command::IncidentUpdate { .. }
            | Command::IncidentResolve { .. }
    )
}

/// The incident as `cmd` leaves it.
pub(super) fn apply(
    inner: &Inner,
    cmd: Command,
    by: &By,
    t: OffsetDateTime,
) -> Result<Incident, CmdError> {
    match cmd {
        Command::IncidentOpen {
            title,
            impact,
            status,
            components,
            message,
        } => {
            check_title(&title).map_err(CmdError::Refused)?;
            check_message(&message).map_err(CmdError::Refused)?;
            let status = status.unwrap_or(IncidentStatus::Investigating);
            let components = affected(inner, components)?;
            let taken = |id: &str| {
                inner.platform.incidents.iter().any(|i| i.id == id)
                    || inner.platform.maintenances.iter().any(|m| m.id == id)
            };
            let id = new_id(taken);
            let update = IncidentUpdate {
                id: new_id(|_| false),
                status,
                message,
                at: t,
                components: components.clone(),
                by: by.0.clone(),
            };
            Ok(Incident {
                id,
                name: title,
                status,
                impact,
                components,
                created_at: t,
                updated_at: t,
                resolved_at: (status == IncidentStatus::Resolved).then_some(t),
                updates: vec![update],
            })
        }
        Command::IncidentUpdate {
            id,
            status,
            impact,
            components,
            message,
        } => {
            check_message(&message).map_err(CmdError::Refused)?;
            let mut i = find_incident(inner, &id)?.clone();
            if !i.is_open() && status.is_none() {
                return Err(CmdError::Refused(format!(
                    "incident {id} is resolved: give a status to reopen it"
                )));
            }
            if let Some(list) = components {
                i.components = affected(inner, list)?;
            }
            if let Some(impact) = impact {
                i.impact = impact;
            }
            let status = status.unwrap_or(i.status);
            Ok(add_update(i, status, message, by, t))
        }
        Command::IncidentResolve { id, message } => {
            let message = message.unwrap_or_else(|| "This incident has been resolved.".into());
            check_message(&message).map_err(CmdError::Refused)?;
            let i = find_incident(inner, &id)?.clone();
            if !i.is_open() {
                return Err(CmdError::Refused(format!(
                    "incident {id} is already resolved"
                )));
            }
            Ok(add_update(i, IncidentStatus::Resolved, message, by, t))
        }
        _ => Err(CmdError::Invalid("not an incident change".into())),
    }
}

fn add_update(
    mut i: Incident,
    status: IncidentStatus,
    message: String,
    by: &By,
    t: OffsetDateTime,
) -> Incident {
    // Timeline entries are ordered by time: one made in the same instant as the last
    // (a clock step back) goes just after it.
    let at = i.updates.first().map_or(t, |u| t.max(u.at));
    let taken: Vec<String> = i.updates.iter().map(|u| u.id.clone()).collect();
    i.updates.insert(
        0,
        IncidentUpdate {
            id: new_id(|id| taken.iter().any(|x| x == id)),
            status,
            message,
            at,
            components: i.components.clone(),
            by: by.0.clone(),
        },
    );
    i.status = status;
    i.updated_at = at;
    i.resolved_at = match status {
        IncidentStatus::Resolved => Some(at),
        _ => None,
    };
    i
}

/// The affected list of a command: known components, each once, defaults filled in.
fn affected(inner: &Inner, list: Vec<ComponentArg>) -> Result<Vec<Affected>, CmdError> {
    let mut out: Vec<Affected> = Vec::with_capacity(list.len());
    for c in list {
        if !is_component(&inner.config, &c.name) {
            return Err(CmdError::Refused(format!("unknown component {:?}", c.name)));
        }
        if out.iter().any(|a| a.name == c.name) {
            return Err(CmdError::Refused(format!(
                "component {:?} is named twice",
                c.name
            )));
        }
        out.push(Affected {
            name: c.name,
            status: c.status.unwrap_or(DEFAULT_AFFECTED),
        });
    }
    Ok(out)
}
