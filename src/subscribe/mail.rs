//! What subscribers are sent: the confirmation mail, and one mail for each incident
//! created, updated or resolved and each maintenance scheduled, started or completed
//! that touches their components. Each is plain text with an HTML alternative
//! (`multipart/alternative`), carries RFC 8058's one-click unsubscribe headers
//! (`List-Unsubscribe: <URL>`, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`) and
//! links the same URL in its body. Everything from an event, the config or a visitor is
//! HTML-escaped in the HTML part; subjects are one line.
//!
//! The texts are made when a mail is queued (from the event's JSON, as it is in the
//! outbox); the headers when it is sent.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use serde_json::Value;
use time::OffsetDateTime;

use crate::platform::{ComponentStatus, Impact, IncidentStatus, MaintenanceStatus};
use crate::store::{NewMail, QueuedMail, SubscriberRow};
use crate::text::html_escape as esc;

/// The event types subscribers get a mail for.
pub const EVENT_TYPES: &[&str] = &[
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "maintenance.scheduled",
    "maintenance.started",
    "maintenance.completed",
];

/// How long a confirmation link works (pending subscribers are dropped after it).
pub const CONFIRM_DAYS: i64 = 7;

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// The base of a subscriber's links: `[status] url` when set, else the origin it
/// subscribed on. Without a trailing `/`.
pub fn base(status_url: Option<&str>, s_origin: &str) -> String {
    status_url
        .unwrap_or(s_origin)
        .trim_end_matches('/')
        .to_string()
}

/// `BASE/unsubscribe?token=T`.
pub fn unsubscribe_url(base: &str, token: &str) -> String {
    format!("{base}/unsubscribe?token={token}")
}

/// `BASE/subscribe/confirm?token=T`.
pub fn confirm_url(base: &str, token: &str) -> String {
    format!("{base}/subscribe/confirm?token={token}")
}

/// One line: control characters (a newline in a title) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `2026-12-02 18:00 UTC` of an RFC 3339 time (as it came, when it does not parse).
fn when(v: &Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&fmt).ok())
        .unwrap_or_else(|| s.to_string())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().or_else(|| c.get("name").and_then(Value::as_str)))
        .map(str::to_string)
        .collect()
}

/// The footer both parts end with.
fn footer(title: &str, s: &SubscriberRow, unsubscribe: &str) -> (String, String) {
    let what = match s.components.is_empty() {
        true => "every component".to_string(),
        false => s.components.join(", "),
    };
    let text = format!(
        "\n-- \nYou get this mail because {} subscribed to updates of {} ({what}).\nUnsubscribe: {unsubscribe}\n",
        s.address,
        one_line(title)
    );
    let html = format!(
        "<hr style=\"border:0;border-top:1px solid #dfe3e8;margin:1.5rem 0 .8rem\">\
<p style=\"color:#5e6c7a;font-size:13px\">You get this mail because {} subscribed to updates of {} ({}).<br>\
<a href=\"{u}\" style=\"color:#0b63c5\">Unsubscribe</a></p>",
        esc(&s.address),
        esc(&one_line(title)),
        esc(&what),
        u = esc(unsubscribe),
    );
    (text, html)
}

fn html_doc(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head>\
<body style=\"margin:0;padding:1.5rem 1rem;background:#f6f7f9;color:#1d2125;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif\">\
<div style=\"max-width:40rem;margin:0 auto;background:#fff;border:1px solid #dfe3e8;border-radius:8px;padding:1.2rem 1.4rem\">{inner}</div></body></html>\n",
        esc(title)
    )
}

/// The mail asking `s` to confirm.
pub fn confirmation(title: &str, base: &str, s: &SubscriberRow) -> NewMail {
    let title = one_line(title);
    let confirm = confirm_url(base, &s.confirm_token);
    let unsubscribe = unsubscribe_url(base, &s.unsub_token);
    let subject = format!("{title}: confirm your subscription");
    let (ft, fh) = footer(&title, s, &unsubscribe);
    let text = format!(
        "Someone, probably you, asked to get mail about incidents and maintenance from {title} \
at {base}.\n\nTo confirm, open this link and press Confirm:\n{confirm}\n\n\
Nothing is sent until you do; the link works for {CONFIRM_DAYS} days. \
If you did not ask for this, ignore this mail.\n{ft}"
    );
    let html = html_doc(
        &subject,
        &format!(
            "<h1 style=\"font-size:20px;margin:0 0 1rem\">Confirm your subscription</h1>\
<p>Someone, probably you, asked to get mail about incidents and maintenance from {t} at {b}.</p>\
<p><a href=\"{c}\" style=\"display:inline-block;background:#0b63c5;color:#fff;padding:.5rem 1rem;border-radius:6px;text-decoration:none;font-weight:600\">Confirm</a></p>\
<p style=\"color:#5e6c7a\">Or open {c}<br>Nothing is sent until you do; the link works for {CONFIRM_DAYS} days. \
If you did not ask for this, ignore this mail.</p>{fh}",
            t = esc(&title),
            b = esc(base),
            c = esc(&confirm),
        ),
    );
    NewMail {
        kind: "confirm".into(),
        subject,
        text,
        html,
    }
}

/// An event subscribers are told about, read from its outbox JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: String,
    /// The components it touches (an incident's affected components, now or in any
    /// of its updates; a maintenance's sites and components).
    pub components: Vec<String>,
    /// The incident or maintenance object.
    record: Value,
}

impl Notice {
    /// `None` for an event subscribers are not sent, or a body that is not the object
    /// it should be.
    pub fn parse(kind: &str, body: &str) -> Option<Notice> {
        if !EVENT_TYPES.contains(&kind) {
            return None;
        }
        let v: Value = serde_json::from_str(body).ok()?;
        let (record, components) = if kind.starts_with("incident.") {
            let i = v.get("incident")?.clone();
            // What it affects now and what it affected before: a subscriber told of
            // an incident hears the rest of it when its components change.
            let mut c = names(i.get("components").unwrap_or(&Value::Null));
            for u in i
                .get("updates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for n in names(u.get("components").unwrap_or(&Value::Null)) {
                    if !c.contains(&n) {
                        c.push(n);
                    }
                }
            }
            (i, c)
        } else {
            let m = v.get("maintenance")?.clone();
            let mut c = names(m.get("sites").unwrap_or(&Value::Null));
            c.extend(names(m.get("components").unwrap_or(&Value::Null)));
            (m, c)
        };
        if !record.is_object() {
            return None;
        }
        Some(Notice {
            kind: kind.to_string(),
            components,
            record,
        })
    }

    /// Whether subscriber `s` wants it: it chose no components, or one this touches.
    pub fn wanted_by(&self, s: &SubscriberRow) -> bool {
        s.components.is_empty() || s.components.iter().any(|c| self.components.contains(c))
    }

    /// The mail telling `s`.
    pub fn mail(&self, title: &str, base: &str, s: &SubscriberRow) -> NewMail {
        let title = one_line(title);
        let r = &self.record;
        let id = str_of(r, "id");
        let name = one_line(str_of(r, "name"));
        let details = format!("{base}/incidents/{id}");
        let unsubscribe = unsubscribe_url(base, &s.unsub_token);
        let latest = r
            .get("updates")
            .and_then(Value::as_array)
            .and_then(|u| u.first())
            .cloned()
            .unwrap_or(Value::Null);
        let message = str_of(&latest, "message");
        let (subject, heading, facts) = if self.kind.starts_with("incident.") {
            let status = IncidentStatus::parse(str_of(r, "status")).map_or("", |s| s.label());
            let impact = Impact::parse(str_of(r, "impact")).map_or("", |s| s.label());
            let subject = match self.kind.as_str() {
                "incident.created" => format!("{title}: new incident: {name}"),
                "incident.resolved" => format!("{title}: resolved: {name}"),
                _ => format!("{title}: {name} ({status})"),
            };
            let mut facts = vec![format!("Status: {status}"), format!("Impact: {impact}")];
            let affected: Vec<String> = r
                .get("components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let st = ComponentStatus::parse(str_of(c, "status")).map_or("", |s| s.label());
                    format!("{} ({st})", str_of(c, "name"))
                })
                .collect();
            if !affected.is_empty() {
                facts.push(format!("Affects: {}", affected.join(", ")));
            }
            (subject, name.clone(), facts)
        } else {
            let status = MaintenanceStatus::parse(str_of(r, "status")).map_or("", |s| s.label());
            let subject = match self.kind.as_str() {
                "maintenance.scheduled" => format!("{title}: scheduled maintenance: {name}"),
                "maintenance.started" => format!("{title}: maintenance in progress: {name}"),
                _ => format!("{title}: maintenance completed: {name}"),
            };
            let mut facts = vec![
                format!("Status: {status}"),
                format!(
                    "Window: {} – {}",
                    when(r.get("start").unwrap_or(&Value::Null)),
                    when(r.get("end").unwrap_or(&Value::Null))
                ),
            ];
            if !self.components.is_empty() {
                facts.push(format!("Affects: {}", self.components.join(", ")));
            }
            (subject, name.clone(), facts)
        };
        let update_status = str_of(&latest, "status");
        let update_label = IncidentStatus::parse(update_status)
            .map(|s| s.label())
            .or_else(|_| MaintenanceStatus::parse(update_status).map(|s| s.label()))
            .unwrap_or("");
        let update_at = when(latest.get("at").unwrap_or(&Value::Null));
        let (ft, fh) = footer(&title, s, &unsubscribe);
        let mut text = format!("{heading}\n\n{}\n", facts.join("\n"));
        if !message.is_empty() {
            text.push_str(&format!("\n{update_label} ({update_at}):\n{message}\n"));
        }
        text.push_str(&format!("\nDetails: {details}\n{ft}"));
        let facts_html: Vec<String> = facts.iter().map(|f| esc(f)).collect();
        let mut inner = format!(
            "<h1 style=\"font-size:20px;margin:0 0 .6rem\">{}</h1><p style=\"color:#5e6c7a;margin:0 0 1rem\">{}</p>",
            esc(&heading),
            facts_html.join("<br>")
        );
        if !message.is_empty() {
            inner.push_str(&format!(
                "<p style=\"margin:.2rem 0\"><b>{}</b> <span style=\"color:#5e6c7a\">{}</span></p>\
<p style=\"white-space:pre-wrap;margin:.2rem 0 1rem\">{}</p>",
                esc(update_label),
                esc(&update_at),
                esc(message)
            ));
        }
        inner.push_str(&format!(
            "<p><a href=\"{d}\" style=\"color:#0b63c5\">Details on the status page</a></p>{fh}",
            d = esc(&details)
        ));
        NewMail {
            kind: self.kind.clone(),
            html: html_doc(&subject, &inner),
            subject,
            text,
        }
    }
}

/// The message for queued mail `m` from `from` (`[smtp] from`), with the one-click
/// unsubscribe headers pointing at `unsubscribe`.
pub fn message(from: &str, m: &QueuedMail, unsubscribe: &str) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("[smtp] from {from:?} is not a mailbox: {e}"))?;
    let to: Address = m
        .address
        .parse()
        .map_err(|e| format!("the subscriber's address is refused: {e}"))?;
    Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(one_line(&m.subject))
        .message_id(None)
        .raw_header(HeaderValue::new(
            LIST_UNSUBSCRIBE,
            format!("<{unsubscribe}>"),
        ))
        .raw_header(HeaderValue::new(
            LIST_UNSUBSCRIBE_POST,
            "List-Unsubscribe=One-Click".into(),
        ))
        .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()))
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| format!("the mail cannot be built: {e}"))
}
