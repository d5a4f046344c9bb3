//! Form bodies as browsers and mail clients send them: `application/x-www-form-urlencoded`
//! (the subscribe form; RFC 8058's one-click POST) and `multipart/form-data` (the other
//! shape RFC 8058 allows). Only text fields are kept; file parts are skipped. Bodies
//! are small (the proxy reads at most `MAX_BODY`), and every malformed one is an
//! error, never a panic.

/// The largest request body read from a subscription request.
pub const MAX_BODY: usize = 16 * 1024;
/// Fields kept of one form.
const MAX_FIELDS: usize = 256;

/// Why a body could not be read as a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A `Content-Type` that is not a form.
    Unsupported,
    /// A form that does not parse.
    Malformed(&'static str),
}

/// The fields of `body` sent with `content_type` (none: urlencoded, as browsers send
/// forms), in order.
pub fn fields(content_type: Option<&str>, body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let ct = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mut params = ct.split(';');
    let mime = params.next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => Ok(urlencoded(body)),
        "multipart/form-data" => {
            let boundary = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| unquote(v.trim()))
                .ok_or(FormError::Malformed(
                    "multipart/form-data without a boundary",
                ))?;
            multipart(body, &boundary)
        }
        _ => Err(FormError::Unsupported),
    }
}

/// `a=1&b=x+y%21` (also a query string); at most `MAX_FIELDS` fields.
pub fn urlencoded(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .take(MAX_FIELDS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `name` in the query of `target` (`/path?a=b`).
pub fn query_param(target: &[u8], name: &str) -> Option<String> {
    let q = target
        .iter()
        .position(|&b| b == b'?')
        .map(|i| &target[i + 1..])?;
    urlencoded(q)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// RFC 7578: parts between `--BOUNDARY` lines, each with its headers; a part's name
/// is its `Content-Disposition: form-data; name="…"`.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, FormError> {
    // RFC 2046: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(FormError::Malformed(
            "a multipart boundary must be 1 to 70 characters",
        ));
    }
    // Each delimiter is CRLF "--" boundary; the first may open the body.
    let mut data = Vec::with_capacity(body.len() + 2);
    data.extend_from_slice(b"\r\n");
    data.extend_from_slice(body);
    let delim = format!("\r\n--{boundary}").into_bytes();
    let mut at = find(&data, &delim, 0).ok_or(FormError::Malformed("no multipart boundary"))?;
    let mut out = Vec::new();
    loop {
        let mut p = at + delim.len();
        if data[p..].starts_with(b"--") {
            return Ok(out);
        }
        // Transport padding, then the line's end.
        while data.get(p).is_some_and(|&b| b == b' ' || b == b'\t') {
            p += 1;
        }
        if !data[p..].starts_with(b"\r\n") {
            return Err(FormError::Malformed(
                "a multipart boundary line does not end",
            ));
        }
        p += 2;
        let next =
            find(&data, &delim, p).ok_or(FormError::Malformed("a multipart body does not end"))?;
        let part = &data[p..next];
        let (head, content) = match find(part, b"\r\n\r\n", 0) {
            // No headers at all: the part starts with its empty line.
            _ if part.starts_with(b"\r\n") => (&b""[..], &part[2..]),
            Some(i) => (&part[..i], &part[i + 4..]),
            None => return Err(FormError::Malformed("a multipart part has no header end")),
        };
        if let Some(name) = part_name(head)? {
            if out.len() < MAX_FIELDS {
                if let Ok(value) = String::from_utf8(content.to_vec()) {
                    out.push((name, value));
                }
            }
        }
        at = next;
    }
}

/// The field name of a part, `None` for a file or a part without a name.
fn part_name(head: &[u8]) -> Result<Option<String>, FormError> {
    let head = std::str::from_utf8(head)
        .map_err(|_| FormError::Malformed("a multipart header is not UTF-8"))?;
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let params = disposition_params(v);
        if params
            .iter()
            .any(|(k, _)| k == "filename" || k == "filename*")
        {
            return Ok(None);
        }
        return Ok(params
            .into_iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v));
    }
    Ok(None)
}

/// `form-data; name="a;b"; filename=x` → `[("name","a;b"), ("filename","x")]` (keys
/// lower-cased; quoted values may hold `;` and `\"`).
fn disposition_params(v: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = v.chars().peekable();
    // The disposition type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            }
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn urlencoded_forms_and_queries() {
        assert_eq!(
            fields(
                None,
                b"email=ann%40example.com&component=cloud&component=a+b"
            )
            .unwrap(),
            pairs(&[
                ("email", "ann@example.com"),
                ("component", "cloud"),
                ("component", "a b")
            ])
        );
        assert_eq!(
            fields(
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
                b"List-Unsubscribe=One-Click"
            )
            .unwrap(),
            pairs(&[("List-Unsubscribe", "One-Click")])
        );
        assert_eq!(
            query_param(b"/u?token=ab%63&x=1", "token").as_deref(),
            Some("abc")
        );
        assert_eq!(query_param(b"/u", "token"), None);
        assert_eq!(
            fields(Some("text/plain"), b"x"),
            Err(FormError::Unsupported)
        );
    }

    #[test]
    fn multipart_forms() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile\r\n\
--XyZ\r\ncontent-disposition: form-data; name=\"email\"\r\n\r\nann@example.com\r\n--XyZ--\r\n";
        assert_eq!(
            fields(Some("multipart/form-data; boundary=XyZ"), body).unwrap(),
            pairs(&[
                ("List-Unsubscribe", "One-Click"),
                ("email", "ann@example.com")
            ])
        );
        // A quoted boundary, a preamble, a value with CRLF in it, a name with ';'.
        let body = b"preamble\r\n--a b\r\nContent-Disposition: form-data; name=\"x;y\"\r\n\r\nline1\r\nline2\r\n--a b--";
        assert_eq!(
            fields(Some("multipart/form-data; boundary=\"a b\""), body).unwrap(),
            pairs(&[("x;y", "line1\r\nline2")])
        );
        for (ct, body) in [
            ("multipart/form-data", &b"--x\r\n\r\n--x--"[..]),
            ("multipart/form-data; boundary=x", b"no boundary here"),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",
            ),
            ("multipart/form-data; boundary=x", b"--xjunk\r\n\r\n--x--"),
            ("multipart/form-data; boundary=", b"--\r\n"),
        ] {
            assert!(
                matches!(fields(Some(ct), body), Err(FormError::Malformed(_))),
                "{ct} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn multipart_never_panics_on_garbage() {
        let seeds: [&[u8]; 4] = [
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b--",
            b"--b\r\n\r\n\r\n--b",
            b"--b  \r\nContent-Disposition: form-data; name=\"\\",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"; filename",
        ];
        for seed in seeds {
            for cut in 0..=seed.len() {
                let _ = fields(Some("multipart/form-data; boundary=b"), &seed[..cut]);
            }
        }
    }
}
