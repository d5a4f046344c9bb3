//! One certificate pair, `NAME.crt` + `NAME.key`: reading and checking it (PEM, key
//! type, key match, SAN names, validity dates) and what is wrong with it. Indexing
//! pairs by name is `store`'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A problem with one file of the `certs` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIssue {
    pub file: PathBuf,
    pub message: String,
}

/// Reads and checks one pair as of `now`, adding its bytes to `digest`; the pair and
/// its warnings, or why it cannot be used.
pub(super) fn load_pair(
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

/// FNV-1a, to tell whether two loads read the same bytes.
pub(super) struct Fnv(pub(super) u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
