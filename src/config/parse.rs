//! TOML text → validated `Config`, collecting every error with its line.
//!
//! The document is walked by hand over toml's spanned parse tree rather than through
//! serde, so that one pass reports all problems (unknown keys, wrong types, bad values,
//! cross-site conflicts) instead of stopping at the first.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::url::{split_host_port, valid_host, StatusUrl};
use super::*;

type Value<'i> = Spanned<DeValue<'i>>;

/// Error collector that knows how to turn byte offsets into line numbers.
struct Ctx<'a> {
    file: &'a Path,
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        match self.line_starts.binary_search(&span.start) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn err(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// An error about a key: at the line of its value when the file sets it, else
    /// about the file as a whole (the key was left out).
    fn err_key(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        match span {
            Some(span) => self.err(&span, key, message),
            None => self.err_file(key, message),
        }
    }

    /// An error about the file as a whole (no single line to point at).
    fn err_file(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: 0,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn string(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, key: &str, v: &Value<'_>) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.err(&v.span(), key, "integer out of range");
                        None
                    }
                }
            }
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string or an array of strings, each with its own span.
    fn strings(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    out.push((self.string(key, item)?, item.span()));
                }
                Some(out)
            }
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!(
                        "expected a string or an array of strings, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, key: &str, v: &Value<'_>) -> Option<Duration> {
        let s = self.string(key, v)?;
        match crate::duration::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(&v.span(), key, e);
                None
            }
        }
    }

    fn addrs(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<SocketAddr>> {
        let mut out = Vec::new();
        for (s, span) in self.strings(key, v)? {
            match s.parse::<SocketAddr>() {
                Ok(a) => out.push(a),
                Err(_) => self.err(
                    &span,
                    key,
                    format!(
                        "{s:?} is not an IP:port address (e.g. \"127.0.0.1:8080\" or \"[::]:443\")"
                    ),
                ),
            }
        }
        Some(out)
    }

    fn table<'t, 'i>(&mut self, key: &str, v: &'t Value<'i>) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn unknown(&mut self, key: &str, span: &Range<usize>, known: &[&str]) {
        self.err(
            span,
            key,
            format!("unknown key (expected one of: {})", known.join(", ")),
        );
    }
}

pub(super) fn parse(text: &str, file: &Path, pin: Option<Pin<'_>>) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        file,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        errors: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let (_, errs) = DeTable::parse_recoverable(text);
            let errs = if errs.is_empty() { vec![e] } else { errs };
            for e in errs {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                ctx.err(&span, "", format!("TOML syntax error: {msg}"));
            }
            return Err(ConfigErrors(ctx.errors));
        }
    };

    let mut server = None;
    let mut maintenance = None;
    let mut sites = Vec::new();
    let mut status = None;
    let mut demo = None;
    for (k, v) in root.get_ref().iter() {
        match k.get_ref().as_ref() {
            "server" => {
                server = ctx
                    .table("server", v)
                    .map(|t| parse_server(&mut ctx, t, file))
            }
            "maintenance" => {
                maintenance = ctx
                    .table("maintenance", v)
                    .map(|t| parse_maintenance(&mut ctx, t))
            }
            "site" => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("site[{}]", i + 1);
                        if let Some(t) = ctx.table(&key, item) {
                            sites.push(parse_site(&mut ctx, t, &key, item.span()));
                        }
                    }
                }
                _ => ctx.err(&v.span(), "site", "sites are written as [[site]] tables"),
            },
            "status" => status = ctx.table("status", v).map(|t| parse_status(&mut ctx, t)),
            "demo" => {
                demo = ctx
                    .table("demo", v)
                    .and_then(|t| parse_demo(&mut ctx, t, v.span()))
            }
            other => ctx.unknown(
                other,
                &k.span(),
                &["server", "maintenance", "site", "status", "demo"],
            ),
        }
    }
    let mut server = server.unwrap_or_else(|| parse_server(&mut ctx, &DeTable::new(), file));
    if let Some(pin) = pin {
        pin(&mut server, &mut demo);
    }
    let maintenance = maintenance.unwrap_or_else(|| parse_maintenance(&mut ctx, &DeTable::new()));

    let (status, status_spans) = status.unzip();
    let status_spans = status_spans.unwrap_or_default();
    let status_with_spans = status.as_ref().map(|s| (s, &status_spans));
    let sites = check_sites(&mut ctx, sites);
    let spans = KeySpans(root.get_ref());
    check_whole(
        &mut ctx,
        &spans,
        &server,
        &maintenance,
        &sites,
        status_with_spans,
        demo.as_ref(),
    );

    let mut warnings = Vec::new();
    let tls = check_tls(
        &mut ctx,
        &spans,
        &server,
        &sites,
        status_with_spans,
        &mut warnings,
    );

    if !ctx.errors.is_empty() {
        ctx.errors.sort_by_key(|e| e.line);
        return Err(ConfigErrors(ctx.errors));
    }
    Ok(Config {
        file: file.to_path_buf(),
        server,
        maintenance,
        sites: sites.into_iter().map(|(s, _)| s).collect(),
        status,
        demo,
        tls,
        warnings,
    })
}

/// Where the keys that checks across sections complain about are written.
struct KeySpans<'r, 'i>(&'r DeTable<'i>);

impl KeySpans<'_, '_> {
    /// Span of the value of `[section] key`, `None` when the file does not set it.
    fn get(&self, section: &str, key: &str) -> Option<Range<usize>> {
        let (_, table) = self
            .0
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == section)?;
        let DeValue::Table(table) = table.get_ref() else {
            return None;
        };
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v.span())
    }
}

const SERVER_KEYS: &[&str] = &[
    "http",
    "https",
    "certs",
    "redirect_https",
    "threads",
    "control",
    "control_group",
    "state",
    "grace",
    "admin",
    "access_log",
];

fn parse_server(ctx: &mut Ctx<'_>, t: &DeTable<'_>, file: &Path) -> Server {
    let mut s = Server {
        http: Vec::new(),
        https: Vec::new(),
        certs: None,
        redirect_https: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        control: PathBuf::from(DEFAULT_CONTROL),
        control_group: None,
        state: PathBuf::from(DEFAULT_STATE),
        grace: DEFAULT_GRACE,
        admin: None,
        access_log: true,
    };
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("server.{name}");
        match name {
            "http" => s.http = ctx.addrs(&key, v).unwrap_or_default(),
            "https" => s.https = ctx.addrs(&key, v).unwrap_or_default(),
            "certs" => s.certs = ctx.string(&key, v).map(|p| resolve_path(file, &p)),
            "redirect_https" => s.redirect_https = ctx.boolean(&key, v).unwrap_or(false),
            "threads" => {
                if let Some(n) = ctx.integer(&key, v) {
                    if (1..=256).contains(&n) {
                        s.threads = n as usize;
                    } else {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!("must be between 1 and 256, got {n}"),
                        );
                    }
                }
            }
            "control" => {
                if let Some(p) = ctx.string(&key, v) {
                    s.control = resolve_path(file, &p);
                    // sun_path holds 108 bytes including the terminating NUL.
                    if s.control.as_os_str().len() > 107 {
                        ctx.err(&v.span(), &key, format!("socket path {} is longer than the 107 bytes a Unix socket path may have", s.control.display()));
                    }
                }
            }
            "control_group" => {
                let gid = match v.get_ref() {
                    DeValue::Integer(_) => ctx.integer(&key, v).map(|n| {
                        u32::try_from(n)
                            .ok()
                            .filter(|g| *g != u32::MAX)
                            .ok_or(format!("{n} is not a valid group id"))
                    }),
                    _ => ctx.string(&key, v).map(|g| group_id(&g)),
                };
                match gid {
                    Some(Ok(g)) => s.control_group = Some(g),
                    Some(Err(e)) => ctx.err(&v.span(), &key, e),
                    None => {}
                }
            }
            "state" => {
                if let Some(p) = ctx.string(&key, v) {
                    s.state = resolve_path(file, &p)
                }
            }
            "grace" => s.grace = ctx.duration(&key, v).unwrap_or(DEFAULT_GRACE),
            "admin" => {
                if let Some(a) = ctx.string(&key, v) {
                    match a.parse::<SocketAddr>() {
                        Ok(addr) => s.admin = Some(addr),
                        Err(_) => {
                            ctx.err(&v.span(), &key, format!("{a:?} is not an IP:port address"))
                        }
                    }
                }
            }
            "access_log" => s.access_log = ctx.boolean(&key, v).unwrap_or(true),
            _ => ctx.unknown(&key, &k.span(), SERVER_KEYS),
        }
    }
    s
}

const MAINTENANCE_KEYS: &[&str] = &["status_page", "code", "keep_uri"];

fn parse_status_page(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<StatusPage> {
    let s = ctx.string(key, v)?;
    if s == "builtin" {
        return Some(StatusPage::Builtin);
    }
    match StatusUrl::parse(&s) {
        Ok(u) => Some(StatusPage::Url(u)),
        Err(e) => {
            ctx.err(&v.span(), key, e);
            None
        }
    }
}

/// `code`: 302, 307 or 503 (in `[maintenance]` and on a site).
fn parse_code(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<OfflineCode> {
    match ctx.integer(key, v)? {
        302 => Some(OfflineCode::Found),
        307 => Some(OfflineCode::Temporary),
        503 => Some(OfflineCode::Unavailable),
        other => {
            ctx.err(
                &v.span(),
                key,
                format!("must be 302, 307 or 503, got {other}"),
            );
            None
        }
    }
}

fn parse_maintenance(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> Maintenance {
    let mut m = Maintenance {
        status_page: None,
        code: OfflineCode::Found,
        keep_uri: true,
    };
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("maintenance.{name}");
        match name {
            "status_page" => m.status_page = parse_status_page(ctx, &key, v),
            "code" => m.code = parse_code(ctx, &key, v).unwrap_or(OfflineCode::Found),
            "keep_uri" => m.keep_uri = ctx.boolean(&key, v).unwrap_or(true),
            _ => ctx.unknown(&key, &k.span(), MAINTENANCE_KEYS),
        }
    }
    m
}

const SITE_KEYS: &[&str] = &[
    "name",
    "hosts",
    "upstream",
    "state",
    "status_page",
    "code",
    "keep_uri",
    "connect_timeout",
    "read_timeout",
    "tls_verify",
];

/// Where a site's keys are, for errors found when comparing sites.
struct SiteSpans {
    table: Range<usize>,
    name: Option<Range<usize>>,
    hosts: Option<Range<usize>>,
}

fn parse_site(
    ctx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    prefix: &str,
    table: Range<usize>,
) -> (Site, SiteSpans) {
    let mut spans = SiteSpans {
        table,
        name: None,
        hosts: None,
    };
    let mut site = Site {
        name: String::new(),
        hosts: Vec::new(),
        upstreams: Vec::new(),
        state: SiteState::Online,
        status_page: None,
        code: None,
        keep_uri: None,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        read_timeout: DEFAULT_READ_TIMEOUT,
        tls_verify: true,
    };
    let mut seen_upstream = false;
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("{prefix}.{name}");
        match name {
            "name" => {
                spans.name = Some(v.span());
                if let Some(n) = ctx.string(&key, v) {
                    let ok = (1..=63).contains(&n.len())
                        && n.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !ok {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!(
                                "{n:?} is not a valid site name: use 1 to 63 of a-z, 0-9 and -"
                            ),
                        );
                    }
                    site.name = n;
                }
            }
            "hosts" => {
                spans.hosts = Some(v.span());
                let list = ctx.strings(&key, v);
                if list.as_ref().is_some_and(Vec::is_empty) {
                    ctx.err(&v.span(), &key, "needs at least one host name");
                }
                for (h, span) in list.unwrap_or_default() {
                    match parse_host_pattern(&h) {
                        Ok(p) => {
                            if site.hosts.contains(&p) {
                                ctx.err(&span, &key, format!("host {p} is listed twice"));
                            } else {
                                site.hosts.push(p);
                            }
                        }
                        Err(e) => ctx.err(&span, &key, e),
                    }
                }
            }
            "upstream" => {
                seen_upstream = true;
                let list = ctx.strings(&key, v).unwrap_or_default();
                if list.is_empty() {
                    ctx.err(&v.span(), &key, "needs at least one upstream URL");
                }
                for (u, span) in list {
                    match parse_upstream(&u) {
                        Ok(up) => site.upstreams.push(up),
                        Err(e) => ctx.err(&span, &key, e),
                    }
                }
            }
            "state" => {
                if let Some(s) = ctx.string(&key, v) {
                    match s.as_str() {
                        "online" => site.state = SiteState::Online,
                        "offline" => site.state = SiteState::Offline,
                        _ => ctx.err(
                            &v.span(),
                            &key,
                            format!("must be \"online\" or \"offline\", got {s:?}"),
                        ),
                    }
                }
            }
            "status_page" => site.status_page = parse_status_page(ctx, &key, v),
            "code" => site.code = parse_code(ctx, &key, v),
            "keep_uri" => site.keep_uri = ctx.boolean(&key, v),
            "connect_timeout" | "read_timeout" => {
                if let Some(d) = ctx.duration(&key, v) {
                    if d.is_zero() {
                        ctx.err(&v.span(), &key, "must be greater than zero");
                    } else if name == "connect_timeout" {
                        site.connect_timeout = d;
                    } else {
                        site.read_timeout = d;
                    }
                }
            }
            "tls_verify" => site.tls_verify = ctx.boolean(&key, v).unwrap_or(true),
            _ => ctx.unknown(&key, &k.span(), SITE_KEYS),
        }
    }
    if !seen_upstream {
        let span = t.iter().next().map(|(k, _)| k.span()).unwrap_or(0..0);
        ctx.err(
            &span,
            &format!("{prefix}.upstream"),
            "missing: every site needs an upstream URL",
        );
    }
    (site, spans)
}

/// `cloud.example`, `*.cloud.example` → lower-cased pattern.
fn parse_host_pattern(h: &str) -> Result<HostPattern, String> {
    let lower = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    if let Some(suffix) = lower.strip_prefix("*.") {
        if suffix.contains('*') || !valid_host(suffix) {
            return Err(format!("{h:?} is not a valid host name or *. wildcard"));
        }
        return Ok(HostPattern::Wildcard(suffix.to_string()));
    }
    if lower.contains('*') {
        return Err(format!(
            "{h:?}: a wildcard must be the whole first label, as in \"*.example.com\""
        ));
    }
    if lower.contains(':') && !lower.starts_with('[') {
        return Err(format!(
            "{h:?}: hosts are matched without a port; write the name alone"
        ));
    }
    if !valid_host(&lower) {
        return Err(format!("{h:?} is not a valid host name"));
    }
    Ok(HostPattern::Exact(lower))
}

/// `http://host[:port]` or `https://host[:port]`, resolved now.
fn parse_upstream(u: &str) -> Result<Upstream, String> {
    let lower = u.to_ascii_lowercase();
    let (tls, rest) = if lower.starts_with("https://") {
        (true, &u[8..])
    } else if lower.starts_with("http://") {
        (false, &u[7..])
    } else {
        return Err(format!("{u:?} must start with http:// or https://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{u:?}: an upstream is scheme://host[:port] only (no path, query or user)"
        ));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| format!("{u:?} has an invalid host or port"))?;
    if !valid_host(host) {
        return Err(format!("{u:?} has an invalid host {host:?}"));
    }
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("{u:?} has an invalid port"))?,
        None if tls => 443,
        None => 80,
    };
    if port == 0 {
        return Err(format!("{u:?}: port 0 is not a valid upstream port"));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve upstream host {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("upstream host {host:?} resolves to no address"))?;
    Ok(Upstream {
        url: u.to_string(),
        tls,
        host: bare.to_ascii_lowercase(),
        port,
        addr,
    })
}

/// Where `[status]` keys are, for errors found when comparing sections.
#[derive(Default)]
struct StatusSpans {
    /// One per entry of `StatusSection::hosts`, in the same order.
    hosts: Vec<Range<usize>>,
}

fn parse_status(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> (StatusSection, StatusSpans) {
    let mut s = StatusSection {
        hosts: Vec::new(),
        title: "Status".into(),
        links: Vec::new(),
        url: None,
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
            _ => ctx.unknown(&key, &k.span(), &["hosts", "title", "links", "url"]),
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

fn parse_demo(ctx: &mut Ctx<'_>, t: &DeTable<'_>, table: Range<usize>) -> Option<Demo> {
    let mut listen = None;
    let mut seen = false;
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("demo.{name}");
        match name {
            "listen" => {
                seen = true;
                if let Some(a) = ctx.string(&key, v) {
                    match a.parse::<SocketAddr>() {
                        Ok(addr) => listen = Some(addr),
                        Err(_) => {
                            ctx.err(&v.span(), &key, format!("{a:?} is not an IP:port address"))
                        }
                    }
                }
            }
            _ => ctx.unknown(&key, &k.span(), &["listen"]),
        }
    }
    if !seen {
        ctx.err(
            &table,
            "demo.listen",
            "missing: the demo origin needs an address",
        );
    }
    listen.map(|listen| Demo { listen })
}

/// Checks across sites: unique names, each host claimed once.
fn check_sites(ctx: &mut Ctx<'_>, sites: Vec<(Site, SiteSpans)>) -> Vec<(Site, SiteSpans)> {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut hosts: HashMap<HostPattern, String> = HashMap::new();
    for (i, (site, spans)) in sites.iter().enumerate() {
        let key = format!("site[{}]", i + 1);
        let name_span = spans.name.as_ref().unwrap_or(&spans.table);
        let hosts_span = spans.hosts.as_ref().unwrap_or(&spans.table);
        if site.name.is_empty() {
            ctx.err(
                &spans.table,
                &format!("{key}.name"),
                "missing: every site needs a name",
            );
        } else if let Some(first) = names.insert(site.name.clone(), i + 1) {
            ctx.err(
                name_span,
                &format!("{key}.name"),
                format!("duplicate site name {:?} (also site[{first}])", site.name),
            );
        }
        if site.hosts.is_empty() && spans.hosts.is_none() {
            ctx.err(
                &spans.table,
                &format!("{key}.hosts"),
                "missing: every site needs at least one host",
            );
        }
        for h in &site.hosts {
            if let Some(other) = hosts.get(h) {
                ctx.err(
                    hosts_span,
                    &format!("{key}.hosts"),
                    format!("host {h} is already claimed by site {other:?}"),
                );
            } else {
                hosts.insert(h.clone(), site.name.clone());
            }
        }
    }
    sites
}

fn check_whole(
    ctx: &mut Ctx<'_>,
    spans: &KeySpans<'_, '_>,
    server: &Server,
    maintenance: &Maintenance,
    sites: &[(Site, SiteSpans)],
    status: Option<(&StatusSection, &StatusSpans)>,
    demo: Option<&Demo>,
) {
    let listeners_set =
        spans.get("server", "http").is_some() || spans.get("server", "https").is_some();
    if server.http.is_empty() && server.https.is_empty() && !listeners_set {
        ctx.err_file(
            "server.http",
            "no listeners: set [server] http (e.g. http = [\"127.0.0.1:8080\"])",
        );
    }
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    let listeners = server
        .http
        .iter()
        .map(|a| (a, "server", "http"))
        .chain(server.https.iter().map(|a| (a, "server", "https")))
        .chain(server.admin.iter().map(|a| (a, "server", "admin")))
        .chain(demo.iter().map(|d| (&d.listen, "demo", "listen")));
    for (addr, section, name) in listeners {
        if addr.port() == 0 {
            continue; // each port-0 listener gets its own port
        }
        let key = format!("{section}.{name}");
        if let Some(first) = seen.get(addr) {
            let message = format!("address {addr} is used twice (also {first})");
            ctx.err_key(spans.get(section, name), &key, message);
        } else {
            seen.insert(*addr, key);
        }
    }
    if server.control == server.state {
        ctx.err_key(
            spans
                .get("server", "state")
                .or_else(|| spans.get("server", "control")),
            "server.state",
            "the state file and the control socket must be different paths",
        );
    }
    if maintenance.status_page.is_none() {
        for (i, (site, spans)) in sites.iter().enumerate() {
            let code = site.code.unwrap_or(maintenance.code);
            if code != OfflineCode::Unavailable && site.status_page.is_none() {
                ctx.err(
                    &spans.table,
                    &format!("site[{}]", i + 1),
                    format!(
                        "site {:?} has no status page to redirect to: set [maintenance] status_page, or status_page on the site, or code = 503",
                        site.name
                    ),
                );
            }
        }
    }
    if let Some((st, st_spans)) = status {
        for (h, span) in st.hosts.iter().zip(&st_spans.hosts) {
            let p = HostPattern::Exact(h.clone());
            if let Some((s, _)) = sites.iter().find(|(s, _)| s.hosts.contains(&p)) {
                ctx.err(
                    span,
                    "status.hosts",
                    format!(
                        "host {h} is both a status host and a host of site {:?}",
                        s.name
                    ),
                );
            }
        }
    }
}

/// With HTTPS listeners: loads the certs directory and checks that every site host is
/// covered by a certificate. Certificate problems are errors at `server.certs`, naming
/// the certificate file.
fn check_tls(
    ctx: &mut Ctx<'_>,
    spans: &KeySpans<'_, '_>,
    server: &Server,
    sites: &[(Site, SiteSpans)],
    status: Option<(&StatusSection, &StatusSpans)>,
    warnings: &mut Vec<String>,
) -> Option<Arc<CertStore>> {
    if server.https.is_empty() {
        if server.redirect_https {
            ctx.err_key(
                spans.get("server", "redirect_https"),
                "server.redirect_https",
                "redirect_https needs HTTPS listeners: set [server] https",
            );
        }
        return None;
    }
    let Some(dir) = &server.certs else {
        ctx.err_key(
            spans.get("server", "https"),
            "server.certs",
            "HTTPS listeners need certificates: set [server] certs = \"DIR\" (a directory of NAME.crt + NAME.key pairs)",
        );
        return None;
    };
    let certs_span = spans.get("server", "certs");
    let (store, report) = CertStore::load(dir, time::OffsetDateTime::now_utc());
    let load_failed = !report.errors.is_empty();
    for e in report.errors {
        ctx.err_key(
            certs_span.clone(),
            "server.certs",
            format!("{}: {}", e.file.display(), e.message),
        );
    }
    for w in report.warnings {
        warnings.push(format!("{}: {}", w.file.display(), w.message));
    }
    if store.pairs.is_empty() && !load_failed {
        ctx.err_key(
            certs_span,
            "server.certs",
            format!(
                "no certificate in {} (expected NAME.crt + NAME.key pairs)",
                dir.display()
            ),
        );
    }
    for (i, (site, spans)) in sites.iter().enumerate() {
        let span = spans.hosts.as_ref().unwrap_or(&spans.table);
        for h in &site.hosts {
            let pattern = match h {
                HostPattern::Exact(n) => n.clone(),
                HostPattern::Wildcard(s) => format!("*.{s}"),
            };
            if !store.covers(&pattern) {
                ctx.err(
                    span,
                    &format!("site[{}].hosts", i + 1),
                    format!(
                        "host {pattern} of site {:?} has no certificate in {}",
                        site.name,
                        dir.display()
                    ),
                );
            }
        }
    }
    if let Some((st, st_spans)) = status {
        for (h, span) in st.hosts.iter().zip(&st_spans.hosts) {
            if !store.covers(h) {
                ctx.err(
                    span,
                    "status.hosts",
                    format!("status host {h} has no certificate in {}", dir.display()),
                );
            }
        }
    }
    Some(Arc::new(store))
}

/// A group name or numeric id (as text) → gid, from the system's group database.
fn group_id(group: &str) -> Result<u32, String> {
    if !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()) {
        return group
            .parse::<u32>()
            .ok()
            .filter(|g| *g != u32::MAX)
            .ok_or_else(|| format!("{group} is not a valid group id"));
    }
    let unknown = || format!("unknown group {group:?} (not in the system's group database)");
    let name = std::ffi::CString::new(group).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: every pointer is valid for the call; `buf` outlives `grp`'s strings,
        // and only `gr_gid` is read from the result.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if !found.is_null() => return Ok(grp.gr_gid),
            0 => return Err(unknown()),
            libc::ERANGE if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            e => {
                return Err(format!(
                    "cannot look up group {group:?}: {}",
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
}
