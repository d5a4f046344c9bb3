//! Test harness shared by the integration tests: a real offramp process started from
//! the built binary on port 0, real upstream origins, a raw HTTP/1.1 client that shows
//! exactly what went over the wire, and a runner for the real CLI.
//!
//! Everything is on loopback and bounded in time: every read has a timeout, every wait
//! a deadline, and child processes are killed when their handle is dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub mod transports;

/// Generous bound for anything that should happen "now" on a loaded CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// The offramp binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_offramp")
}

/// Polls `f` every 10 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------

/// A running `offramp serve` with its own temporary directory (config, socket, state).
pub struct Offramp {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// The config file (`dir/offramp.toml`).
    pub config: PathBuf,
    /// Bound HTTP listener addresses, in config order.
    pub http: Vec<SocketAddr>,
    /// Bound HTTPS listener addresses, in config order.
    pub https: Vec<SocketAddr>,
    /// Bound demo origin address, when the config has `[demo]`.
    pub demo: Option<SocketAddr>,
    /// Bound admin listener address, when the config has `[server] admin`.
    pub admin: Option<SocketAddr>,
    /// Every line the daemon wrote to stderr so far.
    pub log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

/// `[server]` lines every test config needs: port-0 listener, socket and state in `dir`.
/// Tests append `[maintenance]` and `[[site]]` sections. Health checks are off (they
/// would reach the tests' upstreams at random times); the health tests use
/// [`server_section_checked`].
pub fn server_section(extra: &str) -> String {
    format!(
        "[server]\nhttp = \"127.0.0.1:0\"\nthreads = 2\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\nhealth_checks = false\ngrace = \"2s\"\n{extra}\n"
    )
}

/// [`server_section`] with health checks on.
pub fn server_section_checked(extra: &str) -> String {
    server_section(extra).replace("health_checks = false\n", "")
}

impl Offramp {
    /// Writes `config` to a new temp dir as `offramp.toml` and starts the daemon on it.
    pub fn start(config: &str) -> Offramp {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("offramp.toml"), config).expect("write config");
        Offramp::start_in(dir, &[])
    }

    /// Starts the daemon on `dir/offramp.toml` (already written), with extra env vars.
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Offramp {
        Offramp::start_with(dir, env, &[])
    }

    /// Like [`Offramp::start_in`], with extra global arguments (e.g. `--log-format json`).
    pub fn start_with(dir: tempfile::TempDir, env: &[(&str, &str)], args: &[&str]) -> Offramp {
        Offramp::start_custom(dir, env, args, |_| {})
    }

    /// Starts the daemon with a soft and hard limit on open files (`RLIMIT_NOFILE`), as
    /// a service manager would set them.
    pub fn start_with_nofile(dir: tempfile::TempDir, soft: u64, hard: u64) -> Offramp {
        Offramp::start_custom(dir, &[], &[], move |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit(2), async-signal-safe, runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// Like [`Offramp::start_with`]; `configure` may adjust the command before spawning.
    pub fn start_custom(
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Offramp {
        let config = dir.path().join("offramp.toml");
        let mut cmd = Command::new(bin());
        configure(&mut cmd);
        cmd.args(args)
            .arg("serve")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn offramp serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("OFFRAMP_TEST_LOG").is_some() {
                    eprintln!("[offramp] {line}");
                }
                let (m, c) = &*sink;
                m.lock().unwrap().push(line);
                c.notify_all();
            }
        });
        let mut o = Offramp {
            child,
            dir,
            config,
            http: Vec::new(),
            https: Vec::new(),
            demo: None,
            admin: None,
            log,
        };
        o.wait_log(WAIT, "the daemon's `ready` line", |l| {
            l.contains(" ready") || l.contains("\"ready\"")
        });
        for line in o.lines() {
            if let Some(addr) = field_after(&line, "listening proto=http addr=") {
                o.http.push(addr.parse().expect("listening address"));
            }
            if let Some(addr) = field_after(&line, "listening proto=https addr=") {
                o.https.push(addr.parse().expect("listening address"));
            }
            if let Some(addr) = field_after(&line, "listening proto=admin addr=") {
                o.admin = Some(addr.parse().expect("admin address"));
            }
            if let Some(addr) = field_after(&line, "listening proto=demo addr=") {
                o.demo = Some(addr.parse().expect("demo address"));
            }
        }
        assert!(
            !o.http.is_empty(),
            "no http listener logged:\n{}",
            o.log_text()
        );
        o
    }

    /// Waits for the daemon's exit after a start-up failure; (exit code, stderr).
    pub fn start_failing(config: &str) -> (Option<i32>, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offramp.toml");
        std::fs::write(&path, config).expect("write config");
        let out = run_with_timeout(Command::new(bin()).arg("serve").arg("-c").arg(&path), WAIT);
        (out.code, out.stderr)
    }

    /// The first HTTP listener.
    pub fn addr(&self) -> SocketAddr {
        self.http[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// A copy of the log lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until a log line (any, old or new) satisfies `pred`; returns it.
    pub fn wait_log(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        let (m, c) = &*self.log;
        let mut lines = m.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                drop(lines);
                panic!("timed out waiting for {what}; log:\n{}", self.log_text());
            }
            lines = c.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    /// Number of log lines satisfying `pred` so far.
    pub fn count_log(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Runs the real CLI against this daemon (`-c` its config file).
    pub fn cli(&self, args: &[&str]) -> CliOut {
        let mut cmd = Command::new(bin());
        cmd.arg("-c").arg(&self.config).args(args);
        run_with_timeout(&mut cmd, WAIT)
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill({sig}) failed");
    }

    /// Rewrites the config file in place (truncate + write, as most editors without
    /// atomic save do).
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Replaces the config file by rename (vim, `sed -i`, atomic writers).
    pub fn replace_config(&self, text: &str) {
        let tmp = self.dir.path().join(".offramp.toml.tmp");
        std::fs::write(&tmp, text).expect("write temp config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// SIGTERM, then waits for the exit; the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        self.wait_exit(WAIT)
    }

    /// Waits for the process to exit; its exit code (None if killed by a signal).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "daemon did not exit within {limit:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the daemon hard and starts a new one on the same directory (same config,
    /// socket path and state file). Returns the new daemon.
    pub fn kill_and_restart(mut self) -> Offramp {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        Offramp::start_in(dir, &[])
    }

    /// Stops the daemon gracefully and starts a new one on the same directory.
    pub fn restart(mut self) -> Offramp {
        assert_eq!(
            self.stop(),
            Some(0),
            "graceful stop; log:\n{}",
            self.log_text()
        );
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        Offramp::start_in(dir, &[])
    }

    /// A new raw HTTP/1.1 connection to the first listener.
    pub fn conn(&self) -> Conn {
        Conn::open(self.addr())
    }

    /// One-shot GET with the given Host on a fresh connection.
    pub fn get(&self, host: &str, target: &str) -> Response {
        self.conn().get(host, target)
    }
}

impl Drop for Offramp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field_after(line: &str, prefix: &str) -> Option<String> {
    let i = line.find(prefix)?;
    let rest = &line[i + prefix.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

// ---------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------

/// What a CLI run printed and how it exited.
#[derive(Debug, Clone)]
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    /// The stdout parsed as JSON (for `--json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Asserts exit code 0 and returns self.
    pub fn ok(self) -> CliOut {
        assert_eq!(self.code, Some(0), "CLI failed: {self:?}");
        self
    }
}

/// Runs any command with a deadline (killed after it); stdout and stderr captured.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> CliOut {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn command");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command {cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    CliOut {
        code: status.code(),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Runs the CLI with the given arguments (give `-c`/`--socket` yourself).
pub fn cli(args: &[&str]) -> CliOut {
    run_with_timeout(Command::new(bin()).args(args), WAIT)
}

// ---------------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------------

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (the test origin answers JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// One client connection; reads are bounded by a timeout.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream.set_write_timeout(Some(WAIT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// A connection from the local address `local` (any of 127.0.0.0/8 on loopback), to
    /// test rules on the client's address.
    pub fn open_from(addr: SocketAddr, local: std::net::IpAddr) -> Conn {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let stream = rt
            .block_on(async {
                let s = tokio::net::TcpSocket::new_v4()?;
                s.bind(SocketAddr::new(local, 0))?;
                s.connect(addr).await?.into_std()
            })
            .unwrap_or_else(|e| panic!("connect to {addr} from {local}: {e}"));
        stream.set_nonblocking(false).expect("blocking");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream.set_write_timeout(Some(WAIT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// GET `target` with `Host: host` (keep-alive), and reads the response.
    pub fn get(&mut self, host: &str, target: &str) -> Response {
        self.request("GET", host, target, &[], b"")
    }

    /// Sends a request with a Content-Length body (when non-empty or not GET/HEAD).
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
        self.read_response(method == "HEAD")
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("read response: {e}"));
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads the response head only (status line + headers).
    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a response head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers)
    }

    /// Reads exactly `n` body bytes.
    pub fn read_exact_body(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if self.fill() == 0 {
                panic!("connection closed inside a body");
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one chunk of a chunked body; `None` at the last chunk.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let line_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                break i;
            }
            if self.fill() == 0 {
                panic!("connection closed inside a chunked body");
            }
        };
        let size_line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
        self.buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected) and the final CRLF.
            loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    let empty = i == 0;
                    self.buf.drain(..i + 2);
                    if empty {
                        return None;
                    }
                } else if self.fill() == 0 {
                    return None;
                }
            }
        }
        let data = self.read_exact_body(size + 2);
        Some(data[..size].to_vec())
    }

    /// Reads one whole response (`head_only` for HEAD requests).
    pub fn read_response(&mut self, head_only: bool) -> Response {
        let (status, headers) = self.read_head();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else if get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            let mut body = Vec::new();
            while let Some(c) = self.read_chunk() {
                body.extend_from_slice(&c);
            }
            body
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            self.read_exact_body(n)
        } else {
            // Read to close.
            while self.fill() > 0 {}
            std::mem::take(&mut self.buf)
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// True when the peer has closed the connection (EOF within `limit`).
    pub fn is_closed(&mut self, limit: Duration) -> bool {
        self.stream.set_read_timeout(Some(limit)).expect("timeout");
        let mut b = [0u8; 1];
        let r = match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => {
                self.buf.push(b[0]);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
            Err(_) => false,
        };
        self.stream.set_read_timeout(Some(WAIT)).expect("timeout");
        r
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// Upstream origins
// ---------------------------------------------------------------------------------

/// A real HTTP/1.1 origin on 127.0.0.1:0, one thread per connection, keep-alive.
///
/// Every answer is JSON describing what arrived:
/// `{"origin": NAME, "method", "target", "headers": {lower-name: value}, "body_len",
///   "body_sha": simple checksum, "conn": connection number on this origin}`.
/// Special targets:
/// - `/stream?n=N&ms=M`: a chunked response of N chunks `chunk-i\n`, M ms apart;
/// - `/bytes?n=N`: N bytes of `x` with Content-Length;
/// - `/ws`: answers an `Upgrade: websocket` with 101, then echoes raw bytes;
/// - `/slow?ms=M`: waits M ms before answering;
/// - `/close`: answers and closes the connection;
/// - `/garbage`: writes a non-HTTP line and closes;
/// - `/reset`: sends half a response then closes (body cut short).
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub name: String,
    /// Connections accepted so far.
    pub conns: Arc<AtomicUsize>,
    /// Requests served so far.
    pub requests: Arc<AtomicUsize>,
}

impl TestOrigin {
    pub fn start(name: &str) -> TestOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let conns = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c2, r2, n2) = (conns.clone(), requests.clone(), name.to_string());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                let id = c2.fetch_add(1, Ordering::SeqCst) + 1;
                let (r, n) = (r2.clone(), n2.clone());
                std::thread::spawn(move || {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                    let _ = serve_origin_conn(s, id, &n, &r);
                });
            }
        });
        TestOrigin {
            addr,
            name: name.to_string(),
            conns,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn conn_count(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A checksum of a body that the tests can compute too (FNV-1a, 64 bit, hex).
pub fn checksum(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn query_param(target: &str, key: &str) -> Option<u64> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

fn serve_origin_conn<S: Read + Write>(
    mut s: S,
    conn_id: usize,
    name: &str,
    requests: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Request head.
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for l in lines.filter(|l| !l.is_empty()) {
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        // Request body.
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf, b"\r\n") {
                        break i;
                    }
                    let mut chunk = [0u8; 16 * 1024];
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                let size_line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                buf.drain(..line_end + 2);
                while buf.len() < size + 2 {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                if size == 0 {
                    buf.drain(..2);
                    break;
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while buf.len() < n {
                let mut chunk = [0u8; 64 * 1024];
                let r = s.read(&mut chunk)?;
                if r == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..r]);
            }
            body = buf.drain(..n).collect();
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let path = target.split('?').next().unwrap_or_default().to_string();

        match path.as_str() {
            "/ws" if get("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) => {
                s.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n",
                )?;
                if !buf.is_empty() {
                    s.write_all(&buf)?;
                }
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(());
                    }
                    s.write_all(&chunk[..n])?;
                }
            }
            "/stream" => {
                let n = query_param(&target, "n").unwrap_or(3);
                let ms = query_param(&target, "ms").unwrap_or(100);
                s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                )?;
                for i in 0..n {
                    let data = format!("chunk-{i}\n");
                    s.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
                    s.flush()?;
                    std::thread::sleep(Duration::from_millis(ms));
                }
                s.write_all(b"0\r\n\r\n")?;
                continue;
            }
            "/bytes" => {
                let n = query_param(&target, "n").unwrap_or(1024) as usize;
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n"
                )
                .into_bytes();
                out.extend(std::iter::repeat_n(b'x', n));
                s.write_all(&out)?;
                continue;
            }
            "/garbage" => {
                s.write_all(b"THIS IS NOT HTTP\r\n\r\n")?;
                return Ok(());
            }
            "/reset" => {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly part")?;
                return Ok(());
            }
            "/slow" => {
                let ms = query_param(&target, "ms").unwrap_or(1000);
                std::thread::sleep(Duration::from_millis(ms));
            }
            _ => {}
        }

        let hmap: HashMap<&str, &str> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let json = serde_json::json!({
            "origin": name,
            "method": method,
            "target": target,
            "headers": hmap,
            "body_len": body.len(),
            "body_sha": checksum(&body),
            "conn": conn_id,
        })
        .to_string();
        let close =
            path == "/close" || get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Origin: {name}\r\n{}\r\n",
            json.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(json.as_bytes());
        }
        s.write_all(&out)?;
        if close {
            return Ok(());
        }
    }
}

/// The same origin behind TLS (a self-signed certificate for `localhost` and
/// 127.0.0.1, generated at run time), for `https://` upstreams.
pub fn start_tls_origin(name: &str) -> TestOrigin {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("generate certificate");
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.key_pair.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tls origin");
    let addr = listener.local_addr().expect("addr");
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c2, r2, n2) = (conns.clone(), requests.clone(), name.to_string());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let id = c2.fetch_add(1, Ordering::SeqCst) + 1;
            let (r, n, cfg) = (r2.clone(), n2.clone(), config.clone());
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let tls = rustls::StreamOwned::new(conn, s);
                let _ = serve_origin_conn(tls, id, &n, &r);
            });
        }
    });
    TestOrigin {
        addr,
        name: name.to_string(),
        conns,
        requests,
    }
}

/// A port with nothing listening on it (bound, then closed).
pub fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// A TCP listener that accepts connections and never answers (a hanging upstream).
pub fn hanging_origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    a
}

/// Path of a file inside a directory, as a TOML-safe string.
pub fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "\\\\")
}

impl TestOrigin {
    /// `https://127.0.0.1:PORT` (for an origin from [`start_tls_origin`]).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

// ---------------------------------------------------------------------------------
// HTTP/2 over cleartext (h2c, prior knowledge)
// ---------------------------------------------------------------------------------

/// An HTTP/2 response.
#[derive(Debug, Clone)]
pub struct H2Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// Sends `requests` (method, `http://authority/path`) over ONE h2c connection, in order;
/// the responses in the same order.
pub fn h2c_requests(addr: SocketAddr, requests: &[(&str, &str)]) -> Vec<H2Response> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(WAIT, async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connect h2c");
            let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut out = Vec::new();
            for (method, uri) in requests {
                let mut client = client.clone().ready().await.expect("h2 ready");
                let req = http::Request::builder()
                    .method(*method)
                    .uri(*uri)
                    .body(())
                    .expect("request");
                let (resp, _) = client.send_request(req, true).expect("send h2 request");
                let resp = resp.await.expect("h2 response");
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let mut body = resp.into_body();
                let mut data = Vec::new();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.expect("h2 body");
                    let _ = body.flow_control().release_capacity(chunk.len());
                    data.extend_from_slice(&chunk);
                }
                out.push(H2Response {
                    status,
                    headers,
                    body: data,
                });
            }
            out
        })
        .await
        .expect("h2c exchange timed out")
    })
}
