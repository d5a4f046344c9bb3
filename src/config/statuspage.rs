//! The keys only a `format = "statuspage"` `[[notify]]` target takes (CONTRACT section
//! 11): `page_id`, `api_key_file` (read with `api::read_secret`, a secret) and
//! `components`, the mapping of offramp's sites and components to Statuspage
//! component IDs. `notify` reads the rest of the table and hands these over once the
//! format is known; that the mapping names sites or components is checked there
//! (`check_notify`). Mirroring to Statuspage is `notify`'s (the delivery module).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::api::{read_secret, Secret};
use super::reader::Ctx;
use super::resolve_path;

/// `url` of a `format = "statuspage"` target that does not set one.
pub const STATUSPAGE_API: &str = "https://api.statuspage.io/v1";

/// What a `format = "statuspage"` target mirrors to.
#[derive(Debug, Clone, PartialEq)]
pub struct Statuspage {
    /// `page_id`: letters and digits.
    pub page_id: String,
    /// The content of `api_key_file` (sent as `Authorization: OAuth KEY`).
    pub api_key: Secret,
    /// `components`: offramp site or component name → Statuspage component ID
    /// (letters and digits). Only these are mirrored.
    pub components: BTreeMap<String, String>,
}

/// A Statuspage ID: letters and digits (it goes into a URL path).
pub(super) fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The statuspage keys of a `format = "statuspage"` target (`Err(true)`: written, with
/// a value already reported bad; `Err(false)`: not written).
pub(super) fn parse_statuspage(
    ctx: &mut Ctx<'_>,
    prefix: &str,
    table: &Range<usize>,
    file: &Path,
    page_id: Result<(String, Range<usize>), bool>,
    api_key_file: Result<(String, Range<usize>), bool>,
    components: Option<(BTreeMap<String, String>, Range<usize>)>,
) -> Option<Statuspage> {
    let page_id = match page_id {
        Ok((id, _)) if valid_id(&id) => Some(id),
        Ok((id, span)) => {
            ctx.err(
                &span,
                &format!("{prefix}.page_id"),
                format!("{id:?} is not a Statuspage page ID (letters and digits)"),
            );
            None
        }
        Err(true) => None,
        Err(false) => {
            ctx.err(
                table,
                &format!("{prefix}.page_id"),
                "missing: format = \"statuspage\" needs page_id (the page's ID)",
            );
            None
        }
    };
    let api_key = match api_key_file {
        Ok((p, span)) => match read_secret(&resolve_path(file, &p), "API key file") {
            Ok(k) => Some(k),
            Err(e) => {
                ctx.err(&span, &format!("{prefix}.api_key_file"), e);
                None
            }
        },
        Err(true) => None,
        Err(false) => {
            ctx.err(
                table,
                &format!("{prefix}.api_key_file"),
                "missing: format = \"statuspage\" needs api_key_file (a file holding the API key)",
            );
            None
        }
    };
    Some(Statuspage {
        page_id: page_id?,
        api_key: api_key?,
        components: components.map(|(c, _)| c).unwrap_or_default(),
    })
}
