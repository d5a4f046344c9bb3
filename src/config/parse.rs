//! TOML text → validated `Config`, collecting every error with its line.
//!
//! The document is walked by hand over toml's spanned parse tree rather than through
//! serde, so that one pass reports all problems (unknown keys, wrong types, bad values,
//! cross-site conflicts) instead of stopping at the first. This file walks the top
//! level and assembles the result; each section's keys are read in `server`,
//! `maintenance`, `site`, `status`, `notify`, `smtp` and the like, the checks
//! across sections are in `validate`, and the value readers in `reader`.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::maintenance::parse_maintenance;
use super::reader::{Ctx, KeySpans};
use super::server::{parse_demo, parse_server};
use super::site::parse_site;
use super::status::parse_status;
use super::validate::{check_sites, check_tls, check_whole};
use super::{Config, ConfigErrors, Pin};

/// Parses and validates `text` read from `file`; `pin` overwrites `[server]` and
/// `[demo]` values before any check runs.
pub(super) fn parse(text: &str, file: &Path, pin: Option<Pin<'_>>) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        file,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        errors: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let (_, errs) = DeTable::parse_recoverable(text);
            let errs = if errs.is_empty() { vec![e] } else { errs };
            for e in errs {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                ctx.err(&span, "", format!("TOML syntax error: {msg}"));
            }
            return Err(ConfigErrors(ctx.errors));
        }
    };

    let mut server = None;
    let mut maintenance = None;
    let mut sites = Vec::new();
    let mut status = None;
    let mut demo = None;
    let mut components = Vec::new();
    let mut api = None;
    let mut alerts = None;
    let mut notify = Vec::new();
    let mut smtp = None;
    for (k, v) in root.get_ref().iter() {
        match k.get_ref().as_ref() {
            "server" => {
                server = ctx
                    .table("server", v)
                    .map(|t| parse_server(&mut ctx, t, file))
            }
            "maintenance" => {
                maintenance = ctx
                    .table("maintenance", v)
                    .map(|t| parse_maintenance(&mut ctx, t))
            }
            "site" => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("site[{}]", i + 1);
                        if let Some(t) = ctx.table(&key, item) {
                            sites.push(parse_site(&mut ctx, t, &key, item.span()));
                        }
                    }
                }
                _ => ctx.err(&v.span(), "site", "sites are written as [[site]] tables"),
            },
            "component" => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("component[{}]", i + 1);
                        if let Some(t) = ctx.table(&key, item) {
                            components.push(super::component::parse_component(
                                &mut ctx,
                                t,
                                &key,
                                item.span(),
                            ));
                        }
                    }
                }
                _ => ctx.err(
                    &v.span(),
                    "component",
                    "components are written as [[component]] tables",
                ),
            },
            "notify" => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("notify[{}]", i + 1);
                        if let Some(t) = ctx.table(&key, item) {
                            notify.push(super::notify::parse_notify(
                                &mut ctx,
                                t,
                                &key,
                                item.span(),
                                file,
                            ));
                        }
                    }
                }
                _ => ctx.err(
                    &v.span(),
                    "notify",
                    "notification targets are written as [[notify]] tables",
                ),
            },
            "smtp" => {
                smtp = ctx
                    .table("smtp", v)
                    .and_then(|t| super::smtp::parse_smtp(&mut ctx, t, v.span(), file))
            }
            "status" => status = ctx.table("status", v).map(|t| parse_status(&mut ctx, t)),
            "api" => {
                api = ctx
                    .table("api", v)
                    .map(|t| super::api::parse_api(&mut ctx, t, file))
            }
            "alerts" => {
                alerts = ctx
                    .table("alerts", v)
                    .map(|t| super::health::parse_alerts(&mut ctx, t))
            }
            "demo" => {
                demo = ctx
                    .table("demo", v)
                    .and_then(|t| parse_demo(&mut ctx, t, v.span()))
            }
            other => ctx.unknown(
                other,
                &k.span(),
                &[
                    "server",
                    "maintenance",
                    "site",
                    "component",
                    "status",
                    "api",
                    "alerts",
                    "notify",
                    "smtp",
                    "demo",
                ],
            ),
        }
    }
    let mut server = server.unwrap_or_else(|| parse_server(&mut ctx, &DeTable::new(), file));
    if let Some(pin) = pin {
        pin(&mut server, &mut demo);
    }
    let maintenance = maintenance.unwrap_or_else(|| parse_maintenance(&mut ctx, &DeTable::new()));

    let (status, status_spans) = status.unzip();
    let status_spans = status_spans.unwrap_or_default();
    let status_with_spans = status.as_ref().map(|s| (s, &status_spans));
    let mut sites = check_sites(&mut ctx, sites);
    super::component::check_components(&mut ctx, sites.iter().map(|(s, _)| s), &components);
    super::notify::check_notify(
        &mut ctx,
        &notify,
        sites
            .iter()
            .map(|(s, _)| s.name.as_str())
            .chain(components.iter().map(|(c, _)| c.name.as_str())),
    );
    let spans = KeySpans(root.get_ref());
    check_whole(
        &mut ctx,
        &spans,
        &server,
        &maintenance,
        &sites,
        status_with_spans,
        demo.as_ref(),
    );

    if api.is_some() && server.admin.is_none() {
        ctx.err_key(
            spans.get("api", "tokens"),
            "api.tokens",
            "the write API is served on the admin listener only: set [server] admin",
        );
    }
    if server.admin_tls && (server.admin.is_none() || server.https.is_empty()) {
        ctx.err_key(
            spans.get("server", "admin_tls"),
            "server.admin_tls",
            "admin_tls serves the admin listener with offramp's certificates: it needs [server] admin and HTTPS listeners with certs",
        );
    }
    if !server.health_checks {
        for (s, _) in &mut sites {
            s.health = None;
        }
    }
    let mut warnings = Vec::new();
    let tls = check_tls(
        &mut ctx,
        &spans,
        &server,
        &sites,
        status_with_spans,
        &mut warnings,
    );

    if !ctx.errors.is_empty() {
        ctx.errors.sort_by_key(|e| e.line);
        return Err(ConfigErrors(ctx.errors));
    }
    Ok(Config {
        file: file.to_path_buf(),
        server,
        maintenance,
        sites: sites.into_iter().map(|(s, _)| s).collect(),
        components: components.into_iter().map(|(c, _)| c).collect(),
        api,
        alerts: alerts.unwrap_or_default(),
        notify: notify.into_iter().map(|(n, _)| n).collect(),
        smtp,
        status,
        demo,
        tls,
        warnings,
    })
}
