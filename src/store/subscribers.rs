//! E-mail subscribers (CONTRACT section 11) and the queue of mails to send them: a
//! subscriber is pending until it follows its confirmation link; each mail is a row
//! until the mail server took it (or it was given up on). Removing a subscriber drops
//! its queued mails with it.
//!
//! Tokens are looked up by comparing every row's token in constant time (`subtle`),
//! never by an index whose comparisons could tell an attacker how much of a guess was
//! right. A status page has hundreds of subscribers, not millions.

use rusqlite::{params, Connection, OptionalExtension};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::rows::{ns, sql, time_of, R};
use super::{Store, StoreError};

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRow {
    pub id: String,
    /// Lower-cased.
    pub address: String,
    /// Empty: everything.
    pub components: Vec<String>,
    pub confirm_token: String,
    pub unsub_token: String,
    /// Base URL of the links in its mails, as it came to the status page.
    pub origin: String,
    pub created_at: OffsetDateTime,
    /// `None`: not confirmed yet.
    pub confirmed_at: Option<OffsetDateTime>,
    pub confirm_sent_at: Option<OffsetDateTime>,
}

/// A new subscription as asked for (tokens and ID already drawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub id: String,
    pub address: String,
    pub components: Vec<String>,
    pub confirm_token: String,
    pub unsub_token: String,
    pub origin: String,
}

/// What [`Store::subscribe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A new pending subscriber; its confirmation mail is queued.
    New,
    /// Already pending: its choice of components and origin are updated; `resent`:
    /// a confirmation mail was queued again (the last one is older than the limit).
    Pending { resent: bool },
    /// Already confirmed: nothing changed (a form cannot change someone's choice).
    Confirmed,
}

/// A mail to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// `confirm` or the event's type.
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A queued mail with what sending it needs of its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub subscriber: String,
    pub address: String,
    pub unsub_token: String,
    pub origin: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: OffsetDateTime,
    pub attempts: u32,
    pub next_at: OffsetDateTime,
}

/// Which of a subscriber's tokens a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Confirm,
    Unsubscribe,
}

const SUBSCRIBER_COLUMNS: &str = "id, address, components, confirm_token, unsub_token, origin, \
     created_at, confirmed_at, confirm_sent_at";

fn read_subscriber(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSubscriber> {
    Ok(RawSubscriber {
        id: r.get(0)?,
        address: r.get(1)?,
        components: r.get(2)?,
        confirm_token: r.get(3)?,
        unsub_token: r.get(4)?,
        origin: r.get(5)?,
        created_at: r.get(6)?,
        confirmed_at: r.get(7)?,
        confirm_sent_at: r.get(8)?,
    })
}

struct RawSubscriber {
    id: String,
    address: String,
    components: String,
    confirm_token: String,
    unsub_token: String,
    origin: String,
    created_at: i64,
    confirmed_at: Option<i64>,
    confirm_sent_at: Option<i64>,
}

impl RawSubscriber {
    fn check(self) -> R<SubscriberRow> {
        let what = format!("subscriber {}", self.id);
        let components: Vec<String> = serde_json::from_str(&self.components)
            .map_err(|e| format!("{what}: bad components {:?}: {e}", self.components))?;
        Ok(SubscriberRow {
            created_at: time_of(self.created_at, &what)?,
            confirmed_at: self.confirmed_at.map(|v| time_of(v, &what)).transpose()?,
            confirm_sent_at: self
                .confirm_sent_at
                .map(|v| time_of(v, &what))
                .transpose()?,
            id: self.id,
            address: self.address,
            components,
            confirm_token: self.confirm_token,
            unsub_token: self.unsub_token,
            origin: self.origin,
        })
    }
}

fn all_subscribers(conn: &Connection) -> R<Vec<SubscriberRow>> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscriber ORDER BY created_at, id"
        ))
        .map_err(sql)?;
    let rows = st.query_map([], read_subscriber).map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql)?.check()?);
    }
    Ok(out)
}

fn subscriber_by_address(conn: &Connection, address: &str) -> R<Option<SubscriberRow>> {
    conn.query_row(
        &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscriber WHERE address = ?1"),
        [address],
        read_subscriber,
    )
    .optional()
    .map_err(sql)?
    .map(RawSubscriber::check)
    .transpose()
}

fn insert_mail(conn: &Connection, subscriber: &str, m: &NewMail, now: OffsetDateTime) -> R<()> {
    conn.prepare_cached(
        "INSERT INTO mail (subscriber, kind, subject, text, html, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            subscriber,
            m.kind,
            m.subject,
            m.text,
            m.html,
            ns(now)
        ])
    })
    .map(drop)
    .map_err(sql)
}

/// Whether `a` and `b` are the same token, in time that depends on their lengths only.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Store {
    /// Subscribes `s.address`, or finds it subscribed. A new or pending subscriber gets
    /// a confirmation mail made by `confirm` from its row when none was queued in the
    /// last `resend_after`; all in one transaction.
    pub fn subscribe(
        &self,
        s: &NewSubscriber,
        now: OffsetDateTime,
        resend_after: time::Duration,
        confirm: impl FnOnce(&SubscriberRow) -> NewMail,
    ) -> Result<Subscribed, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let run = |tx: &Connection| -> R<Subscribed> {
            let components = serde_json::to_string(&s.components).map_err(|e| e.to_string())?;
            let (row, outcome) = match subscriber_by_address(tx, &s.address)? {
                Some(row) if row.confirmed_at.is_some() => return Ok(Subscribed::Confirmed),
                Some(mut row) => {
                    tx.execute(
                        "UPDATE subscriber SET components = ?2, origin = ?3 WHERE id = ?1",
                        params![row.id, components, s.origin],
                    )
                    .map_err(sql)?;
                    row.components = s.components.clone();
                    row.origin = s.origin.clone();
                    let due = row
                        .confirm_sent_at
                        .is_none_or(|at| now - at >= resend_after);
                    if !due {
                        return Ok(Subscribed::Pending { resent: false });
                    }
                    (row, Subscribed::Pending { resent: true })
                }
                None => {
                    tx.execute(
                        "INSERT INTO subscriber (id, address, components, confirm_token, unsub_token,
                             origin, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            s.id,
                            s.address,
                            components,
                            s.confirm_token,
                            s.unsub_token,
                            s.origin,
                            ns(now)
                        ],
                    )
                    .map_err(sql)?;
                    let row = SubscriberRow {
                        id: s.id.clone(),
                        address: s.address.clone(),
                        components: s.components.clone(),
                        confirm_token: s.confirm_token.clone(),
                        unsub_token: s.unsub_token.clone(),
                        origin: s.origin.clone(),
                        created_at: now,
                        confirmed_at: None,
                        confirm_sent_at: None,
                    };
                    (row, Subscribed::New)
                }
            };
            insert_mail(tx, &row.id, &confirm(&row), now)?;
            tx.execute(
                "UPDATE subscriber SET confirm_sent_at = ?2 WHERE id = ?1",
                params![row.id, ns(now)],
            )
            .map_err(sql)?;
            Ok(outcome)
        };
        let outcome = run(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        Ok(outcome)
    }

    /// The subscriber whose `kind` token is `token`, if any.
    pub fn subscriber_by_token(
        &self,
        kind: TokenKind,
        token: &str,
    ) -> Result<Option<SubscriberRow>, StoreError> {
        let conn = self.conn();
        let all = all_subscribers(&conn).map_err(|e| self.read_err(e))?;
        // Every row is compared, found or not.
        let mut found = None;
        for s in all {
            let theirs = match kind {
                TokenKind::Confirm => &s.confirm_token,
                TokenKind::Unsubscribe => &s.unsub_token,
            };
            if same_token(theirs, token) && found.is_none() {
                found = Some(s);
            }
        }
        Ok(found)
    }

    /// Confirms subscriber `id` (a confirmed one stays as it was). Whether it exists.
    pub fn confirm_subscriber(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE subscriber SET confirmed_at = COALESCE(confirmed_at, ?2) WHERE id = ?1",
            params![id, ns(now)],
        )
        .map(|n| n > 0)
        .map_err(|e| self.write_err(e))
    }

    /// Removes subscriber `id` with its queued mails. Whether it existed.
    pub fn remove_subscriber(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        conn.execute("DELETE FROM subscriber WHERE id = ?1", [id])
            .map(|n| n > 0)
            .map_err(|e| self.write_err(e))
    }

    /// Removes the subscriber of `address` (lower-cased) with its queued mails; its ID,
    /// `None` when there is none.
    pub fn remove_subscriber_by_address(
        &self,
        address: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        conn.query_row(
            "DELETE FROM subscriber WHERE address = ?1 RETURNING id",
            [address],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.write_err(e))
    }

    /// Every subscriber, oldest first.
    pub fn subscribers(&self) -> Result<Vec<SubscriberRow>, StoreError> {
        let conn = self.conn();
        all_subscribers(&conn).map_err(|e| self.read_err(e))
    }

    /// Drops subscribers that did not confirm before `cutoff`. How many.
    pub fn prune_pending(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM subscriber WHERE confirmed_at IS NULL AND created_at < ?1",
            [ns(cutoff)],
        )
        .map(|n| n as u64)
        .map_err(|e| self.write_err(e))
    }

    /// Queues `mails` (subscriber ID, mail) made of the events up to `seq` and moves
    /// target `target`'s cursor there, in one transaction: each event becomes mails
    /// exactly once.
    pub fn queue_event_mails(
        &self,
        target: &str,
        seq: i64,
        mails: &[(String, NewMail)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let run = |tx: &Connection| -> R<()> {
            for (subscriber, m) in mails {
                insert_mail(tx, subscriber, m, now)?;
            }
            tx.execute(
                "UPDATE notify_target SET cursor = MAX(cursor, ?2), attempts = 0, next_at = NULL,
                     last_ok = ?3 WHERE name = ?1",
                params![target, seq, ns(now)],
            )
            .map_err(sql)?;
            Ok(())
        };
        run(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))
    }

    /// Moves target `target`'s cursor (if it has one) to the newest event: what was
    /// announced while mail was off is never mailed.
    pub fn skip_mail_events(&self, target: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE notify_target SET cursor = MAX(cursor, (SELECT COALESCE(MAX(seq), 0) FROM event))
             WHERE name = ?1",
            [target],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }

    /// The mail to send next: of each subscriber's oldest queued mail (a subscriber's
    /// mails go out in order), the one due first.
    pub fn next_mail(&self) -> Result<Option<QueuedMail>, StoreError> {
        let conn = self.conn();
        let read = || -> R<Option<QueuedMail>> {
            let row = conn
                .query_row(
                    "SELECT m.id, m.subscriber, s.address, s.unsub_token, s.origin, m.kind, m.subject,
                         m.text, m.html, m.created_at, m.attempts, m.next_at
                     FROM mail m JOIN subscriber s ON s.id = m.subscriber
                     WHERE m.id = (SELECT MIN(id) FROM mail WHERE subscriber = m.subscriber)
                     ORDER BY m.next_at, m.id LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            (
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, String>(4)?,
                                r.get::<_, String>(5)?,
                            ),
                            (
                                r.get::<_, String>(6)?,
                                r.get::<_, String>(7)?,
                                r.get::<_, String>(8)?,
                                r.get::<_, i64>(9)?,
                                r.get::<_, i64>(10)?,
                                r.get::<_, i64>(11)?,
                            ),
                        ))
                    },
                )
                .optional()
                .map_err(sql)?;
            let Some(((id, subscriber, address, unsub_token, origin, kind), rest)) = row else {
                return Ok(None);
            };
            let (subject, text, html, created, attempts, next) = rest;
            let what = format!("mail {id}");
            Ok(Some(QueuedMail {
                created_at: time_of(created, &what)?,
                next_at: time_of(next, &what)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                id,
                subscriber,
                address,
                unsub_token,
                origin,
                kind,
                subject,
                text,
                html,
            }))
        };
        read().map_err(|e| self.read_err(e))
    }

    /// Mail `id` was sent, or given up on: off the queue.
    pub fn mail_done(&self, id: i64) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute("DELETE FROM mail WHERE id = ?1", [id])
            .map(drop)
            .map_err(|e| self.write_err(e))
    }

    /// An attempt at mail `id` failed; the next is due at `next_at`.
    pub fn mail_failed(
        &self,
        id: i64,
        error: &str,
        next_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE mail SET attempts = attempts + 1, next_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, ns(next_at), error],
        )
        .map(drop)
        .map_err(|e| self.write_err(e))
    }

    /// Mails waiting to be sent.
    pub fn mails_queued(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        conn.query_row("SELECT COUNT(*) FROM mail", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.read_err(e))
    }
}
