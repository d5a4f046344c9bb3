//! The differential test: the same request, against the same config state, sent over
//! plain HTTP/1.1 (offramp's own fast path where it can), h2c with prior knowledge,
//! TLS with ALPN `http/1.1` and TLS with ALPN `h2` (Pingora's path) must get the same
//! answer — status, `Location`, `Cache-Control`, `Content-Type`, `Retry-After`, body —
//! and that answer must be the one the contract and the README give.
//!
//! Each case is one entry of [`cases`]. Where a value legitimately depends on the
//! transport (`by_scheme`: the scheme and port of a built-in status page's `Location`,
//! a 308 to HTTPS), plain HTTP/1.1 is compared with h2c and TLS HTTP/1.1 with TLS h2,
//! and each is checked against the expected value for its own scheme and port
//! (`{scheme}`, `{port}` — the listener's — and `{https}` — the TLS listener's — in the
//! expectations). Every case runs; all failures are reported together at the end.
//!
//! Also compared: whether the body arrived whole, and the set of header names (framing
//! ones aside: `Connection`, `Content-Length`, `Date`, `Transfer-Encoding`); checked on
//! every reply: at most one `Content-Length` field, and no hop-by-hop header the case
//! names. For a body cut short only "incomplete" must agree, not how many bytes came
//! first. `cargo test --test differential -- --nocapture` prints what each transport
//! answered, case by case (a failing run prints it anyway).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::transports::{exchange, scripted_origin, self_signed_pair, Reply, Request, Transport};
use common::*;

/// Bound on every exchange (the slowest case, the 504, takes `read_timeout` = 300 ms).
const LIMIT: Duration = Duration::from_secs(5);

/// The daemons: `[maintenance] code` is global, and so is `redirect_https`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cfg {
    Code302,
    Code307,
    Code503,
    RedirectHttps,
}
use Cfg::*;

const CFGS: [Cfg; 4] = [Code302, Code307, Code503, RedirectHttps];

/// An expected value (`{scheme}`, `{port}`, `{https}` substituted per transport).
#[derive(Clone, Copy, Debug)]
enum V {
    Any,
    Absent,
    Is(&'static str),
    Starts(&'static str),
    /// An integer number of seconds within the bounds.
    Secs(u64, u64),
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Any,
    Is(&'static str),
    Has(&'static str),
    /// JSON with these top-level keys.
    Json(&'static [&'static str]),
    /// Contains every one of these.
    HasAll(&'static [&'static str]),
    /// Complete, this many bytes.
    Bytes(usize),
    /// The client must see the body cut short: incomplete, a prefix of this.
    Cut(&'static str),
}

#[derive(Clone, Copy, Debug)]
struct Expect {
    status: Option<u16>,
    location: V,
    cache_control: V,
    content_type: V,
    retry_after: V,
    body: Body,
    /// Headers that must not reach the client (hop-by-hop ones).
    gone: &'static [&'static str],
}

/// Agreement only.
const ANY: Expect = Expect {
    status: None,
    location: V::Any,
    cache_control: V::Any,
    content_type: V::Any,
    retry_after: V::Any,
    body: Body::Any,
    gone: &[],
};
/// Offramp's own small HTML page.
const PAGE: Expect = Expect {
    location: V::Absent,
    content_type: V::Starts("text/html"),
    retry_after: V::Absent,
    ..ANY
};
/// An offline redirect (302/307/308): no-store, a short HTML page with the link.
const REDIRECT: Expect = Expect {
    cache_control: V::Is("no-store"),
    ..PAGE
};
/// Proxied to the echo origin: its answer, untouched.
const ECHOED: Expect = Expect {
    status: Some(200),
    cache_control: V::Absent,
    content_type: V::Is("text/plain"),
    body: Body::Any,
    ..PAGE
};

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    cfg: Cfg,
    method: &'static str,
    host: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Values depend on the scheme: compare plain with plain and TLS with TLS only.
    by_scheme: bool,
    expect: Expect,
    /// What TLS transports must answer, when it differs from `expect`.
    tls: Option<Expect>,
    /// A known difference, documented in SECURITY.md: what the HTTP/2 transports answer
    /// instead (then HTTP/1 transports are compared with each other, and HTTP/2 ones).
    h2: Option<Expect>,
}

/// A GET of `target` on `host`, the same expectations on every transport.
#[rustfmt::skip]
fn case(name: &'static str, cfg: Cfg, host: &'static str, target: &'static str, expect: Expect) -> Case {
    Case { name, cfg, method: "GET", host, target, headers: &[], by_scheme: false, expect, tls: None, h2: None }
}

#[rustfmt::skip]
impl Case {
    /// The answer depends on the scheme: TLS transports expect `tls` (else the same,
    /// placeholders substituted), and only transports of one scheme are compared.
    fn by_scheme(self, tls: Option<Expect>) -> Case { Case { by_scheme: true, tls, ..self } }
    fn method(self, method: &'static str) -> Case { Case { method, ..self } }
    fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Case { Case { headers, ..self } }
    fn over_h2(self, h2: Expect) -> Case { Case { h2: Some(h2), ..self } }
}

const BUILTIN_LOC: &str =
    "{scheme}://status.test:{port}/maintenance/bsite?from={scheme}%3A%2F%2Fbsite.test%2Fx%3Fy%3D1";
const ACME: &str = "/.well-known/acme-challenge/tok-1_A";

/// The table: one entry a case.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let page = |code, body| Expect { status: Some(code), body, ..PAGE };
    let moved = |code| Expect {
        status: Some(code),
        location: V::Is("https://status.example.com/x?y=1"),
        body: Body::Has("https://status.example.com/x?y=1"),
        ..REDIRECT
    };
    let builtin = |code, loc| Expect { status: Some(code), location: V::Is(loc), body: Body::Has("/maintenance/bsite?from="), ..REDIRECT };
    let to_https = |loc| Expect { status: Some(308), location: V::Is(loc), body: Body::Has(loc), ..REDIRECT };
    let echo = |body| Expect { body: Body::Is(body), ..ECHOED };
    let echo_acme = echo("GET /.well-known/acme-challenge/tok-1_A");
    let acme_moved =
        Expect { status: Some(302), location: V::Is("https://status.example.com/.well-known/acme-challenge/tok-1_A"), ..REDIRECT };
    let maintenance = |ra| Expect { retry_after: ra, ..page(503, Body::Has("<html")) };
    let overview = Expect { cache_control: V::Is("no-store"), ..page(200, Body::Has("bsite")) };
    let summary = Expect {
        content_type: V::Starts("application/json"),
        body: Body::Json(&["page", "status", "components", "incidents", "scheduled_maintenances"]),
        ..overview
    };
    let gateway = |code| page(code, Body::Has("https://status.example.com"));
    let cut = Expect { status: Some(200), body: Body::Cut("abc"), ..ANY };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let long_target = leak(format!("/{}", "a".repeat(9000)));
    let long_url = leak(format!("/{}", "a/".repeat(2100)));
    let big_header: &'static [(&str, &str)] = Box::leak(Box::new([("X-Big", leak("b".repeat(70_000)))]));
    let xf = &["host: headers.test\n", "x-forwarded-for: 127.0.0.1\n", "x-forwarded-host: headers.test\n", "x-forwarded-proto: {scheme}"];
    let spoof = &[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.test"), ("X-Forwarded-Proto", "https"), ("Forwarded", "host=evil.test")];
    let kept = |loc, body| Expect { location: V::Is(loc), body, ..moved(302) };
    let port_loc = "{scheme}://status.test:{port}/maintenance/bsite?from={scheme}%3A%2F%2Fbsite.test%3A1234%2Fx%3Fy%3D1";
    let no_from = Expect { body: Body::Has("/maintenance/bsite\""), ..builtin(302, "{scheme}://status.test:{port}/maintenance/bsite") };
    let html = Body::Has("<html");
    vec![
        case("online GET, origin body through", Code302, "on.test", "/hello?a=1", echo("GET /hello?a=1")),
        case("online HEAD", Code302, "on.test", "/x?y=1", echo("")).method("HEAD"),
        case("online, what the upstream is told (X-Forwarded-*, Host)", Code302, "headers.test", "/", Expect { body: Body::HasAll(xf), ..ECHOED })
            .headers(spoof).by_scheme(None),
        case("offline, code = 302", Code302, "off.test", "/x?y=1", moved(302)),
        case("offline, code = 302, HEAD", Code302, "off.test", "/x?y=1", Expect { body: Body::Is(""), ..moved(302) }).method("HEAD"),
        case("offline, code = 302, host with a trailing dot", Code302, "off.test.", "/x?y=1", moved(302)),
        case("offline, code = 302, empty port in Host", Code302, "off.test:", "/x?y=1", moved(302)),
        case("offline, code = 302, path and query kept as sent", Code302, "off.test", "/docs/a%20b;p?x=1&y=%2F",
            kept("https://status.example.com/docs/a%20b;p?x=1&y=%2F", Body::Has("https://status.example.com/docs/a%20b;p?x=1&amp;y=%2F"))),
        case("offline, code = 302, scheme-relative //evil path", Code302, "off.test", "//evil.test/x",
            kept("https://status.example.com//evil.test/x", Body::Any)),
        case("offline, code = 302, dot segments kept", Code302, "off.test", "/a/../b/%2e%2e/c",
            kept("https://status.example.com/a/../b/%2e%2e/c", Body::Any)),
        case("offline, code = 302, OPTIONS", Code302, "off.test", "/x?y=1", moved(302)).method("OPTIONS"),
        case("offline, code = 307", Code307, "off.test", "/x?y=1", moved(307)),
        case("offline, code = 503, --until 30m", Code503, "until.test", "/x?y=1", maintenance(V::Secs(1700, 1800))),
        case("offline, code = 503, no --until", Code503, "off.test", "/x?y=1", maintenance(V::Absent)),
        case("builtin, 302 to the site's page", Code302, "bsite.test", "/x?y=1", builtin(302, BUILTIN_LOC)).by_scheme(None),
        case("builtin, 307 to the site's page", Code307, "bsite.test", "/x?y=1", builtin(307, BUILTIN_LOC)).by_scheme(None),
        case("builtin, Host in upper case with a port", Code302, "BSITE.Test:1234", "/x?y=1", builtin(302, port_loc)).by_scheme(None),
        case("builtin, X-Forwarded-Host and Forwarded ignored", Code302, "bsite.test", "/x?y=1", builtin(302, BUILTIN_LOC))
            .headers(spoof).by_scheme(None),
        case("builtin, a URL too long to carry: no from=", Code302, "bsite.test", long_url, no_from).by_scheme(None),
        case("builtin, code = 503: page in place, linking to the status host", Code503, "bsite.test", "/x?y=1",
            Expect { body: Body::Has("href=\"{scheme}://status.test:{port}/maintenance/bsite\""), ..maintenance(V::Absent) }).by_scheme(None),
        case("status host overview /", Code302, "status.test", "/", overview),
        case("status host, the site's maintenance page", Code302, "status.test", "/maintenance/bsite?from=http%3A%2F%2Fbsite.test%2Fx",
            Expect { body: Body::Has("href=\"http://bsite.test/x\""), ..overview }),
        case("status host, POST", Code302, "status.test", "/", page(405, html)).method("POST"),
        case("status host /api/v2/summary.json", Code302, "status.test", "/api/v2/summary.json", summary).by_scheme(None),
        case("unknown host", Code302, "nobody.test", "/x?y=1", page(404, html)),
        case("IPv6 literal host", Code302, "[::1]:8080", "/x?y=1", page(404, html)),
        case("malformed host", Code302, "a..b", "/x?y=1", page(400, html)),
        // Pingora's HTTP/2 server refuses userinfo in `:authority` while it accepts the
        // stream, with a bare 400, before any hook of offramp's runs (SECURITY.md).
        case("host with userinfo", Code302, "user@off.test", "/x?y=1", page(400, html))
            .over_h2(Expect { status: Some(400), ..ANY }),
        case("request target over 8 KiB", Code302, "on.test", long_target, page(414, html)),
        case("request head over 64 KiB", Code302, "on.test", "/", Expect { status: Some(431), ..ANY }).headers(big_header),
        case("upstream refused", Code302, "refused.test", "/x?y=1", gateway(502)),
        case("upstream refused, HEAD", Code302, "refused.test", "/x?y=1", Expect { body: Body::Is(""), ..gateway(502) }).method("HEAD"),
        case("upstream refused, builtin site: the 502 page links to its page", Code302, "bdown.test", "/x?y=1",
            page(502, Body::Has("{scheme}://status.test:{port}/"))).by_scheme(None),
        case("upstream timed out (read_timeout)", Code302, "hang.test", "/x?y=1", gateway(504)),
        case("upstream garbage", Code302, "garbage.test", "/x?y=1", gateway(502)),
        case("upstream `Content-Length: 2, 2`", Code302, "dupcl.test", "/x?y=1", ANY),
        case("upstream two `Content-Length: 2` fields", Code302, "dupcl2.test", "/x?y=1", ANY),
        case("upstream body cut short (Content-Length: 10, 3 bytes, close)", Code302, "cut.test", "/x?y=1", cut),
        case("upstream stalls inside its body (read_timeout)", Code302, "stall.test", "/", cut),
        case("upstream chunked body cut short (close inside)", Code302, "cutchunked.test", "/", cut),
        case("upstream invalid `Content-Length: 2x`", Code302, "badcl.test", "/", gateway(502)),
        case("upstream conflicting Content-Length 2 and 3", Code302, "conflictcl.test", "/", gateway(502)),
        case("upstream both Transfer-Encoding: chunked and Content-Length", Code302, "tecl.test", "/", ANY),
        case("upstream chunked", Code302, "chunked.test", "/", echo("ok")),
        case("upstream HTTP/1.0, close-delimited", Code302, "http10.test", "/", echo("close-delimited")),
        case("upstream 100 Continue before its 200", Code302, "continue.test", "/", echo("ok")),
        case("upstream status line without a reason phrase", Code302, "noreason.test", "/", echo("ok")),
        case("upstream 100 000-byte body", Code302, "big.test", "/", Expect { body: Body::Bytes(100_000), ..ECHOED }),
        case("upstream closing after each answer, unannounced", Code302, "closer.test", "/", echo("ok")),
        case("upstream closing after each answer, again (pooled)", Code302, "closer.test", "/", echo("ok")),
        case("upstream obs-fold header line", Code302, "obsfold.test", "/", ANY),
        case("upstream whitespace before a header's colon", Code302, "spacecolon.test", "/", ANY),
        case("upstream response head of 70 KiB", Code302, "bighead.test", "/", ANY),
        case("upstream response with 200 header fields", Code302, "manyheaders.test", "/", ANY),
        case("online POST without a body: what the upstream is told", Code302, "headers.test", "/",
            Expect { body: Body::HasAll(xf), ..ECHOED }).method("POST").by_scheme(None),
        case("upstream 204", Code302, "nocontent.test", "/", Expect { status: Some(204), content_type: V::Absent, ..echo("") }),
        case("upstream hop-by-hop response headers", Code302, "hop.test", "/",
            Expect { gone: &["x-foo", "keep-alive", "proxy-connection"], ..echo("ok") }),
        case("redirect_https, online", RedirectHttps, "on.test", "/p?q=1", to_https("https://on.test:{https}/p?q=1"))
            .by_scheme(Some(echo("GET /p?q=1"))),
        case("redirect_https, offline", RedirectHttps, "off.test", "/x?y=1", to_https("https://off.test:{https}/x?y=1"))
            .by_scheme(Some(moved(302))),
        case("redirect_https, builtin", RedirectHttps, "bsite.test", "/x?y=1", to_https("https://bsite.test:{https}/x?y=1"))
            .by_scheme(Some(builtin(302, BUILTIN_LOC))),
        case("redirect_https, status host", RedirectHttps, "status.test", "/", to_https("https://status.test:{https}/"))
            .by_scheme(Some(overview)),
        case("ACME challenge, offline site", Code302, "off.test", ACME, echo_acme).by_scheme(Some(acme_moved)),
        case("ACME challenge, redirect_https, online site", RedirectHttps, "on.test", ACME, echo_acme),
        case("ACME challenge, redirect_https, offline site", RedirectHttps, "off.test", ACME, echo_acme)
            .by_scheme(Some(acme_moved)),
    ]
}

// ---------------------------------------------------------------------------------
// The daemons and their upstreams
// ---------------------------------------------------------------------------------

/// Raw upstreams, one site each (`NAME.test`): after each request head, the answer
/// as is, then the connection closed (`true`) or kept for the next request.
const RAW: &[(&str, bool, &[u8])] = &[
    ("garbage", true, b"THIS IS NOT HTTP\r\n\r\n"),
    ("dupcl", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2, 2\r\n\r\nok"),
    ("dupcl2", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    ("cut", true, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc"),
    ("stall", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc"),
    ("cutchunked", true, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
    ("badcl", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2x\r\n\r\nok"),
    ("conflictcl", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
    ("tecl", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    ("chunked", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    ("http10", true, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited"),
    ("continue", false, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"),
    ("noreason", false, b"HTTP/1.1 200\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"),
    ("obsfold", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok"),
    ("spacecolon", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Spaced : a\r\nContent-Length: 2\r\n\r\nok"),
    ("closer", true, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"),
    ("nocontent", false, b"HTTP/1.1 204 No Content\r\nX-Origin: raw\r\n\r\n"),
    ("hop", false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: x-foo\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
];

/// The echo origin: a 200 whose body is the request line without its version.
fn echo(head: &str) -> Vec<u8> {
    let line = head.lines().next().unwrap_or_default();
    let body = line.strip_suffix(" HTTP/1.1").unwrap_or(line);
    let n = body.len();
    let body = if line.starts_with("HEAD ") { "" } else { body };
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n{body}")
        .into_bytes()
}

/// 100 000 bytes of numbered lines, the answer of the `big` origin.
fn big_body() -> String {
    (0..10_000).map(|i| format!("{i:09}\n")).collect()
}

/// A 200 "ok" with `n` extra header fields of `len` bytes each.
fn big_head(len: usize, n: usize) -> Vec<u8> {
    let fields: String = (0..n)
        .map(|i| format!("X-F{i}: {}\r\n", "v".repeat(len)))
        .collect();
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{fields}Content-Length: 2\r\n\r\nok")
        .into_bytes()
}

/// The headers origin: a 200 whose body is the request's header lines, names in lower
/// case, sorted.
fn echo_headers(head: &str) -> Vec<u8> {
    let mut lines: Vec<String> = (head.split("\r\n").skip(1))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| format!("{}: {}", k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    lines.sort();
    let body = lines.join("\n");
    let n = body.len();
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n{body}")
        .into_bytes()
}

/// Every site: (name, upstream URL, extra keys).
#[rustfmt::skip]
fn sites() -> Vec<(&'static str, String, &'static str)> {
    let url = |addr: SocketAddr| format!("http://{addr}");
    let echo = url(scripted_origin(false, echo));
    let quick = "read_timeout = \"300ms\"\n";
    let big = big_body();
    let big = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{big}", big.len());
    let mut sites = vec![
        ("on", echo.clone(), ""),
        ("off", echo.clone(), "state = \"offline\"\n"),
        ("until", echo.clone(), ""),
        ("bsite", echo, "state = \"offline\"\nstatus_page = \"builtin\"\n"),
        ("headers", url(scripted_origin(false, echo_headers)), ""),
        ("big", url(scripted_origin(false, move |_| big.clone().into_bytes())), ""),
        ("refused", url(dead_port()), ""),
        ("bdown", url(dead_port()), "status_page = \"builtin\"\n"),
        ("hang", url(hanging_origin()), quick),
        ("bighead", url(scripted_origin(false, move |_| big_head(70_000, 1))), quick),
        ("manyheaders", url(scripted_origin(false, move |_| big_head(10, 200))), quick),
    ];
    for &(name, close, answer) in RAW {
        sites.push((name, url(scripted_origin(close, move |_| answer.to_vec())), quick));
    }
    sites
}

fn start(cfg: Cfg, sites: &[(&str, String, &str)]) -> Offramp {
    let code = match cfg {
        Code307 => 307,
        Code503 => 503,
        _ => 302,
    };
    let mut text = server_section(&format!(
        "https = \"127.0.0.1:0\"\ncerts = \"certs\"\nredirect_https = {}\naccess_log = false\n",
        cfg == RedirectHttps
    ));
    text.push_str(&format!(
        "[maintenance]\nstatus_page = \"https://status.example.com\"\ncode = {code}\n\n"
    ));
    for (name, upstream, extra) in sites {
        text.push_str(&format!(
            "[[site]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{upstream}\"\n{extra}\n"
        ));
    }
    text.push_str("[status]\nhosts = [\"status.test\"]\ntitle = \"Differential\"\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("certs dir");
    let mut names: Vec<String> = sites.iter().map(|s| format!("{}.test", s.0)).collect();
    names.push("status.test".into());
    let (crt, key) = self_signed_pair(&names.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(certs.join("all.crt"), crt).expect("crt");
    std::fs::write(certs.join("all.key"), key).expect("key");
    std::fs::write(dir.path().join("offramp.toml"), text).expect("config");
    let o = Offramp::start_in(dir, &[]);
    assert_eq!(
        o.https.len(),
        1,
        "{cfg:?}: no https listener:\n{}",
        o.log_text()
    );
    if cfg == Code503 {
        o.cli(&["offline", "until", "--until", "30m"]).ok();
    }
    o
}

// ---------------------------------------------------------------------------------
// Comparing and checking
// ---------------------------------------------------------------------------------

/// What one transport saw, normalised: (field, value) in the order compared.
type Seen = Vec<(&'static str, String)>;

fn seen(r: &Result<Reply, String>, cut: bool) -> Seen {
    let r = match r {
        Ok(r) => r,
        Err(e) => return vec![("status", format!("no response ({e})"))],
    };
    let show = |name| show(&r.header(name));
    let framing = ["connection", "content-length", "date", "transfer-encoding"];
    let mut names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    names.retain(|k| !framing.contains(k));
    names.sort();
    names.dedup();
    let complete = r.body_error.is_none();
    // How much of a cut body arrives before the error is the framing's business (h2
    // may reset the stream before the bytes): "200, then an incomplete body" is what
    // must agree. The table shows the bytes.
    let body = match cut && !complete {
        true => "<cut short>".to_string(),
        false => format!("{:?}", no_times(&String::from_utf8_lossy(&r.body))),
    };
    vec![
        ("status", r.status.to_string()),
        ("Location", show("location")),
        ("Cache-Control", show("cache-control")),
        ("Content-Type", show("content-type")),
        ("Retry-After", show("retry-after")),
        ("body", body),
        ("body complete", complete.to_string()),
        ("header names (framing ones aside)", format!("{names:?}")),
    ]
}

/// One line of the table of answers: status, headers but `Date`, body.
fn row(case: &Case, t: Transport, r: &Result<Reply, String>) -> String {
    let what = match r {
        Err(e) => format!("no response: {e}"),
        Ok(r) => {
            let headers: Vec<String> = (r.headers.iter().filter(|(k, _)| k != "date"))
                .map(|(k, v)| format!("{k}: {}", v.chars().take(100).collect::<String>()))
                .take(12)
                .collect();
            let cut = r
                .body_error
                .as_deref()
                .map_or(String::new(), |e| format!(" CUT ({e})"));
            let body: String = String::from_utf8_lossy(&r.body).chars().take(50).collect();
            format!("{} {headers:?} body {body:?}{cut}", r.status)
        }
    };
    format!("{:<62} {:<8} {what}", case.name, t.name())
}

/// Replaces RFC 3339 times (`2026-12-07T02:37:45Z`, with fractions or an offset) by
/// `<time>`, so that pages and JSON rendered a moment apart compare equal.
fn no_times(s: &str) -> String {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= shape.len()
            && shape.iter().zip(&b[i..]).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                p => p == c,
            });
        if !fits {
            let ch = s[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        i += shape.len();
        while i < b.len() && (b[i].is_ascii_digit() || b".+-:Z".contains(&b[i])) {
            i += 1;
        }
        out.push_str("<time>");
    }
    out
}

fn show(v: &Option<String>) -> String {
    v.as_deref().map_or("-".to_string(), |s| format!("{s:?}"))
}

/// At most 140 characters of `s`.
fn short(s: &str) -> String {
    let cut: String = s.chars().take(140).collect();
    match cut.len() < s.len() {
        true => format!("{cut}…"),
        false => cut,
    }
}

/// The disagreement among `group`, if any: one line per field that differs.
fn disagreement(case: &Case, group: &[(Transport, Seen)]) -> Option<String> {
    let mut lines = Vec::new();
    let longest = group.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
    for f in 0..longest {
        let name = group.iter().find_map(|(_, s)| s.get(f)).expect("field").0;
        let values: Vec<&str> = (group.iter())
            .map(|(_, s)| s.get(f).map_or("-", |v| v.1.as_str()))
            .collect();
        // Retry-After counts down to a fixed time: asked a moment apart, within 2 s.
        let secs: Option<Vec<i64>> = values
            .iter()
            .map(|v| v.trim_matches('"').parse().ok())
            .collect();
        let same = match (name, secs) {
            ("Retry-After", Some(n)) => n
                .iter()
                .max()
                .zip(n.iter().min())
                .is_some_and(|(a, b)| a - b <= 2),
            _ => values.iter().all(|v| *v == values[0]),
        };
        if !same {
            let each: Vec<String> = (group.iter().zip(&values))
                .map(|((t, _), v)| format!("{}={}", t.name(), short(v)))
                .collect();
            lines.push(format!("\n    {name}: {}", each.join(" | ")));
        }
    }
    let names: Vec<&str> = group.iter().map(|(t, _)| t.name()).collect();
    (!lines.is_empty()).then(|| {
        format!(
            "[{}] {} disagree:{}",
            case.name,
            names.join(", "),
            lines.concat()
        )
    })
}

fn subst(s: &str, t: Transport, port: u16, https: u16) -> String {
    s.replace("{scheme}", t.scheme())
        .replace("{port}", &port.to_string())
        .replace("{https}", &https.to_string())
}

/// Where `reply` differs from what the case expects on transport `t`.
fn unexpected(
    case: &Case,
    t: Transport,
    r: &Result<Reply, String>,
    port: u16,
    https: u16,
) -> Vec<String> {
    let h2 = matches!(t, Transport::H2c | Transport::TlsH2);
    let e = match (case.h2, h2) {
        (Some(e), true) => e,
        _ if t.tls() => case.tls.unwrap_or(case.expect),
        _ => case.expect,
    };
    let mut out = Vec::new();
    let mut fail = |what: String| out.push(format!("[{}] {}: {what}", case.name, t.name()));
    let r = match r {
        Ok(r) => r,
        Err(err) => {
            fail(format!("no response: {err}"));
            return out;
        }
    };
    if let Some(status) = e.status {
        if r.status != status {
            fail(format!("status {}, expected {status}", r.status));
        }
    }
    for (name, v) in [
        ("Location", e.location),
        ("Cache-Control", e.cache_control),
        ("Content-Type", e.content_type),
        ("Retry-After", e.retry_after),
    ] {
        let got = r.header(name);
        let ok = match (v, got.as_deref()) {
            (V::Any, _) => true,
            (V::Absent, g) => g.is_none(),
            (V::Is(want), g) => g == Some(subst(want, t, port, https).as_str()),
            (V::Starts(want), g) => g.is_some_and(|g| g.starts_with(&subst(want, t, port, https))),
            (V::Secs(lo, hi), g) => g
                .and_then(|g| g.parse::<u64>().ok())
                .is_some_and(|n| (lo..=hi).contains(&n)),
        };
        if !ok {
            fail(format!("{name} {}, expected {v:?}", short(&show(&got))));
        }
    }
    for name in e.gone {
        if let Some(v) = r.header(name) {
            fail(format!(
                "hop-by-hop header {name}: {v:?} reached the client (RFC 9110 7.6.1)"
            ));
        }
    }
    let lengths = r.all("content-length");
    if lengths.len() > 1 {
        fail(format!(
            "{} Content-Length fields {lengths:?} (RFC 9110 8.6: one at most)",
            lengths.len()
        ));
    }
    let body = String::from_utf8_lossy(&r.body);
    let complete = r.body_error.is_none();
    let body_ok = match e.body {
        Body::Any => true,
        Body::Is(want) => complete && body == subst(want, t, port, https),
        Body::Has(want) => complete && body.contains(&subst(want, t, port, https)),
        Body::HasAll(all) => {
            complete && all.iter().all(|w| body.contains(&subst(w, t, port, https)))
        }
        Body::Json(keys) => {
            complete
                && serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|j| keys.iter().all(|k| j.get(*k).is_some()))
        }
        Body::Bytes(n) => complete && r.body.len() == n,
        Body::Cut(whole) => !complete && whole.starts_with(&*body),
    };
    if !body_ok {
        let state = r
            .body_error
            .as_deref()
            .map_or("complete".to_string(), |e| format!("incomplete: {e}"));
        fail(format!(
            "body {} ({state}), expected {:?}",
            short(&format!("{body:?}")),
            e.body
        ));
    }
    out
}

#[test]
fn every_transport_gets_the_same_answer() {
    let sites = &sites();
    let daemons: Vec<(Cfg, Offramp)> = std::thread::scope(|s| {
        let handles: Vec<_> = CFGS
            .iter()
            .map(|&c| (c, s.spawn(move || start(c, sites))))
            .collect();
        handles
            .into_iter()
            .map(|(c, h)| (c, h.join().expect("daemon start")))
            .collect()
    });
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for case in cases() {
        let o = &daemons
            .iter()
            .find(|(c, _)| *c == case.cfg)
            .expect("daemon")
            .1;
        let (plain, tls) = (o.addr(), o.https[0]);
        let req = Request {
            method: case.method,
            host: case.host,
            target: case.target,
            headers: case.headers,
        };
        let mut got: Vec<(Transport, Seen)> = Vec::new();
        for t in Transport::ALL {
            let addr: SocketAddr = if t.tls() { tls } else { plain };
            let r = exchange(t, addr, &req, LIMIT);
            failures.extend(unexpected(&case, t, &r, addr.port(), tls.port()));
            table.push(row(&case, t, &r));
            got.push((t, seen(&r, matches!(case.expect.body, Body::Cut(_)))));
        }
        if case.h2.is_some() {
            failures.extend(disagreement(&case, &[got[0].clone(), got[2].clone()]));
            failures.extend(disagreement(&case, &[got[1].clone(), got[3].clone()]));
        } else if case.by_scheme {
            failures.extend(disagreement(&case, &got[..2]));
            failures.extend(disagreement(&case, &got[2..]));
        } else {
            failures.extend(disagreement(&case, &got));
        }
    }
    eprintln!("what each transport answered:\n{}", table.join("\n"));
    let mut failing: Vec<&str> = failures
        .iter()
        .filter_map(|f| f[1..].split_once(']'))
        .map(|f| f.0)
        .collect();
    failing.dedup();
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n  {}\n\n{} failure(s):\n{}",
        failing.len(),
        failing.join("\n  "),
        failures.len(),
        failures.join("\n")
    );
}
