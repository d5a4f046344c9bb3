//! The JSON API of the status host, in the shape of Atlassian Statuspage's public API
//! (`/api/v2/summary.json`, `status.json`, `components.json`) so that existing widgets
//! and scripts can read it, plus `/api/sites/<site>.json` for the maintenance page.
//!
//! Components are the sites and `[[component]]`s (their name is their id), with a group
//! component per `group`; incidents and scheduled maintenance are the platform's; a
//! site flipped offline by hand (not by a window) is also an in-progress scheduled
//! maintenance carrying the reason and expected end. Cancelled windows are left out
//! (Statuspage has no such status).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{SiteView, View};
use crate::config::SiteState;
use crate::platform::{ComponentStatus, ComponentView, Incident, Maintenance, MaintenanceStatus};

/// Statuspage's page id field; one offramp serves one page.
const PAGE_ID: &str = "offramp";

fn ts(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(Value::Null, Value::String)
}

fn page(view: &View, origin: &str) -> Value {
    json!({
        "id": PAGE_ID,
        "name": view.title,
        "url": origin,
        "time_zone": "Etc/UTC",
        "updated_at": ts(Some(view.updated_at)),
    })
}

/// The page-wide status: the worst component status and unresolved incident impact
/// (CONTRACT section 9), in Statuspage's words.
fn indicator(view: &View) -> Value {
    let i = view.platform.indicator;
    json!({"indicator": i.api(), "description": i.description()})
}

/// Statuspage's id of a group component: the group's name in lower case, `-` for
/// anything but a-z 0-9 (component names are already such ids).
fn group_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("group-{slug}")
}

fn component_json(view: &View, c: &ComponentView, position: usize) -> Value {
    let site = c
        .site
        .then(|| view.sites.iter().find(|s| s.name == c.name))
        .flatten();
    let since = site.and_then(|s| s.since);
    let description = site
        .and_then(|s| s.reason.clone())
        .or_else(|| c.description.clone());
    json!({
        "id": c.name,
        "name": c.name,
        "status": c.status.api(),
        "created_at": ts(since),
        "updated_at": ts(since.or(Some(view.platform.built_at))),
        "position": position + 1,
        "description": description,
        "showcase": true,
        "start_date": Value::Null,
        "group_id": c.group.as_deref().map(group_id),
        "page_id": PAGE_ID,
        "group": false,
        "only_show_if_degraded": false,
    })
}

fn components_of(view: &View) -> Vec<Value> {
    let p = &*view.platform;
    let mut out: Vec<Value> = p
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| component_json(view, c, i))
        .collect();
    let mut groups: Vec<&str> = Vec::new();
    for g in p.components.iter().filter_map(|c| c.group.as_deref()) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (n, g) in groups.into_iter().enumerate() {
        let members: Vec<&ComponentView> = p
            .components
            .iter()
            .filter(|c| c.group.as_deref() == Some(g))
            .collect();
        out.push(json!({
            "id": group_id(g),
            "name": g,
            "status": ComponentStatus::worst(members.iter().map(|c| c.status)).api(),
            "created_at": Value::Null,
            "updated_at": ts(Some(p.built_at)),
            "position": p.components.len() + n + 1,
            "description": Value::Null,
            "showcase": false,
            "start_date": Value::Null,
            "group_id": Value::Null,
            "page_id": PAGE_ID,
            "group": true,
            "only_show_if_degraded": false,
            "components": members.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        }));
    }
    out
}

/// The component objects of the named components (for an incident's `components`).
fn named_components(view: &View, names: impl Iterator<Item = String>) -> Vec<Value> {
    let p = &*view.platform;
    names
        .filter_map(|n| {
            p.components
                .iter()
                .position(|c| c.name == n)
                .map(|i| component_json(view, &p.components[i], i))
        })
        .collect()
}

fn incident_json(view: &View, i: &Incident, origin: &str) -> Value {
    let updates: Vec<Value> = i
        .updates
        .iter()
        .enumerate()
        .map(|(n, u)| {
            // What each component was before this update: as the one before it said
            // (updates are newest first), else operational.
            let before = i.updates.get(n + 1);
            let old = |name: &str| {
                before
                    .and_then(|b| b.components.iter().find(|c| c.name == name))
                    .map_or("operational", |c| c.status.api())
            };
            json!({
                "id": u.id,
                "status": u.status.api(),
                "body": u.message,
                "incident_id": i.id,
                "created_at": ts(Some(u.at)),
                "updated_at": ts(Some(u.at)),
                "display_at": ts(Some(u.at)),
                "affected_components": u.components.iter().map(|c| json!({
                    "code": c.name, "name": c.name, "old_status": old(&c.name), "new_status": c.status.api(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let monitoring_at = i
        .updates
        .iter()
        .rev()
        .find(|u| u.status == crate::platform::IncidentStatus::Monitoring)
        .map(|u| u.at);
    json!({
        "id": i.id,
        "name": i.name,
        "status": i.status.api(),
        "impact": i.impact.api(),
        "created_at": ts(Some(i.created_at)),
        "updated_at": ts(Some(i.updated_at)),
        "started_at": ts(Some(i.created_at)),
        "monitoring_at": ts(monitoring_at),
        "resolved_at": ts(i.resolved_at),
        "shortlink": format!("{origin}/incidents/{}", i.id),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": named_components(view, i.components.iter().map(|c| c.name.clone())),
    })
}

fn maintenance_json(view: &View, m: &Maintenance, origin: &str) -> Value {
    let updates: Vec<Value> = m
        .updates
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "status": u.status.api(),
                "body": u.message,
                "incident_id": m.id,
                "created_at": ts(Some(u.at)),
                "updated_at": ts(Some(u.at)),
                "display_at": ts(Some(u.at)),
            })
        })
        .collect();
    json!({
        "id": m.id,
        "name": m.name,
        "status": m.status.api(),
        "impact": "maintenance",
        "created_at": ts(Some(m.created_at)),
        "updated_at": ts(Some(m.updated_at)),
        "started_at": ts(Some(m.start)),
        "monitoring_at": Value::Null,
        "resolved_at": ts((m.status == MaintenanceStatus::Completed).then_some(m.end)),
        "scheduled_for": ts(Some(m.start)),
        "scheduled_until": ts(Some(m.end)),
        "shortlink": format!("{origin}/incidents/{}", m.id),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": named_components(view, m.sites.iter().chain(&m.components).cloned()),
    })
}

/// The real windows that match `keep`, soonest first, then the sites flipped offline
/// by hand (in progress, as before windows existed).
fn scheduled(view: &View, origin: &str, keep: impl Fn(MaintenanceStatus) -> bool) -> Vec<Value> {
    let p = &*view.platform;
    let mut list: Vec<&Maintenance> = p
        .maintenances
        .iter()
        .filter(|m| m.status != MaintenanceStatus::Cancelled && keep(m.status))
        .collect();
    list.sort_by_key(|m| m.start);
    let mut out: Vec<Value> = list
        .into_iter()
        .map(|m| maintenance_json(view, m, origin))
        .collect();
    if keep(MaintenanceStatus::InProgress) {
        out.extend(maintenances(view, origin));
    }
    out
}

/// Sites offline by a flip (not by a window, which is listed itself), as in-progress
/// maintenances.
fn maintenances(view: &View, origin: &str) -> Vec<Value> {
    let by_window = |name: &str| {
        view.platform.maintenances.iter().any(|m| {
            m.auto && m.status == MaintenanceStatus::InProgress && m.sites.iter().any(|s| s == name)
        })
    };
    view.sites
        .iter()
        .enumerate()
        .filter(|(_, s)| s.state == SiteState::Offline && !s.outage && !by_window(&s.name))
        .map(|(_, s)| {
            let id = format!("{}-{}", s.name, s.since.map_or(0, |t| t.unix_timestamp()));
            let body = s
                .reason
                .clone()
                .unwrap_or_else(|| "Under maintenance.".into());
            json!({
                "id": id,
                "name": format!("{} maintenance", s.name),
                "status": "in_progress",
                "impact": "maintenance",
                "created_at": ts(s.since),
                "updated_at": ts(s.since),
                "started_at": ts(s.since),
                "monitoring_at": Value::Null,
                "resolved_at": Value::Null,
                "scheduled_for": ts(s.since),
                "scheduled_until": ts(s.until),
                "shortlink": format!("{origin}{}{}", super::MAINTENANCE_PREFIX, s.name),
                "page_id": PAGE_ID,
                "incident_updates": [{
                    "id": format!("{id}-1"),
                    "status": "in_progress",
                    "body": body,
                    "incident_id": id,
                    "created_at": ts(s.since),
                    "updated_at": ts(s.since),
                    "display_at": ts(s.since),
                }],
                "components": named_components(view, std::iter::once(s.name.clone())),
            })
        })
        .collect()
}

fn incidents_of(view: &View, origin: &str, open_only: bool, limit: usize) -> Vec<Value> {
    view.platform
        .incidents
        .iter()
        .filter(|i| !open_only || i.is_open())
        .take(limit)
        .map(|i| incident_json(view, i, origin))
        .collect()
}

/// `/api/v2/summary.json`: page, status, components, unresolved incidents, maintenance
/// in progress and upcoming.
pub fn summary(view: &View, origin: &str) -> Value {
    json!({
        "page": page(view, origin),
        "status": indicator(view),
        "components": components_of(view),
        "incidents": incidents_of(view, origin, true, usize::MAX),
        "scheduled_maintenances": scheduled(view, origin, |s| {
            matches!(s, MaintenanceStatus::InProgress | MaintenanceStatus::Scheduled)
        }),
    })
}

/// `/api/v2/incidents.json` (the 50 most recent) and `incidents/unresolved.json`.
pub fn incidents(view: &View, origin: &str, unresolved: bool) -> Value {
    json!({
        "page": page(view, origin),
        "incidents": incidents_of(view, origin, unresolved, if unresolved { usize::MAX } else { 50 }),
    })
}

/// `/api/v2/scheduled-maintenances.json` (`None`: the 50 most recent of any status),
/// `…/upcoming.json` (`Scheduled`) and `…/active.json` (`InProgress`).
pub fn scheduled_maintenances(view: &View, origin: &str, only: Option<MaintenanceStatus>) -> Value {
    let mut list = scheduled(view, origin, |s| only.is_none_or(|o| o == s));
    if only.is_none() {
        list.truncate(50);
    }
    json!({"page": page(view, origin), "scheduled_maintenances": list})
}

/// `/api/v2/status.json`: page and the blended status.
pub fn status(view: &View, origin: &str) -> Value {
    json!({"page": page(view, origin), "status": indicator(view)})
}

/// `/api/v2/components.json`: page and components.
pub fn components(view: &View, origin: &str) -> Value {
    json!({"page": page(view, origin), "components": components_of(view)})
}

/// `/api/sites/<site>.json`: what the maintenance page polls. `status` is the site's
/// component status (health, incidents and alerts included), as `components.json`.
pub fn site(view: &View, s: &SiteView) -> Value {
    let status = view
        .platform
        .components
        .iter()
        .find(|c| c.site && c.name == s.name)
        .map_or(s.status.api(), |c| c.status.api());
    json!({
        "name": s.name,
        "state": s.state.as_str(),
        "status": status,
        "since": ts(s.since),
        "until": ts(s.until),
        "reason": s.reason,
    })
}

/// `/api/sites/SITE/uptime.json`: the last 90 UTC days, newest last (CONTRACT section
/// 10); `uptime` is `null` on a day without data.
pub fn uptime(view: &View, site: &str) -> Value {
    let p = &view.platform;
    let days = p.uptime.get(site).map_or(&[][..], Vec::as_slice);
    let shown = crate::platform::uptime::shown_days(site, days, &p.incidents, p.built_at);
    let overall = crate::platform::uptime::overall(&shown);
    json!({
        "site": site,
        "uptime": overall,
        "days": shown.iter().map(|d| json!({
            "date": format!("{:04}-{:02}-{:02}", d.day.year(), u8::from(d.day.month()), d.day.day()),
            "uptime": d.uptime,
            "up_seconds": d.up_ms / 1000,
            "down_seconds": d.down_ms / 1000,
            "incidents": d.incidents.iter().filter_map(|i| p.incidents.get(*i).map(|x| &x.id)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
