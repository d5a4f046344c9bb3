//! The data path as a client sees it: routing, proxying online sites, redirecting
//! offline ones, and every bad-input case of CONTRACT section 3. Each test starts the
//! real daemon on port 0 in front of real origins.

mod common;

use common::*;

/// `[maintenance]` + the given sites.
fn config(maintenance: &str, sites: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n{maintenance}\n{sites}",
        server_section("")
    )
}

fn site(name: &str, hosts: &[&str], upstream: &str, state: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [{}]\nupstream = {upstream}\nstate = \"{state}\"\n",
        hosts.join(", ")
    )
}

#[test]
fn online_site_is_proxied_with_forwarded_headers_and_host_kept() {
    let origin = TestOrigin::start("blog-origin");
    let o = Offramp::start(&config(
        "",
        &site(
            "blog",
            &["blog.home.example"],
            &format!("{:?}", origin.url()),
            "online",
        ),
    ));
    let r = o.get("blog.home.example", "/posts/1?x=y");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["origin"], "blog-origin");
    assert_eq!(j["method"], "GET");
    assert_eq!(j["target"], "/posts/1?x=y");
    assert_eq!(j["headers"]["host"], "blog.home.example");
    assert_eq!(j["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(j["headers"]["x-forwarded-proto"], "http");
    assert_eq!(j["headers"]["x-forwarded-host"], "blog.home.example");
}

fn up(url: &str) -> String {
    format!("{url:?}")
}

/// One online site `blog` (+ wildcard) and one offline site `cloud`, both on `origin`.
fn two_sites(origin: &TestOrigin, maintenance: &str) -> Offramp {
    Offramp::start(&config(
        maintenance,
        &format!(
            "{}{}",
            site(
                "blog",
                &["blog.home.example", "*.blog.home.example"],
                &up(&origin.url()),
                "online"
            ),
            site(
                "cloud",
                &["cloud.home.example"],
                &up(&origin.url()),
                "offline"
            ),
        ),
    ))
}

#[test]
fn routing_exact_before_wildcard_port_stripped_case_insensitive() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let o = Offramp::start(&config(
        "",
        &format!(
            "{}{}",
            site("wild", &["*.home.example"], &up(&a.url()), "online"),
            site("exact", &["app.home.example"], &up(&b.url()), "online"),
        ),
    ));
    // Exact name wins over the wildcard that also matches it.
    assert_eq!(o.get("app.home.example", "/").json()["origin"], "b");
    // Wildcard: any subdomain.
    assert_eq!(o.get("other.home.example", "/").json()["origin"], "a");
    // Port stripped, case-insensitive.
    assert_eq!(o.get("APP.Home.Example:8080", "/").json()["origin"], "b");
    assert_eq!(o.get("Other.HOME.example:1", "/").json()["origin"], "a");
    // The trailing dot of a fully-qualified name is ignored, as the README says.
    let r = o.get("app.home.example.", "/");
    assert_eq!(r.status, 200, "FQDN with trailing dot");
    assert_eq!(r.json()["origin"], "b");
    assert_eq!(o.get("other.home.example.:8080", "/").json()["origin"], "a");
    // The wildcard does not match the bare parent domain.
    assert_eq!(o.get("home.example", "/").status, 404);
}

#[test]
fn unknown_host_404_missing_or_malformed_host_400() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let r = o.get("nowhere.example", "/");
    assert_eq!(r.status, 404);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(r.text().len() < 2048, "a small page");

    // No Host at all.
    let mut c = o.conn();
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response(false).status, 400);

    // Malformed hosts.
    for bad in [
        "bad host",
        "blog.home.example:notaport",
        "[::1",
        "a..b",
        "blog.home.example..",
        "blog.home.example..:80",
        "@evil",
        "",
    ] {
        let mut c = o.conn();
        c.send(format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 400, "Host: {bad:?} → {}", r.status);
    }
    // Two Host headers.
    let mut c = o.conn();
    c.send(b"GET / HTTP/1.1\r\nHost: blog.home.example\r\nHost: cloud.home.example\r\n\r\n");
    assert_eq!(c.read_response(false).status, 400);
    // Nothing reached the origin.
    assert_eq!(origin.request_count(), 0);
}

#[test]
fn forwarded_headers_never_influence_routing_and_are_overwritten() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    let r = c.request(
        "GET",
        "blog.home.example",
        "/",
        &[
            ("X-Forwarded-Host", "cloud.home.example"),
            ("Forwarded", "host=cloud.home.example"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "routed by Host, not X-Forwarded-Host");
    let j = r.json();
    assert_eq!(j["headers"]["x-forwarded-host"], "blog.home.example");
    assert_eq!(j["headers"]["x-forwarded-proto"], "http");
    // The forged value is replaced, not appended to.
    assert_eq!(j["headers"]["x-forwarded-for"], "127.0.0.1");

    // On the offline site, X-Forwarded-Host cannot move the redirect.
    let r = c.request(
        "GET",
        "cloud.home.example",
        "/x",
        &[("X-Forwarded-Host", "evil.example")],
        b"",
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://status.example.com/x"));
}

/// An origin that answers each request with the request head it received as its body
/// (one request per connection), to see every header line offramp sent.
fn raw_head_origin() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let body_len = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < end + body_len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                    head.len()
                );
                let _ = s.write_all(answer.as_bytes());
            });
        }
    });
    addr
}

#[test]
fn a_forged_x_forwarded_for_is_replaced_by_the_client_address() {
    let origin = raw_head_origin();
    let o = Offramp::start(&config(
        "",
        &site(
            "blog",
            &["blog.home.example"],
            &up(&format!("http://{origin}")),
            "online",
        ),
    ));
    // GET without a body takes the fast path, POST with one goes through Pingora.
    for (method, body) in [("GET", &b""[..]), ("POST", &b"x=1"[..])] {
        let r = o.conn().request(
            method,
            "blog.home.example",
            "/",
            &[
                ("X-Forwarded-For", "6.6.6.6"),
                ("x-forwarded-for", "7.7.7.7, 8.8.8.8"),
            ],
            body,
        );
        assert_eq!(r.status, 200, "{method}");
        let head = r.text();
        let xff: Vec<&str> = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
            .map(|(_, v)| v.trim())
            .collect();
        assert_eq!(xff, ["127.0.0.1"], "{method}, the upstream got:\n{head}");
    }
}

#[test]
fn keep_alive_to_clients_and_pooled_connections_to_upstreams() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    for i in 0..5 {
        let r = c.get("blog.home.example", &format!("/{i}"));
        assert_eq!(r.status, 200);
        assert_ne!(r.header("connection"), Some("close"));
    }
    // More client connections, one after the other: the upstream connection is reused.
    for _ in 0..5 {
        assert_eq!(o.get("blog.home.example", "/").status, 200);
    }
    assert_eq!(origin.request_count(), 10);
    assert!(
        origin.conn_count() <= 2,
        "upstream connections are pooled: {} for 10 requests",
        origin.conn_count()
    );
}

#[test]
fn response_body_is_streamed_not_buffered() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    c.send(b"GET /stream?n=4&ms=400 HTTP/1.1\r\nHost: blog.home.example\r\n\r\n");
    let start = std::time::Instant::now();
    let (status, _) = c.read_head();
    assert_eq!(status, 200);
    let first = c.read_chunk().expect("first chunk");
    let t_first = start.elapsed();
    assert_eq!(first, b"chunk-0\n");
    let mut n = 1;
    while let Some(chunk) = c.read_chunk() {
        assert_eq!(chunk, format!("chunk-{n}\n").as_bytes());
        n += 1;
    }
    let t_all = start.elapsed();
    assert_eq!(n, 4);
    // The origin takes >= 1.2 s for the whole body; the first chunk must not wait for it.
    assert!(
        t_all - t_first >= std::time::Duration::from_millis(800),
        "first chunk at {t_first:?}, last at {t_all:?}: the body was buffered"
    );
}

#[test]
fn large_request_bodies_are_streamed_to_the_upstream() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut c = o.conn();
    let r = c.request("POST", "blog.home.example", "/upload", &[], &body);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["body_len"], body.len());
    assert_eq!(j["body_sha"], checksum(&body));

    // Chunked upload on the same connection.
    let mut req =
        b"PUT /chunked HTTP/1.1\r\nHost: blog.home.example\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    let mut sent = Vec::new();
    for i in 0..50u8 {
        let piece = vec![i; 10_000];
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(&piece);
        req.extend_from_slice(b"\r\n");
        sent.extend_from_slice(&piece);
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req);
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_len"], sent.len());
    assert_eq!(r.json()["body_sha"], checksum(&sent));
}

#[test]
fn large_response_bodies_pass_through_intact() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let n = 3 * 1024 * 1024;
    let r = o.get("blog.home.example", &format!("/bytes?n={n}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert!(r.body.iter().all(|b| *b == b'x'));
}

#[test]
fn websocket_upgrade_is_passed_through() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: blog.home.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    let (status, headers) = c.read_head();
    assert_eq!(status, 101);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "upgrade" && v.eq_ignore_ascii_case("websocket")));
    // Bytes flow both ways after the upgrade (the origin echoes).
    for msg in [&b"hello"[..], b"\x81\x05world", &[0u8, 1, 2, 255]] {
        c.send(msg);
        assert_eq!(c.read_exact_body(msg.len()), msg);
    }
}

#[test]
fn round_robin_over_several_upstreams() {
    let a = TestOrigin::start("a");
    let b = TestOrigin::start("b");
    let c_ = TestOrigin::start("c");
    let o = Offramp::start(&config(
        "",
        &site(
            "app",
            &["app.home.example"],
            &format!("[{:?}, {:?}, {:?}]", a.url(), b.url(), c_.url()),
            "online",
        ),
    ));
    let mut seen = std::collections::HashMap::new();
    for _ in 0..30 {
        let r = o.get("app.home.example", "/");
        assert_eq!(r.status, 200);
        *seen
            .entry(r.json()["origin"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "every upstream used: {seen:?}");
    for (k, v) in &seen {
        assert_eq!(*v, 10, "even spread, {k}: {seen:?}");
    }
}

#[test]
fn https_upstream() {
    let origin = start_tls_origin("secure");
    let o = Offramp::start(&config(
        "",
        &format!(
            "{}tls_verify = false\n",
            site(
                "nas",
                &["nas.home.example"],
                &up(&origin.https_url()),
                "online"
            )
        ),
    ));
    let r = o.get("nas.home.example", "/tls");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["origin"], "secure");
    assert_eq!(j["headers"]["host"], "nas.home.example");

    // With verification on (the default), a self-signed upstream is refused: 502.
    let o2 = Offramp::start(&config(
        "",
        &site(
            "nas",
            &["nas.home.example"],
            &up(&origin.https_url()),
            "online",
        ),
    ));
    assert_eq!(o2.get("nas.home.example", "/").status, 502);
}

#[test]
fn unreachable_upstream_gives_502_page_linking_to_the_status_page() {
    let dead = dead_port();
    let o = Offramp::start(&config(
        "",
        &format!(
            "{}status_page = \"https://status.example.com/nas\"\n",
            site(
                "nas",
                &["nas.home.example"],
                &up(&format!("http://{dead}")),
                "online"
            )
        ),
    ));
    let mut c = o.conn();
    let r = c.get("nas.home.example", "/");
    assert_eq!(r.status, 502);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(
        r.text().contains("https://status.example.com/nas"),
        "links to the status page: {}",
        r.text()
    );
}

#[test]
fn hanging_upstream_gives_504_after_read_timeout() {
    let hang = hanging_origin();
    let o = Offramp::start(&config(
        "",
        &format!(
            "{}read_timeout = \"1s\"\nconnect_timeout = \"1s\"\n",
            site(
                "slow",
                &["slow.home.example"],
                &up(&format!("http://{hang}")),
                "online"
            )
        ),
    ));
    let start = std::time::Instant::now();
    let r = o.get("slow.home.example", "/");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn upstream_garbage_or_cut_short_is_a_clean_error() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    assert_eq!(o.get("blog.home.example", "/garbage").status, 502);
    // A response cut short after its head: the client must not get a complete-looking
    // body; the connection is closed.
    let mut c = o.conn();
    c.send(b"GET /reset HTTP/1.1\r\nHost: blog.home.example\r\n\r\n");
    let (status, headers) = c.read_head();
    assert_eq!(status, 200);
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1000);
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut c.stream, &mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    assert!(got.len() < len, "body must be cut short, not padded");
    // The proxy is still fine.
    assert_eq!(o.get("blog.home.example", "/").status, 200);
}

#[test]
fn offline_site_redirects_with_path_and_query_and_keeps_the_connection() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    let r = c.get("cloud.home.example", "/remote.php/dav?x=1&y=%20two");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/remote.php/dav?x=1&y=%20two")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(r
        .text()
        .contains("https://status.example.com/remote.php/dav?x=1&amp;y=%20two"));
    assert_ne!(r.header("connection"), Some("close"));
    // Same connection: the next request (offline again, then online) is served.
    assert_eq!(c.get("cloud.home.example", "/").status, 302);
    assert_eq!(c.get("blog.home.example", "/").status, 200);
    // HEAD: headers only.
    let r = c.request("HEAD", "cloud.home.example", "/h", &[], b"");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://status.example.com/h"));
    assert_eq!(c.get("cloud.home.example", "/after-head").status, 302);
    // A POST with a body to an offline site: redirected, and the connection still usable.
    let r = c.request("POST", "cloud.home.example", "/form", &[], &[b'a'; 10_000]);
    assert_eq!(r.status, 302);
    assert_eq!(c.get("blog.home.example", "/").status, 200);
    // The origin never saw a request for the offline site.
    assert_eq!(origin.request_count(), 2);
}

#[test]
fn code_307_and_keep_uri_false_and_per_site_status_page() {
    let origin = TestOrigin::start("o");
    let o = Offramp::start(&config(
        "code = 307\nkeep_uri = false\n",
        &format!(
            "{}{}status_page = \"https://status.example.com/cloud\"\n",
            site(
                "blog",
                &["blog.home.example"],
                &up(&origin.url()),
                "offline"
            ),
            site(
                "cloud",
                &["cloud.home.example"],
                &up(&origin.url()),
                "offline"
            ),
        ),
    ));
    let r = o.get("blog.home.example", "/a/b?c=d");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("https://status.example.com/"));
    let r = o.get("cloud.home.example", "/a/b?c=d");
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/cloud")
    );

    // keep_uri with a per-site page that has a path: the path is appended.
    let o = Offramp::start(&config(
        "",
        &format!(
            "{}status_page = \"https://status.example.com/cloud\"\n",
            site(
                "cloud",
                &["cloud.home.example"],
                &up(&origin.url()),
                "offline"
            ),
        ),
    ));
    let r = o.get("cloud.home.example", "/a/b?c=d");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/cloud/a/b?c=d")
    );
}

#[test]
fn code_503_serves_a_maintenance_page_in_place() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "code = 503\n");
    let mut c = o.conn();
    let r = c.get("cloud.home.example", "/files");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("location"), None);
    assert_eq!(r.header("retry-after"), None, "no --until known");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(
        r.text().contains("https://status.example.com"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("cloud"));
    // Keep-alive kept.
    assert_eq!(c.get("blog.home.example", "/").status, 200);
}

#[test]
fn redirect_target_cannot_be_steered_to_another_host() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    const S: &str = "https://status.example.com";
    // Every target gets its redirect: nothing here is refused (no 400), and each
    // Location is the status page followed by the target, percent-encoded where needed.
    let cases: &[(&[u8], &str)] = &[
        (b"//evil.example/x", "//evil.example/x"),
        (b"///evil.example", "///evil.example"),
        (b"/\\evil.example", "/%5Cevil.example"),
        (b"/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        (b"/%0d%0aSet-Cookie:%20a=b", "/%0d%0aSet-Cookie:%20a=b"),
        (
            b"/%0D%0ALocation:%20http://evil.example",
            "/%0D%0ALocation:%20http://evil.example",
        ),
        (
            b"/x?next=http://evil.example",
            "/x?next=http://evil.example",
        ),
        (b"/@evil.example", "/@evil.example"),
        (b"/..//evil.example", "/..//evil.example"),
        (b"/%E2%80%AE", "/%E2%80%AE"),
        // Raw non-ASCII bytes and a raw CR inside the target.
        (b"/\xc3\xa9t\xc3\xa9", "/%C3%A9t%C3%A9"),
        (b"/a\rb", "/a%0Db"),
    ];
    // GET without a body is answered on the fast path, POST with one by Pingora: both
    // must give the same answer.
    for (target, want) in cases {
        for (method, body) in [("GET", &b""[..]), ("POST", &b"x"[..])] {
            let shown = format!("{method} {}", String::from_utf8_lossy(target));
            let mut req = format!("{method} ").into_bytes();
            req.extend_from_slice(target);
            req.extend_from_slice(b" HTTP/1.1\r\nHost: cloud.home.example\r\n");
            if !body.is_empty() {
                req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(body);
            let mut c = o.conn();
            c.send(&req);
            let r = c.read_response(false);
            assert_eq!(r.status, 302, "{shown}");
            assert_eq!(
                r.header("location"),
                Some(format!("{S}{want}").as_str()),
                "{shown}"
            );
            assert_eq!(r.header("set-cookie"), None, "{shown}");
            assert_eq!(
                r.headers.iter().filter(|(k, _)| k == "location").count(),
                1,
                "{shown}"
            );
        }
    }
    // A fragment is not part of a request target (RFC 9112): the fast path keeps it as
    // an encoded path byte, Pingora drops it. Either way it stays on the status host.
    for (method, body) in [("GET", ""), ("POST", "x")] {
        let mut c = o.conn();
        let r = c.request(
            method,
            "cloud.home.example",
            "/a#frag",
            &[],
            body.as_bytes(),
        );
        assert_eq!(r.status, 302, "{method}");
        let loc = r.header("location").unwrap_or_default();
        assert!(
            [format!("{S}/a%23frag"), format!("{S}/a")].contains(&loc.to_string()),
            "{method} /a#frag → {loc}"
        );
    }
    // Asterisk-form (OPTIONS *) on an offline site.
    let mut c = o.conn();
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: cloud.home.example\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(format!("{S}/*").as_str()));
}

#[test]
fn absolute_form_target_routes_by_its_authority() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let mut c = o.conn();
    c.send(b"GET http://cloud.home.example/p?q=1 HTTP/1.1\r\nHost: cloud.home.example\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/p?q=1")
    );
    // Without a path.
    c.send(b"GET http://cloud.home.example HTTP/1.1\r\nHost: cloud.home.example\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://status.example.com/"));
    // An absolute-form target for an unknown host: 404, never a redirect built from it.
    c.send(b"GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(c.read_response(false).status, 404);
    // Online site via absolute-form: the upstream gets an origin-form target.
    c.send(b"GET http://blog.home.example/abs?a=1 HTTP/1.1\r\nHost: blog.home.example\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["headers"]["host"], "blog.home.example");
    assert_eq!(j["target"], "/abs?a=1");
    // Host differing from the target's authority is ambiguous: refused with 400
    // (stricter than RFC 9112's "use the target", and never a redirect elsewhere).
    let mut c = o.conn();
    c.send(b"GET http://cloud.home.example/p HTTP/1.1\r\nHost: blog.home.example\r\n\r\n");
    assert_eq!(c.read_response(false).status, 400);
    let mut c = o.conn();
    c.send(b"GET http://evil.example/p HTTP/1.1\r\nHost: cloud.home.example\r\n\r\n");
    assert_eq!(c.read_response(false).status, 400);
}

#[test]
fn h2c_is_served_for_online_and_offline_sites() {
    let origin = TestOrigin::start("o");
    let o = two_sites(&origin, "");
    let rs = h2c_requests(
        o.addr(),
        &[
            ("GET", "http://blog.home.example/h2?z=1"),
            ("GET", "http://cloud.home.example/files?a=b"),
            ("GET", "http://nowhere.example/"),
        ],
    );
    assert_eq!(rs[0].status, 200);
    let j: serde_json::Value = serde_json::from_slice(&rs[0].body).expect("json");
    assert_eq!(j["target"], "/h2?z=1");
    assert_eq!(j["headers"]["host"], "blog.home.example");
    assert_eq!(rs[1].status, 302);
    assert_eq!(
        rs[1].headers.get("location").and_then(|v| v.to_str().ok()),
        Some("https://status.example.com/files?a=b")
    );
    assert_eq!(rs[2].status, 404);
}

#[test]
fn check_command_reports_every_error_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        config(
            "",
            &site(
                "blog",
                &["blog.home.example"],
                "\"http://127.0.0.1:9\"",
                "online",
            ),
        ),
    )
    .expect("write");
    let out = cli(&["check", "-c", good.to_str().expect("utf8")]);
    assert_eq!(out.code, Some(0), "{out:?}");

    let bad = dir.path().join("bad.toml");
    let text = "[server]\nhttp = \"127.0.0.1:0\"\nthreds = 2\n\n[maintenance]\nstatus_page = \"https://status.example.com\"\ncode = 301\n\n[[site]]\nname = \"blog\"\nhosts = [\"a.example\"]\nupstream = \"ftp://x\"\n\n[[site]]\nname = \"blog\"\nhosts = [\"a.example\"]\nupstream = \"http://127.0.0.1:1\"\n\n[[site]]\nname = \"empty\"\nhosts = []\nupstream = \"http://127.0.0.1:1\"\n";
    std::fs::write(&bad, text).expect("write");
    let out = cli(&["check", "-c", bad.to_str().expect("utf8")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err = out.stderr;
    for needle in [
        "bad.toml:3",
        "threds",
        "bad.toml:7",
        "code",
        "bad.toml:12",
        "upstream",
        "name",
        "a.example",
        "bad.toml:21: site[3].hosts: needs at least one host name",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // A missing file.
    let out = cli(&["check", "-c", "/nonexistent/offramp.toml"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("/nonexistent/offramp.toml"));
}

#[test]
fn serve_refuses_an_invalid_config_with_a_clear_error() {
    let (code, stderr) = Offramp::start_failing("[server]\nhttp = \"not an address\"\n");
    assert_ne!(code, Some(0));
    assert!(stderr.contains("offramp.toml:2"), "{stderr}");
    assert!(stderr.contains("http"), "{stderr}");
}

#[test]
fn the_shipped_example_config_works() {
    // config/offramp.toml with its fixed ports replaced by free ones, and its control
    // socket and state file (`../run/`, next to the clone's config/ directory) moved
    // into this test's own directory, so runs never share or leak state.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/offramp.toml"))
        .expect("read example config");
    let demo = dead_port();
    let mut text = text;
    for (from, to) in [
        ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
        ("127.0.0.1:8081", demo.to_string()),
        (
            "\"../run/offramp.sock\"",
            "\"run/offramp.sock\"".to_string(),
        ),
        ("\"../run/state.json\"", "\"run/state.json\"".to_string()),
        ("\"../run/offramp.db\"", "\"run/offramp.db\"".to_string()),
    ] {
        assert!(text.contains(from), "the example config has {from}");
        text = text.replace(from, &to);
    }
    assert!(
        !text.contains("../"),
        "nothing outside the test's directory:\n{text}"
    );
    let o = Offramp::start(&text);
    let r = o.get("blog.localhost", "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-demo-origin"), Some("offramp"));
    assert!(r.text().contains("blog.localhost"));
    // The offline site goes to its page on the built-in status page, which works.
    let port = o.addr().port();
    let r = o.get(&format!("cloud.localhost:{port}"), "/files?x=1");
    assert_eq!(r.status, 302);
    let want = format!(
        "http://status.localhost:{port}/maintenance/cloud?from=http%3A%2F%2Fcloud.localhost%3A{port}%2Ffiles%3Fx%3D1"
    );
    assert_eq!(r.header("location"), Some(want.as_str()));
    let page = o.get(
        &format!("status.localhost:{port}"),
        &want[want.find("/maintenance").unwrap_or(0)..],
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("cloud is down for maintenance"));
    let overview = o.get("status.localhost", "/");
    assert_eq!(overview.status, 200);
    assert!(overview.text().contains("Home lab status"));
    // The relative control/state paths resolve next to the config file (their
    // directory created), and the CLI finds the daemon through them.
    let run = o.dir.path().join("run");
    assert!(
        run.join("offramp.sock").exists(),
        "control socket in {run:?}"
    );
    o.cli(&["online", "cloud"]).ok();
    assert!(run.join("state.json").exists(), "state file in {run:?}");
    assert_eq!(o.get("cloud.localhost", "/").status, 200);
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let origin = TestOrigin::start("o");
    let mut o = two_sites(&origin, "");
    // An idle keep-alive connection must not hold the shutdown for the whole grace.
    let mut idle = o.conn();
    assert_eq!(idle.get("blog.home.example", "/").status, 200);
    // A request in flight when SIGTERM arrives completes.
    let addr = o.addr();
    let inflight = std::thread::spawn(move || {
        let mut c = Conn::open(addr);
        c.get("blog.home.example", "/slow?ms=700")
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    let start = std::time::Instant::now();
    assert_eq!(o.stop(), Some(0), "{}", o.log_text());
    assert_eq!(inflight.join().expect("thread").status, 200);
    assert!(
        start.elapsed() < std::time::Duration::from_millis(1900),
        "idle keep-alive held shutdown for {:?}",
        start.elapsed()
    );
    assert!(idle.is_closed(std::time::Duration::from_secs(2)));
    assert!(!o.socket().exists(), "control socket removed on exit");
}
