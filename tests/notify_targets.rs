//! Webhook notifications end to end (CONTRACT sections 11, 15 and 17), the targets:
//! the test receiver (`common/webhook.rs`) and the signature helper checked first;
//! then a world-readable secret file, refused by `offramp check` and `serve` without
//! showing it; a target added by a reload, and the classes `events` picks; `offramp
//! notify test` and its exit codes; and the body shapes of slack, discord and ntfy.
//!
//! Every wait is bounded (`LIMIT`, in `common/notify_helpers.rs`). The events
//! themselves are checked in `tests/notify.rs`, retries and restarts in
//! `tests/notify_delivery.rs`.

mod common;

#[path = "common/webhook.rs"]
mod webhook;

#[path = "common/notify_helpers.rs"]
mod notify_helpers;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use notify_helpers::*;
use serde_json::Value;
use webhook::*;

// ---------------------------------------------------------------------------------
// The receiver and the signature helper
// ---------------------------------------------------------------------------------

#[test]
fn the_signature_helper_matches_the_published_vectors() {
    // RFC 4231 test cases 2 and 6 (a key longer than the block).
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn the_receiver_records_every_request_and_answers_by_its_script() {
    let mut hook = Webhook::start();
    hook.script(&[Reply::Status(500), Reply::RetryAfter(2)]);
    let mut c = Conn::open(hook.addr);
    let h = [("Content-Type", "application/json"), ("X-Test", "1")];
    let r = c.request("POST", "hook", "/a?b=c", &h, br#"{"n":1}"#);
    assert_eq!(r.status, 500);
    let r = c.request("POST", "hook", "/a", &h, br#"{"n":2}"#);
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    let r = c.request("POST", "hook", "/a", &h, br#"{"n":3}"#);
    assert_eq!(r.status, 200, "the default after the script");
    let reqs = hook.wait_count(3, LIMIT, "three requests");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/a?b=c");
    assert_eq!(reqs[0].path(), "/a");
    assert_eq!(reqs[0].header("x-test"), Some("1"));
    assert_eq!(reqs[0].json()["n"], 1);
    assert_eq!(
        reqs.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [Some(500), Some(429), Some(200)]
    );
    assert_eq!(hook.conns(), 1, "keep-alive");

    hook.down();
    let refused = std::net::TcpStream::connect_timeout(&hook.addr, Duration::from_secs(2));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "down: {refused:?}"
    );
    hook.up();
    assert_eq!(
        Conn::open(hook.addr)
            .request("POST", "h", "/", &[], b"x")
            .status,
        200
    );

    hook.set_default(Reply::Hang);
    let mut c = Conn::open(hook.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    hook.wait_count(5, LIMIT, "the hung request");
    assert!(
        !c.is_closed(Duration::from_millis(300)),
        "no answer, not closed"
    );
    assert_eq!(hook.requests()[4].answered, None);

    hook.set_handler(|r| Reply::json(201, &serde_json::json!({ "path": r.path() })));
    let r = Conn::open(hook.addr).request("PATCH", "h", "/x/y", &[], b"{}");
    assert_eq!(
        (r.status, r.json()["path"].clone()),
        (201, Value::from("/x/y"))
    );
    drop(hook);
}

// ---------------------------------------------------------------------------------
// Secret files
// ---------------------------------------------------------------------------------

#[test]
fn a_world_readable_secret_file_is_refused_by_check_and_serve_without_showing_it() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offramp.toml");
    std::fs::write(
        &path,
        config(
            &origin,
            &target(
                "ops",
                "http://127.0.0.1:9/hook",
                "secret_file = \"ops.secret\"\n",
            ),
        ),
    )
    .expect("write config");
    let p = path.to_str().expect("utf-8 path");
    let secret = "TopSecret-4711-xyz";
    let no_secret = |out: &CliOut| {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "the secret is never printed: {out:?}"
        );
    };

    write_file(dir.path(), "ops.secret", &format!("{secret}\n"), 0o644);
    let out = cli(&["check", "-c", p]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("ops.secret"), "names the file: {out:?}");
    no_secret(&out);
    let out = run_with_timeout(Command::new(bin()).args(["serve", "-c", p]), WAIT);
    assert_eq!(out.code, Some(1), "serve refuses it too: {out:?}");
    assert!(out.stderr.contains("ops.secret"), "{out:?}");
    no_secret(&out);

    for mode in [0o600, 0o640] {
        write_file(dir.path(), "ops.secret", &format!("{secret}\n"), mode);
        let out = cli(&["check", "-c", p]);
        assert_eq!(out.code, Some(0), "mode {mode:o} is fine: {out:?}");
        no_secret(&out);
    }

    write_file(dir.path(), "ops.secret", " \n", 0o600);
    let out = cli(&["check", "-c", p]);
    assert_eq!(out.code, Some(1), "an empty secret: {out:?}");
    assert!(out.stderr.contains("ops.secret"), "{out:?}");

    std::fs::remove_file(dir.path().join("ops.secret")).expect("rm");
    let out = cli(&["check", "-c", p]);
    assert_eq!(out.code, Some(1), "a missing secret file: {out:?}");
    assert!(out.stderr.contains("ops.secret"), "{out:?}");
}

// ---------------------------------------------------------------------------------
// Targets added by a reload, and `events`
// ---------------------------------------------------------------------------------

#[test]
fn a_target_added_by_a_reload_starts_with_the_next_event_and_events_filters_classes() {
    let origin = TestOrigin::start("origin");
    let all = Webhook::start();
    let incidents = Webhook::start();
    let added = Webhook::start();
    let two = format!(
        "{}{}",
        target("all", &all.url("/"), ""),
        target(
            "incidents",
            &incidents.url("/"),
            "events = [\"incident\"]\n"
        ),
    );
    let o = Offramp::start(&config(&origin, &two));
    flip(&o, "offline");
    wait_events(&all, "site.offline", |e| !class(e, "site.").is_empty());

    o.replace_config(&config(
        &origin,
        &format!(
            "{two}{}",
            target("added", &added.url("/"), "events = [\"site\"]\n")
        ),
    ));
    o.cli(&["reload"]).ok();
    wait_for(LIMIT, "the new target in notify list", || {
        notify_list(&o)
            .iter()
            .any(|t| t["name"] == "added")
            .then_some(())
    });
    flip(&o, "online");
    o.cli(&[
        "incident",
        "open",
        "Slow",
        "--impact",
        "minor",
        "--message",
        "Looking",
    ])
    .ok();
    wait_events(&all, "site.online and incident.created", |e| {
        class(e, "site.").len() >= 2 && !class(e, "incident.").is_empty()
    });
    for name in ["all", "incidents", "added"] {
        wait_idle(&o, name, LIMIT);
    }
    let got_added = events(&added.requests());
    assert_eq!(
        kinds(&got_added),
        ["site.online"],
        "no replay of what happened before it was added: {}",
        describe(&added.requests())
    );
    let got_incidents = events(&incidents.requests());
    assert_eq!(
        kinds(&got_incidents),
        ["incident.created"],
        "only its classes: {}",
        describe(&incidents.requests())
    );
    let got_all = events(&all.requests());
    assert_eq!(
        kinds(class(&got_all, "site.")),
        ["site.offline", "site.online"]
    );
    assert_eq!(
        got_added[0]["id"],
        class(&got_all, "site.")[1]["id"],
        "the same event, the same id, for every target"
    );
}

// ---------------------------------------------------------------------------------
// offramp notify test
// ---------------------------------------------------------------------------------

#[test]
fn notify_test_sends_one_test_event_and_says_whether_it_was_taken() {
    let origin = TestOrigin::start("origin");
    let ok = Webhook::start();
    let gone = Webhook::start_down();
    let broken = Webhook::start();
    broken.set_default(Reply::Status(500));
    let o = start_with_files(
        &config(
            &origin,
            &format!(
                "{}{}{}",
                target(
                    "ops",
                    &ok.url("/hook"),
                    "format = \"json\"\nsecret_file = \"ops.secret\"\n"
                ),
                target("gone", &gone.url("/hook"), ""),
                target("broken", &broken.url("/hook"), ""),
            ),
        ),
        &[("ops.secret", "test-secret\n", 0o600)],
    );

    let out = o.cli(&["notify", "test", "ops"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("test event delivered to ops") && out.stdout.contains("200"),
        "{out:?}"
    );
    let reqs = ok.wait_count(1, LIMIT, "the test event");
    assert_eq!(reqs.len(), 1, "one attempt: {}", describe(&reqs));
    let r = &reqs[0];
    let ev = r.json();
    assert_eq!(ev["type"], "test", "{ev}");
    assert_eq!(
        ev["message"], "This is a test notification from offramp.",
        "{ev}"
    );
    assert!(ev["id"].as_str().is_some_and(|s| !s.is_empty()), "{ev}");
    rfc3339(&ev["at"]);
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("x-offramp-event"), Some("test"));
    assert_eq!(r.header("x-offramp-delivery"), ev["id"].as_str());
    assert_signed(r, "test-secret");

    let out = o.cli(&["notify", "test", "ops", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let _ = out.json();
    ok.wait_count(2, LIMIT, "the second test event");
    let ids: HashSet<String> = ok
        .requests()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "each test is its own event");

    let out = o.cli(&["notify", "test", "nosuch"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("nosuch"), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");

    let out = o.cli(&["notify", "test", "gone"]);
    assert_eq!(out.code, Some(1), "a target that is down: {out:?}");
    assert!(!out.stderr.trim().is_empty(), "{out:?}");

    let out = o.cli(&["notify", "test", "broken"]);
    assert_eq!(out.code, Some(1), "a target answering 500: {out:?}");
    assert!(out.stderr.contains("500"), "{out:?}");
    assert_eq!(broken.count(), 1, "one immediate attempt, no retries");

    // A test is not an event in the outbox: nothing is pending for anyone.
    for name in ["ops", "gone", "broken"] {
        let e = notify_entry(&o, name);
        assert_eq!(json_u64(&e, "pending"), 0, "{e}");
        assert_eq!(json_u64(&e, "failed"), 0, "{e}");
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(broken.count(), 1, "the failed test is not retried");
    assert_eq!(ok.count(), 2);
}

// ---------------------------------------------------------------------------------
// slack, discord, ntfy
// ---------------------------------------------------------------------------------

#[test]
fn slack_discord_and_ntfy_get_their_own_body_shapes() {
    let origin = TestOrigin::start("origin");
    let slack = Webhook::start();
    let discord = Webhook::start();
    let ntfy = Webhook::start();
    let o = Offramp::start(&config(
        &origin,
        &format!(
            "{}{}{}",
            target(
                "slack",
                &slack.url("/services/T0/B0/XXXX"),
                "format = \"slack\"\nevents = [\"site\"]\n"
            ),
            target(
                "discord",
                &discord.url("/api/webhooks/1/abc"),
                "format = \"discord\"\nevents = [\"site\"]\n"
            ),
            target(
                "ntfy",
                &ntfy.url("/offramp-alerts"),
                "format = \"ntfy\"\nevents = [\"site\"]\n"
            ),
        ),
    ));
    o.cli(&["offline", "cloud", "--reason", "disk swap"]).ok();
    let one = |w: &Webhook, name: &str| -> Recorded {
        let r = w.wait_count(1, LIMIT, name)[0].clone();
        wait_idle(&o, name, LIMIT);
        assert_eq!(w.count(), 1, "{name}: {}", describe(&w.requests()));
        assert_eq!(r.method, "POST", "{name}");
        r
    };

    let r = one(&slack, "slack");
    assert_eq!(r.target, "/services/T0/B0/XXXX");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let body = r.json();
    let text = body["text"]
        .as_str()
        .unwrap_or_else(|| panic!("slack: {{\"text\": …}}: {body}"));
    assert!(
        text.contains("cloud"),
        "slack text names the site: {text:?}"
    );

    let r = one(&discord, "discord");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let body = r.json();
    let content = body["content"]
        .as_str()
        .unwrap_or_else(|| panic!("discord: {{\"content\": …}}: {body}"));
    assert!(
        content.contains("cloud"),
        "discord content names the site: {content:?}"
    );
    assert!(content.chars().count() <= 2000, "Discord's limit");

    let r = one(&ntfy, "ntfy");
    assert_eq!(r.target, "/offramp-alerts");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let text = r.text();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "ntfy gets plain text, not JSON: {text:?}"
    );
    assert!(
        text.contains("cloud") || r.header("title").is_some_and(|t| t.contains("cloud")),
        "ntfy names the site: {text:?} {:?}",
        r.headers
    );
    assert!(
        r.header("title").is_some_and(|t| !t.trim().is_empty()),
        "ntfy has a Title: {:?}",
        r.headers
    );
}
