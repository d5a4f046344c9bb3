//! The rows of health and alerts: uptime per site and UTC day (milliseconds up and
//! down, added to as time passes and pruned past `[status] uptime_days`), and the
//! Alertmanager alerts firing (so a restart keeps what Alertmanager will not resend
//! until its repeat interval).

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use time::{Date, OffsetDateTime};

use super::rows::{ns, save_incident, sql, time_of, word, R};
use super::Store;
pub use crate::platform::uptime::UptimeDay;
use crate::platform::{ComponentStatus, Incident};

/// An Alertmanager alert that is firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub fingerprint: String,
    pub component: String,
    pub status: ComponentStatus,
    pub summary: String,
    pub since: OffsetDateTime,
    /// The incident it opened (`[alerts] incidents = true`).
    pub incident: Option<String>,
}

fn day_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn day_of(s: &str) -> R<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, f).map_err(|e| format!("uptime row: bad day {s:?}: {e}"))
}

pub(super) fn load_alerts(conn: &Connection) -> R<BTreeMap<String, AlertRow>> {
    let mut st = conn
        .prepare("SELECT fingerprint, component, status, summary, since, incident_id FROM alert")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .map_err(sql)?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (fingerprint, component, status, summary, since, incident) = row.map_err(sql)?;
        let what = format!("alert {fingerprint}");
        let a = AlertRow {
            status: word(&status, &what, ComponentStatus::parse)?,
            since: time_of(since, &what)?,
            fingerprint: fingerprint.clone(),
            component,
            summary,
            incident,
        };
        out.insert(fingerprint, a);
    }
    Ok(out)
}

impl Store {
    /// Every site's uptime from `from` on: site → days, oldest first.
    pub fn load_uptime(
        &self,
        from: Date,
    ) -> Result<BTreeMap<String, Vec<UptimeDay>>, super::StoreError> {
        let conn = self.conn();
        let read = || -> R<BTreeMap<String, Vec<UptimeDay>>> {
            let mut st = conn
                .prepare("SELECT site, day, up_ms, down_ms FROM uptime WHERE day >= ?1 ORDER BY site, day")
                .map_err(sql)?;
            let rows = st
                .query_map([day_text(from)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(sql)?;
            let mut out: BTreeMap<String, Vec<UptimeDay>> = BTreeMap::new();
            for row in rows {
                let (site, day, up, down) = row.map_err(sql)?;
                out.entry(site).or_default().push(UptimeDay {
                    day: day_of(&day)?,
                    up_ms: u64::try_from(up).unwrap_or(0),
                    down_ms: u64::try_from(down).unwrap_or(0),
                });
            }
            Ok(out)
        };
        read().map_err(|e| self.read_err(e))
    }

    /// Adds time up and down to sites' days, and drops the days before `keep_from`, in
    /// one transaction.
    pub fn add_uptime(
        &self,
        rows: &[(String, UptimeDay)],
        keep_from: Date,
    ) -> Result<(), super::StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let write = |tx: &Connection| -> rusqlite::Result<()> {
            let mut st = tx.prepare_cached(
                "INSERT INTO uptime (site, day, up_ms, down_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (site, day) DO UPDATE SET up_ms = up_ms + ?3, down_ms = down_ms + ?4",
            )?;
            for (site, d) in rows {
                let up = i64::try_from(d.up_ms).unwrap_or(i64::MAX);
                let down = i64::try_from(d.down_ms).unwrap_or(i64::MAX);
                st.execute(params![site, day_text(d.day), up, down])?;
            }
            tx.execute("DELETE FROM uptime WHERE day < ?1", [day_text(keep_from)])?;
            Ok(())
        };
        write(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))
    }

    /// Records that alert `fingerprint` fires (`Some`) or no longer does (`None`), with
    /// the incident it opens or resolves, in one transaction.
    pub fn save_alert(
        &self,
        fingerprint: &str,
        alert: Option<&AlertRow>,
        incident: Option<&Incident>,
        a: &super::Announce,
    ) -> Result<(), super::StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        let write = |tx: &Connection| -> R<()> {
            match alert {
                Some(a) => tx
                    .execute(
                        "INSERT INTO alert (fingerprint, component, status, summary, since, incident_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (fingerprint) DO UPDATE SET component = ?2, status = ?3,
                             summary = ?4, incident_id = ?6",
                        params![fingerprint, a.component, a.status.api(), a.summary, ns(a.since), a.incident],
                    )
                    .map(drop),
                None => tx
                    .execute("DELETE FROM alert WHERE fingerprint = ?1", [fingerprint])
                    .map(drop),
            }
            .map_err(sql)?;
            if let Some(i) = incident {
                save_incident(tx, i)?;
            }
            super::outbox::write(tx, a)
        };
        write(&tx).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        self.woke(&conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_adds_up_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let d = |n: u8| Date::from_calendar_date(2026, time::Month::December, n).unwrap();
        let row = |day, up, down| {
            (
                "cloud".to_string(),
                UptimeDay {
                    day,
                    up_ms: up,
                    down_ms: down,
                },
            )
        };
        store
            .add_uptime(&[row(d(1), 1000, 0), row(d(2), 500, 250)], d(1))
            .unwrap();
        store.add_uptime(&[row(d(2), 500, 250)], d(2)).unwrap();
        let got = store.load_uptime(d(1)).unwrap();
        assert_eq!(
            got["cloud"],
            vec![UptimeDay {
                day: d(2),
                up_ms: 1000,
                down_ms: 500
            }]
        );
    }

    #[test]
    fn alerts_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open(&path).unwrap();
        let a = AlertRow {
            fingerprint: "f1".into(),
            component: "db".into(),
            status: ComponentStatus::MajorOutage,
            summary: "DB down".into(),
            since: OffsetDateTime::UNIX_EPOCH,
            incident: None,
        };
        store
            .save_alert("f1", Some(&a), None, &Default::default())
            .unwrap();
        store
            .save_alert(
                "f2",
                Some(&AlertRow {
                    fingerprint: "f2".into(),
                    ..a.clone()
                }),
                None,
                &Default::default(),
            )
            .unwrap();
        store
            .save_alert("f2", None, None, &Default::default())
            .unwrap();
        drop(store);
        let loaded = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(loaded.alerts.len(), 1);
        assert_eq!(loaded.alerts["f1"], a);
    }
}
