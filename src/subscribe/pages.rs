//! The pages of the subscription flow, in the status pages' frame: the form, "check
//! your inbox", the confirm and unsubscribe pages (each a button that POSTs, so a link
//! scanner that fetches the mail's links changes nothing) and their results, and the
//! refusals. Everything from a visitor or the database is HTML-escaped.

use crate::reply::Reply;
use crate::status::{framed, subscribe_form, View};
use crate::text::html_escape as esc;

const BACK: &str = "<p><a href=\"/\">Current status</a></p>";

fn components_text(components: &[String]) -> String {
    match components.is_empty() {
        true => "every component".to_string(),
        false => components.join(", "),
    }
}

/// `GET /subscribe`: the form alone (no refresh: the overview reloads itself).
pub fn form(view: &View) -> Reply {
    let body = format!(
        "<h1>Updates by e-mail</h1>{}{BACK}",
        subscribe_form(view, "", &[])
    );
    framed(view, 200, "Subscribe", &body)
}

/// 202: the same whether the address is new, pending or confirmed.
pub fn check_inbox(view: &View, address: &str) -> Reply {
    let body = format!(
        "<h1>Check your inbox</h1><div class=\"card\"><p>If <b>{}</b> can receive mail, a message \
with a link to confirm the subscription is on its way. Nothing else is sent until the link is \
followed.</p></div>{BACK}",
        esc(address)
    );
    framed(view, 202, "Check your inbox", &body)
}

/// 422 (an address or component refused) or 400 (a form that does not parse), with
/// the form filled in again.
pub fn refused(view: &View, status: u16, why: &str, email: &str, chosen: &[String]) -> Reply {
    let body = format!(
        "<h1>Subscribe</h1><p class=\"err\">{}</p>{}{BACK}",
        esc(why),
        subscribe_form(view, email, chosen)
    );
    framed(view, status, "Subscribe", &body)
}

/// 415: a body that is not a form.
pub fn unsupported(view: &View) -> Reply {
    let body = format!(
        "<h1>Unsupported form</h1><p>Send the form as application/x-www-form-urlencoded or \
multipart/form-data.</p>{BACK}"
    );
    framed(view, 415, "Unsupported form", &body)
}

/// 413: a body over the limit; the connection is closed after it.
pub fn too_large(view: &View) -> Reply {
    let body = format!("<h1>Form too large</h1>{BACK}");
    let mut r = framed(view, 413, "Form too large", &body);
    r.close = true;
    r
}

/// 408: the body did not come in time; the connection is closed after it.
pub fn too_slow(view: &View) -> Reply {
    let body = format!("<h1>Request timeout</h1>{BACK}");
    let mut r = framed(view, 408, "Request timeout", &body);
    r.close = true;
    r
}

/// 429 with `Retry-After`.
pub fn too_many(view: &View, retry_after: u64) -> Reply {
    let body =
        format!("<h1>Too many requests</h1><p>Try again in {retry_after} seconds.</p>{BACK}");
    let mut r = framed(view, 429, "Too many requests", &body);
    r.retry_after = Some(retry_after);
    r
}

/// 404: a token that is not (or no longer) one.
pub fn unknown_link(view: &View) -> Reply {
    let body = format!(
        "<h1>This link is not valid</h1><p>It may be mistyped, or the subscription it was \
for is gone (unsubscribed, or not confirmed within a week).</p>{BACK}"
    );
    framed(view, 404, "Link not valid", &body)
}

/// 503: the database or the randomness is not available.
/// 403: a subscription sent from another site's page.
pub fn cross_site(view: &View) -> Reply {
    let body = format!(
        "<h1>Subscribe from this page</h1><p>Subscriptions are taken from this status page's own form only.</p>{BACK}"
    );
    framed(view, 403, "Forbidden", &body)
}

pub fn unavailable(view: &View) -> Reply {
    let body =
        format!("<h1>Subscriptions are unavailable</h1><p>Try again in a few minutes.</p>{BACK}");
    framed(view, 503, "Unavailable", &body)
}

/// A page with one button that POSTs back to `action`.
fn button_page(view: &View, title: &str, text: &str, action: &str, button: &str) -> Reply {
    let body = format!(
        "<h1>{t}</h1><div class=\"card\"><p>{text}</p><form class=\"act\" method=\"post\" \
action=\"{a}\"><button type=\"submit\">{b}</button></form></div>{BACK}",
        t = esc(title),
        a = esc(action),
        b = esc(button),
    );
    framed(view, 200, title, &body)
}

/// `GET /subscribe/confirm?token=T`.
pub fn confirm(
    view: &View,
    address: &str,
    components: &[String],
    confirmed: bool,
    token: &str,
) -> Reply {
    if confirmed {
        return confirmed_page(view, address, components);
    }
    button_page(
        view,
        "Confirm your subscription",
        &format!(
            "Send mail about incidents and maintenance of {} to <b>{}</b>?",
            esc(&components_text(components)),
            esc(address)
        ),
        &format!("/subscribe/confirm?token={token}"),
        "Confirm",
    )
}

/// `POST /subscribe/confirm?token=T`: done.
pub fn confirmed_page(view: &View, address: &str, components: &[String]) -> Reply {
    let body = format!(
        "<h1>You are subscribed</h1><div class=\"card\"><p><b>{}</b> gets a mail for each \
incident and maintenance of {}. Every mail has a link to unsubscribe.</p></div>{BACK}",
        esc(address),
        esc(&components_text(components))
    );
    framed(view, 200, "Subscribed", &body)
}

/// `GET /unsubscribe?token=T`.
pub fn unsubscribe(view: &View, address: &str, token: &str) -> Reply {
    button_page(
        view,
        "Unsubscribe",
        &format!("Stop sending mail to <b>{}</b>?", esc(address)),
        &format!("/unsubscribe?token={token}"),
        "Unsubscribe",
    )
}

/// `POST /unsubscribe?token=T`: done (200, never a redirect: RFC 8058).
pub fn unsubscribed(view: &View, address: &str) -> Reply {
    let body = format!(
        "<h1>You are unsubscribed</h1><div class=\"card\"><p>No more mail is sent to <b>{}</b>.\
</p></div>{BACK}",
        esc(address)
    );
    framed(view, 200, "Unsubscribed", &body)
}
