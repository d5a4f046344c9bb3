//! The `offramp` command line: the arguments (clap) and which command runs where.
//! Exit codes: 0 success, 1 refused request or invalid arguments (an explicit
//! `-c FILE` that cannot be read included), 2 daemon unreachable: no socket, connection
//! refused, no answer in time (CONTRACT section 4). Errors are one line on stderr.
//!
//! `serve` is `server`'s; `check` is in `check`, `completions` and `man` in `generate`,
//! the commands the daemon answers (status, offline, online, reset, reload) in
//! `remote`, the status platform's (incident, maintenance) in `platform`, and the
//! control-socket client they share in `client`. The protocol's other
//! end is `control`.

mod check;
mod client;
mod generate;
mod notify;
mod platform;
mod platform_text;
mod remote;
mod subscribers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config;

pub use crate::logging::LogFormat;
pub use client::{call, CallError};

/// offramp: a reverse proxy whose sites can be flipped offline to a status page.
#[derive(Debug, Parser)]
#[command(name = "offramp", version, about, long_about = None)]
pub struct Cli {
    /// Config file.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Control socket (default: [server] control from the config file).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// How long to wait for the daemon's answer (e.g. 5s, 2m).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Log format of `serve`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

// The commands. (No `///` on this or `TargetArgs`: clap would print it as help.)
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy in the foreground (systemd runs this).
    Serve,
    /// Validate the config file; print every error and exit 1 if there is any.
    Check,
    /// Show the effective state of each site.
    Status {
        /// Sites to show (default: all).
        sites: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Take sites offline: visitors go to the status page.
    Offline {
        #[command(flatten)]
        target: TargetArgs,
        /// Why (shown by status and logged).
        #[arg(long)]
        reason: Option<String>,
        /// When the override ends by itself: 90s, 30m, 2h or an RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Bring sites online.
    Online {
        #[command(flatten)]
        target: TargetArgs,
        /// Why (shown by status and logged).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Drop runtime overrides: back to the config file's states.
    Reset {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Re-read the config file and certificates now.
    Reload,
    /// Incidents on the status page: open, update, resolve, list, show.
    // Without a subcommand: a one-line usage error (exit 1), not the help.
    #[command(subcommand, arg_required_else_help = false)]
    Incident(platform::IncidentCmd),
    /// Scheduled maintenance: schedule, list, show, update, complete, cancel.
    #[command(subcommand, arg_required_else_help = false)]
    Maintenance(platform::MaintenanceCmd),
    /// Notification targets: list what is pending or failed, send a test event.
    #[command(subcommand, arg_required_else_help = false)]
    Notify(notify::NotifyCmd),
    /// E-mail subscribers: list them, remove one.
    #[command(subcommand, arg_required_else_help = false)]
    Subscribers(subscribers::SubscribersCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from this command line.
    Man,
    /// Print an offramp config made from a Caddy config (a Caddyfile or Caddy's JSON).
    #[command(subcommand, arg_required_else_help = false)]
    Import(crate::import::ImportCommand),
}

// Which sites a flip or reset touches: names, or `--all`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Site names.
    sites: Vec<String>,
    /// Every site, present and future.
    #[arg(long)]
    all: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match crate::duration::parse(s)? {
        d if d.is_zero() => Err("the timeout must be more than 0".into()),
        d => Ok(d),
    }
}

/// Parses the arguments; `Err` is the exit code after the error or help was printed.
fn parse_args() -> Result<(Cli, ArgMatches), ExitCode> {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    parsed.map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("offramp: no command given: serve, check, status, offline, online, reset, reload, incident, maintenance, notify or subscribers (see offramp --help)");
            ExitCode::from(1)
        }
        clap::error::ErrorKind::MissingSubcommand => {
            eprintln!("offramp: {}", crate::table::escape(&missing_subcommand(&e)));
            ExitCode::from(1)
        }
        _ => {
            // Errors are one line on stderr (CONTRACT section 4).
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("offramp: {} (see offramp --help)", crate::table::escape(first));
            ExitCode::from(1)
        }
    })
}

/// `offramp incident` alone: which command is missing its subcommand, and the choices.
fn missing_subcommand(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let parent = match e.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) => s.as_str(),
        _ => "offramp",
    };
    let choices = match e.get(ContextKind::ValidSubcommand) {
        Some(ContextValue::Strings(v)) => v
            .iter()
            .filter(|s| *s != "help")
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let name = parent.strip_prefix("offramp ").unwrap_or(parent);
    format!("{name} needs a subcommand: {choices} (see {parent} --help)")
}

/// Whether `-c` was given (an unreadable file is then an error, not the default socket).
fn explicit_config(matches: &ArgMatches) -> bool {
    matches.value_source("config") == Some(ValueSource::CommandLine)
}

/// Parses arguments and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let (cli, matches) = match parse_args() {
        Ok(p) => p,
        Err(code) => return code,
    };
    match &cli.command {
        Command::Serve => {
            crate::logging::init(cli.log_format);
            match crate::server::serve(&cli.config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check => check::run(&cli.config),
        Command::Completions { shell } => generate::completions(*shell),
        Command::Man => generate::man(),
        Command::Import(cmd) => crate::import::run(cmd),
        Command::Incident(c) => platform::incident(&cli, c, explicit_config(&matches)),
        Command::Maintenance(c) => platform::maintenance(&cli, c, explicit_config(&matches)),
        Command::Notify(c) => notify::run(&cli, c, explicit_config(&matches)),
        Command::Subscribers(c) => subscribers::run(&cli, c, explicit_config(&matches)),
        _ => remote::run(&cli, explicit_config(&matches)),
    }
}
