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

#[test]
fn ipv4_mapped_entries_match_ipv4_peers() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\nbypass = [\"::ffff:127.0.0.2\"]\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\nstate = \"offline\"\n\n\
         [[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"{}\"\nstate = \"offline\"\nbypass = [\"::ffff:127.0.0.4/126\"]\n",
        server_section(""),
        origin.url(),
        origin.url()
    ));
    let get = |from: &str, host: &str| {
        Conn::open_from(o.addr(), ip(from))
            .request("GET", host, "/", &[], b"")
            .status
    };
    assert_eq!(get("127.0.0.2", "cloud.test"), 200, "::ffff:127.0.0.2");
    // ::ffff:127.0.0.4/126 is 127.0.0.4/30: .4 to .7.
    assert_eq!(get("127.0.0.5", "shop.test"), 200, "::ffff:127.0.0.4/126");
    assert_eq!(get("127.0.0.7", "shop.test"), 200);
    assert_eq!(get("127.0.0.8", "shop.test"), 302);
    assert_eq!(get("127.0.0.5", "cloud.test"), 302);
    assert_eq!(get("127.0.0.1", "shop.test"), 302);
}

#[test]
fn a_dual_stack_listener_matches_ipv4_peers_against_ipv4_entries() {
    let origin = TestOrigin::start("origin");
    let server = server_section("").replace("http = \"127.0.0.1:0\"", "http = \"[::]:0\"");
    let config = format!(
        "{server}[maintenance]\nstatus_page = \"https://status.example.com\"\nbypass = [\"127.0.0.2\"]\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\nstate = \"offline\"\n\n\
         [[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\nupstream = \"{}\"\nstate = \"offline\"\nbypass = [\"::ffff:127.0.0.3\"]\n",
        origin.url(),
        origin.url()
    );
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    let o = Offramp::start(&config);
    // An IPv4 client of a [::] listener arrives as ::ffff:127.0.0.x.
    let v4 = std::net::SocketAddr::new(ip("127.0.0.1"), o.addr().port());
    let get = |from: &str, host: &str| {
        Conn::open_from(v4, ip(from))
            .request("GET", host, "/", &[], b"")
            .status
    };
    assert_eq!(get("127.0.0.2", "cloud.test"), 200);
    assert_eq!(get("127.0.0.3", "shop.test"), 200);
    assert_eq!(get("127.0.0.1", "cloud.test"), 302);
    assert_eq!(get("127.0.0.3", "cloud.test"), 302);
}

#[test]
fn prefixes_with_a_sign_or_leading_zeros_are_errors() {
    let origin = TestOrigin::start("origin");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\n\
         bypass = [\n  \"10.0.0.0/+8\",\n  \"10.0.0.0/08\",\n  \"fd00::/+8\",\n  \"10.0.0.0/ 8\",\n  \"10.1.0.0/16\",\n]\n",
        server_section(""),
        origin.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.toml");
    std::fs::write(&path, text).unwrap();
    let out = cli(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    for (line, entry) in [
        (18, "10.0.0.0/+8"),
        (19, "10.0.0.0/08"),
        (20, "fd00::/+8"),
        (21, "10.0.0.0/ 8"),
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&format!("offramp.toml:{line}:"))
                    && l.contains(entry)
                    && l.contains("prefix length")),
            "{entry} on line {line}: {}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("10.1.0.0/16"), "{}", out.stderr);
}
