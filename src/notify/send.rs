//! One delivery attempt of one event to one target, in the target's format: the
//! request, and what its answer means (delivered, or a failure to retry, with the wait
//! a 429 asks for). URLs and secrets never appear in an error: reqwest's errors are
//! stripped of their URL, and failures are told by status code.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::text::{latest_message, words};
use crate::config::{Notify, NotifyFormat, Statuspage};
use crate::store::Store;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For `notify list` and the log: never the URL or a secret.
    pub error: String,
    /// A 429's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn new(error: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            retry_after: None,
        }
    }
}

/// The HTTP client of one target: its timeout, no redirects (a webhook that moves is
/// an error to see, not to follow), and offramp's own rustls with the system's roots.
pub fn client(target: &Notify) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(true)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(target.timeout)
        .connect_timeout(target.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("offramp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            format!(
                "notify target {}: cannot make an HTTP client: {}",
                target.name,
                e.without_url()
            )
        })
}

/// `sha256=` + lowercase hex of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The wait a `Retry-After` asks for: seconds, or an HTTP date.
fn retry_after(v: &reqwest::header::HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let t = httpdate(s)?;
    let d = t - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<time::OffsetDateTime> {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, f)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Sends `req`; a 2xx is its status code and body.
async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failure> {
    let resp = req.send().await.map_err(|e| {
        let e = e.without_url();
        Failure::new(if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            format!("cannot connect: {}", source_text(&e))
        } else {
            format!("request failed: {}", source_text(&e))
        })
    })?;
    let status = resp.status();
    if status.is_success() {
        // What a 2xx says is only read by the Statuspage mirror (an incident's ID).
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        return Ok((status.as_u16(), body));
    }
    let wait = (status.as_u16() == 429)
        .then(|| {
            resp.headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(retry_after)
        })
        .flatten();
    Err(Failure {
        error: format!("HTTP {}", status.as_u16()),
        retry_after: wait,
    })
}

/// The innermost cause of a reqwest error (its own text says little: "error sending
/// request").
fn source_text(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Delivers `body` (an event's JSON, as stored) to `target`; the status code.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Notify,
    store: Option<&Arc<Store>>,
    body: &str,
) -> Result<u16, Failure> {
    let url = target.url.expose_str();
    let event: Value = serde_json::from_str(body)
        .map_err(|e| Failure::new(format!("unreadable event in the outbox: {e}")))?;
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    let uid = event.get("id").and_then(Value::as_str).unwrap_or("");
    match target.format {
        NotifyFormat::Json => {
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-offramp-event", kind)
                .header("x-offramp-delivery", uid);
            if let Some(secret) = &target.secret {
                req = req.header(
                    "x-offramp-signature",
                    signature(secret.expose(), body.as_bytes()),
                );
            }
            send(req.body(body.to_string())).await.map(|r| r.0)
        }
        NotifyFormat::Slack => {
            let w = words(&event);
            // Slack reads `<…>` as links and mentions (`<!channel>`): what an
            // incident says is escaped as its docs ask (&, <, >).
            let esc = |t: &str| {
                t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            };
            let text = format!("*{}*\n{}", esc(&w.title), esc(&w.message));
            let req = client
                .post(url)
                .header("content-type", "application/json")
                .body(json!({ "text": text }).to_string());
            send(req).await.map(|r| r.0)
        }
        NotifyFormat::Discord => {
            let w = words(&event);
            let mut text = format!("**{}**\n{}", w.title, w.message);
            if text.chars().count() > 2000 {
                text = text.chars().take(1999).collect::<String>() + "…";
            }
            let req = client
                .post(url)
                .header("content-type", "application/json")
                // No `@everyone` or role pings from what an incident says.
                .body(json!({ "content": text, "allowed_mentions": { "parse": [] } }).to_string());
            send(req).await.map(|r| r.0)
        }
        NotifyFormat::Ntfy => {
            let w = words(&event);
            let tag = match kind {
                "site.online" | "incident.resolved" | "maintenance.completed" => "white_check_mark",
                k if k.starts_with("maintenance.") => "wrench",
                _ if w.urgent => "rotating_light",
                _ => "information_source",
            };
            // Header values are ASCII: a title that is not is sent in the body only.
            let title: String = w
                .title
                .chars()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .collect();
            let req = client
                .post(url)
                .header("content-type", "text/plain; charset=utf-8")
                .header("title", title)
                .header("tags", tag)
                .header("priority", if w.urgent { "high" } else { "default" })
                .body(w.message);
            send(req).await.map(|r| r.0)
        }
        NotifyFormat::Statuspage => match &target.statuspage {
            Some(sp) => statuspage(client, target, sp, store, &event).await,
            None => Err(Failure::new("statuspage target without page_id")),
        },
    }
}

/// Statuspage's API root, page and auth header.
fn sp_request(
    client: &reqwest::Client,
    target: &Notify,
    sp: &Statuspage,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let root = target.url.expose_str().trim_end_matches('/');
    client
        .request(method, format!("{root}/pages/{}{path}", sp.page_id))
        .header(
            "authorization",
            format!("OAuth {}", sp.api_key.expose_str()),
        )
        .header("content-type", "application/json")
}

/// Creates the incident mirroring `local` (an incident or maintenance object) at its
/// first event, remembering the ID Statuspage gives it; updates it afterwards.
async fn upsert(
    client: &reqwest::Client,
    target: &Notify,
    sp: &Statuspage,
    store: Option<&Arc<Store>>,
    local: &Value,
    body: Value,
) -> Result<u16, Failure> {
    let local = local.get("id").and_then(Value::as_str).unwrap_or("");
    // Database calls off the delivery runtime's one thread (other targets share it).
    let remote = match store {
        Some(s) => {
            let (s, name, id) = (s.clone(), target.name.clone(), local.to_string());
            tokio::task::spawn_blocking(move || s.mirror_id(&name, &id))
                .await
                .map_err(|e| Failure::new(format!("database task failed: {e}")))?
                .map_err(|e| Failure::new(e.to_string()))?
        }
        None => None,
    };
    if let Some(rid) = remote {
        let req = sp_request(
            client,
            target,
            sp,
            reqwest::Method::PATCH,
            &format!("/incidents/{rid}"),
        );
        return send(req.body(body.to_string())).await.map(|r| r.0);
    }
    let req = sp_request(client, target, sp, reqwest::Method::POST, "/incidents");
    let (status, answer) = send(req.body(body.to_string())).await?;
    let rid = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
    match (rid, store) {
        (Some(rid), Some(s)) => {
            let (s, name, id) = (s.clone(), target.name.clone(), local.to_string());
            match tokio::task::spawn_blocking(move || s.set_mirror_id(&name, &id, &rid)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(target: "offramp::notify", notify = %target.name, "{e}")
                }
                Err(e) => {
                    tracing::error!(target: "offramp::notify", notify = %target.name, "database task failed: {e}")
                }
            }
        }
        (None, _) => {
            tracing::warn!(target: "offramp::notify", notify = %target.name, record = local, "Statuspage answered without an incident id: the next update opens a new one");
        }
        _ => {}
    }
    Ok(status)
}

/// The Statuspage mirror: component statuses, incidents, and maintenance as scheduled
/// incidents. Site events need no call (a site's component event carries its status).
async fn statuspage(
    client: &reqwest::Client,
    target: &Notify,
    sp: &Statuspage,
    store: Option<&Arc<Store>>,
    event: &Value,
) -> Result<u16, Failure> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "component.updated" => {
            let c = &event["component"];
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(id) = sp.components.get(name) else {
                return Ok(204);
            };
            let status = c
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("operational");
            let body = json!({ "component": { "status": status } });
            let req = sp_request(
                client,
                target,
                sp,
                reqwest::Method::PATCH,
                &format!("/components/{id}"),
            );
            send(req.body(body.to_string())).await.map(|r| r.0)
        }
        "incident.created" | "incident.updated" | "incident.resolved" => {
            let i = &event["incident"];
            let mut components = serde_json::Map::new();
            let mut ids = Vec::new();
            for a in i
                .get("components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = a.get("name").and_then(Value::as_str).unwrap_or("");
                if let Some(id) = sp.components.get(name) {
                    ids.push(json!(id));
                    components.insert(
                        id.clone(),
                        a.get("status").cloned().unwrap_or(json!("partial_outage")),
                    );
                }
            }
            let body = json!({ "incident": {
                "name": i.get("name").cloned().unwrap_or(json!("")),
                "status": i.get("status").cloned().unwrap_or(json!("investigating")),
                "impact_override": i.get("impact").cloned().unwrap_or(json!("none")),
                "body": latest_message(i),
                "component_ids": ids,
                "components": components,
            }});
            upsert(client, target, sp, store, i, body).await
        }
        // Scheduled maintenance is an incident with the `scheduled` statuses there.
        k if k.starts_with("maintenance.") => {
            let m = &event["maintenance"];
            let ids: Vec<Value> = ["sites", "components"]
                .iter()
                .flat_map(|key| m.get(*key).and_then(Value::as_array).into_iter().flatten())
                .filter_map(Value::as_str)
                .filter_map(|n| sp.components.get(n))
                .map(|id| json!(id))
                .collect();
            let status = match k {
                "maintenance.started" => "in_progress",
                "maintenance.completed" | "maintenance.cancelled" => "completed",
                _ => match m.get("status").and_then(Value::as_str) {
                    Some("in_progress") => "in_progress",
                    Some("completed" | "cancelled") => "completed",
                    _ => "scheduled",
                },
            };
            let mut body = json!(latest_message(m));
            if k == "maintenance.cancelled" {
                body = json!("This maintenance was cancelled.");
            }
            let body = json!({ "incident": {
                "name": m.get("name").cloned().unwrap_or(json!("")),
                "status": status,
                "scheduled_for": m.get("start").cloned().unwrap_or(Value::Null),
                "scheduled_until": m.get("end").cloned().unwrap_or(Value::Null),
                "body": body,
                "component_ids": ids,
            }});
            upsert(client, target, sp, store, m, body).await
        }
        // `notify test`: a read of the page checks the URL, the page and the key.
        "test" => send(sp_request(client, target, sp, reqwest::Method::GET, ""))
            .await
            .map(|r| r.0),
        _ => Ok(204),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let v = reqwest::header::HeaderValue::from_static("7");
        assert_eq!(retry_after(&v), Some(Duration::from_secs(7)));
        let v = reqwest::header::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(retry_after(&v), Some(Duration::ZERO));
        let v = reqwest::header::HeaderValue::from_static("soon");
        assert_eq!(retry_after(&v), None);
    }
}
