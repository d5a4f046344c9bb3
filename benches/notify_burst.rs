//! A burst of flips with notification targets (issue 20's measure), on the real binary:
//!
//! 1,000 flips (offline, online, …) over the control socket, each timed from request
//! to answer, first with no `[[notify]]` target, then with three: two live local
//! webhook servers and one dead (connection refused). The flips' latency must stay as
//! it is without targets (deliveries are background work), and every event must reach
//! both live targets, in order.
//!
//! Run: `cargo bench --bench notify_burst` (`BURST_FLIPS` sets the number of flips,
//! default 1000).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_offramp");

/// A webhook target: answers 200 to every request and records each body, in order.
fn target() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let a = l.local_addr().expect("addr");
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let g = g.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    g.lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    if r.get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (a, got)
}

fn config(targets: &str) -> String {
    format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 1\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\naccess_log = false\n\
[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"app\"\nhosts = [\"app.bench\"]\nupstream = \"http://127.0.0.1:9\"\n{targets}"
    )
}

struct Daemon(Child);

/// The daemon's resident memory, in KiB.
fn rss_kib(d: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", d.0.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, config: &str) -> Daemon {
    let file = dir.join("offramp.toml");
    std::fs::write(&file, config).expect("write config");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("-c")
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start offramp");
    let sock = dir.join("control.sock");
    let t = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "daemon not ready");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("offramp exited: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

/// `n` flips on one control connection; each one's round trip.
fn flips(sock: &Path, n: usize) -> Vec<Duration> {
    let s = UnixStream::connect(sock).expect("connect control socket");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut out = Vec::with_capacity(n);
    let mut line = String::new();
    for i in 0..n {
        let cmd = if i % 2 == 0 { "offline" } else { "online" };
        let t = Instant::now();
        w.write_all(format!("{{\"cmd\":\"{cmd}\",\"sites\":[\"app\"]}}\n").as_bytes())
            .expect("write");
        line.clear();
        r.read_line(&mut line).expect("read");
        out.push(t.elapsed());
        assert!(line.contains("\"ok\":true"), "flip refused: {line}");
    }
    out
}

fn summary(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} n={:<5} median {:>9.3?}  p90 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
        v.len(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0),
    );
    pick(0.5)
}

fn main() {
    let n: usize = std::env::var("BURST_FLIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    let base = {
        let dir = tempfile::tempdir().expect("tempdir");
        let _d = start(dir.path(), &config(""));
        summary(
            "flips, no notify target",
            flips(&dir.path().join("control.sock"), n),
        )
    };

    let (a, got_a) = target();
    let (b, got_b) = target();
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let targets = format!(
        "[[notify]]\nname = \"a\"\nurl = \"http://{a}/hook\"\n\
         [[notify]]\nname = \"b\"\nurl = \"http://{b}/hook\"\nformat = \"json\"\n\
         [[notify]]\nname = \"dead\"\nurl = \"http://{dead_addr}/hook\"\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = start(dir.path(), &config(&targets));
    let rss_before = rss_kib(&d);
    let t = Instant::now();
    let with = summary(
        "flips, 3 targets (one dead)",
        flips(&dir.path().join("control.sock"), n),
    );
    println!(
        "median with targets / without: {:.2}x",
        with.as_secs_f64() / base.as_secs_f64()
    );

    // Each flip is a site event and a component event: all of them, in order.
    let want = 2 * n;
    let deadline = Instant::now() + Duration::from_secs(120);
    for (name, got) in [("a", &got_a), ("b", &got_b)] {
        loop {
            let len = got.lock().expect("lock").len();
            if len >= want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "target {name}: {len} of {want} events after 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = got.lock().expect("lock");
        let sites: Vec<String> = got
            .iter()
            .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
            .filter(|v| v["type"].as_str().is_some_and(|t| t.starts_with("site.")))
            .map(|v| v["type"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(sites.len(), n, "target {name}: site events");
        for (i, kind) in sites.iter().enumerate() {
            let expect = if i % 2 == 0 {
                "site.offline"
            } else {
                "site.online"
            };
            assert_eq!(kind, expect, "target {name}: event {i} out of order");
        }
        println!(
            "target {name}: all {} events in order, {:.2?} after the burst began",
            got.len(),
            t.elapsed()
        );
    }
    // The dead target's events wait on disk, not in memory.
    let db = rusqlite::Connection::open(dir.path().join("offramp.db")).expect("open db");
    let waiting: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM event WHERE seq > (SELECT cursor FROM notify_target WHERE name = 'dead')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    println!(
        "dead target: {waiting} events waiting in the outbox on disk; daemon RSS {} KiB before the burst, {} KiB after",
        rss_before,
        rss_kib(&d)
    );
}
