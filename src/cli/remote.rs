//! The commands the daemon answers: `status`, `offline`, `online`, `reset` and
//! `reload`. Each becomes one control request; the reply is printed as a table, JSON
//! or a reload summary. Invalid arguments are refused here, before the daemon is
//! asked. Sending is `client`'s; deciding is the daemon's.

use std::process::ExitCode;

use serde_json::Value;
use time::OffsetDateTime;

use super::client::{call, socket_path, unreachable_message};
use super::{Cli, Command, TargetArgs};
use crate::control::Request;

/// Runs a command the daemon answers; the exit code.
pub(super) fn run(cli: &Cli, explicit_config: bool) -> ExitCode {
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
    let Some(req) = request_for(&cli.command) else {
        eprintln!("offramp: this command does not talk to the daemon");
        return ExitCode::from(1);
    };
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

/// The control request of a command that talks to the daemon; `None` for the others
/// (which `cli::main` runs itself), so that no command can turn into another.
fn request_for(cmd: &Command) -> Option<Request> {
    let target = |t: &TargetArgs| (t.sites.clone(), t.all);
    Some(match cmd {
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
        Command::Reload => Request {
            cmd: "reload".into(),
            ..Request::default()
        },
        Command::Serve
        | Command::Check
        | Command::Completions { .. }
        | Command::Man
        | Command::Import(_)
        | Command::Incident(_)
        | Command::Maintenance(_)
        | Command::Notify(_)
        | Command::Subscribers(_) => return None,
    })
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
