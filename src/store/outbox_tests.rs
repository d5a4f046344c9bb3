//! The outbox: order, cursors, giving up, pruning, and what survives a reopen.

use time::{Duration, OffsetDateTime};

use super::{Announce, NewEvent, Store};

fn ev(n: u32, at: OffsetDateTime) -> NewEvent {
    NewEvent {
        uid: format!("e{n}"),
        kind: "site.offline".into(),
        class: "site",
        at,
        body: format!("{{\"n\":{n}}}"),
    }
}

fn write(s: &Store, events: Vec<NewEvent>) {
    s.record_events_lazy(&Announce {
        events,
        announced: vec![("site:app".into(), Some("offline".into()))],
    })
    .unwrap();
}

#[test]
fn targets_start_at_the_newest_event_and_follow_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let s = Store::open(&path).unwrap();
    let t = OffsetDateTime::now_utc();
    write(&s, vec![ev(1, t)]);
    // New to the database: not sent the past.
    let row = s.target("ops").unwrap();
    assert!(s.events_after(row.cursor, 10).unwrap().is_empty());
    write(&s, vec![ev(2, t), ev(3, t)]);
    let got = s.events_after(row.cursor, 10).unwrap();
    assert_eq!(
        got.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(),
        ["e2", "e3"]
    );
    s.delivered("ops", got[0].seq, t).unwrap();
    drop(s);
    // Across a restart: the cursor, the events and what was announced are kept.
    let s = Store::open(&path).unwrap();
    let row = s.target("ops").unwrap();
    assert_eq!(row.delivered, 1);
    let left = s.events_after(row.cursor, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].uid, "e3");
    assert_eq!(s.pending(row.cursor, &["site"]).unwrap(), 1);
    assert_eq!(s.load_announced().unwrap()["site:app"], "offline");
}

#[test]
fn giving_up_takes_the_old_events_only_and_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db")).unwrap();
    let now = OffsetDateTime::now_utc();
    s.target("ops").unwrap();
    write(
        &s,
        vec![
            ev(1, now - Duration::hours(30)),
            ev(2, now - Duration::hours(25)),
            ev(3, now),
        ],
    );
    s.attempt_failed("ops", "HTTP 500", now + Duration::seconds(1))
        .unwrap();
    assert_eq!(s.target("ops").unwrap().attempts, 1);
    let n = s
        .give_up(
            "ops",
            0,
            &["site"],
            now - Duration::hours(24),
            "HTTP 500",
            now,
        )
        .unwrap();
    assert_eq!(n, 2);
    let row = s.target("ops").unwrap();
    assert_eq!(row.attempts, 0);
    let left = s.events_after(row.cursor, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].uid, "e3");
    let (count, failures) = s.failures("ops", 20).unwrap();
    assert_eq!(count, 2);
    assert_eq!(failures[0].uid, "e2", "newest first");
    assert_eq!(failures[0].error, "HTTP 500");
}

#[test]
fn pruning_keeps_what_a_target_still_needs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db")).unwrap();
    let t = OffsetDateTime::now_utc();
    s.target("fast").unwrap();
    s.target("slow").unwrap();
    write(&s, vec![ev(1, t), ev(2, t), ev(3, t)]);
    let all = s.events_after(0, 10).unwrap();
    s.delivered("fast", all[2].seq, t).unwrap();
    s.delivered("slow", all[0].seq, t).unwrap();
    assert_eq!(s.prune_events().unwrap(), 2);
    // A target removed from the config no longer holds events back.
    s.forget_targets_except(&["fast"]).unwrap();
    assert_eq!(s.prune_events().unwrap(), 0);
    // ... and comes back as new: from the newest event on.
    let row = s.target("slow").unwrap();
    assert_eq!(row.delivered, 0);
    assert!(s.events_after(row.cursor, 10).unwrap().is_empty());
}

#[test]
fn mirror_ids_are_kept_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(s.mirror_id("sp", "inc1").unwrap(), None);
    s.set_mirror_id("sp", "inc1", "remote9").unwrap();
    assert_eq!(
        s.mirror_id("sp", "inc1").unwrap().as_deref(),
        Some("remote9")
    );
    assert_eq!(s.mirror_id("other", "inc1").unwrap(), None);
}
