//! The reload path for a config of 1,000 sites, end to end on the real binary: the time
//! from the start of a config file change to the first request that shows the new
//! routing snapshot in force (one site's upstream switched between two origins, seen on
//! an already-open keep-alive connection).
//!
//! Scenarios:
//! - the file watch, file edited in place (includes the 100 ms debounce);
//! - the file watch, file replaced by rename (includes the debounce);
//! - `offramp reload` (CLI round trip: connect, read + validate + swap, reply);
//! - SIGHUP.
//!
//! For the last two the config is a symlink whose target is rewritten, a change the
//! watch does not see, so the explicit trigger is what applies it.
//!
//! Run: `cargo bench --bench reload` (prints median, p90 and max per scenario).
//! `RELOAD_ROUNDS` sets the rounds per scenario (default 20); `-- --quick` runs 3.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Conn, Offramp, TestOrigin};

const SITES: usize = 1000;
/// The site whose upstream every round switches.
const PROBE: &str = "site500.bench";

/// `SITES` sites, half with a wildcard host too; `site500` proxies to `upstream`, the
/// others point at addresses no request of the benchmark reaches.
fn config_text(upstream: &str) -> String {
    let mut s = String::from(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 2\ncontrol = \"control.sock\"\n\
         state = \"state.json\"\ndata = \"offramp.db\"\naccess_log = false\n\
         [maintenance]\nstatus_page = \"https://status.example.com\"\n",
    );
    for i in 0..SITES {
        let hosts = if i % 2 == 0 {
            format!("[\"site{i}.bench\"]")
        } else {
            format!("[\"site{i}.bench\", \"*.site{i}.bench\"]")
        };
        let up = if i == 500 {
            upstream.to_string()
        } else {
            format!("http://127.0.0.1:{}", 10000 + i)
        };
        s.push_str(&format!(
            "[[site]]\nname = \"site{i}\"\nhosts = {hosts}\nupstream = \"{up}\"\nstate = \"{}\"\n",
            if i % 10 == 0 && i != 500 {
                "offline"
            } else {
                "online"
            }
        ));
    }
    s
}

/// Polls on `conn` until `PROBE` is answered by `origin`; the time since `t0`.
fn until_served_by(conn: &mut Conn, origin: &str, t0: Instant) -> Duration {
    let deadline = t0 + Duration::from_secs(10);
    loop {
        let r = conn.get(PROBE, "/");
        if r.header("x-origin") == Some(origin) {
            return t0.elapsed();
        }
        assert!(Instant::now() < deadline, "change not in force within 10 s");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<46} n={:<3} median {:>9.3?}  p90 {:>9.3?}  max {:>9.3?}",
        v.len(),
        pick(0.5),
        pick(0.9),
        pick(1.0),
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds: usize = std::env::var("RELOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 3 } else { 20 });
    let origins = [TestOrigin::start("a"), TestOrigin::start("b")];
    let texts = [
        config_text(&origins[0].url()),
        config_text(&origins[1].url()),
    ];
    println!(
        "reload of a config of {SITES} sites ({} KiB), {rounds} rounds per scenario",
        texts[0].len() / 1024
    );
    let o = Offramp::start(&texts[0]);
    let mut conn = o.conn();
    until_served_by(&mut conn, "a", Instant::now());
    // Round i switches to origin (i + 1) % 2.
    let mut current = 0;
    let mut next = || {
        current = 1 - current;
        (&texts[current], origins[current].name.as_str())
    };

    // The file watch.
    let mut in_place = Vec::new();
    let mut by_rename = Vec::new();
    for i in 0..2 * rounds {
        let (text, want) = next();
        let t0 = Instant::now();
        if i % 2 == 0 {
            o.write_config(text);
            in_place.push(until_served_by(&mut conn, want, t0));
        } else {
            o.replace_config(text);
            by_rename.push(until_served_by(&mut conn, want, t0));
        }
        // Let the watch settle: the next change must start a new debounce.
        std::thread::sleep(Duration::from_millis(250));
    }

    // Explicit triggers, on a symlinked config whose target the watch does not see.
    let live = o.dir.path().join("live.toml");
    let (text, want) = next();
    std::fs::write(&live, text).expect("write");
    let link = o.dir.path().join(".offramp.toml.link");
    std::os::unix::fs::symlink("live.toml", &link).expect("symlink");
    std::fs::rename(&link, &o.config).expect("rename symlink over");
    until_served_by(&mut conn, want, Instant::now());
    std::thread::sleep(Duration::from_millis(250));
    let mut by_cli = Vec::new();
    let mut by_hup = Vec::new();
    for i in 0..2 * rounds {
        let (text, want) = next();
        let t0 = Instant::now();
        std::fs::write(&live, text).expect("write");
        if i % 2 == 0 {
            o.cli(&["reload"]).ok();
            by_cli.push(until_served_by(&mut conn, want, t0));
        } else {
            o.signal(libc::SIGHUP);
            by_hup.push(until_served_by(&mut conn, want, t0));
        }
    }

    summary("file watch, edited in place -> in force", in_place);
    summary("file watch, replaced by rename -> in force", by_rename);
    summary("offramp reload -> in force", by_cli);
    summary("SIGHUP -> in force", by_hup);
    let failed = o.count_log(|l| l.contains("config not applied"));
    assert_eq!(failed, 0, "reloads failed:\n{}", o.log_text());
}
