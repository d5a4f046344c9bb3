//! `offramp check`: validates the config file without a daemon, as `serve` would load
//! it, and says what it found. The validation itself is `config`'s.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// Loads the config at `path`; prints its warnings and errors, or a one-line summary.
pub(super) fn run(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let listeners = c.server.http.len() + c.server.https.len();
            let certs = c.tls.as_ref().map_or(String::new(), |t| {
                format!(", {} certificate{}", t.pairs.len(), plural(t.pairs.len()))
            });
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            // `serve` keeps running with an expired certificate (it warns); `check` is
            // where an operator must hear it as an error.
            let now = time::OffsetDateTime::now_utc();
            let expired: Vec<_> = c.tls.iter().flat_map(|t| t.expired(now)).collect();
            for p in &expired {
                eprintln!(
                    "{}: certificate expired on {} (names: {})",
                    p.file.display(),
                    p.not_after.date(),
                    p.names.join(", ")
                );
            }
            if !expired.is_empty() {
                return ExitCode::from(1);
            }
            println!(
                "{}: OK ({} site{}, {} listener{}{certs})",
                c.file.display(),
                c.sites.len(),
                plural(c.sites.len()),
                listeners,
                plural(listeners),
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{} error{} found",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
    }
}
