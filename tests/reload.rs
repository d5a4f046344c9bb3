//! Hot reload of the config as an operator sees it (CONTRACT section 6): the real daemon
//! under continuous client traffic while its config file is edited in place, replaced
//! by rename, saved the way vim saves, made invalid, fixed, rewritten in a burst and
//! reloaded by SIGHUP; requests in flight across a reload; upstream connection pools
//! kept; changes that need a restart; sites added, removed and renamed; the
//! last-action-wins rule between runtime overrides and edits.
//!
//! Covered elsewhere and not repeated here: the reload counters on `/metrics`
//! (tests/ops.rs `metrics_and_healthz_after_traffic_and_a_flip`), `RELOADING=1`/`READY=1`
//! around SIGHUP and `offramp reload` (tests/ops.rs), certificates renewed by the watch
//! and bad ones refused (tests/tls.rs `certificates_are_swapped_without_restart_and_bad_ones_refused`),
//! a global override covering a site added by a reload (tests/control.rs
//! `global_override_applies_to_sites_added_later`), overrides of sites removed while
//! offramp was stopped (tests/control.rs).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use serde_json::Value;

const STATUS: &str = "https://status.example.com";
/// The daemon's debounce (src/watch.rs): long enough to be sure the watch did not react.
const DEBOUNCE: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------
// Config text
// ---------------------------------------------------------------------------------

/// A `[[site]]` answering on `<name>.test`, with extra lines (`state = ...`).
fn site(name: &str, upstream: &str, extra: &str) -> String {
    format!("[[site]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{upstream}\"\n{extra}\n")
}

/// A whole config: `[server]` (+ `server_extra` lines), `[maintenance]`, the sites.
fn config(server_extra: &str, sites: &[String]) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"{STATUS}\"\n\n{}",
        server_section(server_extra),
        sites.concat()
    )
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
}

// ---------------------------------------------------------------------------------
// Edits the file watch cannot see
// ---------------------------------------------------------------------------------

/// Starts the daemon on `offramp.toml`, a symlink to `live/offramp.toml`. Writing the
/// target (see [`edit_unseen`]) changes the config without any event in the directory
/// the watch looks at, so a reload by the CLI is the one that applies it and its reply
/// carries the report, deterministically.
fn start_linked(text: &str) -> Offramp {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("live")).expect("mkdir live");
    std::fs::write(dir.path().join("live/offramp.toml"), text).expect("write config");
    std::os::unix::fs::symlink("live/offramp.toml", dir.path().join("offramp.toml"))
        .expect("symlink config");
    Offramp::start_in(dir, &[])
}

fn is_watch_trigger(l: &str) -> bool {
    l.contains("config or certificates changed, reloading")
}

/// Rewrites the config through the symlink's target (see [`start_linked`]); nothing
/// is applied until a reload is asked for.
fn edit_unseen(o: &Offramp, text: &str) {
    let before = o.count_log(is_watch_trigger);
    std::fs::write(o.dir.path().join("live/offramp.toml"), text).expect("write config");
    std::thread::sleep(3 * DEBOUNCE);
    assert_eq!(
        o.count_log(is_watch_trigger),
        before,
        "the file watch saw a change to the symlink's target; these tests need an edit it \
         cannot see to get the report of `offramp reload` deterministically"
    );
}

// ---------------------------------------------------------------------------------
// The control socket, metrics, status
// ---------------------------------------------------------------------------------

/// One request on the control socket, by hand (as `socat` would); the reply.
fn control(o: &Offramp, line: &str) -> Value {
    let mut s = UnixStream::connect(o.socket()).expect("connect control socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(format!("{line}\n").as_bytes())
        .expect("write request");
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).expect("read reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
}

/// The `reload` object of a `{"cmd":"reload"}` reply, checked to be `ok`.
fn reload_report(o: &Offramp) -> Value {
    let r = control(o, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "reload refused: {r}");
    r["reload"].clone()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|n| n.as_str().unwrap_or_default().to_string())
        .collect()
}

fn status(o: &Offramp) -> Value {
    o.cli(&["status", "--json"]).ok().json()
}

fn entry(st: &Value, name: &str) -> Value {
    st["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("site {name} not in {st}"))
}

/// A counter of the admin listener's `/metrics` (0 when not exported yet).
fn metric(o: &Offramp, name: &str) -> f64 {
    let admin = o.admin.expect("admin listener");
    let r = Conn::open(admin).get("localhost", "/metrics");
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------
// Continuous traffic
// ---------------------------------------------------------------------------------

/// What a request through the proxy gave, classified; anything else is a failure.
/// `origin:NAME`: proxied to that test origin; `302:LOCATION`: sent to a status page.
fn classify(status: u16, headers: &[(String, String)], body: &[u8]) -> Result<String, String> {
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(200)
            .collect::<String>()
    };
    match status {
        200 => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| format!("200 without the origin's JSON ({e}): {}", text()))?;
            if v["target"] != "/p?q=1" {
                return Err(format!("origin saw the wrong target: {v}"));
            }
            Ok(format!("origin:{}", v["origin"].as_str().unwrap_or("?")))
        }
        302 => {
            let loc = headers
                .iter()
                .find(|(k, _)| k == "location")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if loc.starts_with(STATUS) && loc.ends_with("/p?q=1") {
                Ok(format!("302:{loc}"))
            } else {
                Err(format!("302 to an unexpected place: {loc:?}"))
            }
        }
        s => Err(format!("unexpected status {s}: {}", text())),
    }
}

fn proxied_by(origin: &str) -> String {
    format!("origin:{origin}")
}

fn redirected_to(page: &str) -> String {
    format!("302:{STATUS}/{page}/p?q=1")
}

/// A response as the traffic threads read it: status, lower-cased headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 response; every failure (close, timeout, garbage) is an `Err`.
fn read_reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Reply, String> {
    fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        match s.read(&mut chunk) {
            Ok(0) => Err("connection closed by the proxy".into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
    let find = |b: &[u8], n: &[u8]| b.windows(n.len()).position(|w| w == n);
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(s, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(s, buf)?;
            };
            let size_line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_line.trim(), 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                fill(s, buf)?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
    } else if let Some(n) = get("content-length") {
        let n: usize = n.parse().map_err(|_| format!("bad Content-Length {n:?}"))?;
        while buf.len() < n {
            fill(s, buf)?;
        }
        body = buf.drain(..n).collect();
    } else {
        return Err(format!("response without a length: {head:?}"));
    }
    Ok((status, headers, body))
}

/// What one traffic thread has seen so far.
#[derive(Default)]
struct Seen {
    /// Responses classified so far.
    n: u64,
    /// The classification of the latest one.
    last: String,
    /// TCP connections opened (a keep-alive client opens exactly one unless dropped).
    connections: u64,
}

/// Client threads hammering `app.test` for the whole test: some on one keep-alive
/// connection each, some on a fresh connection per request.
struct Traffic {
    stop: Arc<AtomicBool>,
    clients: Vec<(bool, Arc<Mutex<Seen>>)>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    fn start(addr: SocketAddr, keep_alive: usize, fresh: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut clients = Vec::new();
        let mut threads = Vec::new();
        for i in 0..keep_alive + fresh {
            let keep = i < keep_alive;
            let seen: Arc<Mutex<Seen>> = Arc::default();
            clients.push((keep, seen.clone()));
            let (stop, failures) = (stop.clone(), failures.clone());
            threads.push(std::thread::spawn(move || {
                client_loop(addr, keep, &seen, &failures, &stop)
            }));
        }
        Traffic {
            stop,
            clients,
            failures,
            threads,
        }
    }

    /// Waits until every client has completed a request that started after this call,
    /// then asserts that each one's latest response was `want`.
    fn all_see(&self, want: &str) {
        let marks: Vec<u64> = self
            .clients
            .iter()
            .map(|(_, s)| s.lock().unwrap().n)
            .collect();
        for ((keep, seen), mark) in self.clients.iter().zip(marks) {
            let last = wait_for(WAIT, "a traffic client's next responses", || {
                let s = seen.lock().unwrap();
                (s.n >= mark + 2).then(|| s.last.clone())
            });
            let kind = if *keep { "keep-alive" } else { "fresh" };
            assert_eq!(last, want, "a {kind} traffic client sees the wrong config");
        }
    }

    /// Stops the clients; every failure they met, and the connections each opened.
    fn finish(self) -> (Vec<String>, u64, Vec<(bool, u64)>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("traffic thread");
        }
        let total = self.clients.iter().map(|(_, s)| s.lock().unwrap().n).sum();
        let conns = self
            .clients
            .iter()
            .map(|(k, s)| (*k, s.lock().unwrap().connections))
            .collect();
        let failures = self.failures.lock().unwrap().clone();
        (failures, total, conns)
    }
}

fn client_loop(
    addr: SocketAddr,
    keep_alive: bool,
    seen: &Mutex<Seen>,
    failures: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let request: &[u8] = if keep_alive {
        b"GET /p?q=1 HTTP/1.1\r\nHost: app.test\r\n\r\n"
    } else {
        b"GET /p?q=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    };
    let fail = |what: String| failures.lock().unwrap().push(what);
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    while !stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(WAIT));
                    let _ = s.set_write_timeout(Some(WAIT));
                    let _ = s.set_nodelay(true);
                    seen.lock().unwrap().connections += 1;
                    conn = Some((s, Vec::new()));
                }
                Err(e) => {
                    fail(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some((s, buf)) = conn.as_mut() else {
            continue;
        };
        let result = s
            .write_all(request)
            .map_err(|e| format!("write: {e}"))
            .and_then(|()| read_reply(s, buf))
            .and_then(|(status, headers, body)| classify(status, &headers, &body));
        match result {
            Ok(v) => {
                let mut st = seen.lock().unwrap();
                st.n += 1;
                st.last = v;
            }
            Err(e) => {
                let kind = if keep_alive { "keep-alive" } else { "fresh" };
                fail(format!("{kind} client: {e}"));
                conn = None;
            }
        }
        if !keep_alive {
            conn = None;
        }
        // Continuous, but leaving the shared machine's cores to the daemon.
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// One request on a new connection, classified (a failure panics).
fn probe(o: &Offramp) -> String {
    let r = o.get("app.test", "/p?q=1");
    classify(r.status, &r.headers, &r.body)
        .unwrap_or_else(|e| panic!("probe: {e}; log:\n{}", o.log_text()))
}

/// Waits until requests get `want`, then until every traffic client gets it too.
fn in_force(o: &Offramp, traffic: &Traffic, want: &str) {
    wait_for(WAIT, want, || (probe(o) == want).then_some(()));
    traffic.all_see(want);
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn every_kind_of_edit_under_continuous_traffic_fails_no_request() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let admin = "admin = \"127.0.0.1:0\"";
    let other = site("other", &b.url(), "");
    let with_app = |app: String| config(admin, &[app, other.clone()]);
    let on = |origin: &TestOrigin| with_app(site("app", &origin.url(), ""));
    let off = |page: &str| {
        with_app(site(
            "app",
            &a.url(),
            &format!("state = \"offline\"\nstatus_page = \"{STATUS}/{page}\""),
        ))
    };

    let o = Offramp::start(&on(&a));
    let pid = o.pid();
    let traffic = Traffic::start(o.addr(), 2, 2);
    in_force(&o, &traffic, &proxied_by("a"));

    // Edited in place (truncate + write).
    o.write_config(&on(&b));
    in_force(&o, &traffic, &proxied_by("b"));

    // Replaced by rename (write a temp file, rename it over).
    o.replace_config(&off("renamed"));
    in_force(&o, &traffic, &redirected_to("renamed"));

    // Saved the way vim does: the old file moved away, a new one written, the backup
    // removed; slowly, as on a loaded machine: the file is missing for longer than the
    // debounce, which must not count as a failed reload.
    let errors_before = metric(&o, "offramp_reload_errors_total");
    let backup = o.dir.path().join("offramp.toml~");
    std::fs::rename(&o.config, &backup).expect("move the old file away");
    std::thread::sleep(3 * DEBOUNCE);
    o.write_config(&on(&a));
    std::fs::remove_file(&backup).expect("remove backup");
    in_force(&o, &traffic, &proxied_by("a"));
    assert_eq!(
        metric(&o, "offramp_reload_errors_total"),
        errors_before,
        "an editor's save counted as a failed reload; log:\n{}",
        o.log_text()
    );
    assert_eq!(status(&o)["reload"]["ok"], true);

    // Made invalid (an unknown key, and an upstream change that must not apply).
    let logged_before = o.count_log(|l| l.contains("config not applied"));
    let bad = with_app(site("app", &b.url(), "bogus = 1"));
    let line = line_of(&bad, "bogus");
    let at = format!("offramp.toml:{line}: site[1].bogus");
    o.write_config(&bad);
    wait_for(WAIT, "the watch's failed reload", || {
        (o.count_log(|l| l.contains("config not applied")) > logged_before).then_some(())
    });
    o.wait_log(WAIT, "the error with file, line and key in the log", |l| {
        l.contains(&at)
    });
    traffic.all_see(&proxied_by("a"));
    assert_eq!(probe(&o), proxied_by("a"));
    let out = o.cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(err.len(), 1, "one line on stderr: {out:?}");
    assert!(
        err[0].contains(&at) && err[0].contains("unknown key"),
        "{out:?}"
    );
    let st = status(&o);
    assert_eq!(st["reload"]["ok"], false, "{st}");
    assert!(
        st["reload"]["error"].as_str().unwrap_or("").contains(&at),
        "{st}"
    );
    let table = o.cli(&["status"]).ok().stdout;
    assert!(
        table.contains("last reload FAILED") && table.contains(&at),
        "{table}"
    );
    // The watch's failed reload and the CLI's.
    assert!(
        metric(&o, "offramp_reload_errors_total") >= errors_before + 2.0,
        "reload errors not counted"
    );
    traffic.all_see(&proxied_by("a"));

    // Fixed: applies normally, and status no longer shows the failure.
    o.replace_config(&on(&b));
    in_force(&o, &traffic, &proxied_by("b"));
    assert_eq!(status(&o)["reload"]["ok"], true);
    assert!(!o.cli(&["status"]).ok().stdout.contains("FAILED"));

    // A burst of quick writes, in place and by rename: debounced, the last one wins.
    let triggers_before = o.count_log(is_watch_trigger);
    let writes = 30;
    for i in 0..writes {
        let text = off(&format!("burst{i}"));
        if i % 2 == 0 {
            o.write_config(&text);
        } else {
            o.replace_config(&text);
        }
    }
    let last = redirected_to(&format!("burst{}", writes - 1));
    in_force(&o, &traffic, &last);
    std::thread::sleep(3 * DEBOUNCE);
    in_force(&o, &traffic, &last);
    let triggers = o.count_log(is_watch_trigger) - triggers_before;
    assert!(
        (1..writes / 3).contains(&triggers),
        "{writes} writes in a burst gave {triggers} reloads by the watch"
    );

    // SIGHUP: turn the file into a symlink first (a change the watch sees, and waits
    // for), then edit its target, which the watch cannot see; SIGHUP applies it.
    let live = o.dir.path().join("live.toml");
    std::fs::write(&live, off(&format!("burst{}", writes - 1))).expect("write");
    let reloads_before = o.count_log(|l| l.contains("config reloaded"));
    let link = o.dir.path().join(".offramp.toml.link");
    std::os::unix::fs::symlink("live.toml", &link).expect("symlink");
    std::fs::rename(&link, &o.config).expect("rename symlink over");
    wait_for(WAIT, "the reload of the symlinked file", || {
        (o.count_log(|l| l.contains("config reloaded")) > reloads_before).then_some(())
    });
    let triggers_before = o.count_log(is_watch_trigger);
    std::fs::write(&live, on(&a)).expect("write");
    std::thread::sleep(3 * DEBOUNCE);
    assert_eq!(o.count_log(is_watch_trigger), triggers_before);
    traffic.all_see(&last);
    o.signal(libc::SIGHUP);
    in_force(&o, &traffic, &proxied_by("a"));
    o.wait_log(WAIT, "the SIGHUP log line", |l| {
        l.contains("SIGHUP received")
    });

    // Not one failed or unexpected response, no connection dropped, one process.
    let (failures, total, conns) = traffic.finish();
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed, first ones:\n{}\nlog:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n"),
        o.log_text()
    );
    for (keep, n) in conns {
        if keep {
            assert_eq!(n, 1, "a keep-alive client had to reconnect");
        }
    }
    let mut o = o;
    assert_eq!(o.child.try_wait().expect("try_wait"), None, "daemon exited");
    assert_eq!(o.pid(), pid);
    let ready: Vec<String> = o
        .lines()
        .into_iter()
        .filter(|l| l.contains(" ready"))
        .collect();
    assert_eq!(ready.len(), 1, "started once: {ready:?}");
    assert!(ready[0].contains(&format!("pid={pid}")), "{ready:?}");
    assert_eq!(o.stop(), Some(0));
}

/// An origin whose answers the test releases: `/held` answers nothing until released;
/// `/held-stream` sends the head and a first chunk at once, the rest when released;
/// anything else is answered at once.
struct GateOrigin {
    addr: SocketAddr,
    /// Held targets that reached the origin, in order.
    arrived: Arc<Mutex<Vec<String>>>,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl GateOrigin {
    fn start() -> GateOrigin {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let arrived: Arc<Mutex<Vec<String>>> = Arc::default();
        let open: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let (arr, op) = (arrived.clone(), open.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (arr, op) = (arr.clone(), op.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(WAIT));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let target = head.split(' ').nth(1).unwrap_or_default().to_string();
                    if !target.starts_with("/held") {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Origin: gate\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngate");
                        return;
                    }
                    let stream = target == "/held-stream";
                    if stream {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nbefore\n\r\n",
                        );
                    }
                    arr.lock().unwrap().push(target);
                    let (m, c) = &*op;
                    let mut open = m.lock().unwrap();
                    while !*open {
                        let (g, t) = c.wait_timeout(open, WAIT).unwrap();
                        open = g;
                        if t.timed_out() {
                            return;
                        }
                    }
                    drop(open);
                    let _ = if stream {
                        s.write_all(b"6\r\nafter\n\r\n0\r\n\r\n")
                    } else {
                        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
                    };
                });
            }
        });
        GateOrigin {
            addr,
            arrived,
            open,
        }
    }

    fn release(&self) {
        let (m, c) = &*self.open;
        *m.lock().unwrap() = true;
        c.notify_all();
    }
}

#[test]
fn requests_in_flight_finish_on_the_config_they_started_with() {
    let gate = GateOrigin::start();
    let b = TestOrigin::start("b");
    let o = Offramp::start(&config(
        "",
        &[site("app", &format!("http://{}", gate.addr), "")],
    ));
    // One request waiting for its response head, one in the middle of its body.
    let mut waiting = o.conn();
    waiting.send(b"GET /held HTTP/1.1\r\nHost: app.test\r\n\r\n");
    let mut streaming = o.conn();
    streaming.send(b"GET /held-stream HTTP/1.1\r\nHost: app.test\r\n\r\n");
    let (st, _) = streaming.read_head();
    assert_eq!(st, 200);
    assert_eq!(streaming.read_chunk().as_deref(), Some(&b"before\n"[..]));
    wait_for(WAIT, "both requests at the origin", || {
        (gate.arrived.lock().unwrap().len() == 2).then_some(())
    });

    // The site is renamed and moved to another upstream, by an edit.
    let moved = site("moved", &b.url(), "").replace("\"moved.test\"", "\"app.test\"");
    o.replace_config(&config("", &[moved]));
    wait_for(WAIT, "the edit in force", || {
        (o.get("app.test", "/").header("x-origin") == Some("b")).then_some(())
    });

    gate.release();
    let r = waiting.read_response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "held"));
    assert_eq!(streaming.read_chunk().as_deref(), Some(&b"after\n"[..]));
    assert_eq!(streaming.read_chunk(), None);
    // Both were logged as requests of the site they started on.
    for path in ["/held", "/held-stream"] {
        o.wait_log(WAIT, "the access log line of a held request", |l| {
            l.contains("offramp::access")
                && l.contains(r#"site="app""#)
                && l.contains(&format!("path={path} status=200"))
        });
    }
    // Their connections stay open and follow the new config from the next request.
    for c in [&mut waiting, &mut streaming] {
        let r = c.get("app.test", "/next");
        assert_eq!(r.header("x-origin"), Some("b"), "{}", r.text());
    }
    assert_eq!(gate.arrived.lock().unwrap().len(), 2);
}

#[test]
fn upstream_connections_survive_a_reload_that_does_not_touch_their_upstream() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let c = TestOrigin::start("c");
    let o = start_linked(&config(
        "",
        &[site("app", &a.url(), ""), site("other", &b.url(), "")],
    ));
    let mut client = o.conn();
    let first = client.get("app.test", "/").json()["conn"].clone();
    // Precondition: the proxy pools upstream connections at all.
    assert_eq!(client.get("app.test", "/").json()["conn"], first);
    assert_eq!(a.conn_count(), 1);

    // Another site's upstream changes, a site is added, and `app` itself changes in
    // everything but its upstream.
    edit_unseen(
        &o,
        &config(
            "",
            &[
                site(
                    "app",
                    &a.url(),
                    &format!("status_page = \"{STATUS}/app\"\nread_timeout = \"30s\""),
                ),
                site("other", &c.url(), ""),
                site("new", &c.url(), ""),
            ],
        ),
    );
    let report = reload_report(&o);
    assert_eq!(names(&report["added"]), ["new"], "{report}");
    assert_eq!(o.get("other.test", "/").header("x-origin"), Some("c"));

    // The pooled upstream connection serves `app`'s next requests. (Only on the same
    // client connection: a new client connection may race the previous request's return
    // of its upstream connection to the pool, reload or not.)
    for _ in 0..3 {
        assert_eq!(client.get("app.test", "/").json()["conn"], first);
    }
    assert_eq!(a.conn_count(), 1, "the reload made offramp reconnect to a");
}

#[test]
fn restart_only_changes_are_reported_and_the_rest_applies() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let before = config("", &[site("app", &a.url(), "")]);
    let o = start_linked(&before);
    let moved_to = dead_port();
    let after = config("", &[site("app", &b.url(), "")])
        .replace("http = \"127.0.0.1:0\"", &format!("http = \"{moved_to}\""))
        .replace("threads = 2", "threads = 3")
        .replace("grace = \"2s\"", "grace = \"1s\"");
    assert_ne!(after, before);
    edit_unseen(&o, &after);

    let out = o.cli(&["reload"]).ok();
    assert!(
        out.stdout
            .contains("needs restart to apply: server.http, server.threads"),
        "{}",
        out.stdout
    );
    o.wait_log(WAIT, "a warning naming the keys", |l| {
        l.contains("WARN") && l.contains("after a restart: server.http, server.threads")
    });
    // Reported again while the file still differs from what runs: never silently.
    let report = reload_report(&o);
    assert_eq!(
        names(&report["needs_restart"]),
        ["server.http", "server.threads"],
        "{report}"
    );

    // The rest applied, through the listener that was already there.
    assert_eq!(o.get("app.test", "/").header("x-origin"), Some("b"));
    assert!(
        TcpStream::connect_timeout(&moved_to, Duration::from_secs(2)).is_err(),
        "the new listener address must not be bound before a restart"
    );

    // Reverted in the file: nothing left to restart for.
    edit_unseen(
        &o,
        &config("", &[site("app", &b.url(), "")]).replace("grace = \"2s\"", "grace = \"1s\""),
    );
    let report = reload_report(&o);
    assert_eq!(names(&report["needs_restart"]), Vec::<String>::new());

    // `grace` is not one of them: the reloaded value is the one used when stopping.
    let mut o = o;
    assert_eq!(o.stop(), Some(0));
    o.wait_log(WAIT, "the drain line", |l| {
        l.contains("shutting down") && l.contains("grace=1s")
    });
}

#[test]
fn sites_added_removed_and_renamed_and_their_overrides() {
    let a = TestOrigin::start("a");
    let o = start_linked(&config(
        "",
        &[
            site("blog", &a.url(), ""),
            site("cloud", &a.url(), ""),
            site("wiki", &a.url(), ""),
        ],
    ));
    o.cli(&["offline", "blog", "--reason", "stays"]).ok();
    o.cli(&["offline", "cloud", "--reason", "goes"]).ok();
    o.cli(&["offline", "wiki", "--reason", "renamed"]).ok();

    // `cloud` removed, `wiki` renamed `docs` (same host, plus one), `shop` added.
    let docs = site("docs", &a.url(), "").replace(
        "hosts = [\"docs.test\"]",
        "hosts = [\"wiki.test\", \"docs.test\"]",
    );
    edit_unseen(
        &o,
        &config(
            "",
            &[
                site("blog", &a.url(), ""),
                docs.clone(),
                site("shop", &a.url(), ""),
            ],
        ),
    );
    let report = reload_report(&o);
    assert_eq!(names(&report["added"]), ["docs", "shop"], "{report}");
    assert_eq!(names(&report["removed"]), ["cloud", "wiki"], "{report}");
    assert_eq!(
        names(&report["dropped_overrides"]),
        ["cloud", "wiki"],
        "{report}"
    );
    assert_eq!(names(&report["state_changed"]), Vec::<String>::new());
    o.wait_log(WAIT, "the reload's log line", |l| {
        l.contains("config reloaded") && l.contains(r#"dropped_overrides=["cloud", "wiki"]"#)
    });

    // Removed: no longer routed, no longer known.
    assert_eq!(o.get("cloud.test", "/").status, 404);
    let out = o.cli(&["offline", "cloud"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    // Renamed: starts from its config state, the old name's flip is not carried over.
    for h in ["wiki.test", "docs.test", "shop.test"] {
        assert_eq!(o.get(h, "/").status, 200, "{h}");
    }
    // Untouched: keeps its override.
    assert_eq!(o.get("blog.test", "/").status, 302);
    let st = status(&o);
    let listed: Vec<&str> = st["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(listed, ["blog", "docs", "shop"]);
    assert_eq!(entry(&st, "blog")["reason"], "stays");
    assert_eq!(entry(&st, "docs")["source"], "config");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(o.state_file()).expect("read state file"))
            .expect("state file is JSON");
    let overrides: Vec<&String> = saved["sites"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(overrides, ["blog"], "{saved}");

    // Added back: a fresh site, the old flip is gone. The CLI prints the report.
    edit_unseen(
        &o,
        &config(
            "",
            &[
                site("blog", &a.url(), ""),
                docs,
                site("cloud", &a.url(), ""),
            ],
        ),
    );
    let out = o.cli(&["reload"]).ok();
    assert!(out.stdout.contains("sites added: cloud"), "{}", out.stdout);
    assert!(out.stdout.contains("sites removed: shop"), "{}", out.stdout);
    assert!(!out.stdout.contains("overrides dropped"), "{}", out.stdout);
    assert_eq!(o.get("cloud.test", "/").status, 200);
    assert_eq!(o.get("shop.test", "/").status, 404);
}

#[test]
fn last_action_wins_between_flips_and_edits() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let cfg = |blog_upstream: &TestOrigin, cloud_state: &str| {
        config(
            "",
            &[
                site("blog", &blog_upstream.url(), ""),
                site("cloud", &a.url(), &format!("state = \"{cloud_state}\"")),
            ],
        )
    };
    let o = start_linked(&cfg(&a, "online"));
    let cloud = |o: &Offramp| o.get("cloud.test", "/").status;

    // A flip, then an edit that leaves the site's state alone: the flip stays.
    o.cli(&["offline", "cloud", "--reason", "disk swap"]).ok();
    edit_unseen(&o, &cfg(&b, "online"));
    let report = reload_report(&o);
    assert_eq!(names(&report["dropped_overrides"]), Vec::<String>::new());
    assert_eq!(o.get("blog.test", "/").header("x-origin"), Some("b"));
    assert_eq!(cloud(&o), 302);
    let e = entry(&status(&o), "cloud");
    assert_eq!(
        (&e["source"], &e["reason"]),
        (&"runtime".into(), &"disk swap".into())
    );

    // An edit of that site's state after the flip: the edit wins, the flip is dropped...
    edit_unseen(&o, &cfg(&b, "offline"));
    let report = reload_report(&o);
    assert_eq!(names(&report["state_changed"]), ["cloud"], "{report}");
    assert_eq!(names(&report["dropped_overrides"]), ["cloud"], "{report}");
    let e = entry(&status(&o), "cloud");
    assert_eq!(
        (&e["state"], &e["source"]),
        (&"offline".into(), &"config".into())
    );
    assert_eq!(e["reason"], Value::Null);
    // ... for good: editing it back brings the site online (a kept flip would not).
    edit_unseen(&o, &cfg(&b, "online"));
    reload_report(&o);
    assert_eq!(cloud(&o), 200);

    // The same over a global override, for the edited site only.
    o.cli(&["offline", "--all"]).ok();
    edit_unseen(&o, &cfg(&b, "offline"));
    let report = reload_report(&o);
    assert_eq!(names(&report["state_changed"]), ["cloud"], "{report}");
    edit_unseen(&o, &cfg(&b, "online"));
    reload_report(&o);
    assert_eq!(cloud(&o), 200);
    assert_eq!(o.get("blog.test", "/").status, 302);
    let st = status(&o);
    assert_eq!(entry(&st, "cloud")["source"], "config");
    assert_eq!(entry(&st, "blog")["source"], "all");
}

/// A self-signed certificate for `app.test` as (PEM certificate, PEM key).
fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["app.test".into()]).expect("certificate");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn write_pair(dir: &Path, pair: &(String, String)) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("app.crt"), &pair.0).expect("write crt");
    std::fs::write(dir.join("app.key"), &pair.1).expect("write key");
}

#[test]
fn the_watch_follows_an_edited_certs_directory() {
    let a = TestOrigin::start("a");
    let pair = self_signed();
    let text = |certs: &str| {
        config(
            &format!("https = \"127.0.0.1:0\"\ncerts = \"{certs}\""),
            &[site("app", &a.url(), "")],
        )
    };
    let o = {
        // `start_linked`, with the certificates in place before the start.
        let dir = tempfile::tempdir().expect("tempdir");
        write_pair(&dir.path().join("certs"), &pair);
        std::fs::create_dir(dir.path().join("live")).expect("mkdir live");
        std::fs::write(dir.path().join("live/offramp.toml"), text("certs")).expect("config");
        std::os::unix::fs::symlink("live/offramp.toml", dir.path().join("offramp.toml"))
            .expect("symlink config");
        Offramp::start_in(dir, &[])
    };

    // Moved to another directory, applied by `offramp reload` alone.
    let new_dir = o.dir.path().join("certs2");
    write_pair(&new_dir, &pair);
    edit_unseen(&o, &text("certs2"));
    let report = reload_report(&o);
    assert_eq!(report["certs_reloaded"], true, "{report}");

    // A renewal gone wrong in the new directory is noticed by the watch, not only by
    // the next `offramp reload`.
    let tmp = new_dir.join(".app.key.tmp");
    std::fs::write(&tmp, "not a key").expect("write");
    std::fs::rename(&tmp, new_dir.join("app.key")).expect("rename");
    let st = wait_for(WAIT, "the watch's reload of the broken key", || {
        let st = status(&o);
        (st["reload"]["ok"] == false).then_some(st)
    });
    assert!(
        st["reload"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("certs2/app.key"),
        "{st}"
    );
    assert_eq!(o.get("app.test", "/").status, 200);
}

#[test]
fn an_edit_right_after_ready_is_not_missed() {
    // The watch used to be set up by a task that could run after `ready` was logged.
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let o = Offramp::start(&config("", &[site("app", &a.url(), "")]));
    o.replace_config(&config("", &[site("app", &b.url(), "")]));
    wait_for(WAIT, "the edit in force", || {
        (o.get("app.test", "/").header("x-origin") == Some("b")).then_some(())
    });
}

/// `start_linked` with `certs/app.{crt,key}` in place for `app.test`.
fn start_linked_with_certs(text: &str) -> Offramp {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pair(&dir.path().join("certs"), &self_signed());
    std::fs::create_dir(dir.path().join("live")).expect("mkdir live");
    std::fs::write(dir.path().join("live/offramp.toml"), text).expect("config");
    std::os::unix::fs::symlink("live/offramp.toml", dir.path().join("offramp.toml"))
        .expect("symlink config");
    Offramp::start_in(dir, &[])
}

#[test]
fn a_reload_is_validated_against_the_listeners_that_keep_running() {
    let a = TestOrigin::start("a");
    let https = "https = \"127.0.0.1:0\"\ncerts = \"certs\"";
    let o = start_linked_with_certs(&config(https, &[site("app", &a.url(), "")]));
    assert_eq!(o.https.len(), 1);

    // HTTPS removed from the file (it keeps running until a restart) and a site added
    // whose host no certificate covers: valid as written, not with what stays in force.
    let no_https = |extra: &str| {
        config(
            extra,
            &[site("app", &a.url(), ""), site("new", &a.url(), "")],
        )
    };
    for (extra, needles) in [
        // certs kept: the new host has no certificate.
        (
            "certs = \"certs\"",
            vec!["new.test", "no certificate", "server.https"],
        ),
        // certs removed too: the running HTTPS listeners would have none.
        ("", vec!["server.certs", "server.https"]),
    ] {
        let text = no_https(extra);
        let copy = o.dir.path().join("as-written.toml");
        std::fs::write(&copy, &text).expect("write copy");
        let check = cli(&["check", "-c", copy.to_str().unwrap()]);
        assert_eq!(check.code, Some(0), "valid as written: {check:?}");
        edit_unseen(&o, &text);
        let out = o.cli(&["reload"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {out:?}");
        for n in &needles {
            assert!(lines[0].contains(n), "{n:?} in {out:?}");
        }
        assert_eq!(o.get("new.test", "/").status, 404, "nothing applied");
        let st = status(&o);
        assert_eq!(st["reload"]["ok"], false, "{st}");
    }

    // HTTPS removed with nothing else that depends on it: applied, restart pending.
    edit_unseen(
        &o,
        &config("certs = \"certs\"", &[site("app", &a.url(), "")]),
    );
    let report = reload_report(&o);
    assert_eq!(
        names(&report["needs_restart"]),
        ["server.https"],
        "{report}"
    );
    assert_eq!(o.get("app.test", "/").status, 200);
    let st = status(&o);
    assert_eq!(st["reload"]["ok"], true, "{st}");
    assert_eq!(
        names(&st["reload"]["needs_restart"]),
        ["server.https"],
        "{st}"
    );
    let table = o.cli(&["status"]).ok().stdout;
    assert!(
        table.contains("needs restart: server.https"),
        "the table shows the pending restart:\n{table}"
    );
    // A failed reload does not hide it.
    edit_unseen(
        &o,
        &config("certs = \"certs\"", &[site("app", &a.url(), "bogus = 1")]),
    );
    assert_eq!(o.cli(&["reload"]).code, Some(1));
    let st = status(&o);
    assert_eq!(st["reload"]["ok"], false, "{st}");
    assert_eq!(
        names(&st["reload"]["needs_restart"]),
        ["server.https"],
        "{st}"
    );
}

#[test]
fn several_errors_read_well_in_reload_and_status() {
    let a = TestOrigin::start("a");
    let good = config("", &[site("app", &a.url(), "")]);
    let o = start_linked(&good);
    let bad = config(
        "",
        &[
            site("app", &a.url(), "bogus = 1"),
            site("two", "ftp://nowhere", ""),
        ],
    );
    edit_unseen(&o, &bad);
    let out = o.cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "errors are one line on stderr: {out:?}");
    let line = lines[0];
    assert!(!line.contains(":;"), "{line}");
    let file = o.dir.path().join("offramp.toml").display().to_string();
    let first = format!("{file}:{}: site[1].bogus", line_of(&bad, "bogus"));
    let second = format!("{file}:{}: site[2].upstream", line_of(&bad, "ftp://"));
    assert!(line.contains(&format!("stays in force: {first}")), "{line}");
    assert!(line.contains(&format!("; {second}")), "{line}");

    // `status`: each error on its own indented line under the FAILED line.
    let table = o.cli(&["status"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("last reload FAILED"))
        .unwrap_or_else(|| panic!("no FAILED line:\n{table}"));
    assert!(lines[at + 1].starts_with(&format!("  {first}")), "{table}");
    assert!(lines[at + 2].starts_with(&format!("  {second}")), "{table}");
    assert_eq!(lines.len(), at + 3, "{table}");

    // A syntax error: `reload` still finds the daemon through `server.control`.
    let broken = good.replace("[maintenance]", "[maintenance");
    edit_unseen(&o, &broken);
    let out = o.cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("TOML syntax error"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}
