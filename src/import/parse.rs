//! Caddyfile structure: expanded tokens → the global options block and site blocks,
//! each a tree of directives (a name, its arguments, an optional `{ … }` block), every
//! word keeping its file and line.
//!
//! Owns: braces and lines. Does not know what any directive means (`caddyfile`).

use super::expand::matching_close;
use super::lexer::Token;
use super::ImportError;

/// How deep `{ … }` blocks may nest.
const MAX_NESTING: usize = 64;

/// One directive: `reverse_proxy a b { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    pub block: Vec<Directive>,
}

impl Directive {
    /// The arguments' texts.
    pub fn arg_texts(&self) -> Vec<&str> {
        self.args.iter().map(|t| t.text.as_str()).collect()
    }
}

/// One site block: its addresses and directives.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteBlock {
    /// One token per address (commas split off).
    pub addresses: Vec<Token>,
    pub body: Vec<Directive>,
}

/// A whole Caddyfile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Caddyfile {
    pub global: Vec<Directive>,
    pub sites: Vec<SiteBlock>,
}

/// Parses expanded tokens.
pub fn parse(tokens: &[Token]) -> Result<Caddyfile, ImportError> {
    let mut file = Caddyfile::default();
    let mut i = 0;
    if tokens.first().is_some_and(|t| t.is("{")) {
        let end = matching_close(tokens, 0)?;
        file.global = directives(&tokens[1..end], 1)?;
        i = end + 1;
    }
    while i < tokens.len() {
        let t = &tokens[i];
        if t.is("}") {
            return Err(error(t, "unexpected }: no block is open here"));
        }
        if t.is("{") {
            return Err(error(t, "a block { with no site address before it"));
        }
        // Addresses: the rest of the line, and the next lines while one ends in a comma.
        let mut addresses = Vec::new();
        let mut j = i;
        loop {
            let a = &tokens[j];
            if a.is("{") || a.is("}") {
                break;
            }
            if j > i && a.starts_line && !tokens[j - 1].text.ends_with(',') {
                break;
            }
            for part in a.text.split(',').filter(|p| !p.is_empty()) {
                let mut at = a.clone();
                at.text = part.to_string();
                addresses.push(at);
            }
            j += 1;
            if j >= tokens.len() {
                break;
            }
        }
        if tokens.get(j).is_some_and(|t| t.is("{")) {
            let end = matching_close(tokens, j)?;
            let body = directives(&tokens[j + 1..end], 1)?;
            file.sites.push(SiteBlock { addresses, body });
            i = end + 1;
        } else if file.sites.is_empty() {
            // A Caddyfile with a single site may leave out the braces: the rest is its body.
            let body = directives(&tokens[j..], 1)?;
            file.sites.push(SiteBlock { addresses, body });
            i = tokens.len();
        } else {
            return Err(error(
                t,
                format!("site {} has no {{ block }} (only a file's single site may leave the braces out)", t.text),
            ));
        }
    }
    Ok(file)
}

/// The directives of a block's inside (without its braces).
fn directives(tokens: &[Token], nesting: usize) -> Result<Vec<Directive>, ImportError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let name = &tokens[i];
        if name.is("}") {
            return Err(error(name, "unexpected }: no block is open here"));
        }
        if name.is("{") {
            return Err(error(name, "a block { with no directive before it"));
        }
        let mut d = Directive {
            name: name.clone(),
            args: Vec::new(),
            block: Vec::new(),
        };
        i += 1;
        while i < tokens.len() && !tokens[i].starts_line {
            let t = &tokens[i];
            if t.is("}") {
                return Err(error(t, "unexpected }: no block is open here"));
            }
            if t.is("{") {
                break;
            }
            d.args.push(t.clone());
            i += 1;
        }
        if i < tokens.len() && tokens[i].is("{") && !tokens[i].starts_line {
            if nesting >= MAX_NESTING {
                return Err(error(
                    &tokens[i],
                    format!("blocks nested more than {MAX_NESTING} deep"),
                ));
            }
            let end = matching_close(tokens, i)?;
            d.block = directives(&tokens[i + 1..end], nesting + 1)?;
            i = end + 1;
        }
        out.push(d);
    }
    Ok(out)
}

fn error(t: &Token, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        loc: t.loc.clone(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use std::path::Path;

    fn parse_text(text: &str) -> Result<Caddyfile, ImportError> {
        parse(&tokenize(text, Path::new("Caddyfile"))?)
    }

    #[test]
    fn global_options_sites_and_nested_blocks() {
        let f = parse_text(
            "{\n  email a@b.example\n}\na.example, b.example:8443 {\n  reverse_proxy https://x {\n    transport http {\n      tls_insecure_skip_verify\n    }\n  }\n  encode gzip\n}\n",
        )
        .unwrap();
        assert_eq!(f.global[0].name.text, "email");
        let s = &f.sites[0];
        let a: Vec<_> = s.addresses.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(a, vec!["a.example", "b.example:8443"]);
        assert_eq!(s.body[0].name.text, "reverse_proxy");
        assert_eq!(
            s.body[0].block[0].block[0].name.text,
            "tls_insecure_skip_verify"
        );
        assert_eq!(s.body[0].block[0].block[0].name.loc.line, 7);
        assert_eq!(s.body[1].arg_texts(), vec!["gzip"]);
    }

    #[test]
    fn addresses_may_continue_after_a_comma() {
        let f = parse_text("a.example,\n  b.example {\n  respond hi\n}\n").unwrap();
        assert_eq!(f.sites[0].addresses.len(), 2);
        let f = parse_text("a.example,b.example {\n}\n").unwrap();
        assert_eq!(f.sites[0].addresses[1].text, "b.example");
    }

    #[test]
    fn a_single_site_without_braces() {
        let f = parse_text("a.example\nreverse_proxy 10.0.0.1\n").unwrap();
        assert_eq!(f.sites[0].body[0].name.text, "reverse_proxy");
    }

    #[test]
    fn unbalanced_braces_name_the_line() {
        let e = parse_text("a.example {\n  reverse_proxy x\n").unwrap_err();
        assert_eq!(e.to_string(), "Caddyfile:1: this { is never closed");
        let e = parse_text("a.example {\n}\n}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Caddyfile:3: unexpected }: no block is open here"
        );
        let e = parse_text("a.example {\n log {\n  output file x\n}\n").unwrap_err();
        assert!(e.to_string().starts_with("Caddyfile:1: "), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = format!("a {}{}", "x {\n".repeat(10_000), "}\n".repeat(10_000));
        assert!(parse_text(&text)
            .unwrap_err()
            .to_string()
            .contains("nested"));
    }
}
