//! The config file: its format (TOML, CONTRACT section 1), the validated model it turns
//! into, and every check that runs before anything is applied.
//!
//! Owns: reading `offramp.toml`, defaults, path resolution, error reporting with file,
//! line and key. Does not own: what the proxy does with a config (see `routes`), when a
//! config is re-read (see `watch`) or how it is applied (see `daemon`).
//!
//! This file holds the model and the entry points. `parse` walks the document, with
//! the value readers in `reader` and each section's keys in `server` (and `[demo]`),
//! `maintenance`, `site`, `status`, `component`, `api`, `health` (`[alerts]`),
//! `notify` (`[[notify]]`, with `statuspage` for a Statuspage target's keys) and
//! `smtp` (`[smtp]`); `validate` runs the checks across them; `url` parses
//! status-page URLs, host names and the URLs notifications are sent to.

pub mod api;
mod component;
mod health;
mod maintenance;
mod net;
mod notify;
mod parse;
mod reader;
mod server;
mod site;
mod smtp;
mod status;
mod statuspage;
mod url;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::tls::CertStore;

pub use api::Secret;
pub use health::{Alerts, Health};
pub use net::Net;
pub use notify::{EventClass, Notify, NotifyFormat, DEFAULT_GIVE_UP_AFTER, DEFAULT_NOTIFY_TIMEOUT};
pub use smtp::{Smtp, SmtpTls};
pub use statuspage::{Statuspage, STATUSPAGE_API};
pub use url::StatusUrl;

/// Where the config lives when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/offramp/offramp.toml";
/// Control socket path when `[server] control` is not set.
pub const DEFAULT_CONTROL: &str = "/run/offramp/control.sock";
/// State file path when `[server] state` is not set.
pub const DEFAULT_STATE: &str = "/var/lib/offramp/state.json";
/// Upstream connect timeout when a site does not set `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream read timeout when a site does not set `read_timeout`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The status platform's database when `[server] data` is not set.
pub const DEFAULT_DATA: &str = "/var/lib/offramp/offramp.db";
/// `[status] history_days` when not set: past incidents the overview lists.
pub const DEFAULT_HISTORY_DAYS: u32 = 14;
/// `[status] uptime_days` when not set: days of uptime history kept.
pub const DEFAULT_UPTIME_DAYS: u32 = 400;
/// Drain time on shutdown when `[server] grace` is not set.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Overwrites parsed `[server]` and `[demo]` values before validation (see [`Config::parse_pinned`]).
pub type Pin<'a> = &'a dyn Fn(&mut Server, &mut Option<Demo>);

/// A validated config: everything in it has been checked, paths are absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this config was read from.
    pub file: PathBuf,
    pub server: Server,
    pub maintenance: Maintenance,
    pub sites: Vec<Site>,
    /// `[[component]]`s: status-page components with no proxy behind them.
    pub components: Vec<Component>,
    /// `[api]`: the write API's tokens (`None`: `/api/v1/` answers 404).
    pub api: Option<api::Api>,
    /// `[alerts]`: Alertmanager's alerts as component statuses (defaults when absent).
    pub alerts: Alerts,
    /// `[[notify]]`: where events are delivered, in file order.
    pub notify: Vec<Notify>,
    /// `[smtp]`: the mail server for e-mail subscriptions (`None`: no subscribing by mail).
    pub smtp: Option<Smtp>,
    pub status: Option<StatusSection>,
    pub demo: Option<Demo>,
    /// The certificates of the `certs` directory, loaded and checked (HTTPS only).
    pub tls: Option<Arc<CertStore>>,
    /// Problems worth telling but not refusing (a certificate about to expire).
    pub warnings: Vec<String>,
}

/// `[server]`: listeners and process-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub certs: Option<PathBuf>,
    pub redirect_https: bool,
    pub threads: usize,
    pub control: PathBuf,
    /// Group the control socket is given after it is created (`None`: the daemon's own).
    pub control_group: Option<u32>,
    pub state: PathBuf,
    pub grace: Duration,
    pub admin: Option<SocketAddr>,
    pub access_log: bool,
    /// The status platform's SQLite database (`[server] data`).
    pub data: PathBuf,
    /// `admin_tls`: the admin listener speaks TLS with offramp's certificates.
    pub admin_tls: bool,
    /// `health_checks = false`: no site is checked, whatever its `health` says.
    pub health_checks: bool,
}

/// `[maintenance]`: what offline visitors get.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// `None` only when `code = 503` and no page is linked.
    pub status_page: Option<StatusPage>,
    pub code: OfflineCode,
    pub keep_uri: bool,
    /// `bypass`: peers in these networks reach offline sites' upstreams.
    pub bypass: Vec<Net>,
}

/// Where offline visitors are sent.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusPage {
    Url(StatusUrl),
    Builtin,
}

/// The answer an offline site gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineCode {
    /// 302 Found: redirect, method may change to GET.
    Found,
    /// 307 Temporary Redirect: redirect, method kept.
    Temporary,
    /// 503 Service Unavailable: maintenance page served in place.
    Unavailable,
}

impl OfflineCode {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            OfflineCode::Found => 302,
            OfflineCode::Temporary => 307,
            OfflineCode::Unavailable => 503,
        }
    }
}

/// A site's configured or effective state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteState {
    Online,
    Offline,
}

impl SiteState {
    /// `"online"` or `"offline"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteState::Online => "online",
            SiteState::Offline => "offline",
        }
    }
}

impl fmt::Display for SiteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[site]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    pub hosts: Vec<HostPattern>,
    pub upstreams: Vec<Upstream>,
    pub state: SiteState,
    pub status_page: Option<StatusPage>,
    /// Overrides `[maintenance] code` for this site.
    pub code: Option<OfflineCode>,
    /// Overrides `[maintenance] keep_uri` for this site.
    pub keep_uri: Option<bool>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub tls_verify: bool,
    /// `group = "Media"`: the group it is shown in on the status page.
    pub group: Option<String>,
    /// `bypass`: networks added to `[maintenance] bypass` for this site.
    pub bypass: Vec<Net>,
    /// Active checks of each upstream (`health = false`: `None`).
    pub health: Option<Health>,
    /// `auto_offline`: all upstreams down sends visitors to the status page.
    pub auto_offline: bool,
}

/// One `[[component]]`: shown on the status page, with no proxy behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Same rules as a site name; unique among sites and components.
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
}

/// A host name a site answers for, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `cloud.home.example`
    Exact(String),
    /// `*.cloud.home.example`, stored as the suffix `cloud.home.example`; matches any
    /// name that ends in `.cloud.home.example` (one or more labels), not the bare suffix.
    Wildcard(String),
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// One upstream of a site: `http://192.168.1.20:8080` or `https://nas.lan`.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// As written in the config.
    pub url: String,
    pub tls: bool,
    /// Host part of the URL (used for SNI on `https://`).
    pub host: String,
    pub port: u16,
    /// Resolved when the config was loaded.
    pub addr: SocketAddr,
}

/// `[status]`: the built-in status page.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSection {
    /// Host names offramp serves the status page on (exact, lower-case).
    pub hosts: Vec<String>,
    pub title: String,
    /// Extra links shown on the overview.
    pub links: Vec<StatusLink>,
    /// `url`: the status page's public origin (`https://status.home.example`, lower-case
    /// host, no path), one of `hosts`. When set, offline visitors are sent there and
    /// pages link there, instead of to the first host with the listener's scheme and
    /// port (which a port forward or a proxy in front of offramp would get wrong).
    pub url: Option<String>,
    /// `history_days`: how many days of past incidents the overview lists.
    pub history_days: u32,
    /// `uptime_days`: how many days of uptime history the database keeps.
    pub uptime_days: u32,
}

/// One `[status] links` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLink {
    pub name: String,
    /// An `http(s)://` URL, checked when the config was read.
    pub url: String,
}

/// `[demo]`: a tiny built-in origin for trying offramp out; not for production.
#[derive(Debug, Clone, PartialEq)]
pub struct Demo {
    pub listen: SocketAddr,
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not tied to a line (file unreadable).
    pub line: usize,
    /// Dotted key, e.g. `server.http` or `site[2].upstream` (`site[N]` counts from 1).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file.display(), self.message),
            (0, false) => write!(f, "{}: {}: {}", self.file.display(), self.key, self.message),
            (l, true) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            (l, false) => write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                l,
                self.key,
                self.message
            ),
        }
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = absolute(path);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: 0,
                key: String::new(),
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Config::parse(&text, &file)
    }

    /// Validates `text` as if read from `file` (relative paths resolve against its directory).
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        parse::parse(text, &absolute(file), None)
    }

    /// Like [`Config::parse`], but `pin` first sets the `[server]` and `[demo]` values a
    /// running daemon cannot change, so every check sees what will actually be in force.
    pub fn parse_pinned(text: &str, file: &Path, pin: Pin<'_>) -> Result<Config, ConfigErrors> {
        parse::parse(text, &absolute(file), Some(pin))
    }

    /// The site named `name`.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The status page a site's offline visitors are sent to.
    pub fn status_page_of<'a>(&'a self, site: &'a Site) -> Option<&'a StatusPage> {
        site.status_page
            .as_ref()
            .or(self.maintenance.status_page.as_ref())
    }
}

/// `[server] control` of a config file's text (`file` is where it was read from),
/// read leniently so that CLI commands find the daemon even when the file has errors
/// elsewhere (the daemon keeps running on its last good config). `None` when the text
/// does not set it.
pub fn control_path_in(file: &Path, text: &str) -> Option<PathBuf> {
    let control = match toml::from_str::<toml::Table>(text) {
        Ok(table) => table
            .get("server")?
            .get("control")?
            .as_str()
            .map(String::from),
        // A syntax error elsewhere: look for the line itself.
        Err(_) => control_line(text),
    }?;
    Some(resolve_path(file, &control))
}

/// The value of a `control = "..."` line in the `[server]` table of a file that is not
/// valid TOML as a whole.
fn control_line(text: &str) -> Option<String> {
    let mut in_server = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_server = line.split('#').next().map(str::trim) == Some("[server]");
            continue;
        }
        if !in_server || !line.starts_with("control") {
            continue;
        }
        if let Ok(t) = toml::from_str::<toml::Table>(line) {
            if let Some(toml::Value::String(c)) = t.get("control") {
                return Some(c.clone());
            }
        }
    }
    None
}

/// `path` made absolute against the current directory.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// A path from the config file, relative to the file's own directory.
pub(crate) fn resolve_path(config_file: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let base = config_file.parent().unwrap_or_else(|| Path::new("/"));
    normalize(&base.join(p))
}

/// Removes `.` and `..` components lexically so paths in messages read well.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod smtp_tests;
#[cfg(test)]
mod statuspage_tests;
#[cfg(test)]
mod tests;
