//! A real HTTP/1.1 webhook receiver for the notification tests (`tests/notify*.rs`): it
//! listens on 127.0.0.1 port 0 on its own threads (one accept loop, one thread per
//! connection, keep-alive), records every request it reads (method, target, headers,
//! raw body, arrival time, how it was answered), and answers by a script the test sets
//! at any time:
//!
//! - `Reply::Status(200)` (the default), any other status (`Status(500)`);
//! - `Reply::RetryAfter(N)`: `429 Too Many Requests` with `Retry-After: N`;
//! - `Reply::Hang`: reads the request and never answers (holds the connection until
//!   the client closes it);
//! - `Reply::Full`: any status, headers and body (the Statuspage stand-in's JSON);
//! - a handler closure deciding per request (after the queued script is used up);
//! - down: the port stays reserved (bound, not listening), so connections are refused
//!   (`ECONNREFUSED`), and [`Webhook::up`] starts listening on the same port again.
//!
//! This file is the receiver the tests drive; its side of the connections (the accept
//! loop, reading requests, writing the replies) is in `common/webhook_conn.rs`. What
//! the notify tests share besides the receiver (their config, the events a receiver
//! got, what the daemon shows of its targets, signatures) is in
//! `common/notify_helpers.rs`.
//!
//! Not declared in `common/mod.rs`: a test crate includes it with
//! `#[path = "common/webhook.rs"] mod webhook;` next to `mod common;`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "webhook_conn.rs"]
mod conn;

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// That status with a short text body.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: N` (seconds).
    RetryAfter(u64),
    /// Reads the request and never answers.
    Hang,
    /// Any status, extra headers and body.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

impl Reply {
    /// A JSON answer (`Content-Type: application/json`).
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// The status this reply sends; `None` for [`Reply::Hang`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Status(s) | Reply::Full { status: s, .. } => Some(*s),
            Reply::RetryAfter(_) => Some(429),
            Reply::Hang => None,
        }
    }
}

/// One request the receiver read.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The raw body (de-chunked if it came chunked).
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: Instant,
    /// Which connection it came on (1, 2, … in accept order).
    pub conn: usize,
    /// The status it was answered with; `None` when it was left hanging.
    pub answered: Option<u16>,
}

impl Recorded {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} body is not JSON ({e}): {:?}",
                self.method,
                self.target,
                self.text()
            )
        })
    }

    /// Answered with a 2xx.
    pub fn delivered(&self) -> bool {
        self.answered.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Decides the reply to a request once the queued script is used up.
pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct State {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    default: Reply,
    handler: Option<Handler>,
    conns: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A running accept loop: its stop flag (seen by its connections too) and its thread.
struct Listening {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The receiver. Dropping it closes the port and every connection.
pub struct Webhook {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    listening: Option<Listening>,
    /// While down: the port, bound but not listening (connections are refused).
    reserved: Option<tokio::net::TcpSocket>,
}

impl Webhook {
    /// A receiver answering 200 to everything.
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
        let addr = listener.local_addr().expect("webhook addr");
        let mut w = Webhook::new(addr);
        w.listen(listener);
        w
    }

    /// A receiver that is down: its port is reserved but refuses connections until
    /// [`Webhook::up`].
    pub fn start_down() -> Webhook {
        let sock = reserve("127.0.0.1:0".parse().expect("addr"));
        let addr = sock.local_addr().expect("reserved addr");
        let mut w = Webhook::new(addr);
        w.reserved = Some(sock);
        w
    }

    fn new(addr: SocketAddr) -> Webhook {
        Webhook {
            addr,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    requests: Vec::new(),
                    script: VecDeque::new(),
                    default: Reply::Status(200),
                    handler: None,
                    conns: 0,
                }),
                changed: Condvar::new(),
            }),
            listening: None,
            reserved: None,
        }
    }

    fn listen(&mut self, listener: TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stop2) = (self.shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || conn::accept_loop(listener, shared, stop2));
        self.listening = Some(Listening { stop, thread });
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts listening (again) on the same port. No-op when already up.
    pub fn up(&mut self) {
        if self.listening.is_some() {
            return;
        }
        let sock = self.reserved.take().expect("a reserved port while down");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let listener = {
            let _enter = rt.enter();
            sock.listen(128)
                .expect("listen on the reserved port")
                .into_std()
                .expect("std listener")
        };
        self.listen(listener);
    }

    /// Stops listening and closes every connection; the port stays reserved, so
    /// connections to it are refused. No-op when already down.
    pub fn down(&mut self) {
        let Some(l) = self.listening.take() else {
            return;
        };
        l.stop.store(true, Ordering::SeqCst);
        let _ = l.thread.join();
        self.reserved = Some(reserve(self.addr));
    }

    pub fn is_up(&self) -> bool {
        self.listening.is_some()
    }

    /// Queues replies for the next requests, before the default or the handler.
    pub fn script(&self, replies: &[Reply]) {
        self.shared
            .state
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().cloned());
    }

    /// The reply once the script is used up (initially `Status(200)`); drops the handler.
    pub fn set_default(&self, reply: Reply) {
        let mut st = self.shared.state.lock().unwrap();
        st.default = reply;
        st.handler = None;
    }

    /// Decides each reply once the script is used up (instead of the default).
    pub fn set_handler(&self, f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        self.shared.state.lock().unwrap().handler = Some(Arc::new(f));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.state.lock().unwrap().requests.len()
    }

    /// Connections accepted so far.
    pub fn conns(&self) -> usize {
        self.shared.state.lock().unwrap().conns
    }

    /// Waits until the requests so far satisfy `pred`; returns them. Panics after
    /// `limit` with `what` and what did arrive.
    pub fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + limit;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if pred(&st.requests) {
                return st.requests.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let got = describe(&st.requests);
                drop(st);
                panic!("timed out after {limit:?} waiting for {what}; the receiver got:\n{got}");
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Waits for at least `n` requests.
    pub fn wait_count(&self, n: usize, limit: Duration, what: &str) -> Vec<Recorded> {
        self.wait_until(limit, what, |r| r.len() >= n)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(l) = self.listening.take() {
            l.stop.store(true, Ordering::SeqCst);
            let _ = l.thread.join();
        }
    }
}

/// One line per request, for failure messages.
pub fn describe(reqs: &[Recorded]) -> String {
    if reqs.is_empty() {
        return "  (nothing)".into();
    }
    reqs.iter()
        .map(|r| {
            format!(
                "  {} {} -> {:?}: {}",
                r.method,
                r.target,
                r.answered,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A socket bound to `addr` (port 0: any) and not listening: it holds the port while
/// connections to it are refused.
fn reserve(addr: SocketAddr) -> tokio::net::TcpSocket {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_reuseaddr(true).expect("SO_REUSEADDR");
    sock.bind(addr)
        .unwrap_or_else(|e| panic!("reserve port {addr}: {e}"));
    sock
}
