//! The events offramp announces (CONTRACT section 11) and their JSON: one object per
//! event, `{"id", "type", "at", …}`, written to the outbox as the exact bytes a `json`
//! target receives. The other formats are made from the same object (`text`).

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::store::NewEvent;

/// An event's `id`: 20 of a-z0-9 (about 103 random bits), the same on every attempt.
pub fn uid() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 20];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: the clock's nanoseconds and a counter keep ids apart.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u128 ^ u128::from(n) << 64;
        bytes[..16].copy_from_slice(&t.to_le_bytes());
    }
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> Value {
    crate::text::rfc3339(t.into()).map_or(Value::Null, Value::String)
}

/// The event `kind` of `class` at `t`, with `fields` after `id`, `type` and `at`.
pub fn make(
    kind: &str,
    class: &'static str,
    t: OffsetDateTime,
    fields: Map<String, Value>,
) -> NewEvent {
    let uid = uid();
    let mut body = Map::new();
    body.insert("id".into(), Value::String(uid.clone()));
    body.insert("type".into(), Value::String(kind.into()));
    body.insert("at".into(), rfc3339(t));
    body.extend(fields);
    NewEvent {
        uid,
        kind: kind.to_string(),
        class,
        at: t,
        body: Value::Object(body).to_string(),
    }
}

/// What a site's change says about it.
pub struct SiteChange<'a> {
    pub site: &'a str,
    pub online: bool,
    /// `flip`, `window`, `health`, `expiry` or `config`.
    pub source: &'static str,
    pub reason: Option<&'a str>,
    pub until: Option<OffsetDateTime>,
    pub by: Value,
}

/// `site.offline` / `site.online`.
pub fn site(t: OffsetDateTime, c: SiteChange<'_>) -> NewEvent {
    let (kind, state) = if c.online {
        ("site.online", "online")
    } else {
        ("site.offline", "offline")
    };
    let mut f = Map::new();
    f.insert("site".into(), json!(c.site));
    f.insert("state".into(), json!(state));
    f.insert("source".into(), json!(c.source));
    f.insert("reason".into(), json!(c.reason));
    f.insert("until".into(), c.until.map_or(Value::Null, rfc3339));
    f.insert("by".into(), c.by);
    make(kind, "site", t, f)
}

/// `incident.created|updated|resolved` with the incident as `incident show --json` prints it.
pub fn incident(kind: &str, t: OffsetDateTime, incident: Value) -> NewEvent {
    let mut f = Map::new();
    f.insert("incident".into(), incident);
    make(kind, "incident", t, f)
}

/// `maintenance.*` with the window as `maintenance show --json` prints it.
pub fn maintenance(kind: &str, t: OffsetDateTime, maintenance: Value) -> NewEvent {
    let mut f = Map::new();
    f.insert("maintenance".into(), maintenance);
    make(kind, "maintenance", t, f)
}

/// `component.updated`: a component's status as the pages show it changed.
pub fn component(t: OffsetDateTime, name: &str, status: &str, previous: &str) -> NewEvent {
    let mut f = Map::new();
    f.insert(
        "component".into(),
        json!({"name": name, "status": status, "previous": previous}),
    );
    make("component.updated", "component", t, f)
}

/// The event `offramp notify test` sends (never stored).
pub fn test(t: OffsetDateTime) -> NewEvent {
    let mut f = Map::new();
    f.insert(
        "message".into(),
        json!("This is a test notification from offramp."),
    );
    make("test", "test", t, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_id_type_and_time() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let e = site(
            t,
            SiteChange {
                site: "cloud",
                online: false,
                source: "flip",
                reason: Some("disk"),
                until: None,
                by: json!(1000),
            },
        );
        let v: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(v["id"], json!(e.uid));
        assert_eq!(v["type"], "site.offline");
        assert_eq!(v["at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["source"], "flip");
        assert_eq!(e.class, "site");
        assert_eq!(e.uid.len(), 20);
        assert_ne!(uid(), uid());
    }
}
