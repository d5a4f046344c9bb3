//! Health checks as a user sees them (CONTRACT sections 9, 10 and 15): what a check
//! sends, when an upstream counts as down or up again, each kind of failure (counted by
//! reason, never a stuck checker), the component statuses and `auto_offline` they give,
//! how flips weigh against them, the proxy skipping a down upstream, and the metrics.
//! The upstreams are written here (std::net, a thread per connection) so each test
//! controls exactly how they fail and sees every request head. Uptime and sites
//! without checks are in tests/health_uptime.rs.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How an upstream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Any status code, with a body naming the upstream.
    Status(u16),
    /// Reads the request and never answers.
    Hang,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Accepts and resets the connection at once (SO_LINGER 0).
    Reset,
    /// Answers 200 after this many milliseconds.
    Slow(u64),
}

/// One request an upstream read: its head, whether it was a health check, and the mode
/// it was answered in.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    head: String,
    check: bool,
    mode: Mode,
}

impl Hit {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    mode: Mutex<Mode>,
    /// `mode` applies to health checks only; visitors always get 200.
    checks_only: AtomicBool,
    hits: Mutex<Vec<Hit>>,
}

/// An upstream whose behaviour the test switches at any time, and that can stop
/// listening (connections refused) and listen again on the same port.
struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl Upstream {
    fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let u = Upstream {
            addr: listener.local_addr().expect("addr"),
            shared: Arc::new(Shared {
                name: name.to_string(),
                mode: Mutex::new(Mode::Status(200)),
                checks_only: AtomicBool::new(false),
                hits: Mutex::new(Vec::new()),
            }),
            accept: Mutex::new(None),
        };
        u.serve(listener);
        u
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    fn checks_only(self, on: bool) -> Upstream {
        self.shared.checks_only.store(on, Ordering::SeqCst);
        self
    }

    fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    fn checks(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.check).collect()
    }

    fn serve(&self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, shared) = (stop.clone(), self.shared.clone());
        let t = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let sh = shared.clone();
                        std::thread::spawn(move || handle(s, &sh));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        *self.accept.lock().unwrap() = Some((stop, t));
    }

    /// Closes the listening socket: connections are refused from now on.
    fn stop_listening(&self) {
        if let Some((stop, t)) = self.accept.lock().unwrap().take() {
            stop.store(true, Ordering::SeqCst);
            t.join().expect("accept thread");
        }
        let refused = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_err();
        assert!(refused, "{} still accepts connections", self.addr);
    }

    /// Listens on the same port again.
    fn listen_again(&self) {
        let listener = wait_for(Duration::from_secs(5), "the port bound again", || {
            TcpListener::bind(self.addr).ok()
        });
        self.serve(listener);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.accept.lock().unwrap().take() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

fn reset_now(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own, with a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

fn handle(mut s: TcpStream, sh: &Shared) {
    let _ = s.set_nonblocking(false);
    let mode = *sh.mode.lock().unwrap();
    if mode == Mode::Reset && !sh.checks_only.load(Ordering::SeqCst) {
        return reset_now(s);
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let check = head
        .to_ascii_lowercase()
        .contains("\r\nuser-agent: offramp-health/");
    let mode = if sh.checks_only.load(Ordering::SeqCst) && !check {
        Mode::Status(200)
    } else {
        mode
    };
    sh.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        head,
        check,
        mode,
    });
    let answer = |s: &mut TcpStream, code: u16| {
        let body = &sh.name;
        let _ = write!(
            s,
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    match mode {
        Mode::Status(code) => answer(&mut s, code),
        Mode::Slow(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            answer(&mut s, 200);
        }
        Mode::Garbage => {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http\r\n\r\n");
        }
        Mode::Reset => reset_now(s),
        Mode::Hang => {
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && *sh.mode.lock().unwrap() == Mode::Hang {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The daemon and what it shows
// ---------------------------------------------------------------------------------

const STATUS: &str = "status.test";
/// fall = 2, interval = 200ms, timeout = 150ms.
const HEALTH: &str = "health = { path = \"/healthz\", interval = \"300ms\", timeout = \"250ms\", expect = \"200-499\", fall = 2, rise = 2 }";

fn daemon(sites: &str) -> Offramp {
    Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n[status]\nhosts = [\"{STATUS}\"]\n\n{sites}",
        server_section_checked("admin = \"127.0.0.1:0\"\n")
    ))
}

/// A `[[site]]` named `name` answering to `name.test`.
fn site(name: &str, upstreams: &[&Upstream], extra: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|u| format!("\"{}\"", u.url()))
        .collect();
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = [{}]\n{extra}\n\n",
        list.join(", ")
    )
}

fn component(o: &Offramp, name: &str) -> String {
    let r = o.get(STATUS, "/api/v2/components.json");
    assert_eq!(r.status, 200, "{}", r.text());
    let all = r.json();
    let c = all["components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("component {name} in {all}"));
    c["status"].as_str().expect("status").to_string()
}

/// Waits until the component shows `want`; the time it took.
fn wait_component(o: &Offramp, name: &str, want: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    wait_for(limit, &format!("{name} {want}"), || {
        (component(o, name) == want).then_some(())
    });
    t.elapsed()
}

/// Waits until the checks found the site up (not merely "not checked yet", which is
/// operational too) and its component says so.
fn wait_up(o: &Offramp, name: &str, limit: Duration) {
    wait_for(limit, &format!("{name} checked up"), || {
        (site_status(o, name)["health"] == "up").then_some(())
    });
    assert_eq!(component(o, name), "operational");
}

fn site_status(o: &Offramp, name: &str) -> Value {
    let all = o.cli(&["status", "--json"]).ok().json();
    all["sites"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} in {all}"))
}

/// (labels, value) of every sample of the metric `name`.
fn samples(o: &Offramp, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let r = Conn::open(o.admin.expect("admin listener")).get("localhost", "/metrics");
    assert_eq!(r.status, 200);
    let mut out = Vec::new();
    for l in r.text().lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = l.rsplit_once(' ') else {
            continue;
        };
        let (n, labels) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            continue;
        }
        let labels = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        out.push((labels, value.parse().expect("metric value")));
    }
    out
}

/// The sum of the samples of `name` carrying all of `labels`.
fn metric(o: &Offramp, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(o, name)
        .iter()
        .filter(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Failed checks of an upstream by reason.
fn failures(o: &Offramp, u: &Upstream) -> BTreeMap<String, f64> {
    samples(o, "offramp_health_check_failures_total")
        .into_iter()
        .filter(|(l, v)| l.get("upstream") == Some(&u.url()) && *v > 0.0)
        .map(|(l, v)| (l["reason"].clone(), v))
        .collect()
}

const LIMIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn a_check_sends_the_site_host_path_and_user_agent_and_one_pass_is_up() {
    let (web, wild) = (Upstream::start("web"), Upstream::start("wild"));
    let slow = "health = { path = \"/healthz?deep=1\", interval = \"2s\", timeout = \"1s\", fall = 3, rise = 2 }";
    let o = daemon(&format!(
        "[[site]]\nname = \"web\"\nhosts = [\"*.other.test\", \"web.test\", \"www.web.test\"]\nupstream = \"{}\"\n{slow}\n\n\
         [[site]]\nname = \"wild\"\nhosts = [\"*.wild.test\"]\nupstream = \"{}\"\n{slow}\n",
        web.url(),
        wild.url()
    ));
    let ready = Instant::now();
    for (u, name, host) in [(&web, "web", "web.test"), (&wild, "wild", "wild.test")] {
        let first = wait_for(Duration::from_secs(4), "the first check", || {
            u.checks().first().cloned()
        });
        let after = first.at.saturating_duration_since(ready);
        assert!(
            after < Duration::from_millis(2500),
            "first check within one interval (2s) of start, was {after:?}"
        );
        let line = first.head.lines().next().unwrap_or_default().to_string();
        assert_eq!(line, "GET /healthz?deep=1 HTTP/1.1", "{}", first.head);
        assert_eq!(
            first.header("host").as_deref(),
            Some(host),
            "{}",
            first.head
        );
        let ua = format!("offramp-health/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(first.header("user-agent"), Some(ua), "{}", first.head);
        // Checks keep their connection alive when the upstream does (HTTP/1.1's default).
        assert_eq!(first.header("connection"), None, "{}", first.head);
        assert_eq!(first.header("content-length"), None, "no body");
        // Up on the first pass, without waiting for `rise` (the next check is 2 s away).
        wait_up(&o, name, Duration::from_secs(1));
        assert_eq!(u.checks().len(), 1, "up after one check");
    }
    assert!(web.hits().iter().all(|h| h.check), "only checks reached it");
}

#[test]
fn fall_failures_in_a_row_make_it_down_and_rise_passes_bring_it_back() {
    let u = Upstream::start("a");
    let health =
        "health = { path = \"/\", interval = \"200ms\", timeout = \"150ms\", fall = 3, rise = 2 }";
    let o = daemon(&site("web", &[&u], health));
    // 404 is within the default expect 200-499: up.
    u.set(Mode::Status(404));
    wait_up(&o, "web", LIMIT);
    assert_eq!(metric(&o, "offramp_upstream_up", &[("site", "web")]), 1.0);
    u.set(Mode::Status(500));
    wait_component(&o, "web", "major_outage", LIMIT);
    let bad = u
        .checks()
        .iter()
        .filter(|h| h.mode == Mode::Status(500))
        .count();
    assert!(bad >= 3, "down after fall = 3 failures, saw {bad}");
    assert_eq!(site_status(&o, "web")["health"], "down");
    assert_eq!(metric(&o, "offramp_upstream_up", &[("site", "web")]), 0.0);
    u.set(Mode::Status(204));
    let before = u.checks().len();
    wait_up(&o, "web", LIMIT);
    let good = u.checks().len() - before;
    assert!(good >= 2, "up after rise = 2 passes, saw {good}");
    assert_eq!(failures(&o, &u).keys().collect::<Vec<_>>(), ["status"]);
}

/// Healthy, then `fail` until major_outage with only `reason` counted and the failures
/// still growing, then `heal` until operational. Prints the time to major_outage.
fn outage(mode: Option<Mode>, reason: &str) {
    let u = Upstream::start("a");
    let o = daemon(&site("web", &[&u], HEALTH));
    wait_up(&o, "web", LIMIT);
    let t = Instant::now();
    match mode {
        Some(m) => u.set(m),
        None => u.stop_listening(),
    }
    wait_component(&o, "web", "major_outage", LIMIT);
    let took = t.elapsed();
    eprintln!("{reason}: major_outage {took:?} after the upstream went down");
    // fall × interval + timeout + 1 s = 1.85 s; generous for a loaded machine.
    assert!(took < Duration::from_millis(3550), "{reason}: {took:?}");
    let first = failures(&o, &u);
    assert_eq!(first.keys().collect::<Vec<_>>(), [reason], "{first:?}");
    let n = first[reason];
    wait_for(LIMIT, "more failed checks", || {
        (failures(&o, &u).get(reason).copied().unwrap_or(0.0) >= n + 3.0).then_some(())
    });
    let later = failures(&o, &u);
    assert_eq!(later.keys().collect::<Vec<_>>(), [reason], "{later:?}");
    match mode {
        Some(_) => u.set(Mode::Status(200)),
        None => u.listen_again(),
    }
    wait_up(&o, "web", LIMIT);
}

#[test]
fn a_refused_connection_is_a_connect_failure() {
    outage(None, "connect");
}

#[test]
fn an_upstream_that_never_answers_is_a_timeout() {
    outage(Some(Mode::Hang), "timeout");
}

#[test]
fn an_answer_after_the_timeout_is_a_timeout() {
    outage(Some(Mode::Slow(500)), "timeout");
}

#[test]
fn an_answer_that_is_not_http_is_a_protocol_failure() {
    outage(Some(Mode::Garbage), "protocol");
}

#[test]
fn a_connection_reset_at_once_is_a_reset_failure() {
    outage(Some(Mode::Reset), "reset");
}

#[test]
fn a_status_outside_expect_is_a_status_failure() {
    outage(Some(Mode::Status(500)), "status");
}

#[test]
fn auto_offline_sends_visitors_to_the_status_page_a_flip_wins_and_reset_gives_it_back() {
    let u = Upstream::start("a").checks_only(true);
    let o = daemon(&site(
        "web",
        &[&u],
        &format!("{HEALTH}\nauto_offline = true"),
    ));
    wait_up(&o, "web", LIMIT);
    assert_eq!(o.get("web.test", "/x").text(), "a");
    u.set(Mode::Status(500));
    let r = wait_for(LIMIT, "the offline redirect", || {
        Some(o.get("web.test", "/x?y=1")).filter(|r| r.status == 302)
    });
    let loc = r.header("location").unwrap_or_default();
    assert!(
        loc.starts_with(&format!(
            "http://{STATUS}:{}/maintenance/web?from=",
            o.addr().port()
        )),
        "{loc}"
    );
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"], &s["by"], &s["health"]),
        (
            &"offline".into(),
            &"health".into(),
            &"health".into(),
            &"down".into()
        ),
        "{s}"
    );
    assert_eq!(component(&o, "web"), "major_outage");
    let table = o.cli(&["status"]).ok().stdout;
    let row = table
        .lines()
        .find(|l| l.starts_with("web "))
        .expect("web row");
    assert!(row.split_whitespace().any(|w| w == "auto"), "{table}");
    // A manual online wins over health.
    o.cli(&["online", "web"]).ok();
    let r = o.get("web.test", "/x");
    assert_eq!((r.status, r.text()), (200, "a".to_string()), "proxied");
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"]),
        (&"online".into(), &"runtime".into())
    );
    assert_eq!(
        component(&o, "web"),
        "major_outage",
        "still failing its checks"
    );
    // `reset` gives it back to health: offline again while every upstream is down.
    o.cli(&["reset", "web"]).ok();
    assert_eq!(o.get("web.test", "/x").status, 302);
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"]),
        (&"offline".into(), &"health".into())
    );
    // Back online by itself after `rise` passes.
    u.set(Mode::Status(200));
    wait_for(LIMIT, "back online", || {
        (o.get("web.test", "/x").status == 200).then_some(())
    });
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"]),
        (&"online".into(), &"config".into())
    );
    wait_up(&o, "web", Duration::from_secs(1));
}

#[test]
fn a_site_flipped_offline_by_hand_stays_under_maintenance_through_an_outage() {
    let u = Upstream::start("a");
    let o = daemon(&site(
        "web",
        &[&u],
        &format!("{HEALTH}\nauto_offline = true"),
    ));
    wait_up(&o, "web", LIMIT);
    o.cli(&["offline", "web", "--reason", "upgrade"]).ok();
    assert_eq!(component(&o, "web"), "under_maintenance");
    // Planned work with the upstream stopped: the checks see it down...
    u.stop_listening();
    wait_for(LIMIT, "the checks to see it down", || {
        (site_status(&o, "web")["health"] == "down").then_some(())
    });
    // ...and the component stays under maintenance.
    for _ in 0..10 {
        assert_eq!(component(&o, "web"), "under_maintenance");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"]),
        (&"offline".into(), &"runtime".into())
    );
    // Flipped online with the upstream still down: now it is an outage.
    o.cli(&["online", "web"]).ok();
    assert_eq!(component(&o, "web"), "major_outage");
    u.listen_again();
    wait_up(&o, "web", LIMIT);
}

#[test]
fn one_of_two_upstreams_down_is_a_partial_outage_and_visitors_reach_the_other() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let o = daemon(&site("web", &[&a, &b], HEALTH));
    wait_up(&o, "web", LIMIT);
    let up = |u: &Upstream| {
        metric(
            &o,
            "offramp_upstream_up",
            &[("site", "web"), ("upstream", &u.url())],
        )
    };
    // Up as soon as one upstream passed: wait for the other's first check.
    wait_for(LIMIT, "both upstreams checked up", || {
        ((up(&a), up(&b)) == (1.0, 1.0)).then_some(())
    });
    let spread: Vec<String> = (0..4).map(|_| o.get("web.test", "/").text()).collect();
    assert!(spread.contains(&"b".to_string()), "round robin: {spread:?}");
    b.set(Mode::Status(500));
    wait_component(&o, "web", "partial_outage", LIMIT);
    assert_eq!(site_status(&o, "web")["health"], "partial");
    assert_eq!((up(&a), up(&b)), (1.0, 0.0));
    assert_eq!(metric(&o, "offramp_site_up", &[("site", "web")]), 1.0);
    let visitors_before = b.hits().iter().filter(|h| !h.check).count();
    for i in 0..20 {
        let r = o.get("web.test", &format!("/page/{i}"));
        assert_eq!((r.status, r.text()), (200, "a".to_string()), "request {i}");
    }
    let visitors_after = b.hits().iter().filter(|h| !h.check).count();
    assert_eq!(
        visitors_after, visitors_before,
        "no visitor sent to the down upstream"
    );
    // Both down, no auto_offline: a major outage, the site stays online (proxied).
    a.set(Mode::Status(500));
    wait_component(&o, "web", "major_outage", LIMIT);
    assert_eq!(metric(&o, "offramp_site_up", &[("site", "web")]), 0.0);
    let s = site_status(&o, "web");
    assert_eq!(
        (&s["state"], &s["source"], &s["health"]),
        (&"online".into(), &"config".into(), &"down".into())
    );
    assert_eq!(
        o.get("web.test", "/").status,
        500,
        "proxied, not redirected"
    );
    // Check durations, by site.
    let count = metric(
        &o,
        "offramp_health_check_duration_seconds_count",
        &[("site", "web")],
    );
    assert!(count >= 4.0, "{count}");
    let inf = metric(
        &o,
        "offramp_health_check_duration_seconds_bucket",
        &[("site", "web"), ("le", "+Inf")],
    );
    assert_eq!(inf, count);
}

#[test]
fn an_https_upstream_is_checked_over_tls_with_the_sites_tls_verify() {
    let (lax, strict) = (start_tls_origin("lax"), start_tls_origin("strict"));
    let o = daemon(&format!(
        "[[site]]\nname = \"lax\"\nhosts = [\"lax.test\"]\nupstream = \"{}\"\ntls_verify = false\n{HEALTH}\n\n\
         [[site]]\nname = \"strict\"\nhosts = [\"strict.test\"]\nupstream = \"{}\"\n{HEALTH}\n",
        lax.https_url(),
        strict.https_url()
    ));
    wait_up(&o, "lax", LIMIT);
    assert!(lax.request_count() >= 1, "a check over TLS");
    // A self-signed certificate does not verify.
    wait_component(&o, "strict", "major_outage", LIMIT);
    let reasons: Vec<String> = samples(&o, "offramp_health_check_failures_total")
        .into_iter()
        .filter(|(l, v)| l["site"] == "strict" && *v > 0.0)
        .map(|(l, _)| l["reason"].clone())
        .collect();
    assert_eq!(reasons, ["tls"]);
    assert_eq!(
        strict.request_count(),
        0,
        "no request after a failed handshake"
    );
}
