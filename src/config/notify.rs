//! `[[notify]]` (the targets every event is delivered to: a webhook in one of a few
//! formats, or a Statuspage page mirrored), CONTRACT section 11. Secret files
//! (`url_file`, `secret_file`) are read here with `api::read_secret`; a URL read from a
//! file is a secret too and never appears in an error or a `Debug` dump. That target
//! names are unique and that a Statuspage mapping names sites or components is checked
//! once everything is read (`check_notify`). The keys only `format = "statuspage"`
//! takes are read in `statuspage`, the URL is checked by `url::check_url`, and `[smtp]`
//! is `smtp`'s. Delivering is `notify`'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::DeTable;

use super::api::{read_secret, Secret};
use super::reader::{Ctx, Value};
use super::resolve_path;
use super::statuspage::{parse_statuspage, valid_id, Statuspage, STATUSPAGE_API};
use super::url::check_url;

/// `give_up_after` when a target does not set it.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// `timeout` (each delivery attempt's limit) when a target does not set it.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

const NOTIFY_KEYS: &[&str] = &[
    "name",
    "url",
    "url_file",
    "format",
    "events",
    "secret_file",
    "give_up_after",
    "timeout",
    "page_id",
    "api_key_file",
    "components",
];

/// One `[[notify]]`: where events are delivered, in what shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// 1 to 63 of a-z, 0-9 and -; unique among `[[notify]]`.
    pub name: String,
    /// `url`, or the content of `url_file`: an `http(s)://` URL (a secret: `Debug`
    /// shows `***`). For `statuspage`, the API's base, without a trailing `/`.
    pub url: Secret,
    pub format: NotifyFormat,
    /// The classes of events sent, each once, in the order written (default: all).
    pub events: Vec<EventClass>,
    /// `secret_file` (json only): the key of `X-Offramp-Signature`.
    pub secret: Option<Secret>,
    /// A failing event older than this is given up on (default 24 h).
    pub give_up_after: Duration,
    /// Each delivery attempt's limit (default 10 s).
    pub timeout: Duration,
    /// `format = "statuspage"`'s page, key and component mapping (`None` otherwise).
    pub statuspage: Option<Statuspage>,
}

/// `format`: the shape of what a target is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyFormat {
    /// The event's JSON body as is (the default).
    Json,
    /// `{"text": ...}`
    Slack,
    /// `{"content": ...}`
    Discord,
    /// A text/plain message with Title, Tags and Priority headers.
    Ntfy,
    /// Atlassian Statuspage's API: component statuses and incidents mirrored.
    Statuspage,
}

impl NotifyFormat {
    pub const ALL: [NotifyFormat; 5] = [
        NotifyFormat::Json,
        NotifyFormat::Slack,
        NotifyFormat::Discord,
        NotifyFormat::Ntfy,
        NotifyFormat::Statuspage,
    ];

    /// The word written in the config: `"json"`, `"slack"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyFormat::Json => "json",
            NotifyFormat::Slack => "slack",
            NotifyFormat::Discord => "discord",
            NotifyFormat::Ntfy => "ntfy",
            NotifyFormat::Statuspage => "statuspage",
        }
    }

    /// The format a config word names.
    pub fn parse(s: &str) -> Option<NotifyFormat> {
        NotifyFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl std::fmt::Display for NotifyFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is about; `events` picks the classes a target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventClass {
    /// `site.offline`, `site.online`
    Site,
    /// `incident.created|updated|resolved`
    Incident,
    /// `maintenance.scheduled|started|completed|cancelled|updated`
    Maintenance,
    /// `component.updated`
    Component,
}

impl EventClass {
    /// Every class, in the order of the default `events`.
    pub const ALL: [EventClass; 4] = [
        EventClass::Site,
        EventClass::Incident,
        EventClass::Maintenance,
        EventClass::Component,
    ];

    /// `"site"`, `"incident"`, `"maintenance"` or `"component"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::Site => "site",
            EventClass::Incident => "incident",
            EventClass::Maintenance => "maintenance",
            EventClass::Component => "component",
        }
    }

    /// The class a word names.
    pub fn parse(s: &str) -> Option<EventClass> {
        EventClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for EventClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a target's keys are, for the checks across targets.
pub(super) struct NotifySpans {
    pub(super) table: Range<usize>,
    pub(super) name: Option<Range<usize>>,
    /// Each key of `components`, with the span of its value.
    pub(super) components: Vec<(String, Range<usize>)>,
}

/// A name: 1 to 63 of a-z, 0-9 and -.
fn valid_name(n: &str) -> bool {
    (1..=63).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A string value and where it is written.
type Spanned = Option<(String, Range<usize>)>;

/// One `[[notify]]` table (keys named `prefix.key`, paths relative to `file`), and
/// where its keys are.
pub(super) fn parse_notify(
    ctx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    prefix: &str,
    table: Range<usize>,
    file: &Path,
) -> (Notify, NotifySpans) {
    let mut spans = NotifySpans {
        table: table.clone(),
        name: None,
        components: Vec::new(),
    };
    let mut n = Notify {
        name: String::new(),
        url: Secret::new(String::new()),
        format: NotifyFormat::Json,
        events: EventClass::ALL.to_vec(),
        secret: None,
        give_up_after: DEFAULT_GIVE_UP_AFTER,
        timeout: DEFAULT_NOTIFY_TIMEOUT,
        statuspage: None,
    };
    // `format` decides what the other keys may be: they are checked once it is known.
    // `None`: not set; `Some(None)`: set to something unknown (already reported).
    let mut format: Option<Option<NotifyFormat>> = None;
    let mut url: Spanned = None;
    let mut url_file: Spanned = None;
    let mut secret_file: Spanned = None;
    let mut page_id: Spanned = None;
    let mut api_key_file: Spanned = None;
    let mut components: Option<(BTreeMap<String, String>, Range<usize>)> = None;
    // Keys written, even with a bad value (not then also reported missing).
    let mut written = HashSet::new();
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("{prefix}.{name}");
        written.insert(name.to_string());
        let spanned = |ctx: &mut Ctx<'_>| ctx.string(&key, v).map(|s| (s, v.span()));
        match name {
            "name" => {
                spans.name = Some(v.span());
                if let Some(s) = ctx.string(&key, v) {
                    if !valid_name(&s) {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!("{s:?} is not a valid notify target name: use 1 to 63 of a-z, 0-9 and -"),
                        );
                    }
                    n.name = s;
                }
            }
            "url" => url = spanned(ctx),
            "url_file" => url_file = spanned(ctx),
            "secret_file" => secret_file = spanned(ctx),
            "page_id" => page_id = spanned(ctx),
            "api_key_file" => api_key_file = spanned(ctx),
            "format" => {
                let Some(s) = ctx.string(&key, v) else {
                    format = Some(None);
                    continue;
                };
                let f = NotifyFormat::parse(&s);
                if f.is_none() {
                    let known: Vec<&str> = NotifyFormat::ALL.iter().map(|f| f.as_str()).collect();
                    ctx.err(
                        &v.span(),
                        &key,
                        format!(
                            "unknown format {s:?} (expected one of: {})",
                            known.join(", ")
                        ),
                    );
                }
                format = Some(f);
            }
            "events" => {
                if let Some(list) = parse_events(ctx, &key, v) {
                    n.events = list;
                }
            }
            "give_up_after" | "timeout" => {
                if let Some(d) = ctx.duration(&key, v) {
                    if d.is_zero() {
                        ctx.err(&v.span(), &key, "must be greater than zero");
                    } else if name == "timeout" {
                        n.timeout = d;
                    } else {
                        n.give_up_after = d;
                    }
                }
            }
            "components" => {
                let Some(ct) = ctx.table(&key, v) else {
                    continue;
                };
                let mut map = BTreeMap::new();
                for (ck, cv) in ct.iter() {
                    let cname = ck.get_ref().as_ref();
                    let ckey = format!("{key}.{cname}");
                    spans.components.push((cname.to_string(), cv.span()));
                    if let Some(id) = ctx.string(&ckey, cv) {
                        if valid_id(&id) {
                            map.insert(cname.to_string(), id);
                        } else {
                            ctx.err(
                                &cv.span(),
                                &ckey,
                                format!(
                                    "{id:?} is not a Statuspage component ID (letters and digits)"
                                ),
                            );
                        }
                    }
                }
                components = Some((map, v.span()));
            }
            _ => ctx.unknown(&key, &k.span(), NOTIFY_KEYS),
        }
    }
    let has = |key: &str| written.contains(key);
    if !has("name") {
        ctx.err(
            &table,
            &format!("{prefix}.name"),
            "missing: every notify target needs a name",
        );
    }
    let format = match format {
        None => Some(NotifyFormat::Json),
        Some(f) => f,
    };
    if let Some(f) = format {
        n.format = f;
    }
    let statuspage = format == Some(NotifyFormat::Statuspage);

    // The URL: exactly one of url and url_file (statuspage has a default).
    match (&url, &url_file) {
        (Some(_), Some((_, span))) => ctx.err(
            span,
            &format!("{prefix}.url_file"),
            "url and url_file are exclusive: set one of them",
        ),
        (Some((u, span)), None) => match check_url(u) {
            Ok(()) => n.url = Secret::new(u.clone()),
            Err(why) => ctx.err(
                span,
                &format!("{prefix}.url"),
                format!("not an http(s) URL: {why}"),
            ),
        },
        (None, Some((p, span))) => {
            let path = resolve_path(file, p);
            let key = format!("{prefix}.url_file");
            match read_secret(&path, "URL file") {
                Ok(u) => match check_url(u.expose_str()) {
                    Ok(()) => n.url = u,
                    Err(why) => ctx.err(
                        span,
                        &key,
                        format!("the URL in {} is not an http(s) URL: {why}", path.display()),
                    ),
                },
                Err(e) => ctx.err(span, &key, e),
            }
        }
        (None, None) if has("url") || has("url_file") => {}
        (None, None) if statuspage => n.url = Secret::new(STATUSPAGE_API.to_string()),
        (None, None) => ctx.err(
            &table,
            &format!("{prefix}.url"),
            "missing: a notify target needs url or url_file",
        ),
    }
    if statuspage {
        let base = n.url.expose_str();
        if base.ends_with('/') {
            n.url = Secret::new(base.trim_end_matches('/').to_string());
        }
    }

    if let Some((p, span)) = &secret_file {
        let key = format!("{prefix}.secret_file");
        match format {
            Some(NotifyFormat::Json) => match read_secret(&resolve_path(file, p), "secret file") {
                Ok(s) => n.secret = Some(s),
                Err(e) => ctx.err(span, &key, e),
            },
            Some(_) => ctx.err(span, &key, "secret_file signs json bodies only"),
            None => {}
        }
    }

    if !statuspage {
        // Reported below as out of place; not also as unknown names.
        spans.components.clear();
    }
    if statuspage {
        let page_id = page_id.ok_or(has("page_id"));
        let api_key_file = api_key_file.ok_or(has("api_key_file"));
        n.statuspage =
            parse_statuspage(ctx, prefix, &table, file, page_id, api_key_file, components);
    } else if format.is_some() {
        let set = [
            ("page_id", page_id.map(|(_, s)| s)),
            ("api_key_file", api_key_file.map(|(_, s)| s)),
            ("components", components.map(|(_, s)| s)),
        ];
        for (name, span) in set {
            if let Some(span) = span {
                ctx.err(
                    &span,
                    &format!("{prefix}.{name}"),
                    format!("{name} is for format = \"statuspage\" only"),
                );
            }
        }
    }
    (n, spans)
}

/// `events`: known words, at least one, each kept once in the order written.
fn parse_events(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<Vec<EventClass>> {
    let words = ctx.strings(key, v)?;
    if words.is_empty() {
        ctx.err(
            &v.span(),
            key,
            "needs at least one of: site, incident, maintenance, component",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (w, span) in words {
        match EventClass::parse(&w) {
            Some(c) if out.contains(&c) => {}
            Some(c) => out.push(c),
            None => {
                ok = false;
                ctx.err(
                    &span,
                    key,
                    format!("unknown event class {w:?} (expected one of: site, incident, maintenance, component)"),
                );
            }
        }
    }
    ok.then_some(out)
}

/// Checks across targets, once sites and components are read: unique names, and
/// every key of a Statuspage `components` mapping a site or a `[[component]]`.
pub(super) fn check_notify<'a>(
    ctx: &mut Ctx<'_>,
    targets: &[(Notify, NotifySpans)],
    names: impl Iterator<Item = &'a str>,
) {
    let known: HashSet<&str> = names.collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, (n, spans)) in targets.iter().enumerate() {
        let prefix = format!("notify[{}]", i + 1);
        if !n.name.is_empty() {
            if let Some(first) = seen.get(n.name.as_str()) {
                ctx.err(
                    spans.name.as_ref().unwrap_or(&spans.table),
                    &format!("{prefix}.name"),
                    format!("duplicate notify name {:?} (also notify[{first}])", n.name),
                );
            } else {
                seen.insert(&n.name, i + 1);
            }
        }
        for (c, span) in &spans.components {
            if !known.contains(c.as_str()) {
                ctx.err(
                    span,
                    &format!("{prefix}.components.{c}"),
                    format!("{c:?} is neither a [[site]] nor a [[component]] of this config"),
                );
            }
        }
    }
}
