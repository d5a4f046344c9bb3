//! Each notification target's progress over the outbox: its cursor, failed attempts
//! and when the next is due, the events it gave up on, and the IDs a mirrored target
//! gave to offramp's records (Statuspage incidents). Pruning the outbox is here too: an
//! event goes once every target is past it.

use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use super::outbox::{class_list, newest};
use super::rows::{ns, sql, time_of, R};
use super::{Store, StoreError};

/// A target's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    pub name: String,
    /// The last event done with (delivered or given up on).
    pub cursor: i64,
    /// Failed attempts at the event after the cursor.
    pub attempts: u32,
    pub next_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_ok: Option<OffsetDateTime>,
    pub delivered: u64,
}

/// An event a target gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRow {
    pub uid: String,
    pub kind: String,
    pub at: OffsetDateTime,
    pub error: String,
    pub failed_at: OffsetDateTime,
}

impl Store {
    /// The target's progress; a target new to the database starts after the newest
    /// event (it is not sent the past).
    pub fn target(&self, name: &str) -> Result<TargetRow, StoreError> {
        let conn = self.conn();
        let get = || -> R<TargetRow> {
            let known: Option<i64> = conn
                .query_row("SELECT 1 FROM notify_target WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            if known.is_none() {
                conn.execute(
                    "INSERT INTO notify_target (name, cursor) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM event))
                     ON CONFLICT (name) DO NOTHING",
                    [name],
                )
                .map_err(sql)?;
            }
            let row = conn
                .query_row(
                    "SELECT cursor, attempts, next_at, last_error, last_ok, delivered FROM notify_target WHERE name = ?1",
                    [name],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    },
                )
                .map_err(sql)?;
            let what = format!("notify target {name}");
            Ok(TargetRow {
                name: name.to_string(),
                cursor: row.0,
                attempts: u32::try_from(row.1).unwrap_or(0),
                next_at: row.2.map(|v| time_of(v, &what)).transpose()?,
                last_error: row.3,
                last_ok: row.4.map(|v| time_of(v, &what)).transpose()?,
                delivered: u64::try_from(row.5).unwrap_or(0),
            })
        };
        get().map_err(|e| self.write_err(e))
    }

    /// Event `seq` reached the target.
    pub fn delivered(&self, name: &str, seq: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE notify_target SET cursor = MAX(cursor, ?2), attempts = 0, next_at = NULL,
                 last_ok = ?3, delivered = delivered + 1 WHERE name = ?1",
            params![name, seq, ns(at)],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }

    /// Writes what a target delivered since its last write: its cursor, `count` more
    /// delivered, the time of the last.
    pub fn progress(
        &self,
        name: &str,
        cursor: i64,
        count: u64,
        last_ok: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE notify_target SET cursor = MAX(cursor, ?2), attempts = 0, next_at = NULL,
                 last_ok = COALESCE(?3, last_ok), delivered = delivered + ?4 WHERE name = ?1",
            params![
                name,
                cursor,
                last_ok.map(ns),
                i64::try_from(count).unwrap_or(i64::MAX)
            ],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }

    /// An attempt failed; the next is due at `next_at`.
    pub fn attempt_failed(
        &self,
        name: &str,
        error: &str,
        next_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE notify_target SET attempts = attempts + 1, next_at = ?2, last_error = ?3 WHERE name = ?1",
            params![name, ns(next_at), error],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }

    /// Gives up on the target's pending events (after `from`, or its cursor if that is
    /// further: what it delivered and could not yet write is not failed) made before `cutoff` (the oldest ones,
    /// in order, up to the first younger one): each is recorded as failed with `error`
    /// and the cursor moves past them. How many there were.
    pub fn give_up(
        &self,
        name: &str,
        from: i64,
        classes: &[&str],
        cutoff: OffsetDateTime,
        error: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let classes = class_list(classes);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let run = |tx: &Connection| -> R<u64> {
            let cursor: i64 = tx
                .query_row(
                    "SELECT cursor FROM notify_target WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?
                .unwrap_or(0)
                .max(from);
            // The first pending event young enough to keep: everything before it goes.
            let keep: Option<i64> = tx
                .query_row(
                    "SELECT MIN(seq) FROM event WHERE seq > ?1 AND at >= ?2",
                    params![cursor, ns(cutoff)],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            let last: Option<i64> = tx
                .query_row(
                    "SELECT MAX(seq) FROM event WHERE seq > ?1 AND seq < COALESCE(?2, 9223372036854775807)",
                    params![cursor, keep],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            let Some(last) = last else { return Ok(0) };
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO notify_failed (target, seq, uid, type, at, error, failed_at)
                     SELECT ?1, seq, uid, type, at, ?4, ?5 FROM event
                     WHERE seq > ?2 AND seq <= ?3 AND instr(?6, ',' || class || ',') > 0",
                    params![name, cursor, last, error, ns(now), classes],
                )
                .map_err(sql)?;
            tx.execute(
                "UPDATE notify_target SET cursor = ?2, attempts = 0, next_at = NULL WHERE name = ?1",
                params![name, last],
            )
            .map_err(sql)?;
            // What `notify list` shows is bounded: the newest 1,000 failures a target.
            tx.execute(
                "DELETE FROM notify_failed WHERE target = ?1 AND seq NOT IN
                     (SELECT seq FROM notify_failed WHERE target = ?1 ORDER BY seq DESC LIMIT 1000)",
                [name],
            )
            .map_err(sql)?;
            Ok(n as u64)
        };
        let n = run(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        Ok(n)
    }

    /// Events after `cursor` of the classes a target takes (what it has still to
    /// deliver).
    pub fn pending(&self, cursor: i64, classes: &[&str]) -> Result<u64, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT COUNT(*) FROM event WHERE seq > ?1 AND instr(?2, ',' || class || ',') > 0",
            params![cursor, class_list(classes)],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.read_err(e))
    }

    /// How many events the target gave up on, and the newest `limit` of them.
    pub fn failures(&self, name: &str, limit: usize) -> Result<(u64, Vec<FailedRow>), StoreError> {
        let conn = self.conn();
        let read = || -> R<(u64, Vec<FailedRow>)> {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM notify_failed WHERE target = ?1",
                    [name],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            let mut st = conn
                .prepare(
                    "SELECT uid, type, at, error, failed_at FROM notify_failed WHERE target = ?1
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(
                    params![name, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (uid, kind, at, error, failed_at) = row.map_err(sql)?;
                out.push(FailedRow {
                    at: time_of(at, &format!("failed event {uid}"))?,
                    failed_at: time_of(failed_at, &format!("failed event {uid}"))?,
                    uid,
                    kind,
                    error,
                });
            }
            Ok((u64::try_from(n).unwrap_or(0), out))
        };
        read().map_err(|e| self.read_err(e))
    }

    /// Drops the events every target is done with; rows in the outbox afterwards.
    pub fn prune_events(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        let run = || -> R<u64> {
            let min: i64 = conn
                .query_row(
                    "SELECT MIN(COALESCE((SELECT MIN(cursor) FROM notify_target), ?1), ?1)",
                    [newest(&conn)?],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            conn.execute("DELETE FROM event WHERE seq <= ?1", [min])
                .map_err(sql)?;
            conn.query_row("SELECT COUNT(*) FROM event", [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(sql)
        };
        run().map_err(|e| self.write_err(e))
    }

    /// Forgets the progress of every target not in `active` (no longer configured): a
    /// target added again later starts afresh, and its events no longer hold the
    /// outbox. Called with the config in force, before anything is announced under it.
    pub fn forget_targets_except(&self, active: &[&str]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let run = |tx: &Connection| -> R<()> {
            let names: Vec<String> = {
                let mut st = tx.prepare("SELECT name FROM notify_target").map_err(sql)?;
                let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            for n in names.iter().filter(|n| !active.contains(&n.as_str())) {
                tx.execute("DELETE FROM notify_target WHERE name = ?1", [n])
                    .map_err(sql)?;
                tx.execute("DELETE FROM notify_failed WHERE target = ?1", [n])
                    .map_err(sql)?;
                tx.execute("DELETE FROM mirror WHERE target = ?1", [n])
                    .map_err(sql)?;
            }
            Ok(())
        };
        run(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))
    }

    /// The remote ID a target gave to local record `local` (a Statuspage incident).
    pub fn mirror_id(&self, target: &str, local: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT remote_id FROM mirror WHERE target = ?1 AND local_id = ?2",
            [target, local],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.read_err(e))
    }

    /// Remembers the remote ID of local record `local` at `target`.
    pub fn set_mirror_id(&self, target: &str, local: &str, remote: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO mirror (target, local_id, remote_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (target, local_id) DO UPDATE SET remote_id = ?3",
            [target, local, remote],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }
}
