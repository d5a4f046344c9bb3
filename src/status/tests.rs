//! Unit tests of the status host: pages, API shapes, the way back from a maintenance page.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::routes::RouteTable;

fn table() -> RouteTable {
    let cfg = Config::parse(
        r#"
        [server]
        http = "127.0.0.1:0"
        [maintenance]
        status_page = "builtin"
        [[site]]
        name = "cloud"
        hosts = ["cloud.example", "*.cloud.example"]
        upstream = "http://127.0.0.1:9"
        [[site]]
        name = "blog"
        hosts = ["blog.example"]
        upstream = "http://127.0.0.1:9"
        [status]
        hosts = ["status.example"]
        "#,
        Path::new("/tmp/t.toml"),
    )
    .unwrap();
    RouteTable::build(&cfg)
}

fn view(cloud: SiteState) -> View {
    use crate::platform::{ComponentStatus as C, ComponentView};
    let component = |name: &str, status| ComponentView {
        name: name.into(),
        description: None,
        group: None,
        site: true,
        status,
        checked: false,
    };
    let cloud_status = match cloud {
        SiteState::Offline => C::UnderMaintenance,
        SiteState::Online => C::Operational,
    };
    View {
        title: "Lab <status>".into(),
        links: vec![],
        sites: vec![
            SiteView::new("cloud", cloud, None, None, Some("disk <swap>".into())),
            SiteView::new("blog", SiteState::Online, None, None, None),
        ],
        history: vec![],
        updated_at: OffsetDateTime::UNIX_EPOCH,
        platform: Arc::new(crate::platform::PlatformView::empty(
            vec![
                component("cloud", cloud_status),
                component("blog", C::Operational),
            ],
            OffsetDateTime::UNIX_EPOCH,
        )),
        rendered: Default::default(),
        subscribe: false,
    }
}

#[test]
fn from_is_only_followed_back_to_a_host_of_the_same_site() {
    let t = table();
    let ok = |from: &str| return_url(&t, 0, from.as_bytes());
    assert_eq!(
        ok("http://cloud.example:8080/a/b?x=1").as_deref(),
        Some("http://cloud.example:8080/a/b?x=1")
    );
    assert_eq!(
        ok("HTTPS://A.Cloud.Example/").as_deref(),
        Some("https://a.cloud.example/")
    );
    assert_eq!(
        ok("http://cloud.example").as_deref(),
        Some("http://cloud.example/")
    );
    // CR/LF, spaces and quotes in the path are encoded, never passed through.
    assert_eq!(
        ok("http://cloud.example/a\r\nb\"<x>").as_deref(),
        Some("http://cloud.example/a%0D%0Ab%22%3Cx%3E")
    );
    for bad in [
        "http://blog.example/", // another site
        "http://evil.example/", // no site
        "http://cloud.example@evil.example/",
        "http://evil.example\\@cloud.example/",
        "//cloud.example/",
        "javascript:alert(1)//cloud.example",
        "ftp://cloud.example/",
        "http://cloud.example:99999/",
        "http://status.example/",
        "",
    ] {
        assert_eq!(ok(bad), None, "{bad:?}");
    }
}

#[test]
fn query_param_is_percent_decoded() {
    assert_eq!(
        query_param(b"a=1&from=http%3A%2F%2Fx%2Fy%3Fz%3D1&b", b"from"),
        Some(b"http://x/y?z=1".to_vec())
    );
    assert_eq!(query_param(b"from=%zz%4", b"from"), Some(b"%zz%4".to_vec()));
    assert_eq!(query_param(b"frm=1", b"from"), None);
}

#[test]
fn maintenance_page_goes_back_once_online() {
    let t = table();
    let get = http::Method::GET;
    let target = b"/maintenance/cloud?from=http%3A%2F%2Fcloud.example%2Fdocs%3Fa%3D1";
    let r = handle(
        &t,
        &view(SiteState::Offline),
        &get,
        target,
        "http://status.example",
    );
    assert_eq!(r.status, 200);
    let body = String::from_utf8_lossy(&r.body_bytes()).into_owned();
    assert!(body.contains("disk &lt;swap&gt;"), "{body}");
    assert!(
        body.contains("data-return=\"http://cloud.example/docs?a=1\""),
        "{body}"
    );
    assert!(!body.contains("<swap>"));
    let r = handle(
        &t,
        &view(SiteState::Online),
        &get,
        target,
        "http://status.example",
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.location.as_deref(), Some("http://cloud.example/docs?a=1"));
    // A forged `from` is never followed, even once the site is online.
    let forged = b"/maintenance/cloud?from=http%3A%2F%2Fevil.example%2F";
    let r = handle(
        &t,
        &view(SiteState::Online),
        &get,
        forged,
        "http://status.example",
    );
    assert_eq!(r.status, 200);
    assert!(!String::from_utf8_lossy(&r.body_bytes()).contains("evil"));
}

#[test]
fn unknown_paths_sites_and_methods() {
    let t = table();
    let v = view(SiteState::Offline);
    let get = http::Method::GET;
    assert_eq!(handle(&t, &v, &get, b"/nope", "http://s").status, 404);
    assert_eq!(handle(&t, &v, &get, b"/index.html", "http://s").status, 404);
    assert_eq!(
        handle(&t, &v, &get, b"/maintenance/nope", "http://s").status,
        404
    );
    assert_eq!(
        handle(&t, &v, &get, b"/api/sites/nope.json", "http://s").status,
        404
    );
    assert_eq!(
        handle(&t, &v, &http::Method::POST, b"/", "http://s").status,
        405
    );
    let r = handle(&t, &v, &get, b"/api/sites/cloud.json", "http://s");
    let j: serde_json::Value = serde_json::from_slice(&r.body_bytes()).unwrap();
    assert_eq!(j["state"], "offline");
    assert_eq!(j["status"], "under_maintenance");
}

#[test]
fn summary_has_the_statuspage_shape() {
    let t = table();
    let r = handle(
        &t,
        &view(SiteState::Offline),
        &http::Method::GET,
        b"/api/v2/summary.json",
        "http://status.example",
    );
    let j: serde_json::Value = serde_json::from_slice(&r.body_bytes()).unwrap();
    assert_eq!(j["page"]["name"], "Lab <status>");
    assert_eq!(j["page"]["url"], "http://status.example");
    assert_eq!(j["status"]["indicator"], "maintenance");
    assert_eq!(j["components"][0]["status"], "under_maintenance");
    assert_eq!(j["components"][1]["status"], "operational");
    assert_eq!(j["scheduled_maintenances"][0]["status"], "in_progress");
    assert_eq!(
        j["scheduled_maintenances"][0]["incident_updates"][0]["body"],
        "disk <swap>"
    );
    assert!(j["incidents"].as_array().unwrap().is_empty());
}
