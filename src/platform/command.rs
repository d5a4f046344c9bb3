//! The one command layer: every change or query of the platform, from the CLI (over the
//! control socket) or the write API, is a [`Command`], executed by one function, with
//! one error type whose kind decides the exit code and the HTTP status.
//!
//! The wire format of the control socket is a `Command` serialised as JSON, one object
//! per line (`{"cmd":"incident_open","title":...}`); the flips keep their section-4
//! shape. The write API maps its JSON bodies onto the same commands.

use serde::{Deserialize, Serialize};

use super::model::{ComponentStatus, Impact, IncidentStatus};

/// Who asked, as recorded with a change (`by`): `uid 1000`, `api:deploy`,
/// `alertmanager`, `health`, `maintenance:ID`, `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct By(pub String);

impl By {
    /// A control-socket client, by its uid (`None`: unknown peer).
    pub fn uid(uid: Option<u32>) -> By {
        By(match uid {
            Some(u) => format!("uid {u}"),
            None => "uid ?".to_string(),
        })
    }
}

/// A component named by a command, with the status it is given (`None`: the default,
/// `partial_outage` for an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentArg {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ComponentStatus>,
}

/// Everything the platform can be asked. Times and durations stay strings here
/// (`now`, `+30m`, `2h`, RFC 3339) and are read by the executor against one clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// `offramp status`: section 4's flips and queries keep their wire shape.
    Status {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sites: Vec<String>,
    },
    Offline {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sites: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// A duration from now (`"30m"`) or an RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    Online {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sites: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Reset {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sites: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    Reload {},
    IncidentOpen {
        title: String,
        impact: Impact,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<IncidentStatus>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<ComponentArg>,
        message: String,
    },
    IncidentUpdate {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<IncidentStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        impact: Option<Impact>,
        /// `None`: the affected components stay as they are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        components: Option<Vec<ComponentArg>>,
        message: String,
    },
    IncidentResolve {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    IncidentList {
        #[serde(default)]
        all: bool,
    },
    IncidentShow {
        id: String,
    },
    MaintenanceSchedule {
        title: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sites: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<String>,
        /// RFC 3339, `now` or `+30m`.
        start: String,
        /// RFC 3339, or a duration counted from the start (`+2h`, `2h`).
        end: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// `--no-auto`: false.
        #[serde(default = "yes")]
        auto: bool,
    },
    MaintenanceList {
        #[serde(default)]
        all: bool,
    },
    MaintenanceShow {
        id: String,
    },
    MaintenanceUpdate {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// RFC 3339, or a duration counted from the start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<String>,
    },
    MaintenanceComplete {
        id: String,
    },
    MaintenanceCancel {
        id: String,
    },
    /// A status set through the API (`PATCH /api/v1/components/NAME`); `operational`
    /// clears it.
    ComponentSet {
        name: String,
        status: ComponentStatus,
    },
    /// The alerts of one Alertmanager notification (`POST /api/v1/alertmanager`).
    Alerts {
        alerts: Vec<AlertArg>,
    },
    /// `offramp notify list`.
    NotifyList {},
    /// `offramp notify test NAME`.
    NotifyTest {
        name: String,
    },
    /// `offramp subscribers list`: every e-mail subscriber.
    SubscribersList {},
    /// `offramp subscribers remove ADDRESS`.
    SubscribersRemove {
        address: String,
    },
}

/// One alert of an Alertmanager notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertArg {
    /// Alertmanager's fingerprint of the alert's labels: what ties its resolution to it.
    pub fingerprint: String,
    /// Firing (true) or resolved.
    pub firing: bool,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Command {
    /// Every command's wire name (`cmd`).
    pub const NAMES: &'static [&'static str] = &[
        "status",
        "offline",
        "online",
        "reset",
        "reload",
        "incident_open",
        "incident_update",
        "incident_resolve",
        "incident_list",
        "incident_show",
        "maintenance_schedule",
        "maintenance_list",
        "maintenance_show",
        "maintenance_update",
        "maintenance_complete",
        "maintenance_cancel",
        "component_set",
        "alerts",
        "notify_list",
        "notify_test",
        "subscribers_list",
        "subscribers_remove",
    ];
}

fn yes() -> bool {
    true
}

/// Why a command was refused. The kind decides the CLI's exit code (all 1) and the
/// write API's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// A malformed request (wrong types, unknown fields): 400.
    #[error("{0}")]
    Invalid(String),
    /// Well-formed values that are refused (unknown status or component, an end before
    /// its start, a title too long): 422.
    #[error("{0}")]
    Refused(String),
    /// An unknown ID or name: 404.
    #[error("{0}")]
    NotFound(String),
    /// The database could not take the change (unwritable, disk full): 503. Nothing was
    /// written.
    #[error("{0}")]
    Unavailable(String),
}

impl CmdError {
    /// The write API's status code.
    pub fn http_status(&self) -> u16 {
        match self {
            CmdError::Invalid(_) => 400,
            CmdError::Refused(_) => 422,
            CmdError::NotFound(_) => 404,
            CmdError::Unavailable(_) => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_and_strict() {
        let c: Command = serde_json::from_str(
            r#"{"cmd":"incident_open","title":"API down","impact":"major","components":[{"name":"api","status":"major_outage"}],"message":"looking"}"#,
        )
        .unwrap();
        assert!(matches!(
            c,
            Command::IncidentOpen {
                impact: Impact::Major,
                ..
            }
        ));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["cmd"], "incident_open");
        assert!(
            serde_json::from_str::<Command>(r#"{"cmd":"incident_show","id":"x","extra":1}"#)
                .is_err()
        );
        let m: Command = serde_json::from_str(
            r#"{"cmd":"maintenance_schedule","title":"t","sites":["cloud"],"start":"now","end":"+2h"}"#,
        )
        .unwrap();
        assert!(matches!(m, Command::MaintenanceSchedule { auto: true, .. }));
        // NAMES is complete: each is a known tag (the error, if any, is about fields).
        for name in Command::NAMES {
            let e = serde_json::from_str::<Command>(&format!(r#"{{"cmd":"{name}"}}"#));
            if let Err(e) = e {
                assert!(!e.to_string().contains("unknown variant"), "{name}: {e}");
            }
        }
    }
}
