//! `[status]`: the built-in status page's hosts, title, links and public URL. That its
//! hosts are nobody else's and have certificates is checked in `validate`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::reader::{Ctx, Value};
use super::url::valid_host;
use super::{StatusLink, StatusSection, StatusUrl};

/// Where `[status]` keys are, for errors found when comparing sections.
#[derive(Default)]
pub(super) struct StatusSpans {
    /// One per entry of `StatusSection::hosts`, in the same order.
    pub(super) hosts: Vec<Range<usize>>,
}

/// `[status]`, and where its hosts are.
pub(super) fn parse_status(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> (StatusSection, StatusSpans) {
    let mut s = StatusSection {
        hosts: Vec::new(),
        title: "Status".into(),
        links: Vec::new(),
        url: None,
        history_days: super::DEFAULT_HISTORY_DAYS,
        uptime_days: super::DEFAULT_UPTIME_DAYS,
    };
    let mut url = None;
    let mut spans = StatusSpans::default();
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("status.{name}");
        match name {
            "hosts" => {
                for (h, span) in ctx.strings(&key, v).unwrap_or_default() {
                    let lower = h.strip_suffix('.').unwrap_or(&h).to_ascii_lowercase();
                    if lower.contains('*') {
                        ctx.err(
                            &span,
                            &key,
                            format!("{h:?}: status hosts are exact names, not wildcards"),
                        );
                    } else if !valid_host(&lower) || lower.contains(':') {
                        ctx.err(&span, &key, format!("{h:?} is not a valid host name"));
                    } else if s.hosts.contains(&lower) {
                        ctx.err(&span, &key, format!("host {lower} is listed twice"));
                    } else {
                        s.hosts.push(lower);
                        spans.hosts.push(span);
                    }
                }
            }
            "title" => {
                if let Some(title) = ctx.string(&key, v) {
                    if title.trim().is_empty() || title.len() > 200 {
                        ctx.err(&v.span(), &key, "must be 1 to 200 characters");
                    } else {
                        s.title = title;
                    }
                }
            }
            "links" => s.links = parse_links(ctx, &key, v),
            "url" => {
                if let Some(u) = ctx.string(&key, v) {
                    match parse_public_url(&u) {
                        Ok(u) => url = Some((u, v.span())),
                        Err(e) => ctx.err(&v.span(), &key, e),
                    }
                }
            }
            "history_days" | "uptime_days" => {
                if let Some(n) = ctx.integer(&key, v) {
                    match u32::try_from(n) {
                        Ok(d) if (1..=3650).contains(&d) => {
                            if name == "history_days" {
                                s.history_days = d;
                            } else {
                                s.uptime_days = d;
                            }
                        }
                        _ => ctx.err(
                            &v.span(),
                            &key,
                            format!("must be between 1 and 3650 days, got {n}"),
                        ),
                    }
                }
            }
            _ => ctx.unknown(
                &key,
                &k.span(),
                &[
                    "hosts",
                    "title",
                    "links",
                    "url",
                    "history_days",
                    "uptime_days",
                ],
            ),
        }
    }
    if let Some((u, span)) = url {
        if s.hosts.iter().any(|h| h == u.host()) {
            s.url = Some(u.origin);
        } else {
            ctx.err(
                &span,
                "status.url",
                format!(
                    "{:?}: its host {} is not one of [status] hosts",
                    u.raw,
                    u.host()
                ),
            );
        }
    }
    (s, spans)
}

/// `[status] url`: `http(s)://host[:port]`, at most a trailing `/` for a path (the
/// status pages are served at the root of a status host).
fn parse_public_url(raw: &str) -> Result<StatusUrl, String> {
    let lower = raw.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(format!("{raw:?} is not an http:// or https:// URL"));
    }
    let u = StatusUrl::parse(raw)?;
    if !u.path.is_empty() {
        return Err(format!(
            "{raw:?} has a path: the status page is served at the root of its host, write scheme://host[:port] only"
        ));
    }
    Ok(u)
}

/// `links = [{ name = "Home", url = "https://home.example" }, ...]`
fn parse_links(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Vec<StatusLink> {
    let DeValue::Array(items) = v.get_ref() else {
        ctx.err(
            &v.span(),
            key,
            "expected a list of { name = \"...\", url = \"https://...\" } tables",
        );
        return Vec::new();
    };
    let mut links = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("{key}[{}]", i + 1);
        let Some(t) = ctx.table(&key, item) else {
            continue;
        };
        let (mut name, mut url) = (None, None);
        // A key that is present but invalid has its own error; "missing" is for absent.
        let (mut name_seen, mut url_seen) = (false, false);
        for (k, v) in t.iter() {
            let field = k.get_ref().as_ref();
            let fkey = format!("{key}.{field}");
            name_seen |= field == "name";
            url_seen |= field == "url";
            match field {
                "name" => match ctx.string(&fkey, v) {
                    Some(n) if !n.trim().is_empty() && n.len() <= 100 => name = Some(n),
                    Some(_) => ctx.err(&v.span(), &fkey, "must be 1 to 100 characters"),
                    None => {}
                },
                "url" => {
                    if let Some(u) = ctx.string(&fkey, v) {
                        match StatusUrl::parse_link(&u) {
                            Ok(()) => url = Some(u),
                            Err(e) => ctx.err(&v.span(), &fkey, e),
                        }
                    }
                }
                _ => ctx.unknown(&fkey, &k.span(), &["name", "url"]),
            }
        }
        if !name_seen {
            ctx.err(
                &item.span(),
                &format!("{key}.name"),
                "missing: a link needs a name",
            );
        }
        if !url_seen {
            ctx.err(
                &item.span(),
                &format!("{key}.url"),
                "missing: a link needs a url",
            );
        }
        if let (Some(name), Some(url)) = (name, url) {
            links.push(StatusLink { name, url });
        }
    }
    links
}
