//! One `[[site]]`: its name, host patterns, upstreams (resolved when read), state,
//! status page and timeouts. Checks across sites (duplicate names, a host claimed
//! twice, certificate coverage) are `validate`'s.

use std::net::ToSocketAddrs;
use std::ops::Range;

use toml::de::DeTable;

use super::maintenance::parse_status_page;
use super::reader::Ctx;
use super::url::{split_host_port, valid_host};
use super::{
    HostPattern, Site, SiteState, Upstream, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT,
};

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
    "group",
    "bypass",
    "health",
    "auto_offline",
];

/// Where a site's keys are, for errors found when comparing sites.
pub(super) struct SiteSpans {
    pub(super) table: Range<usize>,
    pub(super) name: Option<Range<usize>>,
    pub(super) hosts: Option<Range<usize>>,
}

/// The `[[site]]` table `t` (keys named `prefix.key`), and where its keys are.
pub(super) fn parse_site(
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
        group: None,
        bypass: Vec::new(),
        health: Some(super::Health::default()),
        auto_offline: false,
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
            "code" => site.code = super::maintenance::parse_code(ctx, &key, v),
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
            "group" => site.group = super::component::parse_group(ctx, &key, v),
            "bypass" => site.bypass = super::maintenance::parse_bypass(ctx, &key, v),
            "health" => site.health = super::health::parse_health(ctx, &key, v),
            "auto_offline" => site.auto_offline = ctx.boolean(&key, v).unwrap_or(false),
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
