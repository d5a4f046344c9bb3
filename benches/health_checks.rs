//! Health checks, measured on the real binary (CONTRACT section 10's measures):
//!
//! 1. the checker's cost: 100 sites × 2 upstreams checked every second; offramp's CPU
//!    time (user + system, from /proc) over `HEALTH_SECS` seconds (default 60) as a
//!    share of one core, and its RSS growth, against the same daemon with
//!    `health_checks = false` (target: under 2 % of a core, under 2 MiB growth);
//! 2. the time from an upstream going down (its listener closed) to `major_outage` on
//!    the public API, for `fall = 3`, `interval = 1s`, `timeout = 500ms` (target: within
//!    fall × interval + timeout + 1 s = 4.5 s), over `HEALTH_ROUNDS` rounds (default 5).
//!
//! Run: `cargo bench --bench health_checks`. Nothing else should run meanwhile.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_offramp");

/// An upstream answering requests with 200, keeping connections alive; `stop` makes it
/// close its listener (refused from then on) and its connections. Counts the checks
/// it answered.
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
}

fn upstream(stoppable: bool) -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = l.local_addr().expect("addr");
    // A stoppable one polls (to see `stop`); the others block in accept (no CPU).
    l.set_nonblocking(stoppable).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let (st, sv) = (stop.clone(), served.clone());
    std::thread::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((s, _)) => {
                    let (st, sv) = (st.clone(), sv.clone());
                    // Keep-alive, as most servers: one thread a connection.
                    std::thread::spawn(move || serve_conn(s, &st, &sv));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    Upstream { addr, stop, served }
}

/// Answers each request of a connection with 200 (a body of 2 bytes, keep-alive) until
/// the client goes or `stop` is set (then the next request gets no answer).
fn serve_conn(mut s: TcpStream, stop: &AtomicBool, served: &AtomicUsize) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..end);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
        served.fetch_add(1, Ordering::Relaxed);
    }
}

struct Daemon {
    child: Child,
    http: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config_file: &Path) -> Daemon {
    let mut child = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(config_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn,offramp::server=info")
        .spawn()
        .expect("spawn offramp");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("listening proto=http addr=") {
                let rest = &line[i + "listening proto=http addr=".len()..];
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("offramp did not start");
    Daemon {
        child,
        http: addr.parse().expect("listen address"),
    }
}

/// ((user, system) CPU seconds, RSS in KiB) of `pid`.
fn usage(pid: u32) -> ((f64, f64), u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let cpu = (ticks(11) / hz, ticks(12) / hz);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

fn config(dir: &Path, ups: &[SocketAddr], checks: bool, health: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 2\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\naccess_log = false\nhealth_checks = {checks}\n\
[maintenance]\nstatus_page = \"builtin\"\n[status]\nhosts = [\"status.bench\"]\n"
    );
    for (i, pair) in ups.chunks(2).enumerate() {
        let list: Vec<String> = pair.iter().map(|a| format!("\"http://{a}\"")).collect();
        text.push_str(&format!(
            "[[site]]\nname = \"s{i}\"\nhosts = [\"s{i}.bench\"]\nupstream = [{}]\nhealth = {health}\n",
            list.join(", ")
        ));
    }
    let path = dir.join("offramp.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn cost(secs: u64) {
    let ups: Vec<Upstream> = (0..200).map(|_| upstream(false)).collect();
    let addrs: Vec<SocketAddr> = ups.iter().map(|u| u.addr).collect();
    let health = "{ interval = \"1s\", timeout = \"500ms\" }";
    for checks in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = config(dir.path(), &addrs, checks, health);
        let d = start(&file);
        let before_served: usize = ups.iter().map(|u| u.served.load(Ordering::Relaxed)).sum();
        // Warm up: every upstream checked at least once, the RSS settled.
        std::thread::sleep(Duration::from_secs(5));
        let (cpu0, rss0) = usage(d.child.id());
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let (cpu1, rss1) = usage(d.child.id());
        let wall = t0.elapsed().as_secs_f64();
        let served: usize = ups
            .iter()
            .map(|u| u.served.load(Ordering::Relaxed))
            .sum::<usize>()
            - before_served;
        let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
        println!(
            "health_checks = {checks:5}: CPU {:.2} % of one core ({:.2} % user, {:.2} % system) over {wall:.0} s, RSS {} KiB -> {} KiB ({:+} KiB), {:.0} checks/s answered",
            (user + sys) / wall * 100.0,
            user / wall * 100.0,
            sys / wall * 100.0,
            rss0,
            rss1,
            rss1 as i64 - rss0 as i64,
            served as f64 / (wall + 5.0)
        );
    }
}

fn components(http: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect(http) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(
        b"GET /api/v2/components.json HTTP/1.1\r\nHost: status.bench\r\nConnection: close\r\n\r\n",
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn time_to_outage(rounds: usize) {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let up = upstream(true);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = config(
            dir.path(),
            &[up.addr],
            true,
            "{ interval = \"1s\", timeout = \"500ms\", fall = 3, rise = 2 }",
        );
        let d = start(&file);
        // Checked and up first.
        let deadline = Instant::now() + Duration::from_secs(10);
        while up.served.load(Ordering::Relaxed) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        up.stop.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(20);
        while !components(d.http).contains("\"major_outage\"") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "upstream down -> major_outage (fall 3 x interval 1 s + timeout 0.5 s + 1 s = 4.5 s allowed): min {:.2} s, median {:.2} s, max {:.2} s over {} rounds",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
}

fn main() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    // `cargo bench` passes --bench; nothing else to read.
    cost(env("HEALTH_SECS", 60));
    time_to_outage(env("HEALTH_ROUNDS", 5) as usize);
}
