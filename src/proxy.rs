//! The Pingora hooks: one request → route lookup in the current snapshot → online:
//! proxy to an upstream / offline: redirect or maintenance page.
//!
//! Owns: the per-request data path and the access log line. Does not own: the routing
//! table (see `routes`), page contents (see `maintenance`), listeners (see `server`).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use pingora::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::config::{OfflineCode, SiteState};
use crate::maintenance;
use crate::routes::{HostError, SiteRoute, Snapshot};

/// The scheme of the listeners a proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Requests under this path are never redirected to HTTPS or to the status page: they
/// are proxied, so an ACME client behind offramp can renew certificates (HTTP-01).
pub const ACME_CHALLENGE_PREFIX: &[u8] = b"/.well-known/acme-challenge/";

/// Whether a request target is an ACME HTTP-01 challenge: the prefix followed by one
/// token of base64url characters (RFC 8555 section 8.3), nothing else. Anything more
/// (`../`, `%2e`, a query, a second segment) is an ordinary request, so the exception
/// cannot be used to reach other paths of an offline site or to dodge HTTPS.
pub fn is_acme_challenge(target: &[u8]) -> bool {
    target
        .strip_prefix(ACME_CHALLENGE_PREFIX)
        .is_some_and(|token| {
            !token.is_empty()
                && token
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `scheme://STATUS-HOST[:port]` of the built-in status page for a request that came in
/// on a listener of this scheme and port (or `[status] url` when set); `None` without a
/// status host.
pub fn builtin_status_origin(snap: &Snapshot, scheme: &str, port: u16) -> Option<String> {
    // `[status] url` is the public address, whatever listener the request came in on.
    if let Some(url) = &snap.table.status_origin {
        return Some(url.to_string());
    }
    let host = snap.table.status_hosts.first()?;
    Some(origin(scheme, host, port))
}

/// The status page an error page (502/504) of `site` links to: the site's own, or the
/// built-in one's overview, for a request that came in on this scheme and port.
pub fn error_page_link(
    snap: &Snapshot,
    site: &SiteRoute,
    scheme: &str,
    port: u16,
) -> Option<String> {
    match site.builtin {
        true => builtin_status_origin(snap, scheme, port).map(|o| format!("{o}/")),
        false => site.status_url.as_deref().map(str::to_string),
    }
}

/// The proxy application: reads the shared snapshot, never writes it.
pub struct Proxy {
    snapshot: Arc<ArcSwap<Snapshot>>,
    scheme: Scheme,
    /// Port of the first HTTPS listener, for `redirect_https` (`None`: no HTTPS).
    https_port: Option<u16>,
}

impl Proxy {
    /// A proxy for listeners of the given scheme.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, scheme: Scheme, https_port: Option<u16>) -> Proxy {
        Proxy {
            snapshot,
            scheme,
            https_port,
        }
    }

    /// `https://HOST[:PORT]` for a plain-HTTP request that must move to HTTPS.
    fn https_origin(&self, snap: &Snapshot, host: &[u8]) -> Option<String> {
        if self.scheme != Scheme::Http || !snap.table.redirect_https {
            return None;
        }
        let port = self.https_port?;
        let name = crate::routes::normalized_host(host).ok()?;
        Some(if port == 443 {
            format!("https://{name}")
        } else {
            format!("https://{name}:{port}")
        })
    }
}

impl Proxy {
    /// Scheme and port a visitor of this connection reaches offramp on: the listener's
    /// own (never the request's `Host`); plain HTTP goes straight to HTTPS when
    /// `redirect_https` would send it there anyway.
    fn public_scheme_port(&self, session: &Session, snap: &Snapshot) -> (&'static str, u16) {
        if self.scheme == Scheme::Http && snap.table.redirect_https {
            if let Some(port) = self.https_port {
                return ("https", port);
            }
        }
        let port = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map_or(0, |a| a.port());
        (self.scheme.as_str(), port)
    }

    /// `scheme://STATUS-HOST[:port]` of the built-in status page, `None` without a
    /// status host.
    fn status_origin(&self, session: &Session, snap: &Snapshot) -> Option<String> {
        let (scheme, port) = self.public_scheme_port(session, snap);
        builtin_status_origin(snap, scheme, port)
    }
}

/// `scheme://host[:port]`, the port left out when it is the scheme's default.
fn origin(scheme: &str, host: &str, port: u16) -> String {
    match (scheme, port) {
        ("http", 80) | ("https", 443) | (_, 0) => format!("{scheme}://{host}"),
        _ => format!("{scheme}://{host}:{port}"),
    }
}

pub use crate::metrics::Outcome;

/// Per-request state.
pub struct RequestCtx {
    start: Instant,
    snap: Option<Arc<Snapshot>>,
    site: u32,
    outcome: Outcome,
}

impl RequestCtx {
    fn has_site(&self) -> bool {
        !matches!(
            self.outcome,
            Outcome::UnknownHost | Outcome::BadRequest | Outcome::StatusPage
        )
    }

    fn site_name(&self) -> &str {
        match &self.snap {
            Some(s) if self.has_site() => s
                .table
                .sites
                .get(self.site as usize)
                .map_or("-", |r| &r.name),
            _ => "-",
        }
    }
}

/// The request's host: the target's authority for absolute-form and HTTP/2, else `Host`.
///
/// Pingora has already refused (400) a `Host` that differs from an absolute-form
/// target's authority, duplicate `Host` headers and ambiguous targets.
fn request_host(req: &RequestHeader) -> Result<&[u8], HostError> {
    if let Some(a) = req.uri.authority() {
        return Ok(a.as_str().as_bytes());
    }
    if let RawTargetAuthority::Absolute { authority, .. } = raw_target_authority(req.raw_path()) {
        return Ok(authority);
    }
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => Ok(h.as_bytes()),
        (None, _) => Err(HostError::Missing),
        (Some(_), Some(_)) => Err(HostError::Malformed),
    }
}

/// Path and query as the client sent them (an absolute-form target reduced to its path
/// and query, so the redirect never carries the client's scheme or authority).
fn request_target(req: &RequestHeader) -> &[u8] {
    if req.uri.authority().is_some() {
        return req
            .uri
            .path_and_query()
            .map_or(b"/", |pq| pq.as_str().as_bytes());
    }
    let raw = req.raw_path();
    match raw_target_authority(raw) {
        RawTargetAuthority::None => raw,
        RawTargetAuthority::Absolute { path_and_query, .. } if !path_and_query.is_empty() => {
            path_and_query
        }
        _ => b"/",
    }
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces inside), at most
/// 19 of them so it fits a `u64`.
pub fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// What to do with the `Content-Length` fields of a message.
#[derive(Debug, PartialEq, Eq)]
enum Length {
    /// None, or one plain number: leave it.
    Plain,
    /// A list of one value (`5, 5`, or several identical fields, RFC 9110 section
    /// 8.6): replace it with that one value.
    Repeated(u64),
    /// Differing values or anything that is not digits.
    Invalid,
}

fn content_length(headers: &http::HeaderMap) -> Length {
    let mut fields = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(first) = fields.next() else {
        return Length::Plain;
    };
    if fields.next().is_none() && parse_length(first.as_bytes()).is_some() {
        return Length::Plain;
    }
    let mut value = None;
    for field in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in field.as_bytes().split(|&b| b == b',') {
            match parse_length(part) {
                Some(n) if value.is_none_or(|v| v == n) => value = Some(n),
                _ => return Length::Invalid,
            }
        }
    }
    value.map_or(Length::Invalid, Length::Repeated)
}

/// Request bodies up to this size sent to a site that is not proxied (offline, unknown
/// host) are read and discarded so the connection can stay open; larger ones are never
/// read: the answer is sent and the connection closed after it.
pub const DISCARD_BODY_LIMIT: u64 = 1024 * 1024;
/// How long discarding such a body may take.
const DISCARD_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Before answering a request offramp does not proxy: discard a small request body so
/// keep-alive survives. Pingora closes the connection otherwise (it never reads a body
/// it was not asked to), which is also what happens to large or unknown-length bodies.
async fn discard_small_body(session: &mut Session) {
    if session.is_body_empty() {
        return;
    }
    let req = session.req_header();
    let expects_continue = req.headers.contains_key(http::header::EXPECT);
    let small = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n <= DISCARD_BODY_LIMIT);
    if small && !expects_continue {
        if let Ok(Err(e)) =
            tokio::time::timeout(DISCARD_BODY_TIMEOUT, session.drain_request_body()).await
        {
            tracing::debug!("discarding a request body: {e}");
        }
    }
}

/// Writes a complete response from `request_filter` without closing keep-alive.
async fn respond(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    body: String,
) -> Result<()> {
    respond_typed(
        session,
        status,
        "text/html; charset=utf-8",
        headers,
        Bytes::from(body),
    )
    .await
}

/// `respond` with any content type.
async fn respond_typed(
    session: &mut Session,
    status: u16,
    content_type: &str,
    headers: &[(&'static str, &str)],
    body: Bytes,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(headers.len() + 3))?;
    h.insert_header("Content-Type", content_type)?;
    h.insert_header("Content-Length", body.len().to_string())?;
    h.insert_header("Cache-Control", "no-store")?;
    for (k, v) in headers {
        h.insert_header(*k, *v)?;
    }
    discard_small_body(session).await;
    let head_only = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(h), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Answers a request to a status host (`[status] hosts`).
async fn serve_status(proxy: &Proxy, session: &mut Session, snap: &Snapshot) -> Result<()> {
    let (scheme, port) = proxy.public_scheme_port(session, snap);
    let host = request_host(session.req_header())
        .ok()
        .and_then(|h| crate::routes::normalized_host(h).ok())
        .unwrap_or_default();
    let origin = origin(scheme, &host, port);
    let req = session.req_header();
    let reply = crate::status::handle(
        &snap.table,
        &snap.view,
        &req.method,
        request_target(req),
        &origin,
    );
    let headers: Vec<(&'static str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    respond_typed(
        session,
        reply.status,
        reply.content_type,
        &headers,
        reply.body,
    )
    .await
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            snap: None,
            site: 0,
            outcome: Outcome::Proxied,
        }
    }

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {
        // No response compression module: offramp passes bodies through untouched.
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::guard::request_started(session);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snap = self.snapshot.load_full();
        // Bounds what reaches an upstream and the size of a redirect's Location.
        if session.req_header().raw_path().len() > crate::limits::MAX_REQUEST_TARGET {
            ctx.outcome = Outcome::BadRequest;
            ctx.snap = Some(snap);
            respond(session, 414, &[], maintenance::client_error_page(414)).await?;
            return Ok(true);
        }
        let lookup = request_host(session.req_header()).and_then(|h| snap.table.lookup(h));
        let idx = match lookup {
            Ok(Some(i)) => i,
            Ok(None) => {
                let host = request_host(session.req_header()).unwrap_or_default();
                if snap.table.is_status_host(host) {
                    ctx.outcome = Outcome::StatusPage;
                    if let Some(origin) = self.https_origin(&snap, host) {
                        let loc = crate::text::location(
                            &origin,
                            true,
                            request_target(session.req_header()),
                        );
                        let body = maintenance::redirect_page(&loc);
                        ctx.snap = Some(snap);
                        respond(session, 308, &[("Location", &loc)], body).await?;
                    } else {
                        serve_status(self, session, &snap).await?;
                        ctx.snap = Some(snap);
                    }
                    return Ok(true);
                }
                ctx.outcome = Outcome::UnknownHost;
                ctx.snap = Some(snap);
                respond(session, 404, &[], maintenance::unknown_host_page()).await?;
                return Ok(true);
            }
            Err(_) => {
                ctx.outcome = Outcome::BadRequest;
                ctx.snap = Some(snap);
                respond(session, 400, &[], maintenance::bad_host_page()).await?;
                return Ok(true);
            }
        };
        ctx.site = idx;
        let state = snap.states[idx as usize];
        let site = &snap.table.sites[idx as usize];
        let acme =
            self.scheme == Scheme::Http && is_acme_challenge(request_target(session.req_header()));
        if !acme {
            let https = request_host(session.req_header())
                .ok()
                .and_then(|h| self.https_origin(&snap, h));
            if let Some(origin) = https {
                ctx.outcome = Outcome::HttpsRedirect;
                let loc =
                    crate::text::location(&origin, true, request_target(session.req_header()));
                let body = maintenance::redirect_page(&loc);
                ctx.snap = Some(snap);
                respond(session, 308, &[("Location", &loc)], body).await?;
                return Ok(true);
            }
        }
        if state.state == SiteState::Offline && !acme {
            let builtin = match (site.code, site.builtin) {
                (OfflineCode::Found | OfflineCode::Temporary, true) => {
                    self.status_origin(session, &snap)
                }
                _ => None,
            };
            if let Some(status_origin) = builtin {
                ctx.outcome = Outcome::Redirected;
                let req = session.req_header();
                let host = request_host(req).unwrap_or_default();
                let mut from = String::with_capacity(host.len() + 16);
                from.push_str(self.scheme.as_str());
                from.push_str("://");
                from.push_str(&String::from_utf8_lossy(host).to_ascii_lowercase());
                let from = crate::text::location(&from, true, request_target(req));
                let loc = maintenance::builtin_location(&status_origin, &site.name, &from);
                let body = maintenance::redirect_page(&loc);
                respond(session, site.code.status(), &[("Location", &loc)], body).await?;
                ctx.snap = Some(snap);
                return Ok(true);
            }
            match (site.code, site.status_url.as_deref()) {
                (OfflineCode::Found | OfflineCode::Temporary, Some(prefix)) => {
                    ctx.outcome = Outcome::Redirected;
                    let loc = crate::text::location(
                        prefix,
                        site.keep_uri,
                        request_target(session.req_header()),
                    );
                    let body = maintenance::redirect_page(&loc);
                    respond(session, site.code.status(), &[("Location", &loc)], body).await?;
                }
                _ => {
                    ctx.outcome = Outcome::Maintenance;
                    let link = match site.builtin {
                        true => self.status_origin(session, &snap).map(|o| {
                            format!("{o}{}{}", crate::status::MAINTENANCE_PREFIX, site.name)
                        }),
                        false => site.status_url.as_deref().map(str::to_string),
                    };
                    let reason = snap
                        .view
                        .sites
                        .get(idx as usize)
                        .and_then(|v| v.reason.as_deref());
                    let body = maintenance::maintenance_page(
                        &site.name,
                        link.as_deref(),
                        state.until,
                        reason,
                    );
                    match state.until {
                        Some(until) => {
                            let secs = maintenance::retry_after_secs(until).to_string();
                            respond(session, 503, &[("Retry-After", &secs)], body).await?
                        }
                        None => respond(session, 503, &[], body).await?,
                    }
                }
            }
            ctx.snap = Some(snap);
            return Ok(true);
        }
        ctx.snap = Some(snap);
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let site = ctx
            .snap
            .as_ref()
            .and_then(|s| s.table.sites.get(ctx.site as usize))
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no site selected"))?;
        Ok(Box::new(site.pick_peer().clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(ip) = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
        {
            // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: send a.b.c.d.
            upstream.insert_header("x-forwarded-for", ip.to_canonical().to_string())?;
        } else {
            upstream.remove_header("x-forwarded-for");
        }
        upstream.insert_header("x-forwarded-proto", self.scheme.as_str())?;
        // An absolute-form target goes upstream in origin-form, as origin servers expect.
        let origin_form = match raw_target_authority(upstream.raw_path()) {
            RawTargetAuthority::Absolute { path_and_query, .. } => {
                Some(if path_and_query.is_empty() {
                    b"/".to_vec()
                } else {
                    path_and_query.to_vec()
                })
            }
            _ => None,
        };
        if let Some(target) = origin_form {
            upstream.set_raw_path(&target)?;
        }
        // Pingora accepts identical repeated values (`Content-Length: 5, 5`, RFC 9110
        // section 8.6) and reads one body of that length: the upstream gets that one
        // value, never a list it might read differently.
        if let Length::Repeated(n) = content_length(&upstream.headers) {
            upstream.insert_header(http::header::CONTENT_LENGTH, n.to_string())?;
        }
        let host = request_host(session.req_header()).ok().map(<[u8]>::to_vec);
        if let Some(host) = host {
            upstream.insert_header("x-forwarded-host", host.as_slice())?;
            // HTTP/2 and absolute-form requests carry the host in the URI: give the
            // upstream an HTTP/1.1 Host header with the same value.
            if upstream.headers.get(http::header::HOST).is_none()
                || upstream.uri.authority().is_some()
            {
                upstream.insert_header(http::header::HOST, host.as_slice())?;
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Three digits is all the parser checks; a status outside 100-599 is garbage.
        let status = upstream_response.status.as_u16();
        if !(100..=599).contains(&status) {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                format!("upstream answered with status {status}"),
            )
            .into_up());
        }
        // Clients disagree on `+5` or `5, 6`: refuse them; say a repeated value once.
        match content_length(&upstream_response.headers) {
            Length::Plain => {}
            Length::Repeated(n) => {
                upstream_response.insert_header(http::header::CONTENT_LENGTH, n.to_string())?
            }
            Length::Invalid => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "upstream answered with an invalid Content-Length",
                )
                .into_up())
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy
    where
        RequestCtx: Send + Sync,
    {
        let code = match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(c)) => *c,
            (ErrorSource::Upstream, ErrorType::ReadTimedout | ErrorType::WriteTimedout) => 504,
            (ErrorSource::Upstream, _) => 502,
            (
                ErrorSource::Downstream,
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
            ) => 0,
            (ErrorSource::Downstream, _) => 400,
            _ => 502,
        };
        if code >= 502 {
            if let Some(site) = ctx
                .snap
                .as_ref()
                .and_then(|s| s.table.sites.get(ctx.site as usize))
            {
                site.counters.upstream_error();
            }
        }
        if code > 0 && session.response_written().is_none() {
            // The connection is not reused after a failure: say so in the answer.
            session.set_keepalive(None);
            let link = ctx.snap.as_ref().and_then(|snap| {
                let site = snap.table.sites.get(ctx.site as usize)?;
                let (scheme, port) = self.public_scheme_port(session, snap);
                error_page_link(snap, site, scheme, port)
            });
            let body = if code >= 500 {
                maintenance::upstream_error_page(code, link.as_deref())
            } else {
                maintenance::client_error_page(code)
            };
            if let Err(err) = respond(session, code, &[], body).await {
                tracing::debug!("could not send the error page: {err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        crate::guard::request_finished(session);
        let Some(snap) = &ctx.snap else { return };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.start.elapsed();
        let counters = match snap.table.sites.get(ctx.site as usize) {
            Some(site) if ctx.has_site() => &site.counters,
            _ => &snap.table.no_site,
        };
        counters.request(ctx.outcome, status, elapsed);
        if !access_log_on(snap) {
            return;
        }
        let req = session.req_header();
        let state = match ctx.outcome {
            Outcome::Proxied => "online",
            Outcome::HttpsRedirect => snap
                .states
                .get(ctx.site as usize)
                .map_or("-", |s| s.state.as_str()),
            Outcome::Redirected | Outcome::Maintenance => "offline",
            Outcome::UnknownHost | Outcome::BadRequest | Outcome::StatusPage => "-",
        };
        let host =
            request_host(req).map_or(std::borrow::Cow::Borrowed("-"), String::from_utf8_lossy);
        access_log(&AccessLine {
            client: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            host: &host,
            site: ctx.site_name(),
            state,
            method: req.method.as_str(),
            path: &String::from_utf8_lossy(request_target(req)),
            status,
            bytes: session.body_bytes_sent(),
            elapsed,
            error: e.map(|e| e.etype().as_str()),
        });
    }
}

/// Whether requests get an access-log line: `access_log = true` and `RUST_LOG` lets
/// `offramp::access` info through. Checked before any field is formatted, so a filtered
/// access log costs nothing per request.
pub fn access_log_on(snap: &Snapshot) -> bool {
    snap.table.access_log && tracing::enabled!(target: "offramp::access", tracing::Level::INFO)
}

/// The fields of one access-log line.
pub struct AccessLine<'a> {
    pub client: Option<std::net::IpAddr>,
    pub host: &'a str,
    pub site: &'a str,
    pub state: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub elapsed: std::time::Duration,
    pub error: Option<&'a str>,
}

/// Writes the access-log line of one request (both the Pingora and the fast path).
pub fn access_log(l: &AccessLine) {
    // A dual-stack "[::]" listener sees IPv4 clients as ::ffff:a.b.c.d.
    let client = l.client.map(|ip| ip.to_canonical());
    tracing::info!(
        target: "offramp::access",
        client = %client.map_or_else(|| "-".to_string(), |ip| ip.to_string()),
        host = %l.host,
        site = l.site,
        state = l.state,
        method = %l.method,
        path = %l.path,
        status = l.status,
        bytes = l.bytes,
        duration_ms = l.elapsed.as_secs_f64() * 1000.0,
        error = l.error,
    );
}
