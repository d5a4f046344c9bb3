//! A real browser on the built-in status page: headless Chromium opens an offline
//! site, lands on its maintenance page on the status host, the site is flipped online
//! with the CLI, and the page's own script takes the browser back to the exact URL it
//! asked for first; and a page of another origin that embeds `embed.js` shows an
//! incident's notice within the script's refresh after the incident is opened.
//!
//! Needs Chromium (`apt-get install chromium`; `.ci/run` installs it). Without it the
//! test says SKIPPED on stderr and passes, unless `OFFRAMP_REQUIRE_BROWSER=1` (set by
//! CI), where a missing browser is a failure.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OFFRAMP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| ["/usr/bin", "/usr/local/bin", "/snap/bin"].map(|d| PathBuf::from(d).join(n)))
        .find(|p| p.exists())
}

/// Headless Chromium with its DevTools HTTP endpoint, killed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    devtools: u16,
}

impl Browser {
    fn open(bin: &PathBuf, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                // Every name is this machine: the test's hosts need no DNS, and nothing
                // leaves loopback.
                "--host-resolver-rules=MAP * 127.0.0.1",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let devtools = wait_for(Duration::from_secs(30), "chromium's DevTools port", || {
            std::fs::read_to_string(&port_file)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        Browser {
            child,
            _profile: profile,
            devtools,
        }
    }

    /// The URL the browser's page shows now.
    fn url(&self) -> Option<String> {
        self.page_field("url")
    }

    /// The title of the browser's page now.
    fn title(&self) -> Option<String> {
        self.page_field("title")
    }

    fn page_field(&self, field: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.devtools)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.devtools
        )
        .ok()?;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        let body = text.split_once("\r\n\r\n")?.1;
        let list: serde_json::Value = serde_json::from_str(body).ok()?;
        list.as_array()?
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t[field].as_str())
            .map(str::to_string)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser_or_skip() -> Option<PathBuf> {
    let bin = chromium();
    if bin.is_none() {
        if std::env::var("OFFRAMP_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("OFFRAMP_REQUIRE_BROWSER=1 but no Chromium found (apt-get install chromium)");
        }
        eprintln!("SKIPPED: no Chromium found; install it (apt-get install chromium) to run the browser test");
    }
    bin
}

/// A page of another origin that embeds the status host's `embed.js`, served by a
/// thread of this test. Its own script shows in the title what the notice says.
fn embedding_page(status: &str) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let html = format!(
        "<!doctype html><html><head><title>waiting</title></head><body><p>A page elsewhere</p>\
<script src=\"{status}/embed.js\" data-site=\"cloud\"></script>\
<script>setInterval(function () {{ var n = document.querySelector('.offramp-notice strong');\
document.title = n ? 'notice:' + n.textContent : 'none'; }}, 200);</script></body></html>"
    );
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    addr
}

#[test]
fn an_incident_notice_appears_on_a_page_of_another_origin_while_it_is_open() {
    let Some(bin) = browser_or_skip() else {
        return;
    };
    let origin = TestOrigin::start("o");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.home.example\"]\nupstream = \"{}\"\n\
[status]\nhosts = [\"status.home.example\"]\n",
        server_section(""),
        origin.url()
    );
    let o = Offramp::start(&text);
    let status = format!("http://status.home.example:{}", o.addr().port());
    let page = embedding_page(&status);
    let b = Browser::open(
        &bin,
        &format!("http://page.elsewhere.example:{}/", page.port()),
    );
    wait_for(Duration::from_secs(30), "the page without a notice", || {
        (b.title().as_deref() == Some("none")).then_some(())
    });
    // Opened while the page is open: the notice shows up by itself.
    o.cli(&[
        "incident",
        "open",
        "Cloud is slow",
        "--impact",
        "minor",
        "--component",
        "cloud=degraded_performance",
        "--message",
        "Looking into it",
    ])
    .ok();
    let title = wait_for(Duration::from_secs(45), "the incident notice", || {
        b.title().filter(|t| t.starts_with("notice:"))
    });
    assert_eq!(title, "notice:Cloud is slow");
}

#[test]
fn browser_on_the_maintenance_page_returns_to_its_url_when_the_site_is_back() {
    let Some(bin) = browser_or_skip() else {
        return;
    };
    let origin = TestOrigin::start("o");
    let text = format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\
[[site]]\nname = \"cloud\"\nhosts = [\"cloud.home.example\"]\nupstream = \"{}\"\nstate = \"offline\"\n\
[status]\nhosts = [\"status.home.example\"]\n",
        server_section(""),
        origin.url()
    );
    let o = Offramp::start(&text);
    let port = o.addr().port();
    let wanted = format!("http://cloud.home.example:{port}/docs/page?x=1&y=two");
    let b = Browser::open(&bin, &wanted);

    let page = format!("http://status.home.example:{port}/maintenance/cloud?from=");
    let landed = wait_for(Duration::from_secs(30), "the maintenance page", || {
        b.url().filter(|u| u.starts_with(&page))
    });
    assert!(
        landed.contains("from=http%3A%2F%2Fcloud.home.example"),
        "{landed}"
    );
    // The page's script is running: it polls the site's state.
    o.wait_log(WAIT, "the page polling /api/sites/cloud.json", |l| {
        l.contains("offramp::access") && l.contains("path=/api/sites/cloud.json")
    });
    assert_eq!(origin.request_count(), 0, "nothing proxied while offline");

    o.cli(&["online", "cloud", "--reason", "done"]).ok();
    let back = wait_for(
        Duration::from_secs(30),
        "the browser back on its URL",
        || b.url().filter(|u| *u == wanted),
    );
    assert_eq!(back, wanted);
    // And that URL was fetched through the proxy from the upstream, exactly.
    o.wait_log(WAIT, "the proxied request", |l| {
        l.contains("offramp::access")
            && l.contains("state=\"online\"")
            && l.contains("path=/docs/page?x=1&y=two")
            && l.contains("status=200")
    });
    assert!(origin.request_count() >= 1);
}
