//! `offramp notify list` and `offramp notify test NAME` (CONTRACT section 11): what each
//! notification target has pending or failed, and one test event sent now. Both are
//! control-socket commands; the answer is printed as a table, a line, or JSON.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::client::command_result;
use super::Cli;
use crate::platform::Command;
use crate::table::{cell, escape, grid, time_cell};

// Notify subcommands. (No `///` here: clap would print it as help.)
#[derive(Debug, Subcommand)]
pub enum NotifyCmd {
    /// Every target: pending and failed events, the last error, the last delivery.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a test event to a target now (outside its queue); exit 1 if it fails.
    Test {
        /// The target's name.
        name: String,
        /// Print JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
}

fn list_text(v: &Value) -> String {
    let targets = v.as_array().map_or(&[][..], Vec::as_slice);
    if targets.is_empty() {
        return "no notify targets\n".into();
    }
    let mut rows = vec![[
        "NAME",
        "FORMAT",
        "STATUS",
        "PENDING",
        "FAILED",
        "LAST OK",
        "LAST ERROR",
    ]
    .map(String::from)];
    for t in targets {
        rows.push([
            cell(&t["name"]),
            cell(&t["format"]),
            cell(&t["status"]),
            cell(&t["pending"]),
            cell(&t["failed"]),
            time_cell(&t["last_ok"]),
            cell(&t["last_error"]),
        ]);
    }
    let mut out = grid(&rows);
    let mut failed =
        vec![["TARGET", "EVENT", "TYPE", "AT", "FAILED AT", "ERROR"].map(String::from)];
    for t in targets {
        for f in t["failures"].as_array().map_or(&[][..], Vec::as_slice) {
            failed.push([
                cell(&t["name"]),
                cell(&f["event"]),
                cell(&f["type"]),
                time_cell(&f["at"]),
                time_cell(&f["failed_at"]),
                cell(&f["error"]),
            ]);
        }
    }
    if failed.len() > 1 {
        out.push_str("\nfailed events (newest first):\n");
        out.push_str(&grid(&failed));
    }
    out
}

/// Runs `offramp notify …`.
pub(super) fn run(cli: &Cli, c: &NotifyCmd, explicit: bool) -> ExitCode {
    let (cmd, json) = match c {
        NotifyCmd::List { json } => (Command::NotifyList {}, *json),
        NotifyCmd::Test { name, json } => (Command::NotifyTest { name: name.clone() }, *json),
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
        NotifyCmd::List { .. } => print!("{}", list_text(result)),
        NotifyCmd::Test { name, .. } => println!(
            "test event delivered to {} (HTTP {})",
            escape(name),
            cell(&result["status"])
        ),
    }
    ExitCode::SUCCESS
}
