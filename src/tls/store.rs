//! The `certs` directory as a whole: every good pair, the name → pair map (exact and
//! wildcard SANs, RFC 6125 matching), the default pair, and what loading found wrong.
//! Reading one pair is `pair`'s; serving the map to handshakes is `resolver`'s.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use super::pair::{load_pair, CertIssue, CertPair, Fnv};

/// Every pair of a `certs` directory, indexed by name.
pub struct CertStore {
    pub dir: PathBuf,
    pub pairs: Vec<CertPair>,
    exact: HashMap<String, usize>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, usize>,
    default: Option<usize>,
    /// Hash of every file's bytes: equal stores compare equal.
    digest: u64,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("dir", &self.dir)
            .field(
                "pairs",
                &self.pairs.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PartialEq for CertStore {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir && self.digest == other.digest
    }
}

/// What loading a directory found: errors refuse the config, warnings are reported.
#[derive(Debug, Default)]
pub struct CertReport {
    pub errors: Vec<CertIssue>,
    pub warnings: Vec<CertIssue>,
}

impl CertStore {
    /// Loads every pair in `dir` as of `now`. The store holds the good pairs; the report
    /// says what was wrong with the others.
    pub fn load(dir: &Path, now: OffsetDateTime) -> (CertStore, CertReport) {
        let mut report = CertReport::default();
        let mut pairs = Vec::new();
        let mut digest = Fnv::new();
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                report.errors.push(CertIssue {
                    file: dir.to_path_buf(),
                    message: format!("cannot read the certs directory: {e}"),
                });
                Vec::new()
            }
        };
        entries.sort();
        for path in &entries {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if stem.starts_with('.') {
                continue; // editor and atomic-writer temp files
            }
            match ext {
                "crt" => {
                    let key_file = path.with_extension("key");
                    match load_pair(path, &key_file, now, &mut digest) {
                        Ok((pair, warnings)) => {
                            report.warnings.extend(warnings);
                            pairs.push(pair);
                        }
                        Err(issue) => report.errors.push(issue),
                    }
                }
                "key" if !path.with_extension("crt").exists() => {
                    report.warnings.push(CertIssue {
                        file: path.clone(),
                        message: format!("key without a certificate: no {stem}.crt next to it"),
                    });
                }
                _ => {}
            }
        }
        let mut exact: HashMap<String, usize> = HashMap::new();
        let mut wildcard: HashMap<String, usize> = HashMap::new();
        for (i, p) in pairs.iter().enumerate() {
            for n in &p.names {
                let (map, key) = match n.strip_prefix("*.") {
                    Some(suffix) => (&mut wildcard, suffix),
                    None => (&mut exact, n.as_str()),
                };
                if key.contains('*') {
                    // `*.*.x`, `f*.x`: a wildcard that is not a whole left-most label
                    // matches nothing (RFC 6125; browsers agree).
                    continue;
                }
                // First pair (file-name order) wins when two certificates name a host,
                // except that a valid one wins over an expired one: a renewal dropped in
                // next to the old pair takes over without deleting the old one.
                let take = match map.get(key) {
                    None => true,
                    Some(&j) => pairs[j].expired_at(now) && !p.expired_at(now),
                };
                if take {
                    map.insert(key.to_string(), i);
                }
            }
        }
        let default = pairs
            .iter()
            .position(|p| p.name == "default")
            .or_else(|| pairs.iter().position(|p| !p.expired_at(now)))
            .or(if pairs.is_empty() { None } else { Some(0) });
        (
            CertStore {
                dir: dir.to_path_buf(),
                pairs,
                exact,
                wildcard,
                default,
                digest: digest.0,
            },
            report,
        )
    }

    /// The pair serving `host` (a name from SNI or a config host, lower-case), if any:
    /// an exact SAN, else a `*.parent` SAN when `host` is one label under `parent`
    /// (RFC 6125 6.4.3: the wildcard stands for exactly one whole, non-empty label).
    pub fn find(&self, host: &str) -> Option<&CertPair> {
        let host = host.strip_suffix('.').unwrap_or(host);
        if let Some(&i) = self.exact.get(host) {
            return self.pairs.get(i);
        }
        let (label, parent) = host.split_once('.')?;
        if label.is_empty() || label.contains('*') {
            return None;
        }
        self.wildcard.get(parent).and_then(|&i| self.pairs.get(i))
    }

    /// Whether some certificate covers a config host pattern. An exact name is covered
    /// when [`find`](Self::find) serves it a certificate valid for it. A `*.suffix`
    /// pattern is covered only by a `*.suffix` certificate, and then only for the names
    /// one label under `suffix`: the pattern also routes deeper names
    /// (`a.b.suffix`), which that certificate does not cover: clients reject it for
    /// them. Validation should warn about every covered `*.` pattern.
    pub fn covers(&self, pattern: &str) -> bool {
        match pattern.strip_prefix("*.") {
            Some(suffix) => self.wildcard.contains_key(suffix),
            None => self.find(pattern).is_some(),
        }
    }

    /// The pairs whose certificate has expired at `now`, in file-name order. They stay
    /// loaded (see the module doc); `offramp check` should refuse them.
    pub fn expired(&self, now: OffsetDateTime) -> impl Iterator<Item = &CertPair> {
        self.pairs.iter().filter(move |p| p.expired_at(now))
    }

    /// The certificate for a handshake: by SNI, else the default pair.
    pub fn resolve(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let by_name = sni.and_then(|n| {
            let lower = n.to_ascii_lowercase();
            self.find(&lower).map(|p| p.key.clone())
        });
        by_name.or_else(|| {
            self.default
                .and_then(|i| self.pairs.get(i))
                .map(|p| p.key.clone())
        })
    }

    /// The pair served when SNI is missing or unknown.
    pub fn default_pair(&self) -> Option<&CertPair> {
        self.default.and_then(|i| self.pairs.get(i))
    }
}
