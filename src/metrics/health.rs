//! The health checks' and alerts' metrics: upstream and site up gauges, check
//! durations, failures by reason, and Alertmanager alerts received and ignored.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Check duration buckets, in seconds: a LAN answer to a timeout.
const CHECK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The series of section 10.
pub struct HealthMetrics {
    upstream_up: IntGaugeVec,
    site_up: IntGaugeVec,
    check_duration: HistogramVec,
    check_failures: IntCounterVec,
    alerts: IntCounterVec,
}

impl HealthMetrics {
    pub(super) fn new(registry: &Registry) -> Result<HealthMetrics, prometheus::Error> {
        let upstream_up = IntGaugeVec::new(
            Opts::new(
                "offramp_upstream_up",
                "Health of each upstream as its checks decided it: 1 up, 0 down (absent until checked).",
            ),
            &["site", "upstream"],
        )?;
        let site_up = IntGaugeVec::new(
            Opts::new(
                "offramp_site_up",
                "1 while at least one of a site's upstreams is up, 0 when all are down (absent until checked).",
            ),
            &["site"],
        )?;
        let check_duration = HistogramVec::new(
            HistogramOpts::new(
                "offramp_health_check_duration_seconds",
                "Time a health check took, by site.",
            )
            .buckets(CHECK_BUCKETS.to_vec()),
            &["site"],
        )?;
        let check_failures = IntCounterVec::new(
            Opts::new(
                "offramp_health_check_failures_total",
                "Failed health checks, by site, upstream and reason (connect, timeout, tls, protocol, reset, status).",
            ),
            &["site", "upstream", "reason"],
        )?;
        let alerts = IntCounterVec::new(
            Opts::new(
                "offramp_alerts_total",
                "Alerts received from Alertmanager, by result (applied, resolved, unknown_component, no_component).",
            ),
            &["result"],
        )?;
        registry.register(Box::new(upstream_up.clone()))?;
        registry.register(Box::new(site_up.clone()))?;
        registry.register(Box::new(check_duration.clone()))?;
        registry.register(Box::new(check_failures.clone()))?;
        registry.register(Box::new(alerts.clone()))?;
        Ok(HealthMetrics {
            upstream_up,
            site_up,
            check_duration,
            check_failures,
            alerts,
        })
    }

    /// Sets an upstream's gauge (`None`: not checked, the series is removed).
    pub fn set_upstream(&self, site: &str, upstream: &str, up: Option<bool>) {
        match up {
            Some(up) => self
                .upstream_up
                .with_label_values(&[site, upstream])
                .set(i64::from(up)),
            None => {
                let _ = self.upstream_up.remove_label_values(&[site, upstream]);
            }
        }
    }

    /// Sets a site's gauge (`None`: not checked, the series is removed).
    pub fn set_site(&self, site: &str, up: Option<bool>) {
        match up {
            Some(up) => self.site_up.with_label_values(&[site]).set(i64::from(up)),
            None => {
                let _ = self.site_up.remove_label_values(&[site]);
            }
        }
    }

    /// The check-duration histogram of `site`, for a checker to keep (no label lookup
    /// per check).
    pub fn check_histogram(&self, site: &str) -> prometheus::Histogram {
        self.check_duration.with_label_values(&[site])
    }

    /// Counts one failed check.
    pub fn count_check_failure(&self, site: &str, upstream: &str, reason: &str) {
        self.check_failures
            .with_label_values(&[site, upstream, reason])
            .inc();
    }

    /// Counts one alert of an Alertmanager notification by what became of it.
    pub fn count_alert(&self, result: &str) {
        self.alerts.with_label_values(&[result]).inc();
    }

    /// Forgets the series of an upstream no longer checked (gone from the config, or
    /// its site's checks turned off).
    pub fn forget_upstream(&self, site: &str, upstream: &str) {
        let _ = self.upstream_up.remove_label_values(&[site, upstream]);
        for reason in ["connect", "timeout", "tls", "protocol", "reset", "status"] {
            let _ = self
                .check_failures
                .remove_label_values(&[site, upstream, reason]);
        }
    }

    /// Forgets the series of a site that left the config.
    pub fn forget_site(&self, site: &str) {
        let _ = self.site_up.remove_label_values(&[site]);
        let _ = self.check_duration.remove_label_values(&[site]);
    }
}
