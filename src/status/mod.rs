//! The built-in status page (`status_page = "builtin"`, `[status] hosts`): what offramp
//! answers on a status host, and the view of every site's state those answers show.
//!
//! Pages on a status host:
//! - `/` — the overview: every site as a component (Operational / Under Maintenance),
//!   the reason and expected end of each maintenance, the recent history of changes;
//! - `/maintenance/<site>?from=<url>` — the page an offline site's visitors are sent
//!   to; it polls the site's state and sends the visitor back to `from` as soon as the
//!   site is online (a meta refresh does the same without JavaScript);
//! - `/api/sites/<site>.json` — what that page polls;
//! - `/api/v2/summary.json`, `/api/v2/status.json`, `/api/v2/components.json` — the
//!   shape of Atlassian Statuspage's public API;
//! - `/embed.js` — a script any site can include to show a maintenance banner;
//! - `/assets/status.js` — the pages' own script.
//!
//! Owns: those answers and the `from` check (a visitor is only ever sent back to a host
//! of the same site). Does not own: how states are decided (see `daemon`), the offline
//! redirect itself (see `proxy`, `maintenance`).

mod api;
mod bars;
mod feed;
mod incidents;
mod pages;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::config::{SiteState, StatusLink};
use crate::platform::ComponentStatus;
use crate::reply::{self, Reply};
use crate::routes::RouteTable;
use crate::state::HistoryEvent;

/// Path prefix of the per-site maintenance pages on a status host.
pub const MAINTENANCE_PREFIX: &str = "/maintenance/";
/// Entries of the history shown on the overview and in the API.
pub const HISTORY_SHOWN: usize = 20;

/// One site as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteView {
    pub name: String,
    pub state: SiteState,
    pub status: ComponentStatus,
    /// When the deciding action happened.
    pub since: Option<OffsetDateTime>,
    /// Expected end of the maintenance, when known.
    pub until: Option<OffsetDateTime>,
    pub reason: Option<String>,
    /// Offline because every upstream fails its health checks (`auto_offline`): an
    /// outage, not maintenance.
    pub outage: bool,
}

impl SiteView {
    /// The same site, offline by its health checks: shown as down, not as maintenance.
    pub fn in_outage(mut self, outage: bool) -> SiteView {
        if outage {
            self.outage = true;
            self.status = ComponentStatus::MajorOutage;
        }
        self
    }

    /// A site's view from its effective state.
    pub fn new(
        name: &str,
        state: SiteState,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        reason: Option<String>,
    ) -> SiteView {
        SiteView {
            name: name.to_string(),
            state,
            // Offline by a flip, the config or a window; `in_outage` for health.
            status: match state {
                SiteState::Online => ComponentStatus::Operational,
                SiteState::Offline => ComponentStatus::UnderMaintenance,
            },
            since,
            until,
            reason,
            outage: false,
        }
    }
}

/// Everything the status pages show, rebuilt with every snapshot (so never stale and
/// never locked on the data path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub title: String,
    pub links: Vec<StatusLink>,
    /// In config order: index `i` is the route table's site `i`.
    pub sites: Vec<SiteView>,
    /// Newest first, at most `HISTORY_SHOWN`.
    pub history: Vec<HistoryEvent>,
    /// When this view was built (the last change of anything it shows).
    pub updated_at: OffsetDateTime,
    /// Components, incidents and maintenance (section 9), as of this snapshot.
    pub platform: std::sync::Arc<crate::platform::PlatformView>,
    /// Pages rendered once per snapshot, on first request.
    pub rendered: Rendered,
    /// E-mail subscriptions are on (`[smtp]` is set): the overview has the form, and
    /// `/subscribe`, `/subscribe/confirm` and `/unsubscribe` are answered (`subscribe`).
    pub subscribe: bool,
}

/// The pages that depend on nothing but the view, rendered at most once per snapshot
/// (a snapshot never changes): the overview and the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    overview: std::sync::OnceLock<String>,
    history: std::sync::OnceLock<String>,
}

/// The overview page of `view`, rendered anew (benchmarks; requests use the cache).
pub fn render_overview(view: &View) -> String {
    incidents::overview(view)
}

/// Content-Security-Policy of the status host's HTML pages: their own script only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Headers of every HTML page of the status host.
const PAGE_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", PAGE_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
];
/// The same, for a method the status host does not take.
const NOT_ALLOWED_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", PAGE_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Allow", "GET, HEAD"),
];
/// Headers of the API and the scripts: any page may read them (an embed banner, a
/// widget, a script).
const SHARED_HEADERS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
];

/// The same, for a method the subscription pages do not take.
const FORM_NOT_ALLOWED_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", PAGE_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Allow", "GET, HEAD, POST"),
];

/// A page of the e-mail subscriptions (`subscribe`): `body` in the status pages' frame,
/// with their headers.
pub fn framed(view: &View, status: u16, title: &str, body: &str) -> Reply {
    html(status, pages::layout(view, title, None, body))
}

/// 405 for a method a subscription page does not take.
pub fn framed_not_allowed(view: &View) -> Reply {
    html(405, pages::not_found(view, "Method not allowed")).with_fixed(FORM_NOT_ALLOWED_HEADERS)
}

/// The subscribe form (e-mail address, a checkbox per component), filled in with
/// `email` and `chosen`.
pub fn subscribe_form(view: &View, email: &str, chosen: &[String]) -> String {
    pages::subscribe_form(view, email, chosen)
}

static STATUS_JS: &str = include_str!("assets/status.js");
static EMBED_JS: &str = include_str!("assets/embed.js");

fn html(status: u16, body: String) -> Reply {
    Reply::page(status, body).with_fixed(PAGE_HEADERS)
}

fn json(value: &serde_json::Value) -> Reply {
    Reply::typed(200, reply::JSON, Bytes::from(value.to_string())).with_fixed(SHARED_HEADERS)
}

fn feed_reply(content_type: &'static str, body: String) -> Reply {
    Reply::typed(200, content_type, Bytes::from(body)).with_fixed(SHARED_HEADERS)
}

fn script(text: &'static str) -> Reply {
    Reply::typed(200, reply::JS, Bytes::from_static(text.as_bytes())).with_fixed(SHARED_HEADERS)
}

/// The 302 that sends a visitor whose site is back to the page they asked for.
fn back_to(location: String) -> Reply {
    let mut r = html(302, reply::pages::redirect_back_page(&location));
    r.location = Some(location);
    r
}

/// Answers a request to a status host. `origin` is this status host as the visitor
/// reached it (`http://status.example:8080`), for absolute links in the API; `[status]
/// url`, when set, is used instead.
pub fn handle(
    table: &RouteTable,
    view: &View,
    method: &http::Method,
    target: &[u8],
    origin: &str,
) -> Reply {
    let origin = table.status_origin.as_deref().unwrap_or(origin);
    if method != http::Method::GET && method != http::Method::HEAD {
        return html(405, pages::not_found(view, "Method not allowed"))
            .with_fixed(NOT_ALLOWED_HEADERS);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let path = std::str::from_utf8(path).unwrap_or("");
    use crate::platform::MaintenanceStatus as M;
    match path {
        "/" => html(
            200,
            view.rendered
                .overview
                .get_or_init(|| incidents::overview(view))
                .clone(),
        ),
        "/history" => html(
            200,
            view.rendered
                .history
                .get_or_init(|| incidents::history(view))
                .clone(),
        ),
        "/history.atom" => feed_reply(reply::ATOM, feed::atom(view, origin)),
        "/history.rss" => feed_reply(reply::RSS, feed::rss(view, origin)),
        "/api/v2/summary.json" => json(&api::summary(view, origin)),
        "/api/v2/status.json" => json(&api::status(view, origin)),
        "/api/v2/components.json" => json(&api::components(view, origin)),
        "/api/v2/incidents.json" => json(&api::incidents(view, origin, false)),
        "/api/v2/incidents/unresolved.json" => json(&api::incidents(view, origin, true)),
        "/api/v2/scheduled-maintenances.json" => {
            json(&api::scheduled_maintenances(view, origin, None))
        }
        "/api/v2/scheduled-maintenances/upcoming.json" => json(&api::scheduled_maintenances(
            view,
            origin,
            Some(M::Scheduled),
        )),
        "/api/v2/scheduled-maintenances/active.json" => json(&api::scheduled_maintenances(
            view,
            origin,
            Some(M::InProgress),
        )),
        "/embed.js" => script(EMBED_JS),
        "/assets/status.js" => script(STATUS_JS),
        _ => {
            if let Some(name) = path.strip_prefix(MAINTENANCE_PREFIX) {
                if let Some(i) = site_index(view, name) {
                    return maintenance(table, view, i, query);
                }
            }
            if let Some(name) = path
                .strip_prefix("/api/sites/")
                .and_then(|n| n.strip_suffix("/uptime.json"))
            {
                if site_index(view, name).is_some() {
                    return json(&api::uptime(view, name));
                }
                let err = serde_json::json!({ "error": format!("unknown site {name:?}") });
                return Reply::typed(404, reply::JSON, Bytes::from(err.to_string()))
                    .with_fixed(SHARED_HEADERS);
            }
            if let Some(name) = path
                .strip_prefix("/api/sites/")
                .and_then(|n| n.strip_suffix(".json"))
            {
                if let Some(i) = site_index(view, name) {
                    return json(&api::site(view, &view.sites[i]));
                }
            }
            if let Some(page) = path
                .strip_prefix("/incidents/")
                .and_then(|id| incidents::incident_page(view, id))
            {
                return html(200, page);
            }
            html(404, pages::not_found(view, "Page not found"))
        }
    }
}

fn site_index(view: &View, name: &str) -> Option<usize> {
    view.sites.iter().position(|s| s.name == name)
}

/// The per-site page: under maintenance, or (site online) straight back to `from`.
fn maintenance(table: &RouteTable, view: &View, i: usize, query: &[u8]) -> Reply {
    let site = &view.sites[i];
    let back = query_param(query, b"from").and_then(|from| return_url(table, i, &from));
    match (site.state, back) {
        (SiteState::Online, Some(url)) => back_to(url),
        (_, back) => html(200, pages::maintenance(view, site, back.as_deref())),
    }
}

/// The value of `name` in a query string, percent-decoded.
fn query_param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// `from` made safe: an `http(s)://` URL whose host belongs to site `i`, rebuilt with
/// every unsafe byte percent-encoded. `None` for anything else, so a forged `from` can
/// never send a visitor to another host.
pub fn return_url(table: &RouteTable, i: usize, from: &[u8]) -> Option<String> {
    let lower_prefix = |p: &[u8]| from.len() >= p.len() && from[..p.len()].eq_ignore_ascii_case(p);
    let (scheme, rest) = if lower_prefix(b"https://") {
        ("https", &from[8..])
    } else if lower_prefix(b"http://") {
        ("http", &from[7..])
    } else {
        return None;
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // lookup() accepts only host-name bytes and a numeric port: no '@', '\', spaces.
    match table.lookup(authority) {
        Ok(Some(idx)) if idx as usize == i => {}
        _ => return None,
    }
    let authority = std::str::from_utf8(authority).ok()?.to_ascii_lowercase();
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        port.parse::<u16>().ok().filter(|p| *p != 0)?;
    }
    let tail = match tail.iter().position(|&b| b == b'#') {
        Some(h) => &tail[..h],
        None => tail,
    };
    Some(crate::text::location(
        &format!("{scheme}://{authority}"),
        true,
        tail,
    ))
}

#[cfg(test)]
mod tests;
