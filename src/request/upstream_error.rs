//! The one taxonomy of upstream failures both paths map into. It alone decides the
//! status a visitor gets (when nothing was sent yet), the access log's `error` label,
//! and that `offramp_upstream_errors_total` counts it (every kind does; a client that
//! goes away is not an upstream error and is never counted).

use pingora::{Error, ErrorSource, ErrorType};

/// Why an exchange with an upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// The connection was refused, reset or failed (TLS handshake included).
    Connect,
    /// No connection within `connect_timeout`.
    ConnectTimeout,
    /// No answer (or no further body bytes) within `read_timeout`.
    ReadTimeout,
    /// The request could not be written within `read_timeout`.
    WriteTimeout,
    /// An answer that is not valid HTTP/1 (garbage, a bad status or `Content-Length`,
    /// bad chunks, an unexpected `101`), or none at all: the connection closed or reset
    /// before a response head.
    BadResponse,
    /// The response head was forwarded, then its body ended early.
    CutBody,
}

impl UpstreamError {
    /// The status the visitor gets when no response head was sent yet.
    pub fn status(self) -> u16 {
        match self {
            UpstreamError::ReadTimeout | UpstreamError::WriteTimeout => 504,
            _ => 502,
        }
    }

    /// The access log's `error` value.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamError::Connect => "ConnectError",
            UpstreamError::ConnectTimeout => "ConnectTimedout",
            UpstreamError::ReadTimeout => "ReadTimedout",
            UpstreamError::WriteTimeout => "WriteTimedout",
            UpstreamError::BadResponse => "BadResponse",
            UpstreamError::CutBody => "CutBody",
        }
    }

    /// A Pingora error from the upstream side, classified; `response_sent`: the
    /// response head already went to the client. `None` for an error that is not the
    /// upstream's (the client's, or offramp's own).
    pub fn from_pingora(e: &Error, response_sent: bool) -> Option<UpstreamError> {
        if e.esource() != &ErrorSource::Upstream {
            return None;
        }
        let kind = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::TLSHandshakeTimedout => {
                UpstreamError::ConnectTimeout
            }
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::BindError
            | ErrorType::SocketError
            | ErrorType::TLSHandshakeFailure
            | ErrorType::InvalidCert
            | ErrorType::HandshakeError
            | ErrorType::ConnectProxyFailure => UpstreamError::Connect,
            _ if response_sent => UpstreamError::CutBody,
            ErrorType::ReadTimedout => UpstreamError::ReadTimeout,
            ErrorType::WriteTimedout => UpstreamError::WriteTimeout,
            _ => UpstreamError::BadResponse,
        };
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_label_and_pingora_mapping() {
        let up = |t: ErrorType| Error::new(t).into_up();
        let map = |t: ErrorType, sent: bool| UpstreamError::from_pingora(&up(t), sent);
        assert_eq!(
            map(ErrorType::ConnectRefused, false),
            Some(UpstreamError::Connect)
        );
        assert_eq!(
            map(ErrorType::ConnectTimedout, false),
            Some(UpstreamError::ConnectTimeout)
        );
        assert_eq!(
            map(ErrorType::ReadTimedout, false),
            Some(UpstreamError::ReadTimeout)
        );
        assert_eq!(
            map(ErrorType::WriteTimedout, false),
            Some(UpstreamError::WriteTimeout)
        );
        assert_eq!(
            map(ErrorType::InvalidHTTPHeader, false),
            Some(UpstreamError::BadResponse)
        );
        assert_eq!(
            map(ErrorType::ReadTimedout, true),
            Some(UpstreamError::CutBody)
        );
        assert_eq!(
            map(ErrorType::ConnectionClosed, true),
            Some(UpstreamError::CutBody)
        );
        let down = Error::new(ErrorType::ReadError).into_down();
        assert_eq!(UpstreamError::from_pingora(&down, false), None);
        assert_eq!(UpstreamError::ReadTimeout.status(), 504);
        assert_eq!(UpstreamError::WriteTimeout.status(), 504);
        assert_eq!(UpstreamError::Connect.status(), 502);
        assert_eq!(UpstreamError::WriteTimeout.label(), "WriteTimedout");
    }
}
