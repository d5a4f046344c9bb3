//! Unit tests of `[[notify]]`: defaults, every key read, each validation error with
//! its key and line, secret files (modes, trimming), and URLs read from a file never
//! shown in an error or a `Debug` dump. Also the helpers the tests of a Statuspage
//! target's keys (`statuspage_tests`) and of `[smtp]` (`smtp_tests`) use: a config
//! directory with secret files (`Dir`) and the errors about one key (`at`, `only`).

use std::os::unix::fs::PermissionsExt;

use super::api::read_secret;
use super::*;

/// Ten lines: what is appended starts at line 11.
pub(super) const BASE: &str = "[server]
http = \"127.0.0.1:1\"
[maintenance]
code = 503
[[site]]
name = \"cloud\"
hosts = \"cloud.example\"
upstream = \"http://127.0.0.1:1\"
[[component]]
name = \"mail\"
";

/// A config directory: secret files are written next to `offramp.toml`.
pub(super) struct Dir(pub(super) tempfile::TempDir);

impl Dir {
    pub(super) fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    pub(super) fn file(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    pub(super) fn parse(&self, extra: &str) -> Result<Config, ConfigErrors> {
        Config::parse(
            &format!("{BASE}{extra}"),
            &self.0.path().join("offramp.toml"),
        )
    }

    pub(super) fn errors(&self, extra: &str) -> Vec<ConfigError> {
        self.parse(extra).expect_err("config should be rejected").0
    }
}

/// (line, message) of the errors about `key`.
pub(super) fn at(errs: &[ConfigError], key: &str) -> Vec<(usize, String)> {
    errs.iter()
        .filter(|e| e.key == key)
        .map(|e| (e.line, e.message.clone()))
        .collect()
}

/// The only error is about `key`, on `line`; its message.
pub(super) fn only(errs: &[ConfigError], key: &str, line: usize) -> String {
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].key.as_str(), errs[0].line),
        (key, line),
        "{errs:#?}"
    );
    errs[0].message.clone()
}

#[test]
fn a_target_needs_little_and_gets_the_defaults() {
    let d = Dir::new();
    let c = d
        .parse("[[notify]]\nname = \"ops\"\nurl = \"https://hooks.example/offramp\"\n")
        .unwrap();
    assert_eq!(
        c.notify,
        vec![Notify {
            name: "ops".into(),
            url: Secret::new("https://hooks.example/offramp".into()),
            format: NotifyFormat::Json,
            events: vec![
                EventClass::Site,
                EventClass::Incident,
                EventClass::Maintenance,
                EventClass::Component
            ],
            secret: None,
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            statuspage: None,
        }]
    );
    assert_eq!(
        c.notify[0].url.expose_str(),
        "https://hooks.example/offramp"
    );
    assert_eq!(c.smtp, None);
    // No [[notify]] at all: none.
    assert!(d.parse("").unwrap().notify.is_empty());
}

#[test]
fn reads_every_key() {
    let d = Dir::new();
    d.file("ops.secret", "  s3cret\n", 0o600);
    d.file("chat.url", "https://chat.example/hook/T0K3N\n", 0o640);
    let c = d
        .parse(
            r#"[[notify]]
name = "ops"
url = "http://127.0.0.1:9000/in?x=1"
format = "json"
events = ["incident", "site", "incident"]
secret_file = "ops.secret"
give_up_after = "1h"
timeout = "2s"
[[notify]]
name = "chat-2"
url_file = "chat.url"
format = "slack"
events = "maintenance"
[[notify]]
name = "d"
url = "https://discord.example/api/webhooks/1/x"
format = "discord"
[[notify]]
name = "n"
url = "https://user:pw@[::1]:8443/topic"
format = "ntfy"
"#,
        )
        .unwrap();
    let ops = &c.notify[0];
    assert_eq!(ops.events, [EventClass::Incident, EventClass::Site]);
    assert_eq!(ops.secret, Some(Secret::new("s3cret".into())));
    assert_eq!(ops.give_up_after, Duration::from_secs(3600));
    assert_eq!(ops.timeout, Duration::from_secs(2));
    let chat = &c.notify[1];
    assert_eq!(chat.format, NotifyFormat::Slack);
    assert_eq!(chat.url.expose_str(), "https://chat.example/hook/T0K3N");
    assert_eq!(chat.events, [EventClass::Maintenance]);
    assert_eq!(c.notify[2].format, NotifyFormat::Discord);
    assert_eq!(c.notify[3].format, NotifyFormat::Ntfy);
    assert_eq!(c.notify[3].format.as_str(), "ntfy");
    // A dump shows neither secrets nor URLs.
    let dump = format!("{c:?}");
    assert!(!dump.contains("s3cret"), "{dump}");
    assert!(!dump.contains("T0K3N"), "{dump}");
}

#[test]
fn words_round_trip() {
    for c in EventClass::ALL {
        assert_eq!(EventClass::parse(c.as_str()), Some(c));
    }
    assert_eq!(EventClass::parse("sites"), None);
    for f in NotifyFormat::ALL {
        assert_eq!(NotifyFormat::parse(f.as_str()), Some(f));
    }
    assert_eq!(NotifyFormat::parse("JSON"), None);
}

#[test]
fn names_are_checked_and_unique() {
    let d = Dir::new();
    let t = |name: &str| format!("[[notify]]\nname = {name}\nurl = \"https://h.example\"\n");
    for bad in [
        "\"\"",
        "\"Ops\"",
        "\"a_b\"",
        "\"@mail\"",
        &format!("\"{}\"", "a".repeat(64)),
    ] {
        let m = only(&d.errors(&t(bad)), "notify[1].name", 12);
        assert!(m.contains("not a valid notify target name"), "{bad}: {m}");
    }
    assert!(d.parse(&t(&format!("\"{}\"", "a".repeat(63)))).is_ok());
    let m = only(&d.errors(&t("1")), "notify[1].name", 12);
    assert!(m.contains("expected a string"), "{m}");
    // The duplicate is reported, on its own line.
    let m = only(
        &d.errors(&format!("{}{}{}", t("\"ops\""), t("\"b\""), t("\"ops\""))),
        "notify[3].name",
        18,
    );
    assert_eq!(m, "duplicate notify name \"ops\" (also notify[1])");
    // A target may share a site's or component's name.
    assert!(d.parse(&t("\"cloud\"")).is_ok());
    let m = only(
        &d.errors("[[notify]]\nurl = \"https://h.example\"\n"),
        "notify[1].name",
        11,
    );
    assert_eq!(m, "missing: every notify target needs a name");
}

#[test]
fn one_url_and_only_http() {
    let d = Dir::new();
    d.file("hook.url", "https://h.example/x\n", 0o600);
    let head = "[[notify]]\nname = \"a\"\n";
    let m = only(&d.errors(head), "notify[1].url", 11);
    assert_eq!(m, "missing: a notify target needs url or url_file");
    let m = only(
        &d.errors(&format!(
            "{head}url = \"https://h.example\"\nurl_file = \"hook.url\"\n"
        )),
        "notify[1].url_file",
        14,
    );
    assert_eq!(m, "url and url_file are exclusive: set one of them");
    for bad in [
        "ftp://h.example/x",
        "h.example/x",
        "https://",
        "https:///x",
        "https://user@/x",
        "https://h.example:99999/",
        "https://h example/",
        "https://h.example/a b",
        "https://bad_host!/",
        "",
    ] {
        let m = only(
            &d.errors(&format!("{head}url = \"{bad}\"\n")),
            "notify[1].url",
            13,
        );
        assert!(m.starts_with("not an http(s) URL: "), "{bad}: {m}");
    }
    for good in [
        "HTTPS://H.example",
        "http://10.0.0.1:8080/a?b=c#d",
        "https://[::1]/x",
        "https://u:p@h.example/",
    ] {
        assert!(
            d.parse(&format!("{head}url = \"{good}\"\n")).is_ok(),
            "{good}"
        );
    }
    let m = only(&d.errors(&format!("{head}url = 5\n")), "notify[1].url", 13);
    assert!(m.contains("expected a string"), "{m}");
}

#[test]
fn a_url_from_a_file_is_never_shown() {
    let d = Dir::new();
    let head = "[[notify]]\nname = \"a\"\nurl_file = \"hook.url\"\n";
    let path = d.0.path().join("hook.url");
    for secret in [
        "ftp://T0K3N.example/x",
        "https://T0K3N@/x",
        "T0K3N",
        "https://T0K3N example",
    ] {
        d.file("hook.url", &format!("{secret}\n"), 0o600);
        let errs = d.errors(head);
        let m = only(&errs, "notify[1].url_file", 13);
        assert!(
            m.starts_with(&format!(
                "the URL in {} is not an http(s) URL",
                path.display()
            )),
            "{m}"
        );
        let shown = format!("{errs:?} {}", ConfigErrors(errs.clone()));
        assert!(!shown.contains("T0K3N"), "{shown}");
    }
    // Trimmed: a trailing newline or spaces around are not part of it.
    d.file("hook.url", "\n  https://h.example/T0K3N  \n", 0o600);
    let c = d.parse(head).unwrap();
    assert_eq!(c.notify[0].url.expose_str(), "https://h.example/T0K3N");
    assert!(!format!("{c:?}").contains("T0K3N"));
    // World-readable, empty, missing, a directory: refused, naming the file.
    d.file("hook.url", "https://h.example/T0K3N\n", 0o644);
    let m = only(&d.errors(head), "notify[1].url_file", 13);
    assert_eq!(
        m,
        format!(
            "URL file {} is readable by everyone (mode 644): chmod 600 or 640 it",
            path.display()
        )
    );
    d.file("hook.url", " \n", 0o600);
    let m = only(&d.errors(head), "notify[1].url_file", 13);
    assert_eq!(m, format!("URL file {} is empty", path.display()));
    std::fs::remove_file(&path).unwrap();
    let m = only(&d.errors(head), "notify[1].url_file", 13);
    assert!(m.contains(&path.display().to_string()), "{m}");
    std::fs::create_dir(&path).unwrap();
    let m = only(&d.errors(head), "notify[1].url_file", 13);
    assert!(m.contains("is not a regular file"), "{m}");
}

#[test]
fn url_file_is_relative_to_the_config() {
    let d = Dir::new();
    std::fs::create_dir(d.0.path().join("secrets")).unwrap();
    d.file("secrets/hook.url", "https://h.example/x", 0o600);
    let abs = d.0.path().join("secrets/hook.url");
    for p in [
        "secrets/hook.url",
        "./secrets/../secrets/hook.url",
        abs.to_str().unwrap(),
    ] {
        let c = d
            .parse(&format!("[[notify]]\nname = \"a\"\nurl_file = \"{p}\"\n"))
            .unwrap();
        assert_eq!(c.notify[0].url.expose_str(), "https://h.example/x", "{p}");
    }
}

#[test]
fn format_events_and_durations() {
    let d = Dir::new();
    let head = "[[notify]]\nname = \"a\"\nurl = \"https://h.example\"\n";
    let m = only(
        &d.errors(&format!("{head}format = \"xml\"\n")),
        "notify[1].format",
        14,
    );
    assert_eq!(
        m,
        "unknown format \"xml\" (expected one of: json, slack, discord, ntfy, statuspage)"
    );
    let m = only(
        &d.errors(&format!("{head}events = []\n")),
        "notify[1].events",
        14,
    );
    assert_eq!(
        m,
        "needs at least one of: site, incident, maintenance, component"
    );
    let errs = d.errors(&format!(
        "{head}events = [\n\"site\",\n\"sites\",\n\"x\",\n]\n"
    ));
    assert_eq!(
        at(&errs, "notify[1].events"),
        [
            (16, "unknown event class \"sites\" (expected one of: site, incident, maintenance, component)".to_string()),
            (17, "unknown event class \"x\" (expected one of: site, incident, maintenance, component)".to_string()),
        ]
    );
    assert_eq!(errs.len(), 2);
    let m = only(
        &d.errors(&format!("{head}events = 1\n")),
        "notify[1].events",
        14,
    );
    assert!(
        m.contains("expected a string or an array of strings"),
        "{m}"
    );
    for key in ["give_up_after", "timeout"] {
        for zero in ["0", "0s", "0ms"] {
            let m = only(
                &d.errors(&format!("{head}{key} = \"{zero}\"\n")),
                &format!("notify[1].{key}"),
                14,
            );
            assert_eq!(m, "must be greater than zero");
        }
        let m = only(
            &d.errors(&format!("{head}{key} = \"soon\"\n")),
            &format!("notify[1].{key}"),
            14,
        );
        assert!(m.contains("invalid duration"), "{m}");
    }
    let m = only(
        &d.errors(&format!("{head}retries = 3\n")),
        "notify[1].retries",
        14,
    );
    assert_eq!(m, "unknown key (expected one of: name, url, url_file, format, events, secret_file, give_up_after, timeout, page_id, api_key_file, components)");
    let top = |text: &str| {
        Config::parse(&format!("{text}{BASE}"), &d.0.path().join("offramp.toml"))
            .expect_err("rejected")
            .0
    };
    let m = only(&top("notify = 1\n"), "notify", 1);
    assert_eq!(m, "notification targets are written as [[notify]] tables");
    let m = only(&d.errors("[notify]\nname = \"a\"\n"), "notify", 11);
    assert_eq!(m, "notification targets are written as [[notify]] tables");
}

#[test]
fn secret_files_sign_json_only_and_are_checked() {
    let d = Dir::new();
    d.file("ok.secret", "s3cret\n", 0o640);
    let head = "[[notify]]\nname = \"a\"\nurl = \"https://h.example\"\n";
    for f in ["slack", "discord", "ntfy"] {
        let m = only(
            &d.errors(&format!(
                "{head}format = \"{f}\"\nsecret_file = \"ok.secret\"\n"
            )),
            "notify[1].secret_file",
            15,
        );
        assert_eq!(m, "secret_file signs json bodies only");
    }
    // Reading after the format, whatever order they are written in.
    let m = only(
        &d.errors(&format!(
            "{head}secret_file = \"ok.secret\"\nformat = \"slack\"\n"
        )),
        "notify[1].secret_file",
        14,
    );
    assert_eq!(m, "secret_file signs json bodies only");
    let c = d
        .parse(&format!(
            "{head}secret_file = \"ok.secret\"\nformat = \"json\"\n"
        ))
        .unwrap();
    assert_eq!(c.notify[0].secret.as_ref().unwrap().expose_str(), "s3cret");
    let open = d.file("open.secret", "s3cret\n", 0o604);
    let errs = d.errors(&format!("{head}secret_file = \"open.secret\"\n"));
    let m = only(&errs, "notify[1].secret_file", 14);
    assert_eq!(
        m,
        format!(
            "secret file {} is readable by everyone (mode 604): chmod 600 or 640 it",
            open.display()
        )
    );
    assert!(!format!("{errs:?}").contains("s3cret"));
    // An unknown format is reported once, not also what it would make wrong.
    let m = only(
        &d.errors(&format!(
            "{head}format = \"x\"\nsecret_file = \"ok.secret\"\npage_id = \"p\"\n"
        )),
        "notify[1].format",
        14,
    );
    assert!(m.starts_with("unknown format"), "{m}");
}

#[test]
fn read_secret_trims_and_refuses_open_files() {
    let d = Dir::new();
    let p = d.file("x.secret", "\t word \n\n", 0o600);
    assert_eq!(read_secret(&p, "secret file").unwrap().expose_str(), "word");
    d.file("x.secret", "word", 0o640);
    assert!(read_secret(&p, "secret file").is_ok());
    d.file("x.secret", "word", 0o644);
    assert_eq!(
        read_secret(&p, "password file").unwrap_err(),
        format!(
            "password file {} is readable by everyone (mode 644): chmod 600 or 640 it",
            p.display()
        )
    );
    d.file("x.secret", "\n", 0o600);
    assert_eq!(
        read_secret(&p, "secret file").unwrap_err(),
        format!("secret file {} is empty", p.display())
    );
    let e = read_secret(&d.0.path().join("none"), "secret file").unwrap_err();
    assert!(e.starts_with("secret file "), "{e}");
    let e = read_secret(d.0.path(), "secret file").unwrap_err();
    assert!(e.ends_with("is not a regular file"), "{e}");
    assert_eq!(format!("{:?}", Secret::new("word".into())), "***");
}
