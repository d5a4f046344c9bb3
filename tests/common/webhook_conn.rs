//! The webhook receiver's side of its connections (`common/webhook.rs`): the accept
//! loop, one thread per connection reading HTTP/1.1 requests (Content-Length or
//! chunked bodies, `Expect: 100-continue`, keep-alive), recording each and answering
//! it by the receiver's script, handler or default reply.
//!
//! A submodule of `webhook` (declared there), not of `common`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Recorded, Reply, Shared};

pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                let id = {
                    let mut st = shared.state.lock().unwrap();
                    st.conns += 1;
                    st.conns
                };
                let (shared, stop) = (shared.clone(), stop.clone());
                conns.push(std::thread::spawn(move || {
                    let _ = serve_conn(s, id, &shared, &stop);
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(listener);
    for c in conns {
        let _ = c.join();
    }
}

/// How long a connection may sit idle before the receiver closes it (a client may
/// keep it for the next event; a real server would close it at some point too).
const IDLE: Duration = Duration::from_secs(30);

/// Reads more bytes into `buf`: `Ok(false)` when the peer closed, the receiver is
/// stopping or the connection was idle too long.
fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> std::io::Result<bool> {
    let idle_since = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::SeqCst) || idle_since.elapsed() > IDLE {
            return Ok(false);
        }
        match s.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn serve_conn(
    mut s: TcpStream,
    conn: usize,
    shared: &Shared,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // The request head.
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if !fill(&mut s, &mut buf, stop)? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        // The body.
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf, b"\r\n") {
                        break i;
                    }
                    if !fill(&mut s, &mut buf, stop)? {
                        return Ok(());
                    }
                };
                let size_line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                buf.drain(..line_end + 2);
                if size == 0 {
                    // Trailers (none expected), then the empty line.
                    loop {
                        if let Some(i) = find(&buf, b"\r\n") {
                            buf.drain(..i + 2);
                            if i == 0 {
                                break;
                            }
                        } else if !fill(&mut s, &mut buf, stop)? {
                            return Ok(());
                        }
                    }
                    break;
                }
                while buf.len() < size + 2 {
                    if !fill(&mut s, &mut buf, stop)? {
                        return Ok(());
                    }
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while buf.len() < n {
                if !fill(&mut s, &mut buf, stop)? {
                    return Ok(());
                }
            }
            body = buf.drain(..n).collect();
        }

        let mut rec = Recorded {
            method,
            target,
            headers: headers.clone(),
            body,
            at: Instant::now(),
            conn,
            answered: None,
        };
        let (queued, default, handler) = {
            let mut st = shared.state.lock().unwrap();
            (
                st.script.pop_front(),
                st.default.clone(),
                st.handler.clone(),
            )
        };
        let reply = match (queued, handler) {
            (Some(r), _) => r,
            (None, Some(h)) => h(&rec),
            (None, None) => default,
        };
        rec.answered = reply.status();
        {
            let mut st = shared.state.lock().unwrap();
            st.requests.push(rec);
            shared.changed.notify_all();
        }

        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let (status, extra, body) = match reply {
            Reply::Hang => {
                // Hold the connection, never answer, until the client gives up.
                buf.clear();
                while fill(&mut s, &mut buf, stop)? {
                    buf.clear();
                }
                return Ok(());
            }
            Reply::Status(st) => (st, Vec::new(), format!("{} {}\n", st, reason(st))),
            Reply::RetryAfter(n) => (
                429,
                vec![("Retry-After".to_string(), n.to_string())],
                "slow down\n".to_string(),
            ),
            Reply::Full {
                status,
                headers,
                body,
            } => (status, headers, body),
        };
        let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        if !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            out.push_str("Content-Type: text/plain\r\n");
        }
        for (k, v) in &extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        s.write_all(out.as_bytes())?;
        s.flush()?;
        if close {
            return Ok(());
        }
    }
}
