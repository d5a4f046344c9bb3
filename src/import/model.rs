//! What both readers (Caddyfile and JSON) turn a Caddy config into: its sites with
//! what offramp can carry over and notes on the rest, each with where it came from.
//!
//! Owns: that model and the conversions of Caddy values (upstreams, addresses,
//! redirect targets) into offramp's. Does not decide what becomes which site
//! (`mapping`).

use crate::config::StatusUrl;

/// A value and where in the source it was found (`Caddyfile:12`, a JSON path).
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub value: T,
    pub from: String,
}

/// Something of the source that the result does not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub from: String,
    pub what: String,
    /// `false`: a directive offramp does not know at all (listed as not understood).
    pub understood: bool,
}

/// One host name of a Caddy site address.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    /// Lower-case, no port.
    pub host: String,
    pub port: Option<u16>,
    pub scheme: Option<String>,
    pub from: String,
}

/// A site-wide redirect to an external URL (the answer of an offline site).
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// The target without `{uri}`.
    pub url: String,
    pub keep_uri: bool,
    /// 302 or 307; `None` for a code offramp does not carry (noted).
    pub code: Option<u16>,
    pub from: String,
}

/// One Caddy site (a site block, or a JSON route with host matchers).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceSite {
    pub from: String,
    pub addresses: Vec<Address>,
    pub upstreams: Vec<Found<String>>,
    pub tls_verify: Option<Found<bool>>,
    pub redirect: Option<Redirect>,
    /// An upstream named by the snippet the block came from (`import offline shop 10.1.1.6`).
    pub hint: Option<Found<String>>,
    pub notes: Vec<Note>,
}

impl SourceSite {
    /// Records something not carried.
    pub fn note(&mut self, from: &str, what: impl Into<String>) {
        self.notes.push(Note {
            from: from.to_string(),
            what: what.into(),
            understood: true,
        });
    }

    /// Records something not understood.
    pub fn unknown(&mut self, from: &str, what: impl Into<String>) {
        self.notes.push(Note {
            from: from.to_string(),
            what: what.into(),
            understood: false,
        });
    }
}

/// A whole Caddy config, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// `Caddyfile` or `Caddy JSON`.
    pub kind: &'static str,
    pub path: String,
    pub sites: Vec<SourceSite>,
    /// Global options and other parts outside any site.
    pub notes: Vec<Note>,
    /// `http_port` of the global options.
    pub http_port: Option<Found<u16>>,
}

/// What offramp says when compression is asked for.
pub const NO_COMPRESS: &str = "compression (offramp has no compress key yet)";
/// What offramp says when a per-site log file is asked for.
pub const NO_LOG: &str = "per-site log file (offramp has no per-site log key yet)";
/// What offramp says about Caddy's certificate automation.
pub const NO_ACME: &str =
    "automatic certificates (offramp has no [acme] yet: put PEM pairs in [server] certs)";

/// A Caddy upstream (`10.0.0.1`, `10.0.0.1:8080`, `:8080`, `http://h`, `https://h:8443`)
/// as offramp's URL; default ports are left out so that both readers agree.
pub fn upstream_url(s: &str) -> Result<String, String> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if s.contains("://") {
        return Err(format!(
            "upstream {s}: offramp proxies to http:// and https:// only"
        ));
    } else {
        (false, s)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('{') || rest.contains('@') || rest.is_empty() {
        return Err(format!("upstream {s:?} is not HOST[:PORT]"));
    }
    let (host, port) =
        split_host_port(rest).ok_or_else(|| format!("upstream {s:?} is not HOST[:PORT]"))?;
    let host = if host.is_empty() { "localhost" } else { host };
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b))
    {
        return Err(format!("upstream {s:?} is not HOST[:PORT]"));
    }
    let default = if tls { 443 } else { 80 };
    let scheme = if tls { "https" } else { "http" };
    Ok(match port {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host:port`, `[v6]:port`, `host` → host and port; `None` for a bad port.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// A Caddy site address (`a.example`, `b.example:8443`, `http://c.example`,
/// `*.d.example`) → its host name, or why not.
pub fn site_address(s: &str, from: &str) -> Result<Address, String> {
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, r)) => (Some(sc.to_ascii_lowercase()), r),
        None => (None, s),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !path.is_empty() && path != "/" && path != "/*" {
        return Err(format!(
            "address {s}: a path ({path}) cannot be carried: offramp routes by host name only"
        ));
    }
    let (host, port) =
        split_host_port(hostport).ok_or_else(|| format!("address {s}: not HOST[:PORT]"))?;
    if host.is_empty() {
        return Err(format!(
            "address {s} names no host: offramp's sites answer for host names only"
        ));
    }
    if host.contains('{') {
        return Err(format!(
            "address {s}: placeholder left as is, not a host name"
        ));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._*".contains(&b))
    {
        return Err(format!("address {s:?}: not a host name offramp can match"));
    }
    Ok(Address {
        host: host.to_ascii_lowercase(),
        port,
        scheme,
        from: from.to_string(),
    })
}

/// A redirect target that can be an offline site's status page: `https://x/page{uri}`
/// → the URL without `{uri}` and whether it kept the request's URI.
pub fn redirect_target(to: &str) -> Result<(String, bool), String> {
    let (url, keep) = match to
        .strip_suffix("{uri}")
        .or_else(|| to.strip_suffix("{http.request.uri}"))
    {
        Some(u) => (u, true),
        None => (to, false),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("redirect to {to}: not an external http(s):// URL"));
    }
    if url.contains('{') {
        return Err(format!(
            "redirect to {to}: placeholders other than {{uri}} cannot be carried"
        ));
    }
    let url = url.strip_suffix('/').unwrap_or(url);
    StatusUrl::parse(url).map_err(|e| format!("redirect to {to}: {e}"))?;
    Ok((url.to_string(), keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_normalised() {
        assert_eq!(upstream_url("10.1.1.4").unwrap(), "http://10.1.1.4");
        assert_eq!(
            upstream_url("http://10.1.1.4:80").unwrap(),
            "http://10.1.1.4"
        );
        assert_eq!(
            upstream_url("10.1.1.4:8080").unwrap(),
            "http://10.1.1.4:8080"
        );
        assert_eq!(upstream_url("https://nas.lan").unwrap(), "https://nas.lan");
        assert_eq!(
            upstream_url("https://nas.lan:443").unwrap(),
            "https://nas.lan"
        );
        assert_eq!(upstream_url(":3000").unwrap(), "http://localhost:3000");
        assert_eq!(upstream_url("[::1]:81").unwrap(), "http://[::1]:81");
        assert!(upstream_url("h2c://x:1").is_err());
        assert!(upstream_url("unix//run/x.sock").is_err());
        assert!(upstream_url("{upstream}").is_err());
        assert!(upstream_url("x:notaport").is_err());
    }

    #[test]
    fn addresses_lose_ports_and_schemes() {
        let a = site_address("B.Example:8443", "f:1").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("b.example", Some(8443)));
        let a = site_address("http://c.example", "f:1").unwrap();
        assert_eq!(a.scheme.as_deref(), Some("http"));
        assert!(site_address(":8080", "f:1").is_err());
        assert!(site_address("a.example/api", "f:1").is_err());
        assert!(site_address("a\nb.example", "f:1").is_err());
        assert!(site_address("*.Wild.example", "f:1").is_ok());
    }

    #[test]
    fn redirect_targets_become_status_pages() {
        assert_eq!(
            redirect_target("https://udance.statuspage.io{uri}").unwrap(),
            ("https://udance.statuspage.io".to_string(), true)
        );
        assert_eq!(
            redirect_target("https://s.example/page").unwrap(),
            ("https://s.example/page".to_string(), false)
        );
        assert!(redirect_target("/elsewhere{uri}").is_err());
        assert!(redirect_target("https://{host}{uri}").is_err());
    }
}
