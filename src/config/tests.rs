use super::*;

const GOOD: &str = r#"
[server]
http = ["127.0.0.1:8080", "[::1]:8080"]
threads = 2
control = "run/control.sock"
state = "/var/lib/offramp/state.json"
grace = "10s"
access_log = false

[maintenance]
status_page = "https://status.example.com"
code = 307
keep_uri = false

[[site]]
name = "cloud"
hosts = ["Cloud.Home.Example", "*.cloud.home.example"]
upstream = ["http://127.0.0.1:8080", "https://127.0.0.1"]
state = "offline"
status_page = "https://status.example.com/cloud"
connect_timeout = "3s"
read_timeout = "1m"

[[site]]
name = "blog"
hosts = "blog.home.example"
upstream = "http://127.0.0.1:9000"
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("/etc/offramp/offramp.toml"))
}

fn errors(text: &str) -> Vec<ConfigError> {
    parse(text).expect_err("config should be rejected").0
}

#[test]
fn reads_every_key() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.server.http.len(), 2);
    assert_eq!(c.server.threads, 2);
    assert_eq!(
        c.server.control,
        PathBuf::from("/etc/offramp/run/control.sock")
    );
    assert_eq!(c.server.grace, Duration::from_secs(10));
    assert!(!c.server.access_log);
    assert_eq!(c.maintenance.code, OfflineCode::Temporary);
    assert!(!c.maintenance.keep_uri);
    let cloud = c.site("cloud").unwrap();
    assert_eq!(
        cloud.hosts[0],
        HostPattern::Exact("cloud.home.example".into())
    );
    assert_eq!(
        cloud.hosts[1],
        HostPattern::Wildcard("cloud.home.example".into())
    );
    assert_eq!(cloud.upstreams.len(), 2);
    assert!(cloud.upstreams[1].tls);
    assert_eq!(cloud.upstreams[1].port, 443);
    assert_eq!(cloud.state, SiteState::Offline);
    assert_eq!(cloud.read_timeout, Duration::from_secs(60));
    let blog = c.site("blog").unwrap();
    assert_eq!(blog.state, SiteState::Online);
    assert_eq!(blog.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
}

#[test]
fn reports_every_error_with_line_and_key() {
    let errs = errors(
        r#"
[server]
http = "nonsense"
threads = 0
bogus = 1

[maintenance]
code = 301

[[site]]
name = "Cloud!"
hosts = ["a.example"]
upstream = "ftp://x"

[[site]]
name = "b"
hosts = ["a.example"]
upstream = "http://127.0.0.1:1"
state = "maybe"
"#,
    );
    let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let want = [
        ("server.http", 3),
        ("server.threads", 4),
        ("server.bogus", 5),
        ("maintenance.code", 8),
        ("site[1].name", 11),
        ("site[1].upstream", 13),
        ("site[2].state", 19),
    ];
    for (key, line) in want {
        assert!(
            errs.iter().any(|e| e.key == key && e.line == line),
            "missing {key} at line {line} in {shown:#?}"
        );
    }
    assert!(errs
        .iter()
        .any(|e| e.key == "site[2].hosts"
            && e.message.contains("already claimed by site \"Cloud!\"")));
    assert!(
        shown[0].starts_with("/etc/offramp/offramp.toml:3: server.http:"),
        "{shown:#?}"
    );
    // Sorted by line.
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn cross_site_conflicts() {
    let errs = errors(
        r#"
[server]
http = "127.0.0.1:1"
[maintenance]
status_page = "https://s.example"
[[site]]
name = "a"
hosts = ["x.example", "*.w.example"]
upstream = "http://127.0.0.1:1"
[[site]]
name = "a"
hosts = ["X.example.", "*.W.example"]
upstream = "http://127.0.0.1:1"
"#,
    );
    let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("duplicate site name \"a\"")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("host x.example is already claimed")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("host *.w.example is already claimed")),
        "{msgs:?}"
    );
}

#[test]
fn syntax_errors_have_lines() {
    let errs = errors("[server]\nhttp = [\"127.0.0.1:1\"\n");
    assert_eq!(errs[0].line, 2, "{errs:?}");
    assert!(errs[0].message.contains("TOML syntax error"));
}

#[test]
fn needs_a_status_page_unless_503() {
    let base = "[server]\nhttp = \"127.0.0.1:1\"\n[[site]]\nname = \"a\"\nhosts = [\"a.example\"]\nupstream = \"http://127.0.0.1:1\"\n";
    assert!(errors(base)[0].message.contains("no status page"));
    assert!(parse(&format!("{base}[maintenance]\ncode = 503\n")).is_ok());
}

#[test]
fn rejects_bad_values() {
    for (snippet, key) in [
        ("[server]\nhttp = \"localhost:80\"", "server.http"),
        ("[server]\nhttp = \"127.0.0.1:1\"\ngrace = \"10\"", "server.grace"),
        ("[server]\nhttp = \"127.0.0.1:1\"\naccess_log = \"yes\"", "server.access_log"),
        ("[server]\nhttp = [\"127.0.0.1:1\", \"127.0.0.1:1\"]", "server.http"),
        ("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\nstatus_page = \"https://a.example/?x\"", "maintenance.status_page"),
        ("[server]\nhttp = \"127.0.0.1:1\"\n[nope]\nx = 1", "nope"),
        ("[server]\nhttp = \"127.0.0.1:1\"\ncontrol = \"/tmp/ЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯЯ\"", "server.control"),
        ("[server]\nhttp = \"127.0.0.1:1\"\nhttps = \"127.0.0.1:2\"", "server.certs"),
        ("[server]\nhttp = \"127.0.0.1:1\"\nredirect_https = true", "server.redirect_https"),
        ("[server]\nhttp = \"127.0.0.1:1\"\nadmin = \"localhost:2\"", "server.admin"),
    ] {
        let errs = errors(snippet);
        assert!(errs.iter().any(|e| e.key == key), "{snippet}: {errs:?}");
    }
}

#[test]
fn sites_need_name_hosts_upstream() {
    let errs = errors("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[[site]]\nstate = \"online\"\n");
    for key in ["site[1].name", "site[1].hosts", "site[1].upstream"] {
        assert!(errs.iter().any(|e| e.key == key), "{key}: {errs:?}");
    }
}

#[test]
fn upstream_and_host_shapes() {
    for bad in [
        "http://127.0.0.1:1/path",
        "http://u@127.0.0.1",
        "127.0.0.1:1",
        "http://127.0.0.1:0",
        "http://no-such-host.invalid",
    ] {
        let text = format!("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[[site]]\nname = \"a\"\nhosts = [\"a.example\"]\nupstream = \"{bad}\"\n");
        assert!(
            errors(&text).iter().any(|e| e.key == "site[1].upstream"),
            "{bad} accepted"
        );
    }
    for bad in ["a.*.example", "a.example:80", "a b", "*"] {
        let text = format!("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[[site]]\nname = \"a\"\nhosts = [\"{bad}\"]\nupstream = \"http://127.0.0.1:1\"\n");
        assert!(
            errors(&text).iter().any(|e| e.key == "site[1].hosts"),
            "{bad} accepted"
        );
    }
}

#[test]
fn control_hint_reads_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("o.toml");
    std::fs::write(&f, "[server]\ncontrol = \"x.sock\"\nthreads = \"many\"\n").unwrap();
    assert_eq!(control_path_hint(&f), Some(dir.path().join("x.sock")));
}
