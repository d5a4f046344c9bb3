//! Unit tests of the config format: a full good file, each kind of error with its line
//! and key, defaults, path resolution and the lenient control-socket lookup.

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
    for bad in ["a.*.example", "a.example:80", "a b", "*", "a.example.."] {
        let text = format!("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[[site]]\nname = \"a\"\nhosts = [\"{bad}\"]\nupstream = \"http://127.0.0.1:1\"\n");
        assert!(
            errors(&text).iter().any(|e| e.key == "site[1].hosts"),
            "{bad} accepted"
        );
    }
}

#[test]
fn control_line_is_found_in_a_file_with_syntax_errors() {
    let text = "[server]\nhttp = [\"127.0.0.1:8080\"\ncontrol = \"/run/x.sock\" # here\n[[site]]\nname = \n";
    assert!(toml::from_str::<toml::Table>(text).is_err());
    assert_eq!(control_line(text).as_deref(), Some("/run/x.sock"));
    assert_eq!(control_line("[site]\ncontrol = \"/a\"\n[server\n"), None);
    assert_eq!(
        control_line("[server] # main\ncontrol_group = \"g\"\ncontrol = \"/b\"\n"),
        Some("/b".into())
    );
}

#[test]
fn control_hint_reads_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("o.toml");
    let text = "[server]\ncontrol = \"x.sock\"\nthreads = \"many\"\n";
    std::fs::write(&f, text).unwrap();
    assert_eq!(control_path_in(&f, text), Some(dir.path().join("x.sock")));
}

/// The line a message about `key` points at, and its message, for each error about it.
fn at(errs: &[ConfigError], key: &str) -> Vec<(usize, String)> {
    errs.iter()
        .filter(|e| e.key == key)
        .map(|e| (e.line, e.message.clone()))
        .collect()
}

#[test]
fn a_site_needs_at_least_one_host() {
    let errs = errors("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[[site]]\nname = \"a\"\nhosts = []\nupstream = \"http://127.0.0.1:1\"\n");
    assert_eq!(
        at(&errs, "site[1].hosts"),
        [(7, "needs at least one host name".to_string())]
    );
}

#[test]
fn an_invalid_link_is_not_also_reported_missing() {
    let errs = errors("[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[status]\nhosts = [\"s.example\"]\nlinks = [\n{ name = \"\", url = \"ftp://x\" },\n{ name = \"ok\" },\n]\n");
    let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(at(&errs, "status.links[1].url").len(), 1, "{shown:#?}");
    assert!(at(&errs, "status.links[1].url")[0]
        .1
        .contains("not an http"));
    assert_eq!(at(&errs, "status.links[1].name").len(), 1, "{shown:#?}");
    assert!(at(&errs, "status.links[1].name")[0].1.contains("1 to 100"));
    assert_eq!(
        at(&errs, "status.links[2].url"),
        [(9, "missing: a link needs a url".to_string())]
    );
    assert_eq!(errs.len(), 3, "{shown:#?}");
}

#[test]
fn errors_about_keys_the_file_sets_have_their_line() {
    let errs = errors("[server]\nhttp = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:1\"\ncontrol = \"x\"\nstate = \"x\"\nredirect_https = true\n[maintenance]\ncode = 503\n[demo]\n");
    let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(at(&errs, "server.admin")[0].0, 3, "{shown:#?}");
    assert_eq!(at(&errs, "server.state")[0].0, 5, "{shown:#?}");
    assert_eq!(at(&errs, "server.redirect_https")[0].0, 6, "{shown:#?}");
    // Reported even when the file has other errors.
    assert_eq!(
        at(&errs, "demo.listen"),
        [(9, "missing: the demo origin needs an address".to_string())],
        "{shown:#?}"
    );
    let errs = errors("[server]\nhttp = \"127.0.0.1:1\"\nhttps = \"127.0.0.1:2\"\n");
    assert_eq!(at(&errs, "server.certs")[0].0, 3, "{errs:#?}");
}

#[test]
fn certificate_errors_have_the_line_of_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let text = "[server]\nhttp = \"127.0.0.1:1\"\nhttps = \"127.0.0.1:2\"\ncerts = \"certs\"\n[maintenance]\ncode = 503\n[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\nupstream = \"http://127.0.0.1:1\"\n[status]\nhosts = [\"a-status.test\",\n  \"s.test\"]\n";
    let file = dir.path().join("tls.toml");
    let errs = Config::parse(text, &file).unwrap_err().0;
    let certs_errs = at(&errs, "server.certs");
    assert_eq!(certs_errs.len(), 1, "{errs:#?}");
    assert_eq!(certs_errs[0].0, 4);
    assert!(certs_errs[0].1.starts_with("no certificate in"));

    let cert =
        rcgen::generate_simple_self_signed(vec!["a.test".into(), "a-status.test".into()]).unwrap();
    std::fs::write(certs.join("a.crt"), cert.cert.pem()).unwrap();
    std::fs::write(certs.join("a.key"), cert.key_pair.serialize_pem()).unwrap();
    let errs = Config::parse(text, &file).unwrap_err().0;
    assert_eq!(
        at(&errs, "status.hosts"),
        [(
            13,
            format!(
                "status host s.test has no certificate in {}",
                certs.display()
            )
        )],
        "{errs:#?}"
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");

    // A broken pair: at the line of `certs`, naming the file.
    std::fs::write(certs.join("b.crt"), "not a certificate").unwrap();
    std::fs::write(certs.join("b.key"), "not a key").unwrap();
    let errs = Config::parse(text, &file).unwrap_err().0;
    let certs_errs = at(&errs, "server.certs");
    assert!(!certs_errs.is_empty(), "{errs:#?}");
    for (line, message) in certs_errs {
        assert_eq!(line, 4);
        assert!(
            message.contains(&*certs.join("b.").to_string_lossy()),
            "{message}"
        );
    }
}

#[test]
fn status_url_is_a_public_origin_of_a_status_host() {
    let base = "[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[status]\nhosts = [\"status.example\", \"s2.example\"]\n";
    let url =
        |u: &str| parse(&format!("{base}url = {u:?}\n")).map(|c| c.status.and_then(|s| s.url));
    assert_eq!(
        url("HTTPS://Status.Example/").unwrap(),
        Some("https://status.example".to_string())
    );
    assert_eq!(
        url("http://s2.example:8080").unwrap(),
        Some("http://s2.example:8080".to_string())
    );
    assert_eq!(parse(base).unwrap().status.unwrap().url, None);
    for (bad, why) in [
        ("https://other.example", "is not one of [status] hosts"),
        ("https://status.example/status", "has a path"),
        ("https://status.example/?x=1", "must not have a query"),
        ("ftp://status.example", "is not an http:// or https:// URL"),
        ("status.example", "is not an http:// or https:// URL"),
        ("https://user@status.example", "user information"),
    ] {
        let errs = url(bad).expect_err(bad).0;
        assert_eq!(errs.len(), 1, "{bad}: {errs:#?}");
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (7, "status.url"),
            "{bad}"
        );
        assert!(errs[0].message.contains(why), "{bad}: {}", errs[0].message);
    }
    // The check does not depend on the order of the keys.
    let text = "[server]\nhttp = \"127.0.0.1:1\"\n[maintenance]\ncode = 503\n[status]\nurl = \"https://status.example\"\nhosts = [\"status.example\"]\n";
    assert!(parse(text).is_ok());
}

#[test]
fn a_site_overrides_code_and_keep_uri() {
    let text = r#"
[server]
http = "127.0.0.1:8080"
[maintenance]
status_page = "https://status.example.com"
[[site]]
name = "shop"
hosts = "shop.example"
upstream = "http://127.0.0.1:9000"
code = 307
keep_uri = false
[[site]]
name = "blog"
hosts = "blog.example"
upstream = "http://127.0.0.1:9001"
"#;
    let c = parse(text).expect("valid");
    assert_eq!(c.sites[0].code, Some(OfflineCode::Temporary));
    assert_eq!(c.sites[0].keep_uri, Some(false));
    assert_eq!(c.sites[1].code, None);
    assert_eq!(c.sites[1].keep_uri, None);
    let bad = text
        .replace("code = 307", "code = 301")
        .replace("keep_uri = false", "keep_uri = 1");
    let errs = errors(&bad);
    assert_eq!(
        at(&errs, "site[1].code"),
        vec![(10, "must be 302, 307 or 503, got 301".to_string())]
    );
    assert_eq!(at(&errs, "site[1].keep_uri").len(), 1);
    // A site answering 503 needs no status page, even when [maintenance] redirects.
    let own = "[server]\nhttp = \"127.0.0.1:8080\"\n[[site]]\nname = \"a\"\nhosts = \"a.example\"\nupstream = \"http://127.0.0.1:9000\"\ncode = 503\n";
    assert!(parse(own).is_ok());
    assert!(parse(&own.replace("503", "302")).is_err());
}
