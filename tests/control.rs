//! Runtime switching as an operator sees it (CONTRACT sections 2 and 4): the real
//! daemon driven by the real `offramp` CLI and by hand over the control socket, with
//! the effect checked where it matters — HTTP answers through the proxy, CLI output and
//! exit codes, the socket file, the state file and the daemon's log.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const STATUS_PAGE: &str = "https://status.example.com";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// The uid of this test process: what `by` must show for changes made by the tests.
fn uid() -> u32 {
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn host(site: &str) -> String {
    format!("{site}.home.example")
}

/// A whole config: `[server]`, `[maintenance]` (+ `maintenance` lines) and one site per
/// `(name, config state)`, all on `origin`, each answering on `<name>.home.example`.
fn config(origin: &TestOrigin, maintenance: &str, sites: &[(&str, &str)]) -> String {
    let mut s = format!(
        "{}[maintenance]\nstatus_page = \"{STATUS_PAGE}\"\n{maintenance}\n",
        server_section("")
    );
    for (name, state) in sites {
        s.push_str(&format!(
            "[[site]]\nname = \"{name}\"\nhosts = [\"{}\"]\nupstream = \"{}\"\nstate = \"{state}\"\n\n",
            host(name),
            origin.url()
        ));
    }
    s
}

/// `blog` and `cloud`, both online in the config.
fn two_sites(origin: &TestOrigin) -> Offramp {
    Offramp::start(&config(
        origin,
        "",
        &[("blog", "online"), ("cloud", "online")],
    ))
}

/// `status --json` through the CLI.
fn status(o: &Offramp) -> Value {
    o.cli(&["status", "--json"]).ok().json()
}

/// One site's entry of a `sites` list.
fn entry<'a>(sites: &'a Value, name: &str) -> &'a Value {
    sites["sites"]
        .as_array()
        .unwrap_or_else(|| panic!("no sites list in {sites}"))
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("site {name} not in {sites}"))
}

/// Asserts the effective state and its source as `status --json` shows them.
fn assert_status(o: &Offramp, name: &str, state: &str, source: &str) {
    let st = status(o);
    let e = entry(&st, name);
    assert_eq!(e["state"], state, "state of {name}: {e}");
    assert_eq!(e["source"], source, "source of {name}: {e}");
}

/// The site answers as online: proxied to the test origin.
fn assert_proxied(o: &Offramp, site: &str) {
    let r = o.get(&host(site), "/hello?x=1");
    assert_eq!(r.status, 200, "{site} should be proxied: {}", r.text());
    assert_eq!(r.json()["origin"], "origin", "{site}: {}", r.text());
    assert_eq!(r.json()["target"], "/hello?x=1");
}

/// The site answers as offline: 302 to the status page with the path and query kept.
fn assert_redirected(o: &Offramp, site: &str) {
    let r = o.get(&host(site), "/files/report.pdf?a=1&b=2");
    assert_redirect(&r, site);
}

fn assert_redirect(r: &Response, site: &str) {
    assert_eq!(r.status, 302, "{site} should be offline: {}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("{STATUS_PAGE}/files/report.pdf?a=1&b=2").as_str()),
        "{site}: {:?}",
        r.headers
    );
}

/// Exit `code` and exactly one non-empty line on stderr, containing each of `needles`.
fn assert_one_line_error(out: &CliOut, code: i32, needles: &[&str]) {
    assert_eq!(out.code, Some(code), "exit code: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {out:?}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr should mention {n:?}: {out:?}");
    }
}

/// The table printed by the CLI: header columns in order, and the row of `site`.
/// The table row of `site`, after checking its STATE and SOURCE columns.
fn assert_row<'a>(out: &'a str, site: &str, state: &str, source: &str) -> &'a str {
    let row = table_row(out, site);
    assert_eq!(
        &row.split_whitespace().collect::<Vec<_>>()[1..3],
        [state, source],
        "row: {row}"
    );
    row
}

fn table_row<'a>(out: &'a str, site: &str) -> &'a str {
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["SITE", "STATE", "SOURCE", "SINCE", "UNTIL", "REASON", "BY"],
        "table header:\n{out}"
    );
    lines
        .find(|l| l.split_whitespace().next() == Some(site))
        .unwrap_or_else(|| panic!("no row for {site} in:\n{out}"))
}

fn rfc3339(v: &Value) -> OffsetDateTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 time, got {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// A raw client of the control socket, one JSON object per line each way.
struct Ctl {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Ctl {
    fn open(path: &Path) -> Ctl {
        let s =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.set_write_timeout(Some(WAIT)).expect("timeout");
        Ctl {
            writer: s.try_clone().expect("clone"),
            reader: BufReader::new(s),
        }
    }

    /// Writes raw bytes; false if the daemon already closed the connection.
    fn send(&mut self, bytes: &[u8]) -> bool {
        match self.writer.write_all(bytes) {
            Ok(()) => true,
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                false
            }
            Err(e) => panic!("write to control socket: {e}"),
        }
    }

    /// The next reply line as JSON; `None` when the daemon closed the connection.
    fn reply(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert!(
                    line.ends_with('\n'),
                    "reply not newline-terminated: {line:?}"
                );
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line:?}")),
                )
            }
            Err(e) => panic!("read from control socket: {e}"),
        }
    }

    /// Sends one request line and returns the reply.
    fn call(&mut self, line: &str) -> Value {
        assert!(self.send(format!("{line}\n").as_bytes()), "daemon closed");
        self.reply()
            .unwrap_or_else(|| panic!("no reply to {line}: connection closed"))
    }
}

/// Starting a new daemon on the directory of a stopped one.
trait RestartStopped {
    fn restart_stopped(self) -> Offramp;
}

impl RestartStopped for Offramp {
    fn restart_stopped(mut self) -> Offramp {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        Offramp::start_in(dir, &[])
    }
}

/// A refusal as the protocol describes it: `{"ok":false,"error":"..."}`.
fn assert_refused(reply: &Value, what: &str) {
    assert_eq!(reply["ok"], false, "{what}: {reply}");
    assert!(
        reply["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: error message expected: {reply}"
    );
}

/// The daemon is still alive and working: `status` answers, requests are proxied.
fn assert_still_serving(o: &mut Offramp, site: &str) {
    assert!(
        o.child.try_wait().expect("try_wait").is_none(),
        "daemon exited; log:\n{}",
        o.log_text()
    );
    assert_eq!(status(o)["sites"].as_array().map(Vec::len), Some(2));
    assert_proxied(o, site);
}

// ---------------------------------------------------------------------------------
// Flips and status
// ---------------------------------------------------------------------------------

#[test]
fn offline_redirects_keeping_path_and_query_and_online_proxies_again() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    assert_proxied(&o, "blog");

    let out = o.cli(&["offline", "blog", "--reason", "disk swap"]).ok();
    let row = table_row(&out.stdout, "blog");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..3], ["offline", "runtime"], "row: {row}");
    assert!(row.contains("disk swap"), "reason in row: {row}");
    assert!(row.ends_with(&format!("uid {}", uid())), "by in row: {row}");
    // SINCE is a time, UNTIL is "-" (none given).
    assert!(
        cols[3].len() == 10 && cols[3].starts_with("20"),
        "since: {row}"
    );
    assert_eq!(cols[5], "-", "until: {row}");
    assert!(
        !out.stdout.contains("cloud"),
        "only the touched site: {}",
        out.stdout
    );

    let r = o.get(&host("blog"), "/files/report.pdf?a=1&b=2");
    assert_redirect(&r, "blog");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(
        r.text()
            .contains(&format!("{STATUS_PAGE}/files/report.pdf")),
        "body links to the status page: {}",
        r.text()
    );
    // The other site is untouched.
    assert_proxied(&o, "cloud");

    let before = origin.request_count();
    let out = o.cli(&["online", "blog", "--reason", "done"]).ok();
    let row = assert_row(&out.stdout, "blog", "online", "runtime");
    assert!(row.contains("done"), "{row}");
    assert_proxied(&o, "blog");
    assert!(origin.request_count() > before, "reached the origin");
}

#[test]
fn status_table_json_and_site_filter() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "offline")],
    ));

    // Table: every site, config states.
    let out = o.cli(&["status"]).ok();
    let blog = assert_row(&out.stdout, "blog", "online", "config");
    assert_row(&out.stdout, "cloud", "offline", "config");
    assert!(blog.ends_with('-'), "no BY for config: {blog}");

    // JSON: stable fields.
    let st = status(&o);
    assert!(st["global"].is_null(), "{st}");
    assert!(st.get("reload").is_some(), "reload key present: {st}");
    assert!(st.get("ok").is_none(), "no protocol envelope: {st}");
    let b = entry(&st, "blog");
    let mut keys: Vec<&str> = b
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "by",
            "config_state",
            "health",
            "name",
            "reason",
            "since",
            "source",
            "state",
            "until"
        ],
        "{b}"
    );
    // The tests' daemons run without health checks.
    assert_eq!(b["health"], "off");
    assert_eq!(b["state"], "online");
    assert_eq!(b["source"], "config");
    assert_eq!(b["config_state"], "online");
    assert!(b["until"].is_null() && b["reason"].is_null() && b["by"].is_null());
    rfc3339(&b["since"]);
    let c = entry(&st, "cloud");
    assert_eq!(
        (&c["state"], &c["config_state"]),
        (&"offline".into(), &"offline".into())
    );

    // After a flip: runtime, who, why, when.
    let t0 = OffsetDateTime::now_utc();
    o.cli(&["offline", "blog", "--reason", "disk swap"]).ok();
    let st = status(&o);
    let b = entry(&st, "blog");
    assert_eq!(b["state"], "offline");
    assert_eq!(b["source"], "runtime");
    assert_eq!(b["config_state"], "online");
    assert_eq!(b["reason"], "disk swap");
    assert_eq!(b["by"], uid());
    assert!(b["until"].is_null());
    let since = rfc3339(&b["since"]);
    assert!(
        (since - t0).whole_seconds().abs() <= 60,
        "since {since} vs now {t0}"
    );

    // Filter: only the named site.
    let one = o.cli(&["status", "blog", "--json"]).ok().json();
    let names: Vec<&Value> = one["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| &s["name"])
        .collect();
    assert_eq!(names, [&Value::from("blog")], "{one}");
    let out = o.cli(&["status", "cloud"]).ok();
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "header + cloud:\n{}",
        out.stdout
    );
    table_row(&out.stdout, "cloud");

    // Unknown site: exit 1, one line naming it.
    let out = o.cli(&["status", "nosuchsite"]);
    assert_one_line_error(&out, 1, &["nosuchsite"]);
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn global_flip_last_action_wins_and_reset_all_returns_to_config() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online"), ("wiki", "offline")],
    ));
    let u = uid();

    // A per-site flip just before the global one does not survive it.
    o.cli(&["online", "blog"]).ok();
    let out = o.cli(&["offline", "--all", "--reason", "move"]).ok();
    for s in ["blog", "cloud", "wiki"] {
        assert_row(&out.stdout, s, "offline", "all");
    }
    let st = status(&o);
    for s in ["blog", "cloud", "wiki"] {
        let e = entry(&st, s);
        assert_eq!(
            (&e["state"], &e["source"]),
            (&"offline".into(), &"all".into()),
            "{e}"
        );
        assert_eq!(e["reason"], "move");
        assert_eq!(e["by"], u);
        assert_redirected(&o, s);
    }
    assert_eq!(st["global"]["state"], "offline", "{st}");
    assert_eq!(st["global"]["by"], u, "{st}");
    assert!(
        o.cli(&["status"]).ok().stdout.contains("global"),
        "table mentions the global override"
    );

    // A later per-site flip brings back that site alone.
    o.cli(&["online", "cloud"]).ok();
    let st = status(&o);
    assert_eq!(entry(&st, "cloud")["state"], "online");
    assert_eq!(entry(&st, "cloud")["source"], "runtime");
    assert_eq!(entry(&st, "blog")["state"], "offline");
    assert_eq!(entry(&st, "wiki")["state"], "offline");
    assert_proxied(&o, "cloud");
    assert_redirected(&o, "blog");
    assert_redirected(&o, "wiki");

    // online --all: every site, even one whose config says offline.
    o.cli(&["online", "--all"]).ok();
    let st = status(&o);
    for s in ["blog", "cloud", "wiki"] {
        let e = entry(&st, s);
        assert_eq!(
            (&e["state"], &e["source"]),
            (&"online".into(), &"all".into()),
            "{e}"
        );
        assert_proxied(&o, s);
    }

    // reset --all: back to each config state, no global override left.
    let out = o.cli(&["reset", "--all"]).ok();
    table_row(&out.stdout, "wiki");
    let st = status(&o);
    assert!(st["global"].is_null(), "{st}");
    for (s, want) in [("blog", "online"), ("cloud", "online"), ("wiki", "offline")] {
        let e = entry(&st, s);
        assert_eq!(
            (&e["state"], &e["source"]),
            (&want.into(), &"config".into()),
            "{e}"
        );
        assert!(e["reason"].is_null() && e["by"].is_null(), "{e}");
    }
    assert_proxied(&o, "blog");
    assert_proxied(&o, "cloud");
    assert_redirected(&o, "wiki");
}

#[test]
fn reset_site_drops_its_own_override_only() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);

    o.cli(&["offline", "blog", "cloud", "--reason", "r"]).ok();
    assert_redirected(&o, "blog");
    let out = o.cli(&["reset", "blog"]).ok();
    assert_row(&out.stdout, "blog", "online", "config");
    let st = status(&o);
    let b = entry(&st, "blog");
    assert_eq!(
        (&b["state"], &b["source"]),
        (&"online".into(), &"config".into())
    );
    assert!(b["reason"].is_null() && b["by"].is_null(), "{b}");
    assert_eq!(entry(&st, "cloud")["state"], "offline", "cloud untouched");
    assert_proxied(&o, "blog");
    assert_redirected(&o, "cloud");
}

#[test]
fn reset_site_under_a_global_override_is_the_latest_action_for_that_site() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online"), ("wiki", "offline")],
    ));

    // `reset cloud` after `offline --all`: cloud back to its config, the rest stays.
    o.cli(&["offline", "--all", "--reason", "move"]).ok();
    let out = o.cli(&["reset", "cloud"]).ok();
    assert_row(&out.stdout, "cloud", "online", "config");
    let st = status(&o);
    let c = entry(&st, "cloud");
    assert_eq!(
        (&c["state"], &c["source"]),
        (&"online".into(), &"config".into()),
        "{c}"
    );
    assert!(c["reason"].is_null() && c["by"].is_null(), "{c}");
    assert_eq!(st["global"]["state"], "offline", "the global stays: {st}");
    assert_status(&o, "blog", "offline", "all");
    assert_proxied(&o, "cloud");
    assert_redirected(&o, "blog");
    let table = o.cli(&["status"]).ok().stdout;
    assert!(
        table.contains("not followed by (changed after it): cloud (config)"),
        "the table says which sites the global does not cover:\n{table}"
    );

    // A site whose config says offline goes back to offline.
    o.cli(&["online", "--all"]).ok();
    o.cli(&["reset", "wiki"]).ok();
    assert_status(&o, "wiki", "offline", "config");
    assert_redirected(&o, "wiki");
    assert_status(&o, "blog", "online", "all");

    // It survives a restart.
    let o = o.restart();
    assert_status(&o, "wiki", "offline", "config");
    assert_status(&o, "cloud", "online", "all");

    // A later `--all` covers the reset sites again.
    o.cli(&["offline", "--all"]).ok();
    for s in ["blog", "cloud", "wiki"] {
        assert_status(&o, s, "offline", "all");
        assert_redirected(&o, s);
    }
    o.cli(&["reset", "cloud"]).ok();
    o.cli(&["online", "--all"]).ok();
    assert_status(&o, "cloud", "online", "all");
    assert_proxied(&o, "wiki");

    // `reset --all` clears everything: each site on its config state.
    o.cli(&["offline", "blog"]).ok();
    o.cli(&["reset", "--all"]).ok();
    let st = status(&o);
    assert!(st["global"].is_null(), "{st}");
    for (s, want) in [("blog", "online"), ("cloud", "online"), ("wiki", "offline")] {
        let e = entry(&st, s);
        assert_eq!(
            (&e["state"], &e["source"]),
            (&want.into(), &"config".into()),
            "{e}"
        );
    }
    assert_proxied(&o, "blog");
    assert_redirected(&o, "wiki");
}

// ---------------------------------------------------------------------------------
// --until
// ---------------------------------------------------------------------------------

#[test]
fn offline_until_duration_expires_by_itself() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);

    let t0 = OffsetDateTime::now_utc();
    let out = o.cli(&["offline", "blog", "--until", "3s"]).ok();
    let row = table_row(&out.stdout, "blog");
    assert!(row.contains("offline"), "{row}");
    let st = status(&o);
    let b = entry(&st, "blog");
    let until = rfc3339(&b["until"]);
    let ahead = (until - t0).whole_milliseconds();
    assert!((1000..=25_000).contains(&ahead), "until {until} vs {t0}");
    assert_redirected(&o, "blog");

    // Back by itself, within a generous bound.
    wait_for(WAIT, "blog back online after --until", || {
        (o.get(&host("blog"), "/").status == 200).then_some(())
    });
    let st = status(&o);
    let b = entry(&st, "blog");
    assert_eq!(
        (&b["state"], &b["source"]),
        (&"online".into(), &"config".into())
    );
    assert!(b["until"].is_null(), "{b}");
    assert_proxied(&o, "blog");
    o.wait_log(WAIT, "an expiry log line", |l| {
        l.contains("expire") && l.contains("blog")
    });
}

#[test]
fn expired_global_override_uncovers_the_earlier_site_flip() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("wiki", "offline")],
    ));
    o.cli(&["online", "wiki", "--reason", "test"]).ok();
    assert_proxied(&o, "wiki");
    o.cli(&["offline", "--all", "--until", "3s"]).ok();
    assert_redirected(&o, "wiki");
    wait_for(WAIT, "wiki online again after the --all expired", || {
        (o.get(&host("wiki"), "/").status == 200).then_some(())
    });
    let st = status(&o);
    assert!(st["global"].is_null(), "{st}");
    let w = entry(&st, "wiki");
    assert_eq!(
        (&w["state"], &w["source"]),
        (&"online".into(), &"runtime".into())
    );
    assert_eq!(w["reason"], "test");
    assert_status(&o, "blog", "online", "config");
}

#[test]
fn until_is_exact_not_rounded_to_the_second() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    // Several tries: a flip sent right on a second boundary would hide the rounding.
    for round in 0..3 {
        let sent = std::time::Instant::now();
        let t0 = OffsetDateTime::now_utc();
        let out = o.cli(&["offline", "blog", "--until", "2s"]).ok();
        let row = table_row(&out.stdout, "blog");
        assert!(!row.contains('.'), "the table shows whole seconds: {row}");
        let st = status(&o);
        let b = entry(&st, "blog");
        let (since, until) = (rfc3339(&b["since"]), rfc3339(&b["until"]));
        assert_eq!(until - since, time::Duration::seconds(2), "{b}");
        assert!(
            until >= t0 + time::Duration::seconds(2),
            "round {round}: --until 2s ends at {until}, less than 2 s after {t0}"
        );
        // Offline for the whole 2 s, not until a rounded second.
        while sent.elapsed() < std::time::Duration::from_millis(1800) {
            let r = o.get(&host("blog"), "/files/report.pdf?a=1&b=2");
            assert_eq!(
                r.status,
                302,
                "round {round}: online again after {:?} of --until 2s",
                sent.elapsed()
            );
            // `status` agrees with the proxy.
            assert_eq!(entry(&status(&o), "blog")["state"], "offline");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        wait_for(WAIT, "blog back online after --until 2s", || {
            (o.get(&host("blog"), "/").status == 200).then_some(())
        });
        assert_status(&o, "blog", "online", "config");
    }
}

#[test]
fn bad_until_exits_1_even_when_the_daemon_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.sock");
    let sock = missing.to_str().unwrap();
    let past = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    for bad in ["soon", "-5m", "0s", "10", past.as_str()] {
        let out = cli(&[
            "--socket",
            sock,
            "offline",
            "blog",
            &format!("--until={bad}"),
        ]);
        assert_one_line_error(&out, 1, &["until"]);
    }
    // A good one gets as far as the (missing) daemon.
    let out = cli(&["--socket", sock, "offline", "blog", "--until", "5m"]);
    assert_one_line_error(&out, 2, &["missing.sock"]);
}

#[test]
fn until_rfc3339_in_the_future_is_accepted() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let at = (OffsetDateTime::now_utc() + time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap();
    let utc = at.format(&Rfc3339).unwrap();
    o.cli(&["offline", "blog", "--until", &utc]).ok();
    assert_eq!(rfc3339(&entry(&status(&o), "blog")["until"]), at);
    assert_redirected(&o, "blog");

    // With a numeric offset: the same instant.
    let plus_one = at
        .to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap())
        .format(&Rfc3339)
        .unwrap();
    assert!(plus_one.ends_with("+01:00"), "{plus_one}");
    o.cli(&["offline", "cloud", "--until", &plus_one]).ok();
    assert_eq!(rfc3339(&entry(&status(&o), "cloud")["until"]), at);
    assert_redirected(&o, "cloud");
}

#[test]
fn bad_or_past_until_is_refused_and_changes_nothing() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let before = std::fs::read(o.state_file()).ok();
    let past = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    for bad in ["soon", "-5m", "0s", "2026-13-45T99:00:00Z", past.as_str()] {
        // `--until=VALUE` so that "-5m" reaches offramp and is not taken for a flag.
        let out = o.cli(&["offline", "blog", &format!("--until={bad}")]);
        assert_one_line_error(&out, 1, &[]);
        assert!(
            out.stderr.to_lowercase().contains("until"),
            "error names --until: {out:?}"
        );
        assert_status(&o, "blog", "online", "config");
        assert_proxied(&o, "blog");
    }
    assert_eq!(
        std::fs::read(o.state_file()).ok(),
        before,
        "state file untouched"
    );
}

#[test]
fn retry_after_in_503_mode_follows_until() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "code = 503",
        &[("blog", "online"), ("cloud", "online")],
    ));
    o.cli(&["offline", "blog", "--until", "10m"]).ok();
    let r = o.get(&host("blog"), "/x");
    assert_eq!(r.status, 503, "{}", r.text());
    let secs: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("Retry-After missing: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!((540..=600).contains(&secs), "Retry-After {secs} for 10m");

    // Without --until, no Retry-After.
    o.cli(&["offline", "cloud"]).ok();
    let r = o.get(&host("cloud"), "/x");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), None, "{:?}", r.headers);
}

// ---------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------

#[test]
fn flip_survives_graceful_restart_and_sigkill() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    o.cli(&[
        "offline",
        "blog",
        "--reason",
        "kept across restarts",
        "--until",
        "1h",
    ])
    .ok();
    let st = status(&o);
    let since = entry(&st, "blog")["since"].clone();
    let until = entry(&st, "blog")["until"].clone();
    assert!(until.is_string(), "{st}");
    let text = std::fs::read_to_string(o.state_file()).expect("state file exists");
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("state file is not JSON ({e}):\n{text}"));

    let check = |o: &Offramp, when: &str| {
        let st = status(o);
        let b = entry(&st, "blog");
        assert_eq!(b["state"], "offline", "after {when}: {b}");
        assert_eq!(b["source"], "runtime", "after {when}: {b}");
        assert_eq!(b["reason"], "kept across restarts", "after {when}: {b}");
        assert_eq!(b["by"], uid(), "after {when}: {b}");
        assert_eq!(b["since"], since, "after {when}: {b}");
        assert_eq!(b["until"], until, "after {when}: {b}");
        assert_eq!(entry(&st, "cloud")["source"], "config");
        assert_redirected(o, "blog");
        assert_proxied(o, "cloud");
    };
    let o = o.restart();
    check(&o, "a graceful restart");

    // A flip made right before a SIGKILL was persisted before the CLI got its answer.
    o.cli(&["offline", "cloud", "--reason", "just before the kill"])
        .ok();
    let o = o.kill_and_restart();
    let st = status(&o);
    assert_eq!(entry(&st, "cloud")["state"], "offline", "{st}");
    assert_eq!(entry(&st, "cloud")["reason"], "just before the kill");
    assert_redirected(&o, "cloud");
    o.cli(&["reset", "cloud"]).ok();
    check(&o, "SIGKILL");
    let text = std::fs::read_to_string(o.state_file()).expect("state file exists");
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("state file is not JSON ({e}):\n{text}"));

    // The global override survives too.
    o.cli(&["offline", "--all", "--reason", "global kept"]).ok();
    let o = o.restart();
    let st = status(&o);
    assert_eq!(st["global"]["state"], "offline", "{st}");
    assert_eq!(st["global"]["reason"], "global kept", "{st}");
    for s in ["blog", "cloud"] {
        assert_eq!(entry(&st, s)["source"], "all", "{st}");
        assert_redirected(&o, s);
    }
}

#[test]
fn override_of_a_site_removed_while_stopped_is_dropped() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online")],
    ));
    o.cli(&["offline", "cloud", "--reason", "gone soon"]).ok();
    o.cli(&["offline", "blog", "--reason", "stays"]).ok();
    let mut o = o;
    assert_eq!(o.stop(), Some(0));
    // The admin removes `cloud` from the file while offramp is down.
    o.write_config(&config(&origin, "", &[("blog", "online")]));
    let o = o.restart_stopped();
    o.wait_log(WAIT, "a log line about the dropped override", |l| {
        l.contains("cloud") && l.contains("override")
    });
    let st = status(&o);
    assert_eq!(st["sites"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(entry(&st, "blog")["reason"], "stays", "{st}");
    assert_eq!(o.get(&host("cloud"), "/").status, 404);

    // Added back later: it starts from its config state, the old flip is gone.
    o.cli(&["offline", "blog"]).ok();
    let mut o = o;
    assert_eq!(o.stop(), Some(0));
    o.write_config(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online")],
    ));
    let o = o.restart_stopped();
    assert_status(&o, "cloud", "online", "config");
    assert_proxied(&o, "cloud");
}

#[test]
fn state_edit_and_expiry_while_stopped_are_applied_and_told_at_start_up() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online"), ("wiki", "online")],
    ));
    o.cli(&["offline", "blog", "--reason", "flip before the edit"])
        .ok();
    o.cli(&["offline", "cloud", "--reason", "short", "--until", "1s"])
        .ok();
    o.cli(&["offline", "wiki", "--reason", "kept"]).ok();
    let mut o = o;
    assert_eq!(o.stop(), Some(0));
    // While stopped: blog's state edited in the file (the latest action for blog), and
    // cloud's --until runs out.
    o.write_config(&config(
        &origin,
        "",
        &[("blog", "offline"), ("cloud", "online"), ("wiki", "online")],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = o.restart_stopped();

    let st = status(&o);
    let b = entry(&st, "blog");
    assert_eq!(
        (&b["state"], &b["source"]),
        (&"offline".into(), &"config".into()),
        "{b}"
    );
    assert!(b["reason"].is_null(), "the flip was dropped: {b}");
    assert_status(&o, "cloud", "online", "config");
    assert_proxied(&o, "cloud");
    let w = entry(&st, "wiki");
    assert_eq!(
        (&w["source"], &w["reason"]),
        (&"runtime".into(), &"kept".into())
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(o.state_file()).unwrap()).unwrap();
    let kept: Vec<&String> = saved["sites"].as_object().unwrap().keys().collect();
    assert_eq!(kept, ["wiki"], "{saved}");

    // Told in the log, as the routine events they are: not errors.
    let edited = o.wait_log(WAIT, "the dropped override of blog", |l| {
        l.contains("blog") && l.contains("edited")
    });
    assert!(
        edited.contains("WARN") || edited.contains("INFO"),
        "{edited}"
    );
    let expired = o.wait_log(WAIT, "the override of cloud that expired", |l| {
        l.contains("cloud") && l.contains("expired while offramp was stopped")
    });
    assert!(expired.contains("INFO"), "{expired}");
    assert!(
        expired.contains("short"),
        "the log says which override: {expired}"
    );
    assert_eq!(
        o.count_log(|l| l.contains("ERROR")),
        0,
        "nothing logged as an error:\n{}",
        o.log_text()
    );
}

#[test]
fn global_override_applies_to_sites_added_later() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin, "", &[("blog", "online")]));
    o.cli(&["offline", "--all", "--reason", "everything"]).ok();
    o.replace_config(&config(
        &origin,
        "",
        &[("blog", "online"), ("cloud", "online")],
    ));
    // `reload` (the file watch may have got there first: either way it is applied).
    let out = o.cli(&["reload"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let st = status(&o);
    let c = entry(&st, "cloud");
    assert_eq!(
        (&c["state"], &c["source"]),
        (&"offline".into(), &"all".into()),
        "{c}"
    );
    assert_eq!(c["reason"], "everything");
    assert_redirected(&o, "cloud");
    o.cli(&["reset", "--all"]).ok();
    assert_proxied(&o, "cloud");
}

#[test]
fn corrupt_state_file_is_moved_aside_and_daemon_starts_from_config() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("offramp.toml"),
        config(&origin, "", &[("blog", "online"), ("cloud", "offline")]),
    )
    .unwrap();
    let garbage = b"{\"version\": 1, \"sites\": {garbage\x00\xff";
    std::fs::write(dir.path().join("state.json"), garbage).unwrap();

    let o = Offramp::start_in(dir, &[]);
    // Loud: an error-level line about the state file.
    let line = o.wait_log(WAIT, "a log line about the corrupt state file", |l| {
        l.contains("state") && l.contains("corrupt")
    });
    assert!(line.contains("ERROR"), "reported loudly: {line}");

    // Moved aside, next to it, with its content.
    let aside: Vec<_> = std::fs::read_dir(o.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt")
        })
        .collect();
    assert_eq!(aside.len(), 1, "one file moved aside");
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), garbage);

    // Serving from the config's states; flips work and persist again.
    let st = status(&o);
    assert_eq!(entry(&st, "blog")["source"], "config");
    assert_eq!(entry(&st, "cloud")["state"], "offline");
    assert_proxied(&o, "blog");
    assert_redirected(&o, "cloud");
    o.cli(&["offline", "blog"]).ok();
    assert_redirected(&o, "blog");
    let text = std::fs::read_to_string(o.state_file()).expect("state file rewritten");
    serde_json::from_str::<Value>(&text).expect("new state file is JSON");
}

// ---------------------------------------------------------------------------------
// Refusals and errors
// ---------------------------------------------------------------------------------

#[test]
fn unknown_site_is_refused_and_nothing_changes() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    o.cli(&["offline", "cloud", "--reason", "before"]).ok();
    let before_state = std::fs::read(o.state_file()).expect("state file");
    let before_status = status(&o);

    for args in [
        &["offline", "blgo"][..],
        &["online", "blgo"],
        &["reset", "blgo"],
        // One known and one unknown: refused as a whole.
        &["offline", "blog", "blgo", "--reason", "typo"],
        &["online", "cloud", "blgo"],
    ] {
        let out = o.cli(args);
        assert_one_line_error(&out, 1, &["blgo"]);
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    assert_eq!(
        status(&o)["sites"],
        before_status["sites"],
        "nothing changed"
    );
    assert_eq!(std::fs::read(o.state_file()).unwrap(), before_state);
    assert_proxied(&o, "blog");
    assert_redirected(&o, "cloud");
}

#[test]
fn cli_exits_2_when_the_daemon_cannot_be_reached() {
    let dir = tempfile::tempdir().expect("tempdir");

    // No socket file at all.
    let missing = dir.path().join("missing.sock");
    let out = cli(&["--socket", missing.to_str().unwrap(), "status"]);
    assert_one_line_error(&out, 2, &["missing.sock"]);
    let out = cli(&["--socket", missing.to_str().unwrap(), "offline", "blog"]);
    assert_one_line_error(&out, 2, &[]);

    // A stale socket file: nothing listening (connection refused).
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    assert!(std::fs::symlink_metadata(&stale)
        .unwrap()
        .file_type()
        .is_socket());
    let out = cli(&["--socket", stale.to_str().unwrap(), "status", "--json"]);
    assert_one_line_error(&out, 2, &["stale.sock"]);
    assert!(out.stdout.is_empty());

    // Something that accepts and hangs up without answering.
    let mute = dir.path().join("mute.sock");
    let l = UnixListener::bind(&mute).expect("bind");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut b = [0u8; 256];
            let _ = s.read(&mut b);
        }
    });
    let out = cli(&["--socket", mute.to_str().unwrap(), "online", "blog"]);
    assert_one_line_error(&out, 2, &[]);

    // Via the config's `control`, after the daemon stopped.
    let origin = TestOrigin::start("origin");
    let mut o = two_sites(&origin);
    assert_eq!(o.stop(), Some(0), "graceful stop");
    assert!(!o.socket().exists(), "socket removed at shutdown");
    let out = o.cli(&["status"]);
    assert_one_line_error(&out, 2, &["control.sock"]);
}

#[test]
fn cli_usage_errors_exit_1_and_change_nothing() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    for args in [
        &["offline"][..],
        &["online"],
        &["reset"],
        &["offline", "blog", "--all"],
        &["status", "--bogus"],
        &["offline", "blog", "--frobnicate"],
        &["online", "blog", "--until", "5m"],
        &["offline", "blog", "--until"],
        &["frobnicate"],
        &[],
    ] {
        let out = o.cli(args);
        assert_one_line_error(&out, 1, &["offramp"]);
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    let st = status(&o);
    assert!(st["global"].is_null());
    for s in ["blog", "cloud"] {
        assert_eq!(entry(&st, s)["source"], "config");
        assert_proxied(&o, s);
    }
}

#[test]
fn explicit_config_that_cannot_be_read_is_an_error_not_the_default_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nonexistent.toml");
    for args in [&["status"][..], &["offline", "blog"], &["reload"]] {
        let mut all = vec!["-c", missing.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = cli(&all);
        assert_one_line_error(&out, 1, &["nonexistent.toml", "--socket"]);
        assert!(
            !out.stderr.contains(DEFAULT_SOCKET),
            "no silent fall-back to the default socket: {out:?}"
        );
    }
    // With --socket, the config file is not needed.
    let sock = dir.path().join("x.sock");
    let out = cli(&[
        "-c",
        missing.to_str().unwrap(),
        "--socket",
        sock.to_str().unwrap(),
        "status",
    ]);
    assert_one_line_error(&out, 2, &["x.sock"]);
}

const DEFAULT_SOCKET: &str = "/run/offramp/control.sock";

#[test]
fn edited_control_path_is_reported_and_the_cli_says_how_to_reach_the_daemon() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let text = std::fs::read_to_string(&o.config).unwrap();
    o.replace_config(&text.replace("control = \"control.sock\"", "control = \"moved.sock\""));
    // Applied by the watch; then the CLI follows the file to a socket not there yet.
    let out = wait_for(WAIT, "the CLI to look for the new path", || {
        let out = o.cli(&["status"]);
        (out.code == Some(2)).then_some(out)
    });
    let config = o.config.display().to_string();
    assert_one_line_error(
        &out,
        2,
        &["moved.sock", "server.control", &config, "--socket"],
    );

    // The daemon still listens on the old path and says a restart is pending.
    let old = o.socket();
    let old = old.to_str().unwrap();
    let st = wait_for(WAIT, "the reload by the file watch", || {
        let st = cli(&["--socket", old, "status", "--json"]).ok().json();
        st["reload"].is_object().then_some(st)
    });
    assert_eq!(st["reload"]["ok"], true, "{st}");
    assert_eq!(
        st["reload"]["needs_restart"],
        serde_json::json!(["server.control"]),
        "{st}"
    );
    let table = cli(&["--socket", old, "status"]).ok().stdout;
    assert!(
        table.contains("needs restart: server.control"),
        "the table shows the pending restart:\n{table}"
    );
    o.wait_log(WAIT, "the warning naming the socket still in use", |l| {
        l.contains("WARN") && l.contains("control socket stays at") && l.contains(old)
    });
    cli(&["--socket", old, "offline", "blog"]).ok();
    assert_redirected(&o, "blog");

    // Changed back: nothing pending any more.
    o.replace_config(&text);
    wait_for(WAIT, "the pending restart to clear", || {
        let st = o.cli(&["status", "--json"]);
        (st.code == Some(0) && st.json()["reload"]["needs_restart"] == serde_json::json!([]))
            .then_some(())
    });
}

#[test]
fn a_daemon_that_never_answers_gives_exit_2_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Accepts and holds the connection without a word.
    let mute = dir.path().join("mute.sock");
    let l = UnixListener::bind(&mute).expect("bind");
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    // Listens but never accepts (the connection waits in the backlog).
    let stuck = dir.path().join("stuck.sock");
    let _never = UnixListener::bind(&stuck).expect("bind");
    for sock in [&mute, &stuck] {
        let started = std::time::Instant::now();
        let out = cli(&[
            "--socket",
            sock.to_str().unwrap(),
            "--timeout",
            "1s",
            "offline",
            "blog",
        ]);
        let took = started.elapsed();
        assert_one_line_error(&out, 2, &["no answer from offramp", "within 1s"]);
        assert!(!out.stderr.contains("os error"), "no raw OS error: {out:?}");
        assert!(
            took < std::time::Duration::from_secs(10),
            "the CLI gave up after {took:?}"
        );
    }
    let out = cli(&["--timeout", "0s", "status"]);
    assert_one_line_error(&out, 1, &["timeout"]);
}

#[test]
fn terminal_escapes_in_a_reason_never_reach_the_terminal() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let nasty = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}gnp.exe ok";
    let out = o.cli(&["offline", "blog", "--reason", nasty]).ok();
    for text in [out.stdout, o.cli(&["status"]).ok().stdout] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "control characters in the table: {text:?}"
        );
        assert!(
            text.contains(r"\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}gnp.exe ok"),
            "shown escaped: {text}"
        );
    }
    // JSON carries the reason as it was given (JSON escapes it).
    assert_eq!(entry(&status(&o), "blog")["reason"], nasty);
    let raw = o.cli(&["status", "--json"]).ok().stdout;
    assert!(!raw.contains('\u{1b}'), "{raw:?}");
}

#[test]
fn unexpected_fields_are_refused_for_every_command() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let reloads = |o: &Offramp| o.count_log(|l| l.contains("reload requested"));
    let before = reloads(&o);
    let mut c = Ctl::open(&o.socket());
    for line in [
        r#"{"cmd":"reload","sites":["x"]}"#,
        r#"{"cmd":"reload","all":true}"#,
        r#"{"cmd":"reload","reason":"why"}"#,
        r#"{"cmd":"reload","until":"1h"}"#,
        r#"{"cmd":"status","all":true}"#,
        r#"{"cmd":"status","until":"1h"}"#,
        r#"{"cmd":"reset","sites":["blog"],"reason":"why"}"#,
        r#"{"cmd":"online","sites":["blog"],"until":"1h"}"#,
    ] {
        let r = c.call(line);
        assert_refused(&r, line);
        assert!(
            r["error"].as_str().unwrap().contains('"'),
            "the error names the field: {r}"
        );
    }
    assert_eq!(reloads(&o), before, "no reload ran");
    assert_status(&o, "blog", "online", "config");
    // The same requests without the extra field work.
    assert_eq!(c.call(r#"{"cmd":"reload"}"#)["ok"], true);
}

// ---------------------------------------------------------------------------------
// The control socket by hand
// ---------------------------------------------------------------------------------

#[test]
fn protocol_by_hand_like_socat() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);

    // `echo '...' | socat - UNIX-CONNECT:...`: one line, then half-close.
    let mut s = UnixStream::connect(o.socket()).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"{\"cmd\":\"offline\",\"sites\":[\"blog\"],\"reason\":\"x\"}\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read reply");
    assert_eq!(all.lines().count(), 1, "one reply line: {all:?}");
    let reply: Value = serde_json::from_str(&all).expect("JSON reply");
    assert_eq!(reply["ok"], true, "{reply}");
    let sites = reply["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 1, "{reply}");
    assert_eq!(sites[0]["name"], "blog");
    assert_eq!(sites[0]["state"], "offline");
    assert_eq!(sites[0]["source"], "runtime");
    assert_eq!(sites[0]["reason"], "x");
    assert_eq!(sites[0]["by"], uid());
    assert_redirected(&o, "blog");

    // Several requests on one connection.
    let mut c = Ctl::open(&o.socket());
    let st = c.call("{\"cmd\":\"status\"}");
    assert_eq!(st["ok"], true, "{st}");
    assert_eq!(entry(&st, "blog")["state"], "offline");
    assert!(
        st.get("global").is_some() && st.get("reload").is_some(),
        "{st}"
    );
    let st = c.call("{\"cmd\":\"status\",\"sites\":[\"cloud\"]}");
    assert_eq!(st["sites"].as_array().map(Vec::len), Some(1), "{st}");
    let r = c.call("{\"cmd\":\"online\",\"sites\":[\"clod\"]}");
    assert_refused(&r, "unknown site");
    assert!(r["error"].as_str().unwrap().contains("clod"), "{r}");
    let r = c.call("{\"cmd\":\"offline\",\"all\":true,\"until\":\"1h\"}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(entry(&r, "cloud")["source"], "all");
    assert_redirected(&o, "cloud");
    let r = c.call("{\"cmd\":\"reset\",\"all\":true}");
    assert_eq!(r["ok"], true, "{r}");
    let r = c.call("{\"cmd\":\"online\",\"sites\":[\"blog\"]}");
    assert_eq!(entry(&r, "blog")["state"], "online", "{r}");
    assert_proxied(&o, "blog");
    assert_proxied(&o, "cloud");
}

#[test]
fn garbage_on_the_socket_is_refused_and_the_daemon_stays_up() {
    let origin = TestOrigin::start("origin");
    let mut o = two_sites(&origin);

    // One connection, one bad request after another, each answered.
    let mut c = Ctl::open(&o.socket());
    for (line, what) in [
        (&b"hello there\n"[..], "not JSON"),
        (
            b"{\"cmd\":\"offline\",\"sites\":[\"blog\"]\n",
            "truncated JSON",
        ),
        (b"[1,2,3]\n", "not an object"),
        (b"\"status\"\n", "a bare string"),
        (b"{}\n", "no cmd"),
        (b"{\"cmd\":\"frobnicate\"}\n", "unknown cmd"),
        (b"{\"cmd\":42}\n", "cmd of the wrong type"),
        (
            b"{\"cmd\":\"offline\",\"sites\":[\"blog\"],\"bogus\":1}\n",
            "unknown field",
        ),
        (
            b"{\"cmd\":\"offline\",\"sites\":\"blog\"}\n",
            "sites not a list",
        ),
        (b"\xff\xfe\x00\x01\n", "binary"),
    ] {
        assert!(c.send(line), "{what}: daemon closed early");
        let reply = c
            .reply()
            .unwrap_or_else(|| panic!("{what}: closed without an error reply"));
        assert_refused(&reply, what);
    }
    // The same connection still serves a good request, and nothing was flipped.
    let st = c.call("{\"cmd\":\"status\"}");
    assert_eq!(st["ok"], true, "{st}");
    assert_eq!(entry(&st, "blog")["source"], "config", "{st}");

    // A line longer than 64 KiB: an error line or a clean close.
    for terminated in [false, true] {
        let mut c = Ctl::open(&o.socket());
        let mut long = vec![b'x'; 70 * 1024];
        if terminated {
            long.push(b'\n');
        }
        let sent = c.send(&long);
        let mut line = String::new();
        match c.reader.read_line(&mut line) {
            Ok(0) => {}
            Ok(_) => {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("reply to a long line is not JSON ({e})"));
                assert_refused(&v, "long line");
            }
            Err(e) => panic!("long line (sent fully: {sent}): not a clean close: {e}"),
        }
    }
    // A long but valid JSON request (huge reason) is refused too, not applied.
    let mut c = Ctl::open(&o.socket());
    let req = format!(
        "{{\"cmd\":\"offline\",\"sites\":[\"blog\"],\"reason\":\"{}\"}}\n",
        "r".repeat(100 * 1024)
    );
    if c.send(req.as_bytes()) {
        if let Some(v) = c.reply() {
            assert_refused(&v, "100 KiB request");
        }
    }

    // Connect and leave without a word; connect and send half a line then leave.
    drop(UnixStream::connect(o.socket()).expect("connect"));
    let mut half = UnixStream::connect(o.socket()).expect("connect");
    half.write_all(b"{\"cmd\":\"off").unwrap();
    drop(half);

    assert_still_serving(&mut o, "blog");
    assert_status(&o, "blog", "online", "config");
    // The CLI still flips.
    o.cli(&["offline", "blog"]).ok();
    assert_redirected(&o, "blog");
    o.cli(&["online", "blog"]).ok();
    assert_still_serving(&mut o, "blog");
}

#[test]
fn control_socket_is_a_0660_socket() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let meta = std::fs::symlink_metadata(o.socket()).expect("socket file exists");
    assert!(meta.file_type().is_socket(), "{meta:?}");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o660,
        "mode {:o}",
        meta.permissions().mode()
    );
}

#[test]
fn second_daemon_on_the_same_socket_is_refused_and_the_first_keeps_serving() {
    let origin = TestOrigin::start("origin");
    let mut o = two_sites(&origin);
    o.cli(&["offline", "cloud", "--reason", "first daemon"])
        .ok();

    let dir2 = tempfile::tempdir().expect("tempdir");
    let second = format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 1\ncontrol = \"{}\"\nstate = \"state.json\"\ndata = \"offramp.db\"\ngrace = \"1s\"\n\
         [maintenance]\nstatus_page = \"{STATUS_PAGE}\"\n\
         [[site]]\nname = \"other\"\nhosts = [\"other.home.example\"]\nupstream = \"{}\"\n",
        toml_path(&o.socket()),
        origin.url()
    );
    let cfg2 = dir2.path().join("offramp.toml");
    std::fs::write(&cfg2, second).unwrap();
    let out = run_with_timeout(Command::new(bin()).arg("serve").arg("-c").arg(&cfg2), WAIT);
    assert!(
        out.code.is_some() && out.code != Some(0),
        "second daemon must exit non-zero: {out:?}"
    );
    assert!(
        out.stderr.contains(&o.socket().display().to_string()),
        "error names the socket: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("already running"),
        "error says why: {}",
        out.stderr
    );

    // The first daemon is untouched: same socket, same state, still serving.
    let meta = std::fs::symlink_metadata(o.socket()).expect("socket still there");
    assert!(meta.file_type().is_socket());
    let st = status(&o);
    assert_eq!(entry(&st, "cloud")["reason"], "first daemon");
    assert_redirected(&o, "cloud");
    o.cli(&["online", "cloud"]).ok();
    assert_still_serving(&mut o, "cloud");
}

/// `offramp serve` started by hand: its stderr lines are collected; `ready` tells when
/// it logged that it is serving.
struct Spawned {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Spawned {
    fn start(config: &Path) -> Spawned {
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("-c")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn offramp serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Spawned { child, log }
    }

    fn ready(&self) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(" ready"))
    }

    fn text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_daemons_started_at_the_same_moment_one_wins_the_other_is_refused() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("control.sock");
    let mut configs = Vec::new();
    for i in 0..2 {
        let d = dir.path().join(format!("d{i}"));
        std::fs::create_dir(&d).unwrap();
        let text = config(&origin, "", &[("blog", "online")]).replace(
            "control = \"control.sock\"",
            &format!("control = \"{}\"", toml_path(&sock)),
        );
        std::fs::write(d.join("offramp.toml"), text).unwrap();
        configs.push(d.join("offramp.toml"));
    }
    for round in 0..5 {
        let mut both: Vec<Spawned> = configs.iter().map(|c| Spawned::start(c)).collect();
        // Each one either serves or exits.
        let outcome: Vec<Option<i32>> = wait_for(WAIT, "both daemons to settle", || {
            let mut out = Vec::new();
            for d in both.iter_mut() {
                match d.child.try_wait().expect("try_wait") {
                    Some(st) => out.push(Some(st.code().unwrap_or(-1))),
                    None if d.ready() => out.push(None),
                    None => return None,
                }
            }
            Some(out)
        });
        let serving: Vec<usize> = (0..2).filter(|i| outcome[*i].is_none()).collect();
        assert_eq!(
            serving.len(),
            1,
            "round {round}: exactly one daemon serves: {outcome:?}\n--- 0:\n{}\n--- 1:\n{}",
            both[0].text(),
            both[1].text()
        );
        let loser = 1 - serving[0];
        assert_eq!(
            outcome[loser],
            Some(1),
            "round {round}: {}",
            both[loser].text()
        );
        // The loser may exit before its stderr is fully read: wait for the line.
        wait_for(WAIT, "the loser's reason", || {
            both[loser].text().contains("already running").then_some(())
        });
        // The winner answers on the socket, with its own sites.
        let st = cli(&["--socket", sock.to_str().unwrap(), "status", "--json"])
            .ok()
            .json();
        assert_eq!(entry(&st, "blog")["state"], "online", "{st}");
        let winner = &mut both[serving[0]];
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(winner.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = winner.child.wait();
    }
}

#[test]
fn control_path_that_is_not_a_socket_is_never_replaced() {
    let origin = TestOrigin::start("origin");
    let other = tempfile::tempdir().expect("tempdir");
    let precious = other.path().join("precious.txt");
    std::fs::write(&precious, "do not delete").unwrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&origin, "", &[("blog", "online")]).replace(
        "control = \"control.sock\"",
        &format!("control = \"{}\"", toml_path(&precious)),
    );
    let path = dir.path().join("offramp.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = run_with_timeout(Command::new(bin()).arg("serve").arg("-c").arg(&path), WAIT);
    assert!(
        out.code.is_some() && out.code != Some(0),
        "must refuse to start: {out:?}"
    );
    assert!(out.stderr.contains("precious.txt"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "do not delete");
}

#[test]
fn control_client_limit_does_not_affect_the_proxy() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    // Hold 64 idle clients (the documented limit), then some more.
    let mut held: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(o.socket()).expect("connect"))
        .collect();
    let mut extra = Ctl::open(&o.socket());
    // Over the limit: an error line or a close, not a hang.
    if extra.send(b"{\"cmd\":\"status\"}\n") {
        if let Some(v) = extra.reply() {
            assert_refused(&v, "the 65th control client");
        }
    }
    // The proxy does not care.
    assert_proxied(&o, "blog");
    assert_proxied(&o, "cloud");
    held.clear();
    // Slots come back once the clients leave.
    wait_for(WAIT, "the control socket serving again", || {
        (o.cli(&["offline", "cloud"]).code == Some(0)).then_some(())
    });
    assert_redirected(&o, "cloud");
}

#[test]
fn stale_socket_file_is_replaced_on_start() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("offramp.toml"),
        config(&origin, "", &[("blog", "online"), ("cloud", "online")]),
    )
    .unwrap();
    // A socket file nobody listens on, as a crashed daemon leaves it.
    let sock = dir.path().join("control.sock");
    drop(UnixListener::bind(&sock).expect("bind"));
    assert_eq!(
        cli(&["--socket", sock.to_str().unwrap(), "status"]).code,
        Some(2)
    );

    let o = Offramp::start_in(dir, &[]);
    let meta = std::fs::symlink_metadata(o.socket()).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    o.cli(&["offline", "blog"]).ok();
    assert_redirected(&o, "blog");

    // And after a SIGKILL (the dead daemon's socket file is left behind).
    let o = o.kill_and_restart();
    assert!(o.socket().exists());
    assert_status(&o, "blog", "offline", "runtime");
    o.cli(&["online", "blog"]).ok();
    assert_proxied(&o, "blog");
}

// ---------------------------------------------------------------------------------
// The data path sees flips at once
// ---------------------------------------------------------------------------------

#[test]
fn keep_alive_connection_sees_flips_on_its_next_request() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let mut c = o.conn();
    for _ in 0..2 {
        let r = c.get(&host("blog"), "/hello");
        assert_eq!(r.status, 200, "{}", r.text());
    }

    o.cli(&["offline", "blog", "--reason", "keep-alive"]).ok();
    // The very next request on the same connection, no sleep.
    let r = c.get(&host("blog"), "/files/report.pdf?a=1&b=2");
    assert_redirect(&r, "blog");
    // The connection stays open and usable.
    let r = c.get(&host("blog"), "/files/report.pdf?a=1&b=2");
    assert_redirect(&r, "blog");
    let r = c.get(&host("cloud"), "/other");
    assert_eq!(r.status, 200, "other site on the same connection");

    o.cli(&["online", "blog"]).ok();
    let r = c.get(&host("blog"), "/back");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["target"], "/back");
}

#[test]
fn flip_is_visible_to_the_first_request_after_the_cli_returns() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let mut kept = o.conn();
    assert_eq!(kept.get(&host("cloud"), "/").status, 200);
    for round in 0..5 {
        o.cli(&["offline", "cloud"]).ok();
        let r = kept.get(&host("cloud"), "/files/report.pdf?a=1&b=2");
        assert_eq!(r.status, 302, "round {round}, kept connection");
        assert_redirected(&o, "cloud");

        o.cli(&["online", "cloud"]).ok();
        assert_eq!(
            kept.get(&host("cloud"), "/").status,
            200,
            "round {round}, kept connection"
        );
        assert_proxied(&o, "cloud");

        o.cli(&["offline", "--all"]).ok();
        assert_eq!(kept.get(&host("cloud"), "/").status, 302, "round {round}");
        assert_redirected(&o, "blog");
        o.cli(&["reset", "--all"]).ok();
        assert_eq!(kept.get(&host("cloud"), "/").status, 200, "round {round}");
        assert_proxied(&o, "blog");
    }
}

// ---------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------

#[test]
fn by_is_the_uid_of_the_peer_that_asked() {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED: by_is_the_uid_of_the_peer_that_asked needs root to run the CLI as \
             another uid; only this process's own uid is checked elsewhere"
        );
        return;
    }
    const NOBODY: u32 = 65534;
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("offramp.toml"),
        config(&origin, "", &[("blog", "online"), ("cloud", "online")]).replace(
            "[server]\n",
            &format!("[server]\ncontrol_group = {NOBODY}\n"),
        ),
    )
    .unwrap();
    // The other user must be able to reach the socket: the directory, then the group.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let o = Offramp::start_in(dir, &[]);
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new(bin());
        cmd.arg("--socket").arg(o.socket()).args(args);
        use std::os::unix::process::CommandExt;
        // SAFETY: only setgroups/setgid/setuid, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        run_with_timeout(&mut cmd, WAIT)
    };
    let out = as_nobody(&["offline", "blog", "--reason", "from nobody"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        table_row(&out.stdout, "blog").ends_with(&format!("uid {NOBODY}")),
        "{out:?}"
    );
    let st = status(&o);
    assert_eq!(entry(&st, "blog")["by"], NOBODY, "{st}");
    o.wait_log(WAIT, "the flip logged with the peer's uid", |l| {
        l.contains("from nobody") && l.contains(&format!("by={NOBODY}"))
    });
    // And root's own change is root's.
    o.cli(&["offline", "cloud"]).ok();
    assert_eq!(entry(&status(&o), "cloud")["by"], 0);
}

#[test]
fn every_change_is_logged_with_who_and_why() {
    let origin = TestOrigin::start("origin");
    let o = two_sites(&origin);
    let by = format!("by={}", uid());

    o.cli(&["offline", "blog", "--reason", "disk swap"]).ok();
    o.wait_log(WAIT, "the offline flip with who and why", |l| {
        l.contains("blog") && l.contains("disk swap") && l.contains(&by) && l.contains("offline")
    });
    o.cli(&["online", "blog", "--reason", "swap done"]).ok();
    o.wait_log(WAIT, "the online flip with who and why", |l| {
        l.contains("blog") && l.contains("swap done") && l.contains(&by) && l.contains("online")
    });
    o.cli(&["offline", "--all", "--reason", "power cut"]).ok();
    o.wait_log(WAIT, "the global flip", |l| {
        l.contains("--all") && l.contains("power cut") && l.contains(&by)
    });
    o.cli(&["reset", "cloud"]).ok();
    o.wait_log(WAIT, "the reset", |l| {
        l.contains("reset") && l.contains("cloud") && l.contains(&by)
    });
}
