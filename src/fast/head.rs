//! A request head on the fast path: parsed, turned into the request's facts, decided
//! by `request::decide`, and then either answered (the reply written into the output
//! buffer), proxied (the upstream request written into it) or handed to Pingora.
//!
//! Requests the fast path does not frame itself go to Pingora before any decision:
//! bodies, upgrades, `Expect`, `Transfer-Encoding`, a `Connection` that nominates other
//! fields, HTTP/1.0, absolute-form and `CONNECT` targets, two `Host` fields, heads over
//! 16 KiB or 64 fields. Of the decisions, it serves every answer and every proxied
//! exchange with a plain-HTTP upstream; the rest go to Pingora too (a TLS upstream,
//! and a malformed host, which Pingora's parser is the authority on).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora::upstreams::peer::Peer;

use super::exchange::Upstream;
use super::FastPath;
use crate::metrics::Outcome;
use crate::reply::h1;
use crate::request::forward::{classify, Hdr};
use crate::request::{Decision, Facts};
use crate::routes::HostError;
use crate::snapshot::Snapshot;

/// More request headers than this: Pingora.
const MAX_REQ_HEADERS: usize = 64;
/// Idle upstream connections live this long when the peer sets no idle timeout.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// What a complete request head turned into.
pub(super) enum Plan {
    /// Not complete yet.
    NeedMore,
    /// Not for the fast path.
    Fallback,
    /// `out` holds the complete response.
    Respond(Done),
    /// `out` holds the request for the upstream.
    Proxy(Upstream, Done),
}

/// What is known about a request once its head is parsed.
pub(super) struct Done {
    /// Bytes of the client buffer the request head took.
    pub consumed: usize,
    pub snap: Arc<Snapshot>,
    pub site: Option<u32>,
    pub outcome: Outcome,
    pub status: u16,
    pub body_bytes: usize,
    pub keepalive: bool,
    pub head_only: bool,
    /// The method is idempotent (RFC 9110 section 9.2.2): the request may be sent again
    /// when a pooled upstream connection turns out to be closed.
    pub idempotent: bool,
    /// Owned copies for the access log line, only when it is written.
    pub log: Option<LogInfo>,
}

pub(super) struct LogInfo {
    pub host: String,
    pub method: String,
    pub path: String,
}

impl FastPath {
    /// Parses the head at the start of `buf` and decides what to do with it, writing
    /// the response or the upstream request into `out`. `conn` is the connection's
    /// local port and client; `forwarded` its `X-Forwarded-For/-Proto` lines.
    pub(super) fn plan(
        &self,
        buf: &[u8],
        conn: (u16, SocketAddr),
        forwarded: &[u8],
        out: &mut Vec<u8>,
    ) -> Plan {
        let mut headers = [httparse::EMPTY_HEADER; MAX_REQ_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let consumed = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Plan::NeedMore,
            Err(_) => return Plan::Fallback,
        };
        let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
            return Plan::Fallback;
        };
        if !target.starts_with('/') || method == "CONNECT" {
            return Plan::Fallback;
        }
        let mut host: Option<&[u8]> = None;
        let mut keepalive = true;
        for h in req.headers.iter() {
            match classify(h.name.as_bytes()) {
                Hdr::Host if host.is_some() => return Plan::Fallback,
                Hdr::Host => host = Some(h.value),
                Hdr::ContentLength => {
                    if h.value.trim_ascii() != b"0" {
                        return Plan::Fallback;
                    }
                }
                Hdr::Connection => {
                    for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                        if token.eq_ignore_ascii_case(b"close") {
                            keepalive = false;
                        } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                            // Nominated hop-by-hop headers: Pingora's sanitizer handles them.
                            return Plan::Fallback;
                        }
                    }
                }
                Hdr::Framing => return Plan::Fallback,
                Hdr::Drop | Hdr::Other => {}
            }
        }
        let snap = self.snapshot.load_full();
        let facts = Facts {
            listener: self.listener,
            local_port: conn.0,
            host: host.ok_or(HostError::Missing),
            method: method.as_bytes(),
            target: target.as_bytes(),
            target_len: target.len(),
            peer: Some(conn.1.ip()),
        };
        let decision = crate::request::decide(&snap, &facts);
        let head_only = method == "HEAD";
        let log = crate::request::access::access_log_on(&snap).then(|| LogInfo {
            host: host.map_or_else(|| "-".into(), |h| String::from_utf8_lossy(h).into_owned()),
            method: method.to_string(),
            path: target.to_string(),
        });
        let mut done = Done {
            consumed,
            site: decision.site(),
            outcome: decision.outcome(),
            status: 0,
            body_bytes: 0,
            keepalive,
            head_only,
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
            ),
            log,
            snap,
        };
        let site = match decision {
            Decision::BadHost => return Plan::Fallback,
            Decision::Proxy { site } => site,
            other => {
                let Some(reply) = crate::request::answer(&done.snap, &facts, other) else {
                    return Plan::Fallback;
                };
                done.status = reply.status;
                done.keepalive = keepalive && !reply.close;
                done.body_bytes = h1::write_reply(out, &reply, head_only, keepalive);
                return Plan::Respond(done);
            }
        };
        let Some(route) = done.snap.table.sites.get(site as usize) else {
            return Plan::Fallback;
        };
        if route.peers.iter().any(|p| p.is_tls()) {
            return Plan::Fallback;
        }
        let down = done.snap.states.get(site as usize).map_or(0, |e| e.down);
        let peer = route.pick_peer(down);
        let Some(addr) = peer.address().as_inet().copied() else {
            return Plan::Fallback;
        };
        let o = &peer.options;
        let up = Upstream {
            addr,
            connect_timeout: o.connection_timeout.unwrap_or(Duration::from_secs(10)),
            read_timeout: o.read_timeout.unwrap_or(Duration::from_secs(60)),
            write_timeout: o.write_timeout.unwrap_or(Duration::from_secs(60)),
            idle: o.idle_timeout.unwrap_or(DEFAULT_IDLE),
        };
        out.clear();
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for h in req.headers.iter() {
            if matches!(
                classify(h.name.as_bytes()),
                Hdr::Other | Hdr::Host | Hdr::ContentLength
            ) {
                h1::header(out, h.name.as_bytes(), h.value);
            }
        }
        out.extend_from_slice(forwarded);
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host.unwrap_or_default());
        out.extend_from_slice(b"\r\n\r\n");
        Plan::Proxy(up, done)
    }
}
