//! One request over any of the four ways a client reaches offramp — plain HTTP/1.1,
//! h2c with prior knowledge, TLS with ALPN `http/1.1`, TLS with ALPN `h2` — each giving
//! the same [`Reply`], and never panicking: a transport that fails says how, so that a
//! test can compare what every transport saw. Certificates are not verified here (the
//! choice of certificate is `tls.rs`'s business). Also a scripted raw upstream.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::find;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    H1,
    H2c,
    TlsH1,
    TlsH2,
}

impl Transport {
    pub const ALL: [Transport; 4] = [
        Transport::H1,
        Transport::H2c,
        Transport::TlsH1,
        Transport::TlsH2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::H1 => "plain-h1",
            Transport::H2c => "h2c",
            Transport::TlsH1 => "tls-h1",
            Transport::TlsH2 => "tls-h2",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Transport::TlsH1 | Transport::TlsH2)
    }

    pub fn scheme(self) -> &'static str {
        if self.tls() {
            "https"
        } else {
            "http"
        }
    }
}

/// A request: `host` is the `Host` header (HTTP/1.1) or `:authority` (HTTP/2).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub target: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

/// What came back: header names lower-cased; `body_error` says why the body is not
/// complete (connection closed early, stream reset, timeout), `None` when it is.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_error: Option<String>,
}

impl Reply {
    /// Every value of a header, in order (name case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        let hit = self.headers.iter().filter(|(k, _)| *k == name);
        hit.map(|(_, v)| v.as_str()).collect()
    }

    /// The values of a header joined by ", " (`None` when absent).
    pub fn header(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        (!all.is_empty()).then(|| all.join(", "))
    }
}

/// Sends `req` over `t` to `addr` (the plain listener for H1/H2c, the TLS one for the
/// others); every wait is bounded by `limit`.
pub fn exchange(
    t: Transport,
    addr: SocketAddr,
    req: &Request,
    limit: Duration,
) -> Result<Reply, String> {
    match t {
        Transport::H1 => {
            let tcp = connect(addr, limit)?;
            h1(tcp, req)
        }
        Transport::TlsH1 => {
            let tcp = connect(addr, limit)?;
            let cfg = client_config(b"http/1.1");
            let conn =
                rustls::ClientConnection::new(cfg, sni(req.host)).map_err(|e| e.to_string())?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            while tls.conn.is_handshaking() {
                tls.conn
                    .complete_io(&mut tls.sock)
                    .map_err(|e| format!("TLS handshake: {e}"))?;
            }
            h1(tls, req)
        }
        Transport::H2c | Transport::TlsH2 => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let connect = async {
                    let tcp = tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| e.to_string())?;
                    if t == Transport::H2c {
                        return h2(tcp, "http", req, limit).await;
                    }
                    let tls = tokio_rustls::TlsConnector::from(client_config(b"h2"))
                        .connect(sni(req.host), tcp)
                        .await
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                        return Err("ALPN did not select h2".to_string());
                    }
                    h2(tls, "https", req, limit).await
                };
                // The body has a bound of its own (`limit`) once the head is in.
                tokio::time::timeout(limit * 2, connect)
                    .await
                    .unwrap_or_else(|_| Err(format!("no response head within {limit:?}")))
            })
        }
    }
}

fn connect(addr: SocketAddr, limit: Duration) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The SNI for a host (port stripped); a name that cannot be one gets `localhost`.
fn sni(host: &str) -> ServerName<'static> {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_string();
    ServerName::try_from(name).unwrap_or_else(|_| ServerName::try_from("localhost").expect("name"))
}

/// Reads more into `buf`; a TLS peer closing without close_notify counts as EOF.
fn fill<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    match s.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e),
    }
}

fn h1<S: Read + Write>(mut s: S, req: &Request) -> Result<Reply, String> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        req.method, req.target, req.host
    );
    for (k, v) in req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|_| s.flush())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let text = loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match fill(&mut s, &mut buf) {
                Ok(0) => {
                    let got = String::from_utf8_lossy(&buf);
                    return Err(format!("closed before a response head ({got:?})"));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading the response head: {e}")),
            }
        };
        let text = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        // Interim 1xx answers (but 101) come before the response: skip them.
        let code = text.split(' ').nth(1).unwrap_or_default();
        if !(code.starts_with('1') && code != "101") {
            break text;
        }
    };
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
        body_error: None,
    };
    if req.method == "HEAD" || matches!(status, 100..=199 | 204 | 304) {
        return Ok(reply);
    }
    let chunked = reply
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    // Content-Length: every value of every field must agree, else read to close.
    let lengths: Vec<Option<usize>> = reply
        .all("content-length")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().parse().ok())
        .collect();
    let length = match lengths.first() {
        Some(&Some(n)) if lengths.iter().all(|l| *l == Some(n)) => Some(n),
        _ => None,
    };
    let (body, error) = if chunked {
        read_chunked(&mut s, &mut buf)
    } else if let Some(n) = length {
        loop {
            if buf.len() >= n {
                buf.truncate(n);
                break (buf, None);
            }
            match fill(&mut s, &mut buf) {
                Ok(0) => {
                    break (
                        buf.clone(),
                        Some(format!("closed after {} of {n} body bytes", buf.len())),
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    break (
                        buf.clone(),
                        Some(format!("after {} of {n} body bytes: {e}", buf.len())),
                    )
                }
            }
        }
    } else {
        loop {
            match fill(&mut s, &mut buf) {
                Ok(0) => break (buf, None),
                Ok(_) => {}
                Err(e) => break (buf, Some(format!("reading a body to close: {e}"))),
            }
        }
    };
    reply.body = body;
    reply.body_error = error;
    Ok(reply)
}

fn read_chunked<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    let line = |s: &mut S, buf: &mut Vec<u8>| loop {
        if let Some(i) = find(buf, b"\r\n") {
            let l = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..i + 2);
            return Ok(l);
        }
        match fill(s, buf) {
            Ok(0) => return Err("closed inside a chunked body".to_string()),
            Ok(_) => {}
            Err(e) => return Err(format!("inside a chunked body: {e}")),
        }
    };
    loop {
        let size_line = match line(s, buf) {
            Ok(l) => l,
            Err(e) => return (body, Some(e)),
        };
        let Ok(size) = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (body, Some(format!("bad chunk size {size_line:?}")));
        };
        if size == 0 {
            loop {
                match line(s, buf) {
                    Ok(l) if l.is_empty() => return (body, None),
                    Ok(_) => {}
                    Err(e) => return (body, Some(e)),
                }
            }
        }
        while buf.len() < size + 2 {
            match fill(s, buf) {
                Ok(0) => {
                    body.extend(buf.drain(..size.min(buf.len())));
                    return (body, Some("closed inside a chunk".to_string()));
                }
                Ok(_) => {}
                Err(e) => return (body, Some(format!("inside a chunk: {e}"))),
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn h2<S>(io: S, scheme: &str, req: &Request<'_>, limit: Duration) -> Result<Reply, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, conn) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.map_err(|e| format!("h2 ready: {e}"))?;
    let mut b = http::Request::builder()
        .method(req.method)
        .uri(format!("{scheme}://{}{}", req.host, req.target));
    for (k, v) in req.headers {
        b = b.header(*k, *v);
    }
    let request = b
        .body(())
        .map_err(|e| format!("building the h2 request: {e}"))?;
    let (resp, _) = client
        .send_request(request, true)
        .map_err(|e| format!("h2 send: {e}"))?;
    let resp = resp.await.map_err(|e| format!("no h2 response: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = resp.into_body();
    let mut data = Vec::new();
    let read = async {
        while let Some(chunk) = body.data().await {
            match chunk {
                Ok(c) => {
                    let _ = body.flow_control().release_capacity(c.len());
                    data.extend_from_slice(&c);
                }
                Err(e) => return Some(format!("h2 body: {e}")),
            }
        }
        None
    };
    let body_error = tokio::time::timeout(limit, read)
        .await
        .unwrap_or_else(|_| Some(format!("body not finished within {limit:?}")));
    Ok(Reply {
        status,
        headers,
        body: data,
        body_error,
    })
}

/// Accepts any certificate (signatures still checked), offering one ALPN protocol.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

/// A self-signed certificate pair (PEM cert, PEM key) for `names`, to put in `certs/`.
pub fn self_signed_pair(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::generate_simple_self_signed(names).expect("certificate");
    (cert.cert.pem(), cert.key_pair.serialize_pem())
}

/// A raw upstream on 127.0.0.1:0: for each request head it reads (bodies are not
/// expected), writes `answer(head)` as is; then closes the connection when `close`,
/// else waits for the next request on it.
pub fn scripted_origin(
    close: bool,
    answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> SocketAddr {
    let answer = Arc::new(answer);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind scripted origin");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = Vec::new();
                loop {
                    let Some(i) = find(&buf, b"\r\n\r\n") else {
                        match fill(&mut s, &mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => continue,
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                    buf.drain(..i + 4);
                    if s.write_all(&answer(&head)).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    addr
}
