//! The client side of the control socket: finding the socket (`--socket`, else the
//! config file's `[server] control`, else the default), sending one request and
//! reading one reply line within the timeout, and saying in one line why no answer
//! came. What the requests mean is `control`'s; printing replies is `remote`'s.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Cli;
use crate::config;

/// The control socket to use and where that path came from.
pub(super) struct Socket {
    pub(super) path: PathBuf,
    from: SocketFrom,
}

/// Where the control socket's path came from, for messages.
enum SocketFrom {
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
pub(super) fn socket_path(cli: &Cli, explicit_config: bool) -> Result<Socket, String> {
    if let Some(s) = &cli.socket {
        return Ok(Socket {
            path: s.clone(),
            from: SocketFrom::Flag,
        });
    }
    let file = config::absolute(&cli.config);
    let shown = file.display();
    let default = |why: String| Socket {
        path: PathBuf::from(config::DEFAULT_CONTROL),
        from: SocketFrom::Default(why),
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
            from: SocketFrom::Config(shown.to_string()),
        }),
        None => Ok(default(format!("{shown} does not set server.control"))),
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
pub fn call<T: serde::Serialize + ?Sized>(
    socket: &Path,
    req: &T,
    timeout: Duration,
) -> Result<Value, CallError> {
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
pub(super) fn unreachable_message(socket: &Socket, e: &CallError, timeout: Duration) -> String {
    let path = socket.path.display();
    let hint = match &socket.from {
        SocketFrom::Flag => String::new(),
        SocketFrom::Config(file) => format!(
            " (path from server.control in {file}; if that was changed since offramp started, offramp listens on the old path until restarted: give it with --socket PATH)"
        ),
        SocketFrom::Default(why) => format!(
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

/// Sends a platform command (the `{"ok", "result"}` answers) and returns its result;
/// `Err` is the exit code after the one-line error was printed: 1 for a config that
/// names no socket or a refused command, 2 when the daemon cannot be reached.
pub(super) fn command_result(
    cli: &Cli,
    cmd: &crate::platform::Command,
    explicit_config: bool,
) -> Result<Value, std::process::ExitCode> {
    use crate::table::escape;
    use std::process::ExitCode;
    let socket = socket_path(cli, explicit_config).map_err(|e| {
        eprintln!("offramp: {}", escape(&e));
        ExitCode::from(1)
    })?;
    let mut reply = call(&socket.path, cmd, cli.timeout).map_err(|e| {
        eprintln!(
            "offramp: {}",
            escape(&unreachable_message(&socket, &e, cli.timeout))
        );
        ExitCode::from(2)
    })?;
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        let msg = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("request refused");
        eprintln!("offramp: {}", escape(&msg.replace('\n', " ")));
        return Err(ExitCode::from(1));
    }
    Ok(reply["result"].take())
}
