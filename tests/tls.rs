//! HTTPS termination as a client sees it: certificates picked by SNI from the certs
//! directory (wildcards for one label), h2 by ALPN, the 308 to HTTPS, certificates
//! swapped without a restart (file watch, `offramp reload`, SIGHUP, the certbot deploy
//! hook), bad certificates refused while serving goes on, expired and expiring ones
//! warned about and measured, and a graceful stop with HTTPS requests in flight.
//! Certificates are generated here at run time with rcgen, signed by a throwaway CA the
//! test client trusts.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// A test certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "offramp test CA");
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA cert");
        Ca { cert, key }
    }

    /// A leaf for `names`, valid from yesterday for `days` days (negative: expired).
    fn leaf(&self, names: &[&str], days: i64) -> (String, String, Vec<u8>) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let now = time::OffsetDateTime::now_utc();
        if days < 0 {
            params.not_before = now - time::Duration::days(30);
            params.not_after = now + time::Duration::days(days);
        } else {
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(days);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("add CA");
        roots
    }
}

fn write_pair(dir: &Path, name: &str, pair: &(String, String, Vec<u8>)) {
    std::fs::write(dir.join(format!("{name}.crt")), &pair.0).expect("write crt");
    std::fs::write(dir.join(format!("{name}.key")), &pair.1).expect("write key");
}

/// Replaces a pair by rename, as certbot-style tools and `mv` do.
fn replace_pair(dir: &Path, name: &str, pair: &(String, String, Vec<u8>)) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &pair.1).expect("write");
    std::fs::rename(&tmp, dir.join(format!("{name}.key"))).expect("rename");
    std::fs::write(&tmp, &pair.0).expect("write");
    std::fs::rename(&tmp, dir.join(format!("{name}.crt"))).expect("rename");
}

/// Accepts any certificate but remembers what the server presented (for the no-SNI
/// default and for hot-swap checks). Real verification is in `tls_conn`.
#[derive(Debug)]
struct Record(Mutex<Option<Vec<u8>>>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Record {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap() = Some(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    roots: Option<rustls::RootCertStore>,
    alpn: &[&[u8]],
) -> (rustls::ClientConfig, Arc<Record>) {
    let record = Arc::new(Record(Mutex::new(None), provider()));
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let mut cfg = match roots {
        Some(r) => builder.with_root_certificates(r).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(record.clone())
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (cfg, record)
}

/// A TLS connection with full verification against `ca` for `sni`; `Err` when the
/// handshake fails (wrong certificate for the name, ...).
fn tls_conn(
    addr: SocketAddr,
    ca: &Ca,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let (cfg, _) = client_config(Some(ca.roots()), alpn);
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// The leaf certificate the server presents for `sni` (`None`: no SNI at all).
fn presented_cert(addr: SocketAddr, sni: Option<&str>) -> Vec<u8> {
    let (cfg, record) = client_config(None, &[]);
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).expect("name"),
        // An IP address as server name: rustls sends no SNI.
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("handshake");
    }
    let cert = record.0.lock().unwrap().clone();
    cert.expect("a certificate was presented")
}

/// One HTTP/1.1 GET over a TLS stream; (status, headers, body).
fn https_get(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    host: &str,
    path: &str,
) -> Response {
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    tls.flush().expect("flush");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[end..].to_vec(),
    }
}

struct Setup {
    ca: Ca,
    o: Offramp,
    origin: TestOrigin,
    a: (String, String, Vec<u8>),
    wild: (String, String, Vec<u8>),
}

impl Setup {
    fn certs(&self) -> std::path::PathBuf {
        self.o.dir.path().join("certs")
    }
    fn https(&self) -> SocketAddr {
        self.o.https[0]
    }
}

fn config_text(origin: &TestOrigin, extra_server: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"https://status.example.com\"\n\
[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\nupstream = \"{u}\"\n\
[[site]]\nname = \"wild\"\nhosts = [\"*.wild.test\"]\nupstream = \"{u}\"\n\
[[site]]\nname = \"down\"\nhosts = [\"down.test\"]\nupstream = \"{u}\"\nstate = \"offline\"\n",
        server_section(&format!(
            "https = \"127.0.0.1:0\"\ncerts = \"certs\"\n{extra_server}"
        )),
        u = origin.url()
    )
}

fn setup(extra_server: &str) -> Setup {
    setup_with(extra_server, |_, _| {})
}

/// Like [`setup`]; `more` may add pairs to the certs directory before the start.
fn setup_with(extra_server: &str, more: impl FnOnce(&Ca, &Path)) -> Setup {
    let ca = Ca::new();
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("certs dir");
    let a = ca.leaf(&["a.test", "down.test"], 90);
    let wild = ca.leaf(&["*.wild.test"], 90);
    write_pair(&certs, "a", &a);
    write_pair(&certs, "wild", &wild);
    more(&ca, &certs);
    std::fs::write(
        dir.path().join("offramp.toml"),
        config_text(&origin, extra_server),
    )
    .expect("config");
    let o = Offramp::start_in(dir, &[]);
    assert_eq!(o.https.len(), 1, "{}", o.log_text());
    Setup {
        ca,
        o,
        origin,
        a,
        wild,
    }
}

#[test]
fn sni_picks_the_certificate_and_requests_are_proxied_over_https() {
    let s = setup("");
    // Full verification against the CA for each name: only the right certificate passes.
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[b"http/1.1"]).expect("a.test handshake");
    let r = https_get(&mut t, "a.test", "/x?y=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["headers"]["x-forwarded-proto"], "https");
    assert_eq!(j["headers"]["host"], "a.test");
    assert_eq!(j["target"], "/x?y=1");

    let mut t = tls_conn(s.https(), &s.ca, "deep.wild.test", &[]).expect("wildcard handshake");
    assert_eq!(https_get(&mut t, "deep.wild.test", "/").status, 200);
    assert_eq!(presented_cert(s.https(), Some("x.wild.test")), s.wild.2);
    assert_eq!(presented_cert(s.https(), Some("A.TEST")), s.a.2);

    // An offline site still answers over TLS with its certificate, then redirects.
    let mut t = tls_conn(s.https(), &s.ca, "down.test", &[]).expect("down.test handshake");
    let r = https_get(&mut t, "down.test", "/files?x=1");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://status.example.com/files?x=1")
    );

    // No SNI, or an unknown name: the default is the first pair by file name (a.crt).
    assert_eq!(presented_cert(s.https(), None), s.a.2);
    assert_eq!(presented_cert(s.https(), Some("unknown.test")), s.a.2);
    // ... which does not verify for that name.
    assert!(tls_conn(s.https(), &s.ca, "unknown.test", &[]).is_err());
    assert_eq!(s.origin.request_count(), 2);
}

#[test]
fn default_pair_is_served_without_sni() {
    let s = setup("");
    let d = s.ca.leaf(&["fallback.test"], 90);
    write_pair(&s.certs(), "default", &d);
    assert_eq!(s.o.cli(&["reload"]).code, Some(0));
    assert_eq!(presented_cert(s.https(), None), d.2);
    assert_eq!(presented_cert(s.https(), Some("a.test")), s.a.2);
}

#[test]
fn h2_is_negotiated_by_alpn_and_proxied() {
    let s = setup("");
    let (cfg, _) = client_config(Some(s.ca.roots()), &[b"h2", b"http/1.1"]);
    let addr = s.https();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (alpn, statuses, body) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("a.test").expect("name"), tcp)
            .await
            .expect("handshake");
        let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        let (client, conn) = h2::client::handshake(tls).await.expect("h2");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut statuses = Vec::new();
        let mut body = Vec::new();
        for uri in ["https://a.test/h2", "https://down.test/p"] {
            let mut c = client.clone().ready().await.expect("ready");
            let req = http::Request::get(uri).body(()).expect("req");
            let (resp, _) = c.send_request(req, true).expect("send");
            let resp = resp.await.expect("response");
            statuses.push((
                resp.status().as_u16(),
                resp.headers()
                    .get("location")
                    .map(|v| v.to_str().unwrap_or_default().to_string()),
            ));
            let mut b = resp.into_body();
            while let Some(chunk) = b.data().await {
                let chunk = chunk.expect("data");
                let _ = b.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
            if body.is_empty() {
                body.push(b' ');
            }
        }
        (alpn, statuses, body)
    });
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(statuses[0].0, 200);
    assert_eq!(
        statuses[1],
        (302, Some("https://status.example.com/p".into()))
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("\"x-forwarded-proto\":\"https\""), "{text}");

    // HTTP/1.1 fallback when the client offers only http/1.1.
    let t = tls_conn(s.https(), &s.ca, "a.test", &[b"http/1.1"]).expect("handshake");
    assert_eq!(t.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn plain_http_gets_308_to_https_except_acme_challenges() {
    let s = setup("redirect_https = true\n");
    let port = s.https().port();
    let mut c = s.o.conn();
    let r = c.get("A.test:80", "/p/q?x=1&y=2");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://a.test:{port}/p/q?x=1&y=2").as_str())
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Offline sites too move to HTTPS first (then redirect to the status page there).
    let r = c.get("down.test", "/x");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://down.test:{port}/x").as_str())
    );
    // The ACME HTTP-01 path is proxied, online or offline.
    let r = c.get("a.test", "/.well-known/acme-challenge/tok123");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["target"], "/.well-known/acme-challenge/tok123");
    let r = c.get("down.test", "/.well-known/acme-challenge/tok456");
    assert_eq!(r.status, 200);
    // Unknown hosts are not redirected anywhere.
    assert_eq!(c.get("evil.example", "/").status, 404);
    // HTTPS itself is served normally.
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[]).expect("handshake");
    assert_eq!(https_get(&mut t, "a.test", "/").status, 200);
}

#[test]
fn certificates_are_swapped_without_restart_and_bad_ones_refused() {
    let s = setup("");
    let pid = s.o.pid();
    assert_eq!(presented_cert(s.https(), Some("a.test")), s.a.2);
    // Renew a.test: replaced by rename; the watcher picks it up.
    let renewed = s.ca.leaf(&["a.test", "down.test"], 60);
    replace_pair(&s.certs(), "a", &renewed);
    wait_for(Duration::from_secs(10), "the renewed certificate", || {
        (presented_cert(s.https(), Some("a.test")) == renewed.2).then_some(())
    });
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[]).expect("handshake");
    assert_eq!(https_get(&mut t, "a.test", "/").status, 200);

    // A key that does not match its certificate: refused, the running pair stays.
    let other = s.ca.leaf(&["a.test", "down.test"], 60);
    std::fs::write(s.certs().join("a.key"), &other.1).expect("write bad key");
    let out = s.o.cli(&["reload"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("a.key"), "{}", out.stderr);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    assert_eq!(presented_cert(s.https(), Some("a.test")), renewed.2);
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[]).expect("handshake still fine");
    assert_eq!(https_get(&mut t, "a.test", "/").status, 200);
    // Garbage instead of a certificate: also refused with the file name.
    std::fs::write(s.certs().join("wild.crt"), "not a certificate").expect("write");
    let out = s.o.cli(&["reload"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("wild.crt"), "{}", out.stderr);
    assert_eq!(presented_cert(s.https(), Some("x.wild.test")), s.wild.2);
    // Status shows the failed reload.
    let st = s.o.cli(&["status", "--json"]).ok().json();
    assert_eq!(st["reload"]["ok"], false);

    // Fixed: the good pair applies.
    write_pair(&s.certs(), "a", &other);
    write_pair(&s.certs(), "wild", &s.wild);
    let out = s.o.cli(&["reload"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(presented_cert(s.https(), Some("a.test")), other.2);
    assert_eq!(s.o.pid(), pid);
}

#[test]
fn check_validates_certificates() {
    let ca = Ca::new();
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    let cfg = dir.path().join("offramp.toml");
    std::fs::write(&cfg, config_text(&origin, "")).expect("config");
    let check = || cli(&["check", "-c", cfg.to_str().expect("utf8")]);

    // Empty certs dir: every host is uncovered.
    let out = check();
    assert_eq!(out.code, Some(1));
    for h in ["a.test", "*.wild.test", "down.test"] {
        assert!(out.stderr.contains(h), "{h} in {}", out.stderr);
    }

    write_pair(&certs, "a", &ca.leaf(&["a.test", "down.test"], 90));
    write_pair(&certs, "wild", &ca.leaf(&["*.wild.test"], 5));
    let out = check();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("warning"),
        "expiring soon: {}",
        out.stderr
    );
    assert!(out.stderr.contains("wild.crt"), "{}", out.stderr);

    // An expired certificate is named (that it fails `check` is in
    // `check_fails_on_an_expired_certificate`).
    write_pair(&certs, "wild", &ca.leaf(&["*.wild.test"], -1));
    let out = check();
    assert!(
        out.stderr.contains("wild.crt") && out.stderr.contains("expired"),
        "{}",
        out.stderr
    );

    // A wildcard host is not covered by a certificate for one name under it.
    write_pair(&certs, "wild", &ca.leaf(&["x.wild.test"], 90));
    let out = check();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("*.wild.test"), "{}", out.stderr);

    // Certificate without key.
    write_pair(&certs, "wild", &ca.leaf(&["*.wild.test"], 90));
    std::fs::remove_file(certs.join("wild.key")).expect("rm");
    let out = check();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("wild"), "{}", out.stderr);

    // https without certs at all.
    let text = config_text(&origin, "").replace("certs = \"certs\"\n", "");
    std::fs::write(&cfg, text).expect("config");
    let out = check();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("server.certs"), "{}", out.stderr);

    // serve refuses to start on a config whose certificates are bad.
    std::fs::write(&cfg, config_text(&origin, "")).expect("config");
    std::fs::write(certs.join("wild.key"), "garbage").expect("write");
    let out = run_with_timeout(
        std::process::Command::new(bin())
            .arg("serve")
            .arg("-c")
            .arg(&cfg),
        WAIT,
    );
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("wild.key"), "{}", out.stderr);
}

#[test]
fn builtin_status_page_over_https_and_its_certificate_check() {
    let ca = Ca::new();
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("certs dir");
    write_pair(&certs, "a", &ca.leaf(&["down.test"], 90));
    let text = |status_host: &str| {
        format!(
            "{}[maintenance]\nstatus_page = \"builtin\"\n\
[[site]]\nname = \"down\"\nhosts = [\"down.test\"]\nupstream = \"{}\"\nstate = \"offline\"\n\
[status]\nhosts = [\"{status_host}\"]\n",
            server_section("https = \"127.0.0.1:0\"\ncerts = \"certs\"\nredirect_https = true\n"),
            origin.url()
        )
    };
    // A status host no certificate covers is a validation error naming it.
    let cfg = dir.path().join("offramp.toml");
    std::fs::write(&cfg, text("status.test")).expect("config");
    let out = cli(&["check", "-c", cfg.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("status.hosts: status host status.test has no certificate"),
        "{}",
        out.stderr
    );

    write_pair(&certs, "status", &ca.leaf(&["status.test"], 90));
    let o = Offramp::start_in(dir, &[]);
    let port = o.https[0].port();
    // Over HTTPS the offline site sends its visitors to the status host over HTTPS.
    let mut t = tls_conn(o.https[0], &ca, "down.test", &[]).expect("down.test handshake");
    let r = https_get(&mut t, "down.test", "/x?y=1");
    assert_eq!(r.status, 302);
    let want = format!(
        "https://status.test:{port}/maintenance/down?from=https%3A%2F%2Fdown.test%2Fx%3Fy%3D1"
    );
    assert_eq!(r.header("location"), Some(want.as_str()));
    // The status host answers with its own certificate.
    let mut t = tls_conn(o.https[0], &ca, "status.test", &[]).expect("status.test handshake");
    let target = &want[want.find("/maintenance").expect("path")..];
    let r = https_get(&mut t, "status.test", target);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("href=\"https://down.test/x?y=1\""),
        "{}",
        r.text()
    );
    // Plain HTTP: the status host moves to HTTPS like a site does.
    let mut c = o.conn();
    let r = c.get("status.test", "/");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://status.test:{port}/").as_str())
    );
    assert_eq!(origin.request_count(), 0);
}

/// The leaf certificate presented for `sni`, and one GET over that connection, with no
/// certificate verification (what `curl -k` sees).
fn insecure_get(addr: SocketAddr, sni: &str, host: &str, path: &str) -> (Vec<u8>, Response) {
    let (cfg, record) = client_config(None, &[b"http/1.1"]);
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let r = https_get(&mut tls, host, path);
    let cert = record.0.lock().unwrap().clone().expect("a certificate");
    (cert, r)
}

/// `offramp_certificate_expiry_timestamp_seconds{name=NAME}` from the admin listener.
fn expiry_gauge(o: &Offramp, name: &str) -> Option<f64> {
    let admin = o.admin.expect("admin listener");
    let text = Conn::open(admin).get("localhost", "/metrics").text();
    let key = format!("offramp_certificate_expiry_timestamp_seconds{{name=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

fn days_from_now(days: i64) -> f64 {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days)).unix_timestamp() as f64
}

#[test]
fn an_expired_certificate_is_served_with_a_warning_not_refused() {
    // A stale pair nobody uses any more, and one that expires soon.
    let mut old = None;
    let s = setup_with("admin = \"127.0.0.1:0\"\n", |ca, certs| {
        let pair = ca.leaf(&["old.test"], -2);
        write_pair(certs, "old", &pair);
        old = Some(pair);
        write_pair(certs, "soon", &ca.leaf(&["soon.test"], 5));
    });
    let old = old.expect("old pair");
    // It started, warned about both, and serves the sites.
    s.o.wait_log(WAIT, "the expired warning", |l| {
        l.contains("old.crt") && l.contains("expired on") && l.contains("still served")
    });
    s.o.wait_log(WAIT, "the expiring-soon warning", |l| {
        l.contains("soon.crt")
            && (l.contains("expires in 4 days") || l.contains("expires in 5 days"))
    });
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[]).expect("a.test handshake");
    assert_eq!(https_get(&mut t, "a.test", "/").status, 200);
    // The expired pair is served as is for its name; clients reject it.
    assert_eq!(presented_cert(s.https(), Some("old.test")), old.2);
    let err = tls_conn(s.https(), &s.ca, "old.test", &[]).expect_err("expired");
    assert!(err.to_lowercase().contains("expired"), "{err}");

    // Prometheus can alert on it.
    let gauge = |name| expiry_gauge(&s.o, name).unwrap_or_else(|| panic!("no gauge for {name}"));
    assert!((gauge("a") - days_from_now(90)).abs() < 300.0);
    assert!((gauge("soon") - days_from_now(5)).abs() < 300.0);
    assert!((gauge("old") - days_from_now(-2)).abs() < 300.0);

    // Reloads are not refused for it, and warn again.
    let warned =
        s.o.count_log(|l| l.contains("old.crt") && l.contains("expired on"));
    let renewed = s.ca.leaf(&["a.test", "down.test"], 60);
    write_pair(&s.certs(), "a", &renewed);
    let out = s.o.cli(&["reload"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(presented_cert(s.https(), Some("a.test")), renewed.2);
    wait_for(WAIT, "the warning again on reload", || {
        (s.o.count_log(|l| l.contains("old.crt") && l.contains("expired on")) > warned)
            .then_some(())
    });
    assert!((gauge("a") - days_from_now(60)).abs() < 300.0);
    // A pair removed from the directory loses its series.
    std::fs::remove_file(s.certs().join("old.crt")).expect("rm");
    std::fs::remove_file(s.certs().join("old.key")).expect("rm");
    assert_eq!(s.o.cli(&["reload"]).code, Some(0));
    wait_for(WAIT, "the old series gone", || {
        expiry_gauge(&s.o, "old").is_none().then_some(())
    });
}

#[test]
fn check_fails_on_an_expired_certificate() {
    let ca = Ca::new();
    let origin = TestOrigin::start("o");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    let cfg = dir.path().join("offramp.toml");
    std::fs::write(&cfg, config_text(&origin, "")).expect("config");
    write_pair(&certs, "a", &ca.leaf(&["a.test", "down.test"], 90));
    write_pair(&certs, "wild", &ca.leaf(&["*.wild.test"], 90));
    write_pair(&certs, "old", &ca.leaf(&["old.test"], -1));
    let out = cli(&["check", "-c", cfg.to_str().expect("utf8")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("old.crt") && out.stderr.contains("expired"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_wildcard_certificate_is_not_valid_for_deeper_names_which_still_route() {
    // Site host `*.wild.test` routes any depth; its `*.wild.test` certificate covers one
    // label only (RFC 6125), so offramp must not present it as valid for a.b.wild.test.
    let s = setup("");
    let mut t = tls_conn(s.https(), &s.ca, "x.wild.test", &[]).expect("one label: valid");
    assert_eq!(https_get(&mut t, "x.wild.test", "/").status, 200);
    let err = tls_conn(s.https(), &s.ca, "a.b.wild.test", &[]).expect_err("two labels");
    assert!(err.contains("not valid for name"), "{err}");
    // No SNI match: the default pair (a.crt) is served, not the wildcard.
    let (cert, r) = insecure_get(s.https(), "a.b.wild.test", "a.b.wild.test", "/deep");
    assert_eq!(cert, s.a.2);
    assert_ne!(cert, s.wild.2);
    // Routing still works, over HTTPS for a client that accepts that, and over HTTP.
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["host"], "a.b.wild.test");
    let r = s.o.get("a.b.wild.test", "/deep");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["target"], "/deep");
}

/// Runs debian/certbot-deploy-hook as certbot would for the lineage directory `live`,
/// pointed at `s`'s certs directory and daemon, the copies owned by us.
fn deploy_hook(s: &Setup, live: &Path) -> CliOut {
    let hook = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/certbot-deploy-hook");
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut cmd = std::process::Command::new("sh");
    cmd.arg(hook)
        .env("RENEWED_LINEAGE", live)
        .env("OFFRAMP_CERTS", s.certs())
        .env("OFFRAMP_CERT_OWNER", uid.to_string())
        .env("OFFRAMP_CERT_GROUP", gid.to_string())
        .env("OFFRAMP_CONFIG", &s.o.config)
        .env("OFFRAMP", bin());
    run_with_timeout(&mut cmd, WAIT)
}

/// A certbot lineage directory (`live/NAME/{fullchain,privkey}.pem`) holding `pair`.
fn lineage(root: &Path, name: &str, crt: &str, key: &str) -> std::path::PathBuf {
    let live = root.join("live").join(name);
    std::fs::create_dir_all(&live).expect("mkdir");
    std::fs::write(live.join("fullchain.pem"), crt).expect("write");
    std::fs::write(live.join("privkey.pem"), key).expect("write");
    live
}

#[test]
fn certbot_deploy_hook_installs_the_renewed_pair_and_reloads() {
    use std::os::unix::fs::MetadataExt;
    let mut s = setup("");
    let le = tempfile::tempdir().expect("tempdir");
    let renewed = s.ca.leaf(&["a.test", "down.test"], 90);
    let live = lineage(le.path(), "a", &renewed.0, &renewed.1);
    let out = deploy_hook(&s, &live);
    assert_eq!(out.code, Some(0), "{out:?}");
    // In force as soon as the hook returns: it ran `offramp reload`.
    assert_eq!(presented_cert(s.https(), Some("a.test")), renewed.2);
    for f in ["a.crt", "a.key"] {
        let meta = std::fs::metadata(s.certs().join(f)).expect("installed");
        assert_eq!(meta.mode() & 0o777, 0o640, "{f}");
        // SAFETY: getuid has no preconditions.
        assert_eq!(meta.uid(), unsafe { libc::getuid() }, "{f}");
    }
    let left: Vec<_> = std::fs::read_dir(s.certs())
        .expect("read certs")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    // A pair offramp refuses (key of another certificate): the hook fails, so certbot
    // reports it, and the certificate in force stays.
    let other = s.ca.leaf(&["a.test", "down.test"], 90);
    let live = lineage(le.path(), "a", &other.0, &renewed.1);
    let out = deploy_hook(&s, &live);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    assert_eq!(presented_cert(s.https(), Some("a.test")), renewed.2);

    // offramp not running: the files are installed for its next start, not an error.
    assert_eq!(s.o.stop(), Some(0));
    let live = lineage(le.path(), "a", &other.0, &other.1);
    let out = deploy_hook(&s, &live);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(s.certs().join("a.crt")).expect("read"),
        other.0
    );
}

#[test]
fn certificates_are_reloaded_on_sighup() {
    // a.crt and a.key are symlinks into a directory offramp does not watch, as with
    // certbot's live/ links into archive/: a renewal there is invisible to the file
    // watch, and SIGHUP (systemctl reload) is what applies it.
    let s = setup_with("", |_, certs| {
        let store = certs.parent().expect("parent").join("store");
        std::fs::create_dir(&store).expect("mkdir store");
        for f in ["a.crt", "a.key"] {
            std::fs::rename(certs.join(f), store.join(f)).expect("move");
            std::os::unix::fs::symlink(store.join(f), certs.join(f)).expect("symlink");
        }
    });
    let pid = s.o.pid();
    assert_eq!(presented_cert(s.https(), Some("a.test")), s.a.2);
    let renewed = s.ca.leaf(&["a.test", "down.test"], 60);
    replace_pair(&s.o.dir.path().join("store"), "a", &renewed);
    // Well past the watch's debounce: nothing noticed it.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(presented_cert(s.https(), Some("a.test")), s.a.2);

    s.o.signal(libc::SIGHUP);
    wait_for(WAIT, "the renewed certificate after SIGHUP", || {
        (presented_cert(s.https(), Some("a.test")) == renewed.2).then_some(())
    });
    s.o.wait_log(WAIT, "the SIGHUP reload", |l| l.contains("SIGHUP received"));
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[]).expect("handshake");
    assert_eq!(https_get(&mut t, "a.test", "/").status, 200);
    assert_eq!(s.o.pid(), pid);
    // And a bad pair arriving the same way is refused on SIGHUP, the good one stays.
    let other = s.ca.leaf(&["a.test", "down.test"], 60);
    std::fs::write(s.o.dir.path().join("store/a.key"), &other.1).expect("write");
    s.o.signal(libc::SIGHUP);
    s.o.wait_log(WAIT, "the refused reload", |l| {
        l.contains("config not applied") || l.contains("does not match")
    });
    assert_eq!(presented_cert(s.https(), Some("a.test")), renewed.2);
}

#[test]
fn sigterm_lets_an_https_request_in_flight_finish() {
    let mut s = setup("");
    let mut t = tls_conn(s.https(), &s.ca, "a.test", &[b"http/1.1"]).expect("handshake");
    let inflight = std::thread::spawn(move || https_get(&mut t, "a.test", "/slow?ms=800"));
    wait_for(WAIT, "the request to reach the upstream", || {
        (s.origin.request_count() == 1).then_some(())
    });
    assert_eq!(s.o.stop(), Some(0), "{}", s.o.log_text());
    let r = inflight.join().expect("client thread");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["target"], "/slow?ms=800");
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");
}

#[test]
fn admin_tls_serves_the_admin_listener_and_the_api_over_tls_only() {
    let s = setup("admin = \"127.0.0.1:0\"\nadmin_tls = true");
    let admin = s.o.admin.expect("admin listener");
    // Verified against the CA, with offramp's own certificate for the name.
    let mut t = tls_conn(admin, &s.ca, "a.test", &[b"http/1.1"]).expect("admin TLS handshake");
    let r = https_get(&mut t, "a.test", "/healthz");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut t = tls_conn(admin, &s.ca, "a.test", &[]).expect("admin TLS handshake");
    assert_eq!(
        https_get(&mut t, "a.test", "/api/v1/incidents").status,
        404,
        "no [api]: 404"
    );
    // Plain HTTP gets nothing on it.
    let mut plain = TcpStream::connect(admin).expect("connect");
    plain.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(plain, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "plain HTTP is not served: {got:?}"
    );
}
