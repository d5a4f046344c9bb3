//! A small XML 1.0 well-formedness reader for the feed tests (no XML crate among the
//! dev-dependencies): tag balance, attribute quoting, known entities, allowed characters.

#[derive(Debug)]
pub(super) struct El {
    pub(super) name: String,
    pub(super) attrs: Vec<(String, String)>,
    pub(super) children: Vec<El>,
    pub(super) text: String,
}

impl El {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
    pub(super) fn one(&self, name: &str) -> &El {
        let found = self.all(name);
        assert!(found.len() < 2, "<{}> has two <{name}>", self.name);
        found
            .first()
            .copied()
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", self.name))
    }
}

pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

pub(super) fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '_' | ':')
        || (!first && (c.is_ascii_digit() || matches!(c, '-' | '.')))
}

/// Character data with its references resolved; a bare `&`, an unknown entity or
/// a `<` panics.
pub(super) fn decode(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<']) {
        assert!(
            rest.as_bytes()[i] == b'&',
            "a raw < in character data: {raw:?}"
        );
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .unwrap_or_else(|| panic!("a bare & in {raw:?}"));
        let name = &after[..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = if let Some(h) = name.strip_prefix("#x") {
                    u32::from_str_radix(h, 16)
                } else if let Some(d) = name.strip_prefix('#') {
                    d.parse()
                } else {
                    panic!("unknown entity &{name}; in {raw:?}")
                };
                let c = char::from_u32(n.unwrap_or_else(|_| panic!("bad &{name};")))
                    .unwrap_or_else(|| panic!("bad &{name};"));
                assert!(is_xml_char(c), "&{name}; is no XML character");
                c
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

pub(super) struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    pub(super) fn eat(&mut self, t: &str) -> bool {
        if self.rest().starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    pub(super) fn expect(&mut self, t: &str) {
        assert!(self.eat(t), "expected {t:?} at {:?}", self.rest());
    }
    pub(super) fn ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.i += n;
    }
    pub(super) fn name(&mut self) -> String {
        let r = self.rest();
        let n = r
            .char_indices()
            .find(|&(k, c)| !is_name_char(c, k == 0))
            .map_or(r.len(), |(k, _)| k);
        assert!(n > 0, "expected a name at {r:?}");
        self.i += n;
        r[..n].to_string()
    }
    pub(super) fn element(&mut self) -> El {
        self.expect("<");
        let name = self.name();
        let mut el = El {
            name,
            attrs: vec![],
            children: vec![],
            text: String::new(),
        };
        loop {
            let before = self.i;
            self.ws();
            if self.eat("/>") {
                return el;
            }
            if self.eat(">") {
                break;
            }
            assert!(
                self.i > before,
                "no space before an attribute: {:?}",
                self.rest()
            );
            let an = self.name();
            self.ws();
            self.expect("=");
            self.ws();
            let q = if self.eat("\"") {
                '"'
            } else {
                self.expect("'");
                '\''
            };
            let r = self.rest();
            let end = r.find(q).expect("an unterminated attribute value");
            let v = decode(&r[..end]);
            assert!(
                el.attrs.iter().all(|(n, _)| *n != an),
                "attribute {an} twice"
            );
            el.attrs.push((an, v));
            self.i += end + 1;
        }
        loop {
            if self.eat("</") {
                let close = self.name();
                assert_eq!(close, el.name, "mismatched end tag");
                self.ws();
                self.expect(">");
                return el;
            }
            let r = self.rest();
            assert!(!r.is_empty(), "<{}> is never closed", el.name);
            assert!(
                !r.starts_with("<!") && !r.starts_with("<?"),
                "unexpected markup: {r:?}"
            );
            if r.starts_with('<') {
                let child = self.element();
                el.children.push(child);
            } else {
                let end = r.find('<').unwrap_or(r.len());
                assert!(!r[..end].contains("]]>"), "]]> in character data");
                el.text.push_str(&decode(&r[..end]));
                self.i += end;
            }
        }
    }
}

/// Parses a whole document; panics on anything not well-formed.
pub(super) fn parse(doc: &str) -> El {
    if let Some(c) = doc.chars().find(|&c| !is_xml_char(c)) {
        panic!("a character XML 1.0 forbids: {c:?}");
    }
    let mut r = Reader { s: doc, i: 0 };
    r.expect("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    r.ws();
    let root = r.element();
    r.ws();
    assert!(
        r.rest().is_empty(),
        "content after the root: {:?}",
        r.rest()
    );
    root
}

// ---- a view with something to show -----------------------------------------
