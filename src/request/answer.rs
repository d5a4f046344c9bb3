//! [`answer`]: every decision offramp serves itself, as a [`Reply`]. Both paths write
//! what this returns; neither builds a page of its own.

use super::{Decision, Facts};
use crate::reply::{pages, Reply};
use crate::snapshot::Snapshot;

/// The reply for `decision`; `None` for [`Decision::Proxy`] and
/// [`Decision::Subscription`] (answered by `subscribe` on Pingora's path).
/// Takes the decision by value: its `Location` moves into the reply, never copied.
pub fn answer(snap: &Snapshot, f: &Facts, decision: Decision) -> Option<Reply> {
    Some(match decision {
        Decision::Proxy { .. } | Decision::Subscription { .. } => return None,
        Decision::TargetTooLong => Reply::page(414, pages::client_error_page(414)),
        Decision::BadHost => Reply::page(400, pages::bad_host_page()),
        Decision::UnknownHost => Reply::page(404, pages::unknown_host_page()),
        Decision::HttpsRedirect { location, .. } => Reply::redirect(308, location),
        Decision::Redirect {
            status, location, ..
        } => Reply::redirect(status, location),
        Decision::StatusHost { origin } => {
            let method = http::Method::from_bytes(f.method).unwrap_or(http::Method::POST);
            crate::status::handle(&snap.table, &snap.view, &method, f.target, &origin)
        }
        Decision::Maintenance { site, link } => {
            let i = site as usize;
            let name = snap.table.sites.get(i).map_or("-", |s| &s.name);
            let until = snap.states.get(i).and_then(|s| s.until);
            let view = snap.view.sites.get(i);
            let reason = view.and_then(|v| v.reason.as_deref());
            let outage = view.is_some_and(|v| v.outage);
            let body = pages::maintenance_page(name, link.as_deref(), until, reason, outage);
            let mut r = Reply::page(503, body);
            r.retry_after = until.map(pages::retry_after_secs);
            r
        }
    })
}

/// The 502/504 page of a request to site `site` whose upstream failed.
pub fn upstream_error_reply(status: u16, link: Option<&str>) -> Reply {
    let mut r = Reply::page(status, pages::upstream_error_page(status, link));
    // The connection is not reused after a failure: say so in the answer.
    r.close = true;
    r
}
