//! The feeds against RFC 4287 and RSS 2.0: required elements, dates, escaping.
//! The feeds read back by a small XML 1.0 reader (no dependency): well-formed,
//! every character allowed, every entity known, and the elements each spec
//! requires present with values of the right format.

use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::platform::{
    Affected, ComponentStatus, Impact, Incident, IncidentStatus, IncidentUpdate, Maintenance,
    MaintenanceStatus, MaintenanceUpdate, PlatformView,
};

const ORIGIN: &str = "https://status.example";
const NASTY: &str = "Disk <&\"'> \u{1}fail\u{b}s\u{ffff}";
const NASTY_CLEAN: &str = "Disk <&\"'> fails";

// ---- a minimal XML reader -------------------------------------------------

use super::xml_check::{decode, parse, El};

fn view_with(incidents: Vec<Incident>, maintenances: Vec<Maintenance>) -> View {
    let mut p = PlatformView::empty(vec![], datetime!(2026-11-23 19:00 UTC));
    p.incidents = Arc::new(incidents);
    p.maintenances = Arc::new(maintenances);
    View {
        title: "Lab <&\"'> \u{1}status".into(),
        links: vec![],
        sites: vec![],
        history: vec![],
        updated_at: datetime!(2026-11-23 19:30 UTC),
        platform: Arc::new(p),
        subscribe: false,
        rendered: Default::default(),
    }
}

fn incident() -> Incident {
    let update = |id: &str, status, message: &str, at| IncidentUpdate {
        id: id.into(),
        status,
        message: message.into(),
        at,
        components: vec![],
        by: "uid 1000".into(),
    };
    Incident {
        id: "k2j4h6g8f0d1".into(),
        name: NASTY.into(),
        status: IncidentStatus::Identified,
        impact: Impact::Minor,
        components: vec![Affected {
            name: "cloud".into(),
            status: ComponentStatus::PartialOutage,
        }],
        created_at: datetime!(2026-11-23 18:00 UTC),
        updated_at: datetime!(2026-11-23 18:30 UTC),
        resolved_at: None,
        updates: vec![
            update(
                "u2",
                IncidentStatus::Identified,
                "<b>bold</b> & \u{1}more\nline two",
                // Stored with an offset: written in UTC.
                datetime!(2026-11-23 20:30:00.25 +02:00),
            ),
            update(
                "u1",
                IncidentStatus::Investigating,
                "Looking into it",
                datetime!(2026-11-23 18:00 UTC),
            ),
        ],
    }
}

fn maintenance() -> Maintenance {
    Maintenance {
        id: "m1m1m1m1m1m1".into(),
        name: "Disk swap".into(),
        status: MaintenanceStatus::Scheduled,
        sites: vec!["cloud".into()],
        components: vec![],
        start: datetime!(2026-11-23 18:10 UTC),
        end: datetime!(2026-11-23 20:10 UTC),
        auto: true,
        created_at: datetime!(2026-11-23 18:05 UTC),
        updated_at: datetime!(2026-11-23 18:05 UTC),
        updates: vec![MaintenanceUpdate {
            id: "mu1".into(),
            status: MaintenanceStatus::Scheduled,
            message: "New disks".into(),
            at: datetime!(2026-11-23 18:05 UTC),
            by: "uid 1000".into(),
        }],
    }
}

fn full() -> View {
    view_with(vec![incident()], vec![maintenance()])
}

/// An RFC 3339 date-time in UTC.
fn assert_rfc3339_utc(s: &str) -> OffsetDateTime {
    let t =
        OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
    assert!(s.ends_with('Z'), "{s:?} is not UTC");
    assert_eq!(s.as_bytes()[10], b'T');
    t
}

/// `Mon, 23 Nov 2026 18:00:00 +0000`: RFC 822 (as RFC 1123 amended it) with a
/// four-digit year, in UTC.
fn assert_rfc822(s: &str) -> OffsetDateTime {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split(' ').collect();
    assert_eq!(parts.len(), 6, "{s:?}");
    let day = parts[0].strip_suffix(',').expect("day name and comma");
    assert!(DAYS.contains(&day), "{s:?}");
    assert!(matches!(parts[1].len(), 1 | 2), "{s:?}");
    assert!(parts[1].bytes().all(|b| b.is_ascii_digit()), "{s:?}");
    assert!(MONTHS.contains(&parts[2]), "{s:?}");
    assert!(
        parts[3].len() == 4 && parts[3].bytes().all(|b| b.is_ascii_digit()),
        "a four-digit year: {s:?}"
    );
    let hms: Vec<&str> = parts[4].split(':').collect();
    assert_eq!(hms.len(), 3, "{s:?}");
    assert!(hms.iter().all(|p| p.len() == 2), "{s:?}");
    assert!(matches!(parts[5], "+0000" | "GMT" | "UT"), "UTC: {s:?}");
    let t =
        OffsetDateTime::parse(s, &Rfc2822).unwrap_or_else(|e| panic!("{s:?} is not RFC 2822: {e}"));
    assert_eq!(DAYS[t.weekday().number_days_from_monday() as usize], day);
    t
}

fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !s.contains(char::is_whitespace)
}

// ---- Atom (RFC 4287) -------------------------------------------------------

#[test]
fn atom_has_what_rfc_4287_requires() {
    let feed = parse(&atom(&full(), ORIGIN));
    assert_eq!(feed.name, "feed");
    assert_eq!(feed.attr("xmlns"), Some("http://www.w3.org/2005/Atom"));
    assert!(is_absolute_uri(&feed.one("id").text));
    assert_eq!(feed.one("title").text, "Lab <&\"'> status history");
    let updated = assert_rfc3339_utc(&feed.one("updated").text);
    let selfs: Vec<&El> = feed
        .all("link")
        .into_iter()
        .filter(|l| l.attr("rel") == Some("self"))
        .collect();
    assert_eq!(selfs.len(), 1);
    assert_eq!(
        selfs[0].attr("href"),
        Some("https://status.example/history.atom")
    );
    assert!(!feed.one("author").one("name").text.is_empty());

    let entries: Vec<&El> = feed.all("entry");
    assert_eq!(entries.len(), 3);
    let mut ids = std::collections::BTreeSet::new();
    let mut last = None;
    for e in &entries {
        let id = &e.one("id").text;
        assert!(is_absolute_uri(id), "{id:?}");
        assert!(ids.insert(id.clone()), "id {id} twice");
        assert!(!e.one("title").text.is_empty());
        let at = assert_rfc3339_utc(&e.one("updated").text);
        assert!(at <= updated, "the feed's updated is its newest entry's");
        if let Some(prev) = last {
            assert!(at <= prev, "newest first");
        }
        last = Some(at);
        let link = e.one("link");
        assert!(is_absolute_uri(link.attr("href").unwrap()));
        assert_eq!(e.one("content").attr("type"), Some("text"));
    }
    // The newest: the title escaped and read back as written, minus what XML
    // cannot carry; the time (+02:00) in UTC.
    let first = entries[0];
    assert_eq!(
        first.one("title").text,
        format!("{NASTY_CLEAN}: Identified")
    );
    assert_eq!(first.one("updated").text, "2026-11-23T18:30:00.25Z");
    assert_eq!(
        first.one("content").text,
        "<b>bold</b> & more\nline two",
        "text content is the message as written"
    );
    assert_eq!(
        first.one("id").text,
        "https://status.example/incidents/k2j4h6g8f0d1#u2"
    );
    assert_eq!(
        first.one("link").attr("href"),
        Some("https://status.example/incidents/k2j4h6g8f0d1")
    );
    assert_eq!(feed.one("updated").text, "2026-11-23T18:30:00.25Z");
}

#[test]
fn empty_atom_is_still_valid() {
    let doc = atom(&view_with(vec![], vec![]), ORIGIN);
    let feed = parse(&doc);
    assert_eq!(feed.all("entry").len(), 0);
    assert_eq!(feed.one("updated").text, "2026-11-23T19:30:00Z");
    assert!(!feed.one("author").one("name").text.is_empty());
    assert!(is_absolute_uri(&feed.one("id").text));
}

// ---- RSS 2.0 ---------------------------------------------------------------

#[test]
fn rss_has_what_rss_2_requires() {
    let rss = parse(&rss(&full(), ORIGIN));
    assert_eq!(rss.name, "rss");
    assert_eq!(rss.attr("version"), Some("2.0"));
    let ch = rss.one("channel");
    assert_eq!(ch.one("title").text, "Lab <&\"'> status history");
    assert_eq!(ch.one("link").text, "https://status.example/history");
    assert!(!ch.one("description").text.is_empty());
    assert_rfc822(&ch.one("lastBuildDate").text);
    let me = ch.one("atom:link");
    assert_eq!(me.attr("rel"), Some("self"));
    assert_eq!(me.attr("href"), Some("https://status.example/history.rss"));
    assert_eq!(
        rss.attr("xmlns:atom"),
        Some("http://www.w3.org/2005/Atom"),
        "the atom: prefix is declared"
    );

    let items: Vec<&El> = ch.all("item");
    assert_eq!(items.len(), 3);
    let mut last = None;
    for i in &items {
        assert!(!i.one("title").text.is_empty());
        assert!(is_absolute_uri(&i.one("link").text));
        let guid = i.one("guid");
        // Not a URL of its own page (the fragment is no anchor): not a permalink.
        assert_eq!(guid.attr("isPermaLink"), Some("false"));
        assert!(!guid.text.is_empty());
        let at = assert_rfc822(&i.one("pubDate").text);
        if let Some(prev) = last {
            assert!(at <= prev, "newest first");
        }
        last = Some(at);
        i.one("description");
    }
    let first = items[0];
    assert_eq!(
        first.one("title").text,
        format!("{NASTY_CLEAN}: Identified")
    );
    // +02:00 written in UTC, the fraction dropped as RFC 822 has none.
    assert_eq!(first.one("pubDate").text, "Mon, 23 Nov 2026 18:30:00 +0000");
    // Readers render the description as HTML: the message's markup is text there.
    assert_eq!(
        first.one("description").text,
        "&lt;b&gt;bold&lt;/b&gt; &amp; more<br>\nline two"
    );
    assert_eq!(
        first.one("guid").text,
        "https://status.example/incidents/k2j4h6g8f0d1#u2"
    );
    // Guids are unique.
    let guids: std::collections::BTreeSet<&str> =
        items.iter().map(|i| i.one("guid").text.as_str()).collect();
    assert_eq!(guids.len(), items.len());
}

#[test]
fn empty_rss_is_still_valid() {
    let doc = rss(&view_with(vec![], vec![]), ORIGIN);
    let rss = parse(&doc);
    let ch = rss.one("channel");
    assert_eq!(ch.all("item").len(), 0);
    ch.one("title");
    ch.one("link");
    ch.one("description");
    assert_eq!(
        ch.one("lastBuildDate").text,
        "Mon, 23 Nov 2026 19:30:00 +0000"
    );
}

// ---- characters and dates --------------------------------------------------

#[test]
fn every_character_xml_forbids_is_dropped_and_markup_escaped() {
    let mut all: String = (0u32..0x20).filter_map(char::from_u32).collect();
    all.push_str("\u{7f}\u{fffe}\u{ffff}<>&\"'é😀");
    let mut i = incident();
    i.name = all.clone();
    i.updates[0].message = all.clone();
    let v = view_with(vec![i], vec![]);
    for doc in [atom(&v, ORIGIN), rss(&v, ORIGIN)] {
        parse(&doc);
        for c in [
            '\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{fffe}',
        ] {
            assert!(!doc.contains(c), "{c:?} left in");
        }
        assert!(doc.contains("é😀"), "other characters kept");
    }
    let x = xml("a<b>&\"'");
    assert!(!x.contains(['<', '>', '"', '\'']), "{x}");
    assert_eq!(decode(&x), "a<b>&\"'");
    assert_eq!(xml("\t\n\r"), "\t\n\r");
}

#[test]
fn attributes_are_escaped_too() {
    // No status origin carries these; the links are escaped all the same.
    let origin = "https://status.example/x?a=\"b\"&c<d>'e'";
    let v = full();
    let a = parse(&atom(&v, origin));
    let me = a
        .all("link")
        .into_iter()
        .find(|l| l.attr("rel") == Some("self"));
    assert_eq!(
        me.and_then(|l| l.attr("href")),
        Some(format!("{origin}/history.atom").as_str())
    );
    assert_eq!(
        a.all("entry")[0].one("link").attr("href"),
        Some(format!("{origin}/incidents/k2j4h6g8f0d1").as_str())
    );
    let r = parse(&rss(&v, origin));
    assert_eq!(
        r.one("channel").one("atom:link").attr("href"),
        Some(format!("{origin}/history.rss").as_str())
    );
    assert_eq!(
        r.one("channel").one("link").text,
        format!("{origin}/history")
    );
}

#[test]
fn dates_are_utc_and_never_empty() {
    let t = datetime!(2026-01-05 01:02:03 +05:30);
    assert_eq!(atom_date(t), "2026-01-04T19:32:03Z");
    assert_eq!(rss_date(t), "Sun, 04 Jan 2026 19:32:03 +0000");
    assert_rfc822(&rss_date(t));
    // Before 1900 `time` writes no RFC 2822: such a date is clamped, not left out.
    let old = datetime!(1850-06-01 0:00 UTC);
    assert_rfc822(&rss_date(old));
    assert_rfc3339_utc(&atom_date(old));
}

#[test]
fn a_reader_sees_both_feeds_alike() {
    let v = full();
    let a = parse(&atom(&v, ORIGIN));
    let r = parse(&rss(&v, ORIGIN));
    let a_ids: Vec<String> = a
        .all("entry")
        .iter()
        .map(|e| e.one("id").text.clone())
        .collect();
    let r_ids: Vec<String> = r
        .one("channel")
        .all("item")
        .iter()
        .map(|i| i.one("guid").text.clone())
        .collect();
    assert_eq!(a_ids, r_ids);
}
