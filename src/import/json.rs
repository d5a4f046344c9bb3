//! Caddy's JSON config (what `caddy adapt` prints, and the autosave.json a running
//! Caddy keeps) → [`SourceSite`]s: one per HTTP route with host matchers, its handlers
//! read through subroutes. Every other part is noted with its JSON path.
//!
//! Owns: the JSON vocabulary. The Caddyfile adapter splits a block whose addresses
//! have several ports into one route per server; routes of different servers with the
//! same handlers are put back together here, so both readers give the same sites.

use std::path::Path;

use serde_json::Value;

use super::model::{
    redirect_target, site_address, upstream_url, Address, Found, Note, Redirect, Source,
    SourceSite, NO_ACME, NO_COMPRESS, NO_LOG,
};
use super::{read_text, ImportError};

/// Reads the JSON config at `path`.
pub fn read(path: &Path) -> Result<Source, ImportError> {
    from_text(&read_text(path)?, path)
}

/// Reads JSON `text`, read from `path`.
fn from_text(text: &str, path: &Path) -> Result<Source, ImportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ImportError::at(path, e.line().max(1), format!("not valid JSON: {e}")))?;
    let Some(top) = root.as_object() else {
        return Err(ImportError::at(
            path,
            1,
            "not a Caddy JSON config: expected an object at the top",
        ));
    };
    let mut source = Source {
        kind: "Caddy JSON",
        path: path.display().to_string(),
        sites: Vec::new(),
        notes: Vec::new(),
        http_port: None,
    };
    for key in top.keys() {
        // `logging` is read with each server's logger_names.
        if key != "apps" && key != "logging" {
            note(
                &mut source.notes,
                key,
                format!("{key}: Caddy's own, not carried"),
            );
        }
    }
    let apps = top.get("apps").and_then(Value::as_object);
    for (name, app) in apps.into_iter().flatten() {
        let at = format!("apps.{name}");
        match name.as_str() {
            "http" => http(&mut source, app, &root),
            "tls" => tls(&mut source.notes, app, &at),
            other => note(
                &mut source.notes,
                &at,
                format!("Caddy app {other}: not carried"),
            ),
        }
    }
    Ok(source)
}

fn note(notes: &mut Vec<Note>, from: &str, what: String) {
    notes.push(Note {
        from: from.to_string(),
        what,
        understood: true,
    });
}

fn tls(notes: &mut Vec<Note>, app: &Value, at: &str) {
    let policies = app
        .pointer("/automation/policies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, p) in policies.iter().enumerate() {
        let subjects: Vec<&str> = p
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let dns = p
            .get("issuers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|is| {
                is.pointer("/challenges/dns/provider/name")
                    .and_then(Value::as_str)
            })
            .map(|n| format!(" (DNS challenge: {n})"))
            .unwrap_or_default();
        note(
            notes,
            &format!("{at}.automation.policies[{i}]"),
            format!("certificates for {}{dns}: {NO_ACME}", subjects.join(", ")),
        );
    }
    if policies.is_empty() {
        note(notes, at, format!("tls app: {NO_ACME}"));
    }
}

fn http(source: &mut Source, app: &Value, root: &Value) {
    let port_of = |key: &str| {
        app.get(key)
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    let http_port = port_of("http_port");
    let https_port = port_of("https_port").unwrap_or(443);
    if let Some(p) = http_port {
        source.http_port = Some(Found {
            value: p,
            from: "apps.http.http_port".into(),
        });
    }
    let http_port = http_port.unwrap_or(80);
    for key in app.as_object().into_iter().flat_map(|o| o.keys()) {
        if !["servers", "http_port", "https_port"].contains(&key.as_str()) {
            note(
                &mut source.notes,
                &format!("apps.http.{key}"),
                format!("http option {key}: not carried"),
            );
        }
    }
    let servers = app.get("servers").and_then(Value::as_object);
    // (server, handlers as text, index in source.sites): to merge one block's ports.
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for (sname, srv) in servers.into_iter().flatten() {
        let at = format!("apps.http.servers.{sname}");
        let ports: Vec<u16> = srv
            .get("listen")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .collect();
        let port = ports.first().copied();
        let scheme = (port == Some(http_port)).then(|| "http".to_string());
        let port = port.filter(|p| *p != http_port && *p != https_port);
        let routes = srv.get("routes").and_then(Value::as_array);
        for (i, route) in routes.into_iter().flatten().enumerate() {
            let rat = format!("{at}.routes[{i}]");
            let hosts = route_hosts(route, &rat, &mut source.notes);
            if hosts.is_empty() {
                note(&mut source.notes, &rat, "a route without a host matcher (Caddy serves it for any host): offramp sites need host names".into());
                continue;
            }
            let mut addresses: Vec<Address> = Vec::new();
            for h in &hosts {
                match site_address(h, &format!("{rat}.match")) {
                    Ok(a) => addresses.push(Address {
                        port,
                        scheme: scheme.clone(),
                        ..a
                    }),
                    Err(e) => note(&mut source.notes, &format!("{rat}.match"), e),
                }
            }
            if addresses.is_empty() {
                continue;
            }
            let key = route
                .get("handle")
                .map(Value::to_string)
                .unwrap_or_default();
            if let Some((_, _, idx)) = seen.iter().find(|(s, k, _)| s != sname && *k == key) {
                source.sites[*idx].addresses.extend(addresses);
                continue;
            }
            let mut site = SourceSite {
                from: rat.clone(),
                addresses,
                ..SourceSite::default()
            };
            handlers(&mut site, route.get("handle"), &format!("{rat}.handle"));
            seen.push((sname.clone(), key, source.sites.len()));
            source.sites.push(site);
        }
        for (host, logger) in srv
            .pointer("/logs/logger_names")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(logger) = logger.as_str() else {
                continue;
            };
            let file = root
                .pointer(&format!("/logging/logs/{logger}/writer/filename"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let h = host.to_ascii_lowercase();
            if let Some(s) = source
                .sites
                .iter_mut()
                .find(|s| s.addresses.iter().any(|a| a.host == h))
            {
                s.note(
                    &format!("logging.logs.{logger}"),
                    format!("{NO_LOG}: log to {file}"),
                );
            }
        }
        for key in srv.as_object().into_iter().flat_map(|o| o.keys()) {
            if !["listen", "routes", "logs", "automatic_https"].contains(&key.as_str()) {
                note(
                    &mut source.notes,
                    &format!("{at}.{key}"),
                    format!("server option {key}: not carried"),
                );
            }
        }
    }
}

/// The host names of a route's matchers; other matchers are noted.
fn route_hosts(route: &Value, at: &str, notes: &mut Vec<Note>) -> Vec<String> {
    let mut hosts = Vec::new();
    for (k, set) in route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (name, v) in set.as_object().into_iter().flatten() {
            if name == "host" {
                hosts.extend(
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(String::from),
                );
            } else {
                note(
                    notes,
                    &format!("{at}.match[{k}].{name}"),
                    format!("matcher {name}: offramp routes by host name only"),
                );
            }
        }
    }
    hosts
}

fn handlers(s: &mut SourceSite, list: Option<&Value>, at: &str) {
    for (i, h) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let hat = format!("{at}[{i}]");
        let kind = h.get("handler").and_then(Value::as_str).unwrap_or("");
        match kind {
            "subroute" => {
                for (k, r) in h
                    .get("routes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let rat = format!("{hat}.routes[{k}]");
                    if r.get("match").is_some() {
                        s.note(&rat, "a route with matchers inside a site (a path or other condition): not carried");
                        continue;
                    }
                    handlers(s, r.get("handle"), &format!("{rat}.handle"));
                }
            }
            "reverse_proxy" => reverse_proxy(s, h, &hat),
            "static_response" => static_response(s, h, &hat),
            "encode" => {
                let enc: Vec<&str> = h
                    .get("encodings")
                    .and_then(Value::as_object)
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                s.note(&hat, format!("{NO_COMPRESS}: encode {}", enc.join(" ")));
            }
            "headers" => s.note(&hat, "headers: offramp does not rewrite headers"),
            other => s.unknown(&hat, format!("handler {other}")),
        }
    }
}

fn reverse_proxy(s: &mut SourceSite, h: &Value, at: &str) {
    if !s.upstreams.is_empty() {
        s.note(at, "a second reverse_proxy: only the first is carried");
        return;
    }
    let tls = h.pointer("/transport/tls");
    if let Some(p) = h.pointer("/transport/protocol").and_then(Value::as_str) {
        if p != "http" {
            s.note(at, format!("transport {p}: offramp speaks HTTP only"));
            return;
        }
    }
    if tls
        .and_then(|t| t.get("insecure_skip_verify"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        s.tls_verify = Some(Found {
            value: false,
            from: format!("{at}.transport.tls.insecure_skip_verify"),
        });
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    for (i, u) in h
        .get("upstreams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let uat = format!("{at}.upstreams[{i}]");
        let Some(dial) = u.get("dial").and_then(Value::as_str) else {
            s.note(&uat, "an upstream without dial: not carried");
            continue;
        };
        match upstream_url(&format!("{scheme}://{dial}")) {
            Ok(value) => s.upstreams.push(Found {
                value,
                from: format!("reverse_proxy, {at}.upstreams"),
            }),
            Err(e) => s.note(&uat, e),
        }
    }
    for key in h.as_object().into_iter().flat_map(|o| o.keys()) {
        if !["handler", "upstreams", "transport"].contains(&key.as_str()) {
            s.note(
                &format!("{at}.{key}"),
                format!("reverse_proxy {key}: not carried"),
            );
        }
    }
    if s.upstreams.is_empty() {
        s.note(at, "reverse_proxy without an upstream offramp can use");
    }
}

fn static_response(s: &mut SourceSite, h: &Value, at: &str) {
    let code = match h.get("status_code") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(t)) => t.parse().ok(),
        _ => None,
    };
    let location = h.pointer("/headers/Location/0").and_then(Value::as_str);
    let (Some(to), Some(c)) = (location, code.filter(|c| (300..400).contains(c))) else {
        s.note(
            at,
            "static_response (respond): offramp answers by proxying or with the status page only",
        );
        return;
    };
    let (url, keep_uri) = match redirect_target(to) {
        Ok(t) => t,
        Err(e) => {
            s.note(at, e);
            return;
        }
    };
    let code = match c {
        302 | 307 => Some(c as u16),
        other => {
            s.note(at, format!("redir code {other}: offline redirects are 302 or 307 in offramp; [maintenance] code applies"));
            None
        }
    };
    if s.redirect.is_some() {
        s.note(at, "a second redirect: only the first is carried");
        return;
    }
    s.redirect = Some(Redirect {
        url,
        keep_uri,
        code,
        from: at.to_string(),
    });
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
