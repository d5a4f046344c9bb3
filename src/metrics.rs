//! Prometheus metrics and the admin listener (`[server] admin`): `/metrics` in the text
//! exposition format and `/healthz`.
//!
//! The registry is process-wide (one daemon per process). The data path never looks a
//! metric up by label: each site's route caches its counters (see `SiteCounters`),
//! so counting a request is an atomic add. Owns: metric names and labels, the admin
//! HTTP server. Does not own: what is counted where (callers in `proxy`, `daemon`,
//! `server`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// What happened to a request, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proxied = 0,
    Redirected = 1,
    Maintenance = 2,
    HttpsRedirect = 3,
    UnknownHost = 4,
    BadRequest = 5,
    /// Answered by the built-in status page on a status host.
    StatusPage = 6,
}

const OUTCOMES: [&str; 7] = [
    "proxied",
    "redirected",
    "maintenance",
    "https_redirect",
    "unknown_host",
    "bad_request",
    "status_page",
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Every metric offramp exports.
pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    pub flips: IntCounterVec,
    pub reloads: IntCounter,
    pub reload_errors: IntCounter,
    pub open_connections: IntGauge,
    site_offline: IntGaugeVec,
    certificate_expiry: IntGaugeVec,
}

/// Request latency buckets, in seconds: sub-millisecond redirects to slow upstreams.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

impl Metrics {
    fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "offramp_requests_total",
                "Requests answered, by site, outcome and status class.",
            ),
            &["site", "outcome", "class"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "offramp_request_duration_seconds",
                "Time from request start to the end of the response, by site.",
            )
            .buckets(BUCKETS.to_vec()),
            &["site"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "offramp_upstream_errors_total",
                "Requests that could not be proxied (502/504), by site.",
            ),
            &["site"],
        )?;
        let flips = IntCounterVec::new(
            Opts::new(
                "offramp_flips_total",
                "Runtime changes through the control socket, by action (offline, online, reset, expired).",
            ),
            &["action"],
        )?;
        let reloads = IntCounter::new("offramp_reloads_total", "Config reloads applied.")?;
        let reload_errors = IntCounter::new(
            "offramp_reload_errors_total",
            "Config reloads refused because the new config was invalid.",
        )?;
        let open_connections = IntGauge::new(
            "offramp_open_connections",
            "Client connections open on the proxy listeners.",
        )?;
        let site_offline = IntGaugeVec::new(
            Opts::new(
                "offramp_site_offline",
                "Effective state of each site: 1 offline, 0 online.",
            ),
            &["site"],
        )?;
        let certificate_expiry = IntGaugeVec::new(
            Opts::new(
                "offramp_certificate_expiry_timestamp_seconds",
                "When each certificate in force expires (notAfter), in seconds since the Unix epoch, by pair name (NAME of NAME.crt).",
            ),
            &["name"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(flips.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(reload_errors.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        registry.register(Box::new(site_offline.clone()))?;
        registry.register(Box::new(certificate_expiry.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            flips,
            reloads,
            reload_errors,
            open_connections,
            site_offline,
            certificate_expiry,
        })
    }

    /// Replaces the certificate expiry gauges with `certs` (pair name, notAfter as Unix
    /// seconds): the certificates now in force.
    pub fn set_certificates<'a>(&self, certs: impl IntoIterator<Item = (&'a str, i64)>) {
        self.certificate_expiry.reset();
        for (name, not_after) in certs {
            self.certificate_expiry
                .with_label_values(&[name])
                .set(not_after);
        }
    }

    /// Sets the per-site state gauge.
    pub fn set_site_offline(&self, site: &str, offline: bool) {
        self.site_offline
            .with_label_values(&[site])
            .set(i64::from(offline));
    }

    /// Forgets the series of a site that left the config.
    pub fn forget_site(&self, site: &str) {
        let _ = self.site_offline.remove_label_values(&[site]);
        let _ = self.duration.remove_label_values(&[site]);
        let _ = self.upstream_errors.remove_label_values(&[site]);
        for o in OUTCOMES {
            for c in CLASSES {
                let _ = self.requests.remove_label_values(&[site, o, c]);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            warn!("cannot encode metrics: {e}");
        }
        out
    }
}

static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();

/// The process-wide metrics (`None` only if the registry could not be built, which
/// would be a bug in the metric definitions; offramp then runs without metrics).
pub fn get() -> Option<&'static Metrics> {
    METRICS
        .get_or_init(|| match Metrics::new() {
            Ok(m) => Some(m),
            Err(e) => {
                warn!("metrics disabled: {e}");
                None
            }
        })
        .as_ref()
}

/// One site's (or the no-site bucket's) request counters, resolved on first use and
/// cached in the route so the data path does no label lookups.
pub struct SiteCounters {
    site: Arc<str>,
    requests: [[OnceLock<IntCounter>; 6]; 7],
    duration: OnceLock<Histogram>,
    upstream_errors: OnceLock<IntCounter>,
}

impl SiteCounters {
    pub fn new(site: Arc<str>) -> SiteCounters {
        SiteCounters {
            site,
            requests: Default::default(),
            duration: OnceLock::new(),
            upstream_errors: OnceLock::new(),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, outcome: Outcome, status: u16, elapsed: Duration) {
        let Some(m) = get() else { return };
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        let o = outcome as usize;
        self.requests[o][class]
            .get_or_init(|| {
                m.requests
                    .with_label_values(&[&*self.site, OUTCOMES[o], CLASSES[class]])
            })
            .inc();
        self.duration
            .get_or_init(|| m.duration.with_label_values(&[&*self.site]))
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request that failed upstream.
    pub fn upstream_error(&self) {
        let Some(m) = get() else { return };
        self.upstream_errors
            .get_or_init(|| m.upstream_errors.with_label_values(&[&*self.site]))
            .inc();
    }
}

/// Admin connections served at once. Prometheus needs one; the bound keeps a local
/// process that opens connections in a loop from using up memory and file descriptors.
pub const ADMIN_MAX_CONNECTIONS: usize = 32;

/// Serves `/metrics` and `/healthz` on the admin listener until the process exits.
/// Connections beyond [`ADMIN_MAX_CONNECTIONS`] get a 503 and are closed.
pub async fn serve_admin(listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Best effort and never blocking: the answer fits in the empty send
                    // buffer of a new socket; the socket is closed right after.
                    let _ = s.try_write(&response(
                        503,
                        "text/plain",
                        b"too many admin connections\n",
                        false,
                        true,
                    ));
                    debug!("admin connection from {peer} refused: {ADMIN_MAX_CONNECTIONS} already open");
                    continue;
                };
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = admin_connection(s).await {
                        debug!("admin connection: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

const ADMIN_MAX_HEAD: usize = 8 * 1024;
/// How long a connection may stay idle, or a request or response take to cross.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin listener needs of a request head.
struct AdminRequest {
    get: bool,
    head: bool,
    path: String,
    /// HTTP/1.0, `Connection: close`, or a body we do not read: close after answering.
    close: bool,
}

/// Parses one request head at the start of `buf`: `Ok(None)` while incomplete, else the
/// request and the length of its head.
fn parse_head(buf: &[u8]) -> Result<Option<(AdminRequest, usize)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let mut close = req.version != Some(1);
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
        {
            // Bodies are not expected here: answer, then end the connection rather than
            // read one.
            close = true;
        }
    }
    let request = AdminRequest {
        get: method == "GET",
        head: method == "HEAD",
        path: target.split('?').next().unwrap_or_default().to_string(),
        close,
    };
    Ok(Some((request, len)))
}

async fn admin_connection(mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let req = loop {
            match parse_head(&buf) {
                Ok(Some((req, len))) => {
                    buf.drain(..len);
                    break req;
                }
                Ok(None) if buf.len() > ADMIN_MAX_HEAD => {
                    let out = response(
                        431,
                        "text/plain",
                        b"request header too large\n",
                        false,
                        true,
                    );
                    return finish(&mut s, &out).await;
                }
                Ok(None) => {}
                Err(_) => {
                    let out = response(400, "text/plain", b"bad request\n", false, true);
                    return finish(&mut s, &out).await;
                }
            }
            let mut chunk = [0u8; 1024];
            let n = match tokio::time::timeout(ADMIN_TIMEOUT, s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head_only = req.head;
        let out = match (req.get || req.head, req.path.as_str()) {
            (true, "/metrics") => {
                let body = get().map(Metrics::render).unwrap_or_default();
                response(
                    200,
                    "text/plain; version=0.0.4",
                    &body,
                    head_only,
                    req.close,
                )
            }
            (true, "/healthz") => response(200, "text/plain", b"ok\n", head_only, req.close),
            (true, _) => response(404, "text/plain", b"not found\n", head_only, req.close),
            (false, _) => response(
                405,
                "text/plain",
                b"method not allowed\n",
                head_only,
                req.close,
            ),
        };
        if req.close {
            return finish(&mut s, &out).await;
        }
        match tokio::time::timeout(ADMIN_TIMEOUT, s.write_all(&out)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
    }
}

/// Writes the last response of a connection and closes it.
async fn finish(s: &mut TcpStream, out: &[u8]) -> std::io::Result<()> {
    let sent = tokio::time::timeout(ADMIN_TIMEOUT, async {
        s.write_all(out).await?;
        s.shutdown().await
    })
    .await;
    match sent {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

fn response(status: u16, content_type: &str, body: &[u8], head_only: bool, close: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> AdminRequest {
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, len))) => {
                assert_eq!(len, raw.len());
                r
            }
            other => panic!("{raw:?} did not parse: {:?}", other.map(|o| o.is_some())),
        }
    }

    #[test]
    fn http_1_0_and_connection_close_end_the_connection() {
        assert!(parse("GET /healthz HTTP/1.0\r\n\r\n").close);
        assert!(parse("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").close);
        assert!(parse("GET /healthz HTTP/1.1\r\nconnection: keep-alive, Close\r\n\r\n").close);
        assert!(parse("GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n").close);
        assert!(parse("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").close);
        let keep = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert!(!keep.close);
        assert!(keep.get && !keep.head);
        assert_eq!(keep.path, "/metrics");
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert!(matches!(parse_head(b"GET /healthz HTTP/1.1\r\n"), Ok(None)));
        assert!(parse_head(b"GET /healthz HTTP/9.9\r\n\r\n").is_err());
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn closing_responses_say_so() {
        let r = String::from_utf8(response(200, "text/plain", b"ok\n", false, true))
            .unwrap_or_default();
        assert!(r.contains("\r\nConnection: close\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nok\n"), "{r}");
        let r = String::from_utf8(response(200, "text/plain", b"ok\n", true, false))
            .unwrap_or_default();
        assert!(!r.contains("Connection"), "{r}");
        assert!(
            r.ends_with("Content-Length: 3\r\nCache-Control: no-store\r\n\r\n"),
            "{r}"
        );
    }
}
