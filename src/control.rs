//! The control socket, server side: a Unix stream socket speaking one JSON object per
//! line each way (CONTRACT section 4; the status platform's commands, section 9, are
//! `platform::Command`s on the same socket, answered `{"ok":true,"result":...}`).
//!
//! ```text
//! -> {"cmd":"offline","sites":["cloud"],"reason":"disk swap","until":"30m"}
//! <- {"ok":true,"sites":[{"name":"cloud","state":"offline","source":"runtime",...}]}
//! ```
//!
//! Owns: the socket file (created 0660, a stale one replaced, a live one refused), the
//! lock file beside it that makes one daemon per socket, the wire format, limits (line
//! size, idle time, concurrent clients). Does not own: what a command does (see
//! `daemon`).

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::SiteState;
pub use crate::daemon::{parse_until, parse_until_spec};
use crate::daemon::{Daemon, Target};
use crate::platform::{By, CmdError, Command};

/// Longest request line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// A client that sends no complete line for this long is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Clients served at once; more are told to retry and disconnected.
pub const MAX_CLIENTS: usize = 64;

/// One request on the control socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A duration from now (`"30m"`) or an RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Lock files held for the life of the process, one per bound control socket.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// The lock file of the control socket at `path`: `<path>.lock`, beside it.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the lock that makes this process the only daemon on `path`. Kept until
/// `cleanup` (or the process's end: the kernel drops it even after a SIGKILL), so two
/// daemons started at the same moment cannot both get past the checks in `bind`.
fn lock(path: &Path) -> Result<File, String> {
    let lock = lock_path(path);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock)
        .map_err(|e| {
            format!(
                "cannot open the control socket's lock file {}: {e}",
                lock.display()
            )
        })?;
    // SAFETY: flock(2) on a descriptor we own; no memory is shared with the kernel.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.kind() == ErrorKind::WouldBlock {
            format!(
                "another offramp is already running on control socket {} (it holds {}); stop it first",
                path.display(),
                lock.display()
            )
        } else {
            format!("cannot lock {}: {e}", lock.display())
        });
    }
    Ok(file)
}

/// Binds the control socket at `path` with mode 0660, owned by `group` when given
/// (`[server] control_group`), so that exactly that group's members may use it.
///
/// The lock file beside it (`<path>.lock`) is taken first and held for the daemon's
/// life: a second daemon on the same path is refused, even one started at the same
/// moment. A socket file left by a dead daemon is then replaced; a path that is not a
/// socket never is.
pub fn bind(path: &Path, group: Option<u32>) -> Result<StdUnixListener, String> {
    let shown = path.display();
    let lock = lock(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // Under the lock no offramp can be listening there, unless it predates the
            // lock file: ask, rather than take its socket away.
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(format!(
                    "another offramp is already running on control socket {shown}; stop it first"
                ))
                }
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused
                        || e.kind() == ErrorKind::NotFound =>
                {
                    info!("replacing stale control socket {shown}");
                }
                Err(e) => return Err(format!("cannot check control socket {shown}: {e}")),
            }
        }
        Ok(_) => {
            return Err(format!(
                "{shown} exists and is not a socket; refusing to replace it (fix [server] control)"
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot use control socket path {shown}: {e}")),
    }
    // Bind under a temporary name, set the mode, then rename into place, so no client
    // ever sees the socket with the umask's permissions and a stale file is replaced
    // atomically.
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let fail = |e: std::io::Error| format!("cannot create control socket {shown}: {e}");
    let listener = StdUnixListener::bind(&tmp).map_err(fail)?;
    let setup = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
        .and_then(|_| match group {
            Some(gid) => std::os::unix::fs::chown(&tmp, None, Some(gid)).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot give it group {gid}: {e}"))
            }),
            None => Ok(()),
        })
        .and_then(|_| std::fs::rename(&tmp, path))
        .and_then(|_| listener.set_nonblocking(true));
    if let Err(e) = setup {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    HELD.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((path.to_path_buf(), lock));
    info!("listening proto=control addr={shown}");
    Ok(listener)
}

/// Removes the socket file at shutdown, then lets the lock go. The lock file stays:
/// removing it could let two later daemons lock two different files.
pub fn cleanup(path: &Path) {
    let _ = std::fs::remove_file(path);
    HELD.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(p, _)| p != path);
}

/// Accepts control clients until the process exits.
pub async fn serve(listener: StdUnixListener, daemon: Arc<Daemon>) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("control socket unusable: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = stream
                .write_all(b"{\"ok\":false,\"error\":\"too many control clients, try again\"}\n")
                .await;
            continue;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = client(stream, daemon).await {
                debug!("control client: {e}");
            }
        });
    }
}

async fn client(stream: UnixStream, daemon: Arc<Daemon>) -> std::io::Result<()> {
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match tokio::time::timeout(
            IDLE_TIMEOUT,
            (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle
        };
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            let reply = error_reply(&format!("request line longer than {MAX_LINE} bytes"));
            write.write_all(reply.as_bytes()).await?;
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let daemon = daemon.clone();
        let reply = match parse(&line) {
            Ok(Parsed::Flip(req)) => {
                tokio::task::spawn_blocking(move || handle(&daemon, req, uid)).await
            }
            Ok(Parsed::Platform(cmd)) => {
                tokio::task::spawn_blocking(move || run(&daemon, *cmd, uid)).await
            }
            Err(e) => Ok(json!({"ok": false, "error": e, "kind": "invalid"})),
        }
        .unwrap_or_else(|e| json!({"ok": false, "error": format!("internal error: {e}")}));
        let mut out = reply.to_string();
        out.push('\n');
        write.write_all(out.as_bytes()).await?;
    }
}

/// A request line: one of section 4's commands (their own strict reader, their reply
/// shape), or a status-platform [`Command`].
enum Parsed {
    Flip(Request),
    Platform(Box<Command>),
}

/// The section-4 commands, read by [`Request`].
const FLIPS: &[&str] = &["status", "offline", "online", "reset", "reload"];

fn parse(line: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("invalid request: {e}"))?;
    let cmd = v
        .get("cmd")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if cmd.is_empty() || FLIPS.contains(&cmd.as_str()) {
        return serde_json::from_value::<Request>(v)
            .map(Parsed::Flip)
            .map_err(|e| format!("invalid request: {e}"));
    }
    serde_json::from_value::<Command>(v)
        .map(|c| Parsed::Platform(Box::new(c)))
        .map_err(|e| {
            if Command::NAMES.contains(&cmd.as_str()) {
                format!("invalid request: {e}")
            } else {
                format!(
                    "unknown command {cmd:?} (expected one of: {})",
                    Command::NAMES.join(", ")
                )
            }
        })
}

/// Runs a platform command for the peer `uid`: `{"ok":true,"result":...}`, or the
/// error with its kind (`invalid`, `refused`, `not_found`, `unavailable`).
fn run(daemon: &Daemon, cmd: Command, uid: Option<u32>) -> Value {
    match daemon.run(cmd, &By::uid(uid)) {
        Ok(result) => json!({"ok": true, "result": result}),
        Err(e) => {
            let kind = match e {
                CmdError::Invalid(_) => "invalid",
                CmdError::Refused(_) => "refused",
                CmdError::NotFound(_) => "not_found",
                CmdError::Unavailable(_) => "unavailable",
            };
            json!({"ok": false, "error": e.to_string(), "kind": kind})
        }
    }
}

fn error_reply(msg: &str) -> String {
    let mut s = json!({"ok": false, "error": msg}).to_string();
    s.push('\n');
    s
}

fn target(req: &Request) -> Result<Target, String> {
    match (req.all, req.sites.is_empty()) {
        (true, true) => Ok(Target::All),
        (true, false) => Err("give site names or \"all\", not both".into()),
        (false, _) => Ok(Target::Sites(req.sites.clone())),
    }
}

/// Refuses a request that carries a field its command does not take: a script that
/// sends one expects it to mean something, and it would be silently ignored.
fn only(req: &Request, allowed: &[&str]) -> Result<(), String> {
    let given = [
        ("sites", !req.sites.is_empty()),
        ("all", req.all),
        ("reason", req.reason.is_some()),
        ("until", req.until.is_some()),
    ];
    let extra: Vec<String> = given
        .iter()
        .filter(|(field, set)| *set && !allowed.contains(field))
        .map(|(field, _)| format!("{field:?}"))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let takes = match allowed {
        [] => "no other field".to_string(),
        _ => {
            let quoted: Vec<String> = allowed.iter().map(|f| format!("{f:?}")).collect();
            format!("only {}", quoted.join(", "))
        }
    };
    Err(format!(
        "{} takes {takes}, not {}",
        req.cmd,
        extra.join(", ")
    ))
}

/// Executes one request; the reply as JSON.
pub fn handle(daemon: &Daemon, req: Request, uid: Option<u32>) -> Value {
    let result = (|| -> Result<Value, String> {
        match req.cmd.as_str() {
            "status" => {
                only(&req, &["sites"])?;
                let (sites, global, reload) = daemon.status(&req.sites)?;
                Ok(json!({"ok": true, "sites": sites, "global": global, "reload": reload}))
            }
            "offline" | "online" => {
                let state = if req.cmd == "offline" {
                    SiteState::Offline
                } else {
                    SiteState::Online
                };
                let target = target(&req)?;
                let until = match (&req.until, state) {
                    (Some(_), SiteState::Online) => {
                        return Err("\"until\" applies to offline only".into())
                    }
                    (Some(u), _) => Some(parse_until_spec(u)?),
                    (None, _) => None,
                };
                let reason = req.reason.clone().filter(|r| !r.trim().is_empty());
                if reason.as_ref().is_some_and(|r| r.len() > 1024) {
                    return Err("reason is longer than 1024 bytes".into());
                }
                let sites = daemon.flip(state, &target, reason, until, uid)?;
                Ok(json!({"ok": true, "sites": sites}))
            }
            "reset" => {
                only(&req, &["sites", "all"])?;
                let sites = daemon.reset(&target(&req)?, uid)?;
                Ok(json!({"ok": true, "sites": sites}))
            }
            "reload" => {
                only(&req, &[])?;
                info!(target: "offramp::reload", by = uid.map_or(-1, i64::from), "reload requested over the control socket");
                let report = daemon.reload()?;
                Ok(json!({"ok": true, "reload": report}))
            }
            other => Err(format!(
                "unknown command {other:?} (expected status, offline, online, reset or reload)"
            )),
        }
    })();
    result.unwrap_or_else(|e| json!({"ok": false, "error": e}))
}
