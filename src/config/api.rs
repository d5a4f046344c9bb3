//! `[api]`: the write API's bearer tokens, one per file (`tokens = ["/etc/offramp/
//! api.token"]`). Each file holds one token: its content without surrounding
//! whitespace, at least 32 characters. A file that is missing, empty, too short or
//! readable by everyone is a validation error naming it. The token's name, recorded as
//! `by` (`api:NAME`), is the file name without its extension. Tokens are read again on
//! every reload, never logged, and compared in constant time (see `api`). The reader
//! of secret files (`read_secret`) is shared with `[[notify]]` and `[smtp]`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::reader::Ctx;
use super::resolve_path;

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 32;

/// A secret read from a file: shown as `***` by `Debug`, so a config dump never
/// prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret held in memory (read from a file, or a default such as a URL).
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret as text, for the one place that must send it (a header, a URL).
    pub fn expose_str(&self) -> &str {
        &self.0
    }

    /// The secret's bytes, for a constant-time comparison.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One token of `[api] tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `api:NAME`, as recorded with what it changes.
    pub by: String,
    pub file: PathBuf,
    pub secret: Secret,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub tokens: Vec<Token>,
}

/// Reads a secret file (CONTRACT section 15): a regular file, not readable by everyone,
/// its content without surrounding whitespace, not empty. Errors name the file as
/// `what PATH` (`what`: "token file", "password file", ...) and never show its content.
pub fn read_secret(path: &Path, what: &str) -> Result<Secret, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{what} {shown} is not a regular file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "{what} {shown} is readable by everyone (mode {:o}): chmod 600 or 640 it",
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what} {shown}: {e}"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{what} {shown} is empty"));
    }
    Ok(Secret(secret.to_string()))
}

/// Reads one token file; the error names it.
pub fn read_token(path: &Path) -> Result<Token, String> {
    let shown = path.display();
    let secret = read_secret(path, "token file")?;
    let text = secret.expose_str();
    if text.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "token file {shown} holds a token shorter than {MIN_TOKEN_LEN} characters"
        ));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "token file {shown}: a token is one word (no spaces or line breaks inside)"
        ));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Token {
        by: format!("api:{name}"),
        file: path.to_path_buf(),
        secret,
    })
}

/// `[api]`, its token files read and checked.
pub(super) fn parse_api(ctx: &mut Ctx<'_>, t: &DeTable<'_>, file: &Path) -> Api {
    let mut api = Api { tokens: Vec::new() };
    let mut seen_tokens = false;
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("api.{name}");
        match name {
            "tokens" => {
                seen_tokens = true;
                let list = ctx.strings(&key, v).unwrap_or_default();
                if list.is_empty() {
                    ctx.err(&v.span(), &key, "needs at least one token file");
                }
                for (p, span) in list {
                    match read_token(&resolve_path(file, &p)) {
                        Ok(tok) if api.tokens.iter().any(|t| t.by == tok.by) => ctx.err(
                            &span,
                            &key,
                            format!("two token files are named {:?}: names must differ (they are recorded as {})", tok.by, tok.by),
                        ),
                        Ok(tok) => api.tokens.push(tok),
                        Err(e) => ctx.err(&span, &key, e),
                    }
                }
            }
            _ => ctx.unknown(&key, &k.span(), &["tokens"]),
        }
    }
    if !seen_tokens {
        ctx.err_file(
            "api.tokens",
            "missing: [api] needs tokens = [\"FILE\", ...]",
        );
    }
    api
}
