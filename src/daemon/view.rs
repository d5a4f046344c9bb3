//! Building the snapshot the data path reads from the daemon's state: each site's
//! effective state and the status page's view (sites, links, recent history), decided
//! once per change so no request decides anything. Publishing it is `Daemon`'s;
//! rendering the view is `status`'s.

use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::{decide, Inner};
use crate::config::SiteState;
use crate::platform::{ComponentStatus, ComponentView, PlatformView};
use crate::snapshot::{Effective, Snapshot};
use crate::status::{SiteView, View};

/// The snapshot of `inner` as of `t`.
pub(super) fn build_snapshot(inner: &Inner, t: OffsetDateTime) -> Snapshot {
    let mut states = Vec::with_capacity(inner.config.sites.len());
    let mut sites = Vec::with_capacity(inner.config.sites.len());
    for s in &inner.config.sites {
        let d = decide(inner, &s.name, s.state, t);
        states.push(Effective {
            state: d.state,
            until: d.until.map(SystemTime::from),
        });
        sites.push(SiteView::new(&s.name, d.state, d.since, d.until, d.reason));
    }
    let status = inner.config.status.as_ref();
    // Until the platform's store feeds it: every site as a component, under
    // maintenance while offline.
    let components = sites
        .iter()
        .map(|s| ComponentView {
            name: s.name.clone(),
            description: None,
            group: None,
            site: true,
            status: match s.state {
                SiteState::Online => ComponentStatus::Operational,
                SiteState::Offline => ComponentStatus::UnderMaintenance,
            },
        })
        .collect();
    let platform = Arc::new(PlatformView::empty(components, t));
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
    };
    Snapshot {
        table: inner.table.clone(),
        states,
        view: Arc::new(view),
    }
}
