//! One health check: a `GET` of the site's health path from one upstream, on a
//! connection of its own (never the proxy's pool), with the site's host as `Host`, its
//! `tls_verify`, `User-Agent: offramp-health/VERSION` and one timeout for the whole
//! answer head. The HTTP client is reqwest (hyper underneath): a well-kept client
//! rather than a hand-written one, on the same rustls as the proxy.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{Health, Upstream};

/// `User-Agent` of every check, so upstreams and their logs can tell checks from visitors.
pub const USER_AGENT: &str = concat!("offramp-health/", env!("CARGO_PKG_VERSION"));

/// Why a check failed, as the metric's `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Refused or unreachable.
    Connect,
    /// No answer head within `timeout` (an upstream that accepts and never answers).
    Timeout,
    /// The TLS handshake failed (a certificate that does not verify, among others).
    Tls,
    /// An answer that is not HTTP.
    Protocol,
    /// The connection was reset or closed before an answer.
    Reset,
    /// A status `expect` does not accept.
    Status,
}

impl Reason {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Connect => "connect",
            Reason::Timeout => "timeout",
            Reason::Tls => "tls",
            Reason::Protocol => "protocol",
            Reason::Reset => "reset",
            Reason::Status => "status",
        }
    }
}

/// A failed check: its reason and one line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub detail: String,
}

/// What checks one upstream of one site: a client bound to it.
pub struct Probe {
    client: reqwest::Client,
    url: String,
    host: String,
    timeout: Duration,
}

impl Probe {
    /// A probe of `upstream` for a site answering to `host`, or why none can be made.
    pub fn new(
        upstream: &Upstream,
        host: &str,
        health: &Health,
        connect_timeout: Duration,
        tls_verify: bool,
    ) -> Result<Probe, String> {
        let scheme = if upstream.tls { "https" } else { "http" };
        let authority = if upstream.host.contains(':') {
            format!("[{}]:{}", upstream.host, upstream.port)
        } else {
            format!("{}:{}", upstream.host, upstream.port)
        };
        let url = format!("{scheme}://{authority}{}", health.path);
        let tls = client_tls(tls_verify)?;
        let client = reqwest::Client::builder()
            // The address the config resolved, as the proxy uses it; the name stays the
            // URL's for SNI and certificate checks.
            .resolve(&upstream.host, upstream.addr)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout.min(health.timeout))
            .timeout(health.timeout)
            .user_agent(USER_AGENT)
            .no_proxy()
            .http1_only()
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| format!("cannot build the health check client: {e}"))?;
        Ok(Probe {
            client,
            url,
            host: host.to_string(),
            timeout: health.timeout,
        })
    }

    /// Runs one check: the status code, or why there is none.
    pub async fn check(&self) -> Result<u16, Failure> {
        let req = self
            .client
            .get(&self.url)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONNECTION, "close")
            .send();
        // reqwest's own timeout covers it; this one is the guarantee a checker never
        // waits longer, whatever the peer does.
        match tokio::time::timeout(self.timeout + Duration::from_millis(50), req).await {
            Err(_) => Err(Failure {
                reason: Reason::Timeout,
                detail: format!("no answer within {}", crate::duration::format(self.timeout)),
            }),
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

/// The reason of a client error, from the errors it wraps.
fn classify(e: &reqwest::Error) -> Failure {
    let mut detail = e.to_string();
    let mut reason = if e.is_timeout() {
        Reason::Timeout
    } else if e.is_connect() {
        Reason::Connect
    } else {
        Reason::Reset
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            reason = Reason::Tls;
            detail = format!("TLS: {r}");
            break;
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                reason = Reason::Protocol;
            } else if h.is_incomplete_message() {
                reason = Reason::Reset;
            } else if h.is_timeout() {
                reason = Reason::Timeout;
            }
            detail = h.to_string();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // hyper-rustls wraps tokio-rustls' io::Error (which carries the rustls::Error)
            // in another io::Error, and io::Error::source skips what it wraps: look inside.
            let inner = io.get_ref();
            let tls = inner.and_then(|e| {
                e.downcast_ref::<rustls::Error>()
                    .map(ToString::to_string)
                    .or_else(|| {
                        e.downcast_ref::<std::io::Error>()
                            .and_then(|i| i.get_ref())
                            .and_then(|e| e.downcast_ref::<rustls::Error>())
                            .map(ToString::to_string)
                    })
            });
            if let Some(t) = tls {
                reason = Reason::Tls;
                detail = format!("TLS: {t}");
                break;
            }
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable => {
                    reason = Reason::Connect
                }
                // Reset while connecting (a TLS handshake cut) or after: the peer closed.
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    reason = Reason::Reset
                }
                TimedOut => reason = Reason::Timeout,
                InvalidData => reason = Reason::Tls,
                _ => {}
            }
            detail = io.to_string();
        }
        source = s.source();
    }
    Failure { reason, detail }
}

/// The rustls client settings of checks: the system's roots (as the proxy's own
/// upstream connections), or no verification at all for `tls_verify = false`. Built
/// once each.
fn client_tls(verify: bool) -> Result<rustls::ClientConfig, String> {
    static VERIFIED: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    static UNVERIFIED: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    let cell = if verify { &VERIFIED } else { &UNVERIFIED };
    cell.get_or_init(|| build_tls(verify)).clone()
}

fn build_tls(verify: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings for health checks: {e}"))?;
    let config = if verify {
        let mut roots = rustls::RootCertStore::empty();
        // A certificate the system store has but rustls cannot read is skipped, as the
        // proxy's own upstream connections do.
        for cert in rustls_native_certs::load_native_certs().unwrap_or_default() {
            let _ = roots.add(cert);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    Ok(config)
}

/// `tls_verify = false`: any certificate is accepted, as the proxy does for that site;
/// handshake signatures are still checked, so the connection is TLS all the same.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
