//! Flip latency, end to end, on the real binary:
//!
//! 1. from `offramp offline SITE` returning to the first redirected response on an
//!    already-open keep-alive connection (target: under 5 ms), and the same for
//!    `offramp online`;
//! 2. from a config file write (state edited in place, or replaced by rename) to the
//!    change in force for requests (target: under 500 ms; the watcher debounces 100 ms).
//!
//! Run: `cargo bench --bench flip_latency` (prints medians, p90 and max; `FLIP_ROUNDS`
//! sets the number of rounds, default 40). The daemon runs with its access log off.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_offramp");

/// A minimal keep-alive origin: answers every request with 200 and a small body.
fn origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let a = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_nodelay(true);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(0, |i| i + 4);
                    buf.drain(..end);
                    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    a
}

fn config(origin: SocketAddr, state: &str) -> String {
    format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 1\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\naccess_log = false\n\
[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"app\"\nhosts = [\"app.bench\"]\nupstream = \"http://{origin}\"\nstate = \"{state}\"\n"
    )
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config_file: &Path) -> Daemon {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("-c")
        .arg(config_file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start offramp");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut addr = None;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("listening proto=http addr=") {
                let rest = &line[i + "listening proto=http addr=".len()..];
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if line.contains(" ready") {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .ok()
        .flatten()
        .expect("daemon ready");
    Daemon { child, addr }
}

/// One GET on a keep-alive connection; the status code.
fn get(s: &mut TcpStream) -> u16 {
    s.write_all(b"GET /x HTTP/1.1\r\nHost: app.bench\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).expect("read body");
                assert!(n > 0, "connection closed in body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        }
    }
}

fn cli(config_file: &Path, args: &[&str]) {
    let st = Command::new(BIN)
        .arg("-c")
        .arg(config_file)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run CLI");
    assert!(st.success(), "offramp {args:?} failed");
}

fn summary(name: &str, mut v: Vec<Duration>, target: Duration) {
    v.sort();
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} n={:<3} median {:>9.3?}  p90 {:>9.3?}  max {:>9.3?}  (target < {target:?}: {})",
        v.len(),
        pick(0.5),
        pick(0.9),
        pick(1.0),
        if pick(0.5) < target { "met" } else { "NOT met" }
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful either.
    let rounds: usize = std::env::var("FLIP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let origin = origin();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("offramp.toml");
    std::fs::write(&file, config(origin, "online")).expect("write config");
    let d = start(&file);
    let mut conn = TcpStream::connect(d.addr).expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    assert_eq!(get(&mut conn), 200);

    // 1. CLI flip → first request on an open connection.
    let mut offline = Vec::new();
    let mut online = Vec::new();
    for _ in 0..rounds {
        cli(&file, &["offline", "app"]);
        let t = Instant::now();
        assert_eq!(get(&mut conn), 302, "flip not in force on the next request");
        offline.push(t.elapsed());
        cli(&file, &["online", "app"]);
        let t = Instant::now();
        assert_eq!(get(&mut conn), 200, "flip not in force on the next request");
        online.push(t.elapsed());
    }
    cli(&file, &["reset", "--all"]);
    summary(
        "CLI offline returned -> first 302",
        offline,
        Duration::from_millis(5),
    );
    summary(
        "CLI online returned -> first 200",
        online,
        Duration::from_millis(5),
    );

    // 2. Config write → change in force.
    let mut in_place = Vec::new();
    let mut by_rename = Vec::new();
    let mut state = "online";
    for i in 0..rounds.min(20) {
        state = if state == "online" {
            "offline"
        } else {
            "online"
        };
        let want = if state == "offline" { 302 } else { 200 };
        let text = config(origin, state);
        let t = Instant::now();
        if i % 2 == 0 {
            std::fs::write(&file, &text).expect("write");
        } else {
            let tmp = dir.path().join(".offramp.toml.tmp");
            std::fs::write(&tmp, &text).expect("write");
            std::fs::rename(&tmp, &file).expect("rename");
        }
        let deadline = t + Duration::from_secs(5);
        while get(&mut conn) != want {
            assert!(Instant::now() < deadline, "edit not applied within 5 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        if i % 2 == 0 {
            in_place.push(t.elapsed());
        } else {
            by_rename.push(t.elapsed());
        }
        // Let the watcher settle before the next edit.
        std::thread::sleep(Duration::from_millis(150));
    }
    summary(
        "config written in place -> in force",
        in_place,
        Duration::from_millis(500),
    );
    summary(
        "config replaced by rename -> in force",
        by_rename,
        Duration::from_millis(500),
    );
    drop(d);
}
