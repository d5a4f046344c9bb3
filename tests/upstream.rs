//! What upstreams answer, and what clients get for it, through both of offramp's
//! HTTP/1.1 paths: requests without a body (the fast path, `src/fast.rs`) and requests
//! with one (Pingora's proxy). A scripted origin answers each path with exact bytes:
//! informational responses, HEAD, 204/304, close-delimited bodies, `Connection: close`,
//! impossible status codes, ambiguous lengths, and connections closed without an answer
//! (which may be retried for idempotent methods only). Also: requests Pingora refuses
//! while parsing get offramp's 400 page and an access-log line; ACME challenge paths
//! cannot be used to reach anything else of an offline site; one-byte clients that
//! close are forgotten at once.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const STATUS: &str = "https://status.example.com";
const HOST: &str = "app.home.example";
const DOWN: &str = "down.home.example";

/// An origin answering each request target with scripted bytes; records every request
/// head it receives and counts the connections it accepted.
struct Scripted {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    conns: Arc<AtomicUsize>,
}

/// What the origin does for a target.
enum Act {
    /// Writes these bytes and keeps the connection.
    Send(Vec<u8>),
    /// Writes these bytes and closes.
    SendClose(Vec<u8>),
    /// Closes without a byte.
    Drop,
}

fn script(target: &str, method: &str, seen_before: usize) -> Act {
    let ok = |body: &str| {
        Act::Send(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    };
    match target {
        "/early-hints" => Act::Send(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        ),
        "/hints-then-close" => {
            Act::SendClose(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".to_vec())
        }
        // A correct answer to HEAD: the length of the body a GET would get, no body.
        "/head" if method == "HEAD" => Act::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()),
        "/head" => ok("hello"),
        "/no-content" => Act::Send(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        "/not-modified" => {
            Act::Send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n".to_vec())
        }
        "/until-close" => Act::SendClose(b"HTTP/1.1 200 OK\r\n\r\nhello until close".to_vec()),
        "/then-close" => {
            Act::SendClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec())
        }
        "/status-000" => Act::Send(b"HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n".to_vec()),
        "/status-999" => Act::Send(b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n".to_vec()),
        "/plus-length" => Act::Send(b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok".to_vec()),
        "/list-length" => Act::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok".to_vec()),
        "/drop" => Act::Drop,
        // Closed without an answer the first time, as a pooled connection the origin
        // timed out would be; answered on every later try.
        "/drop-first" if seen_before == 0 => Act::Drop,
        _ => ok("ok"),
    }
}

impl Scripted {
    fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("addr");
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let conns = Arc::new(AtomicUsize::new(0));
        let (h2, c2) = (heads.clone(), conns.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                c2.fetch_add(1, Ordering::SeqCst);
                let heads = h2.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                    serve_scripted(s, &heads);
                });
            }
        });
        Scripted { addr, heads, conns }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Requests received whose request line is `METHOD TARGET ...`.
    fn count(&self, method: &str, target: &str) -> usize {
        let line = format!("{method} {target} ");
        self.heads().iter().filter(|h| h.starts_with(&line)).count()
    }
}

fn serve_scripted(mut s: TcpStream, heads: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let body_len = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < end + body_len {
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + body_len);
        let mut words = head.split(' ');
        let method = words.next().unwrap_or_default().to_string();
        let target = words.next().unwrap_or_default().to_string();
        let seen_before = {
            let mut h = heads.lock().unwrap();
            let line = format!("{method} {target} ");
            let n = h.iter().filter(|x| x.starts_with(&line)).count();
            h.push(head.clone());
            n
        };
        match script(&target, &method, seen_before) {
            Act::Send(bytes) => {
                if s.write_all(&bytes).is_err() {
                    return;
                }
            }
            Act::SendClose(bytes) => {
                let _ = s.write_all(&bytes);
                return;
            }
            Act::Drop => return,
        }
    }
}

fn config(origin: &str, server_extra: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"{STATUS}\"\n\n\
         [[site]]\nname = \"app\"\nhosts = [\"{HOST}\"]\nupstream = \"{origin}\"\nread_timeout = \"5s\"\n\n\
         [[site]]\nname = \"down\"\nhosts = [\"{DOWN}\"]\nupstream = \"{origin}\"\nstate = \"offline\"\n",
        server_section(&format!("threads = 1\n{server_extra}"))
    )
    // `server_section` already sets threads = 2; the later key would be a duplicate.
    .replacen("threads = 2\n", "", 1)
}

/// A request through the fast path (no body) and one through Pingora (a body), each on
/// a connection of its own.
fn both_paths(o: &Offramp, target: &str) -> [Response; 2] {
    let fast = o.conn().request("GET", HOST, target, &[], b"");
    let pingora = o.conn().request("POST", HOST, target, &[], b"body");
    [fast, pingora]
}

#[test]
fn informational_responses_are_forwarded_before_the_final_one() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    for method in ["GET", "POST"] {
        let mut c = o.conn();
        let body: &[u8] = if method == "POST" { b"body" } else { b"" };
        let mut req = format!("{method} /early-hints HTTP/1.1\r\nHost: {HOST}\r\n");
        if method == "POST" {
            req.push_str("Content-Length: 4\r\n");
        }
        req.push_str("\r\n");
        c.send(&[req.as_bytes(), body].concat());
        let (status, headers) = c.read_head();
        assert_eq!(status, 103, "{method}: the 103 first");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "link" && v.contains("a.css")),
            "{method}: the 103's Link header: {headers:?}"
        );
        let r = c.read_response(false);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{method}");
        // The connection is still usable.
        assert_eq!(
            c.get(HOST, "/plain").status,
            200,
            "{method}: keep-alive after 103"
        );
    }
}

#[test]
fn an_upstream_closing_after_a_103_is_not_asked_again() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    // Pool a connection first, so the close would look retryable if the 103 were
    // forgotten.
    assert_eq!(c.get(HOST, "/warm").status, 200);
    c.send(format!("GET /hints-then-close HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
    let (status, _) = c.read_head();
    assert_eq!(status, 103);
    // The final answer can only be a cut connection: the 103 went out already.
    assert!(c.is_closed(WAIT), "the client connection is closed");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        origin.count("GET", "/hints-then-close"),
        1,
        "{:?}",
        origin.heads()
    );
}

#[test]
fn head_204_and_304_answers_carry_no_body_and_keep_the_connection() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    let r = c.request("HEAD", HOST, "/head", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("5"),
        "HEAD keeps the length"
    );
    let r = c.get(HOST, "/head");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "hello"),
        "the next answer is intact"
    );
    let r = c.get(HOST, "/no-content");
    assert_eq!(r.status, 204);
    let r = c.get(HOST, "/not-modified");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("\"x\""));
    // Had any body bytes been invented for the 204/304, this answer would be garbled.
    let r = c.get(HOST, "/plain");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[test]
fn a_body_until_close_is_passed_and_the_client_told_the_connection_ends() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    for method in ["GET", "POST"] {
        let mut c = o.conn();
        let r = if method == "GET" {
            c.get(HOST, "/until-close")
        } else {
            c.request("POST", HOST, "/until-close", &[], b"body")
        };
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.text(), "hello until close", "{method}");
    }
}

#[test]
fn connection_close_from_the_upstream_keeps_the_client_and_is_not_reused() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    let r = c.get(HOST, "/then-close");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(
        r.header("connection"),
        Some("keep-alive"),
        "the upstream's close is hop-by-hop"
    );
    let before = origin.conns.load(Ordering::SeqCst);
    let r = c.get(HOST, "/plain");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "same client connection"
    );
    assert_eq!(
        origin.conns.load(Ordering::SeqCst),
        before + 1,
        "a closed upstream connection is never reused"
    );
}

#[test]
fn impossible_status_codes_and_ambiguous_lengths_are_bad_gateways() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    for target in ["/status-000", "/status-999", "/plus-length"] {
        for (path, r) in ["fast", "pingora"].iter().zip(both_paths(&o, target)) {
            assert_eq!(r.status, 502, "{target} via the {path} path: {}", r.text());
        }
    }
    // `2, 2` is one length said twice (RFC 9110 section 8.6): the client gets one value.
    let r = o.conn().get(HOST, "/list-length");
    if r.status == 200 {
        assert_eq!(r.header("content-length"), Some("2"));
        assert_eq!(r.text(), "ok");
    } else {
        assert_eq!(
            r.status, 502,
            "either normalised or refused, never passed as a list"
        );
    }
}

#[test]
fn a_repeated_request_content_length_reaches_the_upstream_as_one_value() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    c.send(
        format!("POST /listed HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4, 4\r\n\r\nbody")
            .as_bytes(),
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    let head = origin
        .heads()
        .into_iter()
        .find(|h| h.starts_with("POST /listed "))
        .expect("the request reached the origin");
    let lengths: Vec<&str> = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(lengths, ["4"], "{head}");
}

#[test]
fn only_idempotent_requests_are_sent_again_after_a_pooled_connection_closes() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    assert_eq!(c.get(HOST, "/warm").status, 200);
    // A pooled connection that closes without answering: GET is safe to send again.
    let r = c.get(HOST, "/drop-first");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(
        origin.count("GET", "/drop-first"),
        2,
        "{:?}",
        origin.heads()
    );
    // POST (even with an empty body, which the fast path takes) is not.
    let mut c = o.conn();
    assert_eq!(c.get(HOST, "/warm").status, 200);
    let r = c.request("POST", HOST, "/drop", &[], b"");
    assert_eq!(r.status, 502);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        origin.count("POST", "/drop"),
        1,
        "sent once: {:?}",
        origin.heads()
    );
}

#[test]
fn requests_refused_while_parsing_get_the_400_page_and_a_log_line() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let cases: [(&str, String); 4] = [
        (
            "two Host fields",
            format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: {HOST}\r\n\r\n"),
        ),
        (
            "Host differs from the absolute-form authority",
            format!("GET http://{DOWN}/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
        ),
        (
            "user info in Host",
            format!("GET / HTTP/1.1\r\nHost: me@{HOST}\r\n\r\n"),
        ),
        (
            "a header line without a colon",
            format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nnonsense\r\n\r\n"),
        ),
    ];
    for (what, req) in &cases {
        let mut c = o.conn();
        c.send(req.as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 400, "{what}");
        assert!(
            r.text().contains("<html"),
            "{what}: offramp's page, not an empty answer: {r:?}"
        );
        assert_eq!(r.header("server"), None, "{what}: not Pingora's own answer");
        assert_eq!(r.header("connection"), Some("close"), "{what}");
        assert!(c.is_closed(WAIT), "{what}: closed after the answer");
    }
    let refused = |l: &str| {
        l.contains("offramp::access") && l.contains("status=400") && l.contains("InvalidHTTPHeader")
    };
    wait_for(WAIT, "one access line per refused request", || {
        (o.count_log(refused) >= cases.len()).then_some(())
    });
    assert!(origin.heads().is_empty(), "nothing reached the upstream");
}

#[test]
fn acme_challenges_pass_an_offline_site_but_nothing_else_does() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut c = o.conn();
    let r = c.get(DOWN, "/.well-known/acme-challenge/Ab3_x-Y9");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "a challenge token is proxied"
    );
    for target in [
        "/.well-known/acme-challenge/../../admin",
        "/.well-known/acme-challenge/%2e%2e/admin",
        "/.well-known/acme-challenge/tok/more",
        "/.well-known/acme-challenge/tok?x=1",
        "/.well-known/acme-challenge/",
        "/.well-known/other",
    ] {
        let r = c.get(DOWN, target);
        assert_eq!(
            r.status, 302,
            "{target} is an ordinary request to an offline site"
        );
        assert!(
            r.header("location").is_some_and(|l| l.starts_with(STATUS)),
            "{target}: {:?}",
            r.header("location")
        );
    }
    assert_eq!(
        origin.heads().len(),
        1,
        "only the token went upstream: {:?}",
        origin.heads()
    );
}

#[test]
fn a_client_that_sends_one_byte_and_leaves_is_forgotten_at_once() {
    let origin = Scripted::start();
    let o = Offramp::start(&config(&origin.url(), "admin = \"127.0.0.1:0\"\n"));
    let admin = o.admin.expect("admin listener");
    let open = || {
        let m = Conn::open(admin).get("localhost", "/metrics").text();
        m.lines()
            .find_map(|l| l.strip_prefix("offramp_open_connections "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("offramp_open_connections")
    };
    // "P" could begin the HTTP/2 preface: offramp waits for more, but must notice the
    // close (it used to hold each such connection, and poll it, for 30 s).
    for _ in 0..100 {
        let mut s = TcpStream::connect(o.addr()).expect("connect");
        s.write_all(b"P").expect("write");
    }
    let start = Instant::now();
    wait_for(
        Duration::from_secs(5),
        "the closed connections to be dropped",
        || (open() == 0.0).then_some(()),
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // And one that stays, mid-preface, is closed once a request head would have timed out.
    let mut s = TcpStream::connect(o.addr()).expect("connect");
    s.write_all(b"PRI * HTTP/2.0\r\n").expect("write");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let t = Instant::now();
    let mut b = [0u8; 64];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = t.elapsed();
    assert!(
        waited > Duration::from_secs(8) && waited < Duration::from_secs(13),
        "closed after the 10 s head limit, not {waited:?}"
    );
    assert_eq!(o.conn().get(HOST, "/plain").status, 200, "still serving");
}
