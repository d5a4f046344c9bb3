//! What offramp does with a request, decided once for both HTTP paths.
//!
//! A request's path through the program: a listener (`server`) hands the connection
//! to offramp's HTTP/1.1 fast path (`fast`) or to Pingora (`proxy`); either one
//! extracts the request's [`Facts`] and calls [`decide`] with the current
//! [`Snapshot`](crate::snapshot::Snapshot). The [`Decision`] is then served: an answer
//! offramp writes itself ([`answer`] turns every such decision into a
//! [`Reply`](crate::reply::Reply)), or a proxied exchange whose headers follow
//! [`forward`] and whose failures are classified by [`upstream_error`]. [`access`]
//! counts the request and writes its access-log line.
//!
//! Owns: the branch order (bad head, unknown host, status host, HTTPS redirect, ACME
//! challenge, offline redirect or maintenance page, proxy), the forwarding policy, the
//! upstream-error taxonomy, the access log. Does not own: HTTP framing (`fast`,
//! Pingora), page contents (`reply::pages`, `status`), how the snapshot is made
//! (`daemon`).

pub mod access;
mod answer;
mod decision;
pub mod forward;
pub mod location;
pub mod upstream_error;

use std::net::IpAddr;

pub use answer::{answer, upstream_error_reply};
pub use decision::{decide, is_acme_challenge, public_scheme_port, ACME_CHALLENGE_PREFIX};

use crate::metrics::Outcome;
use crate::routes::HostError;

/// The scheme of the listeners a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What is fixed for every request of a listener set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub scheme: Scheme,
    /// Port of the first HTTPS listener, for `redirect_https` (`None`: no HTTPS).
    pub https_port: Option<u16>,
}

/// What the decision looks at in a request. Both paths fill it from what they parsed.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub listener: Listener,
    /// The local port of the connection (the listener's own).
    pub local_port: u16,
    /// The request's host: the target's authority for absolute-form and HTTP/2, else the
    /// one `Host` field; an error when it is missing or repeated.
    pub host: Result<&'a [u8], HostError>,
    pub method: &'a [u8],
    /// Path and query as the client sent them (an absolute-form target reduced to its
    /// path and query).
    pub target: &'a [u8],
    /// Length of the request target as received (absolute form included).
    pub target_len: usize,
    /// The TCP peer's address.
    pub peer: Option<IpAddr>,
}

/// What offramp does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The target is longer than `limits::MAX_REQUEST_TARGET`: 414.
    TargetTooLong,
    /// No usable host: 400.
    BadHost,
    /// A host no site or status host claims: 404.
    UnknownHost,
    /// A status host (`[status] hosts`): the status page, with this origin for its
    /// absolute links.
    StatusHost { origin: String },
    /// Plain HTTP with `redirect_https`: 308 to this location. `site` is `None` for a
    /// status host.
    HttpsRedirect { site: Option<u32>, location: String },
    /// An offline site: 302/307 to its status page.
    Redirect {
        site: u32,
        status: u16,
        location: String,
    },
    /// An offline site without a page to redirect to, or with `code = 503`: the
    /// maintenance page in place, linking to `link`.
    Maintenance { site: u32, link: Option<String> },
    /// Proxy to the site's upstream.
    Proxy { site: u32 },
    /// A status host's e-mail subscription page (`/subscribe`, `/subscribe/confirm`,
    /// `/unsubscribe`, only with `[smtp]`): answered by `subscribe`, which reads the
    /// request's body, so on Pingora's path (the fast path hands it over).
    Subscription {
        origin: String,
        page: crate::subscribe::Page,
    },
}

impl Decision {
    /// The site the request is counted for, if any.
    pub fn site(&self) -> Option<u32> {
        match self {
            Decision::HttpsRedirect { site, .. } => *site,
            Decision::Redirect { site, .. }
            | Decision::Maintenance { site, .. }
            | Decision::Proxy { site } => Some(*site),
            _ => None,
        }
    }

    /// How the request is counted in the metrics.
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::TargetTooLong | Decision::BadHost => Outcome::BadRequest,
            Decision::UnknownHost => Outcome::UnknownHost,
            Decision::StatusHost { .. }
            | Decision::Subscription { .. }
            | Decision::HttpsRedirect { site: None, .. } => Outcome::StatusPage,
            Decision::HttpsRedirect { .. } => Outcome::HttpsRedirect,
            Decision::Redirect { .. } => Outcome::Redirected,
            Decision::Maintenance { .. } => Outcome::Maintenance,
            Decision::Proxy { .. } => Outcome::Proxied,
        }
    }
}

#[cfg(test)]
mod tests;
