//! The write API on the admin listener, end to end: real token files, real HTTP, the
//! real daemon and database. What a script sees: status codes, JSON, and that the
//! visitors of a site see the change.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-deploy";

fn write_token(dir: &Path, name: &str, content: &str, mode: u32) {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn config(origin: &str, api: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{origin}\"\n\n\
         [[component]]\nname = \"api\"\n\n{api}",
        server_section("admin = \"127.0.0.1:0\"")
    )
}

fn daemon(origin: &TestOrigin) -> Offramp {
    let dir = tempfile::tempdir().unwrap();
    write_token(dir.path(), "deploy.token", &format!("{TOKEN}\n"), 0o600);
    std::fs::write(
        dir.path().join("offramp.toml"),
        config(&origin.url(), "[api]\ntokens = [\"deploy.token\"]\n"),
    )
    .unwrap();
    Offramp::start_in(dir, &[])
}

/// One request to the admin listener: (status, JSON body, response headers).
fn call(
    o: &Offramp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value, Response) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let admin = o.admin.expect("admin listener");
    let r = Conn::open(admin).request(method, "admin", path, &headers, body.as_bytes());
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, r)
}

#[test]
fn without_the_right_token_nothing_changes() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let body = r#"{"title":"t","impact":"minor","message":"m"}"#;
    for token in [
        None,
        Some("wrong"),
        Some(&TOKEN[1..]),
        Some(&format!("{TOKEN}x")[..]),
    ] {
        let (status, v, r) = call(&o, "POST", "/api/v1/incidents", token, body);
        assert_eq!(status, 401, "{token:?}: {v}");
        assert!(v["error"].is_string());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let (status, v, _) = call(
        &o,
        "POST",
        "/api/v1/sites/cloud/offline",
        Some("nope"),
        "{}",
    );
    assert_eq!(status, 401, "{v}");
    assert_eq!(
        o.get("cloud.test", "/").status,
        200,
        "the site was not flipped"
    );
    let list = o.cli(&["incident", "list", "--all", "--json"]).ok().json();
    assert_eq!(list, json!([]), "nothing written");
    // /metrics and /healthz stay open.
    let admin = o.admin.unwrap();
    assert_eq!(Conn::open(admin).get("admin", "/healthz").status, 200);
    assert_eq!(Conn::open(admin).get("admin", "/metrics").status, 200);
    assert!(!o.log_text().contains(TOKEN), "the token is never logged");
}

#[test]
fn the_seed_shape_and_the_incident_lifecycle() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let (status, inc, r) = call(
        &o,
        "POST",
        "/api/v1/incidents",
        Some(TOKEN),
        r#"{"title":"API down","status":"investigating","impact":"major","message":"Looking","componentIds":["api"]}"#,
    );
    assert_eq!(status, 201, "{inc}");
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let id = inc["id"].as_str().unwrap().to_string();
    assert_eq!(
        inc["components"],
        json!([{"name": "api", "status": "partial_outage"}])
    );
    assert_eq!(inc["updates"][0]["by"], "api:deploy");
    let (status, upd, _) = call(
        &o,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(TOKEN),
        r#"{"status":"identified","message":"Found it","components":{"api":"major_outage"}}"#,
    );
    assert_eq!(status, 200, "{upd}");
    assert_eq!(upd["components"][0]["status"], "major_outage");
    let (status, v, _) = call(
        &o,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(TOKEN),
        r#"{"message":"  "}"#,
    );
    assert_eq!(status, 422, "a blank update is refused: {v}");
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(
        shown["status"], "identified",
        "the CLI sees what the API did"
    );
    let (status, done, _) = call(
        &o,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(TOKEN),
        r#"{"status":"resolved"}"#,
    );
    assert_eq!((status, done["status"].as_str()), (200, Some("resolved")));
    let (status, list, _) = call(&o, "GET", "/api/v1/incidents?all", Some(TOKEN), "");
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn bad_requests_get_400_422_404_and_change_nothing() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let t = Some(TOKEN);
    for (method, path, body, want) in [
        ("POST", "/api/v1/incidents", "not json", 400),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":5,"message":"m"}"#,
            400,
        ),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":"t","message":"m","bogus":1}"#,
            400,
        ),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":"t","message":"m","impact":"huge"}"#,
            422,
        ),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":"t","message":"m","components":["printer"]}"#,
            422,
        ),
        (
            "PATCH",
            "/api/v1/incidents/nosuchid",
            r#"{"message":"m"}"#,
            404,
        ),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":"t","message":""}"#,
            422,
        ),
        (
            "POST",
            "/api/v1/incidents",
            r#"{"title":" ","message":"m"}"#,
            422,
        ),
        (
            "POST",
            "/api/v1/maintenances",
            r#"{"title":"t","sites":["cloud"],"start":"+2h","end":"2020-01-01T00:00:00Z"}"#,
            422,
        ),
        ("DELETE", "/api/v1/maintenances/nosuchid", "", 404),
        (
            "PATCH",
            "/api/v1/components/printer",
            r#"{"status":"major_outage"}"#,
            404,
        ),
        (
            "PATCH",
            "/api/v1/components/api",
            r#"{"status":"meh"}"#,
            422,
        ),
        ("POST", "/api/v1/sites/nas/offline", "{}", 404),
        (
            "POST",
            "/api/v1/sites/cloud/offline",
            r#"{"until":"yesterday"}"#,
            422,
        ),
        ("PUT", "/api/v1/incidents", "{}", 405),
        ("GET", "/api/v1/nothing", "", 404),
    ] {
        let (status, v, _) = call(&o, method, path, t, body);
        assert_eq!(status, want, "{method} {path} {body}: {v}");
        assert!(v["error"].is_string(), "{method} {path}: {v}");
    }
    assert_eq!(
        o.cli(&["incident", "list", "--all", "--json"]).ok().json(),
        json!([])
    );
    assert_eq!(
        o.cli(&["maintenance", "list", "--all", "--json"])
            .ok()
            .json(),
        json!([])
    );
    assert_eq!(o.get("cloud.test", "/").status, 200);
}

#[test]
fn flips_maintenance_and_components_over_http() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let t = Some(TOKEN);
    let (status, v, _) = call(
        &o,
        "POST",
        "/api/v1/sites/cloud/offline",
        t,
        r#"{"reason":"deploy","until":"1h"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        o.get("cloud.test", "/a").status,
        302,
        "visitors are redirected"
    );
    let st = o.cli(&["status", "--json"]).ok().json();
    assert_eq!(st["sites"][0]["by"], "api:deploy", "{st}");
    assert_eq!(call(&o, "POST", "/api/v1/sites/cloud/online", t, "").0, 200);
    assert_eq!(o.get("cloud.test", "/a").status, 200);
    assert_eq!(call(&o, "POST", "/api/v1/sites/cloud/reset", t, "").0, 200);

    let (status, m, _) = call(
        &o,
        "POST",
        "/api/v1/maintenances",
        t,
        r#"{"title":"Upgrade","sites":["cloud"],"start":"now","end":"+1h","message":"Going down"}"#,
    );
    assert_eq!(status, 201, "{m}");
    assert_eq!(
        o.get("cloud.test", "/").status,
        302,
        "the window is in force"
    );
    let id = m["id"].as_str().unwrap();
    let (status, v, _) = call(
        &o,
        "PATCH",
        &format!("/api/v1/maintenances/{id}"),
        t,
        r#"{"message":"Half way"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (status, v, _) = call(&o, "DELETE", &format!("/api/v1/maintenances/{id}"), t, "");
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("cancelled")),
        "{v}"
    );
    assert_eq!(o.get("cloud.test", "/").status, 200, "back at once");

    let (status, v, _) = call(
        &o,
        "PATCH",
        "/api/v1/components/api",
        t,
        r#"{"component":{"status":"degraded_performance"}}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"name": "api", "status": "degraded_performance"}));
    // Not an Alertmanager notification: 400, nothing changed (tests/alertmanager.rs has
    // the real Alertmanager).
    assert_eq!(call(&o, "POST", "/api/v1/alertmanager", t, "{}").0, 400);
}

#[test]
fn token_files_must_be_private_long_and_present() {
    let origin = TestOrigin::start("o");
    for (content, mode, words) in [
        (format!("{TOKEN}\n"), 0o644, "readable by everyone"),
        ("short\n".to_string(), 0o600, "shorter than 32"),
        (String::new(), 0o600, "empty"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_token(dir.path(), "deploy.token", &content, mode);
        let path = dir.path().join("offramp.toml");
        std::fs::write(
            &path,
            config(&origin.url(), "[api]\ntokens = [\"deploy.token\"]\n"),
        )
        .unwrap();
        let out = cli(&["check", "-c", path.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("deploy.token") && out.stderr.contains(words),
            "{words}: {}",
            out.stderr
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.toml");
    std::fs::write(
        &path,
        config(&origin.url(), "[api]\ntokens = [\"missing.token\"]\n"),
    )
    .unwrap();
    let out = cli(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("missing.token"), "{}", out.stderr);
}

#[test]
fn without_an_api_section_the_api_is_404() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin.url(), ""));
    let (status, v, _) = call(&o, "POST", "/api/v1/incidents", Some(TOKEN), "{}");
    assert_eq!(status, 404, "{v}");
}
