//! The packaging files: `systemd/offramp.service` has the settings the daemon relies on,
//! passes `systemd-analyze verify`, and `systemd-analyze security` rates its exposure
//! 2.0 or better; the config the Debian package installs (`debian/offramp.toml`) is
//! valid. The systemd-analyze checks are skipped, loudly, where it is not installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest acceptable `systemd-analyze security` exposure (0.0 best … 10.0 worst).
const MAX_EXPOSURE: f64 = 2.0;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn unit_text() -> String {
    let path = manifest_dir().join("systemd/offramp.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's `Key=value` lines (comments and section headers dropped), trimmed.
fn settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Prints to the real stderr: unlike `eprintln!`, not swallowed by the test harness's
/// output capture, so a skip is visible in every `cargo test` run.
fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Runs systemd-analyze with `args`; `None` (after a loud note) when it is not installed.
fn systemd_analyze(args: &[&str]) -> Option<Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            loud(&format!(
                "SKIPPED: systemd-analyze not found: `systemd-analyze {}` was NOT run \
                 (install systemd to run this check)",
                args.join(" ")
            ));
            None
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// A copy of the unit, still named offramp.service, in a fresh temporary directory,
/// with `ExecStart` pointing at the binary Cargo just built (verify checks that the
/// program exists; /usr/bin/offramp only does once the package is installed).
struct UnitCopy {
    dir: PathBuf,
    path: PathBuf,
}

impl UnitCopy {
    fn new(tag: &str) -> UnitCopy {
        let dir = std::env::temp_dir().join(format!(
            "offramp-systemd-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let unit = unit_text();
        assert!(
            unit.contains("ExecStart=/usr/bin/offramp "),
            "ExecStart should run /usr/bin/offramp (where the package installs it)"
        );
        let unit = unit.replace(
            "ExecStart=/usr/bin/offramp ",
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_offramp")),
        );
        let path = dir.join("offramp.service");
        std::fs::write(&path, unit).unwrap();
        UnitCopy { dir, path }
    }
}

impl Drop for UnitCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn unit_has_the_settings_offramp_relies_on() {
    let unit = unit_text();
    let s = settings(&unit);
    let one = |key: &str| -> &str {
        let v = values(&s, key);
        assert_eq!(v.len(), 1, "{key}= should be set exactly once, got {v:?}");
        v[0]
    };

    assert_eq!(one("Type"), "notify", "offramp sends READY=1 via sd_notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/offramp serve -c /etc/offramp/offramp.toml"
    );
    let reload = one("ExecReload");
    assert!(
        reload.contains("kill") && reload.contains("-HUP") && reload.contains("$MAINPID"),
        "ExecReload should send SIGHUP to the main process, got {reload:?}"
    );
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("User"), "offramp");
    assert_eq!(one("Group"), "offramp");
    assert_eq!(
        one("RuntimeDirectory"),
        "offramp",
        "home of the control socket"
    );
    assert_eq!(
        one("RuntimeDirectoryMode"),
        "0750",
        "members of the group must reach /run/offramp/control.sock"
    );
    assert_eq!(one("StateDirectory"), "offramp", "home of state.json");
    assert_eq!(one("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    assert_eq!(one("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(one(key), value, "hardening: {key}");
    }
    // The daemon needs TCP (v4 and v6) and AF_UNIX (control socket, sd_notify).
    let families = one("RestrictAddressFamilies");
    for family in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(
            families.split_whitespace().any(|f| f == family),
            "RestrictAddressFamilies lacks {family}: {families:?}"
        );
    }
    // A syscall allow list that keeps inotify (config/certs watch): @system-service has
    // it; @file-system must not be denied.
    let filters = values(&s, "SystemCallFilter");
    assert!(
        filters.contains(&"@system-service"),
        "SystemCallFilter should allow @system-service, got {filters:?}"
    );
    assert!(
        !filters
            .iter()
            .any(|f| f.starts_with('~') && f.contains("@file-system")),
        "inotify (in @file-system) must stay allowed: {filters:?}"
    );
    // PrivateUsers= would run the daemon in a user namespace where CAP_NET_BIND_SERVICE
    // no longer lets it bind ports below 1024 of the host's network.
    assert!(values(&s, "PrivateUsers").iter().all(|v| *v != "yes"));
    assert!(values(&s, "PrivateNetwork").iter().all(|v| *v != "yes"));
    assert_eq!(one("WantedBy"), "multi-user.target");
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let copy = UnitCopy::new("verify");
    let path = copy.path.to_str().unwrap();
    let Some(out) = systemd_analyze(&["verify", path]) else {
        return;
    };
    // verify exits non-zero on errors; warnings (unknown keys, bad values) only go to
    // stderr, prefixed with the unit's path or name: accept none of those either.
    // (The service user need not exist for verify.)
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_us: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("offramp.service") || l.contains(copy.dir.to_str().unwrap()))
        .collect();
    assert!(
        out.status.success() && about_us.is_empty(),
        "systemd-analyze verify {path} complained:\n{}",
        show(&out)
    );
}

#[test]
fn unit_exposure_is_at_most_2() {
    let copy = UnitCopy::new("security");
    let path = copy.path.to_str().unwrap();
    let Some(out) = systemd_analyze(&["security", "--offline=yes", "--no-pager", path]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (stderr.contains("unrecognized option") || stderr.contains("unknown option"))
    {
        loud(&format!(
            "SKIPPED: this systemd-analyze has no --offline (systemd < 250): exposure NOT \
             checked\n{}",
            show(&out)
        ));
        return;
    }
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for offramp.service:"))
        .unwrap_or_else(|| panic!("no overall exposure line:\n{}", show(&out)));
    let score: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {line:?}"));
    loud(&format!("systemd-analyze security: {}", line.trim()));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is above {MAX_EXPOSURE}: tighten the unit's sandboxing\n{}",
        show(&out)
    );
    // The README records the score; keep it true.
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let marker = "`systemd-analyze security offramp` rates it **";
    let recorded = readme
        .split_once(marker)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("README.md lacks \"{marker}N.N OK**\""));
    assert!(
        (recorded - score).abs() < 0.05,
        "README.md records exposure {recorded}, systemd-analyze says {score}: update the README"
    );
}

#[test]
fn packaged_config_is_valid() {
    // The Debian package installs debian/offramp.toml as /etc/offramp/offramp.toml.
    let config = manifest_dir().join("debian/offramp.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_offramp"))
        .arg("check")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run offramp check");
    assert!(
        out.status.success(),
        "offramp check -c {} failed:\n{}",
        config.display(),
        show(&out)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let s = settings(&text);
    assert!(
        values(&s, "listen").is_empty() && !text.lines().any(|l| l.trim() == "[demo]"),
        "the production config must not start the demo origin"
    );
    // The daemon's paths must be the directories the unit provides and may write.
    let server: String = text
        .lines()
        .skip_while(|l| l.trim() != "[server]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n");
    let server = settings(&server);
    let value = |key: &str| -> String {
        let v = values(&server, key);
        assert_eq!(v.len(), 1, "[server] {key} should be set once");
        let v = v[0].split('#').next().unwrap();
        v.trim().trim_matches('"').to_string()
    };
    assert!(
        value("control").starts_with("/run/offramp/"),
        "control socket outside RuntimeDirectory=offramp"
    );
    assert!(
        value("state").starts_with("/var/lib/offramp/"),
        "state file outside StateDirectory=offramp"
    );
    // Metrics are scrapeable out of the box, but only from this machine: the admin
    // listener has no authentication.
    let admin: std::net::SocketAddr = value("admin").parse().expect("[server] admin address");
    assert!(
        admin.ip().is_loopback(),
        "the packaged admin listener must be on loopback, got {admin}"
    );
}

/// The system calls in a `SystemCallFilter=` set (`@group` or a name), groups nested in
/// groups included, as this machine's systemd defines them; `None` when systemd-analyze
/// is missing.
fn syscall_set(
    item: &str,
    cache: &mut std::collections::HashMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    if !item.starts_with('@') {
        return Some(vec![item.to_string()]);
    }
    if let Some(v) = cache.get(item) {
        return Some(v.clone());
    }
    let out = systemd_analyze(&["syscall-filter", item])?;
    assert!(out.status.success(), "{}", show(&out));
    let mut calls = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        calls.extend(syscall_set(line, cache)?);
    }
    cache.insert(item.to_string(), calls.clone());
    Some(calls)
}

#[test]
fn unit_lets_offramp_give_its_control_socket_to_a_group() {
    // `[server] control_group` makes offramp chown(2) its control socket (src/control.rs):
    // the filter must allow it, or the documented setting stops the service at start-up.
    // systemd's rule: the first SystemCallFilter= line decides allow or deny list; later
    // lines add to it (same kind) or take from it (`~`).
    let unit = unit_text();
    let s = settings(&unit);
    let mut cache = std::collections::HashMap::new();
    let mut allowed: Option<std::collections::HashSet<String>> = None;
    for line in values(&s, "SystemCallFilter") {
        let (deny, list) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let set = allowed.get_or_insert_with(|| {
            assert!(!deny, "the first SystemCallFilter= should be an allow list");
            Default::default()
        });
        for item in list.split_whitespace() {
            let Some(calls) = syscall_set(item, &mut cache) else {
                return;
            };
            for c in calls {
                if deny {
                    set.remove(&c);
                } else {
                    set.insert(c);
                }
            }
        }
    }
    let allowed = allowed.expect("a SystemCallFilter=");
    // std::os::unix::fs::chown is fchownat(2) in current glibc, chown(2) in older ones.
    for call in [
        "chown",
        "fchownat",
        "fchown",
        "fchmodat",
        "inotify_add_watch",
        "bind",
    ] {
        assert!(
            allowed.contains(call),
            "SystemCallFilter= blocks {call}, which offramp needs"
        );
    }
    // What @privileged is denied for stays denied.
    for call in [
        "setuid",
        "capset",
        "mount",
        "init_module",
        "reboot",
        "setrlimit",
    ] {
        assert!(!allowed.contains(call), "SystemCallFilter= allows {call}");
    }
}
