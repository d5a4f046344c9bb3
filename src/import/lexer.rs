//! The Caddyfile tokenizer: text → words with their file and line, the way Caddy's own
//! lexer splits them (whitespace-separated words, `"..."` and `` `...` `` quoting, `#`
//! comments, `\` line continuations, heredocs).
//!
//! Owns: splitting only. Does not know what `{`, `import` or a directive mean (see
//! `expand` and `parse`).

use std::path::Path;
use std::sync::Arc;

use super::{ImportError, Loc};

/// One word of a Caddyfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub text: String,
    /// Written in quotes (`"{"` is a word, not a block).
    pub quoted: bool,
    /// The first token of a line (after a newline that no `\` continued): a directive
    /// starts here.
    pub starts_line: bool,
    pub loc: Loc,
    /// The `import` this token came from, when it was copied in by one.
    pub via: Option<Arc<Via>>,
}

/// An `import` that copied tokens in: where it was, what it named, its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Via {
    pub loc: Loc,
    /// The snippet name or the file pattern, as written.
    pub name: String,
    /// What recursion is checked on: the snippet name, or the file's canonical path.
    pub key: String,
    pub args: Vec<String>,
    /// The import this one was itself copied in by.
    pub parent: Option<Arc<Via>>,
}

impl Via {
    /// Whether `name` is this import or one of the imports it came from.
    pub fn chain_has(&self, name: &str) -> bool {
        self.key == name || self.parent.as_ref().is_some_and(|p| p.chain_has(name))
    }

    /// How deep the import chain is.
    pub fn depth(&self) -> usize {
        1 + self.parent.as_ref().map_or(0, |p| p.depth())
    }
}

impl Token {
    /// An unquoted word equal to `s`.
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

/// Splits `text` (read from `file`) into tokens.
pub fn tokenize(text: &str, file: &Path) -> Result<Vec<Token>, ImportError> {
    let file: Arc<Path> = Arc::from(file);
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        file: file.clone(),
        out: Vec::new(),
        new_line: true,
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    file: Arc<Path>,
    out: Vec<Token>,
    /// No token yet since the last (uncontinued) newline.
    new_line: bool,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ImportError {
        ImportError::Syntax {
            loc: Loc::new(&self.file, line),
            message: message.into(),
        }
    }

    fn push(&mut self, text: String, quoted: bool, line: usize) {
        self.out.push(Token {
            text,
            quoted,
            starts_line: self.new_line,
            loc: Loc::new(&self.file, line),
            via: None,
        });
        self.new_line = false;
    }

    fn run(&mut self) -> Result<(), ImportError> {
        while let Some(c) = self.peek() {
            match c {
                '\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.new_line = true;
                }
                c if c.is_whitespace() => self.pos += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '\\' if self.continuation_len().is_some() => {
                    // `\` at the end of a line: the next line goes on with this one.
                    self.pos += self.continuation_len().unwrap_or(1);
                    self.line += 1;
                }
                '"' => self.quoted()?,
                '`' => self.backquoted()?,
                '<' if self.peek_at(1) == Some('<') && self.heredoc_marker().is_some() => {
                    self.heredoc()?
                }
                _ => self.word(),
            }
        }
        Ok(())
    }

    /// At a `\`: the length of `\` + optional `\r` + `\n` when that is what follows.
    fn continuation_len(&self) -> Option<usize> {
        match (self.peek_at(1), self.peek_at(2)) {
            (Some('\n'), _) => Some(2),
            (Some('\r'), Some('\n')) => Some(3),
            _ => None,
        }
    }

    /// A bare word: up to whitespace. A `\` keeps the next character in the word
    /// (both are kept, as Caddy does), except before a newline.
    fn word(&mut self) {
        let line = self.line;
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                break;
            }
            if c == '\\' {
                if self.continuation_len().is_some() {
                    break;
                }
                text.push(c);
                self.pos += 1;
                if let Some(n) = self.peek() {
                    if !n.is_whitespace() {
                        text.push(n);
                        self.pos += 1;
                    }
                }
                continue;
            }
            text.push(c);
            self.pos += 1;
        }
        self.push(text, false, line);
    }

    /// `"..."`: `\"` is a quote, any other `\` is kept; may span lines.
    fn quoted(&mut self) -> Result<(), ImportError> {
        let line = self.line;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error(line, "a quoted string (\") is never closed")),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if self.peek_at(1) == Some('"') => {
                    text.push('"');
                    self.pos += 2;
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        self.push(text, true, line);
        Ok(())
    }

    /// `` `...` ``: raw, no escapes; may span lines.
    fn backquoted(&mut self) -> Result<(), ImportError> {
        let line = self.line;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error(line, "a backquoted string (`) is never closed")),
                Some('`') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        self.push(text, true, line);
        Ok(())
    }

    /// At `<<`: the heredoc marker when `<<MARKER` ends its line.
    fn heredoc_marker(&self) -> Option<String> {
        let mut i = self.pos + 2;
        let mut marker = String::new();
        while let Some(&c) = self.chars.get(i) {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                marker.push(c);
                i += 1;
            } else {
                break;
            }
        }
        let ends_line = matches!(self.chars.get(i), Some('\n') | Some('\r'));
        (!marker.is_empty() && ends_line).then_some(marker)
    }

    /// `<<MARKER` … a line holding `MARKER`: the lines between, with the closing line's
    /// indentation taken off each.
    fn heredoc(&mut self) -> Result<(), ImportError> {
        let line = self.line;
        let marker = self.heredoc_marker().unwrap_or_default();
        self.pos += 2 + marker.len();
        while self.peek().is_some_and(|c| c != '\n') {
            self.pos += 1;
        }
        self.pos += 1;
        self.line += 1;
        let mut lines: Vec<String> = Vec::new();
        loop {
            if self.pos >= self.chars.len() {
                return Err(self.error(line, format!("heredoc <<{marker} is never closed")));
            }
            let mut current = String::new();
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == '\n' {
                    break;
                }
                current.push(c);
            }
            self.line += 1;
            let trimmed = current.trim_end_matches('\r');
            if trimmed.trim_start() == marker {
                let indent = &trimmed[..trimmed.len() - marker.len()];
                let body: Vec<&str> = lines
                    .iter()
                    .map(|l| l.trim_end_matches('\r'))
                    .map(|l| l.strip_prefix(indent).unwrap_or(l))
                    .collect();
                self.push(body.join("\n"), true, line);
                self.new_line = true;
                return Ok(());
            }
            lines.push(current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, usize, bool)> {
        tokenize(text, Path::new("Caddyfile"))
            .unwrap()
            .into_iter()
            .map(|t| (t.text, t.loc.line, t.starts_line))
            .collect()
    }

    fn texts(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.0).collect()
    }

    #[test]
    fn splits_words_blocks_and_lines() {
        let w = words("a.example, b.example {\n  reverse_proxy 10.0.0.1:80\n}\n");
        assert_eq!(
            w,
            vec![
                ("a.example,".into(), 1, true),
                ("b.example".into(), 1, false),
                ("{".into(), 1, false),
                ("reverse_proxy".into(), 2, true),
                ("10.0.0.1:80".into(), 2, false),
                ("}".into(), 3, true),
            ]
        );
    }

    #[test]
    fn placeholders_and_braces_inside_words_stay_words() {
        assert_eq!(
            texts("{args.0}.udance.com.au {$HOST} https://x{uri}"),
            vec!["{args.0}.udance.com.au", "{$HOST}", "https://x{uri}"]
        );
    }

    #[test]
    fn comments_run_to_the_end_of_the_line_only_at_a_word_start() {
        assert_eq!(
            texts("a # a comment { }\nb#notacomment # but this is\nc"),
            vec!["a", "b#notacomment", "c"]
        );
    }

    #[test]
    fn double_quotes_group_and_escape_quotes() {
        let t = tokenize(r#"respond "hello \"you\" \n there" 200"#, Path::new("f")).unwrap();
        assert_eq!(t[1].text, r#"hello "you" \n there"#);
        assert!(t[1].quoted);
        assert!(!t[2].quoted);
        let t = tokenize("header \"{\"", Path::new("f")).unwrap();
        assert!(!t[1].is("{"));
    }

    #[test]
    fn backquotes_are_raw() {
        assert_eq!(
            texts(r#"respond `a "quoted" \ word` 200"#),
            vec!["respond", r#"a "quoted" \ word"#, "200"]
        );
    }

    #[test]
    fn quoted_strings_span_lines_and_lines_are_counted() {
        let w = words("respond \"one\ntwo\"\nnext");
        assert_eq!(w[1], ("one\ntwo".into(), 1, false));
        assert_eq!(w[2], ("next".into(), 3, true));
    }

    #[test]
    fn a_backslash_at_the_end_of_a_line_continues_it() {
        let w = words("reverse_proxy a:1 \\\n   b:2\nnext");
        assert_eq!(w[2], ("b:2".into(), 2, false));
        assert_eq!(w[3], ("next".into(), 3, true));
        let w = words("reverse_proxy a:1 \\\r\n b:2");
        assert!(!w[2].2);
    }

    #[test]
    fn a_backslash_inside_a_word_is_kept() {
        assert_eq!(
            texts(r"path \{x\} a\ b"),
            vec!["path", r"\{x\}", r"a\", "b"]
        );
    }

    #[test]
    fn unclosed_quotes_are_errors_with_their_line() {
        let e = tokenize("a\nrespond \"oops\n\n", Path::new("Caddyfile")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Caddyfile:2: a quoted string (\") is never closed"
        );
        let e = tokenize("`x", Path::new("C")).unwrap_err();
        assert!(e.to_string().starts_with("C:1: "));
    }

    #[test]
    fn heredocs_strip_the_closing_indentation() {
        let w = words("respond <<HTML\n    <p>hi</p>\n      <b>x</b>\n    HTML\nnext");
        assert_eq!(w[1].0, "<p>hi</p>\n  <b>x</b>");
        assert_eq!(w[1].1, 1);
        assert_eq!(w.last().unwrap(), &("next".to_string(), 5, true));
        assert!(tokenize("respond <<END\nnever", Path::new("f")).is_err());
    }

    #[test]
    fn carriage_returns_are_whitespace() {
        assert_eq!(texts("a {\r\n b\r\n}\r\n"), vec!["a", "{", "b", "}"]);
    }
}
