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
    // Never answers (and keeps its port, which a closed one could lose to another test).
    let dead = hanging_origin();
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

#[test]
fn an_outage_is_shown_as_an_outage_not_as_maintenance() {
    // Never answers (and keeps its port, which a closed one could lose to another test).
    let dead = hanging_origin();
    let o = Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n[status]\nhosts = [\"status.test\"]\n\n\
         [[site]]\nname = \"web\"\nhosts = [\"web.test\"]\nupstream = \"http://{dead}\"\n\
         health = {{ interval = \"100ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nauto_offline = true\n\n\
         [[site]]\nname = \"api\"\nhosts = [\"api.test\"]\nupstream = \"http://{dead}\"\ncode = 503\n\
         health = {{ interval = \"100ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\nauto_offline = true\n",
        server_section_checked("admin = \"127.0.0.1:0\"")
    ));
    wait_for(Duration::from_secs(5), "offline by health", || {
        let s = o.cli(&["status", "--json"]).ok().json();
        (s["sites"][0]["source"] == "health" && s["sites"][1]["source"] == "health").then_some(())
    });
    // A site served in place (code = 503) says it is down, not in maintenance.
    let r = o.get("api.test", "/");
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("is down.") && !r.text().contains("for maintenance"),
        "{}",
        r.text()
    );
    let active = o
        .get("status.test", "/api/v2/scheduled-maintenances/active.json")
        .json();
    assert_eq!(
        active["scheduled_maintenances"].as_array().map(Vec::len),
        Some(0),
        "no maintenance made up for an outage: {active}"
    );
    let site = o.get("status.test", "/api/sites/web.json").json();
    assert_eq!(site["status"], "major_outage", "{site}");
    assert_eq!(site["state"], "offline", "{site}");
    let page = o.get("status.test", "/maintenance/web").text();
    assert!(page.contains("web is down<"), "{page}");
    assert!(!page.contains("for maintenance"), "{page}");
    let missing = o.get("status.test", "/api/sites/nope/uptime.json");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
}
