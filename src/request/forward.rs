//! The forwarding policy, for both paths: which request headers never go upstream
//! (hop-by-hop ones, and the `X-Forwarded-*` offramp sets itself), the values of
//! `X-Forwarded-For/-Proto/-Host`, and how `Content-Length` fields are read.
//!
//! Pingora's path: its own sanitizer removes exactly the hop-by-hop set listed in
//! [`classify`] (pingora-proxy `strip_standard_hop_by_hop_headers`, and the fields a
//! `Connection` header nominates); offramp sets the `X-Forwarded-*` with
//! [`forwarded_for`] and [`forwarded_proto`] in `upstream_request_filter`. The fast path
//! drops the same set while it copies the head, and hands a request whose `Connection`
//! nominates other fields to Pingora.

use std::net::IpAddr;

/// What a request header field is to the forwarding policy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hdr {
    Host,
    ContentLength,
    Connection,
    /// Hop-by-hop, or set by offramp: never forwarded as the client sent it.
    Drop,
    /// Frames a body or changes the protocol (`Transfer-Encoding`, `Upgrade`, `Expect`,
    /// `HTTP2-Settings`): only Pingora's path carries these.
    Framing,
    /// Forwarded unchanged.
    Other,
}

/// Classifies a request header field by name (any case).
pub fn classify(name: &[u8]) -> Hdr {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Hdr::Drop,
        4 if is("host") => Hdr::Host,
        6 if is("expect") => Hdr::Framing,
        7 if is("upgrade") => Hdr::Framing,
        7 if is("trailer") => Hdr::Drop,
        10 if is("connection") => Hdr::Connection,
        10 if is("keep-alive") => Hdr::Drop,
        14 if is("content-length") => Hdr::ContentLength,
        14 if is("http2-settings") => Hdr::Framing,
        15 if is("x-forwarded-for") => Hdr::Drop,
        16 if is("proxy-connection") || is("x-forwarded-host") => Hdr::Drop,
        17 if is("transfer-encoding") => Hdr::Framing,
        17 if is("x-forwarded-proto") => Hdr::Drop,
        18 if is("proxy-authenticate") => Hdr::Drop,
        19 if is("proxy-authorization") => Hdr::Drop,
        _ => Hdr::Other,
    }
}

/// `X-Forwarded-For`: the TCP peer only (any value the client sent is replaced). A
/// dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`: they are sent as
/// `a.b.c.d`.
pub fn forwarded_for(peer: IpAddr) -> IpAddr {
    peer.to_canonical()
}

/// `X-Forwarded-Proto`: the scheme of the listener the request came in on.
pub fn forwarded_proto(scheme: super::Scheme) -> &'static str {
    scheme.as_str()
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces inside), at most
/// 19 of them so it fits a `u64`.
pub fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// What the `Content-Length` fields of a message say.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Length {
    /// No field.
    None,
    /// One plain number.
    Plain(u64),
    /// The same value repeated, in a list (`5, 5`) or in several fields: RFC 9110
    /// section 8.6 lets a recipient take it as that one value, and offramp does, on
    /// requests and responses and on both paths alike; it forwards one value, never
    /// the list.
    Repeated(u64),
    /// Differing values, or anything that is not digits: the message is refused.
    Invalid,
}

impl Length {
    /// The length, when there is a valid one.
    pub fn value(self) -> Option<u64> {
        match self {
            Length::Plain(n) | Length::Repeated(n) => Some(n),
            Length::None | Length::Invalid => None,
        }
    }
}

/// Reads the values of every `Content-Length` field of a message, in order.
pub fn content_length<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Length {
    let mut seen = Length::None;
    for field in fields {
        for part in field.split(|&b| b == b',') {
            let Some(n) = parse_length(part) else {
                return Length::Invalid;
            };
            seen = match seen {
                Length::None => Length::Plain(n),
                Length::Plain(v) | Length::Repeated(v) if v == n => Length::Repeated(n),
                _ => return Length::Invalid,
            };
        }
    }
    seen
}

/// Most header fields of an upstream response head, and its largest size: Pingora's
/// own limits (pingora-core `MAX_HEADERS`, `MAX_HEADER_SIZE`), on both paths.
pub const MAX_RESPONSE_HEADERS: usize = 256;
pub const MAX_RESPONSE_HEAD: usize = 1_048_575;
/// Most fields an upstream's `Connection` header may nominate; more is a bad response.
pub const MAX_NOMINATIONS: usize = 16;

/// The parser settings for upstream response heads, on both paths (Pingora's): a space
/// before a field's colon is removed and obs-fold lines are joined with one space
/// (RFC 9112 sections 5.1 and 5.2), rather than failing the response.
pub fn response_parser() -> httparse::ParserConfig {
    let mut p = httparse::ParserConfig::default();
    p.allow_spaces_after_header_name_in_responses(true);
    p.allow_obsolete_multiline_headers_in_responses(true);
    p
}

/// [`response_parser`] without obs-fold: the fast path's first try, after which no
/// value can hold CR, LF or NUL.
pub fn unfolded_response_parser() -> httparse::ParserConfig {
    let mut p = httparse::ParserConfig::default();
    p.allow_spaces_after_header_name_in_responses(true);
    p
}

/// Response header fields that are never forwarded to the client, whatever the
/// upstream's `Connection` says (RFC 9110 section 7.6.1).
#[inline(always)]
pub fn is_hop_by_hop_response(name: &[u8]) -> bool {
    // Most names are neither 10 nor 16 bytes long: no comparison at all for them.
    matches!(name.len(), 10 | 16)
        && (name.eq_ignore_ascii_case(b"connection")
            || name.eq_ignore_ascii_case(b"keep-alive")
            || name.eq_ignore_ascii_case(b"proxy-connection"))
}

/// The fields an upstream response's `Connection` header nominates, which are dropped
/// with it (RFC 9110 section 7.6.1) — except the ones that frame the message, which the
/// proxy itself reads.
pub struct Nominations<'a> {
    names: [&'a [u8]; MAX_NOMINATIONS],
    len: usize,
}

/// A `Connection` header that nominates more than [`MAX_NOMINATIONS`] fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyNominations;

impl<'a> Nominations<'a> {
    /// From the values of every `Connection` field.
    pub fn parse(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Nominations<'a>, TooManyNominations> {
        let mut n = Nominations {
            names: [&[][..]; MAX_NOMINATIONS],
            len: 0,
        };
        for v in values {
            for token in v.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let framing = token.eq_ignore_ascii_case(b"content-length")
                    || token.eq_ignore_ascii_case(b"transfer-encoding");
                if token.is_empty() || framing {
                    continue;
                }
                if n.len == MAX_NOMINATIONS {
                    return Err(TooManyNominations);
                }
                n.names[n.len] = token;
                n.len += 1;
            }
        }
        Ok(n)
    }

    /// Whether field `name` is nominated.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.names[..self.len]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
    }

    /// The nominated names.
    pub fn names(&self) -> &[&'a [u8]] {
        &self.names[..self.len]
    }
}

/// A header value as forwarded: each obs-fold joined with one space and any other CR,
/// LF or NUL made a space, as Pingora does (`pingora_http::header_value_from_raw`).
pub fn push_value(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        out.extend_from_slice(pingora::http::header_value_from_slice(v).as_bytes());
    } else {
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_rules() {
        let cl = |v: &[&str]| content_length(v.iter().map(|s| s.as_bytes()));
        assert_eq!(cl(&[]), Length::None);
        assert_eq!(cl(&["5"]), Length::Plain(5));
        assert_eq!(cl(&[" 5 "]), Length::Plain(5));
        assert_eq!(cl(&["5, 5"]), Length::Repeated(5));
        assert_eq!(cl(&["5", "5"]), Length::Repeated(5));
        for bad in [
            &["5, 6"][..],
            &["5", "6"],
            &["+5"],
            &["0x5"],
            &[""],
            &["5,"],
            &["-1"],
        ] {
            assert_eq!(cl(bad), Length::Invalid, "{bad:?}");
        }
        assert_eq!(cl(&["99999999999999999999"]), Length::Invalid);
    }

    #[test]
    fn hop_by_hop_fields_are_dropped() {
        for n in [
            "TE",
            "Keep-Alive",
            "Proxy-Connection",
            "Proxy-Authorization",
            "Trailer",
        ] {
            assert_eq!(classify(n.as_bytes()), Hdr::Drop, "{n}");
        }
        for n in ["X-Forwarded-For", "x-forwarded-host", "X-FORWARDED-PROTO"] {
            assert_eq!(classify(n.as_bytes()), Hdr::Drop, "{n}");
        }
        assert_eq!(classify(b"Transfer-Encoding"), Hdr::Framing);
        assert_eq!(classify(b"Accept"), Hdr::Other);
        let n = Nominations::parse([&b"close, X-Foo"[..], b"keep-alive,content-length"]).unwrap();
        assert_eq!(n.names(), [&b"close"[..], b"X-Foo", b"keep-alive"]);
        assert!(n.contains(b"x-foo"));
        assert!(!n.contains(b"Content-Length"));
        let many = "a,".repeat(MAX_NOMINATIONS + 1);
        assert!(Nominations::parse([many.as_bytes()]).is_err());
        let mut out = Vec::new();
        push_value(&mut out, b"a\r\n  b");
        assert_eq!(out, b"a b");
        // A fold fails the first try and passes the second.
        let folded = b"HTTP/1.1 200 OK\r\nX-A: a\r\n  b\r\n\r\n";
        let mut h = [httparse::EMPTY_HEADER; 4];
        assert!(unfolded_response_parser()
            .parse_response(&mut httparse::Response::new(&mut h), folded)
            .is_err());
        let mut h = [httparse::EMPTY_HEADER; 4];
        assert!(response_parser()
            .parse_response(&mut httparse::Response::new(&mut h), folded)
            .is_ok());
        for n in ["Connection", "keep-alive", "Proxy-Connection"] {
            assert!(is_hop_by_hop_response(n.as_bytes()), "{n}");
        }
        for n in ["Content-Type", "Connectionx", "Server"] {
            assert!(!is_hop_by_hop_response(n.as_bytes()), "{n}");
        }
    }
}
