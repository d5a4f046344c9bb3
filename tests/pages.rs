//! The status host's platform pages and public API end to end: incidents and
//! maintenance made with the CLI show on the overview, `/incidents/ID`, `/history`, the
//! Atom and RSS feeds and the Statuspage v2 endpoints, every value escaped.

mod common;

use common::*;
use serde_json::Value;

const STATUS: &str = "status.test";
const EVIL: &str = "<script>alert(1)</script> & \"more\"";

fn daemon(origin: &TestOrigin) -> Offramp {
    Offramp::start(&format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{u}\"\ngroup = \"Apps\"\n\n\
         [[site]]\nname = \"blog\"\nhosts = [\"blog.test\"]\nupstream = \"{u}\"\n\n\
         [[component]]\nname = \"mail\"\ndescription = \"Mail & calendars\"\ngroup = \"Apps\"\n\n\
         [status]\nhosts = [\"{STATUS}\"]\ntitle = \"Lab\"\n",
        server_section(""),
        u = origin.url()
    ))
}

fn open_incident(o: &Offramp) -> String {
    let id = o
        .cli(&[
            "incident",
            "open",
            EVIL,
            "--impact",
            "major",
            "--component",
            "mail=major_outage",
            "--message",
            "first <b>update</b>",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    o.cli(&[
        "incident",
        "update",
        &id,
        "--status",
        "identified",
        "--message",
        "second & last",
    ])
    .ok();
    id
}

fn no_raw_markup(body: &str) {
    assert!(!body.contains("<script>alert"), "unescaped markup: {body}");
    assert!(!body.contains("<b>update</b>"), "unescaped markup: {body}");
}

#[test]
fn an_incident_and_a_window_on_every_page_escaped() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let id = open_incident(&o);
    let mid = o
        .cli(&[
            "maintenance",
            "schedule",
            "Disk <swap>",
            "--site",
            "blog",
            "--start",
            "+2h",
            "--end",
            "+1h",
            "--message",
            "New disks",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();

    let r = o.get(STATUS, "/");
    assert_eq!(r.status, 200);
    let body = r.text();
    no_raw_markup(&body);
    assert!(
        body.contains("Major System Outage"),
        "banner: a major outage: {body}"
    );
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;"));
    let (second, first) = (
        body.find("second &amp; last").unwrap(),
        body.find("first &lt;b&gt;").unwrap(),
    );
    assert!(second < first, "timeline newest first");
    assert!(body.contains("Disk &lt;swap&gt;"), "upcoming window shown");
    assert!(body.contains(">Apps<"), "the group");
    assert!(body.contains("Mail &amp; calendars"));
    assert!(body.contains("Major Outage"), "mail's status in words");
    assert!(body.contains("No incidents reported."), "past days");
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let page = o.get(STATUS, &format!("/incidents/{id}"));
    assert_eq!(page.status, 200);
    no_raw_markup(&page.text());
    assert!(page.text().contains("Identified"));
    assert_eq!(o.get(STATUS, &format!("/incidents/{mid}")).status, 200);
    assert_eq!(o.get(STATUS, "/incidents/nope").status, 404);

    o.cli(&["incident", "resolve", &id]).ok();
    let hist = o.get(STATUS, "/history").text();
    no_raw_markup(&hist);
    assert!(hist.contains(&format!("/incidents/{id}")), "{hist}");
    let over = o.get(STATUS, "/").text();
    assert!(
        over.contains("id=\"past\"") && over.contains(&format!("/incidents/{id}")),
        "past incidents list it"
    );

    for (path, ctype) in [
        ("/history.atom", "application/atom+xml"),
        ("/history.rss", "application/rss+xml"),
    ] {
        let f = o.get(STATUS, path);
        assert_eq!(f.status, 200, "{path}");
        assert!(
            f.header("content-type")
                .unwrap_or_default()
                .starts_with(ctype),
            "{path}"
        );
        let t = f.text();
        no_raw_markup(&t);
        // RSS descriptions are HTML: escaped for HTML, then for XML (`&` -> `&amp;amp;`),
        // so a reader shows the `&` itself; Atom's are text, escaped once.
        let amp = if path.ends_with("atom") {
            "second &amp; last"
        } else {
            "second &amp;amp; last"
        };
        assert!(t.contains(amp) && t.contains("Resolved"), "{path}: {t}");
        assert_eq!(
            t.matches(if path.ends_with("atom") {
                "<entry>"
            } else {
                "<item>"
            })
            .count(),
            4,
            "{t}"
        );
    }
}

#[test]
fn the_statuspage_v2_endpoints() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let id = open_incident(&o);
    o.cli(&[
        "maintenance",
        "schedule",
        "Soon",
        "--site",
        "blog",
        "--start",
        "+1h",
        "--end",
        "+1h",
    ])
    .ok();
    o.cli(&[
        "maintenance",
        "schedule",
        "Now",
        "--component",
        "mail",
        "--start",
        "now",
        "--end",
        "+1h",
    ])
    .ok();
    o.cli(&["offline", "cloud", "--reason", "by hand"]).ok();
    let get = |p: &str| -> Value {
        let r = o.get(STATUS, p);
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{p}");
        r.json()
    };
    let s = get("/api/v2/summary.json");
    assert_eq!(s["status"]["indicator"], "critical", "{s}");
    assert_eq!(s["status"]["description"], "Major System Outage");
    assert_eq!(s["incidents"][0]["id"], id.as_str());
    assert_eq!(
        s["incidents"][0]["incident_updates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s["incidents"][0]["components"][0]["id"], "mail");
    let names: Vec<&str> = s["scheduled_maintenances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Soon") && names.contains(&"Now"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("cloud")),
        "the hand flip is still listed: {names:?}"
    );
    let comps = s["components"].as_array().unwrap();
    let mail = comps.iter().find(|c| c["id"] == "mail").unwrap();
    assert_eq!(
        mail["status"], "major_outage",
        "worst of incident and maintenance"
    );
    assert_eq!(mail["group_id"], "group-apps");
    let group = comps.iter().find(|c| c["group"] == true).unwrap();
    assert_eq!(group["name"], "Apps");
    assert_eq!(group["components"], serde_json::json!(["cloud", "mail"]));

    assert_eq!(
        get("/api/v2/incidents/unresolved.json")["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get("/api/v2/incidents.json")["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let up = get("/api/v2/scheduled-maintenances/upcoming.json");
    assert_eq!(
        up["scheduled_maintenances"].as_array().unwrap().len(),
        1,
        "{up}"
    );
    assert_eq!(up["scheduled_maintenances"][0]["status"], "scheduled");
    let active = get("/api/v2/scheduled-maintenances/active.json");
    assert!(active["scheduled_maintenances"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "in_progress"));
    assert_eq!(
        get("/api/v2/scheduled-maintenances.json")["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    o.cli(&["incident", "resolve", &id]).ok();
    assert_eq!(
        get("/api/v2/incidents/unresolved.json")["incidents"],
        serde_json::json!([])
    );
    assert_eq!(
        get("/api/v2/incidents.json")["incidents"][0]["status"],
        "resolved"
    );
}

#[test]
fn the_status_host_takes_no_post() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let r = o.conn().request("POST", STATUS, "/", &[], b"x=1");
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
}
