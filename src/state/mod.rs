//! Runtime overrides and their persistence in the state file (`[server] state`).
//!
//! Owns: the on-disk format, atomic writes (temp file, fsync, rename, fsync dir), and
//! the precedence rule of CONTRACT section 2. Every decision — config state, a per-site
//! override, the global `--all` override — carries a sequence number; the newest one
//! that has not expired wins. That one rule gives "the last action wins" for flips,
//! for `--all`, for config edits made after a flip, and for `reset SITE` (which gives
//! the site's config state a new sequence number, so an older `--all` no longer covers
//! it). Does not own: when a change is allowed (see `daemon`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::SiteState;

/// Format version written to the file.
pub const VERSION: u32 = 1;

/// A runtime flip of one site or of all sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub state: SiteState,
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// uid of the client that asked (from SO_PEERCRED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u32>,
    /// Who asked when it was not a control-socket client: `api:NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_name: Option<String>,
}

/// Who made a change: a control-socket client's uid, or a name (`api:deploy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub uid: Option<u32>,
    pub name: Option<String>,
}

impl Who {
    /// For logs: `uid 1000`, `api:deploy` or `-`.
    pub fn label(&self) -> String {
        match (&self.name, self.uid) {
            (Some(n), _) => n.clone(),
            (None, Some(u)) => format!("uid {u}"),
            (None, None) => "-".into(),
        }
    }
}

impl From<Option<u32>> for Who {
    fn from(uid: Option<u32>) -> Who {
        Who { uid, name: None }
    }
}

impl From<&crate::platform::By> for Who {
    /// `uid N` is a control-socket client; anything else is kept as a name.
    fn from(by: &crate::platform::By) -> Who {
        match by.0.strip_prefix("uid ").and_then(|u| u.parse().ok()) {
            Some(uid) => Who {
                uid: Some(uid),
                name: None,
            },
            None => Who {
                uid: None,
                name: Some(by.0.clone()),
            },
        }
    }
}

impl Override {
    /// True once `until` has passed.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.until.is_some_and(|u| u <= now)
    }
}

/// The config's `state` for a site as last applied, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMark {
    pub state: SiteState,
    pub seq: u64,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<OffsetDateTime>,
}

/// Where a site's effective state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Runtime,
    All,
    /// An automatic maintenance window in progress.
    Maintenance,
    /// Every upstream down, with `auto_offline` (shown `auto` by the table).
    Health,
}

impl Source {
    /// `config`, `runtime` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Runtime => "runtime",
            Source::All => "all",
            Source::Maintenance => "maintenance",
            Source::Health => "health",
        }
    }
}

/// Everything the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateData {
    pub version: u32,
    /// Last sequence number handed out.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Override>,
    #[serde(default)]
    pub sites: BTreeMap<String, Override>,
    #[serde(default)]
    pub config: BTreeMap<String, ConfigMark>,
    /// The most recent changes of effective state, oldest first, at most `HISTORY_MAX`.
    #[serde(default)]
    pub history: Vec<HistoryEvent>,
}

/// Changes of effective state kept in the state file for the status page.
pub const HISTORY_MAX: usize = 100;

/// What made a site's effective state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// `offramp offline|online` (per site or `--all`).
    Flip,
    /// `offramp reset`.
    Reset,
    /// An edit of the config file.
    Config,
    /// An `--until` ran out.
    Expired,
    /// A maintenance window started or ended.
    Maintenance,
    /// Health checks found every upstream down, or one up again (`auto_offline`).
    Health,
}

/// One change of a site's effective state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub site: String,
    pub state: SiteState,
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u32>,
}

impl Default for StateData {
    fn default() -> Self {
        StateData {
            version: VERSION,
            seq: 0,
            global: None,
            sites: BTreeMap::new(),
            config: BTreeMap::new(),
            history: Vec::new(),
        }
    }
}

/// The decision in force for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub state: SiteState,
    pub source: Source,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub by: Option<u32>,
    pub by_name: Option<String>,
    /// The maintenance window it comes from (source `maintenance`).
    pub window: Option<String>,
}

impl Decision {
    /// `by` as the status answers show it: the uid of a flip (a number, as before), or
    /// `"maintenance:ID"` for a window.
    pub fn by_json(&self) -> serde_json::Value {
        match (&self.window, &self.by_name, self.by) {
            (Some(id), _, _) => serde_json::Value::String(format!("maintenance:{id}")),
            (None, Some(name), _) => serde_json::Value::String(name.clone()),
            (None, None, Some(uid)) => serde_json::Value::from(uid),
            (None, None, None) => serde_json::Value::Null,
        }
    }

    /// The decision once the automatic maintenance windows in force at `now` are
    /// weighed in (CONTRACT section 9's precedence): between a runtime override and an
    /// in-progress window the later of the override's time and the window's start
    /// wins; a window always beats the config. Of two windows, the later start counts.
    pub fn with_windows<'w>(
        self,
        site: &str,
        windows: impl IntoIterator<Item = &'w crate::platform::Window>,
        now: OffsetDateTime,
    ) -> Decision {
        let Some(w) = windows
            .into_iter()
            .filter(|w| w.in_force(now) && w.sites.iter().any(|s| s == site))
            .max_by_key(|w| (w.start, w.end))
        else {
            return self;
        };
        let override_wins = matches!(self.source, Source::Runtime | Source::All)
            && self.since.is_some_and(|since| since > w.start);
        if override_wins {
            return self;
        }
        Decision {
            state: SiteState::Offline,
            source: Source::Maintenance,
            since: Some(w.start),
            until: Some(w.end),
            reason: Some(w.title.clone()),
            by: None,
            by_name: None,
            window: Some(w.id.clone()),
        }
    }
}

impl Decision {
    /// Offline by a flip, the config or a window: planned work, during which health
    /// checks say nothing about the site (CONTRACT section 9). Offline by health is an
    /// outage, not maintenance.
    pub fn under_maintenance(&self) -> bool {
        self.state == SiteState::Offline && self.source != Source::Health
    }

    /// The decision once health is weighed in (CONTRACT section 9's rule 3): a site
    /// whose state comes from the config and is online goes offline, source `health`,
    /// while every upstream is down (`down_since`: since when) and the site has
    /// `auto_offline`; a flip, `--all` or a window always beats it.
    pub fn with_health(self, auto_offline: bool, down_since: Option<OffsetDateTime>) -> Decision {
        match down_since {
            Some(since)
                if auto_offline
                    && self.source == Source::Config
                    && self.state == SiteState::Online =>
            {
                Decision {
                    state: SiteState::Offline,
                    source: Source::Health,
                    since: Some(since),
                    until: None,
                    reason: Some("every upstream is failing its health checks".into()),
                    by: None,
                    by_name: Some("health".into()),
                    window: None,
                }
            }
            _ => self,
        }
    }
}

impl StateData {
    /// Next sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Effective state of `site` whose config says `config_state`.
    pub fn decide(&self, site: &str, config_state: SiteState, now: OffsetDateTime) -> Decision {
        let mark = self.config.get(site);
        let mut best = Decision {
            state: config_state,
            source: Source::Config,
            since: mark.and_then(|m| m.since),
            until: None,
            reason: None,
            by: None,
            by_name: None,
            window: None,
        };
        let mut best_seq = mark.map_or(0, |m| m.seq);
        let candidates = [
            (self.sites.get(site), Source::Runtime),
            (self.global.as_ref(), Source::All),
        ];
        for (o, source) in candidates {
            if let Some(o) = o.filter(|o| !o.expired(now) && o.seq > best_seq) {
                best_seq = o.seq;
                best = Decision {
                    state: o.state,
                    source,
                    since: Some(o.since),
                    until: o.until,
                    reason: o.reason.clone(),
                    by: o.by,
                    by_name: o.by_name.clone(),
                    window: None,
                };
            }
        }
        best
    }

    /// Appends to the history, dropping the oldest beyond `HISTORY_MAX`.
    pub fn record(&mut self, events: impl IntoIterator<Item = HistoryEvent>) {
        self.history.extend(events);
        if self.history.len() > HISTORY_MAX {
            let excess = self.history.len() - HISTORY_MAX;
            self.history.drain(..excess);
        }
    }

    /// Earliest `until` still in the future, to wake the expiry timer.
    pub fn next_expiry(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.sites
            .values()
            .chain(self.global.iter())
            .filter_map(|o| o.until)
            .filter(|u| *u > now)
            .min()
    }

    /// Drops expired overrides; true if any was dropped.
    pub fn prune_expired(&mut self, now: OffsetDateTime) -> bool {
        let before = self.sites.len() + usize::from(self.global.is_some());
        self.sites.retain(|_, o| !o.expired(now));
        if self.global.as_ref().is_some_and(|g| g.expired(now)) {
            self.global = None;
        }
        before != self.sites.len() + usize::from(self.global.is_some())
    }
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads the state file. A missing file is an empty state.
pub fn load(path: &Path) -> Result<StateData, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateData::default()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let data: StateData = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if data.version != VERSION {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "unsupported version {} (this offramp writes {VERSION})",
                data.version
            ),
        });
    }
    Ok(data)
}

/// Moves an unusable state file aside as `<name>.corrupt-<unix time>`; returns the new name.
pub fn quarantine(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{stamp}"));
    let aside = path.with_file_name(name);
    fs::rename(path, &aside)?;
    Ok(aside)
}

/// Writes the state atomically: temp file in the same directory, fsync, rename, fsync dir.
/// On error the previous file is untouched.
pub fn save(path: &Path, data: &StateData) -> Result<(), StateError> {
    let werr = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut json = serde_json::to_vec_pretty(data).map_err(|e| werr(std::io::Error::other(e)))?;
    json.push(b'\n');
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests;
