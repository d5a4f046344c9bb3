//! The status page URL, kept in the two pieces the redirect needs: a fixed origin and a
//! path prefix. Nothing from a request can change either (CONTRACT section 3). Also
//! the host-name and host:port syntax the sections share, and the check of the http(s)
//! URLs `[[notify]]` targets are sent to. Building a redirect from it is
//! `maintenance`'s.

/// A validated `http(s)://host[:port][/path]` URL with no query, fragment or userinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUrl {
    /// As written in the config.
    pub raw: String,
    /// `https://status.example.com` (scheme and authority, lower-cased host).
    pub origin: String,
    /// Path without a trailing slash; empty for the root.
    pub path: String,
}

impl StatusUrl {
    /// Parses and checks a status page URL.
    pub fn parse(raw: &str) -> Result<StatusUrl, String> {
        let Some((scheme, rest)) = split_http(raw) else {
            return Err(format!(
                "{raw:?} is not an http:// or https:// URL (or \"builtin\")"
            ));
        };
        if raw.contains(['?', '#']) {
            return Err(format!(
                "{raw:?} must not have a query or fragment: the visitor's path and query are appended to it"
            ));
        }
        if raw.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'\\') {
            return Err(format!(
                "{raw:?} contains spaces, control characters, backslashes or non-ASCII characters"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{raw:?} has no host"));
        }
        if authority.contains('@') {
            return Err(format!(
                "{raw:?} must not contain user information (user@host)"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{raw:?} has an invalid host or port"))?;
        if !valid_host(host) {
            return Err(format!("{raw:?} has an invalid host {host:?}"));
        }
        let mut origin = format!("{scheme}://{}", host.to_ascii_lowercase());
        if let Some(p) = port {
            origin.push(':');
            origin.push_str(p);
        }
        if path.contains("//") {
            return Err(format!("{raw:?} has an empty path segment (\"//\")"));
        }
        Ok(StatusUrl {
            raw: raw.to_string(),
            origin,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Checks a link shown on the built-in status page: `http(s)://host[:port]...`,
    /// a query and fragment allowed, nothing a page could misread.
    pub fn parse_link(raw: &str) -> Result<(), String> {
        let Some((_, rest)) = split_http(raw) else {
            return Err(format!("{raw:?} is not an http:// or https:// URL"));
        };
        if raw
            .bytes()
            .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'\\' | b'"' | b'\'' | b'<' | b'>'))
        {
            return Err(format!(
                "{raw:?} contains spaces, quotes, control or non-ASCII characters"
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return Err(format!(
                "{raw:?} must not contain user information (user@host)"
            ));
        }
        match split_host_port(authority) {
            Some((host, _)) if valid_host(host) => Ok(()),
            _ => Err(format!("{raw:?} has an invalid host or port")),
        }
    }

    /// Host (lower-case, without port) of the status page.
    pub fn host(&self) -> &str {
        let after = self.origin.split_once("://").map_or("", |(_, a)| a);
        split_host_port(after).map_or(after, |(h, _)| h)
    }
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when the port is not a number.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &authority[..end + 2];
        let tail = &rest[end + 1..];
        return match tail.strip_prefix(':') {
            Some(p) if valid_port(p) => Some((host, Some(p))),
            Some(_) => None,
            None if tail.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if valid_port(p) && !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// A DNS name, IPv4 address or bracketed IPv6 address.
pub(crate) fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `raw`'s scheme (`http` or `https`, in any case) and what follows `://`; `None`
/// for any other scheme.
fn split_http(raw: &str) -> Option<(&'static str, &str)> {
    let starts = |p: &str| {
        raw.get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    if starts("https://") {
        Some(("https", &raw[8..]))
    } else if starts("http://") {
        Some(("http", &raw[7..]))
    } else {
        None
    }
}

/// Why `raw` is not an `http(s)://host...` URL; the reason never quotes it.
pub(super) fn check_url(raw: &str) -> Result<(), &'static str> {
    let Some((_, rest)) = split_http(raw) else {
        return Err("it does not start with http:// or https://");
    };
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return Err("it has no host");
    }
    match split_host_port(host_port) {
        Some((host, _)) if valid_host(host) => Ok(()),
        _ => Err("it has an invalid host or port"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_origin_and_path() {
        let u = StatusUrl::parse("https://Status.Example.com/cloud/").unwrap();
        assert_eq!(u.origin, "https://status.example.com");
        assert_eq!(u.path, "/cloud");
        assert_eq!(u.host(), "status.example.com");
        let u = StatusUrl::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(u.origin, "http://127.0.0.1:9000");
        assert_eq!(u.path, "");
        assert_eq!(u.host(), "127.0.0.1");
    }

    #[test]
    fn rejects_what_could_be_steered() {
        for bad in [
            "status.example.com",
            "ftp://x",
            "https://",
            "https://user@evil.com",
            "https://x.com/?a=1",
            "https://x.com/#f",
            "https://x.com//evil",
            "https://x.com/a b",
            "https://x.com\\@evil.com",
            "https://x.com:99999",
            "https://ex ample.com",
        ] {
            assert!(StatusUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
