//! `format = "statuspage"` (CONTRACT sections 11 and 15): offramp mirroring component
//! statuses and incidents to an Atlassian Statuspage page, against a local stand-in
//! of Statuspage's REST API (`common/webhook.rs` with a handler) that accepts only its
//! documented requests:
//!
//! - `PATCH /v1/pages/PAGE/components/ID` with `{"component":{"status":S}}`, S one of
//!   Statuspage's five statuses → 200 with the component object;
//! - `POST /v1/pages/PAGE/incidents` with `{"incident":{"name",…}}` → 201 with
//!   `{"id":"sp123",…}`;
//! - `PATCH /v1/pages/PAGE/incidents/sp123` with `{"incident":{…}}` → 200;
//!
//! each with `Authorization: OAuth KEY`. A wrong key is 401, a wrong path 404, a body
//! that is not what Statuspage takes 422 — and the tests fail on any of those, since
//! every request must be answered 2xx (except the ones a test scripts to fail).

mod common;

#[path = "common/webhook.rs"]
mod webhook;

#[path = "common/notify_helpers.rs"]
mod notify_helpers;

use std::time::Duration;

use common::*;
use notify_helpers::*;
use serde_json::{json, Value};
use webhook::*;

const LIMIT: Duration = Duration::from_secs(10);
const PAGE: &str = "pg42xyz";
const KEY: &str = "sp-key-0123456789abcdef";
const CLOUD: &str = "cmpcloud01";
const MAIL: &str = "cmpmail02";
const STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];

/// What the stand-in answers (Statuspage's documented requests only).
fn statuspage(r: &Recorded) -> Reply {
    let error = |status: u16, msg: &str| Reply::json(status, &json!({ "error": msg }));
    if r.header("authorization") != Some(format!("OAuth {KEY}").as_str()) {
        return error(401, "Could not authenticate");
    }
    if !r
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return error(415, "JSON bodies only (in this stand-in)");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
        return error(400, "body is not JSON");
    };
    let components = format!("/v1/pages/{PAGE}/components/");
    let incidents = format!("/v1/pages/{PAGE}/incidents");
    let path = r.path();
    match r.method.as_str() {
        "PATCH" if path.starts_with(&components) => {
            let id = &path[components.len()..];
            if id != CLOUD && id != MAIL {
                return error(404, "unknown component");
            }
            let status = body["component"]["status"].as_str().unwrap_or_default();
            if !STATUSES.contains(&status) {
                return error(422, "status is invalid");
            }
            Reply::json(
                200,
                &json!({"id": id, "page_id": PAGE, "name": id, "status": status,
                        "updated_at": "2026-12-07T12:00:00.000Z"}),
            )
        }
        "POST" if path == incidents => {
            let inc = &body["incident"];
            if !inc["name"].is_string() {
                return error(422, "name can't be blank");
            }
            Reply::json(
                201,
                &json!({"id": "sp123", "page_id": PAGE, "name": inc["name"],
                        "status": inc["status"], "shortlink": "http://stspg.io/sp123"}),
            )
        }
        "PATCH" if path == format!("{incidents}/sp123") => {
            if !body["incident"].is_object() {
                return error(422, "incident is missing");
            }
            Reply::json(
                200,
                &json!({"id": "sp123", "page_id": PAGE, "status": body["incident"]["status"]}),
            )
        }
        _ => error(404, "not found"),
    }
}

fn config(origin: &TestOrigin, sp: &Webhook, extra: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\n\n\
         [[component]]\nname = \"mail\"\n\n\
         [[notify]]\nname = \"sp\"\nformat = \"statuspage\"\nurl = \"{}\"\npage_id = \"{PAGE}\"\n\
         api_key_file = \"sp.key\"\ncomponents = {{ cloud = \"{CLOUD}\", mail = \"{MAIL}\" }}\n{extra}\n",
        server_section("admin = \"127.0.0.1:0\"\n"),
        origin.url(),
        sp.url("/v1"),
    )
}

fn start(origin: &TestOrigin, sp: &Webhook, key: &str) -> Offramp {
    start_with_files(
        &config(origin, sp, ""),
        &[("sp.key", &format!("{key}\n"), 0o600)],
    )
}

/// The requests that were answered 2xx; panics if any other was refused by the
/// stand-in (wrong path, key or body), naming it.
fn accepted(reqs: &[Recorded], scripted_failures: usize) -> Vec<Recorded> {
    let refused: Vec<&Recorded> = reqs.iter().filter(|r| !r.delivered()).collect();
    assert!(
        refused.len() <= scripted_failures
            && refused.iter().all(|r| r.answered.is_some_and(|s| s >= 500)),
        "the stand-in refused requests that Statuspage would refuse too:\n{}",
        describe(reqs)
    );
    reqs.iter().filter(|r| r.delivered()).cloned().collect()
}

fn component_patches(reqs: &[Recorded], id: &str) -> Vec<String> {
    let path = format!("/v1/pages/{PAGE}/components/{id}");
    reqs.iter()
        .filter(|r| r.method == "PATCH" && r.path() == path)
        .map(|r| {
            r.json()["component"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn every_flip_is_a_component_patch_in_order_none_coalesced_even_after_a_failure() {
    let origin = TestOrigin::start("origin");
    let sp = Webhook::start();
    sp.set_handler(statuspage);
    // Statuspage has a bad moment: the first PATCH fails, so the next flips queue up
    // behind it.
    sp.script(&[Reply::Status(503)]);
    let o = start(&origin, &sp, KEY);
    for action in ["offline", "online", "offline"] {
        o.cli(&[action, "cloud"]).ok();
    }
    sp.wait_until(LIMIT, "three accepted component PATCHes", |r| {
        r.iter().filter(|r| r.delivered()).count() >= 3
    });
    wait_idle(&o, "sp", LIMIT);
    let reqs = sp.requests();
    let ok = accepted(&reqs, 1);
    assert_eq!(reqs[0].answered, Some(503), "{}", describe(&reqs));
    assert_eq!(
        reqs[1].body, reqs[0].body,
        "the failed PATCH is sent again first"
    );
    assert_eq!(
        component_patches(&ok, CLOUD),
        ["under_maintenance", "operational", "under_maintenance"],
        "each status change replayed in order:\n{}",
        describe(&reqs)
    );
    assert_eq!(
        ok.len(),
        3,
        "site events send nothing to Statuspage:\n{}",
        describe(&reqs)
    );
    for r in &ok {
        assert_eq!(
            r.json(),
            json!({"component": {"status": r.json()["component"]["status"]}}),
            "the body Statuspage documents: {}",
            r.text()
        );
    }
    assert!(component_patches(&reqs, MAIL).is_empty());
    let e = notify_entry(&o, "sp");
    assert_eq!(e["format"], "statuspage", "{e}");
    assert_eq!(e["failed"], 0, "{e}");
}

#[test]
fn an_incident_is_created_then_updated_and_resolved_on_statuspage() {
    let origin = TestOrigin::start("origin");
    let sp = Webhook::start();
    sp.set_handler(statuspage);
    let o = start(&origin, &sp, KEY);
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
    assert!(!id.is_empty());
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
    let incidents = format!("/v1/pages/{PAGE}/incidents");
    sp.wait_until(
        LIMIT,
        "the resolution on Statuspage and mail operational",
        |r| {
            let ok: Vec<&Recorded> = r.iter().filter(|r| r.delivered()).collect();
            ok.iter()
                .filter(|r| r.path().starts_with(&incidents))
                .count()
                >= 3
                && ok
                    .iter()
                    .filter(|r| r.path().ends_with(&format!("/components/{MAIL}")))
                    .count()
                    >= 2
        },
    );
    wait_idle(&o, "sp", LIMIT);
    let reqs = sp.requests();
    let ok = accepted(&reqs, 0);

    let inc: Vec<&Recorded> = ok
        .iter()
        .filter(|r| r.path().starts_with(&incidents))
        .collect();
    let calls: Vec<(&str, &str)> = inc.iter().map(|r| (r.method.as_str(), r.path())).collect();
    let sp123 = format!("{incidents}/sp123");
    assert_eq!(
        calls,
        [
            ("POST", incidents.as_str()),
            ("PATCH", sp123.as_str()),
            ("PATCH", sp123.as_str())
        ],
        "created once, then updated by the id Statuspage gave:\n{}",
        describe(&reqs)
    );
    let created = inc[0].json();
    let c = &created["incident"];
    assert_eq!(c["name"], "Mail is down", "{created}");
    assert_eq!(c["status"], "investigating", "{created}");
    assert_eq!(c["impact_override"], "major", "{created}");
    assert_eq!(c["body"], "Looking into it", "{created}");
    assert_eq!(c["component_ids"], json!([MAIL]), "{created}");
    assert_eq!(
        c["components"],
        json!({ MAIL: "major_outage" }),
        "{created}"
    );
    let updated = inc[1].json();
    assert_eq!(updated["incident"]["status"], "identified", "{updated}");
    assert_eq!(updated["incident"]["body"], "A full disk", "{updated}");
    let resolved = inc[2].json();
    assert_eq!(resolved["incident"]["status"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"]["body"], "All good", "{resolved}");

    assert_eq!(
        component_patches(&ok, MAIL),
        ["major_outage", "operational"],
        "{}",
        describe(&reqs)
    );
    assert!(component_patches(&ok, CLOUD).is_empty(), "cloud unchanged");
    // The component goes down with the incident's creation, back with its resolution.
    let position = |pred: &dyn Fn(&Recorded) -> bool| {
        ok.iter()
            .position(pred)
            .unwrap_or_else(|| panic!("missing request:\n{}", describe(&reqs)))
    };
    let down = position(&|r: &Recorded| r.json()["component"]["status"] == "major_outage");
    let identified = position(&|r: &Recorded| r.json()["incident"]["status"] == "identified");
    let up = position(&|r: &Recorded| r.json()["component"]["status"] == "operational");
    assert!(
        down < identified && identified < up,
        "in the order of the changes:\n{}",
        describe(&reqs)
    );
}

#[test]
fn a_maintenance_is_a_scheduled_incident_on_statuspage() {
    let origin = TestOrigin::start("origin");
    let sp = Webhook::start();
    sp.set_handler(statuspage);
    let o = start(&origin, &sp, KEY);
    let id = o
        .cli(&[
            "maintenance",
            "schedule",
            "Mail server upgrade",
            "--component",
            "mail",
            "--start",
            "+1h",
            "--end",
            "+2h",
            "--message",
            "New disks",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    o.cli(&["maintenance", "cancel", &id]).ok();
    let incidents = format!("/v1/pages/{PAGE}/incidents");
    sp.wait_until(LIMIT, "the cancellation on Statuspage", |r| {
        r.iter()
            .filter(|r| r.delivered() && r.path().starts_with(&incidents))
            .count()
            >= 2
    });
    wait_idle(&o, "sp", LIMIT);
    let reqs = sp.requests();
    let ok = accepted(&reqs, 0);
    let inc: Vec<&Recorded> = ok
        .iter()
        .filter(|r| r.path().starts_with(&incidents))
        .collect();
    let calls: Vec<(&str, &str)> = inc.iter().map(|r| (r.method.as_str(), r.path())).collect();
    let sp123 = format!("{incidents}/sp123");
    assert_eq!(
        calls,
        [("POST", incidents.as_str()), ("PATCH", sp123.as_str())],
        "{}",
        describe(&reqs)
    );
    let created = inc[0].json();
    let c = &created["incident"];
    assert_eq!(c["name"], "Mail server upgrade", "{created}");
    assert_eq!(c["status"], "scheduled", "{created}");
    assert_eq!(c["body"], "New disks", "{created}");
    assert_eq!(c["component_ids"], json!([MAIL]), "{created}");
    for key in ["scheduled_for", "scheduled_until"] {
        rfc3339(&c[key]);
    }
    let cancelled = inc[1].json();
    assert_eq!(cancelled["incident"]["status"], "completed", "{cancelled}");
    assert_eq!(
        cancelled["incident"]["body"], "This maintenance was cancelled.",
        "{cancelled}"
    );
    // Scheduled for later: the component never went under maintenance.
    assert!(
        component_patches(&ok, MAIL).is_empty(),
        "{}",
        describe(&reqs)
    );
}

#[test]
fn a_key_statuspage_refuses_shows_as_failing_with_its_error() {
    let origin = TestOrigin::start("origin");
    let sp = Webhook::start();
    sp.set_handler(statuspage);
    let o = start(&origin, &sp, "not-the-key");
    o.cli(&["offline", "cloud"]).ok();
    let reqs = sp.wait_count(2, LIMIT, "the refused PATCH, retried");
    assert!(
        reqs.iter().all(|r| r.answered == Some(401)),
        "{}",
        describe(&reqs)
    );
    assert_eq!(reqs[0].header("authorization"), Some("OAuth not-the-key"));
    let e = wait_for(LIMIT, "sp shown failing", || {
        let e = notify_entry(&o, "sp");
        e["last_error"].is_string().then_some(e)
    });
    assert_ne!(e["status"], "ok", "{e}");
    assert!(
        e["last_error"].as_str().is_some_and(|s| s.contains("401")),
        "{e}"
    );
    assert!(
        !e.to_string().contains("not-the-key"),
        "the key is never shown: {e}"
    );
}

#[test]
fn statuspage_config_mistakes_are_refused_by_check() {
    let origin = TestOrigin::start("origin");
    let sp = Webhook::start_down();
    let good = config(&origin, &sp, "");
    let cases: Vec<(String, u32, &str)> = vec![
        (good.clone(), 0o644, "sp.key"),
        (good.replace("cloud = \"", "printer = \""), 0o600, "printer"),
        (
            good.replace(&format!("page_id = \"{PAGE}\"\n"), ""),
            0o600,
            "page_id",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offramp.toml");
    let p = path.to_str().expect("utf-8 path");
    std::fs::write(&path, &good).expect("write config");
    write_file(dir.path(), "sp.key", &format!("{KEY}\n"), 0o600);
    let out = cli(&["check", "-c", p]);
    assert_eq!(out.code, Some(0), "the good config: {out:?}");
    for (text, mode, words) in cases {
        std::fs::write(&path, &text).expect("write config");
        write_file(dir.path(), "sp.key", &format!("{KEY}\n"), mode);
        let out = cli(&["check", "-c", p]);
        assert_eq!(out.code, Some(1), "{words}: {out:?}");
        assert!(out.stderr.contains(words), "{words}: {out:?}");
        assert!(
            !out.stderr.contains(KEY) && !out.stdout.contains(KEY),
            "the key is never printed: {out:?}"
        );
    }
}
