//! Property tests of the pieces that take input from outside: the config parser and
//! validator (any text, and careless edits of a valid file), host matching (against a
//! model of "exact before the longest `*.` wildcard"), redirect targets (always on the
//! status page's origin, whatever the path), and the control protocol (any line, and
//! any sequence of requests against a model of "the last action wins"). Nothing may
//! panic. Case counts are kept modest so the suite stays fast.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use offramp::config::{Config, HostPattern, StatusUrl};
use offramp::control::{handle, Request};
use offramp::daemon::Daemon;
use offramp::request::location::builtin_location;
use offramp::routes::{normalized_host, RouteTable};
use offramp::text::location;
use proptest::prelude::*;
use serde_json::Value;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const FILE: &str = "/nonexistent/props/offramp.toml";

/// A valid config with `sites` (name, hosts); upstreams are IP literals so that
/// parsing never resolves a name.
fn config_text(sites: &[(String, Vec<String>)]) -> String {
    let mut s = String::from(
        "[server]\nhttp = \"127.0.0.1:0\"\ncontrol = \"control.sock\"\nstate = \"state.json\"\ndata = \"offramp.db\"\n\n\
         [maintenance]\nstatus_page = \"https://status.example.com\"\n\n",
    );
    for (name, hosts) in sites {
        let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
        s.push_str(&format!(
            "[[site]]\nname = \"{name}\"\nhosts = [{}]\nupstream = \"http://127.0.0.1:9\"\n\n",
            hosts.join(", ")
        ));
    }
    s
}

const VALID: &str = r#"[server]
http = ["127.0.0.1:0", "[::1]:0"]
threads = 2
control = "run/control.sock"
state = "state.json"
data = "offramp.db"
grace = "2s"
access_log = true

[maintenance]
status_page = "https://status.example.com/base"
code = 302
keep_uri = true

[[site]]
name = "cloud"
hosts = ["cloud.home.example", "*.cloud.home.example"]
upstream = ["http://127.0.0.1:8080", "https://[::1]:8443"]
state = "offline"
status_page = "http://10.0.0.1:8000/cloud"
connect_timeout = "3s"
read_timeout = "1m30s"
tls_verify = false

[[site]]
name = "blog"
hosts = "blog.home.example"
upstream = "http://127.0.0.1:8081"
"#;

/// Checks what a successful parse promises; panics (fails the property) otherwise.
fn check_valid(c: &Config) {
    let mut names = std::collections::HashSet::new();
    let mut hosts = std::collections::HashSet::new();
    for s in &c.sites {
        assert!(
            (1..=63).contains(&s.name.len())
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{:?}",
            s.name
        );
        assert!(names.insert(s.name.clone()), "duplicate site {}", s.name);
        assert!(!s.upstreams.is_empty(), "site {} without upstreams", s.name);
        assert!(!s.hosts.is_empty(), "site {} without hosts", s.name);
        for h in &s.hosts {
            assert!(hosts.insert(h.clone()), "host {h} twice");
        }
        assert!(!s.connect_timeout.is_zero() && !s.read_timeout.is_zero());
    }
    let table = RouteTable::build(c);
    for (i, s) in c.sites.iter().enumerate() {
        for h in &s.hosts {
            if let HostPattern::Exact(n) = h {
                assert_eq!(table.lookup(n.as_bytes()), Ok(Some(i as u32)), "{n}");
            }
        }
    }
}

fn check_errors(e: &offramp::config::ConfigErrors, text: &str) {
    assert!(!e.0.is_empty());
    let lines = text.lines().count() + 1;
    for err in &e.0 {
        assert_eq!(err.file, Path::new(FILE));
        assert!(err.line <= lines, "line {} of {lines}: {err}", err.line);
        assert!(!err.message.is_empty());
    }
}

/// A careless edit: insert, delete or replace a few characters anywhere.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    Replace(usize, char),
    DuplicateLine(usize),
    DropLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippet = prop_oneof![
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("[".to_string()),
        Just("]\n".to_string()),
        Just("\n[[site]]\n".to_string()),
        Just("\nname = \"cloud\"\n".to_string()),
        Just("*.".to_string()),
        Just(":99999".to_string()),
        Just("0".to_string()),
        Just("\u{0}".to_string()),
        Just("é".to_string()),
        "[ -~]{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), snippet).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..6).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DropLine),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| i % (chars.len() + 1);
    let mut lines: Vec<&str> = text.lines().collect();
    match e {
        Edit::Insert(i, s) => {
            let i = at(*i);
            chars[..i]
                .iter()
                .chain(s.chars().collect::<Vec<_>>().iter())
                .chain(chars[i..].iter())
                .collect()
        }
        Edit::Delete(i, n) => {
            let i = at(*i);
            let j = (i + n).min(chars.len());
            chars[..i].iter().chain(chars[j..].iter()).collect()
        }
        Edit::Replace(i, c) => {
            let mut v = chars.clone();
            if !v.is_empty() {
                let i = *i % v.len();
                v[i] = *c;
            }
            v.into_iter().collect()
        }
        Edit::DuplicateLine(i) => {
            let i = *i % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Edit::DropLine(i) => {
            let i = *i % lines.len();
            lines.remove(i);
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Any text at all: a list of errors with lines in the file, or a config that keeps
    /// every promise of validation. Never a panic.
    #[test]
    fn config_parser_takes_any_text(text in any::<String>()) {
        match Config::parse(&text, Path::new(FILE)) {
            Ok(c) => check_valid(&c),
            Err(e) => check_errors(&e, &text),
        }
    }

    /// TOML-shaped text: known and unknown keys with values of every type.
    #[test]
    fn config_parser_takes_any_toml(
        entries in proptest::collection::vec(
            (
                prop_oneof![
                    Just("[server]"), Just("[maintenance]"), Just("[[site]]"), Just("[status]"),
                    Just("[demo]"), Just("[bogus]"), Just(""),
                ],
                prop_oneof![
                    Just("http"), Just("https"), Just("threads"), Just("control"),
                    Just("control_group"), Just("state"), Just("grace"), Just("admin"),
                    Just("certs"), Just("redirect_https"), Just("status_page"), Just("code"),
                    Just("keep_uri"), Just("name"), Just("hosts"), Just("upstream"),
                    Just("state"), Just("connect_timeout"), Just("read_timeout"),
                    Just("tls_verify"), Just("title"), Just("listen"), Just("nonsense"),
                ],
                prop_oneof![
                    Just("\"127.0.0.1:0\"".to_string()), Just("[\"127.0.0.1:0\", 3]".to_string()),
                    Just("\"http://127.0.0.1:1\"".to_string()), Just("\"https://[::1]:99999\"".to_string()),
                    Just("\"ftp://127.0.0.1\"".to_string()), Just("\"http://127.0.0.1/x\"".to_string()),
                    Just("\"https://status.example.com/a\"".to_string()), Just("\"builtin\"".to_string()),
                    Just("302".to_string()), Just("-1".to_string()), Just("99999999999999999999".to_string()),
                    Just("true".to_string()), Just("1.5".to_string()), Just("{ a = 1 }".to_string()),
                    Just("\"1h30m\"".to_string()), Just("\"0s\"".to_string()), Just("\"offline\"".to_string()),
                    Just("\"root\"".to_string()), Just("0".to_string()), Just("\"no-such-group\"".to_string()),
                    Just("[\"*.a.example\", \"a.example\", \"A.EXAMPLE\"]".to_string()),
                    Just("1979-05-27T07:32:00Z".to_string()),
                    "\"[a-z0-9.*:-]{0,12}\"",
                ],
            ),
            0..24,
        )
    ) {
        let mut text = String::new();
        for (section, key, value) in &entries {
            if !section.is_empty() {
                text.push_str(section);
                text.push('\n');
            }
            text.push_str(&format!("{key} = {value}\n"));
        }
        match Config::parse(&text, Path::new(FILE)) {
            Ok(c) => check_valid(&c),
            Err(e) => check_errors(&e, &text),
        }
    }

    /// Careless edits of a valid file.
    #[test]
    fn config_parser_survives_careless_edits(edits in proptest::collection::vec(edit(), 1..6)) {
        let mut text = VALID.to_string();
        for e in &edits {
            text = apply(&text, e);
        }
        match Config::parse(&text, Path::new(FILE)) {
            Ok(c) => check_valid(&c),
            Err(e) => check_errors(&e, &text),
        }
    }
}

#[test]
fn the_unedited_fixture_is_valid() {
    let c = Config::parse(VALID, Path::new(FILE)).expect("valid fixture");
    check_valid(&c);
    assert_eq!(c.sites.len(), 2);
}

// ---------------------------------------------------------------------------------
// Host matching
// ---------------------------------------------------------------------------------

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("www".to_string()),
        "[a-z0-9][a-z0-9-]{0,5}",
    ]
}

fn name() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(label(), 1..4)
}

/// "Exact name first, then the longest `*.` suffix": the model `lookup` must follow.
fn model(sites: &[(String, Vec<String>)], query: &str) -> Option<u32> {
    let q = query.to_ascii_lowercase();
    for (i, (_, hosts)) in sites.iter().enumerate() {
        if hosts.contains(&q) {
            return Some(i as u32);
        }
    }
    let mut rest = q.as_str();
    while let Some(dot) = rest.find('.') {
        rest = &rest[dot + 1..];
        let w = format!("*.{rest}");
        for (i, (_, hosts)) in sites.iter().enumerate() {
            if hosts.contains(&w) {
                return Some(i as u32);
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(cfg(128))]

    #[test]
    fn host_matching_follows_exact_then_longest_wildcard(
        patterns in proptest::collection::vec((name(), any::<bool>()), 1..8),
        queries in proptest::collection::vec((name(), 0u8..4, any::<u16>()), 1..16),
    ) {
        // Build sites from distinct patterns, one or two per site.
        let mut seen = std::collections::HashSet::new();
        let mut sites: Vec<(String, Vec<String>)> = Vec::new();
        for (i, (labels, wild)) in patterns.iter().enumerate() {
            let base = format!("{}.example", labels.join("."));
            let p = if *wild { format!("*.{base}") } else { base };
            if !seen.insert(p.clone()) {
                continue;
            }
            if i % 2 == 1 && !sites.is_empty() {
                sites.last_mut().unwrap().1.push(p);
            } else {
                sites.push((format!("s{i}"), vec![p]));
            }
        }
        let text = config_text(&sites);
        let c = Config::parse(&text, Path::new(FILE)).expect("generated config is valid");
        let table = RouteTable::build(&c);
        for (labels, form, port) in &queries {
            let q = format!("{}.example", labels.join("."));
            let want = model(&sites, &q);
            // The same answer for every spelling of the same host.
            let spellings = [
                q.clone(),
                q.to_ascii_uppercase(),
                format!("{q}."),
                format!("{q}:{port}"),
            ];
            let spelled = &spellings[usize::from(*form)];
            prop_assert_eq!(table.lookup(spelled.as_bytes()), Ok(want), "{} in {:?}", spelled, sites);
        }
    }

    #[test]
    fn host_lookup_takes_any_bytes(host in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = Config::parse(&config_text(&[("a".into(), vec!["a.example".into(), "*.a.example".into()])]), Path::new(FILE))
            .expect("valid");
        let table = RouteTable::build(&c);
        let r = table.lookup(&host);
        if let Ok(n) = normalized_host(&host) {
            prop_assert!(n.len() <= 253, "{}", n);
            prop_assert!(!n.bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace() || b == b'/' || b == b'@'), "{}", n);
            prop_assert!(r.is_ok());
        } else {
            prop_assert!(r.is_err());
        }
    }
}

// ---------------------------------------------------------------------------------
// Redirect targets
// ---------------------------------------------------------------------------------

fn status_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("http"), Just("https"), Just("HTTPS")],
        prop_oneof![
            name().prop_map(|l| format!("{}.example", l.join("."))),
            Just("127.0.0.1".to_string()),
            Just("[::1]".to_string()),
        ],
        proptest::option::of(1u16..),
        proptest::collection::vec("[a-zA-Z0-9._~-]{1,6}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(scheme, host, port, path, slash)| {
            let mut u = format!("{scheme}://{host}");
            if let Some(p) = port {
                u.push_str(&format!(":{p}"));
            }
            for seg in path {
                u.push('/');
                u.push_str(&seg);
            }
            if slash {
                u.push('/');
            }
            u
        })
}

fn target() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/".to_vec()),
        Just(b"//".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"@".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"%0d%0a".to_vec()),
        Just(b"?".to_vec()),
        Just(b"#".to_vec()),
        Just(b"..".to_vec()),
        Just(b"evil.example".to_vec()),
        Just(b"http://evil.example".to_vec()),
        Just(b" ".to_vec()),
        Just("é".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// The authority (host and port) of an absolute URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())]
}

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn redirect_targets_stay_on_the_status_page_origin(
        url in status_url(),
        t in target(),
        keep_uri in any::<bool>(),
    ) {
        let u = StatusUrl::parse(&url).expect("generated URL is valid");
        let prefix = format!("{}{}", u.origin, u.path);
        let loc = location(&prefix, keep_uri, &t);
        prop_assert!(loc.starts_with(&prefix), "{} → {}", url, loc);
        prop_assert_eq!(authority(&loc), authority(&u.origin), "{:?} → {}", t, loc);
        prop_assert!(
            loc.bytes().all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'\\' | b'"' | b'<' | b'>' | b'#')),
            "unsafe byte in {:?}", loc
        );
        // What follows the origin starts with '/', so nothing can extend the authority.
        let after = &loc[u.origin.len()..];
        prop_assert!(after.is_empty() || after.starts_with('/'), "{}", loc);
        if !keep_uri {
            prop_assert!(loc == prefix || loc == format!("{prefix}/"), "{}", loc);
        }
    }

    #[test]
    fn builtin_redirect_targets_are_never_too_long_for_the_status_host(
        pieces in proptest::collection::vec(target(), 0..40),
        repeat in 1usize..120,
        site in "[a-z0-9-]{1,63}",
    ) {
        // URLs of every length up to and past what a visitor may send.
        let path = String::from_utf8_lossy(&pieces.concat()).repeat(repeat);
        let from = format!("http://site.example/{path}");
        let origin = "https://status.example:8443";
        let loc = builtin_location(origin, &site, &from);
        let target = &loc[origin.len()..];
        prop_assert!(target.len() <= offramp::limits::MAX_REQUEST_TARGET, "{} bytes", target.len());
        let page = format!("/maintenance/{site}");
        // Either the way back is carried whole, or it is left out entirely.
        match target.strip_prefix(&page) {
            Some("") => {}
            Some(query) => {
                let encoded = query.strip_prefix("?from=").unwrap_or("?");
                prop_assert!(
                    encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                    "{}", query
                );
                let unescaped = encoded.split('%').count() - 1;
                prop_assert_eq!(encoded.len() - 2 * unescaped, from.len());
            }
            None => prop_assert!(false, "{} is not {}", target, page),
        }
    }

    #[test]
    fn status_url_parser_takes_any_text(s in any::<String>()) {
        if let Ok(u) = StatusUrl::parse(&s) {
            prop_assert!(u.origin.starts_with("http://") || u.origin.starts_with("https://"));
            prop_assert!(!u.origin.contains(['@', '?', '#', '\\', ' ']), "{:?}", u);
            prop_assert!(!u.path.contains("//") && !u.path.ends_with('/'), "{:?}", u);
            prop_assert!(u.raw.is_ascii());
        }
    }

    #[test]
    fn until_parser_takes_any_text(s in any::<String>()) {
        let _ = offramp::control::parse_until(&s, time::OffsetDateTime::now_utc());
    }
}

// ---------------------------------------------------------------------------------
// The control protocol
// ---------------------------------------------------------------------------------

const SITES: [&str; 3] = ["a", "b", "c"];

/// A daemon core on its own config and state file (no sockets, no listeners).
fn daemon() -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites: Vec<(String, Vec<String>)> = SITES
        .iter()
        .map(|s| (s.to_string(), vec![format!("{s}.example")]))
        .collect();
    let file: PathBuf = dir.path().join("offramp.toml");
    std::fs::write(&file, config_text(&sites)).expect("write config");
    let config = Config::load(&file).expect("valid config");
    let (d, warnings) = Daemon::new(config);
    assert!(warnings.is_empty(), "{warnings:?}");
    (d, dir)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("a".to_string()),
            Just("offline".to_string()),
            Just("1h".to_string()),
            any::<String>()
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("cmd".to_string()),
                    Just("sites".to_string()),
                    Just("all".to_string()),
                    Just("reason".to_string()),
                    Just("until".to_string()),
                    "[a-z]{1,5}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One request of a generated sequence.
fn request() -> impl Strategy<Value = Request> {
    (
        prop_oneof![
            3 => Just("offline"),
            3 => Just("online"),
            2 => Just("reset"),
            1 => Just("status"),
            1 => Just("reload"),
            1 => Just("frobnicate"),
        ],
        proptest::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("nope")],
            0..3,
        ),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(
            0.2,
            prop_oneof![Just("why".to_string()), Just("r".repeat(1025))],
        ),
        proptest::option::weighted(0.15, prop_oneof![Just("1h"), Just("soon"), Just("0s")]),
    )
        .prop_map(|(cmd, sites, all, reason, until)| Request {
            cmd: cmd.to_string(),
            sites: sites.into_iter().map(String::from).collect(),
            all,
            reason,
            until: until.map(String::from),
        })
}

/// The contract's rule (CONTRACT section 2): each action gets the next sequence number,
/// and a site's state is that of the newest of its config state (re-marked by `reset`),
/// its own override and the global override.
#[derive(Default)]
struct Model {
    seq: u64,
    sites: BTreeMap<String, (bool, u64)>,
    global: Option<(bool, u64)>,
    reset: BTreeMap<String, u64>,
}

impl Model {
    /// Applies `r`; whether it must be accepted.
    fn apply(&mut self, r: &Request) -> bool {
        let known = r.sites.iter().all(|s| SITES.contains(&s.as_str()));
        let target_ok = if r.all {
            r.sites.is_empty()
        } else {
            !r.sites.is_empty() && known
        };
        match r.cmd.as_str() {
            "status" => !r.all && r.reason.is_none() && r.until.is_none() && known,
            "reload" => !r.all && r.sites.is_empty() && r.reason.is_none() && r.until.is_none(),
            "offline" | "online" => {
                let offline = r.cmd == "offline";
                let until_ok = match r.until.as_deref() {
                    None => true,
                    Some("1h") => offline,
                    Some(_) => false,
                };
                let reason_ok = r.reason.as_ref().is_none_or(|s| s.len() <= 1024);
                if !(target_ok && until_ok && reason_ok) {
                    return false;
                }
                if r.all {
                    self.seq += 1;
                    self.global = Some((offline, self.seq));
                } else {
                    for s in &r.sites {
                        self.seq += 1;
                        self.sites.insert(s.clone(), (offline, self.seq));
                    }
                }
                true
            }
            "reset" => {
                if r.reason.is_some() || r.until.is_some() || !target_ok {
                    return false;
                }
                if r.all {
                    self.global = None;
                    self.sites.clear();
                    self.reset.clear();
                } else {
                    for s in &r.sites {
                        self.sites.remove(s);
                        self.seq += 1;
                        self.reset.insert(s.clone(), self.seq);
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn offline(&self, site: &str) -> bool {
        let config = self.reset.get(site).map(|seq| (false, *seq));
        [self.sites.get(site).copied(), self.global, config]
            .into_iter()
            .flatten()
            .max_by_key(|(_, seq)| *seq)
            .is_some_and(|(offline, _)| offline)
    }
}

proptest! {
    #![proptest_config(cfg(48))]

    /// Any sequence of requests: every reply is well formed, refusals change nothing,
    /// and the states in force are the model's.
    #[test]
    fn control_requests_follow_the_last_action_wins_model(
        reqs in proptest::collection::vec(request(), 1..16)
    ) {
        let (d, _dir) = daemon();
        let mut model = Model::default();
        for r in &reqs {
            let want_ok = model.apply(r);
            let reply = handle(&d, r.clone(), Some(1000));
            prop_assert_eq!(reply["ok"].as_bool(), Some(want_ok), "{:?} → {}", r, reply);
            if !want_ok {
                prop_assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", reply);
            }
            let st = handle(&d, Request { cmd: "status".into(), ..Request::default() }, None);
            for s in SITES {
                let e = st["sites"].as_array().and_then(|a| a.iter().find(|e| e["name"] == s)).cloned();
                let state = e.as_ref().map(|e| e["state"].clone()).unwrap_or(Value::Null);
                let want = if model.offline(s) { "offline" } else { "online" };
                prop_assert_eq!(state, Value::from(want), "{} after {:?}", s, r);
            }
        }
    }

    /// Any line on the socket: parsed or refused, and a parsed one is answered.
    #[test]
    fn control_lines_of_any_shape_are_answered(v in json_value(), junk in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (d, _dir) = daemon();
        for line in [serde_json::to_vec(&v).unwrap_or_default(), junk] {
            if let Ok(req) = serde_json::from_slice::<Request>(&line) {
                let reply = handle(&d, req, None);
                prop_assert!(reply["ok"].is_boolean(), "{}", reply);
                if reply["ok"] == false {
                    prop_assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", reply);
                }
            }
        }
    }
}

/// Status-page `from` values: mostly URL-shaped, with hostile pieces mixed in.
fn from_url() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        Just("http://"),
        Just("HTTPS://"),
        Just("//"),
        Just("javascript:"),
        Just("")
    ];
    let host = prop_oneof![
        Just("cloud.example".to_string()),
        Just("a.b.cloud.example".to_string()),
        Just("blog.example".to_string()),
        Just("evil.example".to_string()),
        Just("cloud.example@evil.example".to_string()),
        Just("cloud.example\\@evil.example".to_string()),
        "[a-z.:@\\\\0-9]{0,20}",
    ];
    let port = prop_oneof![Just(String::new()), "(:[0-9]{0,6})"];
    let rest = proptest::collection::vec(any::<u8>(), 0..40);
    (scheme, host, port, rest).prop_map(|(s, h, p, r)| {
        let mut v = format!("{s}{h}{p}").into_bytes();
        v.extend(r);
        v
    })
}

proptest! {
    #![proptest_config(cfg(512))]

    /// The built-in status page only ever sends a visitor back to a host of the site
    /// they came from, and the URL it sends them to is plain printable ASCII.
    #[test]
    fn status_page_way_back_stays_on_the_site(from in from_url()) {
        let c = Config::parse(
            "[server]\nhttp = \"127.0.0.1:0\"\n[maintenance]\nstatus_page = \"builtin\"\n\
             [[site]]\nname = \"cloud\"\nhosts = [\"cloud.example\", \"*.cloud.example\"]\nupstream = \"http://127.0.0.1:9\"\n\
             [[site]]\nname = \"blog\"\nhosts = [\"blog.example\"]\nupstream = \"http://127.0.0.1:9\"\n",
            Path::new(FILE),
        )
        .expect("fixture");
        let table = RouteTable::build(&c);
        if let Some(url) = offramp::status::return_url(&table, 0, &from) {
            prop_assert!(url.bytes().all(|b| b > b' ' && b < 0x7f && b != b'"' && b != b'<'), "{url}");
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .expect("http(s) scheme");
            let auth = &rest[..rest.find('/').expect("a path")];
            let host = auth.rsplit_once(':').map_or(auth, |(h, _)| h);
            prop_assert!(
                host == "cloud.example" || host.ends_with(".cloud.example"),
                "{url}"
            );
        }
    }
}
