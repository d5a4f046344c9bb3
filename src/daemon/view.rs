//! Building the snapshot the data path reads from the daemon's state: each site's
//! effective state and the status page's view (sites, links, recent history), decided
//! once per change so no request decides anything. Publishing it is `Daemon`'s;
//! rendering the view is `status`'s.

use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::Inner;
use crate::platform::{ComponentStatus, ComponentView, Indicator, MaintenanceStatus, PlatformView};
use crate::snapshot::{Effective, Snapshot};
use crate::state::Decision;
use crate::status::{SiteView, View};

/// The snapshot of `inner` as of `t`, from each site's decision (in config order).
pub(super) fn build_snapshot(inner: &Inner, decisions: &[Decision], t: OffsetDateTime) -> Snapshot {
    let mut states = Vec::with_capacity(inner.config.sites.len());
    let mut sites = Vec::with_capacity(inner.config.sites.len());
    let mut planned = Vec::with_capacity(inner.config.sites.len());
    for (s, d) in inner.config.sites.iter().zip(decisions) {
        planned.push(d.under_maintenance());
        states.push(Effective {
            state: d.state,
            until: d.until.map(SystemTime::from),
            down: inner.health.down_mask(s),
        });
        let outage = d.source == crate::state::Source::Health;
        let view = SiteView::new(&s.name, d.state, d.since, d.until, d.reason.clone());
        sites.push(view.in_outage(outage));
    }
    let status = inner.config.status.as_ref();
    let platform = Arc::new(platform_view(inner, &planned, t));
    let view = View {
        title: status.map_or_else(|| "Status".to_string(), |s| s.title.clone()),
        links: status.map(|s| s.links.clone()).unwrap_or_default(),
        sites,
        history: inner
            .state
            .history
            .iter()
            .rev()
            .take(crate::status::HISTORY_SHOWN)
            .cloned()
            .collect(),
        updated_at: t,
        platform,
        rendered: Default::default(),
        subscribe: inner.config.smtp.is_some(),
    };
    Snapshot {
        table: inner.table.clone(),
        states,
        view: Arc::new(view),
    }
}

/// The platform as the pages show it: every site then every `[[component]]`, each with
/// the worst of what speaks about it (CONTRACT section 9): offline or in a maintenance
/// in progress → under maintenance, each unresolved incident naming it, a status set
/// through the API.
pub(super) fn platform_view(inner: &Inner, planned: &[bool], t: OffsetDateTime) -> PlatformView {
    let records = &inner.platform;
    let in_progress: Vec<_> = records
        .maintenances
        .iter()
        .filter(|m| m.status_at(t) == MaintenanceStatus::InProgress)
        .collect();
    let status_of = |name: &str, offline: bool, health: Option<ComponentStatus>| {
        let maintenance = (offline
            || in_progress
                .iter()
                .any(|m| m.sites.iter().chain(&m.components).any(|c| c == name)))
        .then_some(ComponentStatus::UnderMaintenance);
        let incidents = records
            .incidents
            .iter()
            .filter(|i| i.is_open())
            .flat_map(|i| i.components.iter().filter(|a| a.name == name))
            .map(|a| a.status);
        let set = records.set.get(name).map(|s| s.status);
        let alerts = records
            .alerts
            .values()
            .filter(|a| a.component == name)
            .map(|a| a.status);
        // Planned work with the upstream stopped is not an outage: under maintenance,
        // health says nothing (incidents, alerts and API statuses still do).
        let health = health.filter(|_| maintenance.is_none());
        ComponentStatus::worst(
            maintenance
                .into_iter()
                .chain(incidents)
                .chain(set)
                .chain(alerts)
                .chain(health),
        )
    };
    let mut components = Vec::with_capacity(planned.len() + inner.config.components.len());
    for (s, planned) in inner.config.sites.iter().zip(planned) {
        let health = inner.health.verdict(&inner.config, &s.name).status();
        components.push(ComponentView {
            name: s.name.clone(),
            description: None,
            group: s.group.clone(),
            site: true,
            status: status_of(&s.name, *planned, health),
            checked: s.health.is_some(),
        });
    }
    for c in &inner.config.components {
        components.push(ComponentView {
            name: c.name.clone(),
            description: c.description.clone(),
            group: c.group.clone(),
            site: false,
            status: status_of(&c.name, false, None),
            checked: false,
        });
    }
    let indicator = Indicator::of(
        components.iter().map(|c| c.status),
        records
            .incidents
            .iter()
            .filter(|i| i.is_open())
            .map(|i| i.impact),
    );
    PlatformView {
        components,
        incidents: records.incidents.clone(),
        maintenances: records.maintenances.clone(),
        indicator,
        history_days: inner
            .config
            .status
            .as_ref()
            .map_or(crate::config::DEFAULT_HISTORY_DAYS, |s| s.history_days),
        built_at: t,
        uptime: inner.uptime.days.clone(),
    }
}
