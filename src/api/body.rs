//! The write API's JSON bodies, read strictly (unknown fields and wrong types are 400)
//! and turned into `platform::Command`s. Words (statuses, impacts) that are strings but
//! not one of their type's are 422, as the command layer refuses them.

use serde::Deserialize;
use serde_json::Value;

use super::{error, Response};
use crate::platform::command::ComponentArg;
use crate::platform::{Command, ComponentStatus, Impact, IncidentStatus};

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Response> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| error(400, format!("invalid body: {e}")))
}

fn word<T>(
    s: &str,
    parse: impl Fn(&str) -> Result<T, crate::platform::model::UnknownWord>,
) -> Result<T, Response> {
    parse(s).map_err(|e| error(422, e.to_string()))
}

/// `components` / `componentIds`: a list of names, or an object of name → status.
fn components(v: Value) -> Result<Vec<ComponentArg>, Response> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(name) => Ok(ComponentArg { name, status: None }),
                _ => Err(error(400, "invalid body: components are names (strings)")),
            })
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(name, st)| match st {
                Value::String(s) => Ok(ComponentArg {
                    name,
                    status: Some(word(&s, ComponentStatus::parse)?),
                }),
                _ => Err(error(400, "invalid body: a component's status is a string")),
            })
            .collect(),
        _ => Err(error(
            400,
            "invalid body: components is a list of names or an object of name: status",
        )),
    }
}

fn pick_components(
    components_field: Option<Value>,
    ids: Option<Value>,
) -> Result<Option<Vec<ComponentArg>>, Response> {
    match (components_field, ids) {
        (Some(_), Some(_)) => Err(error(
            400,
            "invalid body: give components or componentIds, not both",
        )),
        (Some(v), None) | (None, Some(v)) => components(v).map(Some),
        (None, None) => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIncident {
    title: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    impact: Option<String>,
    message: String,
    #[serde(default)]
    components: Option<Value>,
    #[serde(default, rename = "componentIds")]
    component_ids: Option<Value>,
}

/// `POST /api/v1/incidents`. `impact` defaults to `minor`, `status` to `investigating`.
pub fn new_incident(body: &[u8]) -> Result<Command, Response> {
    let b: NewIncident = parse(body)?;
    Ok(Command::IncidentOpen {
        title: b.title,
        impact: match b.impact {
            Some(i) => word(&i, Impact::parse)?,
            None => Impact::Minor,
        },
        status: b
            .status
            .map(|s| word(&s, IncidentStatus::parse))
            .transpose()?,
        components: pick_components(b.components, b.component_ids)?.unwrap_or_default(),
        message: b.message,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentPatch {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    impact: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    components: Option<Value>,
    #[serde(default, rename = "componentIds")]
    component_ids: Option<Value>,
}

/// `PATCH /api/v1/incidents/ID`: an update (`"status": "resolved"` resolves it).
pub fn incident_patch(id: &str, body: &[u8]) -> Result<Command, Response> {
    let b: IncidentPatch = parse(body)?;
    let status = b
        .status
        .map(|s| word(&s, IncidentStatus::parse))
        .transpose()?;
    let impact = b.impact.map(|i| word(&i, Impact::parse)).transpose()?;
    let components = pick_components(b.components, b.component_ids)?;
    if status == Some(IncidentStatus::Resolved) && impact.is_none() && components.is_none() {
        return Ok(Command::IncidentResolve {
            id: id.to_string(),
            message: b.message,
        });
    }
    let Some(message) = b.message else {
        return Err(error(422, "an update needs a message"));
    };
    Ok(Command::IncidentUpdate {
        id: id.to_string(),
        status,
        impact,
        components,
        message,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMaintenance {
    title: String,
    #[serde(default)]
    sites: Vec<String>,
    #[serde(default)]
    components: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default = "yes")]
    auto: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/maintenances`.
pub fn new_maintenance(body: &[u8]) -> Result<Command, Response> {
    let b: NewMaintenance = parse(body)?;
    Ok(Command::MaintenanceSchedule {
        title: b.title,
        sites: b.sites,
        components: b.components,
        start: b.start,
        end: b.end,
        message: b.message,
        auto: b.auto,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenancePatch {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// `PATCH /api/v1/maintenances/ID`: a message and/or a new end; `"status":
/// "completed"` ends it now, `"cancelled"` cancels it.
pub fn maintenance_patch(id: &str, body: &[u8]) -> Result<Command, Response> {
    let b: MaintenancePatch = parse(body)?;
    let id = id.to_string();
    match b.status.as_deref() {
        None => Ok(Command::MaintenanceUpdate {
            id,
            message: b.message,
            end: b.end,
        }),
        Some(_) if b.message.is_some() || b.end.is_some() => Err(error(
            422,
            "give a status alone, or a message and/or an end",
        )),
        Some("completed") => Ok(Command::MaintenanceComplete { id }),
        Some("cancelled") => Ok(Command::MaintenanceCancel { id }),
        Some(other) => Err(error(
            422,
            format!("status {other:?} cannot be set (expected completed or cancelled)"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusOnly {
    status: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ComponentPatch {
    Plain(StatusOnly),
    Statuspage { component: StatusOnly },
}

/// `PATCH /api/v1/components/NAME`: `{"status"}` or Statuspage's
/// `{"component": {"status"}}`.
pub fn component_patch(name: &str, body: &[u8]) -> Result<Command, Response> {
    let b: ComponentPatch = parse(body).map_err(|_| {
        error(
            400,
            "invalid body: expected {\"status\": \"...\"} or {\"component\": {\"status\": \"...\"}}",
        )
    })?;
    let status = match b {
        ComponentPatch::Plain(s) | ComponentPatch::Statuspage { component: s } => s.status,
    };
    Ok(Command::ComponentSet {
        name: name.to_string(),
        status: word(&status, ComponentStatus::parse)?,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Flip {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// `POST /api/v1/sites/NAME/offline|online|reset`.
pub fn flip(name: &str, action: &str, body: &[u8]) -> Result<Command, Response> {
    let b: Flip = parse(body)?;
    let sites = vec![name.to_string()];
    Ok(match action {
        "offline" => Command::Offline {
            sites,
            all: false,
            reason: b.reason,
            until: b.until,
        },
        "online" if b.until.is_some() => {
            return Err(error(422, "\"until\" applies to offline only"))
        }
        "online" => Command::Online {
            sites,
            all: false,
            reason: b.reason,
        },
        _ if b.reason.is_some() || b.until.is_some() => {
            return Err(error(422, "reset takes no reason or until"))
        }
        _ => Command::Reset { sites, all: false },
    })
}
