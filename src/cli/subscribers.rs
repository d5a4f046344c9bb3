//! `offramp subscribers list [--json]` and `offramp subscribers remove ADDRESS`
//! (CONTRACT section 11): the e-mail subscribers, pending or confirmed, and removing
//! one (its queued mails go with it). Both are control-socket commands.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::client::command_result;
use super::Cli;
use crate::platform::Command;
use crate::table::{cell, escape, grid, time_cell};

// Subscribers subcommands. (No `///` here: clap would print it as help.)
#[derive(Debug, Subcommand)]
pub enum SubscribersCmd {
    /// Every subscriber: address, pending or confirmed, the components chosen.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a subscriber (no more mail to it); exit 1 if there is none.
    Remove {
        /// The subscriber's e-mail address.
        address: String,
        /// Print JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
}

fn list_text(v: &Value) -> String {
    let subs = v.as_array().map_or(&[][..], Vec::as_slice);
    if subs.is_empty() {
        return "no subscribers\n".into();
    }
    let mut rows = vec![[
        "ID",
        "ADDRESS",
        "STATUS",
        "COMPONENTS",
        "CREATED",
        "CONFIRMED",
    ]
    .map(String::from)];
    for s in subs {
        let components = s["components"].as_array().map_or(&[][..], Vec::as_slice);
        let components = match components.is_empty() {
            true => "(all)".to_string(),
            false => components.iter().map(cell).collect::<Vec<_>>().join(","),
        };
        rows.push([
            cell(&s["id"]),
            cell(&s["address"]),
            cell(&s["status"]),
            escape(&components),
            time_cell(&s["created_at"]),
            time_cell(&s["confirmed_at"]),
        ]);
    }
    grid(&rows)
}

/// Runs `offramp subscribers …`.
pub(super) fn run(cli: &Cli, c: &SubscribersCmd, explicit: bool) -> ExitCode {
    let (cmd, json) = match c {
        SubscribersCmd::List { json } => (Command::SubscribersList {}, *json),
        SubscribersCmd::Remove { address, json } => (
            Command::SubscribersRemove {
                address: address.clone(),
            },
            *json,
        ),
    };
    let result = match command_result(cli, &cmd, explicit) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = &result;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    match c {
        SubscribersCmd::List { .. } => print!("{}", list_text(result)),
        SubscribersCmd::Remove { .. } => println!(
            "removed subscriber {} ({})",
            cell(&result["address"]),
            cell(&result["id"])
        ),
    }
    ExitCode::SUCCESS
}
