//! Snippets and `import`: turns a Caddyfile's tokens into the tokens Caddy would see
//! after every `(snippet) { … }` definition is taken out and every `import NAME ARGS…`
//! (a snippet, a file, or a glob of files relative to the importing file) is replaced
//! by what it names, with `{args.N}` / `{args[N]}` filled in.
//!
//! Owns: the import graph (recursion is an error naming the chain), its limits, and
//! notes on placeholders left as they are. Does not know directives (`parse`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::glob::glob_match;
use super::lexer::{tokenize, Token, Via};
use super::model::Note;
use super::{read_text, ImportError};

/// How deep imports may nest.
const MAX_DEPTH: usize = 32;
/// How many tokens the expansion may produce (snippets importing each other twice over
/// grow exponentially).
const MAX_TOKENS: usize = 1_000_000;

/// Reads `path` and returns its tokens with every import expanded, and notes on what
/// was left as is.
pub fn load(path: &Path) -> Result<(Vec<Token>, Vec<Note>), ImportError> {
    let text = read_text(path)?;
    let tokens = tokenize(&text, path)?;
    let mut ex = Expander {
        root: canonical(path),
        ..Expander::default()
    };
    let mut out = Vec::new();
    ex.expand(tokens, &mut out)?;
    Ok((out, ex.notes))
}

#[derive(Default)]
struct Expander {
    /// The canonical path of the file read first (importing it again is a loop).
    root: String,
    snippets: HashMap<String, Vec<Token>>,
    notes: Vec<Note>,
}

impl Expander {
    fn expand(&mut self, tokens: Vec<Token>, out: &mut Vec<Token>) -> Result<(), ImportError> {
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            if depth == 0 && t.starts_line && is_snippet_name(t) && next_is_open(&tokens, i) {
                let name = t.text[1..t.text.len() - 1].to_string();
                let end = matching_close(&tokens, i + 1)?;
                self.snippets.insert(name, tokens[i + 2..end].to_vec());
                i = end + 1;
                continue;
            }
            if t.starts_line && t.is("import") {
                let mut j = i + 1;
                while j < tokens.len() && !tokens[j].starts_line && !tokens[j].is("}") {
                    j += 1;
                }
                self.import(t, &tokens[i + 1..j], out)?;
                i = j;
                continue;
            }
            if t.is("{") {
                depth += 1;
            } else if t.is("}") {
                depth = depth.saturating_sub(1);
            }
            if t.text.contains("{$") {
                self.notes.push(Note {
                    from: t.loc.to_string(),
                    what: format!(
                        "environment placeholder in {:?} left as is (offramp does not read the environment)",
                        t.text
                    ),
                    understood: true,
                });
            }
            out.push(t.clone());
            if out.len() > MAX_TOKENS {
                return Err(error(t, format!("the imports expand to more than {MAX_TOKENS} words: do snippets import each other over and over?")));
            }
            i += 1;
        }
        Ok(())
    }

    /// `import NAME ARGS…` at `at`.
    fn import(
        &mut self,
        at: &Token,
        args: &[Token],
        out: &mut Vec<Token>,
    ) -> Result<(), ImportError> {
        let Some(name) = args.first() else {
            return Err(error(at, "import needs a snippet name or a file"));
        };
        let args: Vec<String> = args[1..].iter().map(|t| t.text.clone()).collect();
        if at.via.as_ref().is_some_and(|v| v.depth() >= MAX_DEPTH) {
            return Err(error(
                at,
                format!("imports are nested more than {MAX_DEPTH} deep"),
            ));
        }
        let (key, body) = if let Some(body) = self.snippets.get(&name.text) {
            (name.text.clone(), body.clone())
        } else {
            let files = self.files(at, &name.text)?;
            if files.is_empty() {
                self.notes.push(Note {
                    from: at.loc.to_string(),
                    what: format!(
                        "import {}: no file matches (as in Caddy, nothing is imported)",
                        name.text
                    ),
                    understood: true,
                });
            }
            let mut body = Vec::new();
            for f in &files {
                let key = canonical(f);
                if key == self.root || at.via.as_ref().is_some_and(|v| v.chain_has(&key)) {
                    return Err(error(
                        at,
                        format!("recursive import: {} {}", f.display(), chain(at)),
                    ));
                }
                let text = read_text(f)?;
                let tokens = tokenize(&text, f)?;
                let via = Arc::new(Via {
                    loc: at.loc.clone(),
                    name: name.text.clone(),
                    key,
                    args: args.clone(),
                    parent: at.via.clone(),
                });
                let mut sub = Vec::new();
                let tokens = substitute(tokens, &via, at)?;
                self.expand(tokens, &mut sub)?;
                body.extend(sub);
            }
            out.extend(body);
            return Ok(());
        };
        if at.via.as_ref().is_some_and(|v| v.chain_has(&key)) {
            return Err(error(
                at,
                format!("recursive import: snippet ({key}) {}", chain(at)),
            ));
        }
        let via = Arc::new(Via {
            loc: at.loc.clone(),
            name: key.clone(),
            key,
            args,
            parent: at.via.clone(),
        });
        let tokens = substitute(body, &via, at)?;
        self.expand(tokens, out)
    }

    /// The files `import PATTERN` names, relative to the importing file.
    fn files(&self, at: &Token, pattern: &str) -> Result<Vec<PathBuf>, ImportError> {
        let base = at.loc.file.parent().unwrap_or(Path::new("."));
        let path = base.join(pattern);
        let has_glob = |s: &str| s.contains(['*', '?', '[']);
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !has_glob(pattern) {
            if path.is_file() {
                return Ok(vec![path]);
            }
            return Err(error(
                at,
                format!(
                    "import {pattern}: no snippet ({pattern}) is defined before this line and there is no file {}",
                    path.display()
                ),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        if has_glob(&dir.to_string_lossy()) {
            return Err(error(
                at,
                format!("import {pattern}: only the file name may hold wildcards (as in Caddy)"),
            ));
        }
        let entries = std::fs::read_dir(dir).map_err(|e| {
            error(
                at,
                format!("import {pattern}: cannot read {}: {e}", dir.display()),
            )
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                // Caddy's glob takes dot files too.
                glob_match(&file_name, &n)
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        Ok(found)
    }
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn error(at: &Token, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        loc: at.loc.clone(),
        message: message.into(),
    }
}

/// `(imported from X at F:L, …)`.
fn chain(at: &Token) -> String {
    let mut parts = Vec::new();
    let mut v = at.via.clone();
    while let Some(via) = v {
        parts.push(format!("{} imported at {}", via.name, via.loc));
        v = via.parent.clone();
    }
    format!("imports itself ({})", parts.join(", "))
}

fn is_snippet_name(t: &Token) -> bool {
    !t.quoted && t.text.len() > 2 && t.text.starts_with('(') && t.text.ends_with(')')
}

fn next_is_open(tokens: &[Token], i: usize) -> bool {
    tokens.get(i + 1).is_some_and(|t| t.is("{"))
}

/// The index of the `}` closing the `{` at `open`.
pub fn matching_close(tokens: &[Token], open: usize) -> Result<usize, ImportError> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth -= 1;
            if depth == 0 {
                return Ok(k);
            }
        }
    }
    Err(error(&tokens[open], "this { is never closed"))
}

/// The snippet's (or file's) tokens with `{args.N}`, `{args[N]}` and `{args[:]}`
/// filled in from `via`'s arguments, marked as coming from `via`.
fn substitute(tokens: Vec<Token>, via: &Arc<Via>, at: &Token) -> Result<Vec<Token>, ImportError> {
    let mut out = Vec::with_capacity(tokens.len());
    for (k, mut t) in tokens.into_iter().enumerate() {
        if k == 0 {
            // The import's own line ends where the imported words begin.
            t.starts_line = true;
        }
        t.via = Some(via.clone());
        if !t.quoted && (t.text == "{args[:]}" || t.text == "{args.*}") {
            for (n, a) in via.args.iter().enumerate() {
                let mut c = t.clone();
                c.text = a.clone();
                c.starts_line = t.starts_line && n == 0;
                out.push(c);
            }
            continue;
        }
        if t.text.contains("{args") {
            t.text = fill_args(&t.text, &via.args).map_err(|m| error(at, m))?;
        }
        out.push(t);
    }
    Ok(out)
}

/// Replaces each `{args.N}` / `{args[N]}` in `s`; a missing argument is empty (as in
/// Caddy).
fn fill_args(s: &str, args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{args") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 5..];
        let (digits, close) = if let Some(a) = after.strip_prefix('.') {
            (a, "}")
        } else if let Some(a) = after.strip_prefix('[') {
            (a, "]}")
        } else {
            out.push_str("{args");
            rest = after;
            continue;
        };
        let n_len = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n_len == 0 || !digits[n_len..].starts_with(close) {
            out.push_str("{args");
            rest = after;
            continue;
        }
        let n: usize = digits[..n_len]
            .parse()
            .map_err(|_| format!("argument number in {s} is too large"))?;
        out.push_str(args.get(n).map(String::as_str).unwrap_or(""));
        rest = &digits[n_len + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_text(text: &str) -> Result<Vec<String>, ImportError> {
        let tokens = tokenize(text, Path::new("/nonexistent/Caddyfile"))?;
        let mut ex = Expander::default();
        let mut out = Vec::new();
        ex.expand(tokens, &mut out)?;
        Ok(out.into_iter().map(|t| t.text).collect())
    }

    #[test]
    fn snippets_are_taken_out_and_filled_in() {
        let w = expand_text("(s) {\n {args.0}.x {\n rp {args[1]}\n }\n}\nimport s a 1.2.3.4\n")
            .unwrap();
        assert_eq!(w, vec!["a.x", "{", "rp", "1.2.3.4", "}"]);
    }

    #[test]
    fn all_args_and_missing_args() {
        let w = expand_text("(s) {\n rp {args[:]} {args.5}x\n}\nimport s a b\n").unwrap();
        assert_eq!(w, vec!["rp", "a", "b", "x"]);
    }

    #[test]
    fn nested_imports_carry_their_chain() {
        let tokens = tokenize(
            "(inner) {\n encode {args.0}\n}\n(outer) {\n import inner {args.0}\n}\nimport outer gzip\n",
            Path::new("C"),
        )
        .unwrap();
        let mut ex = Expander::default();
        let mut out = Vec::new();
        ex.expand(tokens, &mut out).unwrap();
        assert_eq!(out[1].text, "gzip");
        let via = out[1].via.as_ref().unwrap();
        assert_eq!(via.name, "inner");
        assert_eq!(via.parent.as_ref().unwrap().name, "outer");
        assert_eq!(via.parent.as_ref().unwrap().loc.line, 7);
    }

    #[test]
    fn recursion_is_an_error_naming_the_chain() {
        let e = expand_text("(a) {\n import b\n}\n(b) {\n import a\n}\nimport a\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/Caddyfile:5: recursive import: snippet (a) imports itself (b imported at /nonexistent/Caddyfile:2, a imported at /nonexistent/Caddyfile:7)"
        );
    }

    #[test]
    fn unknown_snippets_are_errors() {
        let e = expand_text("a.example {\n  import nosuch\n}\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/Caddyfile:2: import nosuch: no snippet"),
            "{e}"
        );
        assert!(expand_text("import\n").is_err());
    }

    #[test]
    fn unbalanced_snippets_are_errors() {
        let e = expand_text("(s) {\n rp x\n").unwrap_err();
        assert!(e.to_string().ends_with(":1: this { is never closed"), "{e}");
    }

    #[test]
    fn exponential_snippets_are_stopped() {
        let mut text = String::from("(s0) {\n a b c d e f g h\n}\n");
        for k in 1..40 {
            text.push_str(&format!(
                "(s{k}) {{\n import s{p}\n import s{p}\n}}\n",
                p = k - 1
            ));
        }
        text.push_str("import s39\n");
        assert!(expand_text(&text)
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }

    #[test]
    fn fill_args_leaves_other_braces() {
        assert_eq!(
            fill_args("{args}{args.x}{uri}", &[]).unwrap(),
            "{args}{args.x}{uri}"
        );
        assert_eq!(
            fill_args("{args[0]}-{args.1}", &["a".into(), "b".into()]).unwrap(),
            "a-b"
        );
    }

    /// Words Caddyfiles are made of, including every one the tokenizer, the expander
    /// or the parser treats specially.
    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "{",
            "}",
            "\"",
            "`",
            "\\",
            "#",
            "\n",
            " ",
            "\t",
            "\r",
            "<<EOF",
            "EOF",
            "(s)",
            "import",
            "s",
            "{args.0}",
            "{args[1]}",
            "{args[:]}",
            "{$X}",
            "a.example",
            ",",
            "reverse_proxy",
            "redir",
            "10.0.0.1:80",
            "https://x{uri}",
            "é",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 512, ..Default::default() })]
        #[test]
        fn any_text_gives_tokens_or_an_error_with_a_line(pieces in proptest::collection::vec(piece(), 0..60)) {
            let text: String = pieces.concat();
            let lines = text.lines().count().max(1) + 1;
            match tokenize(&text, Path::new("/nonexistent/Caddyfile")) {
                Err(ImportError::Syntax { loc, .. }) => proptest::prop_assert!(loc.line >= 1 && loc.line <= lines),
                Err(e) => proptest::prop_assert!(false, "{e}"),
                Ok(tokens) => {
                    let mut ex = Expander::default();
                    let mut out = Vec::new();
                    if ex.expand(tokens, &mut out).is_ok() {
                        let _ = super::super::parse::parse(&out);
                    }
                }
            }
        }
    }
}
