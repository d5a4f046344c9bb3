//! offramp: a reverse proxy for a home lab whose sites can be flipped offline to a
//! status page at runtime, from a CLI over a Unix control socket or by editing the
//! config file. See README.md for the user's view and `shared/design/CONTRACT.md`.
//!
//! Data path: `server` (listeners) → `proxy` (Pingora hooks) → `routes` (snapshot
//! lookup) → upstream, or `maintenance` (redirect / pages). Control path: `cli` →
//! `control` → `daemon` → `state` (persisted) → new snapshot. `watch` has the daemon
//! re-read `config` on file change or SIGHUP; `sd_notify` tells systemd.

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod duration;
pub mod fast;
pub mod guard;
pub mod health;
pub mod import;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod platform;
pub mod proxy;
pub mod reply;
pub mod request;
pub mod routes;
pub mod sd_notify;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod store;
pub mod subscribe;
pub mod table;
pub mod text;
pub mod tls;
pub mod watch;
