//! Counting a request and its access-log line, the same for both paths (and for the
//! requests the connection guard answers before any path sees them).

use std::net::IpAddr;
use std::time::Duration;

use crate::metrics::Outcome;
use crate::snapshot::Snapshot;

/// Whether requests get an access-log line: `access_log = true` and `RUST_LOG` lets
/// `offramp::access` info through. Checked before any field is formatted, so a filtered
/// access log costs nothing per request.
pub fn access_log_on(snap: &Snapshot) -> bool {
    snap.table.access_log && tracing::enabled!(target: "offramp::access", tracing::Level::INFO)
}

/// The `state` field of a request's access-log line: the state the site was served in
/// (`online` when proxied, `offline` when redirected or shown the maintenance page, the
/// site's state for an HTTPS redirect), `-` without a site.
pub fn state_label(snap: &Snapshot, site: Option<u32>, outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Proxied => "online",
        Outcome::Redirected | Outcome::Maintenance => "offline",
        Outcome::HttpsRedirect => site
            .and_then(|i| snap.states.get(i as usize))
            .map_or("-", |s| s.state.as_str()),
        Outcome::UnknownHost | Outcome::BadRequest | Outcome::StatusPage => "-",
    }
}

/// Counts a request in its site's metrics (or `site="-"`).
pub fn count(snap: &Snapshot, site: Option<u32>, outcome: Outcome, status: u16, elapsed: Duration) {
    let counters = site
        .and_then(|i| snap.table.sites.get(i as usize))
        .map_or(&snap.table.no_site, |s| &s.counters);
    counters.request(outcome, status, elapsed);
}

/// Counts an upstream error for site `site`.
pub fn count_upstream_error(snap: &Snapshot, site: Option<u32>) {
    if let Some(s) = site.and_then(|i| snap.table.sites.get(i as usize)) {
        s.counters.upstream_error();
    }
}

/// The name of site `site` for the log, `-` without one.
pub fn site_name(snap: &Snapshot, site: Option<u32>) -> &str {
    site.and_then(|i| snap.table.sites.get(i as usize))
        .map_or("-", |s| &s.name)
}

/// The fields of one access-log line.
pub struct AccessLine<'a> {
    pub client: Option<IpAddr>,
    pub host: &'a str,
    pub site: &'a str,
    pub state: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub elapsed: Duration,
    pub error: Option<&'a str>,
}

/// Writes the access-log line of one request.
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
