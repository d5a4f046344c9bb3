//! Health checks follow config reloads: an upstream removed from a site is no longer
//! checked and its series leave `/metrics`; a site whose checks are turned off loses
//! its health series and shows `health: "off"`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn config(upstreams: &str, health: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"web\"\nhosts = [\"web.test\"]\nupstream = [{upstreams}]\n{health}\n",
        server_section_checked("admin = \"127.0.0.1:0\"")
    )
}

fn metrics(o: &Offramp) -> String {
    Conn::open(o.admin.expect("admin"))
        .get("admin", "/metrics")
        .text()
}

fn health_of(o: &Offramp) -> Value {
    o.cli(&["status", "--json"]).ok().json()["sites"][0]["health"].clone()
}

#[test]
fn a_reload_drops_what_is_no_longer_checked() {
    let origin = TestOrigin::start("o");
    let dead = dead_port();
    let health = "health = { interval = \"100ms\", timeout = \"100ms\", fall = 1, rise = 1 }";
    let both = format!("\"{}\", \"http://{dead}\"", origin.url());
    let o = Offramp::start(&config(&both, health));
    let dead_series = format!("upstream=\"http://{dead}\"");
    wait_for(Duration::from_secs(5), "one up, one down", || {
        (health_of(&o) == "partial").then_some(())
    });
    let m = metrics(&o);
    assert!(
        m.lines()
            .any(|l| l.starts_with("offramp_upstream_up") && l.contains(&dead_series)),
        "{m}"
    );

    // The dead upstream leaves the config: the site is up, its series are gone.
    o.write_config(&config(&format!("\"{}\"", origin.url()), health));
    wait_for(Duration::from_secs(5), "health up after the reload", || {
        (health_of(&o) == "up").then_some(())
    });
    let m = metrics(&o);
    assert!(!m.contains(&dead_series), "{m}");
    assert!(m.contains("offramp_site_up{site=\"web\"} 1"), "{m}");

    // Checks off: no health series for the site at all.
    o.write_config(&config(&format!("\"{}\"", origin.url()), "health = false"));
    wait_for(
        Duration::from_secs(5),
        "health off after the reload",
        || (health_of(&o) == "off").then_some(()),
    );
    let m = metrics(&o);
    assert!(
        !m.lines().any(|l| (l.starts_with("offramp_upstream_up")
            || l.starts_with("offramp_site_up"))
            && l.contains("site=\"web\"")),
        "{m}"
    );
}
