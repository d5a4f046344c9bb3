//! The built-in demo origin (`[demo] listen = ...`): a tiny HTTP/1.1 server so that the
//! example config works with nothing else running. It answers every request with a
//! page showing what it received, including the `X-Forwarded-*` headers offramp added.
//! Not for production; remove `[demo]` once you point sites at real services.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::reply::h1;
use crate::text::html_escape;

const MAX_HEAD: usize = 16 * 1024;

/// Serves the demo page until the process exits.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                tokio::spawn(async move {
                    if let Err(e) = connection(s).await {
                        debug!("demo origin: {e}");
                    }
                });
            }
            Err(e) => {
                debug!("demo origin accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(2048);
    loop {
        // Read one request head.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(60), s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        // Skip a request body (demo answers the same whatever is posted).
        let body_len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut rest = buf.split_off(end);
        buf.clear();
        if rest.len() >= body_len {
            buf = rest.split_off(body_len);
        } else {
            let mut remaining = body_len - rest.len();
            let mut sink = [0u8; 8192];
            while remaining > 0 {
                let n = s.read(&mut sink[..remaining.min(8192)]).await?;
                if n == 0 {
                    return Ok(());
                }
                remaining -= n;
            }
        }
        // A chunked body is not parsed here: answer, then close the connection.
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || get("transfer-encoding").is_some();
        let host = get("host").unwrap_or("-").to_string();
        let mut rows = String::new();
        for (k, v) in &headers {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                html_escape(k),
                html_escape(v)
            ));
        }
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>offramp demo origin</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}}td{{padding:.1rem .6rem;font-family:monospace}}</style></head>\
<body><h1>Hello from {host}</h1><p>This page comes from offramp's <strong>built-in demo origin</strong> \
(<code>[demo]</code> in the config), reached through the proxy. Point your sites' <code>upstream</code> at real \
services and remove <code>[demo]</code> for production.</p><p><code>{rl}</code></p><table>{rows}</table></body></html>\n",
            host = html_escape(&host),
            rl = html_escape(&request_line),
        );
        let mut out = Vec::with_capacity(body.len() + 200);
        h1::status_line(&mut out, 200, None);
        h1::header(&mut out, b"Content-Type", b"text/html; charset=utf-8");
        h1::header(
            &mut out,
            b"Content-Length",
            body.len().to_string().as_bytes(),
        );
        h1::header(&mut out, b"X-Demo-Origin", b"offramp");
        h1::date_header(&mut out);
        h1::end_head(&mut out, !close);
        // One write per response: two small writes would meet Nagle and delayed ACKs.
        if !request_line.starts_with("HEAD ") {
            out.extend_from_slice(body.as_bytes());
        }
        s.write_all(&out).await?;
        if close {
            return Ok(());
        }
    }
}
