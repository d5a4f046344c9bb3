//! The checks across sites and sections, run once every section has been read so that
//! all problems are reported together: unique site names and hosts, listeners (at least
//! one, no address twice), a status page for every offline site, status hosts apart
//! from site hosts, and with HTTPS the certificates covering every host. Reading the
//! sections is theirs (`server`, `site`, ...); loading certificates is `tls`'s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::reader::{Ctx, KeySpans};
use super::site::SiteSpans;
use super::status::StatusSpans;
use super::{CertStore, Demo, HostPattern, Maintenance, OfflineCode, Server, Site, StatusSection};

/// Checks across sites: unique names, each host claimed once.
pub(super) fn check_sites(
    ctx: &mut Ctx<'_>,
    sites: Vec<(Site, SiteSpans)>,
) -> Vec<(Site, SiteSpans)> {
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

/// Checks across sections: listeners, paths, status pages for offline sites, status
/// hosts apart from site hosts.
pub(super) fn check_whole(
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
pub(super) fn check_tls(
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
