//! The write API (`/api/v1/` on the admin listener, CONTRACT section 9): bearer tokens
//! from `[api] tokens`, compared in constant time (the scheme word `Bearer` in any
//! case, RFC 9110 section 11.1); `HEAD` wherever there is a `GET`; JSON bodies mapped
//! onto the one command layer (`platform::Command`, run by `Daemon::run`), so the API,
//! the CLI and the control socket behave alike. Statuses: 400 for a body that is not
//! JSON, has wrong types or unknown fields; 422 for values refused; 404 for an unknown
//! ID or name in the path; 401 without a valid token (nothing changes); 404 for every
//! `/api/v1/` path when there is no `[api]`.
//!
//! Owns: authentication, routing and the body shapes (`body`). Does not own: the HTTP
//! connection (`admin`), what a command does (`daemon`).

mod alertmanager;
mod body;

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::config::api::Api;
use crate::daemon::Daemon;
use crate::platform::{By, CmdError, Command};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// What the admin listener hands over.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer: status, JSON body, and the headers to add (`Allow`, `WWW-Authenticate`).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Value,
    pub headers: &'static [(&'static str, &'static str)],
}

fn error(status: u16, msg: impl Into<String>) -> Response {
    Response {
        status,
        body: json!({"error": msg.into()}),
        headers: &[],
    }
}

const GET_POST: &[(&str, &str)] = &[("Allow", "GET, HEAD, POST")];
const GET_PATCH: &[(&str, &str)] = &[("Allow", "GET, HEAD, PATCH")];
const GET_PATCH_DELETE: &[(&str, &str)] = &[("Allow", "GET, HEAD, PATCH, DELETE")];
const PATCH: &[(&str, &str)] = &[("Allow", "PATCH")];
const POST: &[(&str, &str)] = &[("Allow", "POST")];

impl From<CmdError> for Response {
    fn from(e: CmdError) -> Response {
        error(e.http_status(), e.to_string())
    }
}

/// Whether `path` is the write API's.
pub fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// The token that `authorization` carries, if it is one of `api`'s. The scheme word is
/// case-insensitive (RFC 9110 section 11.1), the token is not. Every token is compared,
/// each in constant time in its content, whatever matched before; a candidate of
/// another length differs at once (SECURITY.md says why that is acceptable).
fn authenticate<'t>(api: &'t Api, authorization: Option<&str>) -> Option<&'t str> {
    let (scheme, given) = authorization?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let given = given.trim_start_matches(' ');
    let mut found = None;
    for t in &api.tokens {
        let same: bool = t.secret.expose().ct_eq(given.as_bytes()).into();
        if same {
            found = Some(t.by.as_str());
        }
    }
    found
}

/// Whether a request with `authorization` may go on to send its body: the API is on
/// and the token is one of its own. A request that may not is answered (404 or 401)
/// before its body is asked for or read.
pub fn admits(api: Option<&Api>, authorization: Option<&str>) -> bool {
    api.is_some_and(|api| authenticate(api, authorization).is_some())
}

/// Answers one `/api/v1/` request. `api` is the config's `[api]` in force.
pub fn handle(daemon: &Daemon, api: Option<&Api>, req: &Request) -> Response {
    let Some(api) = api else {
        return error(404, "the write API is off: no [api] in the config");
    };
    let Some(name) = authenticate(api, req.authorization) else {
        let mut r = error(
            401,
            "missing or wrong bearer token (Authorization: Bearer TOKEN)",
        );
        r.headers = &[("WWW-Authenticate", "Bearer")];
        return r;
    };
    let by = By(name.to_string());
    let (cmd, created) = match route(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let is_change = !matches!(
        cmd,
        Command::IncidentList { .. }
            | Command::IncidentShow { .. }
            | Command::MaintenanceList { .. }
            | Command::MaintenanceShow { .. }
    );
    // Alertmanager repeats firing alerts: only a notification that changed something
    // is logged as a change.
    let alerts = matches!(cmd, Command::Alerts { .. });
    match daemon.run(cmd, &by) {
        Ok(v) => {
            if is_change && !(alerts && v["applied"] == 0) {
                tracing::info!(target: "offramp::api", method = req.method, path = req.path, by = %by.0, "write API change");
            }
            Response {
                status: if created { 201 } else { 200 },
                body: v,
                headers: &[],
            }
        }
        Err(e) => e.into(),
    }
}

/// The command for a request, and whether success is `201 Created`.
fn route(req: &Request) -> Result<(Command, bool), Response> {
    let rest = req.path.strip_prefix("/api/v1").unwrap_or_default();
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let all = req
        .query
        .split('&')
        .any(|kv| kv == "all" || kv == "all=true" || kv == "all=1");
    let method = req.method;
    let allow = |headers: &'static [(&'static str, &'static str)]| Response {
        status: 405,
        body: json!({"error": format!("method {method} not allowed here")}),
        headers,
    };
    // HEAD is GET without the body, which the admin listener leaves out.
    let m = if method == "HEAD" { "GET" } else { method };
    let body = req.body;
    Ok(match parts.as_slice() {
        ["incidents"] => match m {
            "GET" => (Command::IncidentList { all }, false),
            "POST" => (body::new_incident(body)?, true),
            _ => return Err(allow(GET_POST)),
        },
        ["incidents", id] => match m {
            "GET" => (Command::IncidentShow { id: id.to_string() }, false),
            "PATCH" => (body::incident_patch(id, body)?, false),
            _ => return Err(allow(GET_PATCH)),
        },
        ["maintenances"] => match m {
            "GET" => (Command::MaintenanceList { all }, false),
            "POST" => (body::new_maintenance(body)?, true),
            _ => return Err(allow(GET_POST)),
        },
        ["maintenances", id] => match m {
            "GET" => (Command::MaintenanceShow { id: id.to_string() }, false),
            "PATCH" => (body::maintenance_patch(id, body)?, false),
            "DELETE" => (Command::MaintenanceCancel { id: id.to_string() }, false),
            _ => return Err(allow(GET_PATCH_DELETE)),
        },
        ["components", name] => match m {
            "PATCH" => (body::component_patch(name, body)?, false),
            _ => return Err(allow(PATCH)),
        },
        ["sites", name, action] if matches!(*action, "offline" | "online" | "reset") => match m {
            "POST" => (body::flip(name, action, body)?, false),
            _ => return Err(allow(POST)),
        },
        ["alertmanager"] => match m {
            "POST" => (alertmanager::notification(body)?, false),
            _ => return Err(allow(POST)),
        },
        _ => return Err(error(404, format!("no such API endpoint: {}", req.path))),
    })
}

#[cfg(test)]
mod tests;
