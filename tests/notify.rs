//! Webhook notifications end to end (CONTRACT sections 11, 15 and 17), the events: the
//! real daemon delivering to real HTTP receivers on loopback (`common/webhook.rs`), and
//! what arrives for each change (a flip, an incident from open to resolved, maintenance
//! windows): in which order, with which headers, signature and body, and how `offramp
//! notify list` and `/metrics` count it.
//!
//! Health taking a site offline is announced too (source `health`).
//! Every wait is bounded (`LIMIT`, in `common/notify_helpers.rs` with the config and
//! event helpers the notify tests share); windows are to the second. Failures,
//! retries, restarts and reloads are in `tests/notify_delivery.rs`; secret files,
//! `offramp notify test`, `events` and the slack, discord and ntfy shapes in
//! `tests/notify_targets.rs`; the Statuspage mirror in `tests/notify_statuspage.rs`.

mod common;

#[path = "common/webhook.rs"]
mod webhook;

#[path = "common/notify_helpers.rs"]
mod notify_helpers;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use notify_helpers::*;
use serde_json::Value;
use time::OffsetDateTime;
use webhook::*;

// ---------------------------------------------------------------------------------
// format = "json"
// ---------------------------------------------------------------------------------

#[test]
fn a_json_target_gets_each_flip_in_order_signed_with_its_secret_file() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    let o = start_with_files(
        &config(
            &origin,
            &target(
                "ops",
                &hook.url("/hooks/offramp?team=ops"),
                "format = \"json\"\nsecret_file = \"ops.secret\"\n",
            ),
        ),
        // Surrounding whitespace is not part of the secret.
        &[("ops.secret", "  s3cret-value\n", 0o600)],
    );
    let before = OffsetDateTime::now_utc() - Duration::from_secs(1);
    o.cli(&["offline", "cloud", "--reason", "disk swap"]).ok();
    flip(&o, "online");
    wait_events(&hook, "site.offline and site.online", |e| {
        class(e, "site.").len() >= 2
    });
    let entry = wait_idle(&o, "ops", LIMIT);
    let after = OffsetDateTime::now_utc() + Duration::from_secs(1);

    let reqs = hook.requests();
    let evs = events(&reqs);
    assert_eq!(
        reqs.len(),
        evs.len(),
        "a target answering 200 gets each event once:\n{}",
        describe(&reqs)
    );
    let ua = format!("offramp/{}", env!("CARGO_PKG_VERSION"));
    let mut ids = HashSet::new();
    for (r, e) in reqs.iter().zip(&evs) {
        assert_eq!(r.method, "POST", "{}", describe(&reqs));
        assert_eq!(r.target, "/hooks/offramp?team=ops", "the URL as configured");
        assert!(
            r.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "Content-Type: {:?}",
            r.headers
        );
        assert_eq!(r.header("user-agent"), Some(ua.as_str()), "{:?}", r.headers);
        assert_eq!(
            r.header("x-offramp-event"),
            Some(kind(e)),
            "{:?}",
            r.headers
        );
        let id = e["id"].as_str().expect("event id");
        assert_eq!(r.header("x-offramp-delivery"), Some(id), "{:?}", r.headers);
        assert!(
            id.len() == 20
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "id: 20 characters of a-z0-9: {id:?}"
        );
        assert!(ids.insert(id.to_string()), "id {id} used twice");
        assert_signed(r, "s3cret-value");
        let at = rfc3339(&e["at"]);
        assert!(
            before <= at && at <= after,
            "`at` {at} is the time of the change"
        );
    }

    let sites = class(&evs, "site.");
    assert_eq!(
        kinds(sites.iter().copied()),
        ["site.offline", "site.online"],
        "{}",
        describe(&reqs)
    );
    for (e, state) in sites.iter().zip(["offline", "online"]) {
        assert_eq!(e["site"], "cloud", "{e}");
        assert_eq!(e["state"], state, "{e}");
        assert_eq!(e["source"], "flip", "{e}");
        assert!(!e["by"].is_null(), "who flipped it: {e}");
    }
    assert_eq!(sites[0]["reason"], "disk swap", "{}", sites[0]);

    // A site flipped offline while healthy is under maintenance, then operational again.
    let comps = class(&evs, "component.");
    let changes: Vec<(&Value, &Value, &Value)> = comps
        .iter()
        .map(|e| {
            (
                &e["component"]["name"],
                &e["component"]["status"],
                &e["component"]["previous"],
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                &Value::from("cloud"),
                &Value::from("under_maintenance"),
                &Value::from("operational")
            ),
            (
                &Value::from("cloud"),
                &Value::from("operational"),
                &Value::from("under_maintenance")
            ),
        ],
        "component.updated events: {}",
        describe(&reqs)
    );
    for c in &comps {
        assert_eq!(c["type"], "component.updated");
    }
    let went_down = pos(&evs, "cloud under_maintenance", |e| {
        e["component"]["status"] == "under_maintenance"
    });
    let back = pos(&evs, "site.online", |e| kind(e) == "site.online");
    assert!(
        went_down < back,
        "the first flip's events come before the second's: {:?}",
        kinds(&evs)
    );

    assert_eq!(entry["format"], "json", "{entry}");
    assert_eq!(entry["id"], "ops", "{entry}");
    assert_eq!(json_u64(&entry, "delivered"), evs.len() as u64, "{entry}");
    assert_eq!(json_u64(&entry, "failed"), 0, "{entry}");
    rfc3339(&entry["last_ok"]);
    assert_eq!(
        target_metric(&o, "offramp_notify_deliveries_total", "ops"),
        Some(evs.len() as f64)
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_failures_total", "ops").unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_pending", "ops"),
        Some(0.0)
    );
    // The table too.
    let table = o.cli(&["notify", "list"]).ok().stdout;
    assert!(
        table.contains("NAME") && table.contains("ops") && table.contains("json"),
        "{table}"
    );
    assert!(!table.contains("s3cret-value"), "{table}");
}

#[test]
fn an_incident_from_open_to_resolved_is_three_events_and_its_component_changes() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    let o = Offramp::start(&config(&origin, &target("ops", &hook.url("/"), "")));
    let id = o
        .cli(&[
            "incident",
            "open",
            "Mail is down",
            "--impact",
            "major",
            "--component",
            "mail=major_outage",
            "--message",
            "Looking into it",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    o.cli(&[
        "incident",
        "update",
        &id,
        "--status",
        "identified",
        "--message",
        "A full disk",
    ])
    .ok();
    o.cli(&["incident", "resolve", &id, "--message", "All good"])
        .ok();
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();

    let evs = wait_events(&hook, "incident.resolved and mail operational again", |e| {
        kinds(e).contains(&"incident.resolved") && class(e, "component.").len() >= 2
    });
    wait_idle(&o, "ops", LIMIT);
    let evs_now = events(&hook.requests());
    assert_eq!(
        evs_now.len(),
        evs.len(),
        "nothing more: {:?}",
        kinds(&evs_now)
    );

    let inc = class(&evs, "incident.");
    assert_eq!(
        kinds(inc.iter().copied()),
        ["incident.created", "incident.updated", "incident.resolved"],
        "{:?}",
        kinds(&evs)
    );
    for (e, status) in inc.iter().zip(["investigating", "identified", "resolved"]) {
        assert_eq!(e["incident"]["id"], id.as_str(), "{e}");
        assert_eq!(e["incident"]["name"], "Mail is down", "{e}");
        assert_eq!(e["incident"]["status"], status, "{e}");
        rfc3339(&e["at"]);
    }
    assert_eq!(
        inc[2]["incident"], shown,
        "incident.resolved carries the incident as `incident show --json` shows it"
    );

    let comps = class(&evs, "component.");
    assert_eq!(comps.len(), 2, "{:?}", kinds(&evs));
    assert_eq!(
        comps[0]["component"],
        serde_json::json!({"name": "mail", "status": "major_outage", "previous": "operational"})
    );
    assert_eq!(
        comps[1]["component"],
        serde_json::json!({"name": "mail", "status": "operational", "previous": "major_outage"})
    );
    let down = pos(&evs, "mail major_outage", |e| {
        e["component"]["status"] == "major_outage"
    });
    let updated = pos(&evs, "incident.updated", |e| kind(e) == "incident.updated");
    let up = pos(&evs, "mail operational", |e| {
        e["component"]["status"] == "operational"
    });
    assert!(
        down < updated && updated < up,
        "each change's events after the one before: {:?}",
        kinds(&evs)
    );
    assert!(
        class(&evs, "site.").is_empty(),
        "no site changed: {:?}",
        kinds(&evs)
    );
}

#[test]
fn maintenance_windows_are_scheduled_started_completed_or_cancelled_in_order() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    let o = Offramp::start(&config(&origin, &target("ops", &hook.url("/"), "")));
    // Starts in 1 s, ends 2 s after its start.
    let first = o
        .cli(&[
            "maintenance",
            "schedule",
            "Disk swap",
            "--site",
            "cloud",
            "--start",
            "+1s",
            "--end",
            "+2s",
            "--message",
            "New disks",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let evs = wait_events(&hook, "the window's completion, cloud back online", |e| {
        kinds(e).contains(&"maintenance.completed") && class(e, "site.").len() >= 2
    });
    let later = o
        .cli(&[
            "maintenance",
            "schedule",
            "Mail upgrade",
            "--component",
            "mail",
            "--start",
            "+1h",
            "--end",
            "+1h",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    o.cli(&["maintenance", "cancel", &later]).ok();
    let evs_all = wait_events(&hook, "maintenance.cancelled", |e| {
        kinds(e).contains(&"maintenance.cancelled")
    });
    wait_idle(&o, "ops", LIMIT);
    let evs_all_now = events(&hook.requests());
    assert_eq!(
        kinds(&evs_all_now),
        kinds(&evs_all),
        "nothing after the cancellation"
    );
    assert_eq!(
        evs_all[..evs.len()],
        evs[..],
        "the first window's events came first"
    );

    let of = |id: &str| -> Vec<(String, String)> {
        class(&evs_all, "maintenance.")
            .into_iter()
            .filter(|e| e["maintenance"]["id"] == id)
            .map(|e| {
                (
                    kind(e).to_string(),
                    e["maintenance"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        of(&first),
        pairs(&[
            ("maintenance.scheduled", "scheduled"),
            ("maintenance.started", "in_progress"),
            ("maintenance.completed", "completed"),
        ]),
        "{:?}",
        kinds(&evs_all)
    );
    assert_eq!(
        of(&later),
        pairs(&[
            ("maintenance.scheduled", "scheduled"),
            ("maintenance.cancelled", "cancelled"),
        ]),
        "{:?}",
        kinds(&evs_all)
    );
    assert_eq!(
        class(&evs_all, "maintenance.").len(),
        5,
        "{:?}",
        kinds(&evs_all)
    );

    let sites = class(&evs_all, "site.");
    assert_eq!(
        kinds(sites.iter().copied()),
        ["site.offline", "site.online"],
        "{:?}",
        kinds(&evs_all)
    );
    for s in &sites {
        assert_eq!(s["site"], "cloud", "{s}");
        assert_eq!(s["source"], "window", "{s}");
    }
    let comps: Vec<(&Value, &Value)> = class(&evs_all, "component.")
        .into_iter()
        .map(|e| (&e["component"]["name"], &e["component"]["status"]))
        .collect();
    assert_eq!(
        comps,
        [
            (&Value::from("cloud"), &Value::from("under_maintenance")),
            (&Value::from("cloud"), &Value::from("operational")),
        ],
        "the cancelled window never started; {:?}",
        kinds(&evs_all)
    );

    let scheduled = pos(&evs_all, "scheduled", |e| {
        kind(e) == "maintenance.scheduled"
    });
    let started = pos(&evs_all, "started", |e| kind(e) == "maintenance.started");
    let offline = pos(&evs_all, "site.offline", |e| kind(e) == "site.offline");
    let completed = pos(&evs_all, "completed", |e| {
        kind(e) == "maintenance.completed"
    });
    let online = pos(&evs_all, "site.online", |e| kind(e) == "site.online");
    assert!(
        scheduled < started && scheduled < offline && started < completed && offline < online,
        "{:?}",
        kinds(&evs_all)
    );
    assert!(
        started < online && offline < completed,
        "the start's events before the end's: {:?}",
        kinds(&evs_all)
    );
    let gap = rfc3339(&evs_all[started]["at"]) - rfc3339(&evs_all[scheduled]["at"]);
    assert!(
        gap >= time::Duration::milliseconds(900),
        "started at its start, 1 s after it was scheduled: {gap}"
    );
}

#[test]
fn health_taking_a_site_offline_is_announced_with_source_health() {
    // An upstream nobody listens on: its checks fail from the start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let hook = Webhook::start();
    let o = Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"http://127.0.0.1:{port}\"\n\
         health = {{ path = \"/\", interval = \"100ms\", timeout = \"100ms\", fall = 2, rise = 2 }}\n\
         auto_offline = true\n\n{}",
        server_section_checked(""),
        target("ops", &hook.url("/hook"), "")
    ));
    let evs = wait_events(&hook, "site.offline by health", |e| {
        e.iter().any(|e| kind(e) == "site.offline")
    });
    let down = &evs[pos(&evs, "site.offline", |e| kind(e) == "site.offline")];
    assert_eq!(down["site"], "cloud", "{down}");
    assert_eq!(down["source"], "health", "{down}");
    let evs = wait_events(&hook, "the component's outage", |e| {
        e.iter()
            .any(|e| kind(e) == "component.updated" && e["component"]["status"] == "major_outage")
    });
    let c = &evs[pos(&evs, "component.updated", |e| {
        kind(e) == "component.updated"
    })];
    assert_eq!(c["component"]["name"], "cloud", "{c}");
    assert_eq!(c["component"]["previous"], "operational", "{c}");
    drop(o);
}
