//! A site's `health = {...}` (active checks of each upstream, CONTRACT section 10) and
//! `[alerts]` (how Alertmanager's alerts map onto component statuses). What the checks
//! do is `health`'s; what an alert changes is the daemon's.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::reader::{Ctx, Value};
use crate::platform::ComponentStatus;

/// Shortest `interval` accepted (the contract's knob for tests).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A site's health checks (`health = false`: `None` in `Site::health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Path and query asked for, `/` by default.
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Status codes that count as up, `200-499` by default.
    pub expect: Vec<(u16, u16)>,
    /// Failed checks in a row before an upstream counts as down.
    pub fall: u32,
    /// Passed checks in a row before a down upstream counts as up again.
    pub rise: u32,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            path: "/".into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            expect: vec![(200, 499)],
            fall: 3,
            rise: 2,
        }
    }
}

impl Health {
    /// True when `status` is one `expect` accepts.
    pub fn accepts(&self, status: u16) -> bool {
        self.expect
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

const HEALTH_KEYS: &[&str] = &["path", "interval", "timeout", "expect", "fall", "rise"];

/// `health = false | true | { path, interval, timeout, expect, fall, rise }`.
pub(super) fn parse_health(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Health> {
    match v.get_ref() {
        DeValue::Boolean(false) => return None,
        DeValue::Boolean(true) => return Some(Health::default()),
        DeValue::Table(_) => {}
        _ => {
            ctx.err(
                &v.span(),
                key,
                "expected true, false or a table such as { path = \"/\", interval = \"30s\" }",
            );
            return Some(Health::default());
        }
    }
    let mut h = Health::default();
    let t = ctx.table(key, v)?;
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let fkey = format!("{key}.{name}");
        match name {
            "path" => {
                if let Some(p) = ctx.string(&fkey, v) {
                    let ok = p.starts_with('/')
                        && p.len() <= 2048
                        && p.bytes().all(|b| b.is_ascii_graphic())
                        && !p.contains('#');
                    if ok {
                        h.path = p;
                    } else {
                        ctx.err(
                            &v.span(),
                            &fkey,
                            format!("{p:?} is not a path: it starts with / and has no spaces, control characters or #"),
                        );
                    }
                }
            }
            "interval" | "timeout" => {
                if let Some(d) = ctx.duration(&fkey, v) {
                    if d < MIN_INTERVAL {
                        ctx.err(&v.span(), &fkey, "must be at least 100ms");
                    } else if name == "interval" {
                        h.interval = d;
                    } else {
                        h.timeout = d;
                    }
                }
            }
            "expect" => {
                if let Some(s) = ctx.string(&fkey, v) {
                    match parse_expect(&s) {
                        Ok(e) => h.expect = e,
                        Err(e) => ctx.err(&v.span(), &fkey, e),
                    }
                }
            }
            "fall" | "rise" => {
                if let Some(n) = ctx.integer(&fkey, v) {
                    match u32::try_from(n) {
                        Ok(n) if (1..=100).contains(&n) => {
                            if name == "fall" {
                                h.fall = n;
                            } else {
                                h.rise = n;
                            }
                        }
                        _ => ctx.err(
                            &v.span(),
                            &fkey,
                            format!("must be between 1 and 100, got {n}"),
                        ),
                    }
                }
            }
            _ => ctx.unknown(&fkey, &k.span(), HEALTH_KEYS),
        }
    }
    if h.timeout > h.interval {
        ctx.err(
            &v.span(),
            key,
            format!(
                "timeout ({}) is longer than interval ({}): a check would still run when the next one is due",
                crate::duration::format(h.timeout),
                crate::duration::format(h.interval)
            ),
        );
    }
    Some(h)
}

/// `"200-499"`, `"200"`, `"200,204,300-399"` → inclusive ranges.
fn parse_expect(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let bad = || format!("{s:?}: expected status codes such as \"200-499\" or \"200,204\"");
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let code = |x: &str| {
            let x = x.trim();
            (x.len() == 3 && x.bytes().all(|b| b.is_ascii_digit()))
                .then(|| x.parse::<u16>().ok())
                .flatten()
                .filter(|c| (100..=599).contains(c))
        };
        match (code(lo), code(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => out.push((lo, hi)),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// `[alerts]`: Alertmanager's alerts as component statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    /// The label naming the component, `offramp_component` by default.
    pub label: String,
    /// Severity label value → status; severities not listed give `partial_outage`.
    pub severity: BTreeMap<String, ComponentStatus>,
    /// A firing alert also opens an incident, which its resolution resolves.
    pub incidents: bool,
}

impl Default for Alerts {
    fn default() -> Alerts {
        Alerts {
            label: "offramp_component".into(),
            severity: BTreeMap::from([
                ("critical".to_string(), ComponentStatus::MajorOutage),
                ("warning".to_string(), ComponentStatus::DegradedPerformance),
            ]),
            incidents: false,
        }
    }
}

impl Alerts {
    /// The status an alert of `severity` gives its component.
    pub fn status_of(&self, severity: Option<&str>) -> ComponentStatus {
        severity
            .and_then(|s| self.severity.get(s))
            .copied()
            .unwrap_or(ComponentStatus::PartialOutage)
    }
}

/// `[alerts]`.
pub(super) fn parse_alerts(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> Alerts {
    let mut a = Alerts::default();
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("alerts.{name}");
        match name {
            "label" => {
                if let Some(l) = ctx.string(&key, v) {
                    let ok = !l.is_empty()
                        && l.len() <= 100
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !l.as_bytes()[0].is_ascii_digit();
                    if ok {
                        a.label = l;
                    } else {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!(
                                "{l:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                            ),
                        );
                    }
                }
            }
            "severity" => {
                let Some(st) = ctx.table(&key, v) else {
                    continue;
                };
                let mut map = BTreeMap::new();
                for (sk, sv) in st.iter() {
                    let sev = sk.get_ref().as_ref().to_string();
                    let skey = format!("{key}.{sev}");
                    if let Some(s) = ctx.string(&skey, sv) {
                        match ComponentStatus::parse(&s) {
                            Ok(status) => {
                                map.insert(sev, status);
                            }
                            Err(e) => ctx.err(&sv.span(), &skey, e.to_string()),
                        }
                    }
                }
                a.severity = map;
            }
            "incidents" => a.incidents = ctx.boolean(&key, v).unwrap_or(false),
            _ => ctx.unknown(&key, &k.span(), &["label", "severity", "incidents"]),
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::parse_expect;
    use crate::config::{Config, Health};
    use crate::platform::ComponentStatus;
    use std::path::Path;
    use std::time::Duration;

    fn parse(site: &str, rest: &str) -> Result<Config, Vec<(usize, String, String)>> {
        let text = format!(
            "[server]\nhttp = \"127.0.0.1:8080\"\n[maintenance]\nstatus_page = \"https://s.example\"\n\
             [[site]]\nname = \"cloud\"\nhosts = [\"cloud.example\"]\nupstream = \"http://127.0.0.1:9\"\n{site}\n{rest}"
        );
        Config::parse(&text, Path::new("/etc/offramp/offramp.toml")).map_err(|e| {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        })
    }

    #[test]
    fn health_defaults_forms_and_errors() {
        let c = parse("", "").unwrap();
        assert_eq!(c.sites[0].health, Some(Health::default()));
        assert!(!c.sites[0].auto_offline);
        assert_eq!(c.alerts.label, "offramp_component");
        assert_eq!(
            c.alerts.status_of(Some("critical")),
            ComponentStatus::MajorOutage
        );
        assert_eq!(
            c.alerts.status_of(Some("info")),
            ComponentStatus::PartialOutage
        );
        assert_eq!(c.alerts.status_of(None), ComponentStatus::PartialOutage);
        assert_eq!(parse("health = false", "").unwrap().sites[0].health, None);
        let h = parse(
            "health = { path = \"/up?x=1\", interval = \"100ms\", timeout = \"100ms\", expect = \"200\", fall = 1, rise = 5 }\nauto_offline = true",
            "",
        )
        .unwrap();
        let s = &h.sites[0];
        assert!(s.auto_offline);
        let hh = s.health.as_ref().unwrap();
        assert_eq!(
            (hh.path.as_str(), hh.interval, hh.timeout, hh.fall, hh.rise),
            (
                "/up?x=1",
                Duration::from_millis(100),
                Duration::from_millis(100),
                1,
                5
            )
        );
        assert!(hh.accepts(200) && !hh.accepts(204));
        for (site, key, words) in [
            (
                "health = { interval = \"50ms\" }",
                "site[1].health.interval",
                "at least 100ms",
            ),
            (
                "health = { interval = \"1s\", timeout = \"2s\" }",
                "site[1].health",
                "longer than interval",
            ),
            (
                "health = { expect = \"2xx\" }",
                "site[1].health.expect",
                "status codes",
            ),
            (
                "health = { path = \"up\" }",
                "site[1].health.path",
                "is not a path",
            ),
            (
                "health = { fall = 0 }",
                "site[1].health.fall",
                "between 1 and 100",
            ),
            (
                "health = { every = \"1s\" }",
                "site[1].health.every",
                "unknown key",
            ),
            (
                "health = \"yes\"",
                "site[1].health",
                "expected true, false or a table",
            ),
            ("auto_offline = 1", "site[1].auto_offline", ""),
        ] {
            let errs = parse(site, "").expect_err(site);
            assert!(
                errs.iter()
                    .any(|(line, k, m)| *line == 9 && k == key && m.contains(words)),
                "{site}: {errs:?}"
            );
        }
        for (alerts, key, words) in [
            ("[alerts]\nlabel = \"1bad\"", "alerts.label", "label name"),
            (
                "[alerts]\nseverity = { critical = \"down\" }",
                "alerts.severity.critical",
                "unknown component status",
            ),
            ("[alerts]\nsilence = true", "alerts.silence", "unknown key"),
        ] {
            let errs = parse("", alerts).expect_err(alerts);
            assert!(
                errs.iter().any(|(_, k, m)| k == key && m.contains(words)),
                "{alerts}: {errs:?}"
            );
        }
        let c = parse(
            "",
            "[alerts]\nlabel = \"component\"\nseverity = { page = \"major_outage\" }\nincidents = true",
        )
        .unwrap();
        assert_eq!(c.alerts.label, "component");
        assert!(c.alerts.incidents);
        assert_eq!(
            c.alerts.status_of(Some("page")),
            ComponentStatus::MajorOutage
        );
        assert_eq!(
            c.alerts.status_of(Some("critical")),
            ComponentStatus::PartialOutage,
            "the table replaces the default"
        );
    }

    #[test]
    fn expect_ranges() {
        assert_eq!(parse_expect("200-499"), Ok(vec![(200, 499)]));
        assert_eq!(
            parse_expect("200, 204,300-399"),
            Ok(vec![(200, 200), (204, 204), (300, 399)])
        );
        for bad in [
            "", "2xx", "499-200", "200-", "99", "600", "+200", "200-4990",
        ] {
            assert!(parse_expect(bad).is_err(), "{bad:?}");
        }
    }
}
