//! Alertmanager's alerts as component statuses (CONTRACT section 10): an alert whose
//! `[alerts] label` names a component gives it the status of its severity while it
//! fires; its resolution clears it. With `[alerts] incidents = true` a firing alert also
//! opens an incident (title: `annotations.summary`, message: `annotations.description`)
//! that its resolution resolves. An alert for an unknown component is logged, counted
//! and accepted, so Alertmanager does not resend it for ever.
//!
//! Alerts are kept by fingerprint in the database, written (with the incident they open
//! or resolve) in one transaction before anything is applied.

use serde_json::{json, Value};
use tracing::{info, warn};

use super::platform::{incident_json, is_component};
use super::{now, publish, Daemon};
use crate::platform::command::{AlertArg, ComponentArg};
use crate::platform::model::{MAX_MESSAGE, MAX_TITLE};
use crate::platform::{By, CmdError, Command, ComponentStatus, Impact};
use crate::store::AlertRow;

/// `by` of what alerts change.
const BY: &str = "alertmanager";

fn count(result: &str) {
    if let Some(m) = crate::metrics::get() {
        m.health.count_alert(result);
    }
}

/// An incident's impact for the status its alert gives.
fn impact_of(status: ComponentStatus) -> Impact {
    match status {
        ComponentStatus::MajorOutage => Impact::Major,
        ComponentStatus::Operational | ComponentStatus::UnderMaintenance => Impact::None,
        _ => Impact::Minor,
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Daemon {
    /// Applies one notification's alerts; answers what became of them.
    pub(super) fn alerts(&self, alerts: Vec<AlertArg>) -> Result<Value, CmdError> {
        let mut inner = self.lock();
        let t = now();
        let rules = inner.config.alerts.clone();
        let by = By(BY.into());
        let (mut applied, mut unknown, mut unchanged) = (0, 0, 0);
        let mut opened = Vec::new();
        let mut failed = None;
        for a in alerts {
            match self.one_alert(&mut inner, a, &rules, &by, t, &mut opened) {
                Ok(Done::Applied) => applied += 1,
                Ok(Done::Unchanged) => unchanged += 1,
                Ok(Done::Ignored) => unknown += 1,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if applied > 0 {
            publish(&self.snapshot, &mut inner, t);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(json!({
            "applied": applied,
            "unchanged": unchanged,
            "ignored": unknown,
            "incidents": opened,
        }))
    }

    /// One alert: applied (written, then in memory), unchanged or ignored.
    fn one_alert(
        &self,
        inner: &mut super::Inner,
        a: AlertArg,
        rules: &crate::config::Alerts,
        by: &By,
        t: time::OffsetDateTime,
        opened: &mut Vec<Value>,
    ) -> Result<Done, CmdError> {
        // A resolution ends the alert it names by fingerprint, whatever the config says
        // of its component now (else an alert stored before an edit would fire for ever).
        let known = inner.platform.alerts.contains_key(&a.fingerprint);
        let Some(component) = a.labels.get(&rules.label).cloned() else {
            if !known {
                warn!(target: "offramp::alerts", alertname = a.labels.get("alertname").map_or("", String::as_str), label = %rules.label, "alert without the component label ignored");
                count("no_component");
                return Ok(Done::Ignored);
            }
            return self.resolve_alert(inner, &a, by, t);
        };
        if !a.firing && known {
            return self.resolve_alert(inner, &a, by, t);
        }
        if !is_component(&inner.config, &component) {
            warn!(target: "offramp::alerts", component = %component, alertname = a.labels.get("alertname").map_or("", String::as_str), "alert for an unknown component ignored");
            count("unknown_component");
            return Ok(Done::Ignored);
        }
        let existing = inner.platform.alerts.get(&a.fingerprint).cloned();
        if a.firing {
            let status = rules.status_of(a.labels.get("severity").map(String::as_str));
            let summary = a
                .annotations
                .get("summary")
                .or_else(|| a.labels.get("alertname"))
                .map_or_else(
                    || format!("Alert for {component}"),
                    |s| clip(s.trim(), MAX_TITLE),
                );
            if existing
                .as_ref()
                .is_some_and(|e| e.component == component && e.status == status)
            {
                // Alertmanager repeats firing alerts; nothing new.
                return Ok(Done::Unchanged);
            }
            let mut incident_id = existing.as_ref().and_then(|e| e.incident.clone());
            let mut incident = None;
            if rules.incidents && incident_id.is_none() {
                let message = a
                    .annotations
                    .get("description")
                    .map(|d| clip(d.trim(), MAX_MESSAGE))
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| format!("Alertmanager reports {summary}."));
                let title = if summary.trim().is_empty() {
                    format!("Alert for {component}")
                } else {
                    summary.clone()
                };
                let cmd = Command::IncidentOpen {
                    title,
                    impact: impact_of(status),
                    status: None,
                    components: vec![ComponentArg {
                        name: component.clone(),
                        status: Some(status),
                    }],
                    message,
                };
                let i = super::incidents::apply(&*inner, cmd, by, t)?;
                incident_id = Some(i.id.clone());
                incident = Some(i);
            }
            let row = AlertRow {
                fingerprint: a.fingerprint.clone(),
                component: component.clone(),
                status,
                summary,
                since: existing.as_ref().map_or(t, |e| e.since),
                incident: incident_id,
            };
            // Applied first, so that the component changes it makes are found and
            // written with it; taken back if the write fails.
            let before = inner.platform.clone();
            inner
                .platform
                .alerts
                .insert(a.fingerprint.clone(), row.clone());
            if let Some(i) = &incident {
                std::sync::Arc::make_mut(&mut inner.platform.incidents).insert(0, i.clone());
            }
            let explicit = incident
                .as_ref()
                .map(|i| {
                    super::announce::only(crate::notify::event::incident(
                        "incident.created",
                        t,
                        incident_json(i),
                    ))
                })
                .unwrap_or_default();
            super::announce::save_with_events(inner, before, explicit, t, |s, events| {
                s.save_alert(&a.fingerprint, Some(&row), incident.as_ref(), events)
            })?;
            info!(target: "offramp::alerts", component = %component, status = status.api(), summary = %row.summary, "alert firing");
            if let Some(i) = incident {
                opened.push(incident_json(&i));
            }
            count("applied");
            Ok(Done::Applied)
        } else {
            self.resolve_alert(inner, &a, by, t)
        }
    }

    /// Ends a stored alert (and resolves the incident it opened).
    fn resolve_alert(
        &self,
        inner: &mut super::Inner,
        a: &AlertArg,
        by: &By,
        t: time::OffsetDateTime,
    ) -> Result<Done, CmdError> {
        let Some(e) = inner.platform.alerts.get(&a.fingerprint).cloned() else {
            return Ok(Done::Unchanged);
        };
        let open = e.incident.as_ref().filter(|id| {
            inner
                .platform
                .incidents
                .iter()
                .any(|i| i.id == **id && i.is_open())
        });
        let resolved = match open {
            Some(id) => Some(super::incidents::apply(
                &*inner,
                Command::IncidentResolve {
                    id: id.clone(),
                    message: Some("The alert is no longer firing.".into()),
                },
                by,
                t,
            )?),
            None => None,
        };
        let before = inner.platform.clone();
        inner.platform.alerts.remove(&a.fingerprint);
        if let Some(i) = &resolved {
            let list = std::sync::Arc::make_mut(&mut inner.platform.incidents);
            if let Some(slot) = list.iter_mut().find(|x| x.id == i.id) {
                *slot = i.clone();
            }
        }
        let explicit = resolved
            .as_ref()
            .map(|i| {
                super::announce::only(crate::notify::event::incident(
                    "incident.resolved",
                    t,
                    incident_json(i),
                ))
            })
            .unwrap_or_default();
        super::announce::save_with_events(inner, before, explicit, t, |s, events| {
            s.save_alert(&a.fingerprint, None, resolved.as_ref(), events)
        })?;
        info!(target: "offramp::alerts", component = %e.component, summary = %e.summary, "alert resolved");
        count("resolved");
        Ok(Done::Applied)
    }
}

/// What became of one alert.
enum Done {
    Applied,
    Unchanged,
    Ignored,
}
