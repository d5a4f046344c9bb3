//! The write API's HTTP/1.1 on the admin listener, byte by byte: keep-alive between API
//! requests, a body over the limit (413, then the connection ends: what is left of the
//! body is never read as a request), `Expect: 100-continue`, `HEAD` on the read routes,
//! and the `Authorization` scheme in any case.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-deploy";
/// The API's body limit (1 MiB).
const LIMIT: usize = 1024 * 1024;

fn daemon(origin: &TestOrigin) -> Offramp {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("deploy.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("offramp.toml"),
        format!(
            "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\n\
             [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"{}\"\n\n\
             [[component]]\nname = \"api\"\n\n[api]\ntokens = [\"deploy.token\"]\n",
            server_section("admin = \"127.0.0.1:0\""),
            origin.url()
        ),
    )
    .unwrap();
    Offramp::start_in(dir, &[])
}

/// A connection to the admin listener that gives up reading after 5 s (a server that
/// waits for something the client never sends shows up as a failure, not a hang).
fn admin_conn(o: &Offramp) -> Conn {
    let c = Conn::open(o.admin.expect("admin listener"));
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c
}

fn auth() -> String {
    format!("Bearer {TOKEN}")
}

/// The head of a POST of `len` body bytes to `/api/v1/incidents`, with `extra` headers.
fn post_head(len: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/incidents HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

#[test]
fn api_requests_share_a_keep_alive_connection() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let mut c = admin_conn(&o);
    let a = auth();
    let h = [("Authorization", a.as_str())];
    let r = c.request(
        "POST",
        "admin",
        "/api/v1/incidents",
        &h,
        br#"{"title":"t","message":"m"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = c.request(
        "PATCH",
        "admin",
        &format!("/api/v1/incidents/{id}"),
        &h,
        br#"{"message":"still looking"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.request("GET", "admin", "/api/v1/incidents", &h, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
    assert!(!c.is_closed(Duration::from_millis(200)), "still open");
}

#[test]
fn a_body_over_the_limit_gets_413_and_the_connection_closes() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let mut c = admin_conn(&o);
    let a = auth();
    let r = c.request(
        "GET",
        "admin",
        "/api/v1/incidents",
        &[("Authorization", a.as_str())],
        b"",
    );
    assert_eq!(r.status, 200, "keep-alive before: {}", r.text());
    // The body starts with what would be a request of its own if it were read as one.
    let smuggled = "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n";
    c.send(format!("{}{smuggled}", post_head(LIMIT + 1, "")).as_bytes());
    let r = c.read_response(false);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        c.is_closed(Duration::from_secs(5)),
        "the rest of the body is not answered as a request"
    );

    // A client that sends the whole body without waiting still reads the 413: the
    // server reads and drops the rest before it closes, so no reset loses the answer.
    let mut c = admin_conn(&o);
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut bytes = post_head(2 * LIMIT, "").into_bytes();
        bytes.resize(bytes.len() + 2 * LIMIT, b'x');
        // The server may stop reading once it has answered: a write error is fine.
        let _ = writer.write_all(&bytes);
    });
    let r = c.read_response(false);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("1 MiB"), "{}", r.text());
    assert!(c.is_closed(Duration::from_secs(5)));
    sender.join().unwrap();
    assert_eq!(
        o.cli(&["incident", "list", "--all", "--json"]).ok().json(),
        serde_json::json!([]),
        "nothing written"
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let mut c = admin_conn(&o);
    // curl sends `Expect: 100-continue` for bodies over 1 KiB and waits for the 100.
    let body = format!(r#"{{"title":"t","message":"{}"}}"#, "m".repeat(2000));
    c.send(post_head(body.len(), "Expect: 100-continue\r\n").as_bytes());
    let (status, _) = c.read_head();
    assert_eq!(status, 100, "100 Continue before the body is sent");
    c.send(body.as_bytes());
    let r = c.read_response(false);
    assert_eq!(r.status, 201, "{}", r.text());
    // A client that sends the body at once anyway gets no stray 100 later.
    c.send(
        format!(
            "{}{body}",
            post_head(body.len(), "expect: 100-Continue\r\n")
        )
        .as_bytes(),
    );
    let r = c.read_response(false);
    assert!(matches!(r.status, 100 | 201), "{}", r.status);
    if r.status == 100 {
        assert_eq!(c.read_response(false).status, 201);
    }
    let a = auth();
    let r = c.request(
        "GET",
        "admin",
        "/api/v1/incidents",
        &[("Authorization", a.as_str())],
        b"",
    );
    assert_eq!(r.json().as_array().map(Vec::len), Some(2), "{}", r.text());

    // Refused up front: 413 without a 100, and the body is never asked for.
    let mut c = admin_conn(&o);
    c.send(post_head(LIMIT + 1, "Expect: 100-continue\r\n").as_bytes());
    let r = c.read_response(false);
    assert_eq!(r.status, 413, "no 100 for a body that is refused anyway");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(Duration::from_secs(5)));

    // Without the right token, 401 before any 100 or 413: nobody without a token can
    // make offramp read a body.
    for len in [body.len(), LIMIT + 1] {
        let mut c = admin_conn(&o);
        let head = post_head(len, "Expect: 100-continue\r\n").replace(TOKEN, "wrong-token");
        c.send(head.as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 401, "len {len}");
        assert!(c.is_closed(Duration::from_secs(5)), "len {len}");
    }
}

#[test]
fn head_answers_like_get_without_a_body() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let mut c = admin_conn(&o);
    let a = auth();
    let h = [("Authorization", a.as_str())];
    let r = c.request(
        "POST",
        "admin",
        "/api/v1/maintenances",
        &h,
        br#"{"title":"Upgrade","sites":["cloud"],"start":"+1h","end":"+2h"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    for path in [
        "/api/v1/incidents".to_string(),
        "/api/v1/maintenances?all".to_string(),
        format!("/api/v1/maintenances/{id}"),
    ] {
        let get = c.request("GET", "admin", &path, &h, b"");
        assert_eq!(get.status, 200, "{path}: {}", get.text());
        let head = c.request("HEAD", "admin", &path, &h, b"");
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "HEAD {path} gives GET's length"
        );
        assert_eq!(head.header("content-type"), get.header("content-type"));
    }
    // No body was sent after a HEAD: the next answer on the connection is intact.
    let r = c.request("HEAD", "admin", "/api/v1/incidents/nosuchid", &h, b"");
    assert_eq!(r.status, 404);
    let r = c.request("HEAD", "admin", "/api/v1/incidents", &[], b"");
    assert_eq!(r.status, 401, "HEAD needs the token too");
    let r = c.request("HEAD", "admin", "/api/v1/components/api", &h, b"");
    assert_eq!(r.status, 405, "no GET there, so no HEAD");
    assert_eq!(r.header("allow"), Some("PATCH"));
    let r = c.request("PUT", "admin", "/api/v1/incidents", &h, b"{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    let r = c.get("admin", "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let origin = TestOrigin::start("o");
    let o = daemon(&origin);
    let mut c = admin_conn(&o);
    let get = |c: &mut Conn, value: &str| {
        c.request(
            "GET",
            "admin",
            "/api/v1/incidents",
            &[("Authorization", value)],
            b"",
        )
        .status
    };
    // RFC 9110 section 11.1: the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(get(&mut c, &format!("{scheme} {TOKEN}")), 200, "{scheme}");
    }
    assert_eq!(get(&mut c, &format!("Bearer   {TOKEN}")), 200, "1*SP");
    for bad in [
        format!("Bearer{TOKEN}"),
        format!("Basic {TOKEN}"),
        format!("Bearers {TOKEN}"),
        format!("bearer {}", TOKEN.to_uppercase()),
        format!("BEARER {TOKEN}x"),
        "BEARER".to_string(),
    ] {
        assert_eq!(get(&mut c, &bad), 401, "{bad}");
    }
}
