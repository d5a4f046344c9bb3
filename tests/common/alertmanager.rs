//! A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, upstream's
//! `alertmanager`) wired to offramp's receiver, for `tests/alertmanager.rs`.
//!
//! One Alertmanager per test: its own temporary directory (config, storage), the web
//! listener on 127.0.0.1 port 0 (the bound address is read back from its log), HA
//! clustering off (`--cluster.listen-address=`), and one route to one webhook receiver
//! that posts to offramp's `POST /api/v1/alertmanager` with a bearer token read from a
//! file (`http_config.authorization.credentials_file`), resolved alerts included.
//! Alerts go in through Alertmanager's own API (`POST /api/v2/alerts`), as Prometheus
//! sends them; what it delivered is read from its `/metrics`. Killed on drop.
//!
//! Not declared in `common/mod.rs`: a test crate includes it with
//! `#[path = "common/alertmanager.rs"] mod alertmanager;` next to `mod common;`.
//!
//! What the real binary does, measured with 0.25.0 (Debian) on loopback:
//! - start to `/-/ready` answering 200: 50–100 ms;
//! - with `group_wait: 0s`, the first notification of a new group leaves 2–35 ms after
//!   `POST /api/v2/alerts` returns;
//!   Alerts posted together in one request usually share that first notification, but
//!   not always: the group is created by the first and may flush before the next one
//!   is in (2 groups in 40 came as one alert, then both 100 ms later);
//! - a change to an existing group (an alert resolved, one added) goes out at the
//!   group's next `group_interval` tick: with 100 ms, 7–70 ms after the POST (with 1 s,
//!   up to 700 ms);
//! - an unchanged firing group is sent again every `repeat_interval` (rounded up to a
//!   `group_interval` tick): with 300 ms, about every 300–400 ms;
//! - a receiver answering 5xx gets the same notification again after 0.3–1.2 s
//!   (exponential back-off), a receiver answering 4xx at every `group_interval` tick
//!   (no retry within a flush, but the notification log never records it as sent):
//!   either way "forever". Only a 2xx stops it;
//! - `alertmanager_notification_requests_total{integration="webhook"}` counts HTTP
//!   requests to the receiver, `..._requests_failed_total` the ones that failed.
//!
//! `POST /api/v2/alerts` semantics (checked against the binary): `startsAt` missing →
//! now; `endsAt` missing → now + `resolve_timeout`; an `endsAt` not after now makes the
//! alert resolved; `endsAt` before `startsAt` is refused with 400 "start time must be
//! before end time" (so resolve with the alert's own `startsAt` and `endsAt` = now).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::common::{wait_for, Conn, Response, WAIT};

/// Set to `1` (CI does) to fail instead of skipping when no Alertmanager is installed.
pub const REQUIRE_ENV: &str = "OFFRAMP_REQUIRE_ALERTMANAGER";
/// An explicit Alertmanager binary, instead of searching `PATH`.
pub const BINARY_ENV: &str = "OFFRAMP_ALERTMANAGER";

/// The Alertmanager binary: `$OFFRAMP_ALERTMANAGER`, else `prometheus-alertmanager` or
/// `alertmanager` on `PATH`. When there is none: panics if `OFFRAMP_REQUIRE_ALERTMANAGER=1`,
/// else says on stderr that `test` is skipped and returns `None`.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = find_binary() {
        return Some(p);
    }
    let why = format!(
        "no Alertmanager: neither ${BINARY_ENV} nor prometheus-alertmanager/alertmanager \
         on PATH (Debian/Ubuntu: apt-get install prometheus-alertmanager)"
    );
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and {REQUIRE_ENV}=1");
    }
    eprintln!("SKIPPED {test}: {why}; set {REQUIRE_ENV}=1 to make this a failure");
    None
}

fn find_binary() -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(p) = std::env::var_os(BINARY_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            executable(&p),
            "${BINARY_ENV}={} is not an executable",
            p.display()
        );
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    for name in ["prometheus-alertmanager", "alertmanager"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if executable(&p) {
                return Some(p);
            }
        }
    }
    None
}

/// The route's timings (Alertmanager durations: `0s`, `100ms`, `1h`).
#[derive(Debug, Clone)]
pub struct Timing {
    /// Wait before the first notification of a new group.
    pub group_wait: &'static str,
    /// Wait before notifying about changes to a group already notified (a resolved or
    /// added alert). Alertmanager refuses 0.
    pub group_interval: &'static str,
    /// Wait before sending an unchanged firing group again. Alertmanager refuses 0.
    pub repeat_interval: &'static str,
    /// How long an alert posted without `endsAt` stays firing.
    pub resolve_timeout: &'static str,
}

impl Default for Timing {
    /// The fastest useful settings: a new group notified at once, changes within 100 ms
    /// (Alertmanager accepts down to 1 ms, which only burns CPU: the notification
    /// itself takes a few ms), and no re-sending of unchanged groups during a test, so
    /// that every request Alertmanager makes is either a change or a retry — and a
    /// retry means offramp did not answer 2xx. `resolve_timeout` does not matter:
    /// [`Alertmanager::fire`] gives an explicit `endsAt`, as Prometheus does.
    fn default() -> Timing {
        Timing {
            group_wait: "0s",
            group_interval: "100ms",
            repeat_interval: "1h",
            resolve_timeout: "5m",
        }
    }
}

/// A running Alertmanager whose only receiver is offramp's webhook.
pub struct Alertmanager {
    child: Child,
    /// Its web listener (API, `/metrics`, `/-/ready`).
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The config file it runs with.
    pub config: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

/// Alertmanager's config: one route grouping by `alertname` (alerts with the same name
/// arrive in one notification), one webhook receiver.
pub fn config_yaml(webhook_url: &str, token_file: &Path, t: &Timing) -> String {
    format!(
        "global:\n  resolve_timeout: {rt}\n\
         route:\n  receiver: offramp\n  group_by: ['alertname']\n  \
         group_wait: {gw}\n  group_interval: {gi}\n  repeat_interval: {ri}\n\
         receivers:\n  - name: offramp\n    webhook_configs:\n      \
         - url: '{url}'\n        send_resolved: true\n        max_alerts: 0\n        \
         http_config:\n          authorization:\n            type: Bearer\n            \
         credentials_file: '{token}'\n",
        rt = t.resolve_timeout,
        gw = t.group_wait,
        gi = t.group_interval,
        ri = t.repeat_interval,
        url = webhook_url,
        token = token_file.display(),
    )
}

impl Alertmanager {
    /// Starts `bin` with a receiver posting to `webhook_url` with the bearer token in
    /// `token_file` (Alertmanager trims the file's whitespace), and waits until it is
    /// ready.
    pub fn start(
        bin: &Path,
        webhook_url: &str,
        token_file: &Path,
        timing: &Timing,
    ) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_yaml(webhook_url, token_file, timing))
            .expect("write alertmanager.yml");
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).expect("storage dir");
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            // Empty: no HA cluster, so no gossip port and no wait for peers before
            // notifying.
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr piped");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OFFRAMP_TEST_LOG").is_some() {
                    eprintln!("[alertmanager] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        // `msg="Listening on" address=127.0.0.1:PORT`, logged once the socket is bound
        // (0.25's go-kit logfmt and later versions' slog logfmt alike).
        let addr = {
            let deadline = Instant::now() + WAIT;
            loop {
                let found = log.lock().unwrap().iter().find_map(|l| {
                    if !l.contains("Listening on") {
                        return None;
                    }
                    let rest = &l[l.find("address=")? + "address=".len()..];
                    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                    rest[..end].trim_matches('"').parse::<SocketAddr>().ok()
                });
                if let Some(a) = found {
                    break a;
                }
                if let Some(st) = child.try_wait().expect("try_wait") {
                    std::thread::sleep(Duration::from_millis(100)); // the last lines
                    panic!(
                        "alertmanager exited ({st}) before listening; config:\n{}\nlog:\n{}",
                        std::fs::read_to_string(&config).unwrap_or_default(),
                        log.lock().unwrap().join("\n")
                    );
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "alertmanager did not log its address within {WAIT:?}; log:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let am = Alertmanager {
            child,
            addr,
            dir,
            config,
            log,
        };
        wait_for(WAIT, "alertmanager's /-/ready", || {
            (am.request("GET", "/-/ready", b"").status == 200).then_some(())
        });
        eprintln!(
            "alertmanager ready on {addr} {:?} after start",
            started.elapsed()
        );
        am
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, target: &str, body: &[u8]) -> Response {
        let host = self.addr.to_string();
        Conn::open(self.addr).request(
            method,
            &host,
            target,
            &[
                ("Content-Type", "application/json"),
                ("Connection", "close"),
            ],
            body,
        )
    }

    /// `POST /api/v2/alerts` with these alerts, each with this `endsAt`.
    fn post(&self, alerts: &[&Alert], ends_at: &str) {
        let body = Value::Array(alerts.iter().map(|a| a.to_json(ends_at)).collect());
        let r = self.request("POST", "/api/v2/alerts", body.to_string().as_bytes());
        assert_eq!(
            r.status,
            200,
            "POST /api/v2/alerts {body}: {}\nlog:\n{}",
            r.text(),
            self.log_text()
        );
    }

    /// Fires the alerts, as Prometheus does: `endsAt` an hour ahead (Prometheus sends
    /// a few evaluation intervals ahead and keeps re-sending; one post suffices here).
    pub fn fire(&self, alerts: &[&Alert]) {
        self.post(
            alerts,
            &rfc3339(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        );
    }

    /// Resolves the alerts, as Prometheus does: the same labels and `startsAt`, `endsAt`
    /// = now.
    pub fn resolve(&self, alerts: &[&Alert]) {
        self.post(alerts, &rfc3339(time::OffsetDateTime::now_utc()));
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds as active.
    pub fn active_alerts(&self) -> Value {
        let r = self.request("GET", "/api/v2/alerts", b"");
        assert_eq!(r.status, 200, "GET /api/v2/alerts: {}", r.text());
        r.json()
    }

    /// Its `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.request("GET", "/metrics", b"");
        assert_eq!(r.status, 200, "alertmanager /metrics: {}", r.text());
        r.text()
    }

    /// HTTP requests made to the webhook receiver (deliveries and retries).
    pub fn requests(&self) -> u64 {
        prom_sum(
            &self.metrics(),
            "alertmanager_notification_requests_total",
            "integration=\"webhook\"",
        ) as u64
    }

    /// Of those, the ones that failed: no connection, or an answer other than 2xx.
    pub fn failed(&self) -> u64 {
        prom_sum(
            &self.metrics(),
            "alertmanager_notification_requests_failed_total",
            "integration=\"webhook\"",
        ) as u64
    }

    /// Notifications the receiver accepted (answered 2xx).
    pub fn delivered(&self) -> u64 {
        let m = self.metrics();
        let f = |n| prom_sum(&m, n, "integration=\"webhook\"") as u64;
        f("alertmanager_notification_requests_total")
            - f("alertmanager_notification_requests_failed_total")
    }

    /// Waits until `n` notifications in all were accepted; the instant it saw that
    /// (within 10 ms of the receiver's answer).
    pub fn wait_delivered(&self, n: u64, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if self.delivered() >= n {
                return Instant::now();
            }
            if Instant::now() > deadline {
                panic!(
                    "alertmanager delivered {} of {n} notifications within {limit:?} \
                     ({} requests failed); log:\n{}",
                    self.delivered(),
                    self.failed(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One alert as a Prometheus rule would send it.
#[derive(Debug, Clone)]
pub struct Alert {
    pub labels: Map<String, Value>,
    pub annotations: Map<String, Value>,
    /// RFC 3339, fixed when the alert is made: the same on firing and resolving.
    pub starts_at: String,
}

impl Alert {
    /// An alert starting now.
    pub fn new(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect()
        };
        Alert {
            labels: map(labels),
            annotations: map(annotations),
            starts_at: rfc3339(time::OffsetDateTime::now_utc()),
        }
    }

    fn to_json(&self, ends_at: &str) -> Value {
        json!({
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.test/graph?g0.expr=up%3D%3D0&g0.tab=1",
        })
    }
}

/// `2026-12-07T16:19:07.096904594Z` (Alertmanager keeps the nanoseconds).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// The sum of every sample of metric `name` (with or without labels) whose line
/// contains `filter` (`""`: all), in the Prometheus text format; 0 when absent.
pub fn prom_sum(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(filter))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = if let Some(r) = rest.strip_prefix('{') {
                &r[r.rfind('}')? + 1..]
            } else {
                rest
            };
            let value = rest.strip_prefix(' ')?.split_whitespace().next()?;
            value.parse::<f64>().ok()
        })
        .sum()
}
