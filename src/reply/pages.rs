//! The small HTML pages offramp answers with itself: the redirect body, the 503
//! maintenance page, 404, 400/414/431, 502/504. Everything from a config or a request
//! is HTML-escaped. The status host's own pages are `status::pages`.

use std::fmt::Write;
use std::time::SystemTime;

use crate::text::{ascii_string, html_escape, html_escaped_len, push_html_escaped, rfc3339};

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

/// The redirect page around its link, which stands twice between these parts.
const REDIRECT_PAGE: [&str; 3] = [
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><p>This site is down for maintenance. See <a href=\"",
    "\">",
    "</a>.</p></body></html>\n",
];

/// Body of a 302/307/308. Browsers follow the redirect without showing it, so it is
/// kept short (no styles): every offline request sends it.
pub fn redirect_page(location: &str) -> String {
    let mut out = Vec::with_capacity(redirect_page_len(location));
    push_redirect_page(&mut out, location);
    ascii_string(out)
}

/// [`redirect_page`] appended to `out` without formatting or a second buffer (the fast
/// path's offline answer).
pub fn push_redirect_page(out: &mut Vec<u8>, location: &str) {
    let [a, b, c] = REDIRECT_PAGE;
    out.extend_from_slice(a.as_bytes());
    let first = out.len();
    push_html_escaped(out, location.as_bytes());
    let escaped = first..out.len();
    out.extend_from_slice(b.as_bytes());
    out.extend_from_within(escaped);
    out.extend_from_slice(c.as_bytes());
}

/// Length of [`redirect_page`] for `location`.
pub fn redirect_page_len(location: &str) -> usize {
    REDIRECT_PAGE.iter().map(|p| p.len()).sum::<usize>() + 2 * html_escaped_len(location.as_bytes())
}

/// The 503 maintenance page served in place (`code = 503`, or `status_page = "builtin"`
/// without a status host). It reloads itself (meta refresh) and, with JavaScript,
/// checks every few seconds whether the site answers again, so the visitor is back on
/// the page they asked for as soon as it is online. `outage`: the site is offline
/// because its health checks fail (`auto_offline`), not for maintenance.
pub fn maintenance_page(
    site: &str,
    status_link: Option<&str>,
    until: Option<SystemTime>,
    reason: Option<&str>,
    outage: bool,
) -> String {
    let what = if outage {
        "is down"
    } else {
        "is down for maintenance"
    };
    let mut body = format!("<p><strong>{}</strong> {what}.</p>", html_escape(site));
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
        if outage {
            "Down"
        } else {
            "Down for maintenance"
        },
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
        for loc in ["https://s.example/a?b=1&c='\"<>", "https://s.example/"] {
            assert_eq!(redirect_page(loc).len(), redirect_page_len(loc));
        }
    }
}
