//! The subscription flow's parts without a network: the database side (subscribe,
//! confirm, tokens, the queue and its order), the mails made of events, and the
//! messages built from them.

use serde_json::json;
use time::OffsetDateTime;

use super::mail::{self, Notice};
use super::{page_of, token, Page};
use crate::store::{NewMail, NewSubscriber, Store, Subscribed, SubscriberRow, TokenKind};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

fn new(address: &str, components: &[&str]) -> NewSubscriber {
    NewSubscriber {
        id: token::id().unwrap(),
        address: address.into(),
        components: components.iter().map(|c| c.to_string()).collect(),
        confirm_token: token::token().unwrap(),
        unsub_token: token::token().unwrap(),
        origin: "http://status.test:8080".into(),
    }
}

fn confirm_mail(row: &SubscriberRow) -> NewMail {
    mail::confirmation("Lab <status>", &mail::base(None, &row.origin), row)
}

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
}

#[test]
fn pages_are_exact_paths() {
    assert_eq!(page_of(b"/subscribe"), Some(Page::Subscribe));
    assert_eq!(page_of(b"/subscribe?x"), Some(Page::Subscribe));
    assert_eq!(page_of(b"/subscribe/confirm?token=a"), Some(Page::Confirm));
    assert_eq!(page_of(b"/unsubscribe?token=a"), Some(Page::Unsubscribe));
    assert_eq!(page_of(b"/subscribe/"), None);
    assert_eq!(page_of(b"/unsubscribe/x"), None);
    assert_eq!(page_of(b"/"), None);
}

#[test]
fn subscribing_is_idempotent_and_confirmation_mails_are_rate_limited() {
    let (_d, s) = store();
    let ten = time::Duration::minutes(10);
    let a = new("ann@example.com", &["cloud"]);
    assert_eq!(
        s.subscribe(&a, t(0), ten, confirm_mail).unwrap(),
        Subscribed::New
    );
    assert_eq!(s.mails_queued().unwrap(), 1);
    // Again within 10 minutes: no second mail, the new choice is kept.
    let again = new("ann@example.com", &["mail"]);
    assert_eq!(
        s.subscribe(&again, t(60), ten, confirm_mail).unwrap(),
        Subscribed::Pending { resent: false }
    );
    assert_eq!(s.mails_queued().unwrap(), 1);
    let rows = s.subscribers().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].components, vec!["mail".to_string()]);
    assert_eq!(
        rows[0].id, a.id,
        "the first subscription's ID and tokens stay"
    );
    assert_eq!(rows[0].confirm_token, a.confirm_token);
    // After 10 minutes, once more.
    assert_eq!(
        s.subscribe(&again, t(700), ten, confirm_mail).unwrap(),
        Subscribed::Pending { resent: true }
    );
    assert_eq!(s.mails_queued().unwrap(), 2);
    // Confirmed: nothing changes, nothing is sent.
    assert!(s.confirm_subscriber(&a.id, t(800)).unwrap());
    let other = new("ann@example.com", &[]);
    assert_eq!(
        s.subscribe(&other, t(2000), ten, confirm_mail).unwrap(),
        Subscribed::Confirmed
    );
    assert_eq!(s.mails_queued().unwrap(), 2);
    let rows = s.subscribers().unwrap();
    assert_eq!(rows[0].components, vec!["mail".to_string()]);
    assert_eq!(rows[0].confirmed_at, Some(t(800)));
}

#[test]
fn tokens_find_their_subscriber_only() {
    let (_d, s) = store();
    let ten = time::Duration::minutes(10);
    let a = new("ann@example.com", &[]);
    let b = new("bob@example.com", &[]);
    s.subscribe(&a, t(0), ten, confirm_mail).unwrap();
    s.subscribe(&b, t(0), ten, confirm_mail).unwrap();
    let found = s
        .subscriber_by_token(TokenKind::Confirm, &b.confirm_token)
        .unwrap()
        .unwrap();
    assert_eq!(found.address, "bob@example.com");
    // A confirm token does not unsubscribe, and the other way round.
    assert!(s
        .subscriber_by_token(TokenKind::Unsubscribe, &b.confirm_token)
        .unwrap()
        .is_none());
    assert!(s
        .subscriber_by_token(TokenKind::Confirm, &a.unsub_token)
        .unwrap()
        .is_none());
    assert!(s
        .subscriber_by_token(TokenKind::Confirm, &token::token().unwrap())
        .unwrap()
        .is_none());
    assert!(s.remove_subscriber(&found.id).unwrap());
    assert!(s
        .subscriber_by_token(TokenKind::Confirm, &b.confirm_token)
        .unwrap()
        .is_none());
    assert_eq!(s.mails_queued().unwrap(), 1, "its mails went with it");
    assert_eq!(
        s.remove_subscriber_by_address("ann@example.com").unwrap(),
        Some(a.id.clone())
    );
    assert_eq!(
        s.remove_subscriber_by_address("ann@example.com").unwrap(),
        None
    );
    assert_eq!(s.mails_queued().unwrap(), 0);
}

#[test]
fn the_queue_keeps_each_subscribers_order_and_skips_ahead_for_others() {
    let (_d, s) = store();
    let ten = time::Duration::minutes(10);
    let a = new("ann@example.com", &[]);
    let b = new("bob@example.com", &[]);
    s.subscribe(&a, t(0), ten, confirm_mail).unwrap();
    s.subscribe(&b, t(1), ten, confirm_mail).unwrap();
    let first = s.next_mail().unwrap().unwrap();
    assert_eq!(first.address, "ann@example.com");
    assert_eq!(first.kind, "confirm");
    // Ann's mail waits: Bob's goes first, and Ann's later mails wait behind hers.
    s.target(super::MAIL_TARGET).unwrap();
    let m = |k: &str| NewMail {
        kind: k.into(),
        subject: k.into(),
        text: k.into(),
        html: k.into(),
    };
    s.queue_event_mails(
        super::MAIL_TARGET,
        0,
        &[(a.id.clone(), m("incident.created"))],
        t(2),
    )
    .unwrap();
    s.mail_failed(first.id, "down", t(100)).unwrap();
    let next = s.next_mail().unwrap().unwrap();
    assert_eq!(next.address, "bob@example.com");
    s.mail_done(next.id).unwrap();
    let next = s.next_mail().unwrap().unwrap();
    assert_eq!(
        (next.id, next.attempts, next.next_at),
        (first.id, 1, t(100))
    );
    s.mail_done(next.id).unwrap();
    assert_eq!(s.next_mail().unwrap().unwrap().kind, "incident.created");
}

#[test]
fn pending_subscribers_expire() {
    let (_d, s) = store();
    let ten = time::Duration::minutes(10);
    let a = new("ann@example.com", &[]);
    let b = new("bob@example.com", &[]);
    s.subscribe(&a, t(0), ten, confirm_mail).unwrap();
    s.subscribe(&b, t(0), ten, confirm_mail).unwrap();
    s.confirm_subscriber(&b.id, t(5)).unwrap();
    assert_eq!(s.prune_pending(t(10)).unwrap(), 1);
    let left = s.subscribers().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].address, "bob@example.com");
}

fn row(components: &[&str]) -> SubscriberRow {
    SubscriberRow {
        id: "abc".into(),
        address: "ann@example.com".into(),
        components: components.iter().map(|c| c.to_string()).collect(),
        confirm_token: "c".repeat(64),
        unsub_token: "u".repeat(64),
        origin: "http://status.test".into(),
        created_at: t(0),
        confirmed_at: Some(t(1)),
        confirm_sent_at: None,
    }
}

fn incident_event(kind: &str, components: &[&str]) -> String {
    let comps: Vec<_> = components
        .iter()
        .map(|c| json!({"name": c, "status": "major_outage"}))
        .collect();
    json!({
        "id": "e1", "type": kind, "at": "2027-01-15T08:00:00Z",
        "incident": {
            "id": "inc1", "name": "API <down>", "status": "identified", "impact": "major",
            "components": comps,
            "created_at": "2027-01-15T08:00:00Z", "updated_at": "2027-01-15T08:00:00Z",
            "resolved_at": null,
            "updates": [{"id": "u2", "status": "identified", "message": "Found it & fixing",
                         "at": "2027-01-15T08:05:00Z", "components": comps, "by": "uid 1"}]
        }
    })
    .to_string()
}

#[test]
fn events_become_mails_for_the_subscribers_they_touch() {
    let n = Notice::parse(
        "incident.updated",
        &incident_event("incident.updated", &["api"]),
    )
    .unwrap();
    assert_eq!(n.components, vec!["api".to_string()]);
    assert!(n.wanted_by(&row(&[])));
    assert!(n.wanted_by(&row(&["web", "api"])));
    assert!(!n.wanted_by(&row(&["web"])));
    // Moved from api to web: api's subscribers hear the rest of it.
    let mut moved: serde_json::Value =
        serde_json::from_str(&incident_event("incident.updated", &["web"])).unwrap();
    moved["incident"]["updates"].as_array_mut().unwrap().push(
        json!({"id": "u1", "status": "investigating",
        "message": "m", "at": "2027-01-15T08:00:00Z", "by": "uid 1",
        "components": [{"name": "api", "status": "major_outage"}]}),
    );
    let n2 = Notice::parse("incident.updated", &moved.to_string()).unwrap();
    assert_eq!(n2.components, vec!["web".to_string(), "api".to_string()]);
    let m = n.mail("Lab", "http://status.test", &row(&[]));
    assert_eq!(m.kind, "incident.updated");
    assert_eq!(m.subject, "Lab: API <down> (Identified)");
    assert!(m.text.contains("Found it & fixing"), "{}", m.text);
    assert!(m.text.contains("Affects: api (Major Outage)"), "{}", m.text);
    assert!(
        m.text.contains("http://status.test/incidents/inc1"),
        "{}",
        m.text
    );
    assert!(m.text.contains(&format!(
        "http://status.test/unsubscribe?token={}",
        "u".repeat(64)
    )));
    assert!(
        m.html.contains("API &lt;down&gt;") && !m.html.contains("API <down>"),
        "{}",
        m.html
    );
    assert!(m.html.contains("Found it &amp; fixing"));

    let maint = json!({
        "id": "e2", "type": "maintenance.scheduled", "at": "2027-01-15T08:00:00Z",
        "maintenance": {"id": "m1", "name": "Disks", "status": "scheduled", "sites": ["cloud"],
            "components": ["mail"], "start": "2027-01-16T08:00:00Z", "end": "2027-01-16T10:00:00Z",
            "auto": true, "updates": [{"id": "u", "status": "scheduled", "message": "New disks",
            "at": "2027-01-15T08:00:00Z", "by": "uid 1"}]}
    })
    .to_string();
    let n = Notice::parse("maintenance.scheduled", &maint).unwrap();
    assert_eq!(n.components, vec!["cloud".to_string(), "mail".to_string()]);
    assert!(n.wanted_by(&row(&["mail"])));
    let m = n.mail("Lab", "http://status.test", &row(&["mail"]));
    assert_eq!(m.subject, "Lab: scheduled maintenance: Disks");
    assert!(
        m.text
            .contains("Window: 2027-01-16 08:00 UTC – 2027-01-16 10:00 UTC"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("(mail)"),
        "the footer names the choice: {}",
        m.text
    );

    // Not for subscribers: other types, and bodies that are not the objects.
    for kind in [
        "site.offline",
        "component.updated",
        "maintenance.cancelled",
        "test",
    ] {
        assert!(Notice::parse(kind, &maint).is_none(), "{kind}");
    }
    assert!(Notice::parse("incident.created", "not json").is_none());
    assert!(Notice::parse("incident.created", "{\"incident\": 3}").is_none());
    assert!(Notice::parse("incident.created", "{}").is_none());
}

#[test]
fn messages_are_multipart_alternative_with_one_click_unsubscribe() {
    let n = Notice::parse("incident.created", &incident_event("incident.created", &[])).unwrap();
    let m = n.mail("Lab\nstatus", "http://status.test", &row(&[]));
    assert_eq!(m.subject, "Lab status: new incident: API <down>");
    let q = crate::store::QueuedMail {
        id: 1,
        subscriber: "abc".into(),
        address: "ann@example.com".into(),
        unsub_token: "u".repeat(64),
        origin: "http://status.test".into(),
        kind: m.kind.clone(),
        subject: m.subject.clone(),
        text: m.text.clone(),
        html: m.html.clone(),
        created_at: t(0),
        attempts: 0,
        next_at: t(0),
    };
    let url = mail::unsubscribe_url("http://status.test", &q.unsub_token);
    let msg = mail::message("Status <status@example.test>", &q, &url).unwrap();
    let raw = String::from_utf8(msg.formatted()).unwrap();
    assert!(raw.contains(&format!("List-Unsubscribe: <{url}>")), "{raw}");
    assert!(
        raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
    assert!(raw.contains("To: ann@example.com"), "{raw}");
    assert!(raw.contains("Message-ID: <"), "{raw}");
    assert!(mail::message("not a mailbox", &q, &url).is_err());
    let mut bad = q.clone();
    bad.address = "no at".into();
    assert!(mail::message("status@example.test", &bad, &url).is_err());
}

#[test]
fn confirmation_mail_links_confirm_and_unsubscribe() {
    let r = row(&[]);
    let m = mail::confirmation("Lab", "https://status.example.com", &r);
    assert_eq!(m.kind, "confirm");
    assert!(m.text.contains(&format!(
        "https://status.example.com/subscribe/confirm?token={}",
        "c".repeat(64)
    )));
    assert!(m.text.contains(&format!(
        "https://status.example.com/unsubscribe?token={}",
        "u".repeat(64)
    )));
    assert_eq!(
        mail::base(Some("https://s.example/"), "http://x"),
        "https://s.example"
    );
    assert_eq!(mail::base(None, "http://x:81"), "http://x:81");
}

#[test]
fn backoff_doubles_to_five_minutes() {
    use super::worker::backoff;
    use std::time::Duration;
    assert_eq!(backoff(1), Duration::from_millis(500));
    assert_eq!(backoff(2), Duration::from_secs(1));
    assert_eq!(backoff(4), Duration::from_secs(4));
    assert_eq!(backoff(30), Duration::from_secs(300));
    assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
}
