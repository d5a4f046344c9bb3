//! Faults outside offramp and mistakes of its operator, against the real daemon:
//! upstreams that reset, hang, never accept or answer garbage; invalid configs at
//! start-up; a state file on a read-only or full file system, or corrupted while
//! running; a missing control socket directory; the control socket's group; and the
//! consistency of what clients see while flips and reloads run under load, across a
//! SIGKILL.
//!
//! Covered elsewhere and not repeated here: an unreachable upstream's 502 page, a
//! hanging upstream's 504, upstream garbage and a response cut short (tests/proxy.rs);
//! a corrupt state file at start-up, two daemons on one socket, a stale socket, a path
//! that is not a socket (tests/control.rs); invalid edits while running, under traffic
//! (tests/reload.rs `every_kind_of_edit_under_continuous_traffic_fails_no_request`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const STATUS: &str = "https://status.example.com";

fn uid() -> u32 {
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn site(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[site]]\nname = \"{name}\"\nhosts = [\"{name}.home.example\"]\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

fn config(server_extra: &str, sites: &[String]) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"{STATUS}\"\n\n{}",
        server_section(server_extra),
        sites.concat()
    )
}

fn host(site: &str) -> String {
    format!("{site}.home.example")
}

fn status(o: &Offramp) -> Value {
    o.cli(&["status", "--json"]).ok().json()
}

fn entry(st: &Value, name: &str) -> Value {
    st["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {st}"))
}

/// Exit `code` and exactly one line on stderr mentioning each of `needles`.
fn assert_one_line_error(out: &CliOut, code: i32, needles: &[&str]) {
    assert_eq!(out.code, Some(code), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {out:?}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr should mention {n:?}: {out:?}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// Upstream faults
// ---------------------------------------------------------------------------------

/// Closes `s` with a TCP reset instead of a FIN.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// Reads one request head from `s`; false when the peer closed first.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            buf.drain(..i + 4);
            return true;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An upstream that reads each request head and then does what `behave` says with the
/// connection (the request number on that connection is passed, from 1).
fn scripted(behave: fn(TcpStream, usize) -> Option<TcpStream>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = Vec::new();
                let mut n = 0;
                while read_head(&mut s, &mut buf) {
                    n += 1;
                    match behave(s, n) {
                        Some(next) => s = next,
                        None => return,
                    }
                }
            });
        }
    });
    addr
}

fn write(mut s: TcpStream, bytes: &[u8]) -> TcpStream {
    let _ = s.write_all(bytes);
    s
}

/// What a client got: status, headers, body bytes, and whether the body was complete
/// by its own framing before the connection ended.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    complete: bool,
}

fn get_raw(addr: SocketAddr, host: &str, target: &str) -> Got {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let end = find(&all, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no response head for {host}{target}: {:?}",
            String::from_utf8_lossy(&all)
        )
    });
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = all[end + 4..].to_vec();
    let cl = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let complete = match (cl, chunked) {
        (_, true) => body.ends_with(b"0\r\n\r\n"),
        (Some(n), false) => body.len() == n,
        (None, false) => true,
    };
    Got {
        status,
        headers,
        body,
        complete,
    }
}

#[test]
fn upstream_faults_give_clean_errors_and_never_a_wrong_answer() {
    let healthy = TestOrigin::start("healthy");
    let rst_first = scripted(|s, _| {
        reset(s);
        None
    });
    let rst_mid_body = scripted(|s, _| {
        let mut body = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 1000));
        let s = write(s, &body);
        std::thread::sleep(Duration::from_millis(100));
        reset(s);
        None
    });
    let hang_mid_body = scripted(|s, _| {
        let s = write(s, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
        std::thread::sleep(Duration::from_secs(15));
        drop(s);
        None
    });
    let eof_first = scripted(|s, _| {
        drop(s);
        None
    });
    let bad_status = scripted(|s, _| {
        write(s, b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok");
        None
    });
    let binary = scripted(|s, _| {
        write(s, b"\x00\xff\x16\x03\x01\x02\x00garbage\r\n\r\n");
        None
    });
    let huge_head = scripted(|s, _| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            r.extend_from_slice(format!("X-H{i}: {}\r\n", "v".repeat(60)).as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        write(s, &r);
        None
    });
    let two_lengths = scripted(|s, _| {
        write(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok",
        );
        None
    });
    let cl_and_te = scripted(|s, _| {
        write(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        );
        None
    });
    let bad_chunks = scripted(|s, _| {
        write(
            s,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        );
        None
    });
    // One response followed by a second one nobody asked for: if offramp pooled this
    // connection, the next client would be served the stale "poisoned" answer.
    let poisoner = scripted(|s, n| {
        let r: &[u8] = if n == 1 {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
        };
        Some(write(s, r))
    });

    let timeouts = "connect_timeout = \"1s\"\nread_timeout = \"1s\"\n";
    let sites = [
        ("healthy", healthy.url(), ""),
        ("rst-first", format!("http://{rst_first}"), ""),
        ("rst-mid-body", format!("http://{rst_mid_body}"), ""),
        ("hang-mid-body", format!("http://{hang_mid_body}"), timeouts),
        ("eof-first", format!("http://{eof_first}"), ""),
        ("bad-status", format!("http://{bad_status}"), ""),
        ("binary", format!("http://{binary}"), ""),
        ("huge-head", format!("http://{huge_head}"), ""),
        ("two-lengths", format!("http://{two_lengths}"), ""),
        ("cl-and-te", format!("http://{cl_and_te}"), ""),
        ("bad-chunks", format!("http://{bad_chunks}"), ""),
        ("poisoner", format!("http://{poisoner}"), ""),
    ];
    let o = Offramp::start(&config(
        "",
        &sites
            .iter()
            .map(|(n, u, extra)| site(n, u, &format!("{extra}status_page = \"{STATUS}/{n}\"\n")))
            .collect::<Vec<_>>(),
    ));
    let addr = o.addr();

    // Nothing was sent: a clean 502 page that links the site's status page.
    for name in [
        "rst-first",
        "eof-first",
        "bad-status",
        "binary",
        "huge-head",
        "two-lengths",
        "bad-chunks",
    ] {
        let g = get_raw(addr, &host(name), "/x");
        assert_eq!(
            g.status,
            502,
            "{name}: {}",
            String::from_utf8_lossy(&g.body)
        );
        assert!(g.complete, "{name}: the error page is complete");
        let body = String::from_utf8_lossy(&g.body);
        assert!(body.contains(&format!("{STATUS}/{name}")), "{name}: {body}");
        assert_eq!(healthy_get(addr), "healthy", "after {name}");
    }
    // Both framings from the upstream: refused, or passed with one unambiguous framing.
    let g = get_raw(addr, &host("cl-and-te"), "/x");
    if g.status == 200 {
        let te = g.headers.iter().any(|(k, _)| k == "transfer-encoding");
        let cl = g.headers.iter().any(|(k, _)| k == "content-length");
        assert!(
            !(te && cl),
            "both framings passed to the client: {:?}",
            g.headers
        );
        assert!(g.complete);
    } else {
        assert_eq!(g.status, 502);
    }
    // Cut off mid-body (reset, or silent past read_timeout): the client sees the head
    // and a body that is visibly incomplete, never a complete-looking one.
    for name in ["rst-mid-body", "hang-mid-body"] {
        let start = Instant::now();
        let g = get_raw(addr, &host(name), "/x");
        assert_eq!(g.status, 200, "{name}");
        assert!(
            !g.complete,
            "{name}: a cut body must not look complete ({} bytes)",
            g.body.len()
        );
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "{name}: cut by read_timeout"
        );
        assert_eq!(healthy_get(addr), "healthy", "after {name}");
    }
    // The stale second response is never served to anyone.
    for i in 0..6 {
        let g = get_raw(addr, &host("poisoner"), &format!("/{i}"));
        assert_eq!(g.status, 200);
        assert_ne!(
            g.body, b"poisoned",
            "request {i} got the previous connection's leftovers"
        );
    }
    for i in 0..3 {
        let mut c = o.conn();
        for j in 0..3 {
            let r = c.get(&host("poisoner"), &format!("/kept-{i}-{j}"));
            assert_ne!(r.body, b"poisoned", "kept-alive request {i}/{j}");
        }
    }
    // Upstream errors are counted, and the daemon is fine.
    assert!(o.child.id() > 0);
    assert_eq!(o.get(&host("healthy"), "/end").status, 200);
}

fn healthy_get(addr: SocketAddr) -> String {
    let mut c = Conn::open(addr);
    let r = c.get(&host("healthy"), "/");
    assert_eq!(r.status, 200);
    r.json()["origin"].as_str().unwrap_or("").to_string()
}

/// A listening socket whose accept queue is full: new connections are never accepted
/// (the kernel drops their SYNs), as with an overloaded or firewalled upstream.
fn unaccepting_listener() -> (SocketAddr, Vec<TcpStream>, TcpListener) {
    // SAFETY: plain socket calls on a fresh descriptor we own; the struct sizes match.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    // SAFETY: fd is a listening TCP socket we own.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let local = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&local, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (local, fillers, listener),
        }
    }
    panic!("could not fill the accept queue of {local}");
}

#[test]
fn connect_timeout_is_honoured_for_an_upstream_that_never_accepts() {
    let (addr, _fillers, _listener) = unaccepting_listener();
    let o = Offramp::start(&config(
        "",
        &[site(
            "stuck",
            &format!("http://{addr}"),
            "connect_timeout = \"1s\"\nread_timeout = \"30s\"\n",
        )],
    ));
    let start = Instant::now();
    let r = o.get(&host("stuck"), "/");
    let took = start.elapsed();
    assert_eq!(r.status, 502, "{}", r.text());
    // The default connect timeout is 5 s: well under it shows the site's 1 s applied.
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "gave up before the timeout: {took:?}"
    );
}

// ---------------------------------------------------------------------------------
// Operator faults
// ---------------------------------------------------------------------------------

#[test]
fn invalid_setups_at_start_up_exit_1_with_a_clear_error() {
    let origin = TestOrigin::start("origin");
    let good_site = site("blog", &origin.url(), "");
    let one = std::slice::from_ref(&good_site);
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().expect("addr");
    let scratch = tempfile::tempdir().expect("tempdir");
    let a_file = scratch.path().join("a-file");
    std::fs::write(&a_file, "not a directory").unwrap();

    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "unknown key",
            config("bogus = 1", one),
            vec![
                "offramp.toml:9".into(),
                "server.bogus".into(),
                "unknown key".into(),
            ],
        ),
        (
            "TOML syntax error",
            format!("{}[maintenance\nstatus_page = 1\n", server_section("")),
            vec!["offramp.toml:10".into(), "TOML syntax error".into()],
        ),
        (
            "unknown control group",
            config("control_group = \"no-such-group-offramp\"", one),
            vec![
                "offramp.toml:9".into(),
                "server.control_group".into(),
                "unknown group".into(),
            ],
        ),
        (
            "host claimed twice",
            config(
                "",
                &[
                    good_site.clone(),
                    good_site.replace("name = \"blog\"", "name = \"blog2\""),
                ],
            ),
            vec!["site[2].hosts".into(), "already claimed".into()],
        ),
        (
            "listener address in use",
            config("", one).replace("127.0.0.1:0", &busy_addr.to_string()),
            vec![format!("cannot listen on {busy_addr}")],
        ),
        (
            "control socket directory cannot be created",
            config("", one).replace(
                "control = \"control.sock\"",
                &format!("control = \"{}/sub/control.sock\"", toml_path(&a_file)),
            ),
            vec![format!("{}/sub/control.sock", a_file.display())],
        ),
    ];
    for (what, text, needles) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offramp.toml");
        std::fs::write(&path, &text).unwrap();
        let out = run_with_timeout(Command::new(bin()).arg("serve").arg("-c").arg(&path), WAIT);
        assert_eq!(out.code, Some(1), "{what}: {out:?}");
        for n in needles {
            assert!(
                out.stderr.contains(&n),
                "{what}: {n:?} not in:\n{}",
                out.stderr
            );
        }
        assert!(
            !dir.path().join("control.sock").exists(),
            "{what}: socket left behind"
        );
        // `check` says the same about config errors.
        let check = cli(&["check", "-c", path.to_str().unwrap()]);
        if what != "listener address in use" && what != "control socket directory cannot be created"
        {
            assert_eq!(check.code, Some(1), "{what}: {check:?}");
        }
    }
    // A missing config file.
    let out = run_with_timeout(
        Command::new(bin()).args(["serve", "-c", "/nonexistent/offramp.toml"]),
        WAIT,
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("/nonexistent/offramp.toml"),
        "{}",
        out.stderr
    );
    drop(busy);
}

#[test]
fn missing_control_socket_directory_is_created() {
    let origin = TestOrigin::start("origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config("", &[site("blog", &origin.url(), "")])
        .replace(
            "control = \"control.sock\"",
            "control = \"run/nested/control.sock\"",
        )
        .replace(
            "state = \"state.json\"",
            "state = \"lib/nested/state.json\"",
        );
    std::fs::write(dir.path().join("offramp.toml"), text).unwrap();
    let o = Offramp::start_in(dir, &[]);
    let sock = o.dir.path().join("run/nested/control.sock");
    assert!(sock.exists(), "socket created in a new directory");
    let out = cli(&["--socket", sock.to_str().unwrap(), "offline", "blog"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(o.dir.path().join("lib/nested/state.json").exists());
    assert_eq!(o.get(&host("blog"), "/").status, 302);
}

/// A small tmpfs mounted for the duration of a test, or `None` (and a loud note) when
/// this process may not mount.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { path, _dir: dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn remount(&self, opt: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.path)
            .status()
            .expect("mount");
        assert!(st.success(), "remount {opt}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Asserts a flip is refused with a clear error and changes nothing anywhere.
fn assert_flip_refused(o: &Offramp, state: &Path, why: &str) {
    let before_file = std::fs::read(state).expect("state file");
    let before = status(o);
    let out = o.cli(&["online", "blog", "--reason", "should not apply"]);
    assert_one_line_error(&out, 1, &[&state.display().to_string()]);
    assert!(out.stderr.contains(why), "{why}: {out:?}");
    assert_eq!(
        std::fs::read(state).unwrap(),
        before_file,
        "state file untouched"
    );
    assert_eq!(
        status(o)["sites"],
        before["sites"],
        "state in force unchanged"
    );
    assert_eq!(o.get(&host("blog"), "/").status, 302, "still offline");
    let dir = state.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "state.json" && n != "filler")
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written files left: {leftovers:?}"
    );
}

fn daemon_with_state_in(dir: &Path, origin: &TestOrigin) -> Offramp {
    daemon_with_state_in_custom(dir, origin, None, |_| {})
}

/// Like [`daemon_with_state_in`], run as user and group `run_as` when given (its own
/// directory is given to it), and `configure` may adjust the daemon's command.
fn daemon_with_state_in_custom(
    dir: &Path,
    origin: &TestOrigin,
    run_as: Option<u32>,
    configure: impl FnOnce(&mut Command),
) -> Offramp {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = config("", &[site("blog", &origin.url(), "")]).replace(
        "state = \"state.json\"",
        &format!("state = \"{}/state.json\"", toml_path(dir)),
    );
    std::fs::write(tmp.path().join("offramp.toml"), text).unwrap();
    if let Some(id) = run_as {
        std::os::unix::fs::chown(tmp.path(), Some(id), Some(id)).expect("chown");
    }
    Offramp::start_custom(tmp, &[], &[], |cmd| {
        if let Some(id) = run_as {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setgroups/setgid/setuid, async-signal-safe, between fork
            // and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(id) != 0
                        || libc::setuid(id) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        configure(cmd)
    })
}

/// The user (and group) a daemon runs as when root must not be the one writing.
const NOBODY: u32 = 65534;

/// How the state directory is made read-only for the daemon.
enum ReadOnly {
    /// The tmpfs it is on, remounted read-only (needs the right to mount).
    Remount(Tmpfs),
    /// Its mode set to 0555, with the daemon run as `Some(user)` when this process is
    /// root (which a mode does not stop).
    Mode(Option<u32>),
}

/// Whether a directory of mode 0555 stops this process (and a daemon it starts with
/// the same credentials) from creating files: not for root, which overrides it.
fn read_only_by_mode() -> bool {
    let probe = tempfile::tempdir().expect("tempdir");
    let set = |mode| {
        std::fs::set_permissions(
            probe.path(),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap()
    };
    set(0o555);
    let stopped = std::fs::write(probe.path().join("x"), b"x").is_err();
    set(0o755);
    stopped
}

#[test]
fn read_only_state_file_system_refuses_the_flip_and_keeps_the_previous_state() {
    let origin = TestOrigin::start("origin");
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let how = match Tmpfs::mount("1m") {
        Some(fs) => ReadOnly::Remount(fs),
        // Without the right to mount: a directory the daemon may not write to does the
        // same. Root writes there anyway, so as root the daemon runs as another user.
        None if read_only_by_mode() => ReadOnly::Mode(None),
        None if root => ReadOnly::Mode(Some(NOBODY)),
        None => {
            eprintln!(
                "SKIPPED: read_only_state_file_system_refuses_the_flip_and_keeps_the_previous_state: \
                 cannot mount a tmpfs, and a directory of mode 0555 does not stop this user's \
                 writes: nothing here can make the state file system read-only"
            );
            return;
        }
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = match &how {
        ReadOnly::Remount(fs) => fs.path.clone(),
        ReadOnly::Mode(_) => scratch.path().to_path_buf(),
    };
    let run_as = match &how {
        ReadOnly::Mode(Some(id)) => {
            std::os::unix::fs::chown(&dir, Some(*id), Some(*id)).expect("chown");
            Some(*id)
        }
        _ => None,
    };
    let o = daemon_with_state_in_custom(&dir, &origin, run_as, |_| {});
    let state = dir.join("state.json");
    o.cli(&["offline", "blog", "--reason", "before"]).ok();
    let mode = |m| std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(m));
    let why = match &how {
        ReadOnly::Remount(fs) => {
            fs.remount("ro");
            "Read-only file system"
        }
        ReadOnly::Mode(_) => {
            mode(0o555).unwrap();
            "Permission denied"
        }
    };
    assert_flip_refused(&o, &state, why);
    // Writable again: flips work again.
    match &how {
        ReadOnly::Remount(fs) => fs.remount("rw"),
        ReadOnly::Mode(_) => mode(0o755).unwrap(),
    }
    o.cli(&["online", "blog"]).ok();
    assert_eq!(o.get(&host("blog"), "/").status, 200);
    // After a restart the last successful flip is what is in force.
    let o = o.kill_and_restart();
    assert_eq!(entry(&status(&o), "blog")["state"], "online");
}

#[test]
fn full_state_file_system_refuses_the_flip_and_keeps_the_previous_state() {
    let origin = TestOrigin::start("origin");
    // Without privileges: a file size limit on the daemon fails its writes the same way
    // a full disk does (a short write, then an error), with "File too large".
    file_size_limit_refuses_the_flip_and_keeps_the_previous_state(&origin);
    let Some(fs) = Tmpfs::mount("256k") else {
        eprintln!(
            "SKIPPED: full_state_file_system_refuses_the_flip_and_keeps_the_previous_state: \
             the real full file system (tmpfs) part needs the right to mount; only the file \
             size limit part ran"
        );
        return;
    };
    let o = daemon_with_state_in(&fs.path, &origin);
    let state = fs.path.join("state.json");
    o.cli(&["offline", "blog", "--reason", "before the disk filled"])
        .ok();
    // Fill the file system to the last byte.
    let mut filler = std::fs::File::create(fs.path.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while filler.write_all(&block).is_ok() {}
    for _ in 0..4096 {
        if filler.write_all(&[0]).is_err() {
            break;
        }
    }
    let _ = filler.sync_all();
    drop(filler);
    assert_flip_refused(&o, &state, "No space left on device");
    let text = std::fs::read_to_string(&state).unwrap();
    let v: Value = serde_json::from_str(&text).expect("state file still valid JSON");
    assert_eq!(
        v["sites"]["blog"]["reason"], "before the disk filled",
        "{v}"
    );
    // The previous state survives a SIGKILL too.
    let o = o.kill_and_restart();
    let b = entry(&status(&o), "blog");
    assert_eq!(b["state"], "offline", "{b}");
    assert_eq!(b["reason"], "before the disk filled");
    // Space again: flips work again.
    std::fs::remove_file(fs.path.join("filler")).unwrap();
    o.cli(&["online", "blog"]).ok();
    assert_eq!(o.get(&host("blog"), "/").status, 200);
}

/// Sets the soft `RLIMIT_FSIZE` of process `pid` (the hard limit stays, so it can be
/// raised again).
fn set_fsize_limit(pid: u32, soft: Option<u64>) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit(2) reads and writes only the struct passed.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            std::ptr::null(),
            &mut lim,
        )
    };
    assert_eq!(r, 0, "prlimit get: {}", std::io::Error::last_os_error());
    lim.rlim_cur = soft.map_or(lim.rlim_max, |s| s as libc::rlim_t);
    // SAFETY: as above.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit set: {}", std::io::Error::last_os_error());
}

fn file_size_limit_refuses_the_flip_and_keeps_the_previous_state(origin: &TestOrigin) {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = daemon_with_state_in_custom(dir.path(), origin, None, |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: only signal(2), async-signal-safe, between fork and exec. Ignored, a
        // write past the limit fails with EFBIG instead of killing the daemon; the
        // disposition survives exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let state = dir.path().join("state.json");
    o.cli(&["offline", "blog", "--reason", "before the limit"])
        .ok();
    set_fsize_limit(o.pid(), Some(256));
    assert_flip_refused(&o, &state, "File too large");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap())
        .expect("state file still valid JSON");
    assert_eq!(v["sites"]["blog"]["reason"], "before the limit", "{v}");
    // Room again: flips work again.
    set_fsize_limit(o.pid(), None);
    o.cli(&["online", "blog"]).ok();
    assert_eq!(o.get(&host("blog"), "/").status, 200);
    let o = o.kill_and_restart();
    assert_eq!(entry(&status(&o), "blog")["state"], "online");
}

#[test]
fn state_file_corrupted_while_running_is_rewritten_by_the_next_flip() {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(
        "",
        &[
            site("blog", &origin.url(), ""),
            site("cloud", &origin.url(), ""),
        ],
    ));
    o.cli(&["offline", "blog", "--reason", "kept"]).ok();
    std::fs::write(o.state_file(), b"{\"version\":1,\"sites\":{garbage").unwrap();
    // What is in force does not come from re-reading the file.
    assert_eq!(o.get(&host("blog"), "/").status, 302);
    o.cli(&["offline", "cloud"]).ok();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(o.state_file()).unwrap())
        .expect("rewritten as valid JSON");
    assert_eq!(v["sites"]["blog"]["reason"], "kept", "{v}");
    assert_eq!(v["sites"]["cloud"]["state"], "offline", "{v}");
    let o = o.kill_and_restart();
    let st = status(&o);
    assert_eq!(entry(&st, "blog")["reason"], "kept");
    assert_eq!(entry(&st, "cloud")["state"], "offline");
}

// ---------------------------------------------------------------------------------
// Control socket access
// ---------------------------------------------------------------------------------

/// A group other than this process's own that it may give files to: (name, gid).
fn other_group() -> Option<(String, u32)> {
    // SAFETY: getegid/getgroups have no preconditions; the buffer is sized by the call.
    let egid = unsafe { libc::getegid() };
    let candidates: Vec<u32> = if uid() == 0 {
        Vec::new()
    } else {
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        let mut groups = vec![0 as libc::gid_t; n.max(0) as usize];
        let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
        groups.truncate(n.max(0) as usize);
        groups.into_iter().filter(|g| *g != egid).collect()
    };
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?.to_string();
        let gid: u32 = f.nth(1)?.parse().ok()?;
        let usable = if uid() == 0 {
            gid != egid
        } else {
            candidates.contains(&gid)
        };
        (usable && !name.is_empty()).then_some((name, gid))
    })
}

#[test]
fn control_socket_group_is_configurable_and_every_change_logs_the_peer_uid() {
    let origin = TestOrigin::start("origin");
    let Some((name, gid)) = other_group() else {
        eprintln!("SKIPPED: no group other than our own to give the control socket to");
        return;
    };
    for value in [format!("{name:?}"), gid.to_string(), format!("\"{gid}\"")] {
        let text = config(
            &format!("control_group = {value}"),
            &[site("blog", &origin.url(), "")],
        );
        let o = Offramp::start(&text);
        let meta = std::fs::symlink_metadata(o.socket()).expect("socket");
        assert_eq!(meta.gid(), gid, "control_group = {value}");
        assert_eq!(meta.mode() & 0o777, 0o660, "control_group = {value}");
        o.cli(&["offline", "blog", "--reason", "group test"]).ok();
        let by = format!("by={}", uid());
        o.wait_log(WAIT, "the flip with its peer uid", |l| {
            l.contains("site state changed") && l.contains(&by)
        });
        o.cli(&["reset", "blog"]).ok();
        o.wait_log(WAIT, "the reset with its peer uid", |l| {
            l.contains("overrides dropped") && l.contains(&by)
        });
        o.cli(&["reload"]).ok();
        o.wait_log(WAIT, "the reload with its peer uid", |l| {
            l.contains("reload requested") && l.contains(&by)
        });

        // Changing it takes a restart, like `control`: reported, and not half applied.
        o.replace_config(&text.replace(&format!("control_group = {value}"), ""));
        let v = wait_for(
            WAIT,
            "a reload that reports the restart-only change",
            || {
                let out = o.cli(&["reload"]);
                (out.code == Some(0)).then_some(())?;
                let mut s = UnixStream::connect(o.socket()).ok()?;
                s.write_all(b"{\"cmd\":\"reload\"}\n").ok()?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).ok()?;
                serde_json::from_str::<Value>(&line).ok()
            },
        );
        assert!(
            v["reload"]["needs_restart"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == "server.control_group")),
            "{v}"
        );
        assert_eq!(std::fs::symlink_metadata(o.socket()).unwrap().gid(), gid);
    }
    // An unknown group or an impossible gid is a validation error naming file, line, key.
    for bad in ["\"no-such-group-offramp\"", "-1", "4294967295", "\"\""] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offramp.toml");
        std::fs::write(
            &path,
            config(
                &format!("control_group = {bad}"),
                &[site("blog", &origin.url(), "")],
            ),
        )
        .unwrap();
        let out = cli(&["check", "-c", path.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{bad}: {out:?}");
        assert!(
            out.stderr.contains("offramp.toml:9: server.control_group"),
            "{bad}: {}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------
// Consistency under load
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Online,
    Offline,
}

/// One flip: when it was sent and when its acknowledgement arrived.
#[derive(Debug, Clone, Copy)]
struct Flip {
    sent: Instant,
    acked: Instant,
    state: Seen,
}

/// One client request: sent, answered, what it showed.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent: Instant,
    answered: Instant,
    seen: Seen,
}

struct Ctl {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Ctl {
    fn open(path: &Path) -> Ctl {
        let s = UnixStream::connect(path).expect("connect control socket");
        s.set_read_timeout(Some(WAIT)).unwrap();
        Ctl {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    /// One request; `None` when the daemon is gone.
    fn call(&mut self, line: &str) -> Option<Value> {
        self.writer.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut reply = String::new();
        match self.reader.read_line(&mut reply) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&reply).ok(),
        }
    }
}

/// A flip of `blog` with a reason unique to it (`load <n>`), so that the state found
/// after a crash tells which flip it is.
fn flip_line(state: Seen, n: usize) -> String {
    let cmd = if state == Seen::Offline {
        "offline"
    } else {
        "online"
    };
    format!("{{\"cmd\":\"{cmd}\",\"sites\":[\"blog\"],\"reason\":\"load {n}\"}}")
}

#[test]
fn under_load_every_answer_matches_a_state_in_force_and_the_last_ack_survives_sigkill() {
    let origin = TestOrigin::start("origin");
    let other = TestOrigin::start("other");
    // Reloads change another site's hosts, so each one swaps the routing table.
    let text = |alias: usize| {
        config(
            "",
            &[
                site("blog", &origin.url(), ""),
                format!(
                    "[[site]]\nname = \"other\"\nhosts = [\"other.home.example\", \"alias{alias}.home.example\"]\nupstream = \"{}\"\n",
                    other.url()
                ),
            ],
        )
    };
    let o = Offramp::start(&text(0));
    let addr = o.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                let mut kept = Conn::open(addr);
                let mut mine = Vec::new();
                let mut n = 0usize;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let sent = Instant::now();
                    let r = if (n + i) % 2 == 0 {
                        kept.get("blog.home.example", "/load?x=1")
                    } else {
                        Conn::open(addr).get("blog.home.example", "/load?x=1")
                    };
                    let answered = Instant::now();
                    let seen = match r.status {
                        200 => {
                            assert_eq!(r.json()["origin"], "origin", "{}", r.text());
                            Seen::Online
                        }
                        302 => {
                            assert_eq!(r.header("location"), Some(&*format!("{STATUS}/load?x=1")));
                            Seen::Offline
                        }
                        s => panic!("unexpected answer {s}: {}", r.text()),
                    };
                    mine.push(Sample {
                        sent,
                        answered,
                        seen,
                    });
                    if n % 10 == 0 {
                        let r = Conn::open(addr).get("other.home.example", "/");
                        assert_eq!(r.status, 200, "the other site during reloads");
                    }
                }
                samples.lock().unwrap().extend(mine);
            })
        })
        .collect();

    let mut ctl = Ctl::open(&o.socket());
    let mut flips: Vec<Flip> = Vec::new();
    let mut state = Seen::Online;
    for i in 1..=100 {
        state = if state == Seen::Online {
            Seen::Offline
        } else {
            Seen::Online
        };
        let sent = Instant::now();
        let v = ctl.call(&flip_line(state, i)).expect("flip answered");
        let acked = Instant::now();
        assert_eq!(v["ok"], true, "{v}");
        flips.push(Flip { sent, acked, state });
        if i % 5 == 0 {
            o.replace_config(&text(i));
            let v = ctl.call("{\"cmd\":\"reload\"}").expect("reload answered");
            assert_eq!(v["ok"], true, "{v}");
        }
        std::thread::sleep(Duration::from_millis(10 + (i as u64 % 4) * 10));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Release);
    for c in clients {
        c.join()
            .expect("a client saw a failed request or a wrong answer");
    }
    let samples = samples.lock().unwrap().clone();

    // A request sent after flip k was acknowledged and answered before flip k+1 was
    // sent can only show flip k's state; one that overlaps a flip may show either.
    let mut strict = 0;
    for s in &samples {
        let before_first = s.answered < flips[0].sent;
        let window = flips.iter().enumerate().find(|(k, f)| {
            f.acked < s.sent && flips.get(k + 1).is_none_or(|n| s.answered < n.sent)
        });
        let must = match window {
            Some((_, f)) => Some(f.state),
            None if before_first => Some(Seen::Online),
            None => None,
        };
        if let Some(must) = must {
            strict += 1;
            assert_eq!(s.seen, must, "a stale answer: {s:?} after {window:?}");
        }
    }
    let offline = samples.iter().filter(|s| s.seen == Seen::Offline).count();
    assert!(samples.len() > 200, "{} samples", samples.len());
    assert!(
        strict > samples.len() / 2,
        "{strict} of {} samples checked strictly",
        samples.len()
    );
    assert!(
        offline > 20 && samples.len() - offline > 20,
        "both states were seen"
    );

    // Flip as fast as possible and SIGKILL the daemon in the middle: after a restart,
    // the last acknowledged flip is in force (or the one in flight, if it was saved).
    // Every flip has its own reason: the one found tells exactly which flip survived.
    let sock = o.socket();
    let first = flips.len() + 1;
    let flipper = std::thread::spawn(move || {
        let mut ctl = Ctl::open(&sock);
        // The last flip of the loop above (the 100th, to online) was acknowledged.
        let mut last_acked = (first - 1, state);
        let mut state = state;
        for n in first.. {
            state = if state == Seen::Online {
                Seen::Offline
            } else {
                Seen::Online
            };
            match ctl.call(&flip_line(state, n)) {
                Some(v) if v["ok"] == true => last_acked = (n, state),
                _ => return (last_acked, (n, state)),
            }
        }
        unreachable!()
    });
    std::thread::sleep(Duration::from_millis(300));
    o.signal(libc::SIGKILL);
    let (last_acked, in_flight) = flipper.join().expect("flipper");
    assert!(
        last_acked.0 >= first,
        "no flip was acknowledged before the kill"
    );
    let o = o.kill_and_restart();
    let b = entry(&status(&o), "blog");
    let reason = b["reason"].as_str().unwrap_or_default().to_string();
    let found = [last_acked, in_flight]
        .into_iter()
        .find(|(n, _)| reason == format!("load {n}"));
    let Some((_, state)) = found else {
        panic!(
            "after SIGKILL: {b}; expected the last acknowledged flip (load {}) or the one \
             in flight (load {})",
            last_acked.0, in_flight.0
        );
    };
    let now = if b["state"] == "offline" {
        Seen::Offline
    } else {
        Seen::Online
    };
    assert_eq!(now, state, "the state of that flip: {b}");
    let r = o.get("blog.home.example", "/after");
    assert_eq!(
        r.status == 302,
        now == Seen::Offline,
        "requests follow the state: {}",
        r.status
    );
    let text = std::fs::read_to_string(o.state_file()).expect("state file");
    serde_json::from_str::<Value>(&text).expect("state file is valid JSON after SIGKILL");
}
