//! [`decide`]: the snapshot and a request's facts → what offramp does with it. Pure: no
//! I/O, no locks, no clock; both HTTP paths call it and neither decides anything else.

use super::location::{builtin_location, builtin_status_origin, origin};
use super::{Decision, Facts, Listener, Scheme};
use crate::config::{OfflineCode, SiteState};
use crate::snapshot::Snapshot;

/// Requests under this path are never redirected to HTTPS or to the status page: they
/// are proxied, so an ACME client behind offramp can renew certificates (HTTP-01).
pub const ACME_CHALLENGE_PREFIX: &[u8] = b"/.well-known/acme-challenge/";

/// Whether a request target is an ACME HTTP-01 challenge: the prefix followed by one
/// token of base64url characters (RFC 8555 section 8.3), nothing else. Anything more
/// (`../`, `%2e`, a query, a second segment) is an ordinary request, so the exception
/// cannot be used to reach other paths of an offline site or to dodge HTTPS.
pub fn is_acme_challenge(target: &[u8]) -> bool {
    target
        .strip_prefix(ACME_CHALLENGE_PREFIX)
        .is_some_and(|token| {
            !token.is_empty()
                && token
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What offramp does with the request `f` in snapshot `snap`, in this order: a target
/// too long, no usable host, a status host (its subscription pages when e-mail
/// subscriptions are on), an unknown host, an ACME challenge (always
/// proxied), `redirect_https`, an offline site (its upstream for a peer in `bypass`,
/// else a redirect or the maintenance page), proxy.
pub fn decide(snap: &Snapshot, f: &Facts) -> Decision {
    // Bounds what reaches an upstream and the size of a redirect's Location.
    if f.target_len > crate::limits::MAX_REQUEST_TARGET {
        return Decision::TargetTooLong;
    }
    let Ok(host) = f.host else {
        return Decision::BadHost;
    };
    let idx = match snap.table.lookup(host) {
        Ok(Some(i)) => i,
        Err(_) => return Decision::BadHost,
        Ok(None) if snap.table.is_status_host(host) => {
            return match https_origin(snap, f, host) {
                Some(o) => Decision::HttpsRedirect {
                    site: None,
                    location: crate::text::location(&o, true, f.target),
                },
                None => {
                    let (scheme, port) = public_scheme_port(snap, f.listener, f.local_port);
                    let name = crate::routes::normalized_host(host).unwrap_or_default();
                    let origin = origin(scheme, &name, port);
                    match crate::subscribe::page_of(f.target).filter(|_| snap.view.subscribe) {
                        Some(page) => Decision::Subscription { origin, page },
                        None => Decision::StatusHost { origin },
                    }
                }
            };
        }
        Ok(None) => return Decision::UnknownHost,
    };
    let (Some(site), Some(state)) = (
        snap.table.sites.get(idx as usize),
        snap.states.get(idx as usize),
    ) else {
        return Decision::UnknownHost;
    };
    let acme = f.listener.scheme == Scheme::Http && is_acme_challenge(f.target);
    if acme {
        return Decision::Proxy { site: idx };
    }
    if let Some(o) = https_origin(snap, f, host) {
        return Decision::HttpsRedirect {
            site: Some(idx),
            location: crate::text::location(&o, true, f.target),
        };
    }
    if state.state == SiteState::Online {
        return Decision::Proxy { site: idx };
    }
    // Admin bypass: only the TCP peer counts, never a header.
    if let Some(peer) = f.peer.filter(|_| !site.bypass.is_empty()) {
        if site.bypass.iter().any(|n| n.contains(peer)) {
            return Decision::Proxy { site: idx };
        }
    }
    let redirects = matches!(site.code, OfflineCode::Found | OfflineCode::Temporary);
    if redirects && site.builtin {
        let (scheme, port) = public_scheme_port(snap, f.listener, f.local_port);
        if let Some(status_origin) = builtin_status_origin(snap, scheme, port) {
            // The way back: this request's own URL on the listener it came in on.
            let scheme = f.listener.scheme.as_str();
            let mut from = String::with_capacity(host.len() + 16);
            from.push_str(scheme);
            from.push_str("://");
            from.push_str(&String::from_utf8_lossy(host).to_ascii_lowercase());
            let from = crate::text::location(&from, true, f.target);
            return Decision::Redirect {
                site: idx,
                status: site.code.status(),
                location: builtin_location(&status_origin, &site.name, &from),
            };
        }
    }
    if let (true, Some(prefix)) = (redirects, site.status_url.as_deref()) {
        return Decision::Redirect {
            site: idx,
            status: site.code.status(),
            location: crate::text::location(prefix, site.keep_uri, f.target),
        };
    }
    let link = match site.builtin {
        true => {
            let (scheme, port) = public_scheme_port(snap, f.listener, f.local_port);
            builtin_status_origin(snap, scheme, port)
                .map(|o| format!("{o}{}{}", crate::status::MAINTENANCE_PREFIX, site.name))
        }
        false => site.status_url.as_deref().map(str::to_string),
    };
    Decision::Maintenance { site: idx, link }
}

/// `https://HOST[:PORT]` for a plain-HTTP request that must move to HTTPS.
fn https_origin(snap: &Snapshot, f: &Facts, host: &[u8]) -> Option<String> {
    if f.listener.scheme != Scheme::Http || !snap.table.redirect_https {
        return None;
    }
    let port = f.listener.https_port?;
    let name = crate::routes::normalized_host(host).ok()?;
    Some(origin("https", &name, port))
}

/// Scheme and port a visitor of this connection reaches offramp on: the listener's own
/// (never the request's `Host`); plain HTTP goes straight to HTTPS when
/// `redirect_https` would send it there anyway.
pub fn public_scheme_port(snap: &Snapshot, l: Listener, local_port: u16) -> (&'static str, u16) {
    if l.scheme == Scheme::Http && snap.table.redirect_https {
        if let Some(port) = l.https_port {
            return ("https", port);
        }
    }
    (l.scheme.as_str(), local_port)
}
