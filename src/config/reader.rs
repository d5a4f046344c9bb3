//! Reading values out of toml's spanned parse tree: the error collector (`Ctx`) that
//! turns byte offsets into file lines, the per-type readers every section uses
//! (string, boolean, integer, duration, addresses, tables), and where a key is written
//! (`KeySpans`) for checks that complain about it later. What the keys mean is each
//! section's; walking the document is `parse`'s.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::ConfigError;

/// One value of the parse tree with its byte span.
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// Error collector that knows how to turn byte offsets into line numbers.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) line_starts: Vec<usize>,
    pub(super) errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        match self.line_starts.binary_search(&span.start) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    pub(super) fn err(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// An error about a key: at the line of its value when the file sets it, else
    /// about the file as a whole (the key was left out).
    pub(super) fn err_key(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) {
        match span {
            Some(span) => self.err(&span, key, message),
            None => self.err_file(key, message),
        }
    }

    /// An error about the file as a whole (no single line to point at).
    pub(super) fn err_file(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: 0,
            key: key.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn string(&mut self, key: &str, v: &Value<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, v: &Value<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn integer(&mut self, key: &str, v: &Value<'_>) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.err(&v.span(), key, "integer out of range");
                        None
                    }
                }
            }
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string or an array of strings, each with its own span.
    pub(super) fn strings(
        &mut self,
        key: &str,
        v: &Value<'_>,
    ) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    out.push((self.string(key, item)?, item.span()));
                }
                Some(out)
            }
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!(
                        "expected a string or an array of strings, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, key: &str, v: &Value<'_>) -> Option<Duration> {
        let s = self.string(key, v)?;
        match crate::duration::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(&v.span(), key, e);
                None
            }
        }
    }

    pub(super) fn addrs(&mut self, key: &str, v: &Value<'_>) -> Option<Vec<SocketAddr>> {
        let mut out = Vec::new();
        for (s, span) in self.strings(key, v)? {
            match s.parse::<SocketAddr>() {
                Ok(a) => out.push(a),
                Err(_) => self.err(
                    &span,
                    key,
                    format!(
                        "{s:?} is not an IP:port address (e.g. \"127.0.0.1:8080\" or \"[::]:443\")"
                    ),
                ),
            }
        }
        Some(out)
    }

    pub(super) fn table<'t, 'i>(&mut self, key: &str, v: &'t Value<'i>) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    &v.span(),
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn unknown(&mut self, key: &str, span: &Range<usize>, known: &[&str]) {
        self.err(
            span,
            key,
            format!("unknown key (expected one of: {})", known.join(", ")),
        );
    }
}

/// Where the keys that checks across sections complain about are written.
pub(super) struct KeySpans<'r, 'i>(pub(super) &'r DeTable<'i>);

impl KeySpans<'_, '_> {
    /// Span of the value of `[section] key`, `None` when the file does not set it.
    pub(super) fn get(&self, section: &str, key: &str) -> Option<Range<usize>> {
        let (_, table) = self
            .0
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == section)?;
        let DeValue::Table(table) = table.get_ref() else {
            return None;
        };
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v.span())
    }
}
