//! Admin bypass (`[maintenance] bypass`, a site's `bypass`): a client whose TCP peer
//! address is in one of the networks reaches an offline site's upstream; everyone else
//! gets the redirect, whatever headers they send. Clients bind 127.0.0.2 / 127.0.0.3 to
//! be told apart from 127.0.0.1.

mod common;

use std::net::IpAddr;

use common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn daemon(origin: &TestOrigin) -> Offramp {
    Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\nbypass = [\"127.0.0.2\"]\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\nstate = \"offline\"\n\n\
         [[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"{}\"\nstate = \"offline\"\nbypass = [\"127.0.0.3/32\"]\n",
        server_section(""),
        origin.url(),
        origin.url()
    ))
}

#[test]
fn only_the_peer_address_opens_an_offline_site() {
    let origin = TestOrigin::start("origin");
    let o = daemon(&origin);
    let get = |from: &str, host: &str, headers: &[(&str, &str)]| {
        Conn::open_from(o.addr(), ip(from)).request("GET", host, "/admin", headers, b"")
    };
    // In [maintenance] bypass: every site's upstream.
    let r = get("127.0.0.2", "cloud.test", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get("127.0.0.2", "shop.test", &[]).status, 200);
    // The site's own list adds to the global one, for that site only.
    assert_eq!(get("127.0.0.3", "shop.test", &[]).status, 200);
    assert_eq!(get("127.0.0.3", "cloud.test", &[]).status, 302);
    // Anyone else is redirected, headers or not.
    let spoof = [
        ("X-Forwarded-For", "127.0.0.2"),
        ("X-Real-IP", "127.0.0.2"),
        ("Forwarded", "for=127.0.0.2"),
    ];
    let r = get("127.0.0.1", "cloud.test", &spoof);
    assert_eq!(r.status, 302, "a header never bypasses");
    assert!(r
        .header("location")
        .is_some_and(|l| l.starts_with("https://status.example.com")));
    // A bypassed request counts as proxied.
    let metrics = o.cli(&["status", "--json"]).ok().json();
    assert_eq!(
        metrics["sites"][0]["state"], "offline",
        "still offline for the rest"
    );
}

#[test]
fn bad_bypass_entries_are_validation_errors_with_their_line() {
    let origin = TestOrigin::start("origin");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\nbypass = [\"192.168.1.1/24\", \"nonsense\"]\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\n",
        server_section(""),
        origin.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.toml");
    std::fs::write(&path, text).unwrap();
    let out = cli(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("maintenance.bypass") && out.stderr.contains("host bits"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\"nonsense\" is not an address"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("offramp.toml:12:"),
        "with the line: {}",
        out.stderr
    );
}
