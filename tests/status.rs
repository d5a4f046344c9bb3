//! The built-in status page as visitors and operators see it (CONTRACT section 8):
//! `status_page = "builtin"` redirects an offline site's visitors to its page on the
//! status host, carrying the URL they asked for; that page, the overview, the
//! Statuspage-shaped API and embed.js are served by offramp itself; a visitor is only
//! ever sent back to a host of the same site.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use common::*;
use serde_json::Value;

const STATUS: &str = "status.home.example";

fn config(origin: &TestOrigin, maintenance: &str, status: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n{maintenance}\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.home.example\", \"*.cloud.home.example\"]\nupstream = \"{u}\"\nstate = \"offline\"\n\n\
[[site]]\nname = \"blog\"\nhosts = [\"blog.home.example\"]\nupstream = \"{u}\"\nstate = \"online\"\n\n{status}\n",
        server_section(""),
        u = origin.url()
    )
}

fn status_section() -> String {
    format!(
        "[status]\nhosts = [\"{STATUS}\"]\ntitle = \"Lab <status>\"\n\
links = [{{ name = \"Docs & help\", url = \"https://docs.home.example/?a=1&b=2\" }}]\n"
    )
}

fn with_status(origin: &TestOrigin) -> Offramp {
    Offramp::start(&config(origin, "", &status_section()))
}

/// Percent-encodes like offramp does for `from` (everything but unreserved).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Splits an absolute URL into (host header value, target).
fn split(url: &str) -> (String, String) {
    let rest = url.split_once("://").expect("absolute URL").1;
    let i = rest.find('/').unwrap_or(rest.len());
    (rest[..i].to_string(), rest[i..].to_string())
}

fn assert_html(r: &Response) {
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[test]
fn offline_visitor_is_redirected_to_the_site_page_carrying_the_url_asked_for() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let port = o.addr().port();
    let mut c = o.conn();
    let host = format!("cloud.home.example:{port}");
    let r = c.get(&host, "/docs/a%20b?x=1&y=2");
    assert_eq!(r.status, 302);
    let from = format!("http://cloud.home.example:{port}/docs/a%20b?x=1&y=2");
    let want = format!(
        "http://{STATUS}:{port}/maintenance/cloud?from={}",
        enc(&from)
    );
    assert_eq!(r.header("location"), Some(want.as_str()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.text().contains("href=\"http://status.home.example"));
    // Keep-alive: the same connection serves the next request, and a wildcard host of
    // the site is carried too.
    let r = c.get(&format!("A.Cloud.Home.Example:{port}"), "/");
    assert_eq!(r.status, 302);
    let from = format!("http://a.cloud.home.example:{port}/");
    assert!(
        r.header("location").unwrap().ends_with(&enc(&from)),
        "{:?}",
        r.header("location")
    );
    // The online site is proxied as usual.
    assert_eq!(c.get("blog.home.example", "/").status, 200);
    assert_eq!(origin.request_count(), 1);
}

/// Longest request target offramp accepts (`limits::MAX_REQUEST_TARGET`); longer gets 414.
const MAX_TARGET: usize = 8 * 1024;

#[test]
fn a_url_too_long_to_carry_still_reaches_the_maintenance_page_without_from() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let port = o.addr().port();
    let host = format!("cloud.home.example:{port}");
    let page = "/maintenance/cloud";
    let status = format!("{STATUS}:{port}");

    // 5,400 bytes of path are accepted, but percent-encoded in `from` they would make
    // a target of over 10 KiB on the status host: `from` is left out.
    let long = "/a".repeat(2700);
    let r = o.get(&host, &long);
    assert_eq!(r.status, 302);
    let want = format!("http://{status}{page}");
    assert_eq!(r.header("location"), Some(want.as_str()));
    let p = o.get(&status, page);
    assert_eq!(p.status, 200, "{}", p.text());
    assert!(p.text().contains("cloud is down for maintenance"));

    // At exactly the limit `from` is carried and the status host serves the page with
    // the way back; one byte more and it is left out, the page still served.
    let prefix = format!("http://{host}/");
    let fill = MAX_TARGET - format!("{page}?from=").len() - enc(&prefix).len();
    for (n, carried) in [(fill, true), (fill + 1, false)] {
        let path = format!("/{}", "a".repeat(n));
        let r = o.get(&host, &path);
        assert_eq!(r.status, 302, "{n}");
        let loc = r.header("location").expect("location").to_string();
        let (h, target) = split(&loc);
        assert_eq!(h, status);
        if carried {
            assert_eq!(
                target,
                format!("{page}?from={}", enc(&format!("http://{host}{path}")))
            );
            assert_eq!(target.len(), MAX_TARGET);
        } else {
            assert_eq!(target, page);
        }
        let p = o.get(&h, &target);
        assert_eq!(p.status, 200, "{n}: {}", p.text());
        assert_eq!(
            p.text()
                .contains(&format!("data-return=\"http://{host}{path}\"")),
            carried,
            "{n}"
        );
    }
}

#[test]
fn maintenance_page_shows_the_reason_and_end_then_sends_the_visitor_back() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let port = o.addr().port();
    o.cli(&[
        "offline",
        "cloud",
        "--reason",
        "disk <swap> & \"fsck\"",
        "--until",
        "2h",
    ])
    .ok();
    let until = o.cli(&["status", "cloud", "--json"]).ok().json()["sites"][0]["until"]
        .as_str()
        .expect("until")
        .to_string();
    let r = o.get(&format!("cloud.home.example:{port}"), "/photos/2026?page=3");
    let loc = r.header("location").expect("location").to_string();
    let (h, target) = split(&loc);
    assert_eq!(h, format!("{STATUS}:{port}"));

    let page = o.get(&h, &target);
    assert_eq!(page.status, 200);
    assert_html(&page);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let body = page.text();
    assert!(body.contains("cloud is down for maintenance"), "{body}");
    assert!(
        body.contains("disk &lt;swap&gt; &amp; &quot;fsck&quot;"),
        "{body}"
    );
    assert!(!body.contains("<swap>"));
    assert!(
        body.contains(&format!("<time datetime=\"{until}\"")),
        "{body}"
    );
    let back = format!("http://cloud.home.example:{port}/photos/2026?page=3");
    assert!(body.contains(&format!("data-return=\"{back}\"")), "{body}");
    assert!(body.contains(&format!("href=\"{back}\"")), "{body}");
    assert!(body.contains("data-poll=\"/api/sites/cloud.json\""));
    assert!(body.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(body.contains("<script src=\"/assets/status.js\" defer></script>"));
    assert!(body.contains("href=\"/\""), "link to the overview");

    // What the page's script polls.
    let j = o.get(&h, "/api/sites/cloud.json");
    assert_eq!(j.header("content-type"), Some("application/json"));
    let j = j.json();
    assert_eq!(j["state"], "offline");
    assert_eq!(j["until"], until.as_str());
    assert_eq!(j["reason"], "disk <swap> & \"fsck\"");

    // Back online: the same page (what the meta refresh reloads) sends the visitor back
    // to the exact URL, and the script's endpoint says so.
    o.cli(&["online", "cloud"]).ok();
    assert_eq!(o.get(&h, "/api/sites/cloud.json").json()["state"], "online");
    let r = o.get(&h, &target);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(back.as_str()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (bh, bt) = split(&back);
    let r = o.get(&bh, &bt);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["target"], "/photos/2026?page=3");
}

#[test]
fn the_way_back_only_ever_leads_to_a_host_of_the_same_site() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let forged = [
        "http://evil.example/".to_string(),
        "http://blog.home.example/".to_string(), // another site's host
        "http://cloud.home.example@evil.example/".to_string(),
        "//evil.example/".to_string(),
        "javascript:alert(1)".to_string(),
        "\"><script>alert(1)</script>".to_string(),
    ];
    for online in [false, true] {
        if online {
            o.cli(&["online", "cloud"]).ok();
        }
        for f in &forged {
            let r = o.get(STATUS, &format!("/maintenance/cloud?from={}", enc(f)));
            assert_eq!(r.status, 200, "{f}: {}", r.text());
            assert_eq!(r.header("location"), None, "{f}");
            let body = r.text();
            assert!(!body.contains("evil"), "{f}: {body}");
            assert!(!body.contains("<script>alert"), "{f}: {body}");
            assert!(!body.contains("javascript:"), "{f}: {body}");
        }
    }
    // The quoted path is encoded, so it stays on the site's own host.
    let r = o.get(
        STATUS,
        &format!(
            "/maintenance/cloud?from={}",
            enc("http://cloud.home.example/\"><script>")
        ),
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("http://cloud.home.example/%22%3E%3Cscript%3E")
    );
}

#[test]
fn overview_lists_sites_reasons_links_and_recent_history() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let r = o.get(STATUS, "/");
    assert_eq!(r.status, 200);
    assert_html(&r);
    let body = r.text();
    assert!(body.contains("<h1>Lab &lt;status&gt;</h1>"), "{body}");
    assert!(body.contains(">Service Under Maintenance<"), "{body}");
    assert!(body.contains("<li data-site=\"cloud\">"), "{body}");
    let cloud = &body[body.find("data-site=\"cloud\"").unwrap()..];
    assert!(cloud.starts_with("data-site=\"cloud\"><div class=\"row\"><span class=\"name\">cloud</span><span class=\"st under_maintenance\">Under Maintenance</span>"), "{cloud}");
    let blog = &body[body.find("data-site=\"blog\"").unwrap()..];
    assert!(blog.contains("<span class=\"st operational\">Operational</span>"));
    assert!(body.contains(
        "<a href=\"https://docs.home.example/?a=1&amp;b=2\" rel=\"noopener\">Docs &amp; help</a>"
    ));
    assert!(body.contains("No changes recorded yet."));

    o.cli(&["online", "cloud", "--reason", "swapped"]).ok();
    o.cli(&[
        "offline",
        "blog",
        "--reason",
        "kernel <update>",
        "--until",
        "1h",
    ])
    .ok();
    let body = o.get(STATUS, "/").text();
    assert!(body.contains(">Service Under Maintenance<"), "{body}");
    assert!(body.contains("kernel &lt;update&gt;"), "{body}");
    let history = &body[body.find("id=\"history\"").expect("history")..];
    let blog_at = history.find("<span class=\"name\">blog</span> went into maintenance");
    let cloud_at = history.find("<span class=\"name\">cloud</span> is back online");
    assert!(
        blog_at.is_some() && cloud_at.is_some() && blog_at < cloud_at,
        "newest first: {history}"
    );
    assert!(history.contains("swapped"));

    // The history is kept in the state file, across a restart.
    let o = o.restart();
    let body = o.get(STATUS, "/").text();
    assert!(body.contains("<span class=\"name\">blog</span> went into maintenance"));
    assert!(body.contains("<span class=\"name\">cloud</span> is back online"));
    // Reset and an expiry are recorded with their cause.
    o.cli(&["reset", "cloud"]).ok();
    let body = o.get(STATUS, "/").text();
    assert!(
        body.contains(
            "<span class=\"name\">cloud</span> went into maintenance (runtime override dropped)"
        ),
        "{body}"
    );
}

#[test]
fn history_is_bounded() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    // 120 flips over one control connection.
    let mut s = UnixStream::connect(o.socket()).expect("connect control socket");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    for i in 0..120 {
        let cmd = if i % 2 == 0 { "online" } else { "offline" };
        writeln!(s, "{{\"cmd\":\"{cmd}\",\"sites\":[\"cloud\"]}}").expect("write");
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    let state: Value =
        serde_json::from_slice(&std::fs::read(o.state_file()).expect("state")).expect("state json");
    let history = state["history"].as_array().expect("history");
    assert_eq!(history.len(), 100);
    assert_eq!(history.last().unwrap()["state"], "offline");
    let body = o.get(STATUS, "/").text();
    let shown = body.matches("<span class=\"name\">cloud</span> ").count();
    assert_eq!(shown, 20, "the overview shows the 20 most recent");
}

#[test]
fn statuspage_api_summary_status_and_components() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let port = o.addr().port();
    o.cli(&[
        "offline",
        "cloud",
        "--reason",
        "disk swap",
        "--until",
        "30m",
    ])
    .ok();
    let host = format!("{STATUS}:{port}");
    let r = o.get(&host, "/api/v2/summary.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let s = r.json();
    assert_eq!(s["page"]["name"], "Lab <status>");
    assert_eq!(s["page"]["url"], format!("http://{STATUS}:{port}"));
    assert!(s["page"]["updated_at"].is_string());
    assert_eq!(s["status"]["indicator"], "maintenance");
    let comps = s["components"].as_array().expect("components");
    assert_eq!(comps.len(), 2);
    assert_eq!(comps[0]["name"], "cloud");
    assert_eq!(comps[0]["status"], "under_maintenance");
    assert_eq!(comps[1]["name"], "blog");
    assert_eq!(comps[1]["status"], "operational");
    for c in comps {
        for k in [
            "id",
            "created_at",
            "updated_at",
            "position",
            "group",
            "page_id",
        ] {
            assert!(c.get(k).is_some(), "component field {k}: {c}");
        }
    }
    let m = &s["scheduled_maintenances"][0];
    assert_eq!(m["status"], "in_progress");
    assert_eq!(m["impact"], "maintenance");
    assert!(m["scheduled_until"].is_string());
    assert_eq!(m["incident_updates"][0]["body"], "disk swap");
    assert_eq!(m["components"][0]["name"], "cloud");
    assert_eq!(s["incidents"], Value::Array(vec![]));

    let c = o.get(&host, "/api/v2/components.json").json();
    assert_eq!(c["components"], s["components"]);
    let st = o.get(&host, "/api/v2/status.json").json();
    assert_eq!(st["status"], s["status"]);

    o.cli(&["online", "cloud"]).ok();
    let s = o.get(&host, "/api/v2/summary.json").json();
    assert_eq!(s["status"]["indicator"], "none");
    assert_eq!(s["status"]["description"], "All Systems Operational");
    assert_eq!(s["scheduled_maintenances"], Value::Array(vec![]));
}

#[test]
fn embed_script_page_script_404_405_and_head() {
    let origin = TestOrigin::start("o");
    let o = with_status(&origin);
    let mut c = o.conn();
    let r = c.get(STATUS, "/embed.js");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.text().contains("/api/v2/summary.json"));
    let r = c.get(STATUS, "/assets/status.js");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("data-poll"));
    assert_eq!(c.get(STATUS, "/nope").status, 404);
    assert_eq!(c.get(STATUS, "/index.html").status, 404);
    assert_eq!(c.get(STATUS, "/maintenance/nope").status, 404);
    let r = c.request("POST", STATUS, "/", &[], b"x=1");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = c.request("HEAD", STATUS, "/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // Still one keep-alive connection, and nothing reached the upstream.
    assert_eq!(c.get(STATUS, "/").status, 200);
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn without_a_status_host_the_maintenance_page_is_served_in_place() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, "", ""));
    let r = o.get("cloud.home.example", "/a");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), None);
    let body = r.text();
    assert!(body.contains("<strong>cloud</strong> is down for maintenance"));
    assert!(body.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(body.contains("method:'HEAD'"), "polls its own URL: {body}");
    o.cli(&[
        "offline",
        "cloud",
        "--reason",
        "<upgrade>",
        "--until",
        "10m",
    ])
    .ok();
    let r = o.get("cloud.home.example", "/a");
    assert_eq!(r.status, 503);
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((500..=600).contains(&secs), "{secs}");
    assert!(r.text().contains("&lt;upgrade&gt;"));
    o.cli(&["online", "cloud"]).ok();
    assert_eq!(o.get("cloud.home.example", "/a").status, 200);
}

#[test]
fn code_503_with_a_status_host_serves_in_place_and_links_the_site_page() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(&origin, "code = 503", &status_section()));
    let port = o.addr().port();
    let r = o.get("cloud.home.example", "/");
    assert_eq!(r.status, 503);
    let link = format!("http://{STATUS}:{port}/maintenance/cloud");
    assert!(
        r.text().contains(&format!("href=\"{link}\"")),
        "{}",
        r.text()
    );
}

#[test]
fn per_site_builtin_and_url_status_pages_mix() {
    let origin = TestOrigin::start("o");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.home.example\"]\nupstream = \"{u}\"\nstate = \"offline\"\nstatus_page = \"builtin\"\n\n\
[[site]]\nname = \"blog\"\nhosts = [\"blog.home.example\"]\nupstream = \"{u}\"\nstate = \"offline\"\n\n{}",
        server_section(""),
        status_section(),
        u = origin.url()
    );
    let o = Offramp::start(&text);
    let loc = o
        .get("cloud.home.example", "/x")
        .header("location")
        .map(str::to_string);
    assert!(
        loc.as_deref()
            .is_some_and(|l| l.starts_with(&format!("http://{STATUS}:"))),
        "{loc:?}"
    );
    assert_eq!(
        o.get("blog.home.example", "/x").header("location"),
        Some("https://status.example.com/x")
    );
}

#[test]
fn status_config_errors_name_file_line_and_key() {
    let origin = TestOrigin::start("o");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.home.example\"]\nupstream = \"{}\"\n\
[status]\nhosts = [\"*.status.example\", \"cloud.home.example\"]\ntitle = \"\"\n\
links = [{{ name = \"x\", url = \"javascript:alert(1)\" }}, {{ url = \"https://a.example\" }}]\ncolour = \"red\"\n",
        server_section(""),
        origin.url()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("offramp.toml");
    std::fs::write(&path, &text).expect("write");
    let out = cli(&["check", "-c", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for needle in [
        "status.hosts: \"*.status.example\": status hosts are exact names",
        "status.hosts: host cloud.home.example is both a status host and a host of site \"cloud\"",
        "status.title: must be 1 to 200 characters",
        "status.links[1].url: \"javascript:alert(1)\" is not an http:// or https:// URL",
        "status.links[2].name: missing",
        "status.colour: unknown key",
    ] {
        assert!(out.stderr.contains(needle), "{needle}:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("offramp.toml:"), "{}", out.stderr);
    // The link whose url is invalid has that error only, not also "missing".
    assert!(
        !out.stderr.contains("status.links[1].url: missing"),
        "{}",
        out.stderr
    );
}

/// A `builtin` site whose upstream refuses connections, with a status host.
fn refused_upstream() -> Offramp {
    let text = format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\
[[site]]\nname = \"down\"\nhosts = [\"down.home.example\"]\nupstream = \"http://{}\"\n\n{}",
        server_section(""),
        dead_port(),
        status_section()
    );
    Offramp::start(&text)
}

/// The 502 page of a `builtin` site links to the status page's overview.
fn assert_502_links_the_status_page(o: &Offramp, method: &str, body: &[u8]) {
    let port = o.addr().port();
    let r = o
        .conn()
        .request(method, "down.home.example", "/x", &[], body);
    assert_eq!(r.status, 502, "{method}");
    let link = format!("<a href=\"http://{STATUS}:{port}/\">");
    assert!(
        r.text().contains(&link),
        "{method}: no {link} in\n{}",
        r.text()
    );
}

#[test]
fn upstream_error_page_links_the_status_page_for_a_request_with_a_body() {
    let o = refused_upstream();
    assert_502_links_the_status_page(&o, "POST", b"x=1");
}

#[test]
fn upstream_error_page_links_the_status_page_for_a_plain_get() {
    // A GET without a body is answered on the plain-HTTP fast path.
    let o = refused_upstream();
    assert_502_links_the_status_page(&o, "GET", b"");
}

/// `[status] url`: the public address of the status page, for offramp behind a port
/// forward or another proxy (the listener's own scheme and port would be wrong).
fn with_public_url(origin: &TestOrigin, maintenance: &str) -> Offramp {
    // A `builtin` site whose upstream refuses connections, then [status] with `url`.
    let tail = format!(
        "[[site]]\nname = \"down\"\nhosts = [\"down.home.example\"]\nupstream = \"http://{}\"\n\n\
{}url = \"https://Status.Home.Example/\"\n",
        dead_port(),
        status_section(),
    );
    Offramp::start(&config(origin, maintenance, &tail))
}

#[test]
fn status_url_is_where_offline_visitors_go_and_what_pages_link() {
    let origin = TestOrigin::start("o");
    let o = with_public_url(&origin, "");
    let port = o.addr().port();
    let public = "https://status.home.example";

    // The redirect goes to the configured address, not to this listener's port.
    let from = format!("http://cloud.home.example:{port}/x?y=1");
    let r = o.get(&format!("cloud.home.example:{port}"), "/x?y=1");
    assert_eq!(r.status, 302);
    let want = format!("{public}/maintenance/cloud?from={}", enc(&from));
    assert_eq!(r.header("location"), Some(want.as_str()));
    assert!(r.text().contains(&format!("href=\"{public}/maintenance/")));
    // What the port forward delivers to offramp: the page, with the way back.
    let (_, target) = split(&want);
    let p = o.get(STATUS, &target);
    assert_eq!(p.status, 200);
    assert!(p.text().contains(&format!("data-return=\"{from}\"")));
    // The API's absolute links.
    let s = o
        .get(&format!("{STATUS}:{port}"), "/api/v2/summary.json")
        .json();
    assert_eq!(s["page"]["url"], public);
    // The 502 page of a builtin site (a request with a body: the Pingora path).
    let r = o
        .conn()
        .request("POST", "down.home.example", "/", &[], b"x=1");
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains(&format!("<a href=\"{public}/\">")),
        "{}",
        r.text()
    );

    // code = 503: the maintenance page served in place links there too.
    let o = with_public_url(&origin, "code = 503");
    let r = o.get("cloud.home.example", "/");
    assert_eq!(r.status, 503);
    assert!(
        r.text()
            .contains(&format!("href=\"{public}/maintenance/cloud\"")),
        "{}",
        r.text()
    );
}
