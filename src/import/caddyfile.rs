//! A Caddyfile's meaning for offramp: site blocks → [`SourceSite`]s. Reads the
//! directives home-lab Caddyfiles use (`reverse_proxy`, `redir`, `encode`, `log`,
//! `tls`, `respond`, `header`) and notes every other one with its file and line.
//!
//! Owns: the Caddyfile directive vocabulary. Does not tokenize (`lexer`), expand
//! (`expand`) or decide sites (`mapping`).

use std::path::Path;

use super::lexer::Token;
use super::model::{
    redirect_target, site_address, upstream_url, Found, Note, Redirect, Source, SourceSite,
    NO_ACME, NO_COMPRESS, NO_LOG,
};
use super::parse::{parse, Directive, SiteBlock};
use super::{expand, ImportError};

/// Reads the Caddyfile at `path` with everything it imports.
pub fn read(path: &Path) -> Result<Source, ImportError> {
    let (tokens, notes) = expand::load(path)?;
    let file = parse(&tokens)?;
    let mut source = Source {
        kind: "Caddyfile",
        path: path.display().to_string(),
        sites: Vec::new(),
        notes,
        http_port: None,
    };
    for d in &file.global {
        global_option(&mut source, d);
    }
    for block in &file.sites {
        source.sites.push(site(block));
    }
    Ok(source)
}

/// `file:line`, and the imports it came through, innermost first.
fn from(t: &Token) -> String {
    let mut out = t.loc.to_string();
    let mut via = t.via.as_deref();
    let mut first = true;
    while let Some(v) = via {
        out.push_str(if first { " via " } else { ", " });
        out.push_str(&format!("import {} at {}", v.name, v.loc));
        first = false;
        via = v.parent.as_deref();
    }
    out
}

fn global_option(source: &mut Source, d: &Directive) {
    let at = from(&d.name);
    let args = d.arg_texts().join(" ");
    let note = |what: String| Note {
        from: at.clone(),
        what,
        understood: true,
    };
    match d.name.text.as_str() {
        "http_port" => match args.parse::<u16>() {
            Ok(p) => {
                source.http_port = Some(Found {
                    value: p,
                    from: at.clone(),
                })
            }
            Err(_) => source
                .notes
                .push(note(format!("global option http_port {args}: not a port"))),
        },
        "email" | "acme_dns" | "acme_ca" | "acme_ca_root" | "acme_eab" | "cert_issuer"
        | "local_certs" | "on_demand_tls" | "key_type" | "skip_install_trust" | "https_port"
        | "auto_https" | "default_sni" | "storage" => source.notes.push(note(format!(
            "global option {} {args}: {NO_ACME}",
            d.name.text
        ))),
        "admin"
        | "debug"
        | "grace_period"
        | "shutdown_delay"
        | "log"
        | "servers"
        | "order"
        | "persist_config"
        | "storage_clean_interval"
        | "renew_interval" => source.notes.push(note(format!(
            "global option {} {args}: Caddy's own, not carried",
            d.name.text
        ))),
        other => source.notes.push(Note {
            from: at.clone(),
            what: format!("global option {other} {args}"),
            understood: false,
        }),
    }
}

fn site(block: &SiteBlock) -> SourceSite {
    let first = block.addresses.first();
    let mut s = SourceSite {
        from: first.map(from).unwrap_or_default(),
        ..SourceSite::default()
    };
    for a in &block.addresses {
        match site_address(&a.text, &from(a)) {
            Ok(addr) => s.addresses.push(addr),
            Err(e) => s.note(&from(a), e),
        }
    }
    s.hint = first.and_then(|a| hint(a, &s));
    for d in &block.body {
        directive(&mut s, d);
    }
    s
}

/// The snippet argument that names the upstream: of the arguments of the import the
/// block came from, the first that is not part of a host name and reads as HOST[:PORT].
fn hint(address: &Token, s: &SourceSite) -> Option<Found<String>> {
    let via = address.via.as_ref()?;
    let used = |a: &str| {
        s.addresses
            .iter()
            .any(|h| h.host.contains(&a.to_ascii_lowercase()))
    };
    via.args
        .iter()
        .filter(|a| !a.is_empty() && !used(a))
        .filter(|a| a.contains('.') || a.contains(':'))
        .find_map(|a| upstream_url(a).ok().map(|u| (a, u)))
        .map(|(a, value)| Found {
            value,
            from: format!("argument {a} of import {} at {}", via.name, via.loc),
        })
}

/// A matcher as a directive's first argument (`/api/*`, `@name`, `*`).
fn is_matcher(t: &Token) -> bool {
    !t.quoted && (t.text.starts_with('/') || t.text.starts_with('@') || t.text == "*")
}

fn directive(s: &mut SourceSite, d: &Directive) {
    let at = from(&d.name);
    let args = d.arg_texts().join(" ");
    let line = if args.is_empty() {
        d.name.text.clone()
    } else {
        format!("{} {args}", d.name.text)
    };
    match d.name.text.as_str() {
        "reverse_proxy" => reverse_proxy(s, d, &at),
        "redir" => redir(s, d, &at),
        "encode" => s.note(&at, format!("{NO_COMPRESS}: {line}")),
        "log" => s.note(&at, format!("{NO_LOG}: {}", describe_log(d))),
        "tls" => {
            let dns = d.block.iter().find(|b| b.name.text == "dns").map(|b| {
                format!(
                    " (DNS challenge: dns {})",
                    b.args.first().map_or("", |t| t.text.as_str())
                )
            });
            s.note(&at, format!("{line}{}: {NO_ACME}", dns.unwrap_or_default()));
        }
        "respond" => s.note(
            &at,
            format!("{line}: offramp answers by proxying or with the status page only"),
        ),
        "header" => s.note(&at, format!("{line}: offramp does not rewrite headers")),
        name if name.starts_with('@') => s.note(
            &at,
            format!("named matcher {name}: offramp routes by host name only"),
        ),
        _ => s.unknown(&at, format!("directive {line}")),
    }
}

fn reverse_proxy(s: &mut SourceSite, d: &Directive, at: &str) {
    if d.args.first().is_some_and(is_matcher) {
        let m = &d.args[0].text;
        s.note(
            at,
            format!(
                "reverse_proxy {m} …: a matcher cannot be carried (offramp proxies whole sites)"
            ),
        );
        return;
    }
    if !s.upstreams.is_empty() {
        s.note(at, "a second reverse_proxy: only the first is carried");
        return;
    }
    let mut targets: Vec<&Token> = d.args.iter().collect();
    let mut tls = false;
    for sub in &d.block {
        let sat = from(&sub.name);
        match sub.name.text.as_str() {
            "to" => targets.extend(sub.args.iter()),
            "transport" => {
                if sub.args.first().map(|t| t.text.as_str()) != Some("http") {
                    s.note(
                        &sat,
                        format!(
                            "transport {}: offramp speaks HTTP only",
                            sub.arg_texts().join(" ")
                        ),
                    );
                    continue;
                }
                for opt in &sub.block {
                    let oat = from(&opt.name);
                    match opt.name.text.as_str() {
                        "tls" => tls = true,
                        "tls_insecure_skip_verify" => {
                            tls = true;
                            s.tls_verify = Some(Found {
                                value: false,
                                from: oat,
                            });
                        }
                        other => s.note(&oat, format!("transport http {other}: not carried")),
                    }
                }
            }
            other => s.note(
                &sat,
                format!(
                    "reverse_proxy {other} {}: not carried",
                    sub.arg_texts().join(" ")
                ),
            ),
        }
    }
    for t in targets {
        let text = if tls && !t.text.contains("://") {
            format!("https://{}", t.text)
        } else {
            t.text.clone()
        };
        match upstream_url(&text) {
            Ok(u) => s.upstreams.push(Found {
                value: u,
                from: format!("reverse_proxy, {}", from(t)),
            }),
            Err(e) => s.note(&from(t), e),
        }
    }
    if s.upstreams.is_empty() {
        s.note(at, "reverse_proxy without an upstream offramp can use");
    }
}

fn redir(s: &mut SourceSite, d: &Directive, at: &str) {
    let a = d.arg_texts();
    if d.args.len() >= 2 && is_matcher(&d.args[0]) {
        s.note(
            at,
            format!(
                "redir {}: a redirect of some paths only cannot be carried",
                a.join(" ")
            ),
        );
        return;
    }
    let Some(&to) = a.first() else {
        s.note(at, "redir without a target");
        return;
    };
    let (url, keep_uri) = match redirect_target(to) {
        Ok(t) => t,
        Err(e) => {
            s.note(at, e);
            return;
        }
    };
    let code = match a.get(1).copied() {
        None | Some("temporary") | Some("302") => Some(302),
        Some("307") => Some(307),
        Some(other) => {
            s.note(
                at,
                format!("redir code {other}: offline redirects are 302 or 307 in offramp; [maintenance] code applies"),
            );
            None
        }
    };
    if s.redirect.is_some() {
        s.note(at, "a second redir: only the first is carried");
        return;
    }
    s.redirect = Some(Redirect {
        url,
        keep_uri,
        code,
        from: at.to_string(),
    });
}

/// `log { output file X { roll_keep 7 } format json }` in a few words.
fn describe_log(d: &Directive) -> String {
    let mut parts = Vec::new();
    for sub in &d.block {
        let mut p = format!("{} {}", sub.name.text, sub.arg_texts().join(" "));
        let inner: Vec<String> = sub
            .block
            .iter()
            .map(|o| {
                format!("{} {}", o.name.text, o.arg_texts().join(" "))
                    .trim()
                    .to_string()
            })
            .collect();
        if !inner.is_empty() {
            p.push_str(&format!(" ({})", inner.join(", ")));
        }
        parts.push(p.trim().to_string());
    }
    if parts.is_empty() {
        "log".to_string()
    } else {
        format!("log {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn one(text: &str) -> SourceSite {
        let tokens = tokenize(text, Path::new("Caddyfile")).unwrap();
        site(&parse(&tokens).unwrap().sites[0])
    }

    fn notes(s: &SourceSite) -> Vec<String> {
        s.notes
            .iter()
            .map(|n| format!("{}: {}", n.from, n.what))
            .collect()
    }

    #[test]
    fn reverse_proxy_with_to_and_a_tls_transport() {
        let s = one("a.example {\n reverse_proxy {\n  to 10.0.0.1:8443 10.0.0.2:8443\n  lb_policy first\n  transport http {\n   tls\n   keepalive 30s\n  }\n }\n}\n");
        let ups: Vec<&str> = s.upstreams.iter().map(|u| u.value.as_str()).collect();
        assert_eq!(ups, vec!["https://10.0.0.1:8443", "https://10.0.0.2:8443"]);
        assert_eq!(s.tls_verify, None);
        let n = notes(&s);
        assert!(
            n.contains(&"Caddyfile:4: reverse_proxy lb_policy first: not carried".to_string()),
            "{n:?}"
        );
        assert!(
            n.contains(&"Caddyfile:7: transport http keepalive: not carried".to_string()),
            "{n:?}"
        );
    }

    #[test]
    fn matchers_and_second_proxies_are_reported() {
        let s = one("a.example {\n reverse_proxy /api/* 10.0.0.9\n reverse_proxy 10.0.0.1\n reverse_proxy 10.0.0.2\n redir /old /new\n}\n");
        assert_eq!(s.upstreams.len(), 1);
        assert_eq!(s.upstreams[0].value, "http://10.0.0.1");
        let n = notes(&s).join("\n");
        assert!(n.contains("Caddyfile:2: reverse_proxy /api/*"), "{n}");
        assert!(n.contains("Caddyfile:4: a second reverse_proxy"), "{n}");
        assert!(
            n.contains("Caddyfile:5: redir /old /new: a redirect of some paths only"),
            "{n}"
        );
        assert!(s.redirect.is_none());
    }

    #[test]
    fn redirect_codes() {
        for (code, want) in [
            ("", Some(302)),
            (" temporary", Some(302)),
            (" 307", Some(307)),
            (" permanent", None),
            (" 308", None),
            (" html", None),
        ] {
            let s = one(&format!(
                "a.example {{\n redir https://s.example{{uri}}{code}\n}}\n"
            ));
            let r = s.redirect.expect("a redirect");
            assert_eq!(r.code, want, "{code}");
            assert!(r.keep_uri);
        }
    }

    #[test]
    fn tls_dns_log_encode_header_respond_and_unknown() {
        let s = one("a.example {\n tls {\n  dns cloudflare {env.CF}\n }\n log {\n  output file /var/log/a.log {\n   roll_size 10MiB\n   roll_keep 7\n  }\n  format json\n }\n encode zstd gzip\n header X-A b\n respond \"hi\" 200\n file_server\n @api path /api/*\n}\n");
        let n = notes(&s).join("\n");
        assert!(n.contains("Caddyfile:2: tls (DNS challenge: dns cloudflare): automatic certificates (offramp has no [acme] yet"), "{n}");
        assert!(n.contains("Caddyfile:5: per-site log file (offramp has no per-site log key yet): log output file /var/log/a.log (roll_size 10MiB, roll_keep 7); format json"), "{n}");
        assert!(
            n.contains(
                "Caddyfile:12: compression (offramp has no compress key yet): encode zstd gzip"
            ),
            "{n}"
        );
        assert!(n.contains("Caddyfile:13: header X-A b"), "{n}");
        assert!(n.contains("Caddyfile:14: respond hi 200"), "{n}");
        assert!(n.contains("Caddyfile:16: named matcher @api"), "{n}");
        let unknown: Vec<_> = s.notes.iter().filter(|n| !n.understood).collect();
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].what, "directive file_server");
    }
}
