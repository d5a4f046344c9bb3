use super::*;

const CONFIG: &str = r#"{
  "admin": {"listen": "localhost:2019"},
  "apps": {
"http": {"servers": {
  "a": {"listen": [":443"], "routes": [
    {"match": [{"host": ["x.example"], "path": ["/api/*"]}],
     "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "{http.request.host}:80"}, {"dial": "10.0.0.1:8080"}], "headers": {}}]},
    {"handle": [{"handler": "file_server"}]},
    {"match": [{"host": ["y.example"]}], "handle": [{"handler": "vars"}, {"handler": "reverse_proxy", "upstreams": [{"dial": "10.0.0.2:80"}]}]},
    {"match": [{"host": ["z.example"]}], "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "10.0.0.2:80"}]}]}
  ]},
  "b": {"listen": [":8443"], "routes": [
    {"match": [{"host": ["w.example"]}], "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "10.0.0.2:80"}]}]}
  ]}
}},
"tls": {"automation": {"policies": [{"subjects": ["x.example"], "issuers": [{"module": "acme", "challenges": {"dns": {"provider": {"name": "cloudflare"}}}}]}]}},
"pki": {}
  }
}"#;

fn notes(n: &[Note]) -> String {
    n.iter()
        .map(|n| format!("{}: {}", n.from, n.what))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn routes_handlers_and_everything_else_noted() {
    let src = from_text(CONFIG, Path::new("caddy.json")).unwrap();
    let hosts: Vec<Vec<&str>> = src
        .sites
        .iter()
        .map(|s| s.addresses.iter().map(|a| a.host.as_str()).collect())
        .collect();
    // z and w have the same handlers, but z is in the same server as y: only
    // routes of different servers are one block's ports.
    assert_eq!(
        hosts,
        vec![
            vec!["x.example"],
            vec!["y.example"],
            vec!["z.example", "w.example"]
        ]
    );
    assert_eq!(src.sites[2].addresses[1].port, Some(8443));
    let x = &src.sites[0];
    assert_eq!(x.upstreams.len(), 1);
    assert_eq!(x.upstreams[0].value, "http://10.0.0.1:8080");
    let n = notes(&x.notes);
    assert!(
        n.contains("upstreams[0]: upstream \"http://{http.request.host}:80\" is not HOST[:PORT]"),
        "{n}"
    );
    assert!(
        n.contains(".handle[0].headers: reverse_proxy headers: not carried"),
        "{n}"
    );
    assert!(src.sites[1]
        .notes
        .iter()
        .any(|n| !n.understood && n.what == "handler vars"));
    let g = notes(&src.notes);
    assert!(
        g.contains("apps.http.servers.a.routes[0].match[0].path: matcher path"),
        "{g}"
    );
    assert!(
        g.contains("apps.http.servers.a.routes[1]: a route without a host matcher"),
        "{g}"
    );
    assert!(g.contains("(DNS challenge: cloudflare)"), "{g}");
    assert!(g.contains("apps.pki: Caddy app pki: not carried"), "{g}");
    assert!(g.contains("admin: Caddy's own"), "{g}");
}

#[test]
fn redirects_and_responses() {
    let json = r#"{"apps": {"http": {"servers": {"s": {"listen": [":80"], "routes": [
        {"match": [{"host": ["a.example"]}], "handle": [{"handler": "static_response", "status_code": "307", "headers": {"Location": ["https://s.example/a{http.request.uri}"]}}]},
        {"match": [{"host": ["b.example"]}], "handle": [{"handler": "static_response", "status_code": 301, "headers": {"Location": ["https://s.example"]}}]},
        {"match": [{"host": ["c.example"]}], "handle": [{"handler": "static_response", "body": "hi"}]}
    ]}}}}}"#;
    let src = from_text(json, Path::new("c.json")).unwrap();
    let a = src.sites[0].redirect.as_ref().unwrap();
    assert_eq!(
        (a.url.as_str(), a.keep_uri, a.code),
        ("https://s.example/a", true, Some(307))
    );
    assert_eq!(src.sites[0].addresses[0].scheme.as_deref(), Some("http"));
    let b = src.sites[1].redirect.as_ref().unwrap();
    assert_eq!((b.keep_uri, b.code), (false, None));
    assert!(src.sites[2].redirect.is_none());
    assert!(notes(&src.sites[2].notes).contains("static_response (respond)"));
}

#[test]
fn not_json_names_the_line() {
    let e = from_text("{\n\n  \"apps\": nope\n}", Path::new("c.json")).unwrap_err();
    assert!(e.to_string().starts_with("c.json:3: not valid JSON"), "{e}");
}
