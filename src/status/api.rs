//! The JSON API of the status host, in the shape of Atlassian Statuspage's public API
//! (`/api/v2/summary.json`, `status.json`, `components.json`) so that existing widgets
//! and scripts can read it, plus `/api/sites/<site>.json` for the maintenance page.
//!
//! Sites are components (their name is their id); a site under maintenance is also an
//! in-progress scheduled maintenance carrying the reason and expected end.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{ComponentStatus, SiteView, View};

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

fn component(s: &SiteView, position: usize) -> Value {
    json!({
        "id": s.name,
        "name": s.name,
        "status": s.status.api(),
        "created_at": ts(s.since),
        "updated_at": ts(s.since),
        "position": position + 1,
        "description": s.reason,
        "showcase": true,
        "start_date": Value::Null,
        "group_id": Value::Null,
        "page_id": PAGE_ID,
        "group": false,
        "only_show_if_degraded": false,
    })
}

fn components_of(view: &View) -> Vec<Value> {
    view.sites
        .iter()
        .enumerate()
        .map(|(i, s)| component(s, i))
        .collect()
}

fn maintenances(view: &View, origin: &str) -> Vec<Value> {
    view.sites
        .iter()
        .enumerate()
        .filter(|(_, s)| s.status == ComponentStatus::UnderMaintenance)
        .map(|(i, s)| {
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
                "components": [component(s, i)],
            })
        })
        .collect()
}

/// `/api/v2/summary.json`: page, status, components, incidents, maintenances.
pub fn summary(view: &View, origin: &str) -> Value {
    json!({
        "page": page(view, origin),
        "status": indicator(view),
        "components": components_of(view),
        "incidents": [],
        "scheduled_maintenances": maintenances(view, origin),
    })
}

/// `/api/v2/status.json`: page and the blended status.
pub fn status(view: &View, origin: &str) -> Value {
    json!({"page": page(view, origin), "status": indicator(view)})
}

/// `/api/v2/components.json`: page and components.
pub fn components(view: &View, origin: &str) -> Value {
    json!({"page": page(view, origin), "components": components_of(view)})
}

/// `/api/sites/<site>.json`: what the maintenance page polls.
pub fn site(s: &SiteView) -> Value {
    json!({
        "name": s.name,
        "state": s.state.as_str(),
        "status": s.status.api(),
        "since": ts(s.since),
        "until": ts(s.until),
        "reason": s.reason,
    })
}
