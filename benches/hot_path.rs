//! Micro-benchmarks of what offramp does per request and per change:
//! host lookup among 1,000 sites (exact, wildcard, unknown), redirect response
//! construction (Location and page), config parse + validate of 1,000 sites, the
//! snapshot swap a flip does (persist + new snapshot in force), the data path's
//! snapshot load, and the reload path (parse + validate + new snapshot in force).
//!
//! Run: `cargo bench --bench hot_path`. Numbers are for comparing changes on one
//! machine, not targets in themselves.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use offramp::config::{Config, SiteState};
use offramp::daemon::{Daemon, Target};
use offramp::routes::RouteTable;

/// A config with `n` sites: half exact names, half with a wildcard too.
fn config_text(n: usize, state_dir: &Path) -> String {
    let mut s = format!(
        "[server]\nhttp = \"127.0.0.1:0\"\ncontrol = \"{}/c.sock\"\nstate = \"{}/state.json\"\n\
         [maintenance]\nstatus_page = \"https://status.example.com\"\n",
        state_dir.display(),
        state_dir.display()
    );
    for i in 0..n {
        let hosts = if i % 2 == 0 {
            format!("[\"site{i}.home.example\"]")
        } else {
            format!("[\"site{i}.home.example\", \"*.site{i}.home.example\"]")
        };
        s.push_str(&format!(
            "[[site]]\nname = \"site{i}\"\nhosts = {hosts}\nupstream = \"http://127.0.0.1:{}\"\nstate = \"{}\"\n",
            10000 + i,
            if i % 10 == 0 { "offline" } else { "online" }
        ));
    }
    s
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(1000, dir.path());
    let file = dir.path().join("offramp.toml");
    std::fs::write(&file, &text).expect("write config");
    let config = Config::parse(&text, &file).expect("valid config");
    let table = RouteTable::build(&config);

    c.bench_function("lookup/exact (1000 sites)", |b| {
        b.iter(|| table.lookup(black_box(b"site500.home.example")))
    });
    c.bench_function("lookup/wildcard (1000 sites)", |b| {
        b.iter(|| table.lookup(black_box(b"a.b.site501.home.example:8080")))
    });
    c.bench_function("lookup/unknown (1000 sites)", |b| {
        b.iter(|| table.lookup(black_box(b"www.nowhere.example")))
    });
    c.bench_function("redirect/location", |b| {
        b.iter(|| {
            offramp::text::location(
                black_box("https://status.example.com/cloud"),
                true,
                black_box(b"/remote.php/dav/files/alice/Documents?x=1&y=two"),
            )
        })
    });
    c.bench_function("redirect/location+page", |b| {
        b.iter(|| {
            let loc = offramp::text::location(
                black_box("https://status.example.com/cloud"),
                true,
                black_box(b"/remote.php/dav/files/alice/Documents?x=1&y=two"),
            );
            offramp::reply::pages::redirect_page(&loc)
        })
    });
    c.bench_function("config/parse+validate (1000 sites)", |b| {
        b.iter(|| Config::parse(black_box(&text), &file).expect("valid"))
    });
    let (daemon, _) = Daemon::new(config.clone());
    let snapshot = daemon.snapshot();
    c.bench_function("snapshot/load (data path, per request)", |b| {
        b.iter(|| black_box(snapshot.load_full().states.len()))
    });
    // What `offramp offline`/`online` costs inside the daemon: state persisted to the
    // state file, then a new snapshot of 1,000 sites swapped in.
    let site = vec!["site500".to_string()];
    let mut offline = false;
    c.bench_function("snapshot/flip+swap (1000 sites)", |b| {
        b.iter(|| {
            offline = !offline;
            let state = if offline {
                SiteState::Offline
            } else {
                SiteState::Online
            };
            daemon
                .flip(state, &Target::Sites(site.clone()), None, None, None)
                .expect("flip")
        })
    });
    c.bench_function("reload/load+apply (1000 sites)", |b| {
        b.iter(|| {
            let c = Config::load(&file).expect("valid");
            daemon.apply_config(c)
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
