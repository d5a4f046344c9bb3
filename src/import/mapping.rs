//! Caddy sites → offramp sites (the mapping rules of README "Moving in from Caddy"):
//! which block is online, which offline, who owns a host claimed twice, site names,
//! where an offline site's upstream comes from, and the `[maintenance]` default.
//!
//! Owns: those decisions, on the readers' common model. Does not read files or write
//! TOML.

use std::collections::{HashMap, HashSet};

use super::model::{Address, Found, Note, Source, SourceSite};

/// What will be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: &'static str,
    pub path: String,
    /// The HTTP listener.
    pub http: Found<String>,
    /// Hosts Caddy would have served over HTTPS (its automatic HTTPS).
    pub https_hosts: Vec<String>,
    /// `[maintenance] status_page`: the first offline site's.
    pub status_page: Option<Found<String>>,
    pub sites: Vec<Site>,
    pub notes: Vec<Note>,
}

/// One `[[site]]` to write (commented out when `left_out` says why).
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    pub from: String,
    pub hosts: Vec<Address>,
    pub upstreams: Vec<Found<String>>,
    pub tls_verify: Option<Found<bool>>,
    pub offline: bool,
    pub status_page: Option<Found<String>>,
    pub code: Option<Found<u16>>,
    pub keep_uri: Option<Found<bool>>,
    pub notes: Vec<Note>,
    pub left_out: Option<String>,
}

/// Applies the mapping rules; `upstreams` are the `--upstream NAME=URL` options.
pub fn map(source: Source, upstreams: &[(String, String)]) -> Plan {
    let mut notes = source.notes;
    let http = match &source.http_port {
        Some(p) => Found {
            value: format!("0.0.0.0:{}", p.value),
            from: format!("http_port, {}", p.from),
        },
        None => Found {
            value: "0.0.0.0:80".to_string(),
            from: "Caddy's HTTP port".to_string(),
        },
    };
    let mut https_hosts = Vec::new();
    let mut sites: Vec<Site> = Vec::new();
    for s in source.sites {
        if s.addresses.is_empty() {
            notes.push(Note {
                from: s.from.clone(),
                what: "a site block without a host name offramp can use: left out".into(),
                understood: true,
            });
            notes.extend(s.notes);
            continue;
        }
        for a in &s.addresses {
            if a.scheme.as_deref() != Some("http") && !https_hosts.contains(&a.host) {
                https_hosts.push(a.host.clone());
            }
        }
        sites.push(site(s));
    }
    claim_hosts(&mut sites);
    sites.retain(|s| !s.hosts.is_empty());
    name_sites(&mut sites);
    let mut used = HashSet::new();
    for s in &mut sites {
        let given: Vec<Found<String>> = upstreams
            .iter()
            .filter(|(n, _)| *n == s.name)
            .map(|(n, url)| Found {
                value: url.clone(),
                from: format!("--upstream {n}={url}"),
            })
            .collect();
        if !given.is_empty() {
            used.insert(s.name.clone());
            if !s.upstreams.is_empty() {
                s.notes.push(Note {
                    from: "--upstream".into(),
                    what: format!(
                        "replaces the upstream from Caddy ({})",
                        s.upstreams[0].value
                    ),
                    understood: true,
                });
            }
            s.upstreams = given;
            s.left_out = None;
        }
        if s.upstreams.is_empty() && s.left_out.is_none() {
            s.left_out = Some(format!(
                "no upstream: Caddy only redirected this site, so where it lives is not in the Caddy config; run again with --upstream {}=HOST:PORT",
                s.name
            ));
        }
    }
    let mut unknown: Vec<&String> = upstreams
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !used.contains(*n))
        .collect();
    unknown.dedup();
    for name in unknown {
        notes.push(Note {
            from: "--upstream".into(),
            what: format!("no site is named {name} (sites: {})", names(&sites)),
            understood: true,
        });
    }
    let status_page = sites.iter().find_map(|s| s.status_page.clone());
    Plan {
        kind: source.kind,
        path: source.path,
        http,
        https_hosts,
        status_page,
        sites,
        notes,
    }
}

fn names(sites: &[Site]) -> String {
    sites
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Caddy site as an offramp site, before hosts are shared out and names given.
fn site(s: SourceSite) -> Site {
    let mut out = Site {
        name: String::new(),
        from: s.from,
        hosts: s.addresses,
        upstreams: s.upstreams,
        tls_verify: s.tls_verify,
        offline: false,
        status_page: None,
        code: None,
        keep_uri: None,
        notes: s.notes,
        left_out: None,
    };
    if let Some(r) = s.redirect {
        out.status_page = Some(Found {
            value: r.url,
            from: format!("redir, {}", r.from),
        });
        out.keep_uri = Some(Found {
            value: r.keep_uri,
            from: format!(
                "{{uri}} {}in the redir target",
                if r.keep_uri { "" } else { "not " }
            ),
        });
        out.code = r.code.map(|c| Found {
            value: c,
            from: format!("redir code, {}", r.from),
        });
        if out.upstreams.is_empty() {
            out.offline = true;
        } else {
            out.notes.push(Note {
                from: r.from,
                what: "redir in a site that also proxies: carried as its status page only".into(),
                understood: true,
            });
        }
    }
    if out.upstreams.is_empty() && !out.offline {
        out.left_out = Some(
            "neither a reverse_proxy nor a redirect to an external URL: nothing offramp can serve"
                .into(),
        );
    } else if out.upstreams.is_empty() {
        if let Some(h) = s.hint {
            out.upstreams.push(h);
        }
    }
    out
}

/// A host belongs to one site: online blocks first, in order; an offline block for a
/// host an online block has gives that site its status page.
fn claim_hosts(sites: &mut [Site]) {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let order: Vec<usize> = (0..sites.len())
        .filter(|&i| !sites[i].offline && sites[i].left_out.is_none())
        .chain((0..sites.len()).filter(|&i| sites[i].offline))
        .chain((0..sites.len()).filter(|&i| !sites[i].offline && sites[i].left_out.is_some()))
        .collect();
    for i in order {
        let hosts = std::mem::take(&mut sites[i].hosts);
        for h in hosts {
            let Some(&o) = owner.get(&h.host) else {
                owner.insert(h.host.clone(), i);
                sites[i].hosts.push(h);
                continue;
            };
            let first = sites[o].from.clone();
            if sites[i].offline && !sites[o].offline {
                let (page, code, keep) = (
                    sites[i].status_page.clone(),
                    sites[i].code.clone(),
                    sites[i].keep_uri.clone(),
                );
                let from = sites[i].from.clone();
                let o_site = &mut sites[o];
                if o_site.status_page.is_none() {
                    o_site.status_page = page;
                    o_site.code = code;
                    o_site.keep_uri = keep;
                    o_site.notes.push(Note {
                        from,
                        what: format!("the offline block for {} gives this site its status page (the online block wins)", h.host),
                        understood: true,
                    });
                }
            } else {
                sites[i].notes.push(Note {
                    from: h.from.clone(),
                    what: format!("host {} is already a host of the block at {first}", h.host),
                    understood: true,
                });
            }
        }
        if sites[i].hosts.is_empty() {
            // Everything went to other sites: keep what it said on the one that got it.
            let notes = std::mem::take(&mut sites[i].notes);
            if let Some(o) = sites
                .iter()
                .position(|s| !s.hosts.is_empty() && s.from != sites[i].from)
            {
                sites[o].notes.extend(notes);
            }
        }
    }
}

/// Names from the first label of the first host, made valid and unique.
fn name_sites(sites: &mut [Site]) {
    let mut taken = HashSet::new();
    for s in sites.iter_mut() {
        let host = &s.hosts[0].host;
        let label = host
            .split('.')
            .find(|l| *l != "*" && !l.is_empty())
            .unwrap_or("site");
        let mut base: String = label
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        base.truncate(63);
        if base.trim_matches('-').is_empty() {
            base = "site".into();
        }
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            let suffix = format!("-{n}");
            let mut b = base.clone();
            b.truncate(63 - suffix.len());
            name = format!("{b}{suffix}");
            n += 1;
        }
        taken.insert(name.clone());
        s.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Redirect;
    use super::*;

    fn addr(h: &str) -> Address {
        Address {
            host: h.into(),
            port: None,
            scheme: None,
            from: "f:1".into(),
        }
    }

    fn src(sites: Vec<SourceSite>) -> Source {
        Source {
            kind: "Caddyfile",
            path: "f".into(),
            sites,
            notes: Vec::new(),
            http_port: None,
        }
    }

    fn online(hosts: &[&str], up: &str) -> SourceSite {
        SourceSite {
            from: "f:1".into(),
            addresses: hosts.iter().map(|h| addr(h)).collect(),
            upstreams: vec![Found {
                value: up.into(),
                from: "f:2".into(),
            }],
            ..SourceSite::default()
        }
    }

    fn offline(hosts: &[&str], url: &str) -> SourceSite {
        SourceSite {
            from: "f:9".into(),
            addresses: hosts.iter().map(|h| addr(h)).collect(),
            redirect: Some(Redirect {
                url: url.into(),
                keep_uri: true,
                code: Some(307),
                from: "f:10".into(),
            }),
            ..SourceSite::default()
        }
    }

    #[test]
    fn names_are_first_labels_made_unique() {
        let p = map(
            src(vec![
                online(&["a.x"], "http://1"),
                online(&["a.y"], "http://2"),
                online(&["*.w.x"], "http://3"),
                online(&["A_B.x"], "http://4"),
            ]),
            &[],
        );
        let n: Vec<_> = p.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(n, vec!["a", "a-2", "w", "a-b"]);
    }

    #[test]
    fn online_wins_and_takes_the_offline_page() {
        let p = map(
            src(vec![
                offline(&["a.x", "b.x"], "https://s.example"),
                online(&["a.x"], "http://1"),
            ]),
            &[],
        );
        assert_eq!(p.sites.len(), 2);
        let a = p.sites.iter().find(|s| s.name == "a").unwrap();
        assert!(!a.offline);
        assert_eq!(a.status_page.as_ref().unwrap().value, "https://s.example");
        assert_eq!(a.code.as_ref().unwrap().value, 307);
        let b = p.sites.iter().find(|s| s.name == "b").unwrap();
        assert!(b.offline);
        assert!(b.left_out.is_some());
        assert_eq!(p.status_page.unwrap().value, "https://s.example");
    }

    #[test]
    fn upstream_option_fills_an_offline_site() {
        let up = vec![
            ("shop".to_string(), "http://10.0.0.6".to_string()),
            ("nope".to_string(), "http://1".to_string()),
        ];
        let p = map(src(vec![offline(&["shop.x"], "https://s.example")]), &up);
        assert_eq!(p.sites[0].upstreams[0].value, "http://10.0.0.6");
        assert!(p.sites[0].left_out.is_none());
        assert!(p
            .notes
            .iter()
            .any(|n| n.what.contains("no site is named nope")));
    }

    #[test]
    fn a_host_claimed_twice_stays_with_the_first() {
        let p = map(
            src(vec![
                online(&["a.x"], "http://1"),
                online(&["a.x", "c.x"], "http://2"),
            ]),
            &[],
        );
        assert_eq!(p.sites[1].hosts.len(), 1);
        assert!(p.sites[1].notes.iter().any(|n| n.what.contains("already")));
    }
}
