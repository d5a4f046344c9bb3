//! The status platform's pages (CONTRACT section 9): the overview (banner, unresolved
//! incidents with their timelines, maintenance in progress and upcoming, components by
//! group, the past incidents of the last `history_days`), `/incidents/ID` (an incident
//! or a maintenance) and `/history`. Everything is read from the snapshot's
//! `PlatformView`; every value is HTML-escaped; times are `<time>` tags in UTC that the
//! pages' script shows in the visitor's own time zone.

use std::fmt::Write;

use time::{Date, OffsetDateTime};

use super::pages::{history_item, layout, site_detail, time_tag, REFRESH_OVERVIEW};
use super::View;
use crate::platform::{
    ComponentStatus, ComponentView, Incident, Maintenance, MaintenanceStatus, PlatformView,
};
use crate::text::html_escape as esc;

fn status_span(s: ComponentStatus) -> String {
    format!("<span class=\"st {}\">{}</span>", s.api(), s.label())
}

/// `2026-12-07` of a time, UTC.
fn day(t: OffsetDateTime) -> Date {
    t.date()
}

fn day_label(d: Date) -> String {
    let fmt = time::macros::format_description!("[month repr:long] [day padding:none], [year]");
    d.format(&fmt).unwrap_or_default()
}

/// One incident: name (linked), impact, and its timeline (all updates, or the newest).
fn incident_card(i: &Incident, all_updates: bool) -> String {
    let mut b = format!(
        "<article class=\"inc {imp}\" id=\"incident-{id}\"><h3><a href=\"/incidents/{id}\">{name}</a>\
<span class=\"tag\">{impact} impact</span></h3>",
        imp = i.impact.api(),
        id = esc(&i.id),
        name = esc(&i.name),
        impact = i.impact.label(),
    );
    if !i.components.is_empty() {
        b.push_str("<div class=\"desc\">Affects ");
        let parts: Vec<String> = i
            .components
            .iter()
            .map(|c| format!("{} ({})", esc(&c.name), c.status.label()))
            .collect();
        b.push_str(&parts.join(", "));
        b.push_str("</div>");
    }
    b.push_str("<ul class=\"upd\">");
    let n = if all_updates { i.updates.len() } else { 1 };
    for u in i.updates.iter().take(n) {
        let _ = write!(
            b,
            "<li><b>{}</b>{}<p>{}</p></li>",
            u.status.label(),
            time_tag(Some(u.at)),
            esc(&u.message)
        );
    }
    b.push_str("</ul></article>");
    b
}

/// One maintenance: name, window, what it touches, updates.
fn maintenance_card(m: &Maintenance, all_updates: bool) -> String {
    let mut b = format!(
        "<article class=\"inc maintenance\" id=\"maintenance-{id}\"><h3><a href=\"/incidents/{id}\">{name}</a>\
<span class=\"tag\">{status}</span></h3><div class=\"desc\">Scheduled for {start} – {end}",
        id = esc(&m.id),
        name = esc(&m.name),
        status = m.status.label(),
        start = time_tag(Some(m.start)),
        end = time_tag(Some(m.end)),
    );
    let touched: Vec<String> = m
        .sites
        .iter()
        .chain(&m.components)
        .map(|n| esc(n))
        .collect();
    if !touched.is_empty() {
        let _ = write!(b, " · {}", touched.join(", "));
    }
    b.push_str("</div><ul class=\"upd\">");
    let n = if all_updates { m.updates.len() } else { 1 };
    for u in m.updates.iter().take(n) {
        let _ = write!(
            b,
            "<li><b>{}</b>{}<p>{}</p></li>",
            u.status.label(),
            time_tag(Some(u.at)),
            esc(&u.message)
        );
    }
    b.push_str("</ul></article>");
    b
}

/// The components, under their groups (ungrouped first, then groups in the order
/// they first appear).
fn components(view: &View, p: &PlatformView) -> String {
    let mut b = String::from("<ul class=\"list\" id=\"sites\">");
    let mut groups: Vec<Option<&str>> = Vec::new();
    for c in &p.components {
        let g = c.group.as_deref();
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups.sort_by_key(|g| g.is_some());
    for g in groups {
        if let Some(name) = g {
            let worst = ComponentStatus::worst(
                p.components
                    .iter()
                    .filter(|c| c.group.as_deref() == Some(name))
                    .map(|c| c.status),
            );
            let _ = write!(
                b,
                "<li class=\"grp\"><div class=\"row\"><span>{}</span>{}</div></li>",
                esc(name),
                status_span(worst)
            );
        }
        for c in p.components.iter().filter(|c| c.group.as_deref() == g) {
            b.push_str(&component_row(view, c));
        }
    }
    if p.components.is_empty() {
        b.push_str("<li class=\"muted\">No components configured.</li>");
    }
    b.push_str("</ul>");
    b
}

fn component_row(view: &View, c: &ComponentView) -> String {
    let site = c
        .site
        .then(|| view.sites.iter().find(|s| s.name == c.name))
        .flatten();
    let detail = site.map(site_detail).unwrap_or_default();
    let desc = c
        .description
        .as_deref()
        .map(|d| format!("<div class=\"desc\">{}</div>", esc(d)))
        .unwrap_or_default();
    format!(
        "<li data-site=\"{n}\"><div class=\"row\"><span class=\"name\">{n}</span>{st}</div>{desc}{detail}{bars}</li>",
        n = esc(&c.name),
        st = status_span(c.status),
        bars = super::bars::bars(view, c),
    )
}

/// Maintenance in progress, then upcoming (soonest first).
fn current_maintenance(p: &PlatformView) -> Vec<&Maintenance> {
    let mut list: Vec<&Maintenance> = p
        .maintenances
        .iter()
        .filter(|m| {
            matches!(
                m.status,
                MaintenanceStatus::InProgress | MaintenanceStatus::Scheduled
            )
        })
        .collect();
    list.sort_by_key(|m| (m.status != MaintenanceStatus::InProgress, m.start));
    list
}

/// `/`: the overview.
pub fn overview(view: &View) -> String {
    let p = &*view.platform;
    let mut b = format!(
        "<h1>{}</h1><div class=\"banner {}\" id=\"banner\">{}</div>",
        esc(&view.title),
        p.indicator.api(),
        p.indicator.description()
    );
    let open: Vec<&Incident> = p.incidents.iter().filter(|i| i.is_open()).collect();
    if !open.is_empty() {
        b.push_str("<section id=\"incidents\">");
        for i in open {
            b.push_str(&incident_card(i, true));
        }
        b.push_str("</section>");
    }
    let current = current_maintenance(p);
    if !current.is_empty() {
        b.push_str("<h2>Scheduled maintenance</h2><section id=\"maintenance\">");
        for m in current {
            b.push_str(&maintenance_card(m, false));
        }
        b.push_str("</section>");
    }
    b.push_str("<h2>Components</h2>");
    b.push_str(&components(view, p));
    if view.subscribe {
        b.push_str("<h2>Updates by e-mail</h2>");
        b.push_str(&super::pages::subscribe_form(view, "", &[]));
    }
    b.push_str(&past_days(p));
    if !view.links.is_empty() {
        b.push_str("<h2>Links</h2><ul class=\"list\">");
        for l in &view.links {
            let _ = write!(
                b,
                "<li><a href=\"{}\" rel=\"noopener\">{}</a></li>",
                esc(&l.url),
                esc(&l.name)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("<h2>Recent changes</h2><ul class=\"list\" id=\"history\">");
    for e in &view.history {
        b.push_str(&history_item(e));
    }
    if view.history.is_empty() {
        b.push_str("<li class=\"muted\">No changes recorded yet.</li>");
    }
    b.push_str("</ul>");
    layout(view, "Status", Some(REFRESH_OVERVIEW), &b)
}

/// Past incidents: one heading per day of the last `history_days` (UTC days), newest
/// first, each with that day's resolved incidents and finished maintenance.
fn past_days(p: &PlatformView) -> String {
    let mut b = String::from("<h2>Past incidents</h2><section id=\"past\">");
    let today = day(p.built_at);
    // Indexes by day once: a thousand past incidents cost one pass, not one per day.
    let oldest = today - time::Duration::days(i64::from(p.history_days.saturating_sub(1)));
    let mut by_day: std::collections::BTreeMap<Date, Vec<String>> = Default::default();
    for i in p.incidents.iter().filter(|i| !i.is_open()) {
        let d = day(i.created_at);
        if d >= oldest && d <= today {
            by_day.entry(d).or_default().push(past_item(
                &i.id,
                &i.name,
                i.updates.first().map(|u| u.message.as_str()),
                i.resolved_at.or(Some(i.updated_at)),
            ));
        }
    }
    for m in p.maintenances.iter().filter(|m| m.status.is_over()) {
        let d = day(m.start);
        if d >= oldest && d <= today {
            by_day.entry(d).or_default().push(past_item(
                &m.id,
                &m.name,
                m.updates.first().map(|u| u.message.as_str()),
                Some(m.end),
            ));
        }
    }
    let mut d = today;
    for _ in 0..p.history_days {
        let _ = write!(b, "<div class=\"day\">{}</div>", day_label(d));
        match by_day.get(&d) {
            Some(items) => b.push_str(&items.concat()),
            None => b.push_str("<p class=\"muted\">No incidents reported.</p>"),
        }
        match d.previous_day() {
            Some(prev) => d = prev,
            None => break,
        }
    }
    b.push_str("<p><a href=\"/history\">Incident history</a></p></section>");
    b
}

fn past_item(id: &str, name: &str, last: Option<&str>, at: Option<OffsetDateTime>) -> String {
    format!(
        "<div class=\"past\"><a href=\"/incidents/{}\">{}</a><div class=\"desc\">{}</div><div class=\"desc\">{}</div></div>",
        esc(id),
        esc(name),
        esc(last.unwrap_or_default()),
        time_tag(at)
    )
}

/// `/incidents/ID`: an incident or a maintenance with its whole timeline; `None` for
/// an unknown ID.
pub fn incident_page(view: &View, id: &str) -> Option<String> {
    let p = &*view.platform;
    if let Some(i) = p.incidents.iter().find(|i| i.id == id) {
        let mut b = format!("<h1>{}</h1>", esc(&i.name));
        let _ = write!(
            b,
            "<p class=\"muted\">{} · {} impact · opened {}{}</p>",
            i.status.label(),
            i.impact.label(),
            time_tag(Some(i.created_at)),
            i.resolved_at
                .map(|t| format!(" · resolved {}", time_tag(Some(t))))
                .unwrap_or_default()
        );
        b.push_str(&incident_card(i, true));
        b.push_str(
            "<p><a href=\"/\">Current status</a> · <a href=\"/history\">Incident history</a></p>",
        );
        return Some(layout(view, &i.name, None, &b));
    }
    let m = p.maintenances.iter().find(|m| m.id == id)?;
    let mut b = format!("<h1>{}</h1>", esc(&m.name));
    let _ = write!(
        b,
        "<p class=\"muted\">Scheduled maintenance · {}</p>",
        m.status.label()
    );
    b.push_str(&maintenance_card(m, true));
    b.push_str(
        "<p><a href=\"/\">Current status</a> · <a href=\"/history\">Incident history</a></p>",
    );
    Some(layout(view, &m.name, None, &b))
}

/// `/history`: every past incident and maintenance, newest first, by month.
pub fn history(view: &View) -> String {
    let p = &*view.platform;
    let mut items: Vec<(OffsetDateTime, String)> = p
        .incidents
        .iter()
        .filter(|i| !i.is_open())
        .map(|i| {
            (
                i.created_at,
                past_item(
                    &i.id,
                    &i.name,
                    i.updates.first().map(|u| u.message.as_str()),
                    Some(i.created_at),
                ),
            )
        })
        .chain(
            p.maintenances
                .iter()
                .filter(|m| m.status.is_over())
                .map(|m| {
                    (
                        m.start,
                        past_item(
                            &m.id,
                            &m.name,
                            m.updates.first().map(|u| u.message.as_str()),
                            Some(m.start),
                        ),
                    )
                }),
        )
        .collect();
    items.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    let mut b = format!("<h1>{} — history</h1>", esc(&view.title));
    let fmt = time::macros::format_description!("[month repr:long] [year]");
    let mut month = String::new();
    for (t, item) in &items {
        let m = t.format(&fmt).unwrap_or_default();
        if m != month {
            let _ = write!(b, "<h2>{m}</h2>");
            month = m;
        }
        b.push_str(item);
    }
    if items.is_empty() {
        b.push_str("<p class=\"muted\">No incidents reported.</p>");
    }
    layout(view, "History", None, &b)
}
