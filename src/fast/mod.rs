//! offramp's own HTTP/1.1 path for plain-HTTP client connections.
//!
//! Pingora's proxy loop costs about 1.4x nginx's CPU per request before offramp adds
//! anything (PERFORMANCE.md): per-request header maps, a two-task body pipeline, a
//! locked upstream pool with a watcher task per idle connection. The requests a home
//! lab sees most — HTTP/1.1 without a request body or an upgrade — are served here
//! instead: one read and one write per hop, a per-thread upstream keep-alive pool
//! without locks, and buffers owned by the connection. What each request gets is
//! decided by `request::decide`, exactly as on Pingora's path; `head` lists what is
//! handed to Pingora instead, together with the bytes already read (the connection
//! stays with Pingora from then on).
//!
//! Files: `head` (parse, decide, write the answer or the upstream request),
//! `exchange` (one proxied exchange), `pool` (per-thread upstream connections),
//! `chunked` (chunked-body framing), `io` (timer and writes). Does not own: any
//! decision (see `request`), the HTTP/1 head format (see `reply::h1`).

pub(crate) mod chunked;
mod exchange;
mod head;
mod io;
mod pool;
mod response;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant as TInstant;

use exchange::{proxy_exchange, Failure};
use head::{Done, Plan};
use io::{consume, draining, write_client, Timer, IO_CHUNK};
pub use pool::{pool_clear, pool_sweep};

use crate::reply::h1;
use crate::request::upstream_error::UpstreamError;
use crate::request::{access, forward, location, Listener, Scheme};
use crate::snapshot::Snapshot;

/// A request head that is not complete within this many bytes goes to Pingora.
const MAX_HEAD: usize = 16 * 1024;

/// How a connection left the fast path.
pub enum End {
    /// Closed (by either side, or after a `Connection: close` exchange).
    Closed,
    /// Hand the connection to Pingora; these bytes were read and not answered yet, and
    /// the request they begin started arriving at that instant.
    Fallback(TcpStream, Vec<u8>, Instant),
}

/// The fast path of one plain-HTTP listener set; reads the shared snapshot.
pub struct FastPath {
    snapshot: Arc<ArcSwap<Snapshot>>,
    listener: Listener,
}

impl FastPath {
    /// A fast path over the daemon's snapshot, for plain-HTTP listeners (`https_port`:
    /// the first HTTPS listener's, for `redirect_https`).
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, https_port: Option<u16>) -> FastPath {
        FastPath {
            snapshot,
            listener: Listener {
                scheme: Scheme::Http,
                https_port,
            },
        }
    }

    /// The snapshot it reads (also what requests handed to Pingora are counted in).
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.snapshot
    }

    /// Serves requests on `tcp` until it closes or a request needs Pingora. `initial`
    /// holds the bytes already read from it (the start of the first request, which
    /// began arriving at `first_byte`). `shutdown` turns true when the server drains:
    /// idle connections close then.
    pub async fn serve(
        &self,
        mut tcp: TcpStream,
        client: SocketAddr,
        initial: Vec<u8>,
        first_byte: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> End {
        let mut buf: Vec<u8> = initial;
        buf.reserve(4096usize.saturating_sub(buf.len()));
        // The same for every request of the connection: formatted once.
        let forwarded = forwarded_headers(client.ip());
        let conn = (tcp.local_addr().map_or(0, |a| a.port()), client);
        let mut timer = Timer::new();
        // Registered once for the connection's life, not once per request.
        let mut drain = std::pin::pin!(shutdown.wait_for(|s| *s));
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        let mut ubuf: Vec<u8> = Vec::new();
        // The upstream request, while `out` takes the client's response head.
        let mut req: Vec<u8> = Vec::new();
        // Set when the first bytes of a request head arrived: the whole head must follow
        // within `limits::REQUEST_HEAD_TIMEOUT`.
        let mut head_deadline: Option<TInstant> = None;
        // When the current request's first bytes were read (or the previous request
        // ended, for a pipelined one). Clock reads are a visible share of a redirect's
        // cost, so the ones taken are reused.
        let mut start = first_byte;
        loop {
            let plan = if buf.is_empty() {
                Plan::NeedMore
            } else {
                self.plan(&buf, conn, &forwarded, &mut out)
            };
            match plan {
                Plan::NeedMore => {
                    if buf.len() >= MAX_HEAD {
                        return End::Fallback(tcp, buf, start);
                    }
                    if buf.capacity() - buf.len() < 1024 {
                        buf.reserve(IO_CHUNK);
                    }
                    let read = if buf.is_empty() {
                        // Between requests: the same idle limit as `guard` sets for Pingora,
                        // and no waiting past a drain.
                        let deadline = TInstant::from_std(start) + crate::limits::KEEPALIVE_TIMEOUT;
                        let idle = timer.within(deadline, async {
                            tokio::select! {
                                biased;
                                r = tcp.read_buf(&mut buf) => Some(r),
                                _ = &mut drain => None,
                            }
                        });
                        match idle.await {
                            Some(Some(r)) => r,
                            _ => return End::Closed,
                        }
                    } else {
                        let deadline = *head_deadline.get_or_insert_with(|| {
                            TInstant::from_std(start) + crate::limits::REQUEST_HEAD_TIMEOUT
                        });
                        match timer.within(deadline, tcp.read_buf(&mut buf)).await {
                            Some(r) => r,
                            None => {
                                let _ = write_client(&mut tcp, h1::TIMEOUT_408).await;
                                return End::Closed;
                            }
                        }
                    };
                    match read {
                        Ok(0) | Err(_) => return End::Closed,
                        Ok(_) => {
                            if head_deadline.is_none() {
                                start = Instant::now();
                            }
                            continue;
                        }
                    }
                }
                Plan::Fallback => return End::Fallback(tcp, buf, start),
                Plan::Respond(mut done) => {
                    head_deadline = None;
                    if write_client(&mut tcp, &out).await.is_err() {
                        done.status = 0;
                        finish(&done, client.ip(), start, Some("WriteError"));
                        return End::Closed;
                    }
                    start = finish(&done, client.ip(), start, None);
                    if !done.keepalive || draining(drain.as_mut()) {
                        return End::Closed;
                    }
                    consume(&mut buf, done.consumed);
                }
                Plan::Proxy(up, mut done) => {
                    head_deadline = None;
                    std::mem::swap(&mut out, &mut req);
                    let r = proxy_exchange(
                        &up, &req, &mut tcp, &mut ubuf, &mut out, &mut done, start, &mut timer,
                    )
                    .await;
                    match r {
                        Ok(()) => start = finish(&done, client.ip(), start, None),
                        Err(Failure::Upstream(kind)) => {
                            access::count_upstream_error(&done.snap, done.site);
                            if kind != UpstreamError::CutBody {
                                // Nothing went to the client yet: the error page.
                                let code = kind.status();
                                let (scheme, port) = crate::request::public_scheme_port(
                                    &done.snap,
                                    self.listener,
                                    conn.0,
                                );
                                let link = done.site.and_then(|s| {
                                    location::error_page_link(&done.snap, s, scheme, port)
                                });
                                let reply =
                                    crate::request::upstream_error_reply(code, link.as_deref());
                                done.status = code;
                                done.body_bytes =
                                    h1::write_reply(&mut out, &reply, done.head_only, false);
                                let _ = write_client(&mut tcp, &out).await;
                            }
                            finish(&done, client.ip(), start, Some(kind.label()));
                            return End::Closed;
                        }
                        Err(Failure::ClientGone) => {
                            finish(&done, client.ip(), start, Some("WriteError"));
                            return End::Closed;
                        }
                    }
                    if !done.keepalive || draining(drain.as_mut()) {
                        return End::Closed;
                    }
                    consume(&mut buf, done.consumed);
                }
            }
        }
    }
}

/// `X-Forwarded-For` and `X-Forwarded-Proto` lines for requests from `client`.
fn forwarded_headers(client: IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    h1::header(
        &mut out,
        b"x-forwarded-for",
        forward::forwarded_for(client).to_string().as_bytes(),
    );
    h1::header(
        &mut out,
        b"x-forwarded-proto",
        forward::forwarded_proto(Scheme::Http).as_bytes(),
    );
    out
}

/// Counts the request and writes its access-log line (when on); returns the time it
/// ended.
fn finish(done: &Done, client: IpAddr, start: Instant, error: Option<&str>) -> Instant {
    let end = Instant::now();
    let elapsed = end - start;
    access::count(&done.snap, done.site, done.outcome, done.status, elapsed);
    if let Some(l) = &done.log {
        access::access_log(&access::AccessLine {
            client: Some(client),
            host: &l.host,
            site: access::site_name(&done.snap, done.site),
            state: access::state_label(&done.snap, done.site, done.outcome),
            method: &l.method,
            path: &l.path,
            status: done.status,
            bytes: done.body_bytes,
            elapsed,
            error,
        });
    }
    end
}
