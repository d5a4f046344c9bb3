//! E-mail subscriptions end to end (CONTRACT section 11): the real offramp, a real SMTP
//! server (Python's aiosmtpd, run by /usr/bin/python3) that writes each message it
//! receives to a directory as JSON (decoded by Python's `email` package), and visitors
//! on the status host. Double opt-in, per-component choice, RFC 8058's one-click
//! unsubscribe (urlencoded and multipart), the per-client limit, the CLI, and a mail
//! server that is down for a while.
//!
//! Without aiosmtpd the tests say so and pass, unless `OFFRAMP_REQUIRE_SMTP` is set (CI).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";
const STATUS: &str = "status.test";

/// The SMTP server: every message as `DIR/PID-N.json`.
const SINK: &str = r#"
import email, email.policy, json, os, sys, time
from aiosmtpd.controller import Controller

out, port = sys.argv[1], int(sys.argv[2])
count = 0

class Sink:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for p in msg.walk():
            if not p.is_multipart():
                parts.append({"type": p.get_content_type(), "body": p.get_content()})
        rec = {"t": time.time(), "rcpt": envelope.rcpt_tos, "from": envelope.mail_from,
               "headers": [[k, str(v)] for k, v in msg.items()],
               "content_type": msg.get_content_type(), "parts": parts}
        path = os.path.join(out, "%d-%06d.json" % (os.getpid(), count))
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

c = Controller(Sink(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// Whether the SMTP server can run here; `false` (after saying why) skips the test.
fn smtp_available() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("OFFRAMP_REQUIRE_SMTP").is_some() {
            panic!("{PYTHON} cannot import aiosmtpd (apt-get install python3-aiosmtpd), and OFFRAMP_REQUIRE_SMTP is set");
        }
        eprintln!("SKIPPED: {PYTHON} cannot import aiosmtpd (apt-get install python3-aiosmtpd); set OFFRAMP_REQUIRE_SMTP to make this a failure");
    }
    ok
}

/// A port for an SMTP server, never the same twice in this process (tests run in
/// parallel: one's port freed must not become another's).
fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let mut taken = TAKEN.lock().unwrap();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

/// A port nothing listens on, held (bound, not listening) until dropped, so that no
/// other listener of the machine gets it meanwhile.
fn dead_port() -> (u16, tokio::net::TcpSocket) {
    loop {
        let port = free_port();
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        if s.bind(format!("127.0.0.1:{port}").parse().expect("addr"))
            .is_ok()
        {
            return (port, s);
        }
    }
}

/// A page's content without its footer (which says when the page was made).
fn page_main(r: &Response) -> String {
    let t = r.text();
    t.split("<footer>").next().unwrap_or_default().to_string()
}

struct Smtp {
    child: Option<Child>,
    dir: PathBuf,
    script: PathBuf,
    port: u16,
}

/// One received message.
#[derive(Debug, Clone)]
struct Mail {
    t: f64,
    rcpt: Vec<String>,
    headers: Vec<(String, String)>,
    content_type: String,
    parts: Vec<(String, String)>,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn subject(&self) -> &str {
        self.header("Subject").unwrap_or_default()
    }

    fn part(&self, ty: &str) -> &str {
        self.parts
            .iter()
            .find(|(t, _)| t == ty)
            .map_or("", |(_, b)| b.as_str())
    }

    fn to(&self, address: &str) -> bool {
        self.rcpt.iter().any(|r| r == address)
    }

    /// Everything RFC 8058 and the contract ask of every mail; the unsubscribe URL.
    fn check_shape(&self) -> String {
        assert_eq!(self.content_type, "multipart/alternative", "{self:?}");
        assert!(!self.part("text/plain").is_empty(), "{self:?}");
        assert!(self.part("text/html").contains("<html"), "{self:?}");
        let lu = self.header("List-Unsubscribe").expect("List-Unsubscribe");
        assert_eq!(
            self.header("List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click"),
            "{self:?}"
        );
        let url = lu
            .trim()
            .strip_prefix('<')
            .and_then(|u| u.strip_suffix('>'))
            .unwrap_or_else(|| panic!("List-Unsubscribe {lu:?}"))
            .to_string();
        assert!(url.contains("/unsubscribe?token="), "{url}");
        assert!(
            self.part("text/plain").contains(&url),
            "the body links it: {self:?}"
        );
        url
    }
}

impl Smtp {
    fn start(root: &Path, port: u16) -> Smtp {
        let dir = root.join("mails");
        std::fs::create_dir_all(&dir).expect("mail dir");
        let script = root.join("smtp_sink.py");
        std::fs::write(&script, SINK).expect("write script");
        let mut s = Smtp {
            child: None,
            dir,
            script,
            port,
        };
        s.up();
        s
    }

    fn up(&mut self) {
        let mut child = Command::new(PYTHON)
            .arg(&self.script)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        assert!(
            line.starts_with("ready"),
            "the SMTP server did not start: {line:?}"
        );
        self.child = Some(child);
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).expect("mail dir").flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("mail")).expect("json");
            let strs = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            };
            let pairs = |v: &Value, a: &str, b: &str| -> Vec<(String, String)> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let get = |k: &str| {
                            p.get(k)
                                .or_else(|| p.get(if k == a { 0 } else { 1 }))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        (get(a), get(b))
                    })
                    .collect()
            };
            out.push(Mail {
                t: v["t"].as_f64().unwrap_or(0.0),
                rcpt: strs(&v["rcpt"]),
                headers: pairs(&v["headers"], "0", "1"),
                content_type: v["content_type"].as_str().unwrap_or_default().to_string(),
                parts: pairs(&v["parts"], "type", "body"),
            });
        }
        out.sort_by(|a, b| a.t.total_cmp(&b.t));
        out
    }

    fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.to(address)).collect()
    }

    /// Waits for a mail to `address` whose subject contains `subject`.
    fn wait_mail(&self, address: &str, subject: &str) -> Mail {
        wait_for(
            WAIT,
            &format!("a mail to {address} about {subject:?}"),
            || {
                self.mails_to(address)
                    .into_iter()
                    .find(|m| m.subject().contains(subject))
            },
        )
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.down();
    }
}

fn config(smtp_port: u16, origin: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n\
[status]\nhosts = [\"{STATUS}\"]\ntitle = \"Lab\"\n\n\
[smtp]\nserver = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"Lab status <status@example.test>\"\n\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{origin}\"\n\n\
[[component]]\nname = \"mail\"\n",
        server_section("")
    )
}

fn start(smtp_port: u16) -> (Offramp, TestOrigin) {
    let origin = TestOrigin::start("origin");
    let o = Offramp::start(&config(smtp_port, &origin.url()));
    (o, origin)
}

/// A visitor from its own loopback address (each has its own limit).
fn visitor(o: &Offramp, n: u8) -> Conn {
    let ip: IpAddr = format!("127.0.0.{n}").parse().expect("ip");
    Conn::open_from(o.addr(), ip)
}

fn post_form(c: &mut Conn, target: &str, body: &str) -> Response {
    c.request(
        "POST",
        STATUS,
        target,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

fn subscribe(o: &Offramp, n: u8, body: &str) -> Response {
    post_form(&mut visitor(o, n), "/subscribe", body)
}

/// The path and query of an absolute URL of the status host.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".into(),
    }
}

/// The confirmation link of a confirmation mail.
fn confirm_link(m: &Mail) -> String {
    let text = m.part("text/plain");
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/subscribe/confirm?token="))
        .unwrap_or_else(|| panic!("no confirmation link in {text:?}"));
    path_of(url)
}

/// Subscribes `address` (with `extra` form fields) and confirms it; its confirmation mail.
fn subscribe_and_confirm(o: &Offramp, smtp: &Smtp, n: u8, address: &str, extra: &str) -> Mail {
    let r = subscribe(
        o,
        n,
        &format!("email={}{extra}", address.replace('@', "%40")),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let m = smtp.wait_mail(address, "confirm your subscription");
    let link = confirm_link(&m);
    let r = visitor(o, n).request("POST", STATUS, &link, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    m
}

fn incident(o: &Offramp, title: &str, components: &[&str]) -> String {
    let mut args = vec!["incident", "open", title, "--impact", "major"];
    for c in components {
        args.extend(["--component", c]);
    }
    args.extend(["--message", "Looking into it"]);
    o.cli(&args).ok().stdout.trim().to_string()
}

#[test]
fn subscribe_confirm_notify_and_unsubscribe() {
    if !smtp_available() {
        return;
    }
    let port = free_port();
    let tmp = tempfile::tempdir().expect("tmp");
    let smtp = Smtp::start(tmp.path(), port);
    let (o, _origin) = start(port);

    // The overview has the form, with a checkbox for each component.
    let page = o.get(STATUS, "/");
    let html = page.text();
    assert!(html.contains("action=\"/subscribe\""), "{html}");
    assert!(
        html.contains("name=\"component\" value=\"cloud\""),
        "{html}"
    );
    assert!(html.contains("name=\"component\" value=\"mail\""), "{html}");
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("form-action 'self'")));
    assert_eq!(o.get(STATUS, "/subscribe").status, 200);

    // Subscribe: 202, and a confirmation mail with a link.
    let ann = "ann@example.com";
    let first = subscribe(&o, 2, "email=Ann%40Example.com");
    assert_eq!(first.status, 202, "{}", first.text());
    assert!(first.text().contains("Check your inbox"));
    let confirmation = smtp.wait_mail(ann, "confirm your subscription");
    confirmation.check_shape();
    assert_eq!(
        confirmation.header("From"),
        Some("Lab status <status@example.test>")
    );
    let link = confirm_link(&confirmation);
    assert!(link.starts_with("/subscribe/confirm?token="), "{link}");

    // Nothing else before it is confirmed.
    let before = incident(&o, "Before confirming", &["cloud"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.mails_to(ann).len(), 1, "{:?}", smtp.mails_to(ann));

    // The same answer for an address already pending (and no second mail within 10
    // minutes); an invalid one is a 422.
    let again = subscribe(&o, 3, "email=Ann%40Example.com");
    assert_eq!(again.status, first.status);
    assert!(page_main(&again) == page_main(&first), "{}", again.text());
    let bad = subscribe(&o, 3, "email=not+an+address");
    assert_eq!(bad.status, 422, "{}", bad.text());
    let unknown = subscribe(&o, 3, "email=x%40example.com&component=nope");
    assert_eq!(unknown.status, 422, "{}", unknown.text());

    // The link shows a button; following it with a GET changes nothing.
    let shown = visitor(&o, 4).get(STATUS, &link);
    assert_eq!(shown.status, 200);
    assert!(shown.text().contains("method=\"post\""), "{}", shown.text());
    let listed = o.cli(&["subscribers", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["address"], ann);
    assert_eq!(listed[0]["status"], "pending");
    // The button confirms.
    let done = visitor(&o, 4).request("POST", STATUS, &link, &[], b"");
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.text().contains("You are subscribed"));
    let listed = o.cli(&["subscribers", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "confirmed");
    assert!(listed[0]["confirmed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(listed[0]["components"], serde_json::json!([]));
    // Confirmed: the same answer again.
    let confirmed_again = subscribe(&o, 5, "email=Ann%40Example.com");
    assert_eq!(confirmed_again.status, first.status);
    assert!(
        page_main(&confirmed_again) == page_main(&first),
        "{}",
        confirmed_again.text()
    );

    // Bob only cares about mail.
    let bob = "bob@example.com";
    subscribe_and_confirm(&o, &smtp, 6, bob, "&component=mail");

    // An incident from created to resolved, and a maintenance scheduled.
    let id = incident(&o, "Cloud is down", &["cloud"]);
    let created = smtp.wait_mail(ann, "new incident: Cloud is down");
    assert!(created.part("text/plain").contains("Looking into it"));
    assert!(created
        .part("text/plain")
        .contains(&format!("/incidents/{id}")));
    o.cli(&[
        "incident",
        "update",
        &id,
        "--status",
        "identified",
        "--message",
        "A disk",
    ])
    .ok();
    let updated = smtp.wait_mail(ann, "Cloud is down (Identified)");
    assert!(updated.part("text/plain").contains("A disk"));
    o.cli(&["incident", "resolve", &id]).ok();
    let resolved = smtp.wait_mail(ann, "resolved: Cloud is down");
    o.cli(&[
        "maintenance",
        "schedule",
        "New disks",
        "--site",
        "cloud",
        "--start",
        "+1h",
        "--end",
        "+2h",
        "--message",
        "Swapping disks",
    ])
    .ok();
    let scheduled = smtp.wait_mail(ann, "scheduled maintenance: New disks");
    for m in [&created, &updated, &resolved, &scheduled] {
        m.check_shape();
    }
    // Bob's component: he gets the incident on mail, none of those on cloud.
    incident(&o, "Mail is slow", &["mail"]);
    smtp.wait_mail(bob, "new incident: Mail is slow");
    smtp.wait_mail(ann, "new incident: Mail is slow");
    let bobs = smtp.mails_to(bob);
    assert_eq!(bobs.len(), 2, "confirmation and Mail is slow: {bobs:?}");
    // Nothing about the incident opened before Ann confirmed.
    assert!(!smtp
        .mails()
        .iter()
        .any(|m| m.subject().contains("Before confirming")));
    let _ = before;

    // One-click unsubscribe: urlencoded for Ann, multipart for Bob; 200, no redirect.
    let ann_url = scheduled.check_shape();
    let r = post_form(
        &mut visitor(&o, 7),
        &path_of(&ann_url),
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("location").is_none());
    let bob_url = bobs[1].check_shape();
    let body = "--b0und\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0und--\r\n";
    let r = visitor(&o, 8).request(
        "POST",
        STATUS,
        &path_of(&bob_url),
        &[("Content-Type", "multipart/form-data; boundary=b0und")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("location").is_none());
    // Gone: the link is no longer valid.
    assert_eq!(visitor(&o, 8).get(STATUS, &path_of(&bob_url)).status, 404);

    // Carol stays subscribed; neither Ann nor Bob get the next incident.
    let carol = "carol@example.com";
    subscribe_and_confirm(&o, &smtp, 9, carol, "");
    let (ann_n, bob_n) = (smtp.mails_to(ann).len(), smtp.mails_to(bob).len());
    incident(&o, "Everything is down", &["cloud", "mail"]);
    smtp.wait_mail(carol, "new incident: Everything is down");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.mails_to(ann).len(), ann_n);
    assert_eq!(smtp.mails_to(bob).len(), bob_n);

    // The CLI: list and remove.
    let listed = o.cli(&["subscribers", "list", "--json"]).ok().json();
    let addresses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, vec![carol]);
    assert_eq!(listed[0]["name"], carol);
    assert!(listed[0]["id"].as_str().is_some_and(|i| i.len() == 12));
    let text = o.cli(&["subscribers", "list"]).ok().stdout;
    assert!(text.contains(carol) && text.contains("confirmed"), "{text}");
    o.cli(&["subscribers", "remove", "Carol@Example.com"]).ok();
    let again = o.cli(&["subscribers", "remove", carol]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(o
        .cli(&["subscribers", "list", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    // No token ever reaches the log (the access log shows the path only).
    let log = o.log_text();
    for m in smtp.mails() {
        for w in m.part("text/plain").split_whitespace() {
            if let Some((_, token)) = w.split_once("token=") {
                assert!(!log.contains(token), "a token in the log:\n{log}");
            }
        }
    }
    assert!(
        log.contains("/unsubscribe"),
        "the access log has the path:\n{log}"
    );
}

#[test]
fn six_requests_a_minute_from_one_client_get_429() {
    if !smtp_available() {
        return;
    }
    let (port, _held) = dead_port();
    let (o, _origin) = start(port);
    for i in 0..5 {
        let r = subscribe(&o, 20, "email=not-an-address");
        assert_eq!(r.status, 422, "request {i}: {}", r.text());
    }
    let r = subscribe(&o, 20, "email=ann%40example.com");
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Confirm and unsubscribe links count too; another client is not affected.
    let r = visitor(&o, 20).get(STATUS, "/unsubscribe?token=00");
    assert_eq!(r.status, 429);
    let r = visitor(&o, 21).get(STATUS, "/unsubscribe?token=00");
    assert_eq!(r.status, 404, "{}", r.text());
    // Bodies over 16 KiB are refused.
    let big = format!("email=a%40example.com&x={}", "y".repeat(17 * 1024));
    let r = subscribe(&o, 22, &big);
    assert_eq!(r.status, 413);
    // Another site's page cannot subscribe its visitors' browsers to anything; the
    // same browser from the status page's own form can.
    let cross = |site: &str| {
        visitor(&o, 23).request(
            "POST",
            STATUS,
            "/subscribe",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Sec-Fetch-Site", site),
            ],
            b"email=bob%40example.com",
        )
    };
    let r = cross("cross-site");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = cross("same-origin");
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn mail_waits_for_a_mail_server_that_is_down() {
    if !smtp_available() {
        return;
    }
    let (port, held) = dead_port();
    let (o, _origin) = start(port);
    let dave = "dave@example.com";
    let r = subscribe(&o, 30, "email=dave%40example.com");
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for(WAIT, "two failed attempts", || {
        (o.count_log(|l| l.contains("sending a mail failed")) >= 2).then_some(())
    });
    let server = format!("127.0.0.1:{port}");
    assert!(
        o.lines()
            .iter()
            .any(|l| l.contains("sending a mail failed") && l.contains(&server)),
        "the server is named:\n{}",
        o.log_text()
    );
    let tmp = tempfile::tempdir().expect("tmp");
    drop(held);
    let smtp = Smtp::start(tmp.path(), port);
    let m = smtp.wait_mail(dave, "confirm your subscription");
    m.check_shape();
    o.wait_log(WAIT, "the mail sent", |l| l.contains("mail sent"));
}

#[test]
fn without_smtp_there_is_no_form_and_no_endpoint() {
    let origin = TestOrigin::start("origin");
    let cfg = config(25, &origin.url());
    let cfg = cfg.split("[smtp]").next().unwrap().to_string()
        + "[[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \""
        + &origin.url()
        + "\"\n\n[[component]]\nname = \"mail\"\n";
    let o = Offramp::start(&cfg);
    let page = o.get(STATUS, "/").text();
    assert!(!page.contains("action=\"/subscribe\""), "{page}");
    assert_eq!(o.get(STATUS, "/subscribe").status, 404);
    assert_eq!(o.get(STATUS, "/unsubscribe?token=00").status, 404);
    let r = post_form(&mut o.conn(), "/subscribe", "email=a%40example.com");
    assert!(matches!(r.status, 404 | 405), "{}", r.status);
}
