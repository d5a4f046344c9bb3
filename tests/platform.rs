//! `offramp incident …` and `offramp maintenance …` end to end: the real CLI against
//! the real daemon with its database in a temp directory; what an operator types and
//! reads, exit codes included.

mod common;

use std::time::Duration;

use common::*;

fn config(origin: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{origin}\"\n\n\
         [[component]]\nname = \"mail\"\n",
        server_section("")
    )
}

fn lines_of(out: &CliOut) -> Vec<&str> {
    out.stdout.lines().collect()
}

#[test]
fn an_incident_from_open_to_resolved() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url()));
    let out = o
        .cli(&[
            "incident",
            "open",
            "Mail is <down>",
            "--impact",
            "major",
            "--component",
            "mail=major_outage",
            "--component",
            "cloud",
            "--message",
            "Looking into it",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    assert_eq!(lines_of(&out).len(), 1, "the ID alone: {out:?}");
    assert_eq!(id.len(), 12, "{id:?}");

    let listed = o.cli(&["incident", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["name"], "Mail is <down>");
    assert_eq!(listed[0]["status"], "investigating");
    assert!(listed[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        listed[0]["components"],
        serde_json::json!([{"name": "mail", "status": "major_outage"},
                           {"name": "cloud", "status": "partial_outage"}])
    );

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
    o.cli(&[
        "incident",
        "update",
        &id,
        "--status",
        "monitoring",
        "--impact",
        "minor",
        "--component",
        "mail=degraded_performance",
        "--message",
        "Disk replaced",
    ])
    .ok();
    let shown = o.cli(&["incident", "show", &id]).ok();
    let text = &shown.stdout;
    for want in [
        "Mail is <down>",
        "monitoring",
        "minor",
        "mail (degraded_performance)",
        "Disk replaced",
        "A full disk",
        "Looking into it",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let (newest, oldest) = (
        text.find("Disk replaced").unwrap(),
        text.find("Looking into it").unwrap(),
    );
    assert!(newest < oldest, "timeline newest first:\n{text}");
    let json = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(json["updates"].as_array().unwrap().len(), 3);

    let table = o.cli(&["incident", "list"]).ok().stdout;
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id), "{table}");

    o.cli(&["incident", "resolve", &id, "--message", "All good"])
        .ok();
    assert_eq!(
        o.cli(&["incident", "list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    assert_eq!(
        o.cli(&["incident", "list"]).ok().stdout.trim(),
        "no incidents"
    );
    let all = o.cli(&["incident", "list", "--all", "--json"]).ok().json();
    assert_eq!(all[0]["status"], "resolved");
    assert!(all[0]["resolved_at"].is_string());
}

#[test]
fn mistakes_are_exit_1_with_one_line_and_nothing_written() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url()));
    let long = "t".repeat(201);
    let huge = "m".repeat(10_001);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["incident", "show", "nosuchid"], "unknown incident"),
        (
            vec![
                "incident",
                "open",
                "x",
                "--impact",
                "minor",
                "--component",
                "printer",
                "--message",
                "m",
            ],
            "unknown component",
        ),
        (
            vec![
                "incident",
                "open",
                "x",
                "--impact",
                "minor",
                "--component",
                "mail=on_fire",
                "--message",
                "m",
            ],
            "unknown component status",
        ),
        (
            vec![
                "incident",
                "open",
                "x",
                "--impact",
                "huge",
                "--message",
                "m",
            ],
            "unknown impact",
        ),
        (
            vec![
                "incident",
                "open",
                &long,
                "--impact",
                "minor",
                "--message",
                "m",
            ],
            "201 characters",
        ),
        (
            vec![
                "incident",
                "open",
                "x",
                "--impact",
                "minor",
                "--message",
                &huge,
            ],
            "10001 characters",
        ),
        (
            vec!["incident", "open", "x", "--impact", "minor"],
            "--message",
        ),
        (
            vec![
                "maintenance",
                "schedule",
                "x",
                "--site",
                "cloud",
                "--start",
                "now",
                "--end",
                "2020-01-01T00:00:00Z",
            ],
            "not after the start",
        ),
        (
            vec![
                "maintenance",
                "schedule",
                "x",
                "--site",
                "nas",
                "--start",
                "now",
                "--end",
                "+1h",
            ],
            "unknown site",
        ),
        (
            vec![
                "maintenance",
                "schedule",
                "x",
                "--start",
                "now",
                "--end",
                "+1h",
            ],
            "--site or --component",
        ),
        (
            vec!["maintenance", "complete", "nosuchid"],
            "unknown maintenance",
        ),
    ];
    for (args, words) in cases {
        let out = o.cli(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(words),
            "{args:?}: {words:?} in {}",
            out.stderr
        );
    }
    assert_eq!(
        o.cli(&["incident", "list", "--all", "--json"]).ok().json(),
        serde_json::json!([])
    );
    assert_eq!(
        o.cli(&["maintenance", "list", "--all", "--json"])
            .ok()
            .json(),
        serde_json::json!([])
    );
}

#[test]
fn without_a_daemon_the_cli_exits_2_and_checks_what_it_can_first() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let s = sock.to_str().unwrap();
    let out = cli(&["--socket", s, "incident", "list"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let long = "t".repeat(201);
    let out = cli(&[
        "--socket",
        s,
        "incident",
        "open",
        &long,
        "--impact",
        "minor",
        "--message",
        "m",
    ]);
    assert_eq!(out.code, Some(1), "checked before connecting: {out:?}");
}

#[test]
fn a_scheduled_window_flips_its_site_and_shows_in_status() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url()));
    let id = o
        .cli(&[
            "maintenance",
            "schedule",
            "Disk swap",
            "--site",
            "cloud",
            "--component",
            "mail",
            "--start",
            "now",
            "--end",
            "+3s",
            "--message",
            "New disks",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(o.get("cloud.test", "/x").status, 302, "offline at once");
    let st = o.cli(&["status", "--json"]).ok().json();
    assert_eq!(st["sites"][0]["source"], "maintenance", "{st}");
    assert_eq!(st["sites"][0]["by"], format!("maintenance:{id}"));
    let table = o.cli(&["status"]).ok().stdout;
    assert!(
        table.contains("maintenance") && table.contains("Disk swap"),
        "{table}"
    );
    let listed = o.cli(&["maintenance", "list"]).ok().stdout;
    assert!(
        listed.contains("in_progress") && listed.contains(&id),
        "{listed}"
    );
    // A hard restart in the middle: still in force, and it still ends on time.
    let o = o.kill_and_restart();
    assert_eq!(
        o.get("cloud.test", "/x").status,
        302,
        "in force after a restart"
    );
    wait_for(Duration::from_secs(8), "the window's end", || {
        (o.get("cloud.test", "/x").status == 200).then_some(())
    });
    let all = o
        .cli(&["maintenance", "list", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(all[0]["status"], "completed", "{all}");
    assert_eq!(
        o.cli(&["maintenance", "list"]).ok().stdout.trim(),
        "no maintenance"
    );
}

#[test]
fn update_moves_the_end_and_cancel_ends_a_window_at_once() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url()));
    let id = o
        .cli(&[
            "maintenance",
            "schedule",
            "Upgrade",
            "--site",
            "cloud",
            "--start",
            "now",
            "--end",
            "+1h",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let moved = o
        .cli(&[
            "maintenance",
            "update",
            &id,
            "--end",
            "+3h",
            "--message",
            "Takes longer",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(moved["updates"][0]["message"], "Takes longer");
    let until = o.cli(&["status", "--json"]).ok().json()["sites"][0]["until"].clone();
    assert_eq!(until, moved["end"], "status follows the new end");
    o.cli(&["maintenance", "cancel", &id]).ok();
    assert_eq!(o.get("cloud.test", "/").status, 200, "back at once");
    let out = o.cli(&["maintenance", "cancel", &id]);
    assert_eq!(out.code, Some(1), "{out:?}");
    // --no-auto announces without flipping.
    o.cli(&[
        "maintenance",
        "schedule",
        "Announce",
        "--site",
        "cloud",
        "--start",
        "now",
        "--end",
        "+1h",
        "--no-auto",
    ])
    .ok();
    assert_eq!(
        o.get("cloud.test", "/").status,
        200,
        "--no-auto does not flip"
    );
}
