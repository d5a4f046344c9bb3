//! The immutable lookup table the data path reads: host → site, and for each site what
//! to do when it is online (upstreams) or offline (redirect target, page).
//!
//! Owns: host normalisation and matching (exact before `*.` wildcard, longest wildcard
//! first), the per-site effective state as of the snapshot. Does not own: how states
//! are decided (see `daemon`) or what a response looks like (see `request`, `reply`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;

use crate::config::{Config, HostPattern, OfflineCode, Site, StatusPage};
use crate::metrics::SiteCounters;

/// Longest host name we route (DNS limit plus a trailing dot and a port).
const MAX_HOST: usize = 253;

/// The hash of the host maps: FxHash (rustc's), a multiply-rotate per 8 bytes. The keys
/// are the config's host names and are never inserted from requests, so a request
/// crafted to collide can only make its own lookup probe a few more slots: SipHash's
/// protection buys nothing here and cost more than the rest of the lookup.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type HostMap = HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>;

/// Routing data derived from a config; rebuilt only when the config changes.
pub struct RouteTable {
    pub sites: Vec<SiteRoute>,
    exact: HostMap,
    /// Keyed by the suffix after `*.`.
    wildcard: HostMap,
    pub access_log: bool,
    /// `[server] redirect_https`: plain-HTTP requests go to HTTPS.
    pub redirect_https: bool,
    /// Metrics of requests that matched no site (`site="-"`).
    pub no_site: SiteCounters,
    /// `[status] hosts`: names offramp serves the built-in status page on; the first
    /// is where offline visitors of a `builtin` site are sent.
    pub status_hosts: Vec<Box<str>>,
    /// `[status] url`: the status page's public origin (`https://status.home.example`).
    /// When set, `builtin` redirects and links use it as it is, instead of the first
    /// status host with the scheme and port of the listener a request came in on.
    pub status_origin: Option<Box<str>>,
}

/// Everything the proxy needs about one site.
pub struct SiteRoute {
    pub name: Arc<str>,
    /// This site's metrics, cached for the data path.
    pub counters: SiteCounters,
    pub peers: Vec<HttpPeer>,
    next: AtomicUsize,
    pub code: OfflineCode,
    /// Redirect prefix (status page origin + path), `None` when there is no page to link.
    pub status_url: Option<Arc<str>>,
    pub keep_uri: bool,
    /// `status_page = "builtin"`: offline visitors go to the built-in status page.
    pub builtin: bool,
    /// `[maintenance] bypass` plus the site's own: peers that reach the upstream while
    /// the site is offline.
    pub bypass: Vec<crate::config::Net>,
}

impl SiteRoute {
    /// Next upstream in round-robin order, skipping those the health checks found down
    /// (bit i of `down`: upstream i) unless every one is.
    pub fn pick_peer(&self, down: u64) -> &HttpPeer {
        let n = self.peers.len();
        if n == 1 {
            return &self.peers[0];
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let up = (0..n)
            .map(|k| (start + k) % n)
            .find(|i| *i >= 64 || down & (1 << i) == 0)
            .unwrap_or(start);
        &self.peers[up]
    }
}

/// Why a request's host could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Missing,
    Malformed,
}

impl RouteTable {
    /// Builds the table for a validated config.
    pub fn build(config: &Config) -> RouteTable {
        let mut exact = HostMap::default();
        let mut wildcard = HostMap::default();
        let mut sites = Vec::with_capacity(config.sites.len());
        for (i, site) in config.sites.iter().enumerate() {
            for h in &site.hosts {
                match h {
                    HostPattern::Exact(n) => exact.insert(n.as_str().into(), i as u32),
                    HostPattern::Wildcard(s) => wildcard.insert(s.as_str().into(), i as u32),
                };
            }
            sites.push(site_route(config, site));
        }
        RouteTable {
            sites,
            exact,
            wildcard,
            access_log: config.server.access_log,
            redirect_https: config.server.redirect_https && !config.server.https.is_empty(),
            no_site: SiteCounters::new("-".into()),
            status_hosts: config
                .status
                .iter()
                .flat_map(|s| s.hosts.iter().map(|h| h.as_str().into()))
                .collect(),
            status_origin: config
                .status
                .as_ref()
                .and_then(|s| s.url.as_deref())
                .map(Into::into),
        }
    }

    /// Whether a request's host (port allowed) is a status host.
    pub fn is_status_host(&self, host: &[u8]) -> bool {
        if self.status_hosts.is_empty() {
            return false;
        }
        let mut buf = [0u8; MAX_HOST + 1];
        normalize_host(host, &mut buf).is_ok_and(|n| self.status_hosts.iter().any(|h| **h == *n))
    }

    /// Site index for a request's host (`Host` header or URI authority, port allowed).
    /// `Ok(None)` is an unknown host.
    pub fn lookup(&self, host: &[u8]) -> Result<Option<u32>, HostError> {
        let mut buf = [0u8; MAX_HOST + 1];
        let name = normalize_host(host, &mut buf)?;
        if let Some(&i) = self.exact.get(name) {
            return Ok(Some(i));
        }
        // Longest suffix first: a.b.example tries b.example, then example.
        let mut rest = name;
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if let Some(&i) = self.wildcard.get(rest) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

fn site_route(config: &Config, site: &Site) -> SiteRoute {
    let peers = site
        .upstreams
        .iter()
        .map(|u| {
            // The upstream's own name (or IP literal) is what its certificate is checked
            // against. Never leave it empty: Pingora skips verification without one.
            let sni = if u.tls { u.host.clone() } else { String::new() };
            let mut peer = HttpPeer::new(u.addr, u.tls, sni);
            peer.options.connection_timeout = Some(site.connect_timeout);
            peer.options.total_connection_timeout = Some(site.connect_timeout);
            peer.options.read_timeout = Some(site.read_timeout);
            peer.options.write_timeout = Some(site.read_timeout);
            peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
            peer.options.verify_cert = site.tls_verify;
            peer.options.verify_hostname = site.tls_verify;
            peer
        })
        .collect();
    let status_url = match config.status_page_of(site) {
        Some(StatusPage::Url(u)) => Some(format!("{}{}", u.origin, u.path).into()),
        _ => None,
    };
    let builtin = matches!(config.status_page_of(site), Some(StatusPage::Builtin));
    let name: Arc<str> = site.name.as_str().into();
    SiteRoute {
        counters: SiteCounters::new(name.clone()),
        name,
        peers,
        next: AtomicUsize::new(0),
        code: site.code.unwrap_or(config.maintenance.code),
        status_url,
        keep_uri: site.keep_uri.unwrap_or(config.maintenance.keep_uri),
        builtin,
        bypass: config
            .maintenance
            .bypass
            .iter()
            .chain(&site.bypass)
            .copied()
            .collect(),
    }
}

/// The characters of a host name (letters, digits, `-`, `.`, `_`), lower-cased; 0 for
/// any other byte.
static HOST_CHARS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_' {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// Lower-cases, strips the port and one trailing dot, and checks the characters.
fn normalize_host<'b>(host: &[u8], buf: &'b mut [u8; MAX_HOST + 1]) -> Result<&'b str, HostError> {
    if host.is_empty() {
        return Err(HostError::Missing);
    }
    let name: &[u8] = if host[0] == b'[' {
        // IPv6 literal, optionally followed by :port.
        let end = host
            .iter()
            .position(|&b| b == b']')
            .ok_or(HostError::Malformed)?;
        check_port(&host[end + 1..])?;
        &host[..=end]
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(i) => {
                check_port(&host[i..])?;
                &host[..i]
            }
            None => host,
        }
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST {
        return Err(HostError::Malformed);
    }
    let ipv6 = name[0] == b'[';
    // One trailing dot is a fully-qualified name; a second is an empty label (`a.b..`).
    if !ipv6 && name.ends_with(b".") {
        return Err(HostError::Malformed);
    }
    // As if a dot came before the name: a leading dot is an empty label too.
    let mut prev = b'.';
    for (&b, slot) in name.iter().zip(buf.iter_mut()) {
        let c = HOST_CHARS[usize::from(b)];
        let ok = c != 0 || (ipv6 && (b == b':' || b == b'[' || b == b']'));
        // An empty label (`a..b`, `.a`) is not a host name.
        let empty_label = !ipv6 && b == b'.' && prev == b'.';
        if !ok || empty_label {
            return Err(HostError::Malformed);
        }
        *slot = if c != 0 { c } else { b };
        prev = b;
    }
    // Only ASCII was copied, so this cannot fail; map it anyway rather than unwrap.
    std::str::from_utf8(&buf[..name.len()]).map_err(|_| HostError::Malformed)
}

/// A request's host as routing sees it: lower-case, port and trailing dot removed.
pub fn normalized_host(host: &[u8]) -> Result<String, HostError> {
    let mut buf = [0u8; MAX_HOST + 1];
    normalize_host(host, &mut buf).map(str::to_string)
}

/// `""` or `":<digits>"`.
fn check_port(tail: &[u8]) -> Result<(), HostError> {
    match tail.split_first() {
        None => Ok(()),
        Some((b':', digits)) if digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) => {
            Ok(())
        }
        _ => Err(HostError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::upstreams::peer::Peer;
    use std::path::Path;

    fn table() -> RouteTable {
        let cfg = Config::parse(
            r#"
            [server]
            http = "127.0.0.1:0"
            [maintenance]
            status_page = "https://status.example.com"
            [[site]]
            name = "cloud"
            hosts = ["cloud.example", "*.cloud.example"]
            upstream = "http://127.0.0.1:9"
            [[site]]
            name = "deep"
            hosts = ["*.deep.cloud.example"]
            upstream = "http://127.0.0.1:9"
            [[site]]
            name = "exact"
            hosts = ["x.deep.cloud.example"]
            upstream = "http://127.0.0.1:9"
            "#,
            Path::new("/tmp/t.toml"),
        )
        .unwrap();
        RouteTable::build(&cfg)
    }

    #[test]
    fn exact_then_longest_wildcard() {
        let t = table();
        assert_eq!(t.lookup(b"cloud.example"), Ok(Some(0)));
        assert_eq!(t.lookup(b"CLOUD.Example:8080"), Ok(Some(0)));
        assert_eq!(t.lookup(b"cloud.example."), Ok(Some(0)));
        assert_eq!(t.lookup(b"a.cloud.example"), Ok(Some(0)));
        assert_eq!(t.lookup(b"a.b.cloud.example"), Ok(Some(0)));
        assert_eq!(t.lookup(b"a.deep.cloud.example"), Ok(Some(1)));
        assert_eq!(t.lookup(b"x.deep.cloud.example"), Ok(Some(2)));
        assert_eq!(t.lookup(b"deep.cloud.example"), Ok(Some(0)));
        assert_eq!(t.lookup(b"example"), Ok(None));
        assert_eq!(t.lookup(b"other.example"), Ok(None));
    }

    #[test]
    fn malformed_hosts() {
        let t = table();
        assert_eq!(t.lookup(b""), Err(HostError::Missing));
        for bad in [
            &b"cloud.example:80x"[..],
            b"cloud example",
            b"cloud.example/evil",
            b"a@b",
            b":80",
            b"[::1",
            b"\xffcloud",
            b"cloud.example:123456",
            b"cloud.example..",
            b"cloud.example..:80",
            b"..",
        ] {
            assert_eq!(t.lookup(bad), Err(HostError::Malformed), "{bad:?}");
        }
        assert_eq!(t.lookup(b"[::1]:8080"), Ok(None));
    }

    #[test]
    fn round_robin_cycles() {
        let cfg = Config::parse(
            r#"
            [server]
            http = "127.0.0.1:0"
            [maintenance]
            code = 503
            [[site]]
            name = "rr"
            hosts = ["rr.example"]
            upstream = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
            "#,
            Path::new("/tmp/t.toml"),
        )
        .unwrap();
        let t = RouteTable::build(&cfg);
        let s = &t.sites[0];
        let ports: Vec<_> = (0..4)
            .map(|_| s.pick_peer(0).address().as_inet().map(|a| a.port()))
            .collect();
        assert_eq!(ports, [Some(1), Some(2), Some(1), Some(2)]);
    }
}
