//! The upstream's response head on the fast path: parsed (without obs-fold first, with
//! it when that fails), its framing decided, and the client's head written by the one
//! forwarding policy (`request::forward`): hop-by-hop fields dropped, a repeated
//! `Content-Length` written once, `Date` added when missing.

use crate::reply::h1;
use crate::request::forward::{self, Length, MAX_RESPONSE_HEAD, MAX_RESPONSE_HEADERS};

/// How the upstream response body ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes.
    Close,
}

/// A parsed upstream response head.
pub(super) struct RespHead {
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) framing: Framing,
    /// The upstream connection may carry another request after this response.
    pub(super) reusable: bool,
}

/// Parses the upstream response head at the start of `ubuf` and writes the client's
/// head into `out`. `Ok(None)`: incomplete.
pub(super) fn response_head(
    ubuf: &[u8],
    head_only: bool,
    keepalive: bool,
    out: &mut Vec<u8>,
) -> Result<Option<RespHead>, ()> {
    // Not initialised up front: 256 empty fields per response would cost a memset.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    // First without obs-fold, which nearly no upstream sends: values then hold no CR
    // or LF and are copied as they are. A head that fails is read again the way
    // Pingora reads it (folds allowed), and its values are normalised.
    let strict = forward::unfolded_response_parser().parse_response_with_uninit_headers(
        &mut resp,
        ubuf,
        &mut headers,
    );
    let mut headers2 =
        [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp2 = httparse::Response::new(&mut []);
    let (resp, len, folded) = match strict {
        Ok(httparse::Status::Complete(n)) => (resp, n, false),
        Ok(httparse::Status::Partial) if ubuf.len() < MAX_RESPONSE_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(()),
        Err(_) => match forward::response_parser().parse_response_with_uninit_headers(
            &mut resp2,
            ubuf,
            &mut headers2,
        ) {
            Ok(httparse::Status::Complete(n)) => (resp2, n, true),
            Ok(httparse::Status::Partial) if ubuf.len() < MAX_RESPONSE_HEAD => return Ok(None),
            _ => return Err(()),
        },
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(());
    };
    if !(100..=599).contains(&status) {
        return Err(());
    }
    let mut reusable = version == 1;
    let mut chunked = false;
    let mut te = false;
    let mut date = false;
    // One pass over the fields: the first Content-Length and Connection are kept, and
    // the fields are walked again for them only when there are several.
    let (mut lengths, mut first_length) = (0usize, None);
    let (mut connections, mut first_connection) = (0usize, None);
    for h in resp.headers.iter() {
        let n = h.name.as_bytes();
        if n.eq_ignore_ascii_case(b"content-length") {
            lengths += 1;
            first_length = first_length.or(Some(h.value));
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if n.eq_ignore_ascii_case(b"connection") {
            connections += 1;
            first_connection = first_connection.or(Some(h.value));
            if h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                reusable = false;
            }
        } else if n.eq_ignore_ascii_case(b"date") {
            date = true;
        }
    }
    let fields = |name: &'static str| {
        resp.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let length = if lengths > 1 {
        forward::content_length(fields("content-length"))
    } else {
        forward::content_length(first_length)
    };
    let repeated = matches!(length, Length::Repeated(_));
    let length = match length {
        Length::Invalid => return Err(()),
        l => l.value(),
    };
    let nominated = if connections > 1 {
        forward::Nominations::parse(fields("connection"))
    } else {
        forward::Nominations::parse(first_connection)
    }
    .map_err(|_| ())?;
    let framing = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if te {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::Close
    };
    // Both framings at once (RFC 9112 section 6.3): Transfer-Encoding wins for this
    // response, and the connection is not trusted with another.
    if framing == Framing::Close || (te && length.is_some()) {
        reusable = false;
    }
    let client_keepalive = keepalive && framing != Framing::Close;
    out.clear();
    h1::status_line(
        out,
        status,
        Some(resp.reason.unwrap_or_default().as_bytes()),
    );
    let mut length_written = false;
    for h in resp.headers.iter() {
        let n = h.name.as_bytes();
        let is_length = n.eq_ignore_ascii_case(b"content-length");
        let skip = forward::is_hop_by_hop_response(n)
            || nominated.contains(n)
            || (is_length && (te || (repeated && length_written)));
        if skip {
            continue;
        }
        match (is_length && repeated, length) {
            // A repeated length reaches the client as one value, never as a list.
            (true, Some(l)) => {
                out.extend_from_slice(b"Content-Length: ");
                h1::push_decimal(out, usize::try_from(l).unwrap_or(usize::MAX));
                out.extend_from_slice(b"\r\n");
                length_written = true;
            }
            _ => {
                out.extend_from_slice(n);
                out.extend_from_slice(b": ");
                if folded {
                    forward::push_value(out, h.value);
                } else {
                    out.extend_from_slice(h.value);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if !date {
        h1::date_header(out);
    }
    if (100..200).contains(&status) {
        out.extend_from_slice(b"\r\n");
    } else {
        h1::end_head(out, client_keepalive);
    }
    Ok(Some(RespHead {
        len,
        status,
        framing,
        reusable,
    }))
}
