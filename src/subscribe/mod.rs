//! E-mail subscriptions (CONTRACT section 11), when `[smtp]` is set: visitors of a
//! status host subscribe with the form on the overview, confirm with the link mailed to
//! them (double opt-in: nothing else is sent before), and get a mail for each incident
//! created, updated or resolved and each maintenance scheduled, started or completed
//! that touches the components they chose (none chosen: everything). Every mail carries
//! a one-click unsubscribe link (RFC 8058).
//!
//! Endpoints of a status host (see `request::Decision::Subscription`), every request
//! counted against its client's limit of 5 a minute (`limit`):
//! - `GET /subscribe`: the form; `POST /subscribe` (`email`, `component` repeated):
//!   202 "check your inbox" whatever the address's state, 422 for an address or
//!   component refused;
//! - `GET /subscribe/confirm?token=T`: a page with a Confirm button, which POSTs to the
//!   same URL and confirms (200);
//! - `GET /unsubscribe?token=T`: a page with an Unsubscribe button; `POST` with any
//!   body (RFC 8058's `List-Unsubscribe=One-Click`, urlencoded or multipart) removes
//!   the subscriber: 200, never a redirect.
//!
//! An unknown token is a 404. The request side is here ([`handle`], on Pingora's path:
//! it reads the body); the mails are made in `mail` and sent by the worker (`worker`,
//! [`run_mail`]), which follows the notification outbox like a target named `@mail`.
//! Subscribers and queued mails live in the database (`store::subscribers`).

pub mod address;
pub mod form;
pub mod limit;
pub mod mail;
mod pages;
pub mod session;
pub mod token;
mod worker;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use time::OffsetDateTime;

use crate::reply::Reply;
use crate::snapshot::Snapshot;
use crate::status::View;
use crate::store::{blocking, NewSubscriber, Store, Subscribed, TokenKind};

pub use form::MAX_BODY;
pub use worker::{run as run_mail, MAIL_TARGET};

/// A confirmation mail is sent again for a pending address at most this often.
pub const CONFIRM_RESEND: time::Duration = time::Duration::minutes(10);

/// Which subscription page a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/subscribe`
    Subscribe,
    /// `/subscribe/confirm`
    Confirm,
    /// `/unsubscribe`
    Unsubscribe,
}

/// The subscription page of a request target (path and query), if it is one.
pub fn page_of(target: &[u8]) -> Option<Page> {
    let path = match target.iter().position(|&b| b == b'?') {
        Some(i) => &target[..i],
        None => target,
    };
    match path {
        b"/subscribe" => Some(Page::Subscribe),
        b"/subscribe/confirm" => Some(Page::Confirm),
        b"/unsubscribe" => Some(Page::Unsubscribe),
        _ => None,
    }
}

/// What subscriptions need of the running daemon: its database, the snapshot the
/// pages are made from (title, `[status] url`) and the config in force.
#[derive(Clone)]
pub struct Handle {
    pub store: Arc<crate::store::Store>,
    pub snapshot: Arc<arc_swap::ArcSwap<crate::snapshot::Snapshot>>,
    pub configs: tokio::sync::watch::Receiver<Arc<crate::config::Config>>,
}

impl Handle {
    /// The config in force.
    pub fn config(&self) -> Arc<crate::config::Config> {
        self.configs.borrow().clone()
    }
}

static DAEMON: OnceLock<Handle> = OnceLock::new();
static LIMITER: OnceLock<limit::Limiter> = OnceLock::new();
static QUEUED: OnceLock<tokio::sync::Notify> = OnceLock::new();

/// Gives the request side the daemon's handle, once at start-up.
pub fn install(handle: Handle) {
    let _ = DAEMON.set(handle);
}

fn limiter() -> &'static limit::Limiter {
    LIMITER.get_or_init(limit::Limiter::default)
}

/// Signalled when a mail is queued outside the outbox (a confirmation).
fn queued() -> &'static tokio::sync::Notify {
    QUEUED.get_or_init(tokio::sync::Notify::new)
}

/// Counts a request of client `peer`: the 429 to answer when it is over its limit.
pub fn admit(view: &View, peer: Option<IpAddr>) -> Result<(), Reply> {
    limiter()
        .check(peer, Instant::now())
        .map_err(|wait| pages::too_many(view, wait.as_secs().max(1)))
}

/// 413: a body over [`MAX_BODY`].
pub fn too_large(view: &View) -> Reply {
    pages::too_large(view)
}

/// 408: the body did not arrive in time.
pub fn too_slow(view: &View) -> Reply {
    pages::too_slow(view)
}

/// A subscription request, its body read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub page: Page,
    pub method: &'a http::Method,
    /// Path and query.
    pub target: &'a [u8],
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// This status host as the visitor reached it (`Decision::Subscription`'s).
    pub origin: &'a str,
    /// The browser says another site's page sent it (`Sec-Fetch-Site: cross-site`).
    pub cross_site: bool,
}

/// The answer to a subscription request (the client already [`admit`]ted).
pub async fn handle(snap: &Snapshot, req: Request<'_>) -> Reply {
    let view = &*snap.view;
    let post = req.method == http::Method::POST;
    if !post && req.method != http::Method::GET && req.method != http::Method::HEAD {
        return crate::status::framed_not_allowed(view);
    }
    if req.page == Page::Subscribe && !post {
        return pages::form(view);
    }
    if req.page == Page::Subscribe && req.cross_site {
        // Another site's page making its visitors' browsers subscribe someone (each
        // visitor with a limit of their own): refused. Unsubscribing stays open to
        // any sender, as RFC 8058's mail clients are.
        return pages::cross_site(view);
    }
    let Some(store) = DAEMON.get().map(|d| d.store.clone()) else {
        return pages::unavailable(view);
    };
    let result = match req.page {
        Page::Subscribe => subscribe(snap, &store, &req).await,
        Page::Confirm | Page::Unsubscribe => by_token(view, &store, &req, post).await,
    };
    result.unwrap_or_else(|e| {
        tracing::error!(target: "offramp::mail", "subscription request failed: {e}");
        pages::unavailable(view)
    })
}

/// `POST /subscribe`.
async fn subscribe(
    snap: &Snapshot,
    store: &Arc<Store>,
    req: &Request<'_>,
) -> Result<Reply, String> {
    let view = &*snap.view;
    let fields = match form::fields(req.content_type, req.body) {
        Ok(f) => f,
        Err(form::FormError::Unsupported) => return Ok(pages::unsupported(view)),
        Err(form::FormError::Malformed(why)) => {
            return Ok(pages::refused(
                view,
                400,
                &format!("The form could not be read: {why}."),
                "",
                &[],
            ))
        }
    };
    let email = fields
        .iter()
        .find(|(k, _)| k == "email")
        .map_or("", |(_, v)| v.as_str());
    let mut chosen: Vec<String> = Vec::new();
    for (_, name) in fields.iter().filter(|(k, _)| k == "component") {
        if !chosen.contains(name) {
            chosen.push(name.clone());
        }
    }
    let known = &view.platform.components;
    if let Some(unknown) = chosen.iter().find(|c| !known.iter().any(|k| &k.name == *c)) {
        let why = format!("There is no component {unknown:?}.");
        chosen.retain(|c| known.iter().any(|k| &k.name == c));
        return Ok(pages::refused(view, 422, &why, email, &chosen));
    }
    let address = match address::parse(email) {
        Ok(a) => a,
        Err(why) => return Ok(pages::refused(view, 422, why, email, &chosen)),
    };
    let new = NewSubscriber {
        id: token::id()?,
        address: address.clone(),
        components: chosen,
        confirm_token: token::token()?,
        unsub_token: token::token()?,
        origin: req.origin.to_string(),
    };
    let title = view.title.clone();
    let status_url = snap.table.status_origin.as_deref().map(str::to_string);
    let s = store.clone();
    let id = new.id.clone();
    // The answer does not wait for the database: a new address (a write) and a known
    // one (none) take the same time to answer, so timing tells nobody who is
    // subscribed. A failed write is logged; the visitor can ask again.
    tokio::spawn(async move {
        let outcome = blocking(move || {
            s.subscribe(&new, OffsetDateTime::now_utc(), CONFIRM_RESEND, |row| {
                mail::confirmation(&title, &mail::base(status_url.as_deref(), &row.origin), row)
            })
        })
        .await;
        match outcome {
            Ok(Subscribed::New) => {
                tracing::info!(target: "offramp::mail", subscriber = %id, "new subscriber, confirmation mail queued");
                queued().notify_one();
            }
            Ok(Subscribed::Pending { resent: true }) => {
                tracing::info!(target: "offramp::mail", "pending subscriber asked again, confirmation mail queued");
                queued().notify_one();
            }
            Ok(Subscribed::Pending { resent: false }) => {
                tracing::debug!(target: "offramp::mail", "pending subscriber asked again within 10 minutes, no mail")
            }
            Ok(Subscribed::Confirmed) => {
                tracing::debug!(target: "offramp::mail", "confirmed subscriber asked again, nothing changed")
            }
            Err(e) => {
                tracing::error!(target: "offramp::mail", "subscription not recorded: {e}")
            }
        }
    });
    Ok(pages::check_inbox(view, &address))
}

/// `/subscribe/confirm` and `/unsubscribe`: GET shows the button, POST does it.
async fn by_token(
    view: &View,
    store: &Arc<Store>,
    req: &Request<'_>,
    post: bool,
) -> Result<Reply, String> {
    // The link's query; a form field `token` also does, for a client that posts it.
    let mut t = form::query_param(req.target, "token");
    if t.is_none() && post {
        t = form::fields(req.content_type, req.body)
            .ok()
            .and_then(|f| f.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    }
    let Some(t) = t.filter(|t| token::well_formed(t)) else {
        return Ok(pages::unknown_link(view));
    };
    let kind = match req.page {
        Page::Confirm => TokenKind::Confirm,
        _ => TokenKind::Unsubscribe,
    };
    let s = store.clone();
    let lookup = t.clone();
    let Some(sub) = blocking(move || s.subscriber_by_token(kind, &lookup)).await? else {
        return Ok(pages::unknown_link(view));
    };
    let confirmed = sub.confirmed_at.is_some();
    Ok(match (kind, post) {
        (TokenKind::Confirm, false) => {
            pages::confirm(view, &sub.address, &sub.components, confirmed, &t)
        }
        (TokenKind::Unsubscribe, false) => pages::unsubscribe(view, &sub.address, &t),
        (TokenKind::Confirm, true) => {
            let s = store.clone();
            let id = sub.id.clone();
            blocking(move || s.confirm_subscriber(&id, OffsetDateTime::now_utc())).await?;
            if !confirmed {
                tracing::info!(target: "offramp::mail", subscriber = %sub.id, "subscriber confirmed");
            }
            pages::confirmed_page(view, &sub.address, &sub.components)
        }
        (TokenKind::Unsubscribe, true) => {
            let s = store.clone();
            let id = sub.id.clone();
            blocking(move || s.remove_subscriber(&id)).await?;
            tracing::info!(target: "offramp::mail", subscriber = %sub.id, "subscriber unsubscribed");
            pages::unsubscribed(view, &sub.address)
        }
    })
}

#[cfg(test)]
mod tests;
