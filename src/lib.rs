//! offramp: a reverse proxy for a home lab whose sites can be flipped offline to a
//! status page at runtime, from a CLI over a Unix control socket or by editing the
//! config file. See README.md for the user's view and `shared/design/CONTRACT.md`.
//!
//! Data path: `server` (listeners) → `proxy` (Pingora hooks) → `routes` (snapshot
//! lookup) → upstream, or `maintenance` (redirect / pages). Control path: `cli` →
//! `control` → `daemon` → `state` (persisted) → new snapshot. `reload` re-reads
//! `config` on file change or SIGHUP.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod duration;
pub mod fast;
pub mod guard;
pub mod import;
pub mod limits;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod proxy;
pub mod reload;
pub mod routes;
pub mod server;
pub mod state;
pub mod status;
pub mod table;
pub mod text;
pub mod tls;
