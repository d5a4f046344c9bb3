//! Operations as an operator sees them: the admin listener's Prometheus metrics after
//! real traffic and a flip, `/healthz`, JSON log lines, systemd readiness messages,
//! `--version`, shell completions and the man page.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

fn config(origin: &TestOrigin, extra: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"blog\"\nhosts = [\"blog.test\"]\nupstream = \"{u}\"\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{u}\"\nstate = \"offline\"\n\
[[site]]\nname = \"dead\"\nhosts = [\"dead.test\"]\nupstream = \"http://{d}\"\n",
        server_section(&format!("admin = \"127.0.0.1:0\"\n{extra}")),
        u = origin.url(),
        d = dead_port(),
    )
}

/// Parses the Prometheus text format into (name{labels}, value) pairs.
fn scrape(o: &Offramp) -> Vec<(String, f64)> {
    let admin = o.admin.expect("admin listener logged");
    let r = Conn::open(admin).get("localhost", "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("metric line");
            (k.to_string(), v.parse::<f64>().expect("metric value"))
        })
        .collect()
}

fn value(m: &[(String, f64)], key: &str) -> Option<f64> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

#[test]
fn metrics_and_healthz_after_traffic_and_a_flip() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, ""));
    let admin = o.admin.expect("admin");
    assert_eq!(Conn::open(admin).get("localhost", "/healthz").status, 200);
    assert_eq!(Conn::open(admin).get("localhost", "/nope").status, 404);

    let mut c = o.conn();
    for _ in 0..3 {
        assert_eq!(c.get("blog.test", "/").status, 200);
    }
    assert_eq!(c.get("cloud.test", "/").status, 302);
    assert_eq!(c.get("nowhere.test", "/").status, 404);
    assert_eq!(o.get("dead.test", "/").status, 502);
    o.cli(&["offline", "blog", "--reason", "metrics test"]).ok();
    assert_eq!(c.get("blog.test", "/").status, 302);
    // The admin listener is never on the proxy listeners.
    assert_eq!(o.get("localhost", "/metrics").status, 404);

    // The counters are updated after the response is sent: wait for the last requests
    // (the flipped blog, the stray /metrics) to be counted.
    let m = wait_for(WAIT, "metrics to show the traffic", || {
        let m = scrape(&o);
        (value(
            &m,
            r#"offramp_requests_total{class="2xx",outcome="proxied",site="blog"}"#,
        ) == Some(3.0)
            && value(
                &m,
                r#"offramp_requests_total{class="3xx",outcome="redirected",site="blog"}"#,
            ) == Some(1.0)
            && value(
                &m,
                r#"offramp_requests_total{class="4xx",outcome="unknown_host",site="-"}"#,
            ) == Some(2.0))
        .then_some(m)
    });
    assert_eq!(
        value(
            &m,
            r#"offramp_requests_total{class="3xx",outcome="redirected",site="cloud"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            r#"offramp_requests_total{class="4xx",outcome="unknown_host",site="-"}"#
        ),
        Some(2.0),
        "nowhere.test and /metrics asked of the proxy listener"
    );
    assert_eq!(
        value(
            &m,
            r#"offramp_requests_total{class="5xx",outcome="proxied",site="dead"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&m, r#"offramp_upstream_errors_total{site="dead"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&m, r#"offramp_flips_total{action="offline"}"#),
        Some(1.0)
    );
    assert_eq!(value(&m, r#"offramp_site_offline{site="blog"}"#), Some(1.0));
    assert_eq!(
        value(&m, r#"offramp_site_offline{site="cloud"}"#),
        Some(1.0)
    );
    assert_eq!(value(&m, r#"offramp_site_offline{site="dead"}"#), Some(0.0));
    // Latency histogram with buckets.
    assert_eq!(
        value(&m, r#"offramp_request_duration_seconds_count{site="blog"}"#),
        Some(4.0)
    );
    assert_eq!(
        value(
            &m,
            r#"offramp_request_duration_seconds_bucket{site="blog",le="+Inf"}"#
        ),
        Some(4.0)
    );
    assert!(m.iter().any(|(k, _)| k
        .starts_with(r#"offramp_request_duration_seconds_bucket{site="blog",le="0.001"}"#)));
    // Our keep-alive connection is open.
    assert!(value(&m, "offramp_open_connections").unwrap_or(0.0) >= 1.0);

    // Reloads and reload errors.
    let text = std::fs::read_to_string(&o.config).expect("read");
    o.write_config(&text.replace("[maintenance]", "[maintenance]\nbogus = 1"));
    assert_eq!(o.cli(&["reload"]).code, Some(1));
    o.write_config(&text);
    assert_eq!(o.cli(&["reload"]).code, Some(0));
    let m = scrape(&o);
    assert!(value(&m, "offramp_reload_errors_total").unwrap_or(0.0) >= 1.0);
    assert!(value(&m, "offramp_reloads_total").unwrap_or(0.0) >= 1.0);
}

#[test]
fn json_log_lines_parse_and_carry_the_access_fields() {
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("offramp.toml"), config(&origin, "")).expect("config");
    let o = Offramp::start_with(dir, &[], &["--log-format", "json"]);
    assert_eq!(o.get("cloud.test", "/files?x=1").status, 302);
    o.cli(&["online", "cloud", "--reason", "json test"]).ok();
    let access = o.wait_log(WAIT, "an access log line", |l| {
        l.contains("offramp::access")
    });
    let v: serde_json::Value = serde_json::from_str(&access).expect("JSON log line");
    let f = &v["fields"];
    assert_eq!(f["host"], "cloud.test");
    assert_eq!(f["site"], "cloud");
    assert_eq!(f["state"], "offline");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["path"], "/files?x=1");
    assert_eq!(f["status"], 302);
    assert_eq!(f["client"], "127.0.0.1");
    assert!(f["duration_ms"].as_f64().is_some());
    assert!(f["bytes"].as_u64().is_some());
    assert!(v["timestamp"].as_str().is_some());
    let flip = o.wait_log(WAIT, "the flip event", |l| l.contains("json test"));
    let v: serde_json::Value = serde_json::from_str(&flip).expect("JSON log line");
    assert_eq!(v["fields"]["reason"], "json test");
    assert_eq!(v["fields"]["action"], "online");
    assert_eq!(v["fields"]["by"], i64::from(unsafe { libc::getuid() }));
    // Every line is JSON.
    for l in o.lines() {
        serde_json::from_str::<serde_json::Value>(&l)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
}

#[test]
fn access_log_can_be_turned_off() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, "access_log = false\n"));
    assert_eq!(o.get("blog.test", "/").status, 200);
    o.cli(&["status"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(o.count_log(|l| l.contains("offramp::access")), 0);
}

#[test]
fn systemd_readiness_reload_and_stopping_notifications() {
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("offramp.toml"), config(&origin, "")).expect("config");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let path = sock_path.to_str().expect("utf8").to_string();
    let mut o = Offramp::start_with(dir, &[("NOTIFY_SOCKET", &path)], &[]);
    let mut buf = [0u8; 512];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // READY=1 only once the listeners accept: a request right after it is served.
    assert_eq!(recv(), "READY=1");
    assert_eq!(o.get("blog.test", "/").status, 200);
    o.signal(libc::SIGHUP);
    let m = recv();
    assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
    assert_eq!(recv(), "READY=1");
    o.cli(&["reload"]).ok();
    assert!(recv().starts_with("RELOADING=1"));
    assert_eq!(recv(), "READY=1");
    assert_eq!(o.stop(), Some(0));
    assert_eq!(recv(), "STOPPING=1");
}

#[test]
fn version_completions_and_man_page() {
    let v = cli(&["--version"]).ok();
    assert_eq!(
        v.stdout.trim(),
        format!("offramp {}", env!("CARGO_PKG_VERSION"))
    );
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef offramp"),
        ("fish", "complete -c offramp"),
    ] {
        let out = cli(&["completions", shell]).ok();
        assert!(
            out.stdout.contains(needle),
            "{shell}: {}",
            &out.stdout[..200.min(out.stdout.len())]
        );
        assert!(
            out.stdout.contains("offline"),
            "{shell} completes subcommands"
        );
    }
    assert_eq!(cli(&["completions", "tcsh"]).code, Some(1));
    let man = cli(&["man"]).ok();
    assert!(man.stdout.starts_with(".ie") || man.stdout.contains(".TH offramp 1"));
    for cmd in [
        "serve", "check", "status", "offline", "online", "reset", "reload",
    ] {
        assert!(man.stdout.contains(cmd), "man page mentions {cmd}");
    }
}

#[test]
fn reloads_are_logged_with_who_and_why() {
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("offramp.toml"), config(&origin, "")).expect("config");
    let o = Offramp::start_with(dir, &[], &["--log-format", "json"]);
    let json = |l: &str| -> serde_json::Value {
        serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
    };
    let message = |l: &str| json(l)["fields"]["message"].as_str().map(String::from);

    // Who: the uid of the CLI's user, from the socket's peer credentials.
    assert_eq!(o.cli(&["reload"]).code, Some(0));
    let asked = o.wait_log(WAIT, "the control socket's reload request", |l| {
        l.contains("reload requested over the control socket")
    });
    let v = json(&asked);
    assert_eq!(v["target"], "offramp::reload");
    assert_eq!(v["fields"]["by"], i64::from(unsafe { libc::getuid() }));

    // Why: a signal, or the file that changed.
    o.signal(libc::SIGHUP);
    o.wait_log(WAIT, "the SIGHUP reload", |l| {
        message(l).is_some_and(|m| m.contains("SIGHUP"))
    });
    // Its result first: an edit written while the SIGHUP reload reads the file would
    // be read half-written.
    let t = std::time::Instant::now();
    while o.count_log(|l| message(l).as_deref() == Some("config reloaded")) < 2 {
        assert!(
            t.elapsed() < WAIT,
            "the SIGHUP reload's result; the log:\n{}",
            o.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&o.config).expect("read config");
    o.write_config(&format!("{text}\n# edited\n"));
    let changed = o.wait_log(WAIT, "the file-change reload", |l| {
        message(l).is_some_and(|m| m.contains("changed, reloading"))
    });
    let file = json(&changed)["fields"]["file"]
        .as_str()
        .map(String::from)
        .unwrap_or_default();
    assert!(file.ends_with("offramp.toml"), "{changed}");
    // Each one is followed by its result.
    // (A loop rather than `wait_for`: when it times out, the daemon's log says why.)
    let t = std::time::Instant::now();
    while o.count_log(|l| message(l).as_deref() == Some("config reloaded")) < 3 {
        assert!(
            t.elapsed() < WAIT,
            "three `config reloaded` events expected within {WAIT:?}; the log:\n{}",
            o.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sigterm_gives_up_on_requests_still_running_after_grace_and_exits_0() {
    // An upstream that accepts and never answers, and a read timeout far beyond the
    // test's deadline: only the 2 s grace (server_section) can end the request.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang = upstream.local_addr().expect("addr");
    let (accepted, arrived) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in upstream.incoming() {
            held.push(s);
            let _ = accepted.send(());
        }
    });
    let mut o = Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"hang\"\nhosts = [\"hang.test\"]\nupstream = \"http://{hang}\"\n\
read_timeout = \"1h\"\n",
        server_section("")
    ));
    let mut c = o.conn();
    c.send(b"GET /forever HTTP/1.1\r\nHost: hang.test\r\n\r\n");
    arrived
        .recv_timeout(WAIT)
        .expect("the request to reach the upstream");
    // Exits on its own long before the request could end (wait_exit panics after WAIT).
    assert_eq!(o.stop(), Some(0), "{}", o.log_text());
    o.wait_log(WAIT, "the grace-over warning", |l| {
        l.contains("grace period over")
    });
    // The visitor never got a success: the connection was closed (or answered with an
    // error), not left open.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c.stream, &mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

/// Sends `request` raw to the admin listener; what came back before the server closed
/// the connection, and how long that took (a read timeout of 5 s ends it otherwise).
fn admin_raw(admin: std::net::SocketAddr, request: &str) -> (String, Duration) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let start = std::time::Instant::now();
    s.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[test]
fn admin_listener_closes_after_http_1_0_and_connection_close() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, ""));
    let admin = o.admin.expect("admin");
    for request in [
        "GET /healthz HTTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "HEAD /metrics HTTP/1.0\r\n\r\n",
    ] {
        let (answer, took) = admin_raw(admin, request);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{request:?}: {answer}"
        );
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        // Closed right after the answer, not after the 10 s idle timeout.
        assert!(
            took < Duration::from_secs(3),
            "{request:?} closed after {took:?}"
        );
    }
    let (answer, took) = admin_raw(admin, "NOT HTTP AT ALL\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // HTTP/1.1 without `Connection: close` keeps the connection for the next request.
    let mut c = Conn::open(admin);
    for _ in 0..3 {
        let r = c.get("localhost", "/healthz");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert!(!c.is_closed(Duration::from_millis(300)));
}

#[test]
fn admin_listener_bounds_its_connections() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, ""));
    let admin = o.admin.expect("admin");
    // Idle connections up to the limit (32) are held open ...
    let mut held: Vec<Conn> = (0..32).map(|_| Conn::open(admin)).collect();
    assert_eq!(held[31].get("localhost", "/healthz").status, 200);
    // ... and the next one is turned away at once instead of piling up.
    let (answer, took) = admin_raw(admin, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
        "{answer}"
    );
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    // A slot that frees up serves again.
    held.truncate(31);
    let r = wait_for(WAIT, "a free admin slot", || {
        let (answer, _) = admin_raw(
            admin,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        answer.starts_with("HTTP/1.1 200").then_some(answer)
    });
    assert!(r.ends_with("ok\n"), "{r}");
    // The proxy is not affected.
    assert_eq!(o.get("blog.test", "/").status, 200);
}

#[test]
fn man_page_documents_every_subcommand_and_its_options() {
    // roff writes `-` as `\-`.
    let man = cli(&["man"]).ok().stdout.replace("\\-", "-");
    for text in [
        "--config",
        "--socket",
        "--log-format",
        "--until",
        "--reason",
        "--all",
        "--json",
        "offramp offline",
        "offramp completions",
    ] {
        assert!(man.contains(text), "the man page lacks {text}");
    }
    // One page: no references to per-command pages that are not installed.
    assert!(
        !man.contains("offramp-offline(1)"),
        "refers to offramp-offline(1)"
    );
}
