//! `POST /api/v1/alertmanager`: Alertmanager's webhook notification (version 4) read
//! into the command layer's `Alerts`. Fields Alertmanager adds over time are ignored;
//! a body that is not JSON, not an object of version "4" or has no `alerts` list is
//! 400 and changes nothing. Which component an alert names, and what its severity
//! means, is decided by the daemon with `[alerts]`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{error, Response};
use crate::platform::command::AlertArg;
use crate::platform::Command;

#[derive(Deserialize)]
struct Notification {
    version: Option<String>,
    alerts: Option<Vec<Alert>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// The command for a notification body.
pub fn notification(body: &[u8]) -> Result<Command, Response> {
    let n: Notification = serde_json::from_slice(body)
        .map_err(|e| error(400, format!("not an Alertmanager notification: {e}")))?;
    match n.version.as_deref() {
        Some("4") => {}
        Some(v) => {
            return Err(error(
                400,
                format!("Alertmanager webhook version {v:?} is not supported (version \"4\" is)"),
            ))
        }
        None => return Err(error(400, "not an Alertmanager notification: no version")),
    }
    let Some(alerts) = n.alerts else {
        return Err(error(400, "not an Alertmanager notification: no alerts"));
    };
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let firing = match a.status.as_str() {
            "firing" => true,
            "resolved" => false,
            other => {
                return Err(error(
                    400,
                    format!("alert status {other:?} is neither \"firing\" nor \"resolved\""),
                ))
            }
        };
        let fingerprint = a
            .fingerprint
            .filter(|f| !f.is_empty() && f.len() <= 128)
            .unwrap_or_else(|| fingerprint_of(&a.labels));
        out.push(AlertArg {
            fingerprint,
            firing,
            labels: a.labels,
            annotations: a.annotations,
        });
    }
    Ok(Command::Alerts { alerts: out })
}

/// A fingerprint for an alert without one: FNV-1a of its sorted labels, as hex.
fn fingerprint_of(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_4_and_refuses_the_rest() {
        let body = br#"{"version":"4","status":"firing","receiver":"offramp","groupKey":"{}:{}",
            "truncatedAlerts":0,"groupLabels":{},"commonLabels":{},"commonAnnotations":{},
            "externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"DbDown",
            "offramp_component":"db","severity":"critical"},"annotations":{"summary":"DB down"},
            "startsAt":"2026-12-07T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
            "generatorURL":"http://prom","fingerprint":"abc123"}]}"#;
        let Ok(Command::Alerts { alerts }) = notification(body) else {
            panic!("not read");
        };
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].firing);
        assert_eq!(alerts[0].fingerprint, "abc123");
        assert_eq!(alerts[0].labels["offramp_component"], "db");
        for bad in [
            &b"not json"[..],
            br#"{"version":"3","alerts":[]}"#,
            br#"{"alerts":[]}"#,
            br#"{"version":"4"}"#,
            br#"{"version":"4","alerts":[{"status":"odd"}]}"#,
            br#"[1,2]"#,
        ] {
            let r = notification(bad).err().map(|r| r.status);
            assert_eq!(r, Some(400), "{}", String::from_utf8_lossy(bad));
        }
        let a = BTreeMap::from([("a".to_string(), "b".to_string())]);
        assert_eq!(fingerprint_of(&a), fingerprint_of(&a.clone()));
    }
}
