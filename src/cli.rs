//! The `offramp` command line: argument parsing and the client side of the control
//! socket. Exit codes: 0 success, 1 refused request or invalid arguments (an explicit
//! `-c FILE` that cannot be read included), 2 daemon unreachable: no socket, connection
//! refused, no answer in time (CONTRACT section 4). Errors are one line on stderr.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use time::OffsetDateTime;

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
    /// How long to wait for the daemon's answer (e.g. 5s, 2m).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
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
    /// Print an offramp config made from a Caddy config (a Caddyfile or Caddy's JSON).
    #[command(subcommand)]
    Import(crate::import::ImportCommand),
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
            eprintln!("offramp: no command given: serve, check, status, offline, online, reset or reload (see offramp --help)");
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
        Command::Check => check(&cli.config),
        Command::Import(cmd) => crate::import::run(cmd),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "offramp", &mut script);
            write_stdout(&script, "the completion script")
        }
        Command::Man => {
            let mut page = Vec::new();
            match man_page(&mut page) {
                Ok(()) => write_stdout(&page, "the man page"),
                Err(e) => {
                    eprintln!("offramp: cannot render the man page: {e}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            let explicit = matches.value_source("config") == Some(ValueSource::CommandLine);
            client(&cli, explicit)
        }
    }
}

/// Writes generated text to stdout; a reader that stopped early (`| head`) is not an
/// error.
fn write_stdout(text: &[u8], what: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("offramp: cannot write {what}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The man page: `offramp(1)` with every command, its synopsis, description and
/// options in one page (clap_mangen alone renders the top level only and refers to
/// per-command pages).
fn man_page(w: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Write as _;
    // Not built: built subcommands would repeat every global option.
    let cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    writeln!(w, ".SH COMMANDS")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("offramp {}", sub.get_name());
        writeln!(w, ".SS \"{name}\"")?;
        let sub = sub.clone().bin_name(name);
        let has_args = sub.get_arguments().any(|a| !a.is_hide_set());
        let sub_man = clap_mangen::Man::new(sub);
        // Each section's own `.SH` heading becomes a paragraph break: they are parts
        // of this command.
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part)?;
        sub_man.render_description_section(&mut part)?;
        if has_args {
            sub_man.render_options_section(&mut part)?;
        }
        for line in part.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".SH ") {
                writeln!(w, ".PP")?;
            } else {
                w.write_all(line)?;
            }
        }
    }
    man.render_version_section(w)?;
    Ok(())
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

/// The control socket to use and where that path came from.
struct Socket {
    path: PathBuf,
    from: From,
}

/// Where the control socket's path came from, for messages.
enum From {
    Flag,
    /// `[server] control` in this config file.
    Config(String),
    /// The default path, and why.
    Default(String),
}

/// The socket from `--socket`, else `[server] control` of the config file, read
/// leniently (the rest of the file may have errors: the daemon keeps running on its
/// last good config). A config file given with `-c` that cannot be read is an error;
/// the default one missing means the default socket.
fn socket_path(cli: &Cli, explicit_config: bool) -> Result<Socket, String> {
    if let Some(s) = &cli.socket {
        return Ok(Socket {
            path: s.clone(),
            from: From::Flag,
        });
    }
    let file = config::absolute(&cli.config);
    let shown = file.display();
    let default = |why: String| Socket {
        path: PathBuf::from(config::DEFAULT_CONTROL),
        from: From::Default(why),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if explicit_config => {
            return Err(format!(
                "cannot read config file {shown}: {e} (it says where the control socket is; or give the socket with --socket PATH)"
            ))
        }
        Err(e) => return Ok(default(format!("config file {shown} cannot be read: {e}"))),
    };
    match config::control_path_in(&file, &text) {
        Some(path) => Ok(Socket {
            path,
            from: From::Config(shown.to_string()),
        }),
        None => Ok(default(format!("{shown} does not set server.control"))),
    }
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
        | Command::Import(_)
        | Command::Man => Request {
            cmd: "reload".into(),
            ..Request::default()
        },
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum CallError {
    /// No socket, connection refused, closed without an answer, an unreadable answer.
    Unreachable(std::io::Error),
    /// Connected, but no answer came within the time allowed.
    NoAnswer,
    /// The answer was not a JSON line.
    Garbled(String),
}

/// Sends one request and reads one reply line, all within `timeout` (connecting
/// included: a daemon that stopped accepting must not hang the CLI).
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<Value, CallError> {
    let mut line = serde_json::to_string(req).map_err(|e| CallError::Garbled(e.to_string()))?;
    line.push('\n');
    let path = socket.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The thread is left behind on a timeout; the CLI exits right after.
    std::thread::spawn(move || {
        let exchange = || -> std::io::Result<String> {
            let mut s = UnixStream::connect(&path)?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            s.write_all(line.as_bytes())?;
            let mut reply = String::new();
            BufReader::new(s).read_line(&mut reply)?;
            Ok(reply)
        };
        let _ = tx.send(exchange());
    });
    let reply = match rx.recv_timeout(timeout) {
        Ok(Ok(r)) => r,
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(CallError::NoAnswer)
        }
        Ok(Err(e)) => return Err(CallError::Unreachable(e)),
        Err(_) => return Err(CallError::NoAnswer),
    };
    if reply.is_empty() {
        return Err(CallError::Unreachable(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed the connection without answering",
        )));
    }
    serde_json::from_str(&reply).map_err(|e| CallError::Garbled(e.to_string()))
}

/// The one line said when `call` fails.
fn unreachable_message(socket: &Socket, e: &CallError, timeout: Duration) -> String {
    let path = socket.path.display();
    let hint = match &socket.from {
        From::Flag => String::new(),
        From::Config(file) => format!(
            " (path from server.control in {file}; if that was changed since offramp started, offramp listens on the old path until restarted: give it with --socket PATH)"
        ),
        From::Default(why) => format!(
            " (the default path: {why}; give the socket with --socket PATH or the config with -c FILE)"
        ),
    };
    match e {
        CallError::Unreachable(e) => format!("cannot reach offramp at {path}: {e}{hint}"),
        CallError::NoAnswer => format!(
            "no answer from offramp at {path} within {} (is it overloaded or stuck? see its log; --timeout sets the wait)",
            crate::duration::format(timeout)
        ),
        CallError::Garbled(e) => {
            format!("unreadable answer from {path}: {e}; is that an offramp control socket?{hint}")
        }
    }
}

/// A refusal message from the daemon made one line: lines joined, control characters
/// escaped (it may quote what the request or the config file contained).
fn one_line(msg: &str) -> String {
    let mut out = String::new();
    for l in msg.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(l);
    }
    crate::table::escape(&out)
}

fn client(cli: &Cli, explicit_config: bool) -> ExitCode {
    // Invalid arguments are refused before the daemon is asked: exit 1 even without it.
    if let Command::Offline { until: Some(u), .. } = &cli.command {
        if let Err(e) = crate::control::parse_until(u, OffsetDateTime::now_utc()) {
            eprintln!("offramp: {}", crate::table::escape(&e));
            return ExitCode::from(1);
        }
    }
    let socket = match socket_path(cli, explicit_config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("offramp: {}", crate::table::escape(&e));
            return ExitCode::from(1);
        }
    };
    let req = request_for(&cli.command);
    let reply = match call(&socket.path, &req, cli.timeout) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "offramp: {}",
                crate::table::escape(&unreachable_message(&socket, &e, cli.timeout))
            );
            return ExitCode::from(2);
        }
    };
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        let msg = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("request refused");
        eprintln!("offramp: {}", one_line(msg));
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
