//! What the notification tests (`tests/notify.rs`, `tests/notify_delivery.rs`,
//! `tests/notify_targets.rs`, `tests/notify_statuspage.rs`) share besides the webhook
//! receiver itself (`common/webhook.rs`):
//!
//! - their config: one site `cloud`, one component `mail`, the admin listener for
//!   `/metrics`, and `[[notify]]` tables ([`config`], [`target`]), with the bound of
//!   every wait ([`LIMIT`]);
//! - the events a receiver got, each once, and their types ([`events`], [`kinds`],
//!   [`class`], [`pos`], [`wait_events`]);
//! - `X-Offramp-Signature`, checked with RustCrypto's HMAC-SHA256 ([`assert_signed`]);
//!   `tests/notify_targets.rs` checks the helper against RFC 4231's published vectors;
//! - secret files next to the config ([`start_with_files`], [`write_file`]), and what
//!   the daemon shows of its targets: `offramp notify list --json` ([`notify_entry`],
//!   [`wait_idle`]) and `/metrics` ([`target_metric`]).
//!
//! Not declared in `common/mod.rs`: a test crate includes it with
//! `#[path = "common/notify_helpers.rs"] mod notify_helpers;` next to `mod common;` and
//! `#[path = "common/webhook.rs"] mod webhook;` (it uses both).

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{server_section, Conn, Offramp, TestOrigin};
use crate::webhook::{Recorded, Webhook};

/// The bound of every wait for a delivery, a retry or a give-up.
pub const LIMIT: Duration = Duration::from_secs(10);

/// One site (`cloud`, online in the config unless `state` says otherwise), one
/// component without a proxy (`mail`), the admin listener for `/metrics`, then `notify`.
pub fn config_with_state(origin: &TestOrigin, state: &str, notify: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\nstate = \"{state}\"\n\n\
         [[component]]\nname = \"mail\"\n\n{notify}",
        server_section("admin = \"127.0.0.1:0\"\n"),
        origin.url()
    )
}

pub fn config(origin: &TestOrigin, notify: &str) -> String {
    config_with_state(origin, "online", notify)
}

/// A `[[notify]]` table.
pub fn target(name: &str, url: &str, extra: &str) -> String {
    format!("[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}

/// The events in `reqs` (JSON bodies), each once, in the order of its first delivery
/// attempt (redeliveries carry the same `id`).
pub fn events(reqs: &[Recorded]) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in reqs {
        let v = r.json();
        let id = v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("event without a string id: {v}"))
            .to_string();
        if seen.insert(id) {
            out.push(v);
        }
    }
    out
}

pub fn kind(e: &Value) -> &str {
    e["type"].as_str().unwrap_or("(no type)")
}

pub fn kinds<'a>(evs: impl IntoIterator<Item = &'a Value>) -> Vec<&'a str> {
    evs.into_iter().map(kind).collect()
}

/// The events whose type starts with `prefix` (`site.`, `incident.`, …).
pub fn class<'a>(evs: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| kind(e).starts_with(prefix)).collect()
}

/// Position of the first event satisfying `pred`; panics naming `what`.
pub fn pos(evs: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    evs.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} among {:?}", kinds(evs)))
}

/// Waits until the events received by `w` satisfy `pred`; they.
pub fn wait_events(w: &Webhook, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    events(&w.wait_until(LIMIT, what, |r| pred(&events(r))))
}

pub fn rfc3339(v: &Value) -> OffsetDateTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not an RFC 3339 string: {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

pub fn flip(o: &Offramp, action: &str) {
    o.cli(&[action, "cloud"]).ok();
}

pub fn json_u64(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

// ---------------------------------------------------------------------------------
// HMAC-SHA256 (RFC 2104), for X-Offramp-Signature
// ---------------------------------------------------------------------------------

/// HMAC-SHA256(key, data).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `X-Offramp-Signature` value a body signed with `secret` must carry.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

/// Panics unless `req` carries exactly one `X-Offramp-Signature`, and it is
/// `sha256=` + the lowercase hex HMAC-SHA256 of its raw body with `secret`.
pub fn assert_signed(req: &Recorded, secret: &str) {
    let got = req.headers_named("x-offramp-signature");
    assert_eq!(
        got.len(),
        1,
        "one X-Offramp-Signature on {} {}: {:?}",
        req.method,
        req.target,
        req.headers
    );
    let want = signature(secret, &req.body);
    assert_eq!(
        got[0],
        want,
        "X-Offramp-Signature of the body {:?} with the secret {secret:?}",
        req.text()
    );
}

// ---------------------------------------------------------------------------------
// What the daemon shows of its targets
// ---------------------------------------------------------------------------------

/// Writes `files` (name, content, mode) and `config` as `offramp.toml` into a new temp
/// dir, then starts the daemon there (relative paths in the config are relative to it).
pub fn start_with_files(config: &str, files: &[(&str, &str, u32)]) -> Offramp {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content, mode) in files {
        write_file(dir.path(), name, content, *mode);
    }
    std::fs::write(dir.path().join("offramp.toml"), config).expect("write config");
    Offramp::start_in(dir, &[])
}

/// Writes `dir/name` with that mode.
pub fn write_file(dir: &std::path::Path, name: &str, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `offramp notify list --json`, checked to be an array.
pub fn notify_list(o: &Offramp) -> Vec<Value> {
    let out = o.cli(&["notify", "list", "--json"]).ok();
    out.json()
        .as_array()
        .unwrap_or_else(|| panic!("notify list --json is not an array: {}", out.stdout))
        .clone()
}

/// The `notify list --json` entry of target `name`.
pub fn notify_entry(o: &Offramp, name: &str) -> Value {
    let all = notify_list(o);
    all.iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("target {name} not in notify list --json: {all:?}"))
}

/// Waits until target `name` has nothing pending (`status` ok, `pending` 0); its entry.
pub fn wait_idle(o: &Offramp, name: &str, limit: Duration) -> Value {
    let mut last = Value::Null;
    let deadline = Instant::now() + limit;
    loop {
        let e = notify_entry(o, name);
        if e["status"] == "ok" && e["pending"] == 0 {
            return e;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {name} to have nothing pending; last entry: {last}");
        }
        last = e;
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (labels, value) of every sample of metric `name` on the admin listener.
pub fn samples(o: &Offramp, name: &str) -> Vec<(std::collections::BTreeMap<String, String>, f64)> {
    let r = Conn::open(o.admin.expect("admin listener (set [server] admin)"))
        .get("localhost", "/metrics");
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    let mut out = Vec::new();
    for l in r.text().lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = l.rsplit_once(' ') else {
            continue;
        };
        let (n, labels) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            continue;
        }
        let labels = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        out.push((labels, value.parse().expect("metric value")));
    }
    out
}

/// The value of metric `name` for `{target="TARGET"}`; `None` when it has no such series.
pub fn target_metric(o: &Offramp, name: &str, target: &str) -> Option<f64> {
    samples(o, name)
        .into_iter()
        .find(|(l, _)| l.get("target").map(String::as_str) == Some(target))
        .map(|(_, v)| v)
}
