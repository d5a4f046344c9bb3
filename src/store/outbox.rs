//! The notification outbox (CONTRACT section 11): every event in delivery order, what
//! was last announced of each site, component and maintenance (how far each target
//! has got is `targets`'). Events are written in the same transaction as the change they announce;
//! each target reads them in order from its cursor, so a target that is down for a day
//! costs disk, never memory.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use time::OffsetDateTime;

use super::rows::{ns, sql, time_of, R};
use super::{Store, StoreError};

/// An event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's `id`: the same on every delivery attempt.
    pub uid: String,
    /// `site.offline`, `incident.created`, …
    pub kind: String,
    /// `site`, `incident`, `maintenance` or `component` (what `events` filters on).
    pub class: &'static str,
    pub at: OffsetDateTime,
    /// The JSON delivered.
    pub body: String,
}

/// An event as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the delivery order.
    pub seq: i64,
    pub uid: String,
    pub kind: String,
    pub class: String,
    pub at: OffsetDateTime,
    pub body: String,
}

/// Events with what they announce, written with the change they are about:
/// `announced` entries `(key, Some(value))` set, `(key, None)` forget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announce {
    pub events: Vec<NewEvent>,
    pub announced: Vec<(String, Option<String>)>,
}

impl Announce {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.announced.is_empty()
    }

    /// Adds `other` after these.
    pub fn extend(&mut self, other: Announce) {
        self.events.extend(other.events);
        self.announced.extend(other.announced);
    }
}

/// Inserts `events` and applies `announced` within the caller's transaction.
pub(super) fn write(tx: &Connection, a: &Announce) -> R<()> {
    let (events, announced) = (&a.events, &a.announced);
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO event (uid, type, class, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql)?;
    for e in events {
        ins.execute(params![e.uid, e.kind, e.class, ns(e.at), e.body])
            .map_err(sql)?;
    }
    for (key, value) in announced {
        match value {
            Some(v) => tx.execute(
                "INSERT INTO announced (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, v],
            ),
            None => tx.execute("DELETE FROM announced WHERE key = ?1", [key]),
        }
        .map_err(sql)?;
    }
    Ok(())
}

/// `,site,incident,` for an `instr` test of a class.
pub(super) fn class_list(classes: &[&str]) -> String {
    format!(",{},", classes.join(","))
}

pub(super) fn newest(conn: &Connection) -> R<i64> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM event", [], |r| r.get(0))
        .map_err(sql)
}

impl Store {
    /// Tells delivery that events up to the newest are in the outbox.
    pub(super) fn woke(&self, conn: &Connection) {
        if let Ok(n) = newest(conn) {
            self.wake.send_replace(n);
        }
    }

    /// Changes whenever events are added (the value: the newest `seq`).
    pub fn wake(&self) -> tokio::sync::watch::Receiver<i64> {
        self.wake.subscribe()
    }

    /// Writes events with what they announce, in one transaction whose commit does not
    /// wait for the disk (`synchronous=NORMAL` for this one transaction): atomic and in
    /// order all the same, and durable against a crash of offramp; a power cut may lose
    /// it. For events whose change lives outside the database and is compared again at
    /// start-up; the others go with their change (`save_incident` …).
    pub fn record_events_lazy(&self, a: &Announce) -> Result<(), StoreError> {
        if a.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(|e| self.write_err(e))?;
        let written = (|| {
            let tx = conn.transaction().map_err(|e| self.write_err(e))?;
            write(&tx, a).map_err(|e| self.write_err(e))?;
            tx.commit().map_err(|e| self.write_err(e))
        })();
        // Every other write waits for the disk again, whatever happened.
        let restored = conn
            .execute_batch("PRAGMA synchronous=FULL")
            .map_err(|e| self.write_err(e));
        written?;
        restored?;
        self.woke(&conn);
        Ok(())
    }

    /// What was last announced, by key (`site:NAME`, `component:NAME`, `maintenance:ID`).
    pub fn load_announced(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let conn = self.conn();
        let read = || -> R<BTreeMap<String, String>> {
            let mut st = conn
                .prepare("SELECT key, value FROM announced")
                .map_err(sql)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        };
        read().map_err(|e| self.read_err(e))
    }

    /// Up to `limit` events after `seq`, oldest first.
    pub fn events_after(&self, seq: i64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn();
        let read = || -> R<Vec<StoredEvent>> {
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, uid, type, class, at, body FROM event WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(
                    params![seq, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    },
                )
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, uid, kind, class, at, body) = row.map_err(sql)?;
                out.push(StoredEvent {
                    at: time_of(at, &format!("event {seq}"))?,
                    seq,
                    uid,
                    kind,
                    class,
                    body,
                });
            }
            Ok(out)
        };
        read().map_err(|e| self.read_err(e))
    }
}
