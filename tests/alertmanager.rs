//! offramp's Alertmanager receiver (`POST /api/v1/alertmanager`, CONTRACT section 10)
//! against the real Alertmanager: alerts posted to Alertmanager's own API, routed,
//! grouped and delivered by it to offramp's admin listener with a bearer token from a
//! file, and what visitors then see on the status host's public API.
//!
//! Timings (see `common/alertmanager.rs`, measured with Alertmanager 0.25.0): with
//! `group_wait: 0s` and `group_interval: 100ms` Alertmanager delivers a new alert 2–35
//! ms after it is posted and a resolution within about 100 ms; offramp answers only
//! once it has applied the alerts, and the contract gives it 1 s to show them. With
//! offramp in the loop (debug build, 2 cores): post → delivery 38 ms for the first
//! notification and 66 ms for a resolution (as seen through Alertmanager's `/metrics`,
//! polled every 10 ms), delivery → shown on `components.json` about 1 ms; the whole
//! file runs in about 4 s. The tests wait up to 20 s for Alertmanager (a loaded CI
//! machine) but only [`AFTER_DELIVERY`] from its delivery to the change on the public
//! API.
//!
//! Without an Alertmanager installed the tests that need one are skipped with a
//! message, unless `OFFRAMP_REQUIRE_ALERTMANAGER=1` (CI), which makes that a failure.
//! The direct POSTs of malformed bodies need none and always run.

mod common;

#[path = "common/alertmanager.rs"]
mod alertmanager;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use alertmanager::{prom_sum, Alert, Alertmanager, Timing};
use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-alertmanager";
const STATUS: &str = "status.test";
/// From Alertmanager's delivery to the change on `/api/v2/components.json`: the
/// contract says 1 s; the rest is slack for a loaded machine.
const AFTER_DELIVERY: Duration = Duration::from_secs(3);

/// A daemon with a site `cloud`, a component `db`, the built-in status page on
/// `status.test`, the write API with `am.token`, and `alerts` (an `[alerts]` section
/// or nothing).
fn daemon(origin: &TestOrigin, alerts: &str) -> Offramp {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("am.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("offramp.toml"),
        format!(
            "{}[maintenance]\nstatus_page = \"builtin\"\n\n\
             [status]\nhosts = [\"{STATUS}\"]\n\n\
             [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\n\n\
             [[component]]\nname = \"db\"\ndescription = \"PostgreSQL\"\n\n\
             [api]\ntokens = [\"am.token\"]\n\n{alerts}",
            server_section("admin = \"127.0.0.1:0\""),
            origin.url()
        ),
    )
    .unwrap();
    Offramp::start_in(dir, &[])
}

/// An Alertmanager whose receiver is `o`'s webhook, with `o`'s token file.
fn alertmanager_for(bin: &std::path::Path, o: &Offramp, timing: &Timing) -> Alertmanager {
    let url = format!(
        "http://{}/api/v1/alertmanager",
        o.admin.expect("admin listener")
    );
    Alertmanager::start(bin, &url, &o.dir.path().join("am.token"), timing)
}

/// name → status, from the status host's `/api/v2/components.json`.
fn statuses(o: &Offramp) -> BTreeMap<String, String> {
    let r = o.get(STATUS, "/api/v2/components.json");
    assert_eq!(r.status, 200, "components.json: {}", r.text());
    r.json()["components"]
        .as_array()
        .unwrap_or_else(|| panic!("no components in {}", r.text()))
        .iter()
        .filter(|c| c["group"] != true)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(o: &Offramp, name: &str) -> String {
    statuses(o)
        .remove(name)
        .unwrap_or_else(|| panic!("component {name} not in components.json"))
}

fn all_operational() -> BTreeMap<String, String> {
    [("cloud", "operational"), ("db", "operational")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The status host's `/api/v2/incidents/unresolved.json` incidents.
fn unresolved(o: &Offramp) -> Vec<Value> {
    let r = o.get(STATUS, "/api/v2/incidents/unresolved.json");
    assert_eq!(r.status, 200, "unresolved.json: {}", r.text());
    r.json()["incidents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every incident, resolved or not, as the CLI lists them.
fn all_incidents(o: &Offramp) -> Vec<Value> {
    o.cli(&["incident", "list", "--all", "--json"])
        .ok()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `offramp_alerts_total{result="unknown_component"}`.
fn unknown_alerts(o: &Offramp) -> f64 {
    let r = Conn::open(o.admin.expect("admin listener")).get("localhost", "/metrics");
    assert_eq!(r.status, 200);
    prom_sum(
        &r.text(),
        "offramp_alerts_total",
        "result=\"unknown_component\"",
    )
}

fn component_names(incident: &Value) -> Vec<String> {
    incident["components"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn alerts_set_component_statuses_and_their_resolution_clears_them() {
    let Some(bin) = alertmanager::binary_or_skip(
        "alerts_set_component_statuses_and_their_resolution_clears_them",
    ) else {
        return;
    };
    let origin = TestOrigin::start("cloud");
    let o = daemon(&origin, "");
    let am = alertmanager_for(&bin, &o, &Timing::default());
    assert_eq!(statuses(&o), all_operational());

    // Same alertname: one group. Posted together, they usually arrive in one
    // notification; with `group_wait: 0s` the group may flush after the first alert
    // and carry the second 100 ms later: both are fine, so no exact counts here.
    let cloud = Alert::new(
        &[
            ("alertname", "ServiceDown"),
            ("offramp_component", "cloud"),
            ("severity", "critical"),
            ("instance", "cloud.lan:443"),
        ],
        &[
            ("summary", "Nextcloud is down"),
            ("description", "502 from every upstream"),
        ],
    );
    let db = Alert::new(
        &[
            ("alertname", "ServiceDown"),
            ("offramp_component", "db"),
            ("severity", "warning"),
        ],
        &[("summary", "PostgreSQL is slow")],
    );
    let posted = Instant::now();
    am.fire(&[&cloud, &db]);
    let delivered = am.wait_delivered(1, WAIT);
    wait_for(
        AFTER_DELIVERY,
        "cloud major_outage and db degraded_performance",
        || {
            let s = statuses(&o);
            (s["cloud"] == "major_outage" && s["db"] == "degraded_performance").then_some(())
        },
    );
    eprintln!(
        "fire: delivered {:?} after the post, shown {:?} after the delivery",
        delivered - posted,
        delivered.elapsed()
    );
    // An alert changes what the status page says, not where visitors go.
    let r = o.get("cloud.test", "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin"), Some("cloud"), "still proxied");

    // Resolving one alert of the group: the notification carries it as resolved and
    // the other as still firing.
    let n = am.delivered();
    let posted = Instant::now();
    am.resolve(&[&cloud]);
    let delivered = am.wait_delivered(n + 1, WAIT);
    wait_for(
        AFTER_DELIVERY,
        "cloud operational, db still degraded",
        || {
            let s = statuses(&o);
            (s["cloud"] == "operational" && s["db"] == "degraded_performance").then_some(())
        },
    );
    eprintln!(
        "resolve: delivered {:?} after the post, shown {:?} after the delivery",
        delivered - posted,
        delivered.elapsed()
    );

    let n = am.delivered();
    am.resolve(&[&db]);
    am.wait_delivered(n + 1, WAIT);
    wait_for(AFTER_DELIVERY, "everything operational again", || {
        (statuses(&o) == all_operational()).then_some(())
    });
    assert_eq!(
        unresolved(&o),
        Vec::<Value>::new(),
        "no incidents by default"
    );
    assert_eq!(all_incidents(&o), Vec::<Value>::new());
    assert_eq!(
        am.failed(),
        0,
        "offramp accepted every notification at once (nothing retried); log:\n{}",
        am.log_text()
    );
}

#[test]
fn with_incidents_a_firing_alert_opens_one_incident_that_its_resolution_resolves() {
    let Some(bin) = alertmanager::binary_or_skip(
        "with_incidents_a_firing_alert_opens_one_incident_that_its_resolution_resolves",
    ) else {
        return;
    };
    let origin = TestOrigin::start("cloud");
    let o = daemon(&origin, "[alerts]\nincidents = true\n");
    // Alertmanager re-sends the unchanged firing group every ~300 ms: offramp must not
    // open an incident per notification.
    let timing = Timing {
        repeat_interval: "300ms",
        ..Timing::default()
    };
    let am = alertmanager_for(&bin, &o, &timing);
    // Alertmanager's JSON escapes <, > and & (\u003c...): the title must come out as
    // the rule wrote it.
    let summary = "Nextcloud <cloud> is down & out \u{2014} 502";
    let description = "Every upstream answers 502.\nRunbook: \"restart php-fpm\"";
    let alert = Alert::new(
        &[
            ("alertname", "CloudDown"),
            ("offramp_component", "cloud"),
            ("severity", "critical"),
        ],
        &[("summary", summary), ("description", description)],
    );
    assert_eq!(unresolved(&o), Vec::<Value>::new());

    am.fire(&[&alert]);
    am.wait_delivered(1, WAIT);
    let incident = wait_for(AFTER_DELIVERY, "an unresolved incident", || {
        unresolved(&o).into_iter().next()
    });
    assert_eq!(incident["name"], summary, "{incident}");
    assert_ne!(incident["status"], "resolved", "{incident}");
    assert!(
        component_names(&incident).contains(&"cloud".to_string()),
        "the incident names cloud: {incident}"
    );
    let updates = incident["incident_updates"].as_array().unwrap();
    assert_eq!(
        updates.last().unwrap()["body"],
        description,
        "the first update says the description: {incident}"
    );
    assert_eq!(status_of(&o, "cloud"), "major_outage");
    let id = incident["id"].as_str().unwrap().to_string();
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    let first = shown["updates"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["by"], "alertmanager", "{shown}");
    assert_eq!(first["message"], description, "{shown}");

    // Three more notifications of the same firing alert: still one incident.
    am.wait_delivered(4, WAIT);
    let now = unresolved(&o);
    assert_eq!(
        now.len(),
        1,
        "one incident however often it is notified: {now:?}"
    );
    assert_eq!(now[0]["id"], id.as_str());
    assert_eq!(all_incidents(&o).len(), 1);

    let before = am.delivered();
    am.resolve(&[&alert]);
    am.wait_delivered(before + 1, WAIT);
    // A repeat of the firing group may have been the delivery just seen; the resolved
    // one follows at the next 100 ms tick.
    wait_for(AFTER_DELIVERY, "the incident resolved", || {
        unresolved(&o).is_empty().then_some(())
    });
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(shown["status"], "resolved", "{shown}");
    assert_eq!(
        shown["updates"][0]["by"], "alertmanager",
        "resolved by alertmanager: {shown}"
    );
    let listed = o.get(STATUS, "/api/v2/incidents.json").json();
    assert_eq!(listed["incidents"][0]["id"], id.as_str());
    assert_eq!(listed["incidents"][0]["status"], "resolved");
    wait_for(AFTER_DELIVERY, "cloud operational", || {
        (statuses(&o) == all_operational()).then_some(())
    });
    assert_eq!(
        all_incidents(&o).len(),
        1,
        "no incident opened by the resolution"
    );
    assert_eq!(am.failed(), 0, "log:\n{}", am.log_text());
}

#[test]
fn an_alert_for_an_unknown_component_is_counted_answered_200_and_not_retried() {
    let Some(bin) = alertmanager::binary_or_skip(
        "an_alert_for_an_unknown_component_is_counted_answered_200_and_not_retried",
    ) else {
        return;
    };
    let origin = TestOrigin::start("cloud");
    let o = daemon(&origin, "[alerts]\nincidents = true\n");
    let am = alertmanager_for(&bin, &o, &Timing::default());
    assert_eq!(statuses(&o), all_operational());
    let unknown_before = unknown_alerts(&o);

    let ghost = Alert::new(
        &[
            ("alertname", "GhostDown"),
            ("offramp_component", "nope"),
            ("severity", "critical"),
        ],
        &[
            ("summary", "A service offramp does not know"),
            ("description", "gone"),
        ],
    );
    am.fire(&[&ghost]);
    am.wait_delivered(1, WAIT);
    wait_for(
        AFTER_DELIVERY,
        "offramp_alerts_total{result=\"unknown_component\"} to count it",
        || (unknown_alerts(&o) > unknown_before).then_some(()),
    );
    // Fifteen 100 ms ticks: a 4xx answer would have been sent again at each, a 5xx
    // retried within 0.3–1.2 s.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        am.failed(),
        0,
        "offramp answered 2xx; log:\n{}",
        am.log_text()
    );
    assert_eq!(
        am.requests(),
        1,
        "sent once, not retried; log:\n{}",
        am.log_text()
    );
    assert_eq!(
        unknown_alerts(&o),
        unknown_before + 1.0,
        "one alert, one notification"
    );
    assert_eq!(statuses(&o), all_operational(), "nothing changed");
    assert_eq!(unresolved(&o), Vec::<Value>::new(), "no incident");
    assert_eq!(all_incidents(&o), Vec::<Value>::new());
    assert!(
        o.log_text().contains("nope"),
        "the unknown component is logged:\n{}",
        o.log_text()
    );

    // A known alert joining the group: the next notification carries both; the
    // unknown one does not make offramp refuse the known one.
    let db = Alert::new(
        &[
            ("alertname", "GhostDown"),
            ("offramp_component", "db"),
            ("severity", "warning"),
        ],
        &[
            ("summary", "PostgreSQL is slow"),
            ("description", "p99 2 s"),
        ],
    );
    am.fire(&[&db]);
    am.wait_delivered(2, WAIT);
    wait_for(AFTER_DELIVERY, "db degraded_performance", || {
        (status_of(&o, "db") == "degraded_performance").then_some(())
    });
    assert_eq!(status_of(&o, "cloud"), "operational");
    let incidents = wait_for(AFTER_DELIVERY, "the incident for db", || {
        let u = unresolved(&o);
        (!u.is_empty()).then_some(u)
    });
    assert_eq!(
        incidents.len(),
        1,
        "only the known alert opens one: {incidents:?}"
    );
    assert_eq!(incidents[0]["name"], "PostgreSQL is slow");
    assert_eq!(component_names(&incidents[0]), vec!["db".to_string()]);
    assert!(unknown_alerts(&o) >= unknown_before + 1.0);
    assert_eq!(am.failed(), 0, "log:\n{}", am.log_text());
}

// ---------------------------------------------------------------------------------
// Direct POSTs, no Alertmanager needed
// ---------------------------------------------------------------------------------

/// A notification as Alertmanager 0.25.0 sent it (captured), for `cloud`; `status`
/// `firing` or `resolved`, `version` as given, `description` as given.
fn webhook_body(status: &str, version: &str, description: &str) -> Vec<u8> {
    let ends_at = if status == "firing" {
        "0001-01-01T00:00:00Z"
    } else {
        "2026-12-07T16:20:07.096904594Z"
    };
    let alert = json!({
        "status": status,
        "labels": {"alertname": "CloudDown", "offramp_component": "cloud", "severity": "critical"},
        "annotations": {"description": description, "summary": "Cloud is down"},
        "startsAt": "2026-12-07T16:19:07.096904594Z",
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.test/graph?g0.expr=up%3D%3D0&g0.tab=1",
        "fingerprint": "115179e60d48116b",
    });
    let body = json!({
        "receiver": "offramp",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"alertname": "CloudDown"},
        "commonLabels": {"alertname": "CloudDown", "offramp_component": "cloud", "severity": "critical"},
        "commonAnnotations": {"description": description, "summary": "Cloud is down"},
        "externalURL": "http://alertmanager.test:9093",
        "version": version,
        "groupKey": "{}:{alertname=\"CloudDown\"}",
        "truncatedAlerts": 0,
    });
    // Go's encoder ends the body with a newline.
    format!("{body}\n").into_bytes()
}

/// POSTs `body` to the receiver as Alertmanager does (Content-Length, no `Expect`),
/// writing from another thread so that an answer sent before the whole body is read
/// (413) is still seen: (status, JSON body or null).
fn post_webhook(o: &Offramp, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let admin = o.admin.expect("admin listener");
    let mut c = Conn::open(admin);
    let mut head = format!(
        "POST /api/v1/alertmanager HTTP/1.1\r\nHost: {admin}\r\nUser-Agent: Alertmanager/0.25.0\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut w = c.stream.try_clone().expect("clone stream");
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        let _ = w.write_all(&body);
    });
    let r = c.read_response(false);
    drop(c);
    let _ = writer.join();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[test]
fn malformed_notifications_are_refused_and_change_nothing() {
    let origin = TestOrigin::start("cloud");
    let o = daemon(&origin, "[alerts]\nincidents = true\n");
    let unknown_before = unknown_alerts(&o);
    let valid = webhook_body("firing", "4", "502 from every upstream");

    let (status, v) = post_webhook(&o, None, valid.clone());
    assert_eq!(status, 401, "no token: {v}");
    let (status, v) = post_webhook(
        &o,
        Some("0123456789abcdef0123456789abcdef-wrong"),
        valid.clone(),
    );
    assert_eq!(status, 401, "wrong token: {v}");

    // Not JSON: the valid body cut in half, and form data.
    for body in [
        valid[..valid.len() / 2].to_vec(),
        b"receiver=offramp&version=4".to_vec(),
    ] {
        let (status, v) = post_webhook(&o, Some(TOKEN), body);
        assert_eq!(status, 400, "not JSON: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    // JSON, not a notification.
    let (status, v) = post_webhook(&o, Some(TOKEN), b"[]".to_vec());
    assert_eq!(status, 400, "an array: {v}");

    // Version 3 (Alertmanager before 0.9 sent "3"), otherwise the valid body.
    let (status, v) = post_webhook(&o, Some(TOKEN), webhook_body("firing", "3", "x"));
    assert_eq!(status, 400, "version 3: {v}");
    assert!(v["error"].is_string(), "{v}");

    // Over 1 MiB: a valid notification with a long description.
    let big = webhook_body("firing", "4", &"x".repeat(1024 * 1024));
    assert!(big.len() > 1024 * 1024);
    let (status, v) = post_webhook(&o, Some(TOKEN), big);
    assert_eq!(status, 413, "over 1 MiB: {v}");

    std::thread::sleep(Duration::from_millis(1200)); // past the contract's 1 s
    assert_eq!(statuses(&o), all_operational(), "nothing changed");
    assert_eq!(unresolved(&o), Vec::<Value>::new());
    assert_eq!(all_incidents(&o), Vec::<Value>::new());
    assert_eq!(unknown_alerts(&o), unknown_before);

    // The same notification, well formed, is accepted: the refusals above were the
    // defects', not the body's.
    let (status, v) = post_webhook(&o, Some(TOKEN), valid);
    assert_eq!(status, 200, "valid: {v}");
    wait_for(AFTER_DELIVERY, "cloud major_outage", || {
        (status_of(&o, "cloud") == "major_outage").then_some(())
    });
    assert_eq!(unresolved(&o).len(), 1);
    let (status, v) = post_webhook(&o, Some(TOKEN), webhook_body("resolved", "4", "fixed"));
    assert_eq!(status, 200, "resolved: {v}");
    wait_for(
        AFTER_DELIVERY,
        "cloud operational and the incident resolved",
        || (statuses(&o) == all_operational() && unresolved(&o).is_empty()).then_some(()),
    );
}
