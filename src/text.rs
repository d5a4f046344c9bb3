//! Text helpers every layer uses and that depend on nothing else in offramp: HTML
//! escaping, percent-encoding, the redirect `Location` builder, RFC 3339 times.
//!
//! The redirect target is built from a fixed prefix and the request's own path and
//! query only; every byte that is not safe in a URL is percent-encoded, so no CR/LF,
//! backslash or `//host` in a request can move the target to another origin.

use std::time::SystemTime;

/// `Location` for an offline site: `prefix` + path + query (with `keep_uri`).
///
/// `prefix` is the status page's origin and path (no trailing slash); `target` is the
/// request's path-and-query as received (origin-form; an absolute-form target has
/// already been reduced to its path by the caller).
pub fn location(prefix: &str, keep_uri: bool, target: &[u8]) -> String {
    let mut out = Vec::with_capacity(prefix.len() + target.len() + 4);
    out.extend_from_slice(prefix.as_bytes());
    if !keep_uri {
        if !prefix.contains("://") || prefix.matches('/').count() == 2 {
            out.push(b'/');
        }
        return ascii_string(out);
    }
    // Always continue with a '/' so the prefix's authority can never be extended.
    if target.first() != Some(&b'/') {
        out.push(b'/');
    }
    push_percent_encoded(&mut out, target, is_url_safe);
    ascii_string(out)
}

/// Appends `bytes` with every byte that `keep` refuses written as `%XX`.
pub fn push_percent_encoded(out: &mut Vec<u8>, bytes: &[u8], keep: impl Fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| !keep(b)) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// A `String` of bytes that are all ASCII (the prefix is a validated URL, the rest is
/// percent-encoded); anything else would be replaced rather than panic.
pub fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Characters kept as-is in a redirect target: RFC 3986 unreserved, sub-delims, `:@/?%`.
static URL_SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'?'
                    | b'%'
            );
        i += 1;
    }
    t
};

fn is_url_safe(b: u8) -> bool {
    URL_SAFE[usize::from(b)]
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 8);
    push_html_escaped(&mut out, s.as_bytes());
    // Only ASCII bytes were replaced (by ASCII), so UTF-8 in stays UTF-8 out.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The HTML escape of each byte, empty when it needs none.
static HTML_ESCAPES: [&[u8]; 256] = {
    let mut t: [&[u8]; 256] = [b""; 256];
    t[b'&' as usize] = b"&amp;";
    t[b'<' as usize] = b"&lt;";
    t[b'>' as usize] = b"&gt;";
    t[b'"' as usize] = b"&quot;";
    t[b'\'' as usize] = b"&#39;";
    t
};

/// `html_escape` into a byte buffer (the data path writes pages straight into its
/// output).
pub fn push_html_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(i) = rest
        .iter()
        .position(|&b| !HTML_ESCAPES[usize::from(b)].is_empty())
    {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(HTML_ESCAPES[usize::from(rest[i])]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Length of `s` once HTML-escaped.
pub fn html_escaped_len(s: &[u8]) -> usize {
    s.iter()
        .map(|&b| match HTML_ESCAPES[usize::from(b)].len() {
            0 => 1,
            n => n,
        })
        .sum()
}

/// RFC 3986 unreserved: the only bytes a query parameter's value carries as they are.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `2026-11-22T18:00:00Z`.
pub fn rfc3339(t: SystemTime) -> Option<String> {
    let dt = time::OffsetDateTime::from(t);
    dt.replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "https://status.example.com";

    #[test]
    fn keeps_path_and_query() {
        assert_eq!(
            location(P, true, b"/a/b?x=1&y=%20"),
            "https://status.example.com/a/b?x=1&y=%20"
        );
        assert_eq!(
            location("https://s.example/cloud", true, b"/"),
            "https://s.example/cloud/"
        );
        assert_eq!(location(P, false, b"/a?b"), "https://status.example.com/");
        assert_eq!(
            location("https://s.example/cloud", false, b"/a"),
            "https://s.example/cloud"
        );
    }

    #[test]
    fn cannot_be_steered() {
        for (t, want) in [
            (
                &b"//evil.com/x"[..],
                "https://status.example.com//evil.com/x",
            ),
            (b"\\evil.com", "https://status.example.com/%5Cevil.com"),
            (
                b"/a\r\nSet-Cookie: x",
                "https://status.example.com/a%0D%0ASet-Cookie:%20x",
            ),
            (b"@evil.com", "https://status.example.com/@evil.com"),
            (b"/\xc3\xa9", "https://status.example.com/%C3%A9"),
            (b"*", "https://status.example.com/*"),
        ] {
            let l = location(P, true, t);
            assert_eq!(l, want);
            assert!(l.starts_with("https://status.example.com/"));
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(html_escaped_len(b"<a&"), 10);
    }
}
