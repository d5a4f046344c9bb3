//! What the daemon answers about itself: each site's effective state and where it
//! comes from, the global override, the last reload, and what a reload changed. The
//! control socket serialises these; rendering them for people is `table`'s.

use serde::Serialize;
use time::OffsetDateTime;

use super::{check_sites, decide, now, Daemon, Inner};
use crate::config::SiteState;
use crate::state::Source;

/// One site as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteStatus {
    pub name: String,
    pub state: SiteState,
    pub source: Source,
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    /// The uid of a flip (a number), `"api:NAME"`, or `"maintenance:ID"` for a window.
    pub by: serde_json::Value,
    pub config_state: SiteState,
    /// What the health checks say: `up`, `partial`, `down`, `unknown` (not checked yet)
    /// or `off` (`health = false`).
    pub health: &'static str,
}

/// The global override as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalStatus {
    pub state: SiteState,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    /// The uid of the client (a number), or `"api:NAME"`.
    pub by: serde_json::Value,
}

/// Result of the last reload, shown by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    pub ok: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Keys changed in the file whose running values stay in force until a restart, as
    /// of the last config applied (a failed reload does not change them).
    pub needs_restart: Vec<String>,
}

/// Everything `status` answers: sites, the global override, the last reload.
pub type StatusReport = (Vec<SiteStatus>, Option<GlobalStatus>, Option<ReloadStatus>);

/// What a successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Sites whose `state` key changed (their runtime override, if any, was dropped).
    pub state_changed: Vec<String>,
    /// Sites whose runtime override was dropped (removed from the file, or edited).
    pub dropped_overrides: Vec<String>,
    /// Keys that changed but only take effect after a restart; the rest was applied.
    pub needs_restart: Vec<String>,
    /// The certificates changed and the new ones are in force.
    pub certs_reloaded: bool,
}

impl Daemon {
    /// Status of the named sites (all when empty), the global override, the last reload.
    pub fn status(&self, sites: &[String]) -> Result<StatusReport, String> {
        let inner = self.lock();
        check_sites(&inner.config, sites)?;
        let t = now();
        let list = site_statuses(&inner, sites, t);
        let global = inner
            .state
            .global
            .as_ref()
            .filter(|g| !g.expired(t))
            .map(|g| GlobalStatus {
                state: g.state,
                since: g.since,
                until: g.until,
                reason: g.reason.clone(),
                by: match (&g.by_name, g.by) {
                    (Some(n), _) => serde_json::Value::String(n.clone()),
                    (None, Some(u)) => u.into(),
                    (None, None) => serde_json::Value::Null,
                },
            });
        Ok((list, global, inner.last_reload.clone()))
    }
}

/// The rows of the named sites (all when empty) as of `t`, in config order.
pub(super) fn site_statuses(inner: &Inner, names: &[String], t: OffsetDateTime) -> Vec<SiteStatus> {
    inner
        .config
        .sites
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .map(|s| {
            let d = decide(inner, &s.name, s.state, t);
            SiteStatus {
                name: s.name.clone(),
                state: d.state,
                source: d.source,
                since: d.since,
                until: d.until,
                by: d.by_json(),
                reason: d.reason,
                config_state: s.state,
                health: match (&s.health, inner.health.verdict(&inner.config, &s.name)) {
                    (None, _) => "off",
                    (_, crate::health::Verdict::Unknown) => "unknown",
                    (_, crate::health::Verdict::Up) => "up",
                    (_, crate::health::Verdict::Partial) => "partial",
                    (_, crate::health::Verdict::Down) => "down",
                },
            }
        })
        .collect()
}
