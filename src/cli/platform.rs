//! `offramp incident …` and `offramp maintenance …`: the status platform's commands
//! (CONTRACT section 9). Each becomes one `platform::Command` on the control socket (the
//! same command layer the write API uses); the answer is printed as a table, a detail
//! view with the timeline, the new ID alone (`open`, `schedule`), or JSON (`--json`).
//! What can be checked without the daemon (titles, messages, `name[=status]`, a
//! window's times) is checked here first, with the daemon's own rules, so a mistake is
//! exit 1 even when offramp is not running.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client::command_result;
use super::platform_text::{incident_text, incidents_table, maintenance_text, maintenances_table};
use super::Cli;
use crate::platform::command::ComponentArg;
use crate::platform::model::{check_message, check_title};
use crate::platform::{when, Command, ComponentStatus, Impact, IncidentStatus};
use crate::table::{cell, escape};

// Incident subcommands. (No `///` here: clap would print it as help.)
#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// Open an incident; prints its ID.
    Open {
        /// What visitors read, up to 200 characters.
        title: String,
        /// none, minor, major or critical.
        #[arg(long, value_parser = impact)]
        impact: Impact,
        /// investigating (default), identified, monitoring or resolved.
        #[arg(long, value_parser = incident_status)]
        status: Option<IncidentStatus>,
        /// An affected component (a site or a [[component]]), NAME or NAME=STATUS
        /// (default status partial_outage); repeat for several.
        #[arg(long = "component", value_name = "NAME[=STATUS]", value_parser = component)]
        components: Vec<ComponentArg>,
        /// The first update of its timeline, up to 10,000 characters.
        #[arg(long)]
        message: String,
        #[command(flatten)]
        out: Json,
    },
    /// Add an update to an incident's timeline.
    Update {
        id: String,
        #[arg(long, value_parser = incident_status)]
        status: Option<IncidentStatus>,
        #[arg(long, value_parser = impact)]
        impact: Option<Impact>,
        /// Replaces the affected components (NAME or NAME=STATUS; repeat).
        #[arg(long = "component", value_name = "NAME[=STATUS]", value_parser = component)]
        components: Vec<ComponentArg>,
        #[arg(long)]
        message: String,
        #[command(flatten)]
        out: Json,
    },
    /// Resolve an incident.
    Resolve {
        id: String,
        /// Default: "This incident has been resolved."
        #[arg(long)]
        message: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// List unresolved incidents (all with --all).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: Json,
    },
    /// Show an incident with its timeline.
    Show {
        id: String,
        #[command(flatten)]
        out: Json,
    },
}

// Maintenance subcommands.
#[derive(Debug, Subcommand)]
pub enum MaintenanceCmd {
    /// Schedule a maintenance window; prints its ID.
    Schedule {
        /// What visitors read, up to 200 characters.
        title: String,
        /// A site it takes offline (unless --no-auto); repeat for several.
        #[arg(long = "site", value_name = "SITE")]
        sites: Vec<String>,
        /// A component it shows under maintenance; repeat for several.
        #[arg(long = "component", value_name = "NAME")]
        components: Vec<String>,
        /// now, a duration from now (+30m) or an RFC 3339 time.
        #[arg(long)]
        start: String,
        /// An RFC 3339 time, or a duration from the start (+2h).
        #[arg(long)]
        end: String,
        #[arg(long)]
        message: Option<String>,
        /// Announce only: do not take the sites offline.
        #[arg(long)]
        no_auto: bool,
        #[command(flatten)]
        out: Json,
    },
    /// List scheduled and in-progress windows (all with --all).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: Json,
    },
    /// Show a window with its updates.
    Show {
        id: String,
        #[command(flatten)]
        out: Json,
    },
    /// Post an update, or move the end (a duration counts from the start).
    Update {
        id: String,
        #[arg(long)]
        message: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// End a window now.
    Complete {
        id: String,
        #[command(flatten)]
        out: Json,
    },
    /// Cancel a window (its sites come back at once if it was in progress).
    Cancel {
        id: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Json {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn impact(s: &str) -> Result<Impact, String> {
    Impact::parse(s).map_err(|e| e.to_string())
}

fn incident_status(s: &str) -> Result<IncidentStatus, String> {
    IncidentStatus::parse(s).map_err(|e| e.to_string())
}

/// `NAME` or `NAME=STATUS`.
fn component(s: &str) -> Result<ComponentArg, String> {
    let (name, status) = match s.split_once('=') {
        Some((n, st)) => (
            n,
            Some(ComponentStatus::parse(st).map_err(|e| e.to_string())?),
        ),
        None => (s, None),
    };
    if name.is_empty() {
        return Err(format!(
            "{s:?}: give a component name (NAME or NAME=STATUS)"
        ));
    }
    Ok(ComponentArg {
        name: name.to_string(),
        status,
    })
}

/// How the answer is printed.
enum Show {
    /// The new ID alone.
    Id,
    Incident,
    Incidents,
    Maintenance,
    Maintenances,
}

/// The command and how to print its answer; `Err` is a message for a mistake the CLI
/// can see by itself.
fn command_for_incident(c: &IncidentCmd) -> Result<(Command, Show, bool), String> {
    Ok(match c {
        IncidentCmd::Open {
            title,
            impact,
            status,
            components,
            message,
            out,
        } => {
            check_title(title)?;
            check_message(message)?;
            let cmd = Command::IncidentOpen {
                title: title.clone(),
                impact: *impact,
                status: *status,
                components: components.clone(),
                message: message.clone(),
            };
            (
                cmd,
                if out.json { Show::Incident } else { Show::Id },
                out.json,
            )
        }
        IncidentCmd::Update {
            id,
            status,
            impact,
            components,
            message,
            out,
        } => {
            check_message(message)?;
            let cmd = Command::IncidentUpdate {
                id: id.clone(),
                status: *status,
                impact: *impact,
                components: (!components.is_empty()).then(|| components.clone()),
                message: message.clone(),
            };
            (cmd, Show::Incident, out.json)
        }
        IncidentCmd::Resolve { id, message, out } => {
            if let Some(m) = message {
                check_message(m)?;
            }
            let cmd = Command::IncidentResolve {
                id: id.clone(),
                message: message.clone(),
            };
            (cmd, Show::Incident, out.json)
        }
        IncidentCmd::List { all, out } => (
            Command::IncidentList { all: *all },
            Show::Incidents,
            out.json,
        ),
        IncidentCmd::Show { id, out } => (
            Command::IncidentShow { id: id.clone() },
            Show::Incident,
            out.json,
        ),
    })
}

fn command_for_maintenance(c: &MaintenanceCmd) -> Result<(Command, Show, bool), String> {
    Ok(match c {
        MaintenanceCmd::Schedule {
            title,
            sites,
            components,
            start,
            end,
            message,
            no_auto,
            out,
        } => {
            check_title(title)?;
            if let Some(m) = message {
                check_message(m)?;
            }
            if sites.is_empty() && components.is_empty() {
                return Err("name at least one --site or --component".into());
            }
            // The daemon reads the times again against its own clock when it runs this.
            when::window(start, end, time::OffsetDateTime::now_utc())?;
            let cmd = Command::MaintenanceSchedule {
                title: title.clone(),
                sites: sites.clone(),
                components: components.clone(),
                start: start.clone(),
                end: end.clone(),
                message: message.clone(),
                auto: !no_auto,
            };
            (
                cmd,
                if out.json {
                    Show::Maintenance
                } else {
                    Show::Id
                },
                out.json,
            )
        }
        MaintenanceCmd::List { all, out } => (
            Command::MaintenanceList { all: *all },
            Show::Maintenances,
            out.json,
        ),
        MaintenanceCmd::Show { id, out } => (
            Command::MaintenanceShow { id: id.clone() },
            Show::Maintenance,
            out.json,
        ),
        MaintenanceCmd::Update {
            id,
            message,
            end,
            out,
        } => {
            if message.is_none() && end.is_none() {
                return Err("give --message or --end".into());
            }
            if let Some(m) = message {
                check_message(m)?;
            }
            // Without the window's start only the form of the end can be checked here.
            if let Some(e) = end {
                when::end(e, time::OffsetDateTime::now_utc())?;
            }
            let cmd = Command::MaintenanceUpdate {
                id: id.clone(),
                message: message.clone(),
                end: end.clone(),
            };
            (cmd, Show::Maintenance, out.json)
        }
        MaintenanceCmd::Complete { id, out } => (
            Command::MaintenanceComplete { id: id.clone() },
            Show::Maintenance,
            out.json,
        ),
        MaintenanceCmd::Cancel { id, out } => (
            Command::MaintenanceCancel { id: id.clone() },
            Show::Maintenance,
            out.json,
        ),
    })
}

/// Runs `offramp incident …`.
pub(super) fn incident(cli: &Cli, c: &IncidentCmd, explicit: bool) -> ExitCode {
    run(cli, command_for_incident(c), explicit)
}

/// Runs `offramp maintenance …`.
pub(super) fn maintenance(cli: &Cli, c: &MaintenanceCmd, explicit: bool) -> ExitCode {
    run(cli, command_for_maintenance(c), explicit)
}

fn run(cli: &Cli, planned: Result<(Command, Show, bool), String>, explicit: bool) -> ExitCode {
    let (cmd, show, json) = match planned {
        Ok(p) => p,
        Err(e) => {
            eprintln!("offramp: {}", escape(&e));
            return ExitCode::from(1);
        }
    };
    let result = match command_result(cli, &cmd, explicit) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = &result;
    let text = match show {
        Show::Id if !json => format!("{}\n", cell(&result["id"])),
        _ if json => format!(
            "{}\n",
            serde_json::to_string_pretty(result).unwrap_or_default()
        ),
        Show::Id | Show::Incident => incident_text(result),
        Show::Incidents => incidents_table(result),
        Show::Maintenance => maintenance_text(result),
        Show::Maintenances => maintenances_table(result),
    };
    print!("{text}");
    ExitCode::SUCCESS
}
