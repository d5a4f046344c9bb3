//! `[[component]]` (status-page components with no proxy behind them: mail, VPN) and
//! the `group` key that sites and components share. That component names are unique
//! among sites and components is checked here too, once every site is read.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::DeTable;

use super::reader::{Ctx, Value};
use super::{Component, Site};

const COMPONENT_KEYS: &[&str] = &["name", "description", "group"];

/// A `group` value: 1 to 100 characters, not blank.
pub(super) fn parse_group(ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>) -> Option<String> {
    let g = ctx.string(key, v)?;
    if g.trim().is_empty() || g.chars().count() > 100 || g.chars().any(char::is_control) {
        ctx.err(
            &v.span(),
            key,
            "must be 1 to 100 characters, no control characters",
        );
        return None;
    }
    Some(g)
}

/// One `[[component]]` table (keys named `prefix.key`).
pub(super) fn parse_component(
    ctx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    prefix: &str,
    table: Range<usize>,
) -> (Component, Range<usize>) {
    let mut c = Component {
        name: String::new(),
        description: None,
        group: None,
    };
    let mut name_span = table.clone();
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("{prefix}.{name}");
        match name {
            "name" => {
                name_span = v.span();
                if let Some(n) = ctx.string(&key, v) {
                    let ok = (1..=63).contains(&n.len())
                        && n.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !ok {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!(
                                "{n:?} is not a valid component name: use 1 to 63 of a-z, 0-9 and -"
                            ),
                        );
                    }
                    c.name = n;
                }
            }
            "description" => {
                if let Some(d) = ctx.string(&key, v) {
                    if d.chars().count() > 500 {
                        ctx.err(&v.span(), &key, "must be at most 500 characters");
                    } else {
                        c.description = Some(d);
                    }
                }
            }
            "group" => c.group = parse_group(ctx, &key, v),
            _ => ctx.unknown(&key, &k.span(), COMPONENT_KEYS),
        }
    }
    if c.name.is_empty() {
        ctx.err(
            &table,
            &format!("{prefix}.name"),
            "missing: every component needs a name",
        );
    }
    (c, name_span)
}

/// Component names are unique among sites and components.
pub(super) fn check_components<'a>(
    ctx: &mut Ctx<'_>,
    sites: impl Iterator<Item = &'a Site>,
    components: &'a [(Component, Range<usize>)],
) {
    let mut seen: HashMap<&str, String> = sites
        .map(|s| (s.name.as_str(), format!("site {:?}", s.name)))
        .collect();
    for (i, (c, span)) in components.iter().enumerate() {
        if c.name.is_empty() {
            continue;
        }
        let key = format!("component[{}].name", i + 1);
        if let Some(other) = seen.get(c.name.as_str()) {
            ctx.err(
                span,
                &key,
                format!("name {:?} is already used by {other}", c.name),
            );
        } else {
            seen.insert(&c.name, format!("component[{}]", i + 1));
        }
    }
}
