//! What offline visitors (and lost ones) see: the redirect target and the small HTML
//! pages offramp answers with itself (redirect body, 503 maintenance page, 404, 400,
//! 502/504).
//!
//! The redirect target is built from the configured status page and the request's own
//! path and query only; every byte that is not safe in a URL is percent-encoded, so
//! no CR/LF, backslash or `//host` in a request can move the target to another origin.

use std::fmt::Write;
use std::time::SystemTime;

use crate::text::{ascii_string, html_escape, is_unreserved, push_percent_encoded, rfc3339};

fn page(title: &str, body_html: &str) -> String {
    page_with_head(title, "", body_html)
}

fn page_with_head(title: &str, head: &str, body_html: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
<title>{t}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222;background:#fff}}\
@media (prefers-color-scheme:dark){{body{{color:#ddd;background:#111}}a{{color:#8ab4f8}}}}</style>\
</head><body><h1>{t}</h1>{body_html}</body></html>\n",
        t = html_escape(title)
    )
}

/// Body of a 302/307 to the status page. Browsers follow the redirect without showing
/// it, so it is kept short (no styles): every offline request sends it.
pub fn redirect_page(location: &str) -> String {
    let l = html_escape(location);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><p>This site is down for maintenance. See <a href=\"{l}\">{l}</a>.</p></body></html>\n"
    )
}

/// The 503 maintenance page served in place (`code = 503`, or `status_page = "builtin"`
/// without a status host). It reloads itself (meta refresh) and, with JavaScript,
/// checks every few seconds whether the site answers again, so the visitor is back on
/// the page they asked for as soon as it is online.
pub fn maintenance_page(
    site: &str,
    status_link: Option<&str>,
    until: Option<SystemTime>,
    reason: Option<&str>,
) -> String {
    let mut body = format!(
        "<p><strong>{}</strong> is down for maintenance.</p>",
        html_escape(site)
    );
    if let Some(r) = reason {
        let _ = write!(body, "<p>{}</p>", html_escape(r));
    }
    if let Some(t) = until.and_then(rfc3339) {
        let _ = write!(
            body,
            "<p>Expected back: <time datetime=\"{t}\">{t}</time>.</p>"
        );
    }
    if let Some(l) = status_link {
        let l = html_escape(l);
        let _ = write!(body, "<p>Status: <a href=\"{l}\">{l}</a></p>");
    }
    body.push_str("<p>This page reloads by itself when the site is back.</p>");
    body.push_str(IN_PLACE_SCRIPT);
    page_with_head(
        "Down for maintenance",
        "<meta http-equiv=\"refresh\" content=\"30\">",
        &body,
    )
}

/// Local times, and a reload as soon as the page's own URL stops answering 503.
const IN_PLACE_SCRIPT: &str = "<script>(function(){var t=document.querySelectorAll('time[datetime]');\
for(var i=0;i<t.length;i++){var d=new Date(t[i].getAttribute('datetime'));if(!isNaN(d.getTime()))t[i].textContent=d.toLocaleString();}\
if(!window.fetch)return;setInterval(function(){fetch(location.href,{method:'HEAD',cache:'no-store',redirect:'manual'})\
.then(function(r){if(r.status!==503)location.reload();}).catch(function(){});},3000);})();</script>";

/// Body of the 302 that sends a visitor from the status host back to their page.
pub fn redirect_back_page(location: &str) -> String {
    let l = html_escape(location);
    page(
        "Back online",
        &format!("<p>The site is back. Continue to <a href=\"{l}\">{l}</a>.</p>"),
    )
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

/// The query of a maintenance page's URL, up to the encoded `from` URL.
const FROM_PARAM: &str = "?from=";

/// 404 for a host no site claims.
pub fn unknown_host_page() -> String {
    page(
        "Not found",
        "<p>No site is configured for this host name.</p>",
    )
}

/// 400 for a request without a usable host.
pub fn bad_host_page() -> String {
    page("Bad request", "<p>The request has no valid Host.</p>")
}

/// 400, 414 or 431 for a request offramp cannot or will not read.
pub fn client_error_page(status: u16) -> String {
    let (title, text) = match status {
        414 => ("URI too long", "The requested path and query are too long."),
        431 => (
            "Request header fields too large",
            "The request's header is too large.",
        ),
        _ => ("Bad request", "The request could not be understood."),
    };
    page(title, &format!("<p>{text}</p>"))
}

/// 502/504 when the upstream cannot be reached or does not answer in time.
pub fn upstream_error_page(status: u16, status_link: Option<&str>) -> String {
    let what = if status == 504 {
        "did not answer in time"
    } else {
        "cannot be reached right now"
    };
    let mut body = format!("<p>The service behind this site {what}.</p>");
    if let Some(l) = status_link {
        let l = html_escape(l);
        let _ = write!(
            body,
            "<p>Check the status page: <a href=\"{l}\">{l}</a></p>"
        );
    }
    page(
        if status == 504 {
            "Gateway timeout"
        } else {
            "Bad gateway"
        },
        &body,
    )
}

/// Seconds from now until `until`, at least 1, for `Retry-After`.
pub fn retry_after_secs(until: SystemTime) -> u64 {
    until
        .duration_since(SystemTime::now())
        .map_or(1, |d| d.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_page_escapes_its_link() {
        assert!(redirect_page("https://s/\"><script>").contains("&quot;&gt;&lt;script&gt;"));
    }

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
