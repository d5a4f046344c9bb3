//! `/history.atom` and `/history.rss`: one entry per incident update and maintenance
//! update, newest first (the latest `FEED_ENTRIES`), each linking its incident's page.
//! Text is XML-escaped, and characters XML 1.0 cannot carry at all (C0 controls other
//! than tab and newlines, U+FFFE and U+FFFF) are dropped. Times are UTC: RFC 3339 in
//! Atom (RFC 4287 section 3.3), RFC 822 with a four-digit year in RSS 2.0 (`pubDate`).
//! RSS readers take an item's `description` as HTML, so the message is HTML-escaped
//! (newlines as `<br>`) before it is XML-escaped; Atom says `type="text"` instead.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

use super::View;
use crate::text::html_escape;

/// Entries in a feed.
pub const FEED_ENTRIES: usize = 200;

struct Entry<'a> {
    id: String,
    link: String,
    title: String,
    body: &'a str,
    at: OffsetDateTime,
}

/// `s` without the characters XML 1.0 forbids, XML-escaped (`&`, `<`, `>`, both
/// quotes): fit for text and for attribute values.
fn xml(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| {
            (!c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                && !matches!(c, '\u{fffe}' | '\u{ffff}')
        })
        .collect();
    html_escape(&clean)
}

/// Plain text as the HTML an RSS `description` is: escaped, line breaks kept.
fn html_text(s: &str) -> String {
    html_escape(s)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "<br>\n")
}

/// `t` in UTC, within the years both date formats can write (RFC 822's parsers and
/// `time` want 1900 or later, RFC 3339 at most 9999), so a date is never left empty.
fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(UtcOffset::UTC).clamp(
        datetime!(1900-01-01 0:00 UTC),
        datetime!(9999-12-31 23:59:59 UTC),
    )
}

/// `2026-11-23T18:00:00Z` (RFC 3339, as Atom's date constructs are).
fn atom_date(t: OffsetDateTime) -> String {
    utc(t).format(&Rfc3339).unwrap_or_default()
}

/// `Mon, 23 Nov 2026 18:00:00 +0000` (RFC 822 with a four-digit year, as RSS 2.0's
/// `pubDate`).
fn rss_date(t: OffsetDateTime) -> String {
    utc(t).format(&Rfc2822).unwrap_or_default()
}

fn entries<'a>(view: &'a View, origin: &str) -> Vec<Entry<'a>> {
    let p = &*view.platform;
    let mut out: Vec<Entry<'a>> = Vec::new();
    for i in p.incidents.iter() {
        for u in &i.updates {
            out.push(Entry {
                id: format!("{origin}/incidents/{}#{}", i.id, u.id),
                link: format!("{origin}/incidents/{}", i.id),
                title: format!("{}: {}", i.name, u.status.label()),
                body: &u.message,
                at: u.at,
            });
        }
    }
    for m in p.maintenances.iter() {
        for u in &m.updates {
            out.push(Entry {
                id: format!("{origin}/incidents/{}#{}", m.id, u.id),
                link: format!("{origin}/incidents/{}", m.id),
                title: format!("{}: {}", m.name, u.status.label()),
                body: &u.message,
                at: u.at,
            });
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.at));
    out.truncate(FEED_ENTRIES);
    out
}

/// The Atom feed (RFC 4287).
pub fn atom(view: &View, origin: &str) -> String {
    let list = entries(view, origin);
    let updated = list.first().map_or(view.updated_at, |e| e.at);
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
<title type=\"text\">{title} history</title><id>{o}/history</id>\
<link rel=\"alternate\" type=\"text/html\" href=\"{o}/history\"/>\
<link rel=\"self\" type=\"application/atom+xml\" href=\"{o}/history.atom\"/>\
<updated>{updated}</updated><author><name>{title}</name></author>\n",
        title = xml(&view.title),
        o = xml(origin),
        updated = atom_date(updated),
    );
    for e in list {
        s.push_str(&format!(
            "<entry><id>{}</id><title type=\"text\">{}</title>\
<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/><updated>{}</updated>\
<content type=\"text\">{}</content></entry>\n",
            xml(&e.id),
            xml(&e.title),
            xml(&e.link),
            atom_date(e.at),
            xml(e.body),
        ));
    }
    s.push_str("</feed>\n");
    s
}

/// The RSS 2.0 feed.
pub fn rss(view: &View, origin: &str) -> String {
    let list = entries(view, origin);
    let updated = list.first().map_or(view.updated_at, |e| e.at);
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>\
<title>{title} history</title><link>{o}/history</link>\
<description>Incidents and maintenance of {title}</description>\
<lastBuildDate>{updated}</lastBuildDate>\
<atom:link rel=\"self\" type=\"application/rss+xml\" href=\"{o}/history.rss\"/>\n",
        title = xml(&view.title),
        o = xml(origin),
        updated = rss_date(updated),
    );
    for e in list {
        // The guid names one update (`#ID` is no anchor of the page): not a permalink.
        s.push_str(&format!(
            "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{}</guid>\
<pubDate>{}</pubDate><description>{}</description></item>\n",
            xml(&e.title),
            xml(&e.link),
            xml(&e.id),
            rss_date(e.at),
            xml(&html_text(e.body)),
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "xml_check.rs"]
mod xml_check;
