//! Uptime as visitors read it (CONTRACT section 10): the time a site's checks see it up
//! and down, per UTC day, in `/api/sites/SITE/uptime.json` (90 days, newest last,
//! `null` without data); an outage shows in today's entry and survives a restart; time
//! under maintenance counts as neither; a site without checks is never checked and
//! has no data. The upstreams are written here (std::net) so the tests switch their
//! answer and see every request.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// An upstream answering every request with the status code the test sets, counting
/// health checks (by their User-Agent) and other requests.
struct Upstream {
    addr: SocketAddr,
    code: Arc<AtomicU16>,
    checks: Arc<AtomicUsize>,
    others: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let u = Upstream {
            addr: listener.local_addr().expect("addr"),
            code: Arc::new(AtomicU16::new(200)),
            checks: Arc::default(),
            others: Arc::default(),
        };
        let (code, checks, others) = (u.code.clone(), u.checks.clone(), u.others.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let (code, checks, others) = (code.clone(), checks.clone(), others.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if head.contains("\r\nuser-agent: offramp-health/") {
                        checks.fetch_add(1, Ordering::SeqCst);
                    } else {
                        others.fetch_add(1, Ordering::SeqCst);
                    }
                    let code = code.load(Ordering::SeqCst);
                    let _ = write!(
                        s,
                        "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                });
            }
        });
        u
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(&self, code: u16) {
        self.code.store(code, Ordering::SeqCst);
    }

    fn requests(&self) -> (usize, usize) {
        (
            self.checks.load(Ordering::SeqCst),
            self.others.load(Ordering::SeqCst),
        )
    }
}

const STATUS: &str = "status.test";
const HEALTH: &str = "health = { path = \"/healthz\", interval = \"200ms\", timeout = \"150ms\", expect = \"200-499\", fall = 2, rise = 2 }";
const LIMIT: Duration = Duration::from_secs(5);

fn daemon(sites: &str) -> Offramp {
    Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n[status]\nhosts = [\"{STATUS}\"]\n\n{sites}",
        server_section_checked("admin = \"127.0.0.1:0\"\n")
    ))
}

fn site(name: &str, u: &Upstream, extra: &str) -> String {
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{}\"\n{extra}\n\n",
        u.url()
    )
}

fn site_status(o: &Offramp, name: &str) -> Value {
    let all = o.cli(&["status", "--json"]).ok().json();
    all["sites"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} in {all}"))
}

fn wait_health(o: &Offramp, name: &str, want: &str) {
    wait_for(LIMIT, &format!("{name} health {want}"), || {
        (site_status(o, name)["health"] == want).then_some(())
    });
}

fn component(o: &Offramp, name: &str) -> String {
    let all = o.get(STATUS, "/api/v2/components.json").json();
    let c = all["components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("component {name} in {all}"));
    c["status"].as_str().expect("status").to_string()
}

/// `uptime.json` of `name`, checked for its shape: 90 consecutive UTC days ending
/// today, every day but today without data.
fn uptime(o: &Offramp, name: &str) -> Value {
    let r = o.get(STATUS, &format!("/api/sites/{name}/uptime.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["site"], name);
    let days = u["days"].as_array().expect("days");
    assert_eq!(days.len(), 90, "{u}");
    let today = time::OffsetDateTime::now_utc().date();
    for (i, d) in days.iter().enumerate() {
        let date = today - time::Duration::days(89 - i as i64);
        let want = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        assert_eq!(d["date"], want.as_str(), "day {i}, newest last");
        assert!(d["incidents"].as_array().is_some_and(Vec::is_empty), "{d}");
        if i < 89 {
            assert!(d["uptime"].is_null(), "no data before today: {d}");
            assert_eq!(
                (&d["up_seconds"], &d["down_seconds"]),
                (&0.into(), &0.into())
            );
        }
    }
    u
}

fn secs(day: &Value, key: &str) -> u64 {
    day[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {day}"))
}

#[test]
fn an_outage_shows_in_todays_uptime_and_survives_a_restart() {
    let u = Upstream::start();
    let o = daemon(&site("web", &u, HEALTH));
    wait_health(&o, "web", "up");
    std::thread::sleep(Duration::from_millis(1200));
    u.answer(500);
    wait_health(&o, "web", "down");
    assert_eq!(component(&o, "web"), "major_outage");
    std::thread::sleep(Duration::from_millis(1500));
    u.answer(200);
    wait_health(&o, "web", "up");
    let before = uptime(&o, "web");
    let today = &before["days"][89];
    eprintln!("after the outage: {today}");
    assert!(secs(today, "down_seconds") >= 1, "{today}");
    assert!(secs(today, "up_seconds") >= 1, "{today}");
    let pct = today["uptime"].as_f64().expect("uptime today");
    assert!(pct > 0.0 && pct < 100.0, "{today}");
    assert_eq!(before["uptime"], today["uptime"], "one day of data");
    assert_eq!(o.get(STATUS, "/api/sites/nope/uptime.json").status, 404);
    // SIGTERM flushes what accrued; the next daemon reads it back.
    let o = o.restart();
    let after = uptime(&o, "web");
    let day = &after["days"][89];
    eprintln!("after the restart: {day}");
    for key in ["up_seconds", "down_seconds"] {
        assert!(
            secs(day, key) >= secs(today, key),
            "{key}: {today} then {day}"
        );
    }
    let pct = day["uptime"].as_f64().expect("uptime after the restart");
    assert!(pct < 100.0, "{day}");
}

#[test]
fn time_under_maintenance_counts_as_neither_up_nor_down() {
    let u = Upstream::start();
    let o = daemon(&site("web", &u, HEALTH));
    wait_health(&o, "web", "up");
    let healthy = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    o.cli(&["offline", "web", "--reason", "disk swap"]).ok();
    let healthy = healthy.elapsed() + Duration::from_millis(200);
    // The upstream stopped for planned work: down for its checks, under maintenance for
    // everyone, and none of it is downtime (or uptime).
    u.answer(503);
    wait_health(&o, "web", "down");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(component(&o, "web"), "under_maintenance");
    u.answer(200);
    wait_health(&o, "web", "up");
    o.cli(&["online", "web"]).ok();
    let day = uptime(&o, "web")["days"][89].clone();
    eprintln!("healthy for {healthy:?}, then under maintenance: {day}");
    assert_eq!(secs(&day, "down_seconds"), 0, "{day}");
    assert!(
        (secs(&day, "up_seconds") as f64) < healthy.as_secs_f64() + 1.0,
        "maintenance counted as up: {day}"
    );
    assert_eq!(day["uptime"], 100.0, "{day}");
}

#[test]
fn without_checks_no_request_reaches_the_upstream_and_uptime_has_no_data() {
    let (on, off) = (Upstream::start(), Upstream::start());
    let o = daemon(&format!(
        "{}{}",
        site("on", &on, HEALTH),
        site("off", &off, "health = false")
    ));
    let t = Instant::now();
    wait_for(LIMIT, "checks of the other site", || {
        (on.requests().0 >= 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(t.elapsed()));
    assert_eq!(
        off.requests(),
        (0, 0),
        "no check of a site with health = false"
    );
    assert_eq!(site_status(&o, "off")["health"], "off");
    assert_eq!(component(&o, "off"), "operational");
    let r = Conn::open(o.admin.expect("admin")).get("localhost", "/metrics");
    let metrics = r.text();
    assert!(
        metrics.contains("offramp_upstream_up{site=\"on\""),
        "{metrics}"
    );
    assert!(!metrics.contains("site=\"off\",upstream="), "{metrics}");
    let up = uptime(&o, "off");
    assert_eq!(up["uptime"], Value::Null);
    assert!(up["days"][89]["uptime"].is_null(), "{up}");
    // [server] health_checks = false: no site is checked, whatever its `health` says.
    let quiet = Upstream::start();
    let o = Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n{}",
        server_section(""),
        site("web", &quiet, HEALTH)
    ));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(quiet.requests(), (0, 0));
    assert_eq!(site_status(&o, "web")["health"], "off");
}

/// chattr +i (root writes through any mode) or read-only modes: true when the
/// database now refuses writes.
fn lock_database(o: &Offramp) -> bool {
    let files = ["offramp.db", "offramp.db-wal"].map(|f| o.dir.path().join(f));
    if unsafe { libc::geteuid() } == 0 {
        files.iter().all(|p| {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(p)
                .status()
                .is_ok_and(|s| s.success())
        })
    } else {
        use std::os::unix::fs::PermissionsExt;
        for p in &files {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444));
        }
        let _ = std::fs::set_permissions(o.dir.path(), std::fs::Permissions::from_mode(0o555));
        true
    }
}

fn unlock_database(o: &Offramp) {
    for f in ["offramp.db", "offramp.db-wal"] {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(o.dir.path().join(f))
            .status();
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(o.dir.path(), std::fs::Permissions::from_mode(0o755));
}

#[test]
fn time_the_database_could_not_record_is_no_data_not_downtime() {
    let u = Upstream::start();
    let o = daemon(&site("web", &u, HEALTH));
    wait_health(&o, "web", "up");
    if !lock_database(&o) {
        eprintln!("NOTE: cannot make the database unwritable here (chattr); skipping");
        return;
    }
    // Checks and the proxy go on while the database refuses writes.
    std::thread::sleep(Duration::from_millis(1500));
    let served = o.get("web.test", "/");
    assert_eq!(served.status, 200, "still proxying");
    let checks_before = u.checks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        u.checks.load(Ordering::SeqCst) > checks_before,
        "still checking"
    );
    // The shutdown flush fails: logged, and the time is not written.
    let mut o = o;
    o.stop();
    let log = o.log_text();
    unlock_database(&o);
    assert!(log.contains("uptime not recorded"), "{log}");
    let dir = std::mem::replace(&mut o.dir, tempfile::tempdir().expect("tempdir"));
    drop(o);
    let o = Offramp::start_in(dir, &[]);
    let today = &uptime(&o, "web")["days"][89];
    assert_eq!(secs(today, "down_seconds"), 0, "never downtime: {today}");
    assert!(
        secs(today, "up_seconds") <= 1,
        "the unrecorded time is not there: {today}"
    );
}
