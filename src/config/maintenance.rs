//! `[maintenance]`: what offline visitors get (the status page they are sent to, the
//! status code, whether their path is kept), and the `status_page` value sites share.
//! Whether every site has a page to be sent to is checked in `validate`.

use toml::de::DeTable;

use super::reader::{Ctx, Value};
use super::{Maintenance, OfflineCode, StatusPage, StatusUrl};

const MAINTENANCE_KEYS: &[&str] = &["status_page", "code", "keep_uri", "bypass"];

/// A `bypass` list: networks or addresses (a single string is a list of one).
pub(super) fn parse_bypass(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Vec<super::Net> {
    let mut out = Vec::new();
    for (s, span) in ctx.strings(key, v).unwrap_or_default() {
        match super::Net::parse(&s) {
            Ok(n) if out.contains(&n) => ctx.err(&span, key, format!("{n} is listed twice")),
            Ok(n) => out.push(n),
            Err(e) => ctx.err(&span, key, e),
        }
    }
    out
}

/// A `status_page` value: `"builtin"` or a URL.
pub(super) fn parse_status_page(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<StatusPage> {
    let s = ctx.string(key, v)?;
    if s == "builtin" {
        return Some(StatusPage::Builtin);
    }
    match StatusUrl::parse(&s) {
        Ok(u) => Some(StatusPage::Url(u)),
        Err(e) => {
            ctx.err(&v.span(), key, e);
            None
        }
    }
}

/// `[maintenance]`, defaults filled in.
pub(super) fn parse_maintenance(ctx: &mut Ctx<'_>, t: &DeTable<'_>) -> Maintenance {
    let mut m = Maintenance {
        status_page: None,
        code: OfflineCode::Found,
        keep_uri: true,
        bypass: Vec::new(),
    };
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("maintenance.{name}");
        match name {
            "status_page" => m.status_page = parse_status_page(ctx, &key, v),
            "code" => m.code = parse_code(ctx, &key, v).unwrap_or(OfflineCode::Found),
            "keep_uri" => m.keep_uri = ctx.boolean(&key, v).unwrap_or(true),
            "bypass" => m.bypass = parse_bypass(ctx, &key, v),
            _ => ctx.unknown(&key, &k.span(), MAINTENANCE_KEYS),
        }
    }
    m
}

/// `code`: 302, 307 or 503 (in `[maintenance]` and on a site).
pub(super) fn parse_code(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<OfflineCode> {
    match ctx.integer(key, v)? {
        302 => Some(OfflineCode::Found),
        307 => Some(OfflineCode::Temporary),
        503 => Some(OfflineCode::Unavailable),
        other => {
            ctx.err(
                &v.span(),
                key,
                format!("must be 302, 307 or 503, got {other}"),
            );
            None
        }
    }
}
