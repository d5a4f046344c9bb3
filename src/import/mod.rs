//! `offramp import`: reads a Caddyfile or Caddy's JSON config and prints an offramp
//! config (CONTRACT section 14).
//!
//! Owns the command and the path from a Caddy file to TOML text: `lexer` (words),
//! `expand` (snippets and `import`, with `glob`), `parse` (Caddyfile blocks),
//! `caddyfile` and `json` (each source onto the common `model`), `mapping` (Caddy
//! sites → offramp sites), `emit` (the TOML text and the summary). Validation of the result is the config
//! parser's (`--check` calls it); nothing here is used by the proxy.

mod caddyfile;
mod emit;
mod expand;
mod glob;
mod json;
mod lexer;
mod mapping;
mod model;
mod parse;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;

/// The largest file read (a Caddyfile, an imported file or a JSON config).
pub const MAX_FILE: usize = 4 << 20;

/// `offramp import`: the source format and its options.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Read a Caddyfile (with its snippets and imported files).
    Caddyfile(ImportArgs),
    /// Read Caddy's JSON config: what `caddy adapt` prints, or Caddy's autosave.json.
    CaddyJson(ImportArgs),
}

/// Arguments of both `import` forms.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to read.
    pub path: PathBuf,
    /// Upstream of a site Caddy only redirected (an offline site): NAME=HOST:PORT or
    /// NAME=http(s)://HOST[:PORT]. May be given several times.
    #[arg(long = "upstream", value_name = "NAME=HOST:PORT", value_parser = parse_upstream_arg)]
    pub upstreams: Vec<(String, String)>,
    /// Validate the result with offramp's own config checks and say what is missing.
    #[arg(long)]
    pub check: bool,
}

fn parse_upstream_arg(s: &str) -> Result<(String, String), String> {
    let (name, up) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=HOST:PORT"))?;
    let url = model::upstream_url(up)?;
    Ok((name.to_string(), url))
}

/// Where something was written: a file and a 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct Loc {
    pub file: Arc<Path>,
    pub line: usize,
}

impl Loc {
    /// `file:line`.
    pub fn new(file: &Arc<Path>, line: usize) -> Loc {
        Loc {
            file: file.clone(),
            line,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{loc}: {message}")]
    Syntax { loc: Loc, message: String },
}

impl ImportError {
    fn at(file: &Path, line: usize, message: impl Into<String>) -> ImportError {
        ImportError::Syntax {
            loc: Loc {
                file: Arc::from(file),
                line,
            },
            message: message.into(),
        }
    }
}

/// Reads a whole text file of at most [`MAX_FILE`] bytes that must be UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let line_at = |end: usize| bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1;
    if bytes.len() > MAX_FILE {
        return Err(ImportError::at(
            path,
            line_at(MAX_FILE),
            format!(
                "the file is larger than {} MiB; no Caddy config is that big, so this is not read",
                MAX_FILE >> 20
            ),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(ImportError::at(
                path,
                line,
                format!(
                    "not UTF-8 text (byte 0x{:02x}): is this a Caddy config?",
                    bytes[at]
                ),
            ))
        }
    }
}

/// Runs `offramp import …`; the exit code.
pub fn run(cmd: &ImportCommand) -> ExitCode {
    let (args, source) = match cmd {
        ImportCommand::Caddyfile(a) => (a, caddyfile::read(&a.path)),
        ImportCommand::CaddyJson(a) => (a, json::read(&a.path)),
    };
    let source = match source {
        Ok(s) => s,
        Err(e) => {
            eprintln!("offramp: {e}");
            return ExitCode::from(1);
        }
    };
    let plan = mapping::map(source, &args.upstreams);
    if plan.sites.is_empty() {
        eprint!("{}", emit::summary(&plan));
        eprintln!(
            "offramp: nothing to import: {} has no site with a host name",
            plan.path
        );
        return ExitCode::from(1);
    }
    let text = emit::toml(&plan);
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("offramp: cannot write the config: {e}");
                return ExitCode::from(1);
            }
        }
    }
    eprint!("{}", emit::summary(&plan));
    if args.check {
        return check(&plan, &text);
    }
    ExitCode::SUCCESS
}

/// `--check`: the produced text through offramp's own validation, as if it were
/// `./offramp.toml`.
fn check(plan: &mapping::Plan, text: &str) -> ExitCode {
    let mut ok = true;
    for s in plan.sites.iter().filter(|s| s.left_out.is_some()) {
        ok = false;
        eprintln!(
            "check: site {} is left out: {}",
            s.name,
            s.left_out.as_deref().unwrap_or_default()
        );
    }
    match Config::parse(text, Path::new("offramp.toml")) {
        Ok(c) => {
            if ok {
                eprintln!(
                    "check: the config passes offramp check ({} site{})",
                    c.sites.len(),
                    if c.sites.len() == 1 { "" } else { "s" }
                );
                return ExitCode::SUCCESS;
            }
            eprintln!("check: the config passes offramp check, without the sites left out");
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("check: {e}");
            }
        }
    }
    ExitCode::from(1)
}
