//! An event in words, for the chat formats (slack, discord, ntfy) and mail subjects:
//! a title line and a message, made from the event's JSON alone.

use serde_json::Value;

use crate::platform::{ComponentStatus, Impact, IncidentStatus};

/// What a person reads: a short title and the message under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub title: String,
    pub message: String,
    /// An outage or an incident opened: worth a louder notification.
    pub urgent: bool,
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn status_words(word: &str) -> String {
    ComponentStatus::parse(word).map_or_else(|_| word.to_string(), |c| c.label().to_string())
}

fn incident_status(word: &str) -> String {
    IncidentStatus::parse(word).map_or_else(|_| word.to_string(), |s| s.label().to_string())
}

/// The newest update's message of an incident or maintenance object.
pub(super) fn latest_message(v: &Value) -> &str {
    v.get("updates")
        .and_then(Value::as_array)
        .and_then(|u| u.first())
        .map_or("", |u| s(u, "message"))
}

/// `body`: an event's JSON.
pub fn words(body: &Value) -> Words {
    let kind = s(body, "type");
    match kind {
        "site.offline" | "site.online" => {
            let site = s(body, "site");
            let online = kind == "site.online";
            let title = if online {
                format!("{site} is back online")
            } else if s(body, "source") == "health" {
                format!("{site} is down")
            } else {
                format!("{site} is offline for maintenance")
            };
            let mut message = format!("{title} (source: {}).", s(body, "source"));
            if let Some(r) = body.get("reason").and_then(Value::as_str) {
                message.push_str(&format!(" Reason: {r}."));
            }
            if let Some(u) = body.get("until").and_then(Value::as_str) {
                message.push_str(&format!(" Expected back: {u}."));
            }
            Words {
                title,
                message,
                urgent: !online,
            }
        }
        "incident.created" | "incident.updated" | "incident.resolved" => {
            let i = &body["incident"];
            let name = s(i, "name");
            let status = incident_status(s(i, "status"));
            let title = match kind {
                "incident.created" => format!("Incident: {name}"),
                "incident.resolved" => format!("Resolved: {name}"),
                _ => format!("Update: {name}"),
            };
            let impact = Impact::parse(s(i, "impact")).ok();
            let mut message = format!("{status}: {}", latest_message(i));
            let affected: Vec<String> = i
                .get("components")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .map(|a| format!("{} ({})", s(a, "name"), status_words(s(a, "status"))))
                        .collect()
                })
                .unwrap_or_default();
            if !affected.is_empty() {
                message.push_str(&format!("\nAffected: {}", affected.join(", ")));
            }
            Words {
                title,
                message,
                urgent: kind == "incident.created"
                    && matches!(impact, Some(Impact::Major | Impact::Critical)),
            }
        }
        k if k.starts_with("maintenance.") => {
            let m = &body["maintenance"];
            let name = s(m, "name");
            let what = match k {
                "maintenance.scheduled" => "Maintenance scheduled",
                "maintenance.started" => "Maintenance started",
                "maintenance.completed" => "Maintenance completed",
                "maintenance.cancelled" => "Maintenance cancelled",
                _ => "Maintenance update",
            };
            let title = format!("{what}: {name}");
            let mut parts: Vec<String> = Vec::new();
            for key in ["sites", "components"] {
                if let Some(list) = m.get(key).and_then(Value::as_array) {
                    parts.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
            let mut message = format!("{title}, {} to {}", s(m, "start"), s(m, "end"));
            if !parts.is_empty() {
                message.push_str(&format!(" ({})", parts.join(", ")));
            }
            message.push('.');
            let note = latest_message(m);
            if !note.is_empty() {
                message.push_str(&format!("\n{note}"));
            }
            Words {
                title,
                message,
                urgent: false,
            }
        }
        "component.updated" => {
            let c = &body["component"];
            let title = format!("{}: {}", s(c, "name"), status_words(s(c, "status")));
            let message = format!(
                "{} is now {} (was {}).",
                s(c, "name"),
                status_words(s(c, "status")),
                status_words(s(c, "previous"))
            );
            Words {
                urgent: s(c, "status") == "major_outage",
                title,
                message,
            }
        }
        _ => Words {
            title: "offramp test".into(),
            message: s(body, "message").to_string(),
            urgent: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_reads() {
        let w = words(
            &json!({"type":"site.offline","site":"cloud","source":"flip","reason":"disk swap"}),
        );
        assert_eq!(w.title, "cloud is offline for maintenance");
        assert!(w.message.contains("disk swap"));
        let w = words(
            &json!({"type":"component.updated","component":{"name":"mail","status":"major_outage","previous":"operational"}}),
        );
        assert_eq!(w.title, "mail: Major Outage");
        assert!(w.urgent);
        let w = words(
            &json!({"type":"incident.created","incident":{"name":"API down","status":"investigating","impact":"major","components":[{"name":"api","status":"major_outage"}],"updates":[{"message":"looking"}]}}),
        );
        assert_eq!(w.title, "Incident: API down");
        assert!(
            w.message.contains("Investigating: looking"),
            "{}",
            w.message
        );
    }
}
