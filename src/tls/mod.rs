//! TLS certificates: the `certs` directory of PEM pairs, loaded and checked as a whole,
//! and the SNI resolver the HTTPS listeners use.
//!
//! A pair is `NAME.crt` (leaf first, then the chain) + `NAME.key` (PKCS#8, or PKCS#1 /
//! SEC1, RSA or EC). Each pair is served for the DNS names in its certificate's SAN,
//! wildcards included: `*.example.com` matches exactly one non-empty label, as RFC 6125
//! and browsers match it (`a.example.com`, never `a.b.example.com` or `example.com`).
//! With no SNI, or an unknown name, the pair named `default` is served if there is one,
//! else the first pair in file-name order.
//!
//! An expired certificate is not a load error: refusing the whole directory for it
//! would take every other site's HTTPS down at the next start or refuse every reload.
//! It is reported as a warning (`offramp check` should treat it as an error, see
//! [`CertStore::expired`]), kept out of the way of a valid pair for the same name, and
//! otherwise served as is: clients reject it, as they would with no certificate.
//!
//! Owns: reading and validating certificates (`pair`), the name → certificate map
//! (`store`), and the resolver that swaps it on reload (`resolver`). Does not own: listeners (see `server`) or when a
//! reload happens (see `watch` and `daemon`).

mod client;
mod pair;
mod resolver;
mod store;
#[cfg(test)]
mod tests;

pub use client::client_config;
pub use pair::{CertIssue, CertPair, EXPIRY_WARNING_DAYS};
pub use resolver::{server_config, Resolver};
pub use store::{CertReport, CertStore};
