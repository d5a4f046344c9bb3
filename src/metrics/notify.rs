//! The notifications' metrics (CONTRACT section 11): deliveries, failed attempts and
//! events given up on per target, what each target has pending, and the outbox's size.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The series of section 11.
pub struct NotifyMetrics {
    deliveries: IntCounterVec,
    failures: IntCounterVec,
    given_up: IntCounterVec,
    pending: IntGaugeVec,
    outbox: IntGauge,
}

impl NotifyMetrics {
    pub(super) fn new(registry: &Registry) -> Result<NotifyMetrics, prometheus::Error> {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "offramp_notify_deliveries_total",
                "Events delivered, by notify target.",
            ),
            &["target"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "offramp_notify_failures_total",
                "Failed delivery attempts (each is retried), by notify target.",
            ),
            &["target"],
        )?;
        let given_up = IntCounterVec::new(
            Opts::new(
                "offramp_notify_given_up_total",
                "Events given up on after give_up_after, by notify target.",
            ),
            &["target"],
        )?;
        let pending = IntGaugeVec::new(
            Opts::new(
                "offramp_notify_pending",
                "Events a notify target has still to deliver.",
            ),
            &["target"],
        )?;
        let outbox = IntGauge::new(
            "offramp_outbox_events",
            "Events in the database's outbox (kept until every target is done with them).",
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(given_up.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        Ok(NotifyMetrics {
            deliveries,
            failures,
            given_up,
            pending,
            outbox,
        })
    }

    pub fn delivered(&self, target: &str) {
        self.deliveries.with_label_values(&[target]).inc();
    }

    pub fn failed(&self, target: &str) {
        self.failures.with_label_values(&[target]).inc();
    }

    pub fn given_up(&self, target: &str, n: u64) {
        self.given_up.with_label_values(&[target]).inc_by(n);
    }

    pub fn pending(&self, target: &str, n: u64) {
        self.pending
            .with_label_values(&[target])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn outbox(&self, n: u64) {
        self.outbox.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
