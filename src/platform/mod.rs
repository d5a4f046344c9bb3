//! The status platform (CONTRACT section 9): components, incidents, scheduled
//! maintenance, and the one command layer that the CLI (over the control socket) and
//! the write API both go through.
//!
//! Owns: the vocabulary (`model`), the commands and their errors (`command`), and the
//! read-only view of the platform that a snapshot carries for the status pages
//! ([`PlatformView`]). Does not own: the database (`store`), the precedence between
//! flips and windows (`state`), the pages themselves (`status`).

pub mod command;
pub mod model;
pub mod uptime;
pub mod when;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

pub use command::{By, CmdError, Command};
pub use model::{
    Affected, ComponentStatus, Impact, Incident, IncidentStatus, IncidentUpdate, Indicator,
    Maintenance, MaintenanceStatus, MaintenanceUpdate, Window,
};

/// One component as the status pages show it: every site, then each `[[component]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentView {
    pub name: String,
    pub description: Option<String>,
    /// `group = "Media"` on the site or component.
    pub group: Option<String>,
    /// A `[[site]]` (true) or a `[[component]]` without a proxy (false).
    pub site: bool,
    /// The worst of everything that speaks about it (section 9's rule).
    pub status: ComponentStatus,
    /// A site with health checks: the pages draw its 90 days of uptime.
    pub checked: bool,
}

/// What the status pages show of the platform, as of one snapshot: built by the
/// daemon from the database after every change, read by the pages without locks or I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformView {
    /// Sites in config order, then `[[component]]`s in config order.
    pub components: Vec<ComponentView>,
    /// Every incident, newest `created_at` first (unresolved and past). Shared between
    /// snapshots: a flip does not copy them.
    pub incidents: Arc<Vec<Incident>>,
    /// Every maintenance, newest `start` first (any status), each with the status it
    /// has at `built_at` (the daemon publishes anew at every start and end).
    pub maintenances: Arc<Vec<Maintenance>>,
    pub indicator: Indicator,
    /// `[status] history_days`: how far back the overview lists past incidents.
    pub history_days: u32,
    /// When this view was built.
    pub built_at: OffsetDateTime,
    /// Uptime of each site with health checks, its days in any order (the pages show
    /// the last 90, see `uptime`). Shared between snapshots.
    pub uptime: Arc<BTreeMap<String, Vec<uptime::UptimeDay>>>,
}

impl PlatformView {
    /// A view with no incidents or maintenance and every component operational.
    pub fn empty(components: Vec<ComponentView>, built_at: OffsetDateTime) -> PlatformView {
        PlatformView {
            indicator: Indicator::of(components.iter().map(|c| c.status), []),
            components,
            incidents: Arc::new(Vec::new()),
            maintenances: Arc::new(Vec::new()),
            history_days: 14,
            built_at,
            uptime: Arc::default(),
        }
    }
}
