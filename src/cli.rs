//! The `offramp` command line: argument parsing and the client side of the control
//! socket. Exit codes: 0 success, 1 refused request or invalid arguments, 2 daemon
//! unreachable (CONTRACT section 4). Errors are one line on stderr.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::config::{self, Config};
use crate::control::Request;

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
    /// Log format of `serve`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) generated from this command line.
    Man,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Site names.
    sites: Vec<String>,
    /// Every site, present and future.
    #[arg(long)]
    all: bool,
}

/// Parses arguments and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(if e.use_stderr() { 1 } else { 0 })
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
                    eprintln!("offramp: {first} (see offramp --help)");
                    ExitCode::from(1)
                }
            };
        }
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
        Command::Check => check(&cli.config),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "offramp", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("offramp: cannot write the man page: {e}");
                    ExitCode::from(1)
                }
            }
        }
        _ => client(&cli),
    }
}

fn check(path: &Path) -> ExitCode {
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

fn socket_path(cli: &Cli) -> PathBuf {
    if let Some(s) = &cli.socket {
        return s.clone();
    }
    config::control_path_hint(&cli.config).unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONTROL))
}

fn request_for(cmd: &Command) -> Request {
    let target = |t: &TargetArgs| (t.sites.clone(), t.all);
    match cmd {
        Command::Status { sites, .. } => Request {
            cmd: "status".into(),
            sites: sites.clone(),
            ..Request::default()
        },
        Command::Offline {
            target: t,
            reason,
            until,
        } => {
            let (sites, all) = target(t);
            Request {
                cmd: "offline".into(),
                sites,
                all,
                reason: reason.clone(),
                until: until.clone(),
            }
        }
        Command::Online { target: t, reason } => {
            let (sites, all) = target(t);
            Request {
                cmd: "online".into(),
                sites,
                all,
                reason: reason.clone(),
                until: None,
            }
        }
        Command::Reset { target: t } => {
            let (sites, all) = target(t);
            Request {
                cmd: "reset".into(),
                sites,
                all,
                ..Request::default()
            }
        }
        Command::Reload
        | Command::Serve
        | Command::Check
        | Command::Completions { .. }
        | Command::Man => Request {
            cmd: "reload".into(),
            ..Request::default()
        },
    }
}

/// Sends one request and reads one reply line. `Err` means the daemon is unreachable.
pub fn call(socket: &Path, req: &Request) -> Result<Value, String> {
    let unreachable =
        |e: std::io::Error| format!("cannot reach offramp at {}: {e}", socket.display());
    let mut s = UnixStream::connect(socket).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(unreachable)?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(unreachable)?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(unreachable)?;
    let mut reply = String::new();
    BufReader::new(s)
        .read_line(&mut reply)
        .map_err(unreachable)?;
    if reply.is_empty() {
        return Err(format!(
            "offramp at {} closed the connection without answering",
            socket.display()
        ));
    }
    serde_json::from_str(&reply).map_err(|e| format!("unreadable answer from offramp: {e}"))
}

fn client(cli: &Cli) -> ExitCode {
    let socket = socket_path(cli);
    let req = request_for(&cli.command);
    let reply = match call(&socket, &req) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("offramp: {e}");
            return ExitCode::from(2);
        }
    };
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        let msg = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("request refused");
        eprintln!("offramp: {}", msg.replace('\n', "; "));
        return ExitCode::from(1);
    }
    match &cli.command {
        Command::Status { json: true, .. } => {
            let mut out = reply.clone();
            if let Some(o) = out.as_object_mut() {
                o.remove("ok");
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Command::Reload => print_reload(&reply),
        _ => {
            print!("{}", crate::table::render(&reply));
        }
    }
    ExitCode::SUCCESS
}

fn print_reload(reply: &Value) {
    let r = &reply["reload"];
    let list = |k: &str| -> Vec<String> {
        r[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    println!("config reloaded");
    if r["certs_reloaded"].as_bool() == Some(true) {
        println!("  certificates reloaded");
    }
    for (key, label) in [
        ("added", "sites added"),
        ("removed", "sites removed"),
        ("state_changed", "state edited"),
        ("dropped_overrides", "runtime overrides dropped"),
        ("needs_restart", "needs restart to apply"),
    ] {
        let items = list(key);
        if !items.is_empty() {
            println!("  {label}: {}", items.join(", "));
        }
    }
}
