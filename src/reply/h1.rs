//! The one HTTP/1.1 response-head writer, used by everything that writes HTTP/1 bytes
//! itself: the fast path (its own answers and the upstream's heads it forwards), the
//! connection guard (400/408/431 while a head is read), the admin listener and the
//! demo origin. Also the per-thread cached `Date` value they all send.

use std::cell::RefCell;
use std::time::Duration;

use super::{Body, Reply};

/// The answer to a request head not complete within `limits::REQUEST_HEAD_TIMEOUT`.
pub const TIMEOUT_408: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/// The answer to a request head over `limits::MAX_REQUEST_HEAD`.
pub const TOO_LARGE_431: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Appends a status line: `HTTP/1.1 200 OK\r\n` (`reason` `None`: the canonical one).
#[inline(always)]
pub fn status_line(out: &mut Vec<u8>, status: u16, reason: Option<&[u8]>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    match reason {
        Some(r) => out.extend_from_slice(r),
        None => out.extend_from_slice(
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one header field.
#[inline(always)]
pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Date: ...\r\n`.
#[inline]
pub fn date_header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Date: ");
    push_date(out);
    out.extend_from_slice(b"\r\n");
}

/// Ends a head: `Connection` (keep-alive or close) and the empty line.
#[inline]
pub fn end_head(out: &mut Vec<u8>, keepalive: bool) {
    out.extend_from_slice(if keepalive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
}

/// Replaces `out` with `reply` as HTTP/1.1 (head, and the body unless `head_only`);
/// the connection stays open after it when `keepalive` and the reply allows it.
/// Returns the body bytes written.
pub fn write_reply(out: &mut Vec<u8>, reply: &Reply, head_only: bool, keepalive: bool) -> usize {
    out.clear();
    let body_len = reply.body_len();
    status_line(out, reply.status, None);
    header(out, b"Content-Type", reply.content_type.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body_len);
    out.extend_from_slice(b"\r\nCache-Control: no-store\r\n");
    if let Some(l) = &reply.location {
        header(out, b"Location", l.as_bytes());
    }
    if let Some(s) = reply.retry_after {
        out.extend_from_slice(b"Retry-After: ");
        push_decimal(out, usize::try_from(s).unwrap_or(usize::MAX));
        out.extend_from_slice(b"\r\n");
    }
    for (k, v) in reply.fixed {
        header(out, k.as_bytes(), v.as_bytes());
    }
    date_header(out);
    end_head(out, keepalive && !reply.close);
    if head_only {
        return 0;
    }
    match &reply.body {
        Body::Bytes(b) => out.extend_from_slice(b),
        Body::RedirectPage => {
            super::pages::push_redirect_page(out, reply.location.as_deref().unwrap_or_default())
        }
    }
    body_len
}

thread_local! {
    /// This thread's `Date` value and the second it is for.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sets this thread's `Date` to the current second.
fn refresh_date() {
    let secs = unix_secs();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            let v = pingora::protocols::http::date::get_cached_date();
            *d = (secs, v.as_bytes().to_vec());
        }
    });
}

/// Keeps this thread's `Date` current without a clock read per response: wakes at
/// every second boundary. Each worker runs one; other threads refresh it per use.
pub async fn date_ticker() {
    TICKING.with(|t| t.set(true));
    loop {
        refresh_date();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let to_next = Duration::from_nanos(1_000_000_000 - u64::from(nanos));
        tokio::time::sleep(to_next + Duration::from_millis(1)).await;
    }
}

thread_local! {
    /// Whether this thread runs a `date_ticker` (else `Date` is refreshed per use).
    static TICKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn push_date(out: &mut Vec<u8>) {
    if !TICKING.with(|t| t.get()) {
        refresh_date();
    }
    DATE.with(|d| {
        if d.borrow().0 == u64::MAX {
            refresh_date();
        }
        out.extend_from_slice(&d.borrow().1);
    });
}

/// Appends `n` in decimal (no formatting machinery: this is on every response).
#[inline]
pub fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_reply_carries_its_page() {
        for loc in ["https://s.example/a?b=1&c='\"<>", "https://s.example/"] {
            let mut out = Vec::new();
            let n = write_reply(&mut out, &Reply::redirect(302, loc.into()), false, true);
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert_eq!(body, super::super::pages::redirect_page(loc));
            assert_eq!(n, body.len());
            assert!(head.starts_with("HTTP/1.1 302 Found\r\n"), "{head}");
            assert!(head.contains(&format!("Content-Length: {n}\r\n")), "{head}");
            assert!(head.contains(&format!("Location: {loc}\r\n")), "{head}");
            assert!(head.contains("Cache-Control: no-store\r\n"), "{head}");
            assert!(head.ends_with("Connection: keep-alive"), "{head}");
        }
        let mut out = Vec::new();
        let mut r = Reply::page(400, "x".into());
        r.close = true;
        assert_eq!(write_reply(&mut out, &r, true, true), 0);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Connection: close\r\n\r\n"));
    }
}
