//! Prometheus metrics: the process-wide registry, metric names and labels, and the
//! per-site counters the data path counts on.
//!
//! The registry is process-wide (one daemon per process). The data path never looks a
//! metric up by label: each site's route caches its counters (see `SiteCounters`),
//! so counting a request is an atomic add. Owns: metric names and labels. Does not own:
//! what is counted where (callers in `proxy`, `daemon`, `server`), or serving them
//! (the top-level `admin`: the `[server] admin` listener).

mod health;
mod notify;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::warn;

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
    /// Health checks and alerts.
    pub health: health::HealthMetrics,
    /// Notification deliveries.
    pub notify: notify::NotifyMetrics,
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
        let health = health::HealthMetrics::new(&registry)?;
        let notify = notify::NotifyMetrics::new(&registry)?;
        Ok(Metrics {
            health,
            notify,
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
        self.health.forget_site(site);
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
    /// Counters for `site`, each looked up in the registry on its first use.
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
