//! The URLs a decision sends visitors to: the built-in status page's origin, a site's
//! page on it (carrying the URL asked for), and `scheme://host[:port]` origins.

use crate::snapshot::Snapshot;
use crate::text::{ascii_string, is_unreserved, push_percent_encoded};

/// The query of a maintenance page's URL, up to the encoded `from` URL.
const FROM_PARAM: &str = "?from=";

/// `scheme://host[:port]`, the port left out when it is the scheme's default.
pub fn origin(scheme: &str, host: &str, port: u16) -> String {
    match (scheme, port) {
        ("http", 80) | ("https", 443) | (_, 0) => format!("{scheme}://{host}"),
        _ => format!("{scheme}://{host}:{port}"),
    }
}

/// `scheme://STATUS-HOST[:port]` of the built-in status page for a request that came in
/// on a listener of this scheme and port (or `[status] url` when set); `None` without a
/// status host.
pub fn builtin_status_origin(snap: &Snapshot, scheme: &str, port: u16) -> Option<String> {
    // `[status] url` is the public address, whatever listener the request came in on.
    if let Some(url) = &snap.table.status_origin {
        return Some(url.to_string());
    }
    let host = snap.table.status_hosts.first()?;
    Some(origin(scheme, host, port))
}

/// The status page an error page (502/504) of site `i` links to: the site's own, or
/// the built-in one's overview, for a visitor on this scheme and port.
pub fn error_page_link(snap: &Snapshot, i: u32, scheme: &str, port: u16) -> Option<String> {
    let site = snap.table.sites.get(i as usize)?;
    match site.builtin {
        true => builtin_status_origin(snap, scheme, port).map(|o| format!("{o}/")),
        false => site.status_url.as_deref().map(str::to_string),
    }
}

/// `Location` for an offline site whose status page is the built-in one: its page on
/// the status host, carrying the URL the visitor asked for (`from`, percent-encoded).
///
/// `from` is left out when it would make the page's request target (path and query)
/// longer than offramp itself accepts ([`crate::limits::MAX_REQUEST_TARGET`]): the
/// visitor then still sees the page, only without the way back. A URL within that
/// limit can triple in length once encoded, so this is not hypothetical.
pub fn builtin_location(status_origin: &str, site: &str, from: &str) -> String {
    let page_len = crate::status::MAINTENANCE_PREFIX.len() + site.len();
    let from_len: usize = from
        .bytes()
        .map(|b| if is_unreserved(b) { 1 } else { 3 })
        .sum();
    let with_from = page_len + FROM_PARAM.len() + from_len <= crate::limits::MAX_REQUEST_TARGET;
    let mut out = Vec::with_capacity(status_origin.len() + page_len + FROM_PARAM.len() + from_len);
    out.extend_from_slice(status_origin.as_bytes());
    out.extend_from_slice(crate::status::MAINTENANCE_PREFIX.as_bytes());
    out.extend_from_slice(site.as_bytes());
    if with_from {
        out.extend_from_slice(FROM_PARAM.as_bytes());
        push_percent_encoded(&mut out, from.as_bytes(), is_unreserved);
    }
    ascii_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_location_leaves_out_a_from_too_long_for_the_status_host() {
        let origin = "http://status.example:8080";
        assert_eq!(
            builtin_location(origin, "cloud", "http://cloud.example/a b?x=1"),
            "http://status.example:8080/maintenance/cloud?from=http%3A%2F%2Fcloud.example%2Fa%20b%3Fx%3D1"
        );
        // The target on the status host is at most what offramp accepts: exactly at the
        // limit `from` is kept, one byte over it is left out.
        let page = "/maintenance/cloud?from=";
        let fill = crate::limits::MAX_REQUEST_TARGET - page.len() - "http%3A%2F%2Fc%2F".len();
        let from = format!("http://c/{}", "a".repeat(fill));
        let loc = builtin_location(origin, "cloud", &from);
        assert_eq!(loc.len() - origin.len(), crate::limits::MAX_REQUEST_TARGET);
        assert!(loc.ends_with(&"a".repeat(fill)));
        let from = format!("http://c/{}", "a".repeat(fill + 1));
        assert_eq!(
            builtin_location(origin, "cloud", &from),
            "http://status.example:8080/maintenance/cloud"
        );
        // Slashes triple in length: a 5,400-byte path is well over the limit encoded.
        let from = format!("http://c{}", "/a".repeat(2700));
        assert_eq!(
            builtin_location(origin, "cloud", &from),
            "http://status.example:8080/maintenance/cloud"
        );
    }
}
