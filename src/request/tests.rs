//! The decision table: one row per branch of `decide`, on one config.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use super::*;
use crate::config::{Config, SiteState};
use crate::routes::RouteTable;
use crate::snapshot::{Effective, Snapshot};
use crate::status::{SiteView, View};

const CONFIG: &str = r#"
[server]
http = "127.0.0.1:0"
[maintenance]
status_page = "https://status.example.com"
bypass = ["192.168.1.0/24"]
[[site]]
name = "cloud"
hosts = ["cloud.example"]
upstream = "http://127.0.0.1:9"
[[site]]
name = "shop"
hosts = ["shop.example"]
upstream = "http://127.0.0.1:9"
bypass = ["::1"]
[[site]]
name = "wiki"
hosts = ["wiki.example"]
upstream = "http://127.0.0.1:9"
status_page = "builtin"
[status]
hosts = ["status.example"]
"#;

/// A snapshot of `CONFIG` with `shop` and `wiki` offline.
fn snapshot(redirect_https: bool) -> Snapshot {
    let mut cfg = Config::parse(CONFIG, Path::new("/tmp/t.toml")).unwrap();
    if redirect_https {
        // Validation wants certificates for HTTPS listeners; none are needed here.
        cfg.server.https = vec!["127.0.0.1:0".parse().unwrap()];
        cfg.server.redirect_https = true;
    }
    let table = RouteTable::build(&cfg);
    let states = [SiteState::Online, SiteState::Offline, SiteState::Offline];
    let view = View {
        title: "t".into(),
        links: vec![],
        sites: ["cloud", "shop", "wiki"]
            .iter()
            .zip(states)
            .map(|(n, s)| SiteView::new(n, s, None, None, None))
            .collect(),
        history: vec![],
        updated_at: OffsetDateTime::UNIX_EPOCH,
        platform: Arc::new(crate::platform::PlatformView::empty(
            vec![],
            OffsetDateTime::UNIX_EPOCH,
        )),
        rendered: Default::default(),
        subscribe: false,
    };
    Snapshot {
        table: Arc::new(table),
        states: states
            .iter()
            .map(|&state| Effective {
                state,
                until: None,
                down: 0,
            })
            .collect(),
        view: Arc::new(view),
    }
}

fn facts<'a>(scheme: Scheme, host: Option<&'a str>, target: &'a str) -> Facts<'a> {
    Facts {
        listener: Listener {
            scheme,
            https_port: Some(8443),
        },
        local_port: if scheme == Scheme::Http { 8080 } else { 8443 },
        host: host.map(str::as_bytes).ok_or(HostError::Missing),
        method: b"GET",
        target: target.as_bytes(),
        target_len: target.len(),
        peer: None,
    }
}

#[test]
fn every_branch_of_the_decision() {
    use Decision::*;
    use Scheme::{Http, Https};
    let long = format!("/{}", "a".repeat(crate::limits::MAX_REQUEST_TARGET));
    let acme = "/.well-known/acme-challenge/tok-EN_1";
    let red = |site, status, l: &str| Redirect {
        site,
        status,
        location: l.into(),
    };
    let https = |site, l: &str| HttpsRedirect {
        site,
        location: l.into(),
    };
    #[rustfmt::skip]
    let rows: Vec<(bool, Scheme, Option<&str>, &str, Decision)> = vec![
        (false, Http, Some("cloud.example"), &long, TargetTooLong),
        (false, Http, None, "/", BadHost),
        (false, Http, Some("a..b"), "/", BadHost),
        (false, Http, Some("nope.example"), "/", UnknownHost),
        (false, Http, Some("status.example"), "/", StatusHost { origin: "http://status.example:8080".into() }),
        (false, Https, Some("Status.Example:8443"), "/", StatusHost { origin: "https://status.example:8443".into() }),
        (false, Http, Some("cloud.example"), "/a?b", Proxy { site: 0 }),
        (false, Http, Some("shop.example"), "/a?b", red(1, 302, "https://status.example.com/a?b")),
        (false, Http, Some("shop.example"), acme, Proxy { site: 1 }),
        (false, Https, Some("shop.example"), acme, red(1, 302, &format!("https://status.example.com{acme}"))),
        (false, Http, Some("wiki.example"), "/p", red(2, 302, "http://status.example:8080/maintenance/wiki?from=http%3A%2F%2Fwiki.example%2Fp")),
        (true, Http, Some("cloud.example"), "/a", https(Some(0), "https://cloud.example:8443/a")),
        (true, Http, Some("shop.example"), "/a", https(Some(1), "https://shop.example:8443/a")),
        (true, Http, Some("shop.example"), acme, Proxy { site: 1 }),
        (true, Http, Some("status.example"), "/x", https(None, "https://status.example:8443/x")),
        (true, Https, Some("cloud.example"), "/a", Proxy { site: 0 }),
        (true, Https, Some("wiki.example"), "/p", red(2, 302, "https://status.example:8443/maintenance/wiki?from=https%3A%2F%2Fwiki.example%2Fp")),
    ];
    for (redirect_https, scheme, host, target, want) in rows {
        let snap = snapshot(redirect_https);
        let got = decide(&snap, &facts(scheme, host, target));
        assert_eq!(
            got, want,
            "{scheme:?} {host:?} {target} (redirect_https {redirect_https})"
        );
    }
}

#[test]
fn a_503_site_gets_the_maintenance_page_with_its_link() {
    let mut snap = snapshot(false);
    let mut cfg = Config::parse(CONFIG, Path::new("/tmp/t.toml")).unwrap();
    cfg.status = None;
    let mut table = RouteTable::build(&cfg);
    table.sites[1].code = crate::config::OfflineCode::Unavailable;
    snap.table = Arc::new(table);
    let d = decide(&snap, &facts(Scheme::Http, Some("shop.example"), "/a"));
    assert_eq!(
        d,
        Decision::Maintenance {
            site: 1,
            link: Some("https://status.example.com".into())
        }
    );
    // A builtin site without a status host: the page in place, without a link.
    let d = decide(&snap, &facts(Scheme::Http, Some("wiki.example"), "/a"));
    assert_eq!(
        d,
        Decision::Maintenance {
            site: 2,
            link: None
        }
    );
    let reply = answer(
        &snap,
        &facts(Scheme::Http, Some("wiki.example"), "/a"),
        d.clone(),
    )
    .unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.retry_after, None);
    assert_eq!(d.outcome(), Outcome::Maintenance);
}

#[test]
fn a_peer_in_bypass_reaches_an_offline_site_and_nothing_else_does() {
    let snap = snapshot(false);
    let from = |peer: &str, host: &'static str| {
        let mut f = facts(Scheme::Http, Some(host), "/admin");
        f.peer = Some(peer.parse().unwrap());
        decide(&snap, &f)
    };
    // [maintenance] bypass covers every site; a site's own adds to it.
    assert_eq!(
        from("192.168.1.20", "shop.example"),
        Decision::Proxy { site: 1 }
    );
    assert_eq!(
        from("::ffff:192.168.1.20", "wiki.example"),
        Decision::Proxy { site: 2 }
    );
    assert_eq!(from("::1", "shop.example"), Decision::Proxy { site: 1 });
    assert!(matches!(
        from("::1", "wiki.example"),
        Decision::Redirect { .. }
    ));
    assert!(matches!(
        from("192.168.2.1", "shop.example"),
        Decision::Redirect { .. }
    ));
    // No peer known: no bypass.
    let f = facts(Scheme::Http, Some("shop.example"), "/admin");
    assert!(matches!(decide(&snap, &f), Decision::Redirect { .. }));
}
