//! Unit tests of `[smtp]`: defaults (the port by `tls`), every key read, each
//! validation error with its key and line, and what `from` may be.

use super::notify_tests::{at, only, Dir, BASE};
use super::*;

#[test]
fn smtp_defaults_and_keys() {
    let d = Dir::new();
    let c = d
        .parse("[smtp]\nserver = \"smtp.example.com\"\nfrom = \"status@example.com\"\n")
        .unwrap();
    assert_eq!(
        c.smtp,
        Some(Smtp {
            server: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            from: "status@example.com".into(),
        })
    );
    for (tls, port) in [("starttls", 587), ("tls", 465), ("none", 25)] {
        let c = d
            .parse(&format!(
                "[smtp]\nserver = \"10.0.0.2\"\ntls = \"{tls}\"\nfrom = \"a@b\"\n"
            ))
            .unwrap();
        let s = c.smtp.unwrap();
        assert_eq!((s.tls.as_str(), s.port), (tls, port));
    }
    d.file("smtp.password", "pa55 word\n", 0o600);
    let c = d
        .parse(
            r#"[smtp]
server = "[::1]"
port = 2525
tls = "tls"
username = "offramp@example.com"
password_file = "smtp.password"
from = "Home lab status <status@example.com>"
"#,
        )
        .unwrap();
    let s = c.smtp.as_ref().unwrap();
    assert_eq!(s.server, "::1");
    assert_eq!(s.port, 2525);
    assert_eq!(s.tls, SmtpTls::Tls);
    assert_eq!(s.username.as_deref(), Some("offramp@example.com"));
    assert_eq!(s.password.as_ref().unwrap().expose_str(), "pa55 word");
    assert_eq!(s.from, "Home lab status <status@example.com>");
    assert!(!format!("{c:?}").contains("pa55"));
    let c = d
        .parse("[smtp]\nserver = \"::1\"\nfrom = \"<a@b>\"\n")
        .unwrap();
    assert_eq!(c.smtp.unwrap().server, "::1");
}

#[test]
fn smtp_errors() {
    let d = Dir::new();
    d.file("smtp.password", "pw\n", 0o600);
    let errs = d.errors("[smtp]\n");
    assert_eq!(
        at(&errs, "smtp.server"),
        [(
            11,
            "missing: [smtp] needs the mail server's host name".to_string()
        )]
    );
    assert_eq!(at(&errs, "smtp.from").len(), 1);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let ok = "[smtp]\nserver = \"smtp.example.com\"\nfrom = \"a@b.example\"\n";
    for server in [
        "smtp.example.com:25",
        "",
        "smtp example",
        "[1.2.3.4]",
        "a..b",
    ] {
        let m = only(
            &d.errors(&ok.replace("\"smtp.example.com\"", &format!("{server:?}"))),
            "smtp.server",
            12,
        );
        assert!(
            m.contains("is not a host name or IP address"),
            "{server}: {m}"
        );
    }
    for port in ["0", "65536", "-1"] {
        let m = only(&d.errors(&format!("{ok}port = {port}\n")), "smtp.port", 14);
        assert_eq!(m, "must be 1 to 65535");
    }
    let m = only(&d.errors(&format!("{ok}port = \"25\"\n")), "smtp.port", 14);
    assert!(m.contains("expected an integer"), "{m}");
    let m = only(&d.errors(&format!("{ok}tls = \"ssl\"\n")), "smtp.tls", 14);
    assert_eq!(
        m,
        "unknown tls \"ssl\" (expected one of: starttls, tls, none)"
    );
    let m = only(
        &d.errors(&format!("{ok}username = \"u\"\n")),
        "smtp.username",
        14,
    );
    assert_eq!(m, "needs password_file too (set both or neither)");
    let m = only(
        &d.errors(&format!("{ok}password_file = \"smtp.password\"\n")),
        "smtp.password_file",
        14,
    );
    assert_eq!(m, "needs username too (set both or neither)");
    let m = only(
        &d.errors(&format!(
            "{ok}username = \"\"\npassword_file = \"smtp.password\"\n"
        )),
        "smtp.username",
        14,
    );
    assert!(m.contains("must not be empty"), "{m}");
    let open = d.file("open.password", "pw\n", 0o666);
    let m = only(
        &d.errors(&format!(
            "{ok}username = \"u\"\npassword_file = \"open.password\"\n"
        )),
        "smtp.password_file",
        15,
    );
    assert_eq!(
        m,
        format!(
            "password file {} is readable by everyone (mode 666): chmod 600 or 640 it",
            open.display()
        )
    );
    let m = only(&d.errors(&format!("{ok}user = \"u\"\n")), "smtp.user", 14);
    assert_eq!(
        m,
        "unknown key (expected one of: server, port, tls, username, password_file, from)"
    );
    let errs = Config::parse(
        &format!("smtp = \"x\"\n{BASE}"),
        &d.0.path().join("offramp.toml"),
    )
    .expect_err("rejected")
    .0;
    let m = only(&errs, "smtp", 1);
    assert!(m.contains("expected a table"), "{m}");
}

#[test]
fn smtp_from_is_an_address() {
    let d = Dir::new();
    let with = |from: &str| {
        d.parse(&format!(
            "[smtp]\nserver = \"smtp.example.com\"\nfrom = {}\n",
            toml::Value::String(from.to_string())
        ))
    };
    for good in [
        "status@example.com",
        "Home lab <status@example.com>",
        "\"Lab, status\" <status@example.com>",
        "<a@b>",
    ] {
        assert_eq!(with(good).unwrap().smtp.unwrap().from, good);
    }
    for bad in [
        "",
        "status",
        "@example.com",
        "status@",
        "a@b@c",
        "a b@example.com",
        "Name <a@b",
        "Name <a b@c>",
        "Name <>",
        "Na>me <a@b>",
        "a@b\r\nBcc: x@y",
        "Name\n <a@b>",
        "a@b\u{7}",
        // What lettre, which builds the mails, refuses: refused here, not per mail.
        "Acme, Inc. <status@acme.example>",
        "a..b@example.com",
    ] {
        let errs = with(bad).expect_err(bad).0;
        let m = only(&errs, "smtp.from", 13);
        assert!(m.starts_with(&format!("{bad:?} ")), "{bad}: {m}");
    }
}
