//! Unit tests of loading a certs directory and matching names to pairs, on
//! certificates generated into a temporary directory.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

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
