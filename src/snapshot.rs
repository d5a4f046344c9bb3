//! What the data path loads once per request: the route table, every site's
//! effective state and the status page's view, published together by the daemon with
//! one atomic swap (`ArcSwap<Snapshot>`), so a request never sees a table from one
//! config and states from another. Owns: that bundle. Does not own: how it is built
//! (see `daemon`).

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::SiteState;
use crate::routes::RouteTable;

/// A site's state as the proxy applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub state: SiteState,
    /// End of the maintenance when known (for `Retry-After`).
    pub until: Option<SystemTime>,
    /// Upstreams the health checks found down: bit i is upstream i (the first 64).
    pub down: u64,
}

/// What the data path loads once per request: the table and every site's state.
pub struct Snapshot {
    pub table: Arc<RouteTable>,
    pub states: Vec<Effective>,
    /// What the built-in status page shows, as of this snapshot.
    pub view: Arc<crate::status::View>,
}
