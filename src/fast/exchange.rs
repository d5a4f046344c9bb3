//! One proxied exchange on the fast path: the request to a plain-HTTP upstream (a
//! pooled connection, or a new one), its response head parsed and rewritten for the
//! client, the body forwarded as it streams. Failures are `request::upstream_error`
//! kinds, so they get the same status, log label and count as on Pingora's path.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant as TInstant;

use super::chunked::Chunked;
use super::io::{consume, reserve, write_client, write_timeout, Timer};
use super::pool::{pool_put, pool_take};
use super::response::{response_head, Framing, RespHead};
use super::Done;
use crate::request::upstream_error::UpstreamError;

/// A response up to this size whose body trails its head is sent in one write...
const COALESCE_MAX: usize = 32 * 1024;
/// ...if the rest arrives within this time.
const COALESCE_WAIT: Duration = Duration::from_millis(2);

/// Where and how to reach the upstream of one request.
pub(super) struct Upstream {
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle: Duration,
}

/// Why a proxied request failed.
pub(super) enum Failure {
    /// The upstream failed: with nothing sent to the client yet, it gets the kind's
    /// status; after the response head went out (`CutBody`), the connection closes.
    Upstream(UpstreamError),
    /// The client went away (a write to it failed).
    ClientGone,
}

use UpstreamError::{BadResponse, Connect, ConnectTimeout, CutBody, ReadTimeout, WriteTimeout};

async fn connect(up: &Upstream) -> Result<TcpStream, Failure> {
    match tokio::time::timeout(up.connect_timeout, TcpStream::connect(up.addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => {
            tracing::debug!(upstream = %up.addr, "connect failed: {e}");
            Err(Failure::Upstream(Connect))
        }
        Err(_) => Err(Failure::Upstream(ConnectTimeout)),
    }
}

/// Reads the upstream's response head into `ubuf` and the client's version of it into
/// `out`. `Ok(None)`: the connection closed before sending any byte (retryable when it
/// came from the pool). Informational responses (103) go to the client as they come.
async fn read_head(
    up: &Upstream,
    conn: &mut TcpStream,
    ubuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    client: &mut TcpStream,
    done: &Done,
    timer: &mut Timer,
) -> Result<Option<RespHead>, Failure> {
    ubuf.clear();
    // After an informational response went to the client, nothing may be retried.
    let mut informed = false;
    // The answer's head (or the next one after a 1xx) must come within `read_timeout`.
    let mut deadline = TInstant::now() + up.read_timeout;
    loop {
        reserve(ubuf);
        match timer.within(deadline, conn.read_buf(ubuf)).await {
            None if informed => return Err(Failure::Upstream(CutBody)),
            None => return Err(Failure::Upstream(ReadTimeout)),
            Some(Ok(0)) | Some(Err(_)) if informed => return Err(Failure::Upstream(CutBody)),
            Some(Ok(0)) | Some(Err(_)) if ubuf.is_empty() => return Ok(None),
            Some(Ok(0)) | Some(Err(_)) => return Err(Failure::Upstream(BadResponse)),
            Some(Ok(_)) => {}
        }
        loop {
            match response_head(ubuf, done.head_only, done.keepalive, out) {
                Err(()) if informed => return Err(Failure::Upstream(CutBody)),
                Err(()) => return Err(Failure::Upstream(BadResponse)),
                Ok(None) => break,
                Ok(Some(h)) if h.status == 101 && informed => {
                    return Err(Failure::Upstream(CutBody))
                }
                Ok(Some(h)) if h.status == 101 => return Err(Failure::Upstream(BadResponse)),
                Ok(Some(h)) if (100..200).contains(&h.status) => {
                    informed = true;
                    if write_client(client, out).await.is_err() {
                        return Err(Failure::ClientGone);
                    }
                    deadline = TInstant::now() + up.read_timeout;
                    consume(ubuf, h.len);
                    if ubuf.is_empty() {
                        break;
                    }
                }
                Ok(Some(h)) => return Ok(Some(h)),
            }
        }
    }
}

/// One request to the upstream and its response to the client.
#[allow(clippy::too_many_arguments)]
pub(super) async fn proxy_exchange(
    up: &Upstream,
    request: &[u8],
    client: &mut TcpStream,
    ubuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    done: &mut Done,
    started: Instant,
    timer: &mut Timer,
) -> Result<(), Failure> {
    // A pooled connection the upstream closed meanwhile fails before any response byte:
    // then the request (which has no body) is sent once more on a new connection.
    let mut fresh = false;
    let (mut conn, head) = loop {
        let pooled = if fresh {
            None
        } else {
            pool_take(up.addr, started)
        };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(up).await?,
        };
        match write_timeout(&mut conn, request, up.write_timeout).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Failure::Upstream(WriteTimeout))
            }
            Err(_) if reused && done.idempotent => {
                fresh = true;
                continue;
            }
            Err(_) => return Err(Failure::Upstream(BadResponse)),
        }
        match read_head(up, &mut conn, ubuf, out, client, done, timer).await? {
            Some(h) => break (conn, h),
            None if reused && done.idempotent => fresh = true,
            None => return Err(Failure::Upstream(BadResponse)),
        }
    };
    done.status = head.status;
    // An upstream often writes head and body separately (nginx: writev, then sendfile).
    // Forwarding the head alone costs a write, a segment and a wake-up of the client
    // more; so for a small body of known length, wait briefly for the rest and send it
    // all at once (what nginx's `postpone_output` achieves). Streams (chunked, or
    // until close) are forwarded as they come.
    if let Framing::Length(n) = head.framing {
        if (head.len as u64).saturating_add(n) <= COALESCE_MAX as u64 {
            let deadline = tokio::time::Instant::now() + COALESCE_WAIT;
            while ((ubuf.len() - head.len) as u64) < n {
                reserve(ubuf);
                match tokio::time::timeout_at(deadline, conn.read_buf(ubuf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    // Timed out: send what is there. Closed or failed: the loop below
                    // sees it again and cuts the response short.
                    _ => break,
                }
            }
        }
    }
    // The head and whatever body arrived with it go out in one write.
    let mut body = &ubuf[head.len..];
    let mut complete = false;
    let mut extra = false;
    let mut remaining = 0u64;
    let mut chunks = Chunked::default();
    match head.framing {
        Framing::Empty => {
            complete = true;
            extra = !body.is_empty();
            body = &[];
        }
        Framing::Length(n) => {
            if body.len() as u64 >= n {
                extra = body.len() as u64 > n;
                body = &body[..n as usize];
                complete = true;
            } else {
                remaining = n - body.len() as u64;
            }
        }
        Framing::Chunked => match chunks.feed(body) {
            Err(()) => return Err(Failure::Upstream(BadResponse)),
            Ok(Some(end)) => {
                extra = end < body.len();
                body = &body[..end];
                complete = true;
            }
            Ok(None) => {}
        },
        Framing::Close => {}
    }
    out.extend_from_slice(body);
    done.body_bytes = body.len();
    if write_client(client, out).await.is_err() {
        return Err(Failure::ClientGone);
    }
    while !complete {
        ubuf.clear();
        reserve(ubuf);
        let deadline = TInstant::now() + up.read_timeout;
        let n = match timer.within(deadline, conn.read_buf(ubuf)).await {
            Some(Ok(0)) if head.framing == Framing::Close => {
                complete = true;
                0
            }
            Some(Ok(0)) | Some(Err(_)) | None => return Err(Failure::Upstream(CutBody)),
            Some(Ok(n)) => n,
        };
        let mut piece = &ubuf[..n];
        match head.framing {
            Framing::Length(_) => {
                if piece.len() as u64 >= remaining {
                    extra = piece.len() as u64 > remaining;
                    piece = &piece[..remaining as usize];
                    complete = true;
                } else {
                    remaining -= piece.len() as u64;
                }
            }
            Framing::Chunked => match chunks.feed(piece) {
                Err(()) => return Err(Failure::Upstream(CutBody)),
                Ok(Some(end)) => {
                    extra = end < piece.len();
                    piece = &piece[..end];
                    complete = true;
                }
                Ok(None) => {}
            },
            Framing::Empty | Framing::Close => {}
        }
        if !piece.is_empty() {
            done.body_bytes += piece.len();
            if write_client(client, piece).await.is_err() {
                return Err(Failure::ClientGone);
            }
        }
    }
    if head.framing == Framing::Close {
        done.keepalive = false;
    }
    if head.reusable && !extra {
        // `started` is slightly early for the idle clock: it only shortens the idle life.
        pool_put(up.addr, conn, up.idle, started);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let mut out = Vec::new();
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            false,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(3));
        assert!(!h.reusable);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"), "{text}");
        assert!(!text.contains("Connection: close"));
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!String::from_utf8_lossy(&out).contains("Content-Length"));
        let h = response_head(b"HTTP/1.1 200 OK\r\n\r\n", false, true, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Close);
        assert!(String::from_utf8_lossy(&out).ends_with("Connection: close\r\n\r\n"));
        let h = response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            true,
            true,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false,
            true,
            &mut out
        )
        .is_err());
        assert!(response_head(b"garbage\r\n\r\n", false, true, &mut out).is_err());
        // A repeated identical length is one length, and reaches the client once.
        for head in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        ] {
            let h = response_head(head, false, true, &mut out).unwrap().unwrap();
            assert_eq!(h.framing, Framing::Length(2));
            let text = String::from_utf8_lossy(&out);
            assert_eq!(text.matches("Content-Length: 2\r\n").count(), 1, "{text}");
            assert!(!text.contains("2, 2"), "{text}");
        }
        assert!(response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n",
            false,
            true,
            &mut out
        )
        .is_err());
        assert!(
            response_head(b"HTTP/1.1 200 OK\r\nContent-", false, true, &mut out)
                .unwrap()
                .is_none()
        );
    }
}
