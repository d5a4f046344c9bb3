//! `offramp import`: the real binary reading Caddyfiles and the JSON the real
//! `caddy adapt` makes of them; both must give the same sites, and the result must
//! pass `offramp check`. Malformed input: a clear error with file and line, exit 1.
//!
//! Needs Debian's `caddy` for the JSON half (`.ci/deps` installs it); without it the
//! JSON tests say so and pass, except in CI (`CI=true`), where a missing caddy fails.

mod common;
#[path = "import/malformed.rs"]
mod malformed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, Offramp, TestOrigin};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/caddy")
        .join(rel)
}

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("offramp runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `offramp import KIND PATH ARGS…`, expected to succeed: (stdout, stderr).
/// The path is given relative to its directory, where offramp runs, so that messages
/// read as a user in that directory sees them.
fn import(kind: &str, path: &Path, extra: &[&str]) -> (String, String) {
    let p = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name");
    let mut args = vec!["import", kind, p];
    args.extend_from_slice(extra);
    let out = run(&args, path.parent().unwrap_or(Path::new(".")));
    assert!(
        out.status.success(),
        "import {kind} {p} failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// `offramp import …` that must fail: its stderr.
fn import_fails(kind: &str, path: &Path) -> String {
    let p = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name");
    let out = run(
        &["import", kind, p],
        path.parent().unwrap_or(Path::new(".")),
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no config on a failed import");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// What a site is, for comparing two imports.
#[derive(Debug, Clone, PartialEq)]
struct SiteView {
    hosts: Vec<String>,
    upstreams: Vec<String>,
    state: String,
    status_page: Option<String>,
    code: Option<i64>,
    keep_uri: Option<bool>,
    tls_verify: Option<bool>,
}

fn sites(config: &str) -> BTreeMap<String, SiteView> {
    let t: toml::Table =
        toml::from_str(config).unwrap_or_else(|e| panic!("not TOML: {e}\n{config}"));
    let list = |v: Option<&toml::Value>| -> Vec<String> {
        match v {
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = BTreeMap::new();
    for s in t
        .get("site")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
    {
        let name = s["name"].as_str().expect("name").to_string();
        let mut hosts = list(s.get("hosts"));
        hosts.sort();
        out.insert(
            name,
            SiteView {
                hosts,
                upstreams: list(s.get("upstream")),
                state: s
                    .get("state")
                    .and_then(|v| v.as_str())
                    .unwrap_or("online")
                    .to_string(),
                status_page: s
                    .get("status_page")
                    .and_then(|v| v.as_str())
                    .map(String::from),
                code: s.get("code").and_then(|v| v.as_integer()),
                keep_uri: s.get("keep_uri").and_then(|v| v.as_bool()),
                tls_verify: s.get("tls_verify").and_then(|v| v.as_bool()),
            },
        );
    }
    out
}

/// Writes `config` and runs `offramp check -c` on it.
fn assert_checks(config: &str, dir: &Path) {
    let file = dir.join("offramp.toml");
    std::fs::write(&file, config).expect("write config");
    let out = run(&["check", "-c", file.to_str().expect("utf-8")], dir);
    assert!(
        out.status.success(),
        "offramp check refused the import:\n{}{}\n{config}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The real `caddy`, or `None` (and a message) outside CI; in CI a missing caddy fails.
fn caddy() -> Option<&'static str> {
    let ok = Command::new("caddy")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("caddy");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "caddy is not installed, and CI=true: run .ci/deps"
    );
    eprintln!(
        "SKIPPED: caddy is not installed (apt-get install caddy); the JSON half is not tested"
    );
    None
}

/// `caddy adapt` of a Caddyfile, written next to it as `NAME.json`.
fn adapt(caddy: &str, caddyfile: &Path, out_dir: &Path) -> PathBuf {
    let out = Command::new(caddy)
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(caddyfile)
        .current_dir(caddyfile.parent().expect("dir"))
        .output()
        .expect("caddy runs");
    assert!(out.status.success(), "caddy adapt: {}", text(&out.stderr));
    let json = out_dir.join("caddy.json");
    std::fs::write(&json, &out.stdout).expect("write json");
    json
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The seed without its DNS challenge (Debian's caddy has no DNS provider modules).
fn seed_without_dns(dir: &Path) -> PathBuf {
    let seed = std::fs::read_to_string(fixture("seed/Caddyfile")).expect("seed");
    let start = seed.find("(dnschallenge) {").expect("snippet");
    let end = start + seed[start..].find("\n}\n").expect("end") + 3;
    let text = format!("{}(dnschallenge) {{\n}}\n{}", &seed[..start], &seed[end..]);
    let path = dir.join("Caddyfile");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn the_seed_snippets_become_an_online_and_an_offline_site() {
    let (config, summary) = import("caddyfile", &fixture("seed/Caddyfile"), &[]);
    let s = sites(&config);
    assert_eq!(s.len(), 2, "{config}");
    let blog = &s["blog"];
    assert_eq!(blog.hosts, vec!["blog.udance.com.au"]);
    assert_eq!(blog.upstreams, vec!["http://10.1.1.4"]);
    assert_eq!(blog.state, "online");
    let shop = &s["shop"];
    assert_eq!(shop.hosts, vec!["shop.udance.com.au"]);
    assert_eq!(
        shop.upstreams,
        vec!["http://10.1.1.6"],
        "the snippet argument not used in the host"
    );
    assert_eq!(shop.state, "offline");
    assert_eq!(
        shop.status_page.as_deref(),
        Some("https://udance.statuspage.io")
    );
    assert_eq!((shop.code, shop.keep_uri), (Some(302), Some(true)));
    // Every carried line says where it came from.
    assert!(config.contains("upstream = \"http://10.1.1.6\""));
    for l in config
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
    {
        assert!(l.contains(" # "), "no comment on {l:?}");
    }
    assert!(
        config.contains("Caddyfile:18 via import online at Caddyfile:28"),
        "{config}"
    );
    // What is left out is said, in the config and in the summary.
    assert!(config
        .contains("# not carried: compression (offramp has no compress key yet): encode gzip"));
    assert!(config.contains("per-site log file"));
    assert!(config.contains("roll_keep 7"));
    assert!(config.contains("DNS challenge: dns cloudflare"), "{config}");
    assert!(
        summary.starts_with("imported 2 sites (1 offline)"),
        "{summary}"
    );
    assert!(
        summary.contains("Caddyfile:10 via import online at Caddyfile:28: compression"),
        "{summary}"
    );
    assert!(
        summary.contains("Caddyfile:3 via import dnschallenge"),
        "{summary}"
    );
    assert_checks(&config, tmp().path());
}

#[test]
fn the_seed_reads_the_same_from_caddy_json() {
    let Some(caddy) = caddy() else { return };
    let dir = tmp();
    let caddyfile = seed_without_dns(dir.path());
    let json = adapt(caddy, &caddyfile, dir.path());
    let (from_file, _) = import("caddyfile", &caddyfile, &[]);
    // The snippet's arguments are gone in JSON: the offline site's upstream is given.
    let (from_json, summary) = import("caddy-json", &json, &["--upstream", "shop=10.1.1.6"]);
    assert_eq!(
        sites(&from_file),
        sites(&from_json),
        "{from_file}\n---\n{from_json}"
    );
    assert!(summary.contains("compression"), "{summary}");
    assert!(from_json.contains("logging.logs.log0"), "{from_json}");
    assert_checks(&from_json, dir.path());
}

#[test]
fn a_lab_with_ports_https_upstreams_nested_snippets_and_globs() {
    let (config, summary) = import(
        "caddyfile",
        &fixture("lab/Caddyfile"),
        &["--upstream", "wiki=192.168.1.70"],
    );
    let s = sites(&config);
    let names: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["cloud", "git", "media", "nas", "printer", "wiki"],
        "{config}"
    );
    assert_eq!(
        s["cloud"].hosts,
        vec!["cloud.home.example", "files.home.example"]
    );
    assert!(config.contains("was port 8443"));
    assert_eq!(s["cloud"].upstreams, vec!["https://192.168.1.20:8443"]);
    assert_eq!(
        s["nas"].upstreams,
        vec!["https://192.168.1.30", "https://192.168.1.31:5001"]
    );
    assert_eq!(s["nas"].tls_verify, Some(false));
    assert_eq!(s["printer"].upstreams, vec!["http://192.168.1.40:631"]);
    assert!(config.contains("was http://"));
    assert_eq!(s["media"].upstreams.len(), 2);
    assert_eq!(
        s["git"].hosts,
        vec!["git.home.example"],
        "from sites/*.caddy"
    );
    let wiki = &s["wiki"];
    assert_eq!((wiki.state.as_str(), wiki.code), ("offline", Some(307)));
    assert_eq!(
        wiki.status_page.as_deref(),
        Some("https://status.home.example/wiki")
    );
    assert_eq!(wiki.upstreams, vec!["http://192.168.1.70"]);
    assert!(
        config.contains("http = [\"0.0.0.0:8080\"]"),
        "http_port carried: {config}"
    );
    assert!(summary.contains("not understood (1):"), "{summary}");
    assert!(
        summary.contains(
            "sites/media.caddy:3 via import sites/*.caddy at Caddyfile:51: directive basicauth"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("Caddyfile:4: global option email"),
        "{summary}"
    );
    assert_checks(&config, tmp().path());
}

#[test]
fn the_lab_reads_the_same_from_caddy_json() {
    let Some(caddy) = caddy() else { return };
    let dir = tmp();
    let json = adapt(caddy, &fixture("lab/Caddyfile"), dir.path());
    let up = ["--upstream", "wiki=192.168.1.70"];
    let (from_file, _) = import("caddyfile", &fixture("lab/Caddyfile"), &up);
    let (from_json, _) = import("caddy-json", &json, &up);
    assert_eq!(
        sites(&from_file),
        sites(&from_json),
        "{from_file}\n---\n{from_json}"
    );
    assert_checks(&from_json, dir.path());
    // Caddy's autosave.json is the same JSON, pretty or not.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid");
    let autosave = dir.path().join("autosave.json");
    std::fs::write(&autosave, serde_json::to_string_pretty(&v).expect("json")).expect("write");
    let (from_autosave, _) = import("caddy-json", &autosave, &up);
    assert_eq!(sites(&from_autosave), sites(&from_json));
}

#[test]
fn an_offline_site_without_an_upstream_is_left_out_and_check_says_so() {
    let lab = fixture("lab/Caddyfile");
    let (config, summary) = import("caddyfile", &lab, &[]);
    assert!(!sites(&config).contains_key("wiki"));
    assert!(
        config.contains("# site wiki left out: no upstream"),
        "{config}"
    );
    assert!(config.contains("# [[site]]\n# name = \"wiki\""), "{config}");
    assert!(summary.contains("--upstream wiki=HOST:PORT"), "{summary}");
    assert_checks(&config, tmp().path());
    let out = run(
        &[
            "import",
            "caddyfile",
            lab.to_str().expect("utf-8"),
            "--check",
        ],
        tmp().path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("check: site wiki is left out"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "import",
            "caddyfile",
            lab.to_str().expect("utf-8"),
            "--check",
            "--upstream",
            "wiki=192.168.1.70:8080",
        ],
        tmp().path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("check: the config passes offramp check (6 sites)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn online_wins_over_offline_for_the_same_host() {
    let (config, _) = import("caddyfile", &fixture("merge/Caddyfile"), &[]);
    let s = sites(&config);
    assert_eq!(s.len(), 1, "{config}");
    let app = &s["app"];
    assert_eq!(app.hosts, vec!["app.home.example", "www.home.example"]);
    assert_eq!(app.state, "online");
    assert_eq!(
        app.status_page.as_deref(),
        Some("https://status.home.example")
    );
    assert!(config.contains("the online block wins"), "{config}");
    assert_checks(&config, tmp().path());
}

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p
}

#[test]
fn quoting_args_index_and_redirect_codes() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        b"(site) {\n  {args[0]}.example {\n    reverse_proxy {args[1]}\n  }\n}\nimport site a 10.0.0.1:81\n\"b.example\" {\n  # a comment { with braces }\n  reverse_proxy `10.0.0.2:82`\n}\nc.example {\n  redir https://s.example{uri} permanent\n}\nd.example {\n  redir https://s.example/d\n}\n",
    );
    let (config, summary) = import(
        "caddyfile",
        &f,
        &[
            "--upstream",
            "c=10.0.0.3",
            "--upstream",
            "d=https://10.0.0.4",
        ],
    );
    let s = sites(&config);
    assert_eq!(s["a"].upstreams, vec!["http://10.0.0.1:81"]);
    assert_eq!(s["b"].upstreams, vec!["http://10.0.0.2:82"]);
    assert_eq!(
        (s["c"].code, s["c"].keep_uri),
        (None, Some(true)),
        "permanent is not carried"
    );
    assert!(summary.contains("redir code permanent"), "{summary}");
    assert_eq!((s["d"].code, s["d"].keep_uri), (Some(302), Some(false)));
    assert_eq!(s["d"].upstreams, vec!["https://10.0.0.4"]);
    assert_checks(&config, dir.path());
}

#[test]
fn an_imported_config_serves_its_sites_with_their_own_redirect_code() {
    let origin = TestOrigin::start("blog");
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        format!(
            "blog.example {{\n  reverse_proxy {}\n}}\nshop.example {{\n  encode gzip\n  redir https://status.example.com/shop{{uri}} 307\n}}\n",
            origin.addr
        )
        .as_bytes(),
    );
    let up = format!("shop={}", origin.addr);
    let (config, _) = import("caddyfile", &f, &["--upstream", &up, "--check"]);
    // Only the listener and the daemon's paths change for the test.
    let config = config.replace(
        "http = [\"0.0.0.0:80\"]",
        "http = \"127.0.0.1:0\"\nthreads = 2\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\ngrace = \"2s\"",
    );
    assert!(config.contains("code = 307"), "{config}");
    let o = Offramp::start(&config);
    let r = o.get("blog.example", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = o.get("shop.example", "/cart?id=7");
    assert_eq!(
        r.status, 307,
        "the site's own code, not [maintenance] code = 302"
    );
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/shop/cart?id=7")
    );
    // Flipped online, the upstream from --upstream serves it.
    o.cli(&["online", "shop"]).ok();
    assert_eq!(o.get("shop.example", "/").status, 200);
}

#[test]
fn a_file_import_takes_arguments_and_a_missing_file_is_an_error() {
    let dir = tmp();
    std::fs::create_dir(dir.path().join("snippets")).expect("mkdir");
    write(
        &dir.path().join("snippets"),
        "site.caddy",
        b"{args.0}.example {\n  reverse_proxy {args.1}\n}\n",
    );
    let f = write(
        dir.path(),
        "Caddyfile",
        b"import snippets/site.caddy blog 10.0.0.1:2368\nimport snippets/none-*.caddy\n",
    );
    let (config, summary) = import("caddyfile", &f, &[]);
    let s = sites(&config);
    assert_eq!(s["blog"].hosts, vec!["blog.example"]);
    assert_eq!(s["blog"].upstreams, vec!["http://10.0.0.1:2368"]);
    assert!(
        config.contains("snippets/site.caddy:2 via import snippets/site.caddy at Caddyfile:1"),
        "{config}"
    );
    assert!(
        summary.contains("Caddyfile:2: import snippets/none-*.caddy: no file matches"),
        "{summary}"
    );
    let f = write(
        dir.path(),
        "Caddyfile",
        b"a.example {\n  reverse_proxy 10.0.0.1\n}\nimport missing.caddy\n",
    );
    let err = import_fails("caddyfile", &f);
    assert!(
        err.contains("Caddyfile:4: import missing.caddy: no snippet (missing.caddy)"),
        "{err}"
    );
}
