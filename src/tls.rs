//! TLS certificates: the `certs` directory of PEM pairs, loaded and checked as a whole,
//! and the SNI resolver the HTTPS listeners use.
//!
//! A pair is `NAME.crt` (leaf first, then the chain) + `NAME.key` (PKCS#8, or PKCS#1 /
//! SEC1, RSA or EC). Each pair is served for the DNS names in its certificate's SAN,
//! wildcards included: `*.example.com` matches exactly one non-empty label, as RFC 6125
//! and browsers match it (`a.example.com`, never `a.b.example.com` or `example.com`).
//! With no SNI, or an unknown name, the pair named `default` is served if there is one,
//! else the first pair in file-name order.
//!
//! An expired certificate is not a load error: refusing the whole directory for it
//! would take every other site's HTTPS down at the next start or refuse every reload.
//! It is reported as a warning (`offramp check` should treat it as an error, see
//! [`CertStore::expired`]), kept out of the way of a valid pair for the same name, and
//! otherwise served as is: clients reject it, as they would with no certificate.
//!
//! Owns: reading and validating certificates, the name → certificate map, and the
//! resolver that swaps it on reload. Does not own: listeners (see `server`) or when a
//! reload happens (see `reload`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

/// A certificate that expires within this many days is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One loaded pair.
#[derive(Debug)]
pub struct CertPair {
    /// The file stem (`NAME` of `NAME.crt`).
    pub name: String,
    /// The `.crt` file.
    pub file: PathBuf,
    /// DNS names from the SAN, lower-case (`*.example.com` for wildcards).
    pub names: Vec<String>,
    pub not_after: OffsetDateTime,
    pub key: Arc<CertifiedKey>,
}

impl CertPair {
    /// Whether the certificate is past its `notAfter` at `now`.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.not_after <= now
    }
}

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

/// A problem with one file of the `certs` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIssue {
    pub file: PathBuf,
    pub message: String,
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

fn load_pair(
    crt: &Path,
    key_file: &Path,
    now: OffsetDateTime,
    digest: &mut Fnv,
) -> Result<(CertPair, Vec<CertIssue>), CertIssue> {
    let issue = |file: &Path, message: String| CertIssue {
        file: file.to_path_buf(),
        message,
    };
    let crt_bytes =
        std::fs::read(crt).map_err(|e| issue(crt, format!("cannot read certificate: {e}")))?;
    if !key_file.exists() {
        return Err(issue(
            crt,
            format!(
                "certificate without a key: {} is missing",
                key_file.display()
            ),
        ));
    }
    let key_bytes =
        std::fs::read(key_file).map_err(|e| issue(key_file, format!("cannot read key: {e}")))?;
    digest.write(crt.as_os_str().as_encoded_bytes());
    digest.write(&crt_bytes);
    digest.write(&key_bytes);

    let chain: Vec<_> = rustls_pemfile::certs(&mut crt_bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| issue(crt, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(issue(crt, "no PEM certificate found in the file".into()));
    }
    let key = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|e| issue(key_file, format!("not a PEM key file: {e}")))?
        .ok_or_else(|| {
            issue(
                key_file,
                "no private key found (expected PEM PKCS#8, PKCS#1 or SEC1)".into(),
            )
        })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| issue(key_file, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(issue(
                key_file,
                format!("key does not match the certificate {}", crt.display()),
            ))
        }
        Err(e) => return Err(issue(crt, format!("unusable certificate: {e}"))),
    }

    let leaf = certified
        .cert
        .first()
        .ok_or_else(|| issue(crt, "no certificate in the chain".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| issue(crt, format!("cannot parse the certificate: {e}")))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        return Err(issue(
            crt,
            "the certificate names no DNS host in its Subject Alternative Name".into(),
        ));
    }
    let validity = parsed.validity();
    let not_after = validity.not_after.to_datetime();
    let not_before = validity.not_before.to_datetime();
    let mut warnings = Vec::new();
    let date = crate::text::rfc3339(not_after.into()).unwrap_or_default();
    if not_after <= now {
        warnings.push(issue(
            crt,
            format!(
                "certificate expired on {date}; still served as is for its names ({}) until it is replaced, and clients reject it",
                names.join(", ")
            ),
        ));
    } else {
        let days_left = (not_after - now).whole_days();
        if days_left < EXPIRY_WARNING_DAYS {
            warnings.push(issue(
                crt,
                format!("certificate expires in {days_left} days ({date}); renew it"),
            ));
        }
    }
    if not_before > now {
        warnings.push(issue(crt, "certificate is not valid yet".into()));
    }
    let name = crt
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    Ok((
        CertPair {
            name,
            file: crt.to_path_buf(),
            names,
            not_after,
            key: Arc::new(certified),
        },
        warnings,
    ))
}

/// The rustls certificate resolver of the HTTPS listeners; `set` swaps the store
/// atomically (a reload), handshakes in progress keep the certificate they picked.
pub struct Resolver(ArcSwap<CertStore>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resolver").field(&*self.0.load()).finish()
    }
}

impl Resolver {
    /// A resolver serving `store`; its expiry times go to the metrics.
    pub fn new(store: Arc<CertStore>) -> Resolver {
        publish_expiry(&store);
        Resolver(ArcSwap::new(store))
    }

    /// Puts a new set of certificates in force.
    pub fn set(&self, store: Arc<CertStore>) {
        publish_expiry(&store);
        self.0.store(store);
    }

    /// The certificates in force.
    pub fn store(&self) -> Arc<CertStore> {
        self.0.load_full()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolve(hello.server_name())
    }
}

/// Sets `offramp_certificate_expiry_timestamp_seconds` to the certificates in force.
fn publish_expiry(store: &CertStore) {
    if let Some(m) = crate::metrics::get() {
        m.set_certificates(
            store
                .pairs
                .iter()
                .map(|p| (p.name.as_str(), p.not_after.unix_timestamp())),
        );
    }
}

/// The rustls server config of the HTTPS listeners: our resolver, h2 then http/1.1 by
/// ALPN, TLS 1.2 and 1.3 with the ring provider.
pub fn server_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// FNV-1a, to tell whether two loads read the same bytes.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `NAME.crt` + `NAME.key`, self-signed for `names`, valid until `now + days`.
    fn pair(dir: &Path, name: &str, names: &[&str], days: i64) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(60);
        params.not_after = now + time::Duration::days(days);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write crt");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
    }

    fn load(dir: &Path) -> (CertStore, CertReport) {
        CertStore::load(dir, OffsetDateTime::now_utc())
    }

    fn served(store: &CertStore, host: &str) -> Option<String> {
        store.find(host).map(|p| p.name.clone())
    }

    #[test]
    fn a_wildcard_covers_exactly_one_label() {
        let dir = tempfile::tempdir().expect("tempdir");
        pair(dir.path(), "wild", &["*.wild.test"], 90);
        let (store, report) = load(dir.path());
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(served(&store, "a.wild.test").as_deref(), Some("wild"));
        assert_eq!(served(&store, "a.wild.test.").as_deref(), Some("wild"));
        for host in ["a.b.wild.test", "wild.test", ".wild.test", "*.wild.test"] {
            assert_eq!(served(&store, host), None, "{host}");
        }
        assert!(store.covers("a.wild.test"));
        assert!(store.covers("*.wild.test"));
        assert!(!store.covers("a.b.wild.test"));
        assert!(!store.covers("*.b.wild.test"));
        assert!(!store.covers("wild.test"));
        // The handshake for a deeper name falls back to the default pair, which is not
        // valid for it.
        let key = store.resolve(Some("a.b.wild.test")).expect("default");
        assert!(Arc::ptr_eq(&key, &store.pairs[0].key));
    }

    #[test]
    fn wildcards_that_are_not_a_whole_leftmost_label_match_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        pair(dir.path(), "odd", &["*.*.odd.test", "f*.odd.test"], 90);
        let (store, _) = load(dir.path());
        for host in [
            "a.b.odd.test",
            "a.*.odd.test",
            "foo.odd.test",
            "f*.odd.test",
        ] {
            assert_eq!(served(&store, host), None, "{host}");
        }
    }

    #[test]
    fn an_expired_certificate_is_a_warning_and_a_valid_one_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        // "a" sorts first and would win the name; it has expired.
        pair(dir.path(), "a-old", &["a.test", "unused.test"], -1);
        pair(dir.path(), "b-new", &["a.test"], 60);
        let (store, report) = load(dir.path());
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        let w = &report.warnings[0];
        assert!(w.file.ends_with("a-old.crt"), "{w:?}");
        assert!(w.message.contains("expired on"), "{w:?}");
        assert!(w.message.contains("still served"), "{w:?}");
        assert_eq!(served(&store, "a.test").as_deref(), Some("b-new"));
        // Still served, as is, for the names only it covers.
        assert_eq!(served(&store, "unused.test").as_deref(), Some("a-old"));
        // Not the default while a valid pair exists.
        assert_eq!(store.default_pair().map(|p| p.name.as_str()), Some("b-new"));
        let expired: Vec<_> = store
            .expired(OffsetDateTime::now_utc())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(expired, ["a-old"]);
    }

    #[test]
    fn expiring_soon_is_a_warning_with_the_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        pair(dir.path(), "soon", &["soon.test"], 5);
        pair(
            dir.path(),
            "later",
            &["later.test"],
            EXPIRY_WARNING_DAYS + 2,
        );
        let (store, report) = load(dir.path());
        assert_eq!(store.pairs.len(), 2);
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        assert!(report.warnings[0].file.ends_with("soon.crt"));
        assert!(
            report.warnings[0].message.contains("expires in 4 days")
                || report.warnings[0].message.contains("expires in 5 days"),
            "{:?}",
            report.warnings[0]
        );
    }
}
