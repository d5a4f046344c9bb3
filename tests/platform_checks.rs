//! What the status platform refuses, wherever a command comes from: the CLI checks what
//! it can before connecting (a mistake is exit 1 even with the daemon down; exit 2 is
//! only for a daemon that cannot be reached), usage errors are one line, and a blank
//! title or message is refused by the CLI and by the control socket alike.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn config(origin: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{origin}\"\n",
        server_section("")
    )
}

/// Asserts exit 1 with one line on stderr containing `words`.
fn refused(out: &CliOut, words: &str, what: &str) {
    assert_eq!(out.code, Some(1), "{what}: {out:?}");
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "{what}: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(words),
        "{what}: {words:?} in {}",
        out.stderr
    );
}

/// One request on the control socket, as a script would send it.
fn control(o: &Offramp, request: &Value) -> Value {
    let mut s = UnixStream::connect(o.socket()).expect("connect");
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn maintenance_times_are_checked_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let s = sock.to_str().unwrap();
    let schedule = |start: &str, end: &str| {
        cli(&[
            "--socket",
            s,
            "maintenance",
            "schedule",
            "Upgrade",
            "--site",
            "cloud",
            "--start",
            start,
            "--end",
            end,
        ])
    };
    for (start, end, words) in [
        ("tomorrow", "+1h", "invalid time \"tomorrow\""),
        ("now", "soon", "invalid time \"soon\""),
        ("+2h", "2020-01-01T00:00:00Z", "not after the start"),
        (
            "2020-01-01T00:00:00Z",
            "2020-01-01T01:00:00Z",
            "already past",
        ),
        ("2020-01-01T00:00:00Z", "+1h", "already past"),
    ] {
        refused(
            &schedule(start, end),
            words,
            &format!("--start {start} --end {end}"),
        );
    }
    // Good times: only then is the daemon asked, and it is not there.
    let out = schedule("now", "+1h");
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = schedule("2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z");
    assert_eq!(
        out.code,
        Some(2),
        "a window that began already is fine: {out:?}"
    );
    // `update --end` is checked as far as it can be without the window's start.
    let out = cli(&[
        "--socket",
        s,
        "maintenance",
        "update",
        "abc",
        "--end",
        "soon",
    ]);
    refused(&out, "invalid time \"soon\"", "update --end soon");
}

#[test]
fn incident_and_maintenance_without_a_subcommand_are_usage_errors() {
    for (cmd, words) in [
        ("incident", "open, update, resolve, list, show"),
        (
            "maintenance",
            "schedule, list, show, update, complete, cancel",
        ),
    ] {
        let out = cli(&[cmd]);
        refused(&out, words, cmd);
        assert!(
            out.stderr.contains(&format!("offramp {cmd}")),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "no help on stdout: {}", out.stdout);
    }
}

#[test]
fn blank_messages_and_titles_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let s = sock.to_str().unwrap();
    for args in [
        vec!["incident", "update", "abc", "--message", ""],
        vec!["incident", "update", "abc", "--message", " \t "],
        vec!["incident", "resolve", "abc", "--message", "  "],
        vec![
            "incident",
            "open",
            "t",
            "--impact",
            "minor",
            "--message",
            "",
        ],
    ] {
        let mut all = vec!["--socket", s];
        all.extend(&args);
        refused(&cli(&all), "the message is empty", &format!("{args:?}"));
    }
    refused(
        &cli(&[
            "--socket",
            s,
            "incident",
            "open",
            " ",
            "--impact",
            "minor",
            "--message",
            "m",
        ]),
        "the title is empty",
        "blank title",
    );

    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url()));
    let id = o
        .cli(&[
            "incident",
            "open",
            "Disk",
            "--impact",
            "minor",
            "--message",
            "Looking",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    refused(
        &o.cli(&["incident", "update", &id, "--message", " "]),
        "the message is empty",
        "update with the daemon up",
    );
    // The control socket applies the same rule (a script need not use the CLI).
    for request in [
        json!({"cmd": "incident_update", "id": id, "message": ""}),
        json!({"cmd": "incident_update", "id": id, "message": "\n "}),
        json!({"cmd": "incident_open", "title": "t", "impact": "minor", "message": " "}),
        json!({"cmd": "incident_open", "title": "", "impact": "minor", "message": "m"}),
    ] {
        let reply = control(&o, &request);
        assert_eq!(reply["ok"], false, "{request}: {reply}");
        let e = reply["error"].as_str().unwrap_or_default();
        assert!(e.ends_with("is empty"), "{request}: {e}");
    }
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(
        shown["updates"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );

    // Resolving twice: the second is refused, and says why.
    o.cli(&["incident", "resolve", &id]).ok();
    refused(
        &o.cli(&["incident", "resolve", &id]),
        "already resolved",
        "resolve twice",
    );
    let shown = o.cli(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(
        shown["updates"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );
}

#[test]
fn every_incident_and_maintenance_change_is_logged() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin.url()));
    let id = o
        .cli(&[
            "incident",
            "open",
            "Mail down",
            "--impact",
            "minor",
            "--message",
            "looking",
        ])
        .ok()
        .stdout;
    let id = id.trim().to_string();
    let line = o.wait_log(Duration::from_secs(5), "incident saved", |l| {
        l.contains("incident saved") && l.contains(&id)
    });
    assert!(
        line.contains("investigating") && line.contains("by=uid"),
        "{line}"
    );
    o.cli(&[
        "maintenance",
        "schedule",
        "Disk",
        "--site",
        "cloud",
        "--start",
        "+1h",
        "--end",
        "+2h",
    ])
    .ok();
    o.wait_log(Duration::from_secs(5), "maintenance saved", |l| {
        l.contains("maintenance saved") && l.contains("scheduled")
    });
}
