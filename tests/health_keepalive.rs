//! Health checks keep their connection alive between checks when the upstream does
//! (an answer with a Content-Length or chunked body, no `Connection: close`), and an
//! upstream closing an idle kept connection (its keep-alive timeout) is not a failed
//! check: the check goes out again on a new connection.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// An upstream answering `answer` to each request of a connection, closing the
/// connection (without a word) after `per_conn` answers; counts connections and
/// requests.
struct Upstream {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

fn upstream(answer: &'static str, per_conn: usize) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (conns.clone(), requests.clone());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                for _ in 0..per_conn {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    buf.drain(..end);
                    r.fetch_add(1, Ordering::SeqCst);
                    if s.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
                // Idle timeout: the connection ends without `Connection: close`.
            });
        }
    });
    Upstream {
        addr,
        conns,
        requests,
    }
}

fn failures(o: &Offramp) -> usize {
    let r = Conn::open(o.admin.expect("admin")).get("admin", "/metrics");
    r.text()
        .lines()
        .filter(|l| l.starts_with("offramp_health_check_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

fn up_gauge(o: &Offramp) -> Option<String> {
    let r = Conn::open(o.admin.expect("admin")).get("admin", "/metrics");
    r.text()
        .lines()
        .find(|l| l.starts_with("offramp_site_up{"))
        .and_then(|l| l.rsplit(' ').next().map(str::to_string))
}

fn run(answer: &'static str, per_conn: usize) -> (Upstream, Offramp) {
    let u = upstream(answer, per_conn);
    let config = format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
         [[site]]\nname = \"web\"\nhosts = [\"web.test\"]\nupstream = \"http://{}\"\n\
         health = {{ interval = \"100ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\n",
        server_section_checked("admin = \"127.0.0.1:0\""),
        u.addr
    );
    let o = Offramp::start(&config);
    wait_for(Duration::from_secs(10), "10 checks", || {
        (u.requests.load(Ordering::SeqCst) >= 10).then_some(())
    });
    (u, o)
}

#[test]
fn checks_reuse_their_connection_with_a_length_or_chunked_body() {
    for answer in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ] {
        let (u, o) = run(answer, usize::MAX);
        let (conns, reqs) = (
            u.conns.load(Ordering::SeqCst),
            u.requests.load(Ordering::SeqCst),
        );
        assert_eq!(conns, 1, "{reqs} checks over one connection: {answer:?}");
        assert_eq!(failures(&o), 0);
        assert_eq!(up_gauge(&o).as_deref(), Some("1"));
    }
}

#[test]
fn an_idle_connection_closed_by_the_upstream_is_not_a_failure() {
    // Two answers a connection, then it is closed while idle: with fall = 1, one
    // failed check would take the site down.
    let (u, o) = run("HTTP/1.1 204 No Content\r\n\r\n", 2);
    let (conns, reqs) = (
        u.conns.load(Ordering::SeqCst),
        u.requests.load(Ordering::SeqCst),
    );
    assert!(
        conns >= reqs / 2 && conns < reqs,
        "{conns} connections, {reqs} checks"
    );
    assert_eq!(failures(&o), 0, "no check failed");
    assert_eq!(up_gauge(&o).as_deref(), Some("1"));
    // An answer that says close is honoured: a new connection for every check.
    let (u, o) = run(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        usize::MAX,
    );
    let (conns, reqs) = (
        u.conns.load(Ordering::SeqCst),
        u.requests.load(Ordering::SeqCst),
    );
    assert!(conns + 1 >= reqs, "{conns} connections, {reqs} checks");
    assert_eq!(failures(&o), 0);
}
