//! `/history.atom` and `/history.rss`: one entry per incident update and maintenance
//! update, newest first (the latest `FEED_ENTRIES`), each linking its incident's page.
//! Text is XML-escaped, and characters XML 1.0 cannot carry at all (C0 controls other
//! than tab and newlines, U+FFFE and U+FFFF) are dropped.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

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
<title>{title} history</title><id>{o}/history</id><link href=\"{o}/history\"/>\
<link rel=\"self\" href=\"{o}/history.atom\"/><updated>{updated}</updated><author><name>{title}</name></author>\n",
        title = xml(&view.title),
        o = xml(origin),
        updated = updated.format(&Rfc3339).unwrap_or_default(),
    );
    for e in list {
        s.push_str(&format!(
            "<entry><id>{}</id><title>{}</title><link href=\"{}\"/><updated>{}</updated>\
<content type=\"text\">{}</content></entry>\n",
            xml(&e.id),
            xml(&e.title),
            xml(&e.link),
            e.at.format(&Rfc3339).unwrap_or_default(),
            xml(e.body),
        ));
    }
    s.push_str("</feed>\n");
    s
}

/// The RSS 2.0 feed.
pub fn rss(view: &View, origin: &str) -> String {
    let list = entries(view, origin);
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
<title>{title} history</title><link>{o}/history</link><description>Incidents and maintenance of {title}</description>\n",
        title = xml(&view.title),
        o = xml(origin),
    );
    for e in list {
        s.push_str(&format!(
            "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{}</guid>\
<pubDate>{}</pubDate><description>{}</description></item>\n",
            xml(&e.title),
            xml(&e.link),
            xml(&e.id),
            e.at.format(&Rfc2822).unwrap_or_default(),
            xml(e.body),
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}
