//! The SNI resolver of the HTTPS listeners and their rustls server config. The resolver
//! holds the certificates in force and swaps them atomically on reload; which pair
//! serves a name is `store`'s; binding the listeners is `server`'s.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::store::CertStore;

/// The rustls certificate resolver of the HTTPS listeners; `set` swaps the store
/// atomically (a reload), handshakes in progress keep the certificate they picked.
pub struct Resolver(ArcSwap<CertStore>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resolver").field(&*self.0.load()).finish()
    }
}

impl Resolver {
    /// A resolver serving `store`; its expiry times go to the metrics.
    pub fn new(store: Arc<CertStore>) -> Resolver {
        publish_expiry(&store);
        Resolver(ArcSwap::new(store))
    }

    /// Puts a new set of certificates in force.
    pub fn set(&self, store: Arc<CertStore>) {
        publish_expiry(&store);
        self.0.store(store);
    }

    /// The certificates in force.
    pub fn store(&self) -> Arc<CertStore> {
        self.0.load_full()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolve(hello.server_name())
    }
}

/// Sets `offramp_certificate_expiry_timestamp_seconds` to the certificates in force.
fn publish_expiry(store: &CertStore) {
    if let Some(m) = crate::metrics::get() {
        m.set_certificates(
            store
                .pairs
                .iter()
                .map(|p| (p.name.as_str(), p.not_after.unix_timestamp())),
        );
    }
}

/// The rustls server config of the HTTPS listeners: our resolver, h2 then http/1.1 by
/// ALPN, TLS 1.2 and 1.3 with the ring provider.
pub fn server_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
