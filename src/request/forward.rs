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
    }
}
