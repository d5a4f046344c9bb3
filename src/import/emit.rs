//! The import's output: the offramp config as TOML text, every carried line with a
//! comment saying where it came from and every left-out part as a comment of its own,
//! and the summary for stderr.
//!
//! Owns: the text. Decides nothing (`mapping` did).

use std::fmt::Write as _;

use super::mapping::{Plan, Site};
use super::model::Note;

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `key = value` padded, then `# comment`.
fn line(out: &mut String, prefix: &str, kv: &str, comment: &str) {
    let _ = writeln!(out, "{prefix}{kv:<44} # {}", one_line(comment));
}

/// The config text.
pub fn toml(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# offramp config imported from the {} {} by `offramp import`.",
        plan.kind, plan.path
    );
    let _ = writeln!(
        out,
        "# Each line says where it came from; \"not carried\" lines are what offramp does not do (yet).\n# Check it with: offramp check -c FILE"
    );
    out.push_str("\n[server]\n");
    line(
        &mut out,
        "",
        &format!("http = [{}]", q(&plan.http.value)),
        &plan.http.from,
    );
    if !plan.https_hosts.is_empty() {
        let _ = writeln!(
            out,
            "# Caddy served these over HTTPS with certificates it obtained itself:\n#   {}\n# offramp has no [acme] yet: put a PEM pair per name in a certs directory\n# (README \"HTTPS\"), then:\n# https = [\"0.0.0.0:443\"]\n# certs = \"/etc/offramp/certs\"\n# redirect_https = true",
            plan.https_hosts.join(", ")
        );
    }
    out.push_str("\n[maintenance]\n");
    match &plan.status_page {
        Some(p) => {
            line(
                &mut out,
                "",
                &format!("status_page = {}", q(&p.value)),
                &format!("the first offline site's, {}", p.from),
            );
            line(
                &mut out,
                "",
                "code = 302",
                "temporary redirect, as Caddy's redir",
            );
            line(
                &mut out,
                "",
                "keep_uri = true",
                "as {uri} in a redir target",
            );
        }
        None => {
            line(
                &mut out,
                "",
                "code = 503",
                "no redirect in the Caddy config says where offline visitors go: offramp's maintenance page",
            );
            out.push_str("# status_page = \"https://status.example.com\"   # or \"builtin\", with code = 302\n");
        }
    }
    for n in &plan.notes {
        note(&mut out, "", n);
    }
    for s in &plan.sites {
        out.push('\n');
        site(&mut out, s);
    }
    out
}

fn note(out: &mut String, prefix: &str, n: &Note) {
    let kind = if n.understood {
        "not carried"
    } else {
        "not understood"
    };
    let _ = writeln!(out, "{prefix}# {kind}: {} ({})", one_line(&n.what), n.from);
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn site(out: &mut String, s: &Site) {
    let p = if s.left_out.is_some() { "# " } else { "" };
    if let Some(why) = &s.left_out {
        let _ = writeln!(out, "# site {} left out: {}", s.name, why);
    }
    let _ = writeln!(out, "{p}[[site]]");
    line(
        out,
        p,
        &format!("name = {}", q(&s.name)),
        &format!("first label of {}", s.hosts[0].host),
    );
    let hosts: Vec<String> = s.hosts.iter().map(|h| q(&h.host)).collect();
    let mut from: Vec<String> = Vec::new();
    for h in &s.hosts {
        let mut f = h.from.clone();
        if let Some(port) = h.port {
            f = format!("{f}, was port {port}");
        }
        if let Some(sc) = &h.scheme {
            f = format!("{f}, was {sc}://");
        }
        if !from.contains(&f) {
            from.push(f);
        }
    }
    line(
        out,
        p,
        &format!("hosts = [{}]", hosts.join(", ")),
        &from.join("; "),
    );
    if !s.upstreams.is_empty() {
        let ups: Vec<String> = s.upstreams.iter().map(|u| q(&u.value)).collect();
        let mut from: Vec<&str> = s.upstreams.iter().map(|u| u.from.as_str()).collect();
        from.dedup();
        let value = match ups.as_slice() {
            [one] => one.clone(),
            _ => format!("[{}]", ups.join(", ")),
        };
        line(out, p, &format!("upstream = {value}"), &from.join("; "));
    }
    if let Some(v) = &s.tls_verify {
        line(
            out,
            p,
            &format!("tls_verify = {}", v.value),
            &format!("tls_insecure_skip_verify, {}", v.from),
        );
    }
    if s.offline {
        line(
            out,
            p,
            "state = \"offline\"",
            "the block only redirects to an external URL",
        );
    }
    if let Some(sp) = &s.status_page {
        line(out, p, &format!("status_page = {}", q(&sp.value)), &sp.from);
    }
    if let Some(c) = &s.code {
        line(out, p, &format!("code = {}", c.value), &c.from);
    }
    if let Some(k) = &s.keep_uri {
        line(out, p, &format!("keep_uri = {}", k.value), &k.from);
    }
    for n in &s.notes {
        note(out, "", n);
    }
}

/// The stderr summary: counts, then every part not carried or not understood.
pub fn summary(plan: &Plan) -> String {
    let mut out = String::new();
    let written = plan.sites.iter().filter(|s| s.left_out.is_none()).count();
    let offline = plan
        .sites
        .iter()
        .filter(|s| s.offline && s.left_out.is_none())
        .count();
    let left = plan.sites.len() - written;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "imported {written} site{} ({offline} offline) from {}{}",
        plural(written),
        plan.path,
        if left > 0 {
            format!("; {left} left out (commented out in the output)")
        } else {
            String::new()
        }
    );
    for s in plan.sites.iter().filter(|s| s.left_out.is_some()) {
        let _ = writeln!(
            out,
            "  left out: site {}: {}",
            s.name,
            s.left_out.as_deref().unwrap_or_default()
        );
    }
    let all: Vec<&Note> = plan
        .notes
        .iter()
        .chain(plan.sites.iter().flat_map(|s| &s.notes))
        .collect();
    let unknown: Vec<&&Note> = all.iter().filter(|n| !n.understood).collect();
    if !unknown.is_empty() {
        let _ = writeln!(out, "not understood ({}):", unknown.len());
        for n in unknown {
            let _ = writeln!(out, "  {}: {}", n.from, one_line(&n.what));
        }
    }
    let carried: Vec<&&Note> = all.iter().filter(|n| n.understood).collect();
    if !carried.is_empty() {
        let _ = writeln!(out, "not carried ({}):", carried.len());
        for n in carried {
            let _ = writeln!(out, "  {}: {}", n.from, one_line(&n.what));
        }
    }
    out
}
