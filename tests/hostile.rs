//! Hostile clients against the real daemon: request smuggling and parser edge cases,
//! redirect targets built from hostile paths, slow and idle clients, too many
//! connections, huge bodies to an offline site, and a flooded control socket. Every
//! test asserts what a client sees and, where it matters, exactly what the upstream
//! received (a recording origin that parses strictly, so anything a lenient parser
//! could misread shows up).
//!
//! Covered elsewhere and not repeated here: missing/duplicate/malformed `Host`, an
//! absolute-form target whose authority differs from `Host` (tests/proxy.rs
//! `unknown_host_404_missing_or_malformed_host_400`,
//! `absolute_form_target_routes_by_its_authority`), `//evil`, backslashes and encoded
//! CR/LF in offline redirects (tests/proxy.rs
//! `redirect_target_cannot_be_steered_to_another_host`), garbage and long lines on the
//! control socket and its 64-client limit (tests/control.rs); what upstreams answer
//! (1xx, HEAD, 204/304, impossible statuses, retries), the 400 page for requests refused
//! while parsing, ACME paths and one-byte clients (tests/upstream.rs).

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const STATUS: &str = "https://status.example.com";
const ONLINE: &str = "blog.home.example";
const OFFLINE: &str = "cloud.home.example";

// ---------------------------------------------------------------------------------
// A strict, recording origin
// ---------------------------------------------------------------------------------

/// One request as the recording origin received it.
#[derive(Debug, Clone)]
struct Seen {
    head: Vec<u8>,
    body: Vec<u8>,
    /// Framed completely by the strict rules below.
    complete: bool,
    /// Both Content-Length and Transfer-Encoding, or differing Content-Lengths.
    ambiguous: bool,
}

impl Seen {
    fn request_line(&self) -> String {
        let end = find(&self.head, b"\r\n").unwrap_or(self.head.len());
        String::from_utf8_lossy(&self.head[..end]).into_owned()
    }

    fn header(&self, name: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.head)
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A line feed not preceded by a carriage return.
    fn has_bare_lf(&self) -> bool {
        self.head
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || self.head[i - 1] != b'\r'))
    }
}

/// An HTTP/1.1 origin that records every request it receives and frames bodies by the
/// letter of RFC 9112: chunk sizes are bare hex, every line ends in CRLF, and a message
/// with both framings is recorded as ambiguous. Answers `200` with the request target
/// as its body and `X-Raw-Origin: yes`.
struct RawOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RawOrigin {
    fn start() -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let sink = seen.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                    let _ = raw_origin_conn(s, &sink);
                });
            }
        });
        RawOrigin { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose request line contains `marker`.
    fn with(&self, marker: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.request_line().contains(marker))
            .collect()
    }
}

struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    /// At least `n` bytes buffered; false on EOF or error.
    fn want(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 16 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        true
    }

    fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            let have = self.buf.len();
            if !self.want(have + 1) {
                return None;
            }
        }
    }
}

fn raw_origin_conn(s: TcpStream, sink: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    let mut r = Reader {
        s: s.try_clone()?,
        buf: Vec::new(),
    };
    let mut out = s;
    loop {
        let end = loop {
            if let Some(i) = find(&r.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let have = r.buf.len();
            if !r.want(have + 1) {
                if !r.buf.is_empty() {
                    sink.lock().unwrap().push(Seen {
                        head: std::mem::take(&mut r.buf),
                        body: Vec::new(),
                        complete: false,
                        ambiguous: false,
                    });
                }
                return Ok(());
            }
        };
        let head: Vec<u8> = r.buf.drain(..end).collect();
        let mut seen = Seen {
            head,
            body: Vec::new(),
            complete: false,
            ambiguous: false,
        };
        let te = seen.header("transfer-encoding");
        let cl = seen.header("content-length");
        seen.ambiguous = (!te.is_empty() && !cl.is_empty()) || cl.windows(2).any(|w| w[0] != w[1]);
        let chunked = te
            .last()
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        let ok = if chunked {
            read_chunked(&mut r, &mut seen.body)
        } else if let Some(n) = cl.first() {
            match n.parse::<usize>() {
                Ok(n) if r.want(n) => {
                    seen.body = r.buf.drain(..n).collect();
                    true
                }
                _ => false,
            }
        } else {
            te.is_empty()
        };
        seen.complete = ok;
        let target = seen
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_string();
        sink.lock().unwrap().push(seen);
        if !ok {
            return Ok(());
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Raw-Origin: yes\r\n\r\n{target}",
            target.len()
        );
        out.write_all(resp.as_bytes())?;
    }
}

fn read_chunked(r: &mut Reader, body: &mut Vec<u8>) -> bool {
    loop {
        let Some(line) = r.line() else { return false };
        let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        let Ok(n) = usize::from_str_radix(&String::from_utf8_lossy(size), 16) else {
            return false;
        };
        if n == 0 {
            // Trailer fields, then the empty line.
            loop {
                match r.line() {
                    Some(l) if l.is_empty() => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        }
        if !r.want(n + 2) || &r.buf[n..n + 2] != b"\r\n" {
            return false;
        }
        body.extend(r.buf.drain(..n));
        r.buf.drain(..2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// A client that reports everything, including "no answer" and "closed"
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn came_from_origin(&self) -> bool {
        self.header("x-raw-origin") == Some("yes")
    }
}

/// Complete responses at the start of `buf` (1xx skipped); the rest stays in `buf`.
fn parse_responses(buf: &mut Vec<u8>, head_only: bool) -> Vec<Resp> {
    let mut out = Vec::new();
    while let Some(i) = find(buf, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..i]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len = if head_only || (100..200).contains(&status) {
            0
        } else {
            headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        if buf.len() < i + 4 + len {
            break;
        }
        let body = buf[i + 4..i + 4 + len].to_vec();
        buf.drain(..i + 4 + len);
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    out
}

/// What a client got for one request (or one burst of bytes).
#[derive(Debug)]
struct Outcome {
    responses: Vec<Resp>,
    /// The daemon closed the connection after them.
    closed: bool,
    /// Bytes that are not a complete response.
    rest: Vec<u8>,
}

/// Sends `bytes` on `s` and reads what comes back: the first response (or the close),
/// then more for `linger` (a second response would be a request parsed out of the
/// first one's bytes), or until the close when `until_close`.
fn exchange(s: &mut TcpStream, bytes: &[u8], until_close: bool) -> Outcome {
    let linger = Duration::from_millis(300);
    let deadline = Instant::now() + WAIT;
    if let Err(e) = s.write_all(bytes) {
        // The daemon may refuse and close before everything was written.
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "write: {e}"
        );
    }
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    let mut closed = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            assert!(
                !responses.is_empty(),
                "no answer within {WAIT:?}; got {:?}",
                String::from_utf8_lossy(&buf)
            );
            break;
        }
        let wait = if responses.is_empty() || until_close {
            deadline - now
        } else {
            linger
        };
        s.set_read_timeout(Some(wait)).expect("timeout");
        let mut chunk = [0u8; 16 * 1024];
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                responses.extend(parse_responses(&mut buf, false));
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !responses.is_empty() && !until_close {
                    break;
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    Outcome {
        responses,
        closed,
        rest: buf,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    s
}

fn config(origin_url: &str, maintenance: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"{STATUS}\"\n{maintenance}\n\
         [[site]]\nname = \"blog\"\nhosts = [\"{ONLINE}\"]\nupstream = \"{origin_url}\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"{OFFLINE}\"]\nupstream = \"{origin_url}\"\nstate = \"offline\"\n\
         status_page = \"{STATUS}/cloud\"\n",
        server_section("")
    )
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Raises this test process's soft open-files limit to its hard limit; the limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    // rlim_t is not u64 on every platform.
    #[allow(clippy::unnecessary_cast)]
    let limit = lim.rlim_cur as u64;
    limit
}

/// Keeps sending normal requests (online and offline, new and kept-alive connections)
/// until `stop`; every one must get its proper answer. Returns (requests, failures).
fn normal_traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut n = 0usize;
        let mut kept = Conn::open(addr);
        while !stop.load(Ordering::Acquire) {
            n += 1;
            let (host, want) = if n % 2 == 0 {
                (ONLINE, 200)
            } else {
                (OFFLINE, 302)
            };
            let r = if n % 3 == 0 {
                kept.get(host, "/normal")
            } else {
                Conn::open(addr).get(host, "/normal")
            };
            if r.status != want {
                failures.push(format!("{host}: {} {}", r.status, r.text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(n > 10, "the traffic loop ran ({n} requests)");
        failures
    })
}

// ---------------------------------------------------------------------------------
// Smuggling and parsing
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused with this status; the request never reaches the upstream complete.
    Refused(u16),
    /// Proxied: the upstream gets exactly one complete, unambiguous request.
    Forwarded,
    /// Either of the two.
    Either(u16),
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
    /// The daemon must close the connection after its answer.
    close: bool,
}

fn case(name: &'static str, text: &str, expect: Expect, close: bool) -> Case {
    Case {
        name,
        bytes: text.as_bytes().to_vec(),
        expect,
        close,
    }
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: blog.home.example\r\n\r\n";

fn cases() -> Vec<Case> {
    use Expect::*;
    let h = format!("Host: {ONLINE}\r\n");
    let post = |headers: &str, body: &str| format!("POST {{M}} HTTP/1.1\r\n{h}{headers}\r\n{body}");
    let chunked = "Transfer-Encoding: chunked\r\n";
    let mut v = vec![
        // Both framings: Transfer-Encoding wins, the connection is closed after.
        case(
            "cl-then-te",
            &post(
                &format!("Content-Length: 6\r\n{chunked}"),
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
            Either(400),
            true,
        ),
        case(
            "te-then-cl",
            &post(
                &format!("{chunked}Content-Length: 6\r\n"),
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
            Either(400),
            true,
        ),
        case(
            "cl-covers-the-second-request",
            &post(
                &format!("Content-Length: {}\r\n{chunked}", 5 + SMUGGLED.len()),
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
            Either(400),
            true,
        ),
        // Content-Length that cannot be trusted.
        case(
            "two-differing-content-lengths",
            &post(
                "Content-Length: 3\r\nContent-Length: 40\r\n",
                &format!("abc{SMUGGLED}"),
            ),
            Refused(400),
            true,
        ),
        case(
            "two-equal-content-lengths",
            &post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"),
            Either(400),
            false,
        ),
        case(
            "content-length-list",
            &post("Content-Length: 3, 40\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-plus",
            &post("Content-Length: +3\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-negative",
            &post("Content-Length: -1\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-hex",
            &post("Content-Length: 0x3\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-overflow",
            &post("Content-Length: 18446744073709551616\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-two-numbers",
            &post("Content-Length: 3 4\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "content-length-empty",
            &post("Content-Length: \r\n", "abc"),
            Refused(400),
            true,
        ),
        // Transfer-Encoding that is not plainly chunked.
        case(
            "te-xchunked",
            &post("Transfer-Encoding: xchunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "te-chunked-not-last",
            &post(
                "Transfer-Encoding: chunked, gzip\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            Refused(400),
            true,
        ),
        case(
            "te-identity",
            &post("Transfer-Encoding: identity\r\n", "abc"),
            Refused(400),
            true,
        ),
        case(
            "te-space-before-colon",
            &post("Transfer-Encoding : chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "te-vertical-tab",
            &post(
                "Transfer-Encoding: chunked\x0b\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            Refused(400),
            true,
        ),
        case(
            "te-in-http-1.0",
            &format!("POST {{M}} HTTP/1.0\r\n{h}{chunked}\r\n3\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "te-twice",
            &post(&format!("{chunked}{chunked}"), "3\r\nabc\r\n0\r\n\r\n"),
            Either(400),
            false,
        ),
        case(
            "te-upper-case",
            &post("Transfer-Encoding: CHUNKED\r\n", "3\r\nabc\r\n0\r\n\r\n"),
            Forwarded,
            false,
        ),
        // Invalid chunk framing.
        case(
            "chunk-size-not-hex",
            &post(chunked, &format!("zz\r\nabc\r\n0\r\n\r\n{SMUGGLED}")),
            Refused(400),
            true,
        ),
        case(
            "chunk-size-negative",
            &post(chunked, "-5\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "chunk-size-overflow",
            &post(
                chunked,
                &format!("ffffffffffffffffff\r\nabc\r\n0\r\n\r\n{SMUGGLED}"),
            ),
            Refused(400),
            true,
        ),
        case(
            "chunk-size-0x",
            &post(chunked, "0x3\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "chunk-size-leading-space",
            &post(chunked, " 3\r\nabc\r\n0\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "chunk-data-longer-than-size",
            &post(chunked, &format!("3\r\nabcdef\r\n0\r\n\r\n{SMUGGLED}")),
            Refused(400),
            true,
        ),
        case(
            "chunk-extension",
            &post(chunked, "3;a=b\r\nabc\r\n0\r\n\r\n"),
            Forwarded,
            false,
        ),
        case(
            "chunk-trailer",
            &post(chunked, "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"),
            Forwarded,
            false,
        ),
        // Header syntax.
        case(
            "obs-fold",
            &format!("GET {{M}} HTTP/1.1\r\n{h}X-A: a\r\n b\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "obs-fold-hiding-te",
            &post(
                "X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                "abc",
            ),
            Refused(400),
            true,
        ),
        case(
            "first-header-folded",
            &format!("GET {{M}} HTTP/1.1\r\n {h}\r\n"),
            Refused(400),
            true,
        ),
        // RFC 9112 section 2.2 lets a recipient accept a bare LF; what goes upstream is
        // then rewritten with CRLF (checked for every request the origin saw).
        case(
            "bare-lf",
            &format!("GET {{M}} HTTP/1.1\n{h}\n").replace("\r\n", "\n"),
            Either(400),
            false,
        ),
        case(
            "bare-lf-mixed",
            &format!("GET {{M}} HTTP/1.1\r\nHost: {ONLINE}\nX-B: 1\r\n\r\n"),
            Either(400),
            false,
        ),
        case(
            "bare-cr",
            &format!("GET {{M}} HTTP/1.1\r\n{h}X-A: a\rX-B: b\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "nul-in-value",
            &format!("GET {{M}} HTTP/1.1\r\n{h}X-A: a\0b\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "space-before-colon",
            &format!("GET {{M}} HTTP/1.1\r\n{h}X-A : a\r\n\r\n"),
            Refused(400),
            true,
        ),
        case(
            "bad-name",
            &format!("GET {{M}} HTTP/1.1\r\n{h}X(A): a\r\n\r\n"),
            Refused(400),
            true,
        ),
        case("http-0.9", "GET {M}\r\n\r\n", Refused(400), true),
        case(
            "unknown-version",
            &format!("GET {{M}} HTTP/1.7\r\n{h}\r\n"),
            Refused(400),
            true,
        ),
        case(
            "connect",
            &format!("CONNECT {ONLINE}:443 HTTP/1.1\r\n{h}X-M: {{M}}\r\n\r\n"),
            Refused(405),
            true,
        ),
        // Size limits (documented in SECURITY.md).
        case(
            "target-over-8-KiB",
            &format!("GET {{M}}/{} HTTP/1.1\r\n{h}\r\n", "a".repeat(9 * 1024)),
            Refused(414),
            false,
        ),
        case(
            "head-over-64-KiB",
            &format!(
                "GET {{M}} HTTP/1.1\r\n{h}X-Big: {}\r\n\r\n",
                "a".repeat(70 * 1024)
            ),
            Refused(431),
            true,
        ),
        case(
            "257-header-fields",
            &format!("GET {{M}} HTTP/1.1\r\n{h}{}\r\n", "X-A: b\r\n".repeat(257)),
            Refused(400),
            true,
        ),
        case(
            "head-just-under-the-limits",
            &format!(
                "GET {{M}}/{} HTTP/1.1\r\n{h}X-Big: {}\r\n\r\n",
                "a".repeat(7 * 1024),
                "b".repeat(50 * 1024)
            ),
            Forwarded,
            false,
        ),
        // The authority of an absolute-form target.
        case(
            "absolute-form-with-userinfo",
            &format!("GET http://evil.example@{ONLINE}{{M}} HTTP/1.1\r\n{h}\r\n"),
            Refused(400),
            true,
        ),
        case(
            "absolute-form-port-not-in-host",
            &format!("GET http://{ONLINE}:80{{M}} HTTP/1.1\r\n{h}\r\n"),
            Refused(400),
            true,
        ),
        // A body is a body, whatever it looks like, and the fast path must not mistake
        // a GET with a body for one without.
        case(
            "get-with-a-body-that-looks-like-a-request",
            &format!(
                "GET {{M}} HTTP/1.1\r\n{h}Content-Length: {}\r\n\r\n{SMUGGLED}",
                SMUGGLED.len()
            ),
            Forwarded,
            false,
        ),
        case(
            "get-with-a-chunked-body",
            &format!(
                "GET {{M}} HTTP/1.1\r\n{h}{chunked}\r\n{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n",
                SMUGGLED.len()
            ),
            Forwarded,
            false,
        ),
    ];
    // Raw non-UTF-8 bytes in a header value are passed or refused, never split on.
    v.push(Case {
        name: "non-ascii-header-value",
        bytes: [
            format!("GET {{M}} HTTP/1.1\r\n{h}X-A: ").as_bytes(),
            b"\xff\xfe\x80",
            b"\r\n\r\n",
        ]
        .concat(),
        expect: Either(400),
        close: false,
    });
    v
}

fn check_case(origin: &RawOrigin, c: &Case, marker: &str, got: &Outcome) {
    let name = format!(
        "{marker}: {:?}",
        String::from_utf8_lossy(&c.bytes[..c.bytes.len().min(200)])
    );
    assert!(
        got.responses.len() <= 1,
        "{name}: one request, {} responses: {:?}",
        got.responses.len(),
        got.responses
    );
    let r = got.responses.first().unwrap_or_else(|| {
        panic!(
            "{name}: no response (closed: {}, rest {:?})",
            got.closed, got.rest
        )
    });
    let seen = origin.with(marker);
    let complete: Vec<&Seen> = seen.iter().filter(|s| s.complete).collect();
    let forwarded = r.came_from_origin();
    match (c.expect, forwarded) {
        (Expect::Refused(code), _) | (Expect::Either(code), false) => {
            assert_eq!(r.status, code, "{name}: {r:?}");
            assert!(!forwarded, "{name}");
            assert!(
                complete.is_empty(),
                "{name}: reached the upstream: {complete:?}"
            );
        }
        (Expect::Forwarded, _) | (Expect::Either(_), true) => {
            assert_eq!(r.status, 200, "{name}: {r:?}");
            assert!(forwarded, "{name}: {r:?}");
            assert_eq!(complete.len(), 1, "{name}: upstream got {seen:?}");
        }
    }
    if c.close {
        assert!(
            got.closed,
            "{name}: the connection must be closed after the answer"
        );
    }
}

#[test]
fn smuggling_and_malformed_requests_never_reach_the_upstream_as_more_than_they_are() {
    let origin = RawOrigin::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let addr = o.addr();
    let cases = Arc::new(cases());
    // Each case twice: on a fresh connection, and after a clean request on the same
    // keep-alive connection (the second request of a connection is parsed differently).
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (cases, next) = (cases.clone(), next.clone());
            let origin_seen = origin.seen.clone();
            let origin_addr = origin.addr;
            std::thread::spawn(move || {
                let origin = RawOrigin {
                    addr: origin_addr,
                    seen: origin_seen,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = cases.get(i / 2) else { break };
                    let kept = i % 2 == 1;
                    let marker = format!("/m-{}-{}", c.name, if kept { "kept" } else { "fresh" });
                    let bytes = String::from_utf8_lossy(&c.bytes).contains("{M}");
                    assert!(bytes, "{}: no {{M}} marker", c.name);
                    let text = replace_bytes(&c.bytes, b"{M}", marker.as_bytes());
                    let mut s = connect(addr);
                    if kept {
                        let pre = format!("GET /prelude HTTP/1.1\r\nHost: {ONLINE}\r\n\r\n");
                        let first = exchange(&mut s, pre.as_bytes(), false);
                        assert_eq!(first.responses.len(), 1, "{marker}: {first:?}");
                        assert_eq!(first.responses[0].status, 200, "{marker}");
                        assert!(!first.closed, "{marker}: keep-alive");
                    }
                    let got = exchange(&mut s, &text, c.close);
                    check_case(&origin, c, &marker, &got);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a case failed");
    }
    // Whatever the case, nothing was smuggled and the upstream never got anything a
    // parser could read two ways.
    for s in origin.seen() {
        assert!(!s.request_line().contains("/smuggled "), "smuggled: {s:?}");
        assert!(!s.ambiguous, "ambiguous framing sent upstream: {s:?}");
        assert!(!s.has_bare_lf(), "bare LF sent upstream: {s:?}");
        assert!(
            s.header("transfer-encoding").is_empty() || s.header("content-length").is_empty(),
            "{s:?}"
        );
    }
    // The body that looked like a request arrived as a body.
    let g = origin.with("/m-get-with-a-body-that-looks-like-a-request-fresh");
    assert_eq!(g[0].body, SMUGGLED.as_bytes());
    let g = origin.with("/m-get-with-a-chunked-body-fresh");
    assert_eq!(g[0].body, SMUGGLED.as_bytes());
    // The daemon is fine.
    assert_eq!(o.get(ONLINE, "/after").status, 200);
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + to.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn pipelined_requests_are_answered_in_order_or_the_connection_closed() {
    let origin = RawOrigin::start();
    let o = Offramp::start(&config(&origin.url(), ""));
    let mut s = connect(o.addr());
    let burst = format!(
        "GET /pipe-1 HTTP/1.1\r\nHost: {ONLINE}\r\n\r\nGET /pipe-2 HTTP/1.1\r\nHost: {OFFLINE}\r\n\r\nGET /pipe-3 HTTP/1.1\r\nHost: {ONLINE}\r\n\r\n"
    );
    let mut got = exchange(&mut s, burst.as_bytes(), false);
    if got.responses.len() < 3 && !got.closed {
        got.closed = closed_within(&mut s, WAIT);
    }
    assert!(!got.responses.is_empty(), "{got:?}");
    assert_eq!(got.responses[0].body, b"/pipe-1");
    if let Some(r) = got.responses.get(1) {
        assert_eq!(r.status, 302, "second answer is the offline site's: {r:?}");
        assert_eq!(
            r.header("location"),
            Some(&*format!("{STATUS}/cloud/pipe-2"))
        );
    }
    if let Some(r) = got.responses.get(2) {
        assert_eq!(r.body, b"/pipe-3");
    }
    // Never answered out of order, never sent upstream for the offline site.
    assert!(origin.with("/pipe-2").is_empty());
    assert!(got.closed || got.responses.len() == 3, "{got:?}");
}

/// Host part of an absolute URL.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn offline_redirects_always_point_at_the_configured_status_page() {
    let origin = RawOrigin::start();
    for maintenance in ["", "code = 307\n"] {
        let o = Offramp::start(&config(&origin.url(), maintenance));
        let want_status = if maintenance.is_empty() { 302 } else { 307 };
        let prefix = format!("{STATUS}/cloud/");
        let mut targets: Vec<Vec<u8>> = [
            "/%0d%0aLocation:%20https://evil.example/",
            "/%0D%0A%0D%0A<script>alert(1)</script>",
            "/a?next=%0d%0aSet-Cookie:%20s=1",
            "/%00/%2e%2e/%2f%2fevil.example",
            "/a\tb",
            "//evil.example/%0d%0a",
            "/%E2%80%A8%E2%80%A9",
            "/'\"><img src=x onerror=alert(1)>",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        targets.push(b"/\xc3\xa9t\xc3\xa9/\xe2\x80\xae".to_vec());
        targets.push(b"/\xff\xfe".to_vec());
        targets.push(format!("http://{OFFLINE}/%0d%0aX-Evil:%201").into_bytes());
        targets.push(format!("http://{OFFLINE}//evil.example").into_bytes());
        targets.push(format!("http://{OFFLINE}").into_bytes());
        for method in ["GET", "HEAD", "POST"] {
            // A kept-alive connection, so later requests take the paths of a reused one.
            let mut s = connect(o.addr());
            for t in &targets {
                let mut req = format!("{method} ").into_bytes();
                req.extend_from_slice(t);
                req.extend_from_slice(
                    format!(" HTTP/1.1\r\nHost: {OFFLINE}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
                if method == "HEAD" {
                    // No body to frame by: one connection per request.
                    let mut s = connect(o.addr());
                    s.write_all(&req).expect("write");
                    let mut buf = Vec::new();
                    let rs = loop {
                        let mut chunk = [0u8; 8192];
                        s.set_read_timeout(Some(WAIT)).unwrap();
                        let n = s.read(&mut chunk).expect("read");
                        assert!(n > 0, "closed");
                        buf.extend_from_slice(&chunk[..n]);
                        let rs = parse_responses(&mut buf, true);
                        if !rs.is_empty() {
                            break rs;
                        }
                    };
                    check_location(&rs[0], want_status, &prefix, t);
                    continue;
                }
                let got = exchange(&mut s, &req, false);
                assert_eq!(
                    got.responses.len(),
                    1,
                    "{:?}: {got:?}",
                    String::from_utf8_lossy(t)
                );
                let r = &got.responses[0];
                check_location(r, want_status, &prefix, t);
                if r.status != 400 {
                    let body = String::from_utf8_lossy(&r.body);
                    assert!(
                        !body.contains("<script") && !body.contains("<img"),
                        "{body}"
                    );
                }
                if got.closed {
                    s = connect(o.addr());
                }
            }
        }
        // Over h2c too.
        let rs = h2c_requests(
            o.addr(),
            &[
                ("GET", &format!("http://{OFFLINE}/%0d%0aX:%201?%0a")),
                ("GET", &format!("http://{OFFLINE}//evil.example")),
            ],
        );
        for r in rs {
            let loc = r
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(loc.starts_with(&prefix), "h2c: {loc}");
            assert_eq!(url_host(loc), "status.example.com", "h2c: {loc}");
        }
    }
    assert!(
        origin.seen().is_empty(),
        "nothing for an offline site goes upstream: {:?}",
        origin.seen()
    );
}

/// Targets that are not valid HTTP at all and may be refused with 400 instead of being
/// redirected: a raw tab (RFC 9112 section 3.2), and raw bytes that are not even UTF-8
/// (Pingora escapes raw UTF-8 such as `/été`, which is redirected, but not these).
const MAY_REFUSE: &[&[u8]] = &[b"/a\tb", b"/\xff\xfe"];

fn check_location(r: &Resp, want: u16, prefix: &str, target: &[u8]) {
    let t = String::from_utf8_lossy(target);
    if r.status == 400 && MAY_REFUSE.contains(&target) {
        return;
    }
    assert_eq!(r.status, want, "{t:?}: {r:?}");
    let locs: Vec<&(String, String)> = r.headers.iter().filter(|(k, _)| k == "location").collect();
    assert_eq!(locs.len(), 1, "{t:?}: {r:?}");
    let loc = &locs[0].1;
    assert!(loc.starts_with(prefix), "{t:?} → {loc}");
    assert_eq!(url_host(loc), "status.example.com", "{t:?} → {loc}");
    assert!(
        loc.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'\\' && b != b'"' && b != b'<'),
        "{t:?} → {loc:?}"
    );
    for (k, _) in &r.headers {
        assert!(
            matches!(
                k.as_str(),
                "location"
                    | "content-type"
                    | "content-length"
                    | "cache-control"
                    | "date"
                    | "connection"
            ),
            "{t:?}: unexpected header {k} in {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Resource exhaustion
// ---------------------------------------------------------------------------------

/// Sends `data` one byte per `every` until the daemon closes; (bytes sent, what came
/// back). Gives up after `limit`.
fn trickle(s: &mut TcpStream, data: &[u8], every: Duration, limit: Duration) -> (usize, Vec<u8>) {
    let start = Instant::now();
    let mut got = Vec::new();
    s.set_read_timeout(Some(every)).unwrap();
    for (i, b) in data.iter().enumerate() {
        if start.elapsed() > limit {
            return (i, got);
        }
        if s.write_all(&[*b]).is_err() {
            return (i, got);
        }
        let mut chunk = [0u8; 1024];
        match s.read(&mut chunk) {
            Ok(0) => return (i + 1, got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (i + 1, got),
            Err(_) => {}
        }
    }
    (data.len(), got)
}

/// True once the peer has closed `s` (EOF or reset), waiting at most `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_slow_and_stalled_clients_are_cut_off_while_others_are_served() {
    let nofile = raise_nofile();
    assert!(
        nofile >= 4500,
        "this test needs 4500 open files, the hard limit is {nofile}"
    );
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("offramp.toml"), config(&origin.url(), "")).unwrap();
    // A soft limit of 1024, as systemd and most shells set it: 2,000 idle clients only
    // fit if offramp raises it to the hard limit.
    let o = Offramp::start_with_nofile(dir, 1024, nofile);
    let addr = o.addr();
    let line = o.wait_log(WAIT, "the connection limit line", |l| {
        l.contains("client connection limit")
    });
    assert!(
        line.contains(&format!("open_files_limit={nofile}")),
        "{line}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = normal_traffic(addr, stop.clone());
    let head = format!(
        "GET /slow HTTP/1.1\r\nHost: {ONLINE}\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(200)
    );
    let mut checks = Vec::new();

    // A new connection that trickles its head, one byte a second: cut off (408) about
    // 10 s after its first byte, long before its head would be complete.
    let h = head.clone();
    checks.push(std::thread::spawn(move || {
        let mut s = connect(addr);
        let (sent, got) = trickle(
            &mut s,
            h.as_bytes(),
            Duration::from_secs(1),
            Duration::from_secs(40),
        );
        assert!(sent <= 12, "still accepting a trickled head after {sent} s");
        assert!(
            String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
            "{got:?}"
        );
    }));
    // The same on a kept-alive connection, after a normal request.
    let h = head.clone();
    checks.push(std::thread::spawn(move || {
        let mut c = Conn::open(addr);
        assert_eq!(c.get(ONLINE, "/first").status, 200);
        let (sent, _) = trickle(
            &mut c.stream,
            h.as_bytes(),
            Duration::from_secs(1),
            Duration::from_secs(40),
        );
        assert!(
            sent <= 12,
            "kept-alive connection still accepting a trickled head after {sent} s"
        );
    }));
    // The same after a request that took Pingora's path (it had a body), where the
    // connection then stays.
    let h = head.clone();
    checks.push(std::thread::spawn(move || {
        let mut c = Conn::open(addr);
        assert_eq!(
            c.request("POST", ONLINE, "/first", &[], b"body").status,
            200
        );
        let (sent, got) = trickle(
            &mut c.stream,
            h.as_bytes(),
            Duration::from_secs(1),
            Duration::from_secs(40),
        );
        assert!(
            sent <= 12,
            "still accepting a trickled head after a body, after {sent} s"
        );
        assert!(
            String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
            "{got:?}"
        );
    }));
    // A head that grows past what the fast path reads (16 KiB) moves on to Pingora's
    // parser: the 10 s still count from its first byte, not from the hand-over.
    checks.push(std::thread::spawn(move || {
        let mut s = connect(addr);
        let start = Instant::now();
        s.write_all(format!("GET /slow HTTP/1.1\r\nHost: {ONLINE}\r\nX-Pad: ").as_bytes())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut got = Vec::new();
        while start.elapsed() < Duration::from_secs(30) {
            if s.write_all(&[b'a'; 200]).is_err() {
                break;
            }
            let mut chunk = [0u8; 1024];
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(_) => {}
            }
            if !got.is_empty() {
                break;
            }
        }
        let took = start.elapsed();
        assert!(
            String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
            "{got:?} after {took:?}"
        );
        assert!(
            took < Duration::from_millis(12_500),
            "a head past 16 KiB was cut off only after {took:?}"
        );
    }));
    // A kept-alive connection stays usable for a while, then is closed when idle.
    for with_body in [false, true] {
        checks.push(std::thread::spawn(move || {
            let mut c = Conn::open(addr);
            let first = if with_body {
                c.request("POST", ONLINE, "/first", &[], b"body")
            } else {
                c.get(ONLINE, "/first")
            };
            assert_eq!(first.status, 200);
            std::thread::sleep(Duration::from_secs(3));
            assert_eq!(c.get(ONLINE, "/second").status, 200, "keep-alive honoured");
            assert!(
                closed_within(&mut c.stream, Duration::from_secs(50)),
                "idle kept-alive connection never closed (first request with a body: {with_body})"
            );
        }));
    }
    // An h2c connection that goes quiet after its preface is closed too.
    checks.push(std::thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(50)),
            "idle h2c connection never closed"
        );
    }));
    // A client that asks for 32 MiB and never reads: dropped when a write has made no
    // progress for a while, instead of holding the connection (and its upstream) forever.
    // Both paths: a GET (fast path) and a request with a body (Pingora).
    for body in ["", "x"] {
        checks.push(std::thread::spawn(move || {
            let n = 32 * 1024 * 1024;
            let mut s = connect(addr);
            let req = format!(
                "POST /bytes?n={n} HTTP/1.1\r\nHost: {ONLINE}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let req = if body.is_empty() {
                req.replacen("POST", "GET", 1)
                    .replace("Content-Length: 0\r\n", "")
            } else {
                req
            };
            s.write_all(req.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_secs(38));
            let mut total = 0usize;
            let mut chunk = vec![0u8; 1 << 20];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => total += k,
                }
            }
            assert!(
                total < n,
                "a stalled reader (body {body:?}) got all {total} bytes: never timed out"
            );
        }));
    }
    // 2,000 connections that never send a byte: the daemon keeps serving everyone
    // else, and closes them all after the first-bytes timeout.
    let mut idle: Vec<TcpStream> = (0..2000).map(|_| connect(addr)).collect();
    std::thread::sleep(Duration::from_secs(2));
    let r = o.get(ONLINE, "/with-2000-idle");
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(50);
    for s in &mut idle {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_within(s, left),
            "an idle connection was never closed"
        );
    }
    drop(idle);
    for c in checks {
        c.join().expect("a slow-client check failed");
    }
    stop.store(true, Ordering::Release);
    let failures = traffic.join().expect("traffic thread");
    assert!(failures.is_empty(), "normal requests failed: {failures:?}");
    assert_eq!(
        o.count_log(|l| l.contains("accept failed")),
        0,
        "{}",
        o.log_text()
    );
}

#[test]
fn connection_limit_refuses_extra_connections_and_recovers() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("offramp.toml"), config(&origin.url(), "")).unwrap();
    // 512 files, hard limit too: (512 - 128) / 2 = 192 client connections.
    let o = Offramp::start_with_nofile(dir, 512, 512);
    let line = o.wait_log(WAIT, "the connection limit line", |l| {
        l.contains("client connection limit")
    });
    assert!(line.contains("max_connections=192"), "{line}");
    let addr = o.addr();
    // A keep-alive client that was there first keeps being served throughout.
    let mut early = Conn::open(addr);
    assert_eq!(early.get(ONLINE, "/early").status, 200);

    let mut held: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..260 {
        let mut s = connect(addr);
        if closed_within(&mut s, Duration::from_millis(100)) {
            refused += 1;
        } else {
            held.push(s);
        }
    }
    assert!(
        refused >= 60,
        "over the limit, connections are closed at once ({refused} were)"
    );
    assert!(
        held.len() >= 150,
        "up to the limit they are kept ({} were)",
        held.len()
    );
    assert_eq!(early.get(ONLINE, "/during").status, 200);
    assert_eq!(early.get(OFFLINE, "/during").status, 302);
    o.wait_log(WAIT, "the limit warning", |l| {
        l.contains("connection limit reached")
    });

    drop(held);
    wait_for(WAIT, "new connections served again", || {
        let mut s = connect(addr);
        let req = format!("GET /after HTTP/1.1\r\nHost: {ONLINE}\r\n\r\n");
        let got = exchange(&mut s, req.as_bytes(), false);
        (got.responses.first().map(|r| r.status) == Some(200)).then_some(())
    });
    assert_eq!(
        o.count_log(|l| l.contains("accept failed")),
        0,
        "the fd limit was never hit"
    );
}

#[test]
fn huge_bodies_to_an_offline_site_are_never_read_into_memory() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url(), ""));
    let addr = o.addr();
    // Warm up both paths so the baseline includes what serving costs anyway.
    for _ in 0..20 {
        assert_eq!(o.get(OFFLINE, "/").status, 302);
        assert_eq!(o.get(ONLINE, "/").status, 200);
    }
    let before = rss_kib(o.pid());
    let senders: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let framing = if i % 2 == 0 {
                    "Content-Length: 1073741824\r\n".to_string()
                } else {
                    "Transfer-Encoding: chunked\r\n".to_string()
                };
                s.write_all(
                    format!("POST /upload HTTP/1.1\r\nHost: {OFFLINE}\r\n{framing}\r\n").as_bytes(),
                )
                .unwrap();
                let chunk = vec![b'x'; 1 << 20];
                let mut sent = 0usize;
                // Up to 256 MiB, as fast as the daemon takes it.
                while sent < 256 << 20 {
                    let r = if i % 2 == 0 {
                        s.write_all(&chunk)
                    } else {
                        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .and_then(|_| s.write_all(&chunk))
                            .and_then(|_| s.write_all(b"\r\n"))
                    };
                    if r.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                let mut head = Vec::new();
                s.set_read_timeout(Some(WAIT)).unwrap();
                let _ = s.read_to_end(&mut head);
                (sent, String::from_utf8_lossy(&head).into_owned())
            })
        })
        .collect();
    for t in senders {
        let (sent, answer) = t.join().expect("sender");
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer:?}");
        assert!(
            sent < 128 << 20,
            "the daemon took {sent} bytes of a body it does not need"
        );
    }
    let after = rss_kib(o.pid());
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB while refusing 4 huge bodies"
    );
    assert_eq!(o.get(OFFLINE, "/still").status, 302);
    assert_eq!(o.get(ONLINE, "/still").status, 200);
}

#[test]
fn control_socket_flood_and_oversized_lines_do_not_disturb_the_proxy() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(&origin.url(), ""));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = normal_traffic(o.addr(), stop.clone());
    let before = rss_kib(o.pid());
    let sock = o.socket();
    let flooders: Vec<_> = (0..8)
        .map(|i| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(4);
                let mut rounds = 0;
                while Instant::now() < deadline {
                    rounds += 1;
                    let Ok(mut s) = UnixStream::connect(&sock) else {
                        continue;
                    };
                    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    match (i + rounds) % 4 {
                        // Connect and leave.
                        0 => {}
                        // 4 MiB without a newline.
                        1 => {
                            let _ = s.write_all(&vec![b'{'; 4 << 20]);
                        }
                        // Many garbage lines.
                        2 => {
                            let _ = s.write_all("not json\n".repeat(2000).as_bytes());
                        }
                        // A long valid-looking request.
                        _ => {
                            let line = format!(
                                "{{\"cmd\":\"offline\",\"sites\":[\"blog\"],\"reason\":\"{}\"}}\n",
                                "r".repeat(1 << 20)
                            );
                            let _ = s.write_all(line.as_bytes());
                        }
                    }
                    let _ = s.shutdown(Shutdown::Write);
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink);
                }
                rounds
            })
        })
        .collect();
    let rounds: usize = flooders
        .into_iter()
        .map(|f| f.join().expect("flooder"))
        .sum();
    assert!(rounds > 50, "the flood ran ({rounds} connections)");
    stop.store(true, Ordering::Release);
    let failures = traffic.join().expect("traffic");
    assert!(
        failures.is_empty(),
        "requests failed during the flood: {failures:?}"
    );
    // Nothing was flipped by the flood, and the CLI works right after it.
    let st = wait_for(WAIT, "the CLI served after the flood", || {
        let out = o.cli(&["status", "--json"]);
        (out.code == Some(0)).then(|| out.json())
    });
    let sites: HashMap<String, String> = st["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").into(),
                s["source"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        sites.get("blog").map(String::as_str),
        Some("config"),
        "{st}"
    );
    o.cli(&["offline", "blog"]).ok();
    assert_eq!(o.get(ONLINE, "/").status, 302);
    let after = rss_kib(o.pid());
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
