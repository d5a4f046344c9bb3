//! The status host's HTML frame (layout, styles, time tags) and the per-site
//! maintenance page and 404; the platform's pages are `incidents`'. Light and
//! dark themes, readable on a phone, no external assets; everything from the config or
//! a request is HTML-escaped.

use std::fmt::Write;

use time::OffsetDateTime;

use super::{ComponentStatus, SiteView, View, MAINTENANCE_PREFIX};
use crate::config::SiteState;
use crate::state::{Cause, HistoryEvent};
use crate::text::html_escape as esc;

/// Seconds between reloads of a page without JavaScript.
pub(super) const REFRESH_OVERVIEW: u32 = 60;
const REFRESH_MAINTENANCE: u32 = 30;

use super::bars::STYLE as BARS;

const STYLE: &str = "\
:root{--fg:#1d2125;--muted:#5e6c7a;--bg:#f6f7f9;--card:#fff;--line:#dfe3e8;--ok:#1f883d;--okbg:#e6f4ea;--mt:#0b63c5;--mtbg:#e4effc;--link:#0b63c5}\
@media (prefers-color-scheme:dark){:root{--fg:#e3e6ea;--muted:#9aa5b1;--bg:#111417;--card:#1b1f24;--line:#2d333b;--ok:#4ac26b;--okbg:#14301c;--mt:#6cb6ff;--mtbg:#132a44;--link:#6cb6ff}}\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
main{max-width:46rem;margin:0 auto;padding:1.5rem 1rem 3rem}a{color:var(--link)}h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:2rem 0 .6rem}\
.banner{padding:1rem 1.2rem;border-radius:.6rem;font-weight:600;margin:1rem 0}.banner.ok{background:var(--okbg);color:var(--ok)}.banner.mt{background:var(--mtbg);color:var(--mt)}\
.list{background:var(--card);border:1px solid var(--line);border-radius:.6rem;margin:0;padding:0;list-style:none}\
.list li{padding:.8rem 1.2rem;border-top:1px solid var(--line)}.list li:first-child{border-top:0}\
.row{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}.name{font-weight:600}\
.st{font-weight:600;white-space:nowrap}.st.operational{color:var(--ok)}.st.under_maintenance{color:var(--mt)}\
.detail{color:var(--muted);font-size:.92rem;margin-top:.2rem}.muted{color:var(--muted)}footer{margin-top:2.5rem;font-size:.85rem;color:var(--muted)}\
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:1.2rem 1.4rem}.reason{font-size:1.1rem}\
:root{--minor:#9a6700;--minorbg:#fff8c5;--major:#bc4c00;--majorbg:#fff1e5;--crit:#cf222e;--critbg:#ffebe9}\
@media (prefers-color-scheme:dark){:root{--minor:#d29922;--minorbg:#2e2600;--major:#f0883e;--majorbg:#3d1d00;--crit:#ff7b72;--critbg:#3d0d0d}}\
.banner.minor{background:var(--minorbg);color:var(--minor)}.banner.major{background:var(--majorbg);color:var(--major)}.banner.critical{background:var(--critbg);color:var(--crit)}.banner.maintenance{background:var(--mtbg);color:var(--mt)}.banner.none{background:var(--okbg);color:var(--ok)}\
.st.degraded_performance{color:var(--minor)}.st.partial_outage{color:var(--major)}.st.major_outage{color:var(--crit)}\
.inc{background:var(--card);border:1px solid var(--line);border-left:.35rem solid var(--line);border-radius:.6rem;padding:1rem 1.2rem;margin:0 0 1rem}\
.inc.none{border-left-color:var(--muted)}.inc.minor{border-left-color:var(--minor)}.inc.major{border-left-color:var(--major)}.inc.critical{border-left-color:var(--crit)}.inc.maintenance{border-left-color:var(--mt)}\
.inc h3{margin:0 0 .5rem;font-size:1.05rem}.inc h3 a{color:inherit;text-decoration:none}.inc h3 a:hover{text-decoration:underline}\
.upd{margin:.6rem 0 0;padding:0;list-style:none}.upd li{margin:.5rem 0}.upd b{margin-right:.4rem}.upd p{margin:.1rem 0;white-space:pre-wrap;overflow-wrap:anywhere}\
.grp{padding:.55rem 1.2rem;font-weight:600;background:var(--bg);border-top:1px solid var(--line)}.desc{color:var(--muted);font-size:.9rem}\
.day{margin:1.2rem 0 .3rem;font-weight:600;border-bottom:1px solid var(--line);padding-bottom:.2rem}.day+p{margin:.3rem 0 .8rem}\
.past{margin:.4rem 0 .8rem}.past a{font-weight:600}.tag{font-size:.8rem;border:1px solid var(--line);border-radius:1rem;padding:0 .5rem;margin-left:.4rem;color:var(--muted);white-space:nowrap}";

/// The subscription form and pages (`subscribe`).
const FORM: &str = "\
.sub label{display:block}.sub .mail{display:flex;gap:.5rem;flex-wrap:wrap;margin:.3rem 0 .6rem}\
.sub input[type=email]{flex:1 1 16rem;font:inherit;padding:.45rem .6rem;border:1px solid var(--line);border-radius:.4rem;background:var(--bg);color:var(--fg)}\
.sub button,form.act button{font:inherit;font-weight:600;padding:.45rem 1rem;border:0;border-radius:.4rem;background:var(--link);color:var(--card);cursor:pointer}\
.sub fieldset{border:0;padding:0;margin:.4rem 0 0}.sub legend{padding:0;color:var(--muted);font-size:.92rem}\
.sub .opts{display:flex;flex-wrap:wrap;gap:.2rem 1.2rem;margin-top:.2rem}.sub .opts label{white-space:nowrap}\
.err{color:var(--crit);font-weight:600}";

/// The subscribe form: an address and a checkbox for each component (none ticked:
/// everything), posted to `/subscribe`. No script needed.
pub(super) fn subscribe_form(view: &View, email: &str, chosen: &[String]) -> String {
    let mut b = format!(
        "<form class=\"card sub\" id=\"subscribe\" method=\"post\" action=\"/subscribe\">\
<label for=\"sub-email\">Get a mail for each incident and maintenance</label>\
<div class=\"mail\"><input type=\"email\" id=\"sub-email\" name=\"email\" required maxlength=\"254\" \
autocomplete=\"email\" placeholder=\"you@example.com\" value=\"{}\"><button type=\"submit\">Subscribe</button></div>",
        esc(email)
    );
    let components = &view.platform.components;
    if !components.is_empty() {
        b.push_str("<fieldset><legend>Only about these (none ticked: everything)</legend><div class=\"opts\">");
        for c in components {
            let checked = if chosen.contains(&c.name) {
                " checked"
            } else {
                ""
            };
            let _ = write!(
                b,
                "<label><input type=\"checkbox\" name=\"component\" value=\"{n}\"{checked}> {n}</label>",
                n = esc(&c.name)
            );
        }
        b.push_str("</div></fieldset>");
    }
    b.push_str("<p class=\"desc\">A link to confirm comes first; every mail has a link to unsubscribe.</p></form>");
    b
}

pub(super) fn layout(view: &View, title: &str, refresh: Option<u32>, body: &str) -> String {
    let mut head = String::new();
    if let Some(secs) = refresh {
        let _ = write!(head, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">{head}\
<title>{title} · {site}</title><style>{STYLE}{BARS}{FORM}</style>\
<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{site}\" href=\"/history.atom\">\
<script src=\"/assets/status.js\" defer></script></head>\
<body><main>{body}<footer>Updated {updated}. <a href=\"/\">Overview</a> · \
<a href=\"/history\">History</a> · <a href=\"/history.atom\">Atom</a> · <a href=\"/history.rss\">RSS</a> · \
<a href=\"/api/v2/summary.json\">API</a> · served by offramp</footer></main></body></html>\n",
        title = esc(title),
        site = esc(&view.title),
        updated = time_tag(Some(view.updated_at)),
    )
}

/// `<time datetime="...">2026-12-02 18:00 UTC</time>`; the page script shows it in the
/// visitor's local time.
pub(super) fn time_tag(t: Option<OffsetDateTime>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let iso = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let text = t.format(&fmt).unwrap_or_else(|_| iso.clone());
    format!("<time datetime=\"{iso}\">{text}</time>")
}

fn status_span(s: ComponentStatus) -> String {
    format!("<span class=\"st {}\">{}</span>", s.api(), s.label())
}

pub(super) fn site_detail(s: &SiteView) -> String {
    if s.status == ComponentStatus::Operational {
        return String::new();
    }
    let mut d = String::new();
    if let Some(r) = &s.reason {
        let _ = write!(d, "{} · ", esc(r));
    }
    if s.since.is_some() {
        let _ = write!(d, "since {}", time_tag(s.since));
    }
    if s.until.is_some() {
        let _ = write!(d, " · expected back {}", time_tag(s.until));
    }
    let _ = write!(
        d,
        " · <a href=\"{MAINTENANCE_PREFIX}{}\">details</a>",
        esc(&s.name)
    );
    format!("<div class=\"detail\">{d}</div>")
}

pub(super) fn history_item(e: &HistoryEvent) -> String {
    let (status, verb) = match (e.state, e.cause) {
        (SiteState::Offline, Cause::Health) => (ComponentStatus::MajorOutage, "went down"),
        (SiteState::Offline, _) => (ComponentStatus::UnderMaintenance, "went into maintenance"),
        (SiteState::Online, _) => (ComponentStatus::Operational, "is back online"),
    };
    let why = match e.cause {
        Cause::Flip => "",
        Cause::Reset => " (runtime override dropped)",
        Cause::Config => " (config edited)",
        Cause::Expired => " (--until ran out)",
        Cause::Maintenance => " (scheduled maintenance)",
        Cause::Health => " (health checks)",
    };
    let mut d = String::new();
    if let Some(r) = &e.reason {
        let _ = write!(d, "{} · ", esc(r));
    }
    d.push_str(&time_tag(Some(e.at)));
    if e.until.is_some() {
        let _ = write!(d, " · expected back {}", time_tag(e.until));
    }
    format!(
        "<li><div class=\"row\"><span><span class=\"name\">{}</span> {verb}{why}</span>{}</div>\
<div class=\"detail\">{d}</div></li>",
        esc(&e.site),
        status_span(status),
    )
}

/// `/maintenance/<site>`: what an offline site's visitors see, and the way back.
pub fn maintenance(view: &View, s: &SiteView, back: Option<&str>) -> String {
    let name = esc(&s.name);
    let back_attr = back.map(esc).unwrap_or_default();
    let mut b = format!(
        "<div class=\"card\" id=\"site\" data-site=\"{name}\" data-state=\"{state}\" \
data-return=\"{back_attr}\" data-poll=\"/api/sites/{name}.json\">",
        state = s.state.as_str()
    );
    if s.state == SiteState::Online {
        let _ = write!(
            b,
            "<p>{}</p><h1>{name} is online</h1>",
            status_span(s.status)
        );
        match back {
            Some(url) => {
                let _ = write!(
                    b,
                    "<p><a href=\"{back_attr}\">Continue to {}</a></p>",
                    esc(url)
                );
            }
            None => b.push_str("<p>The site is available again.</p>"),
        }
    } else {
        let what = if s.outage {
            "is down"
        } else {
            "is down for maintenance"
        };
        let _ = write!(b, "<p>{}</p><h1>{name} {what}</h1>", status_span(s.status));
        if let Some(r) = &s.reason {
            let _ = write!(b, "<p class=\"reason\">{}</p>", esc(r));
        }
        if s.until.is_some() {
            let _ = write!(b, "<p>Expected back: {}</p>", time_tag(s.until));
        }
        if s.since.is_some() {
            let _ = write!(b, "<p class=\"muted\">Since {}</p>", time_tag(s.since));
        }
        match back {
            Some(url) => {
                let _ = write!(
                    b,
                    "<p id=\"wait\">This page takes you back to <a href=\"{back_attr}\">{}</a> \
as soon as {name} is online again.</p>",
                    esc(url)
                );
            }
            None => {
                let _ = write!(
                    b,
                    "<p id=\"wait\">This page updates by itself when {name} is online again.</p>"
                );
            }
        }
    }
    b.push_str("</div><p><a href=\"/\">Status of all sites</a></p>");
    let refresh = (s.state == SiteState::Offline).then_some(REFRESH_MAINTENANCE);
    let title = if s.outage {
        format!("{} — down", s.name)
    } else if s.state == SiteState::Offline {
        format!("{} — maintenance", s.name)
    } else {
        format!("{} — online", s.name)
    };
    layout(view, &title, refresh, &b)
}

/// 404/405 on a status host.
pub fn not_found(view: &View, what: &str) -> String {
    layout(
        view,
        what,
        None,
        &format!(
            "<h1>{}</h1><p><a href=\"/\">Status of all sites</a></p>",
            esc(what)
        ),
    )
}
