//! Rows to the platform's types and back. Every value read is checked: a word that is
//! not one of its type's, a time out of range or bad JSON is an error naming the row,
//! never a panic.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use time::OffsetDateTime;

use super::SetStatus;
use crate::platform::model::MaintenanceUpdate;
use crate::platform::{
    Affected, ComponentStatus, Impact, Incident, IncidentStatus, IncidentUpdate, Maintenance,
    MaintenanceStatus,
};

pub(super) type R<T> = Result<T, String>;

pub(super) fn ns(t: OffsetDateTime) -> i64 {
    // Times offramp makes are within i64 nanoseconds (years 1678..2262); clamp anyway.
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

pub(super) fn time_of(v: i64, what: &str) -> R<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v))
        .map_err(|e| format!("{what}: bad time {v}: {e}"))
}

pub(super) fn word<T>(
    s: &str,
    what: &str,
    parse: impl Fn(&str) -> Result<T, crate::platform::model::UnknownWord>,
) -> R<T> {
    parse(s).map_err(|e| format!("{what}: {e}"))
}

pub(super) fn sql(e: rusqlite::Error) -> String {
    e.to_string()
}

pub fn load_incidents(conn: &Connection) -> R<Vec<Incident>> {
    let mut out = Vec::new();
    let mut st = conn
        .prepare(
            "SELECT id, name, status, impact, created_at, updated_at, resolved_at
             FROM incident ORDER BY created_at DESC, id",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (id, name, status, impact, created, updated, resolved) = row.map_err(sql)?;
        let what = format!("incident {id}");
        out.push(Incident {
            status: word(&status, &what, IncidentStatus::parse)?,
            impact: word(&impact, &what, Impact::parse)?,
            components: incident_components(conn, &id)?,
            created_at: time_of(created, &what)?,
            updated_at: time_of(updated, &what)?,
            resolved_at: resolved.map(|v| time_of(v, &what)).transpose()?,
            updates: incident_updates(conn, &id)?,
            name,
            id,
        });
    }
    Ok(out)
}

fn incident_components(conn: &Connection, id: &str) -> R<Vec<Affected>> {
    let mut st = conn
        .prepare_cached(
            "SELECT name, status FROM incident_component WHERE incident_id = ?1 ORDER BY position",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, status) = row.map_err(sql)?;
        let status = word(&status, &format!("incident {id}"), ComponentStatus::parse)?;
        out.push(Affected { name, status });
    }
    Ok(out)
}

fn incident_updates(conn: &Connection, id: &str) -> R<Vec<IncidentUpdate>> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, status, message, at, components, by_whom FROM incident_update
             WHERE incident_id = ?1 ORDER BY at DESC, rowid DESC",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (uid, status, message, at, components, by) = row.map_err(sql)?;
        let what = format!("update {uid} of incident {id}");
        out.push(IncidentUpdate {
            status: word(&status, &what, IncidentStatus::parse)?,
            at: time_of(at, &what)?,
            components: serde_json::from_str(&components).map_err(|e| format!("{what}: {e}"))?,
            id: uid,
            message,
            by,
        });
    }
    Ok(out)
}

pub fn save_incident(conn: &Connection, i: &Incident) -> R<()> {
    conn.execute(
        "INSERT INTO incident (id, name, status, impact, created_at, updated_at, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = ?2, status = ?3, impact = ?4,
             updated_at = ?6, resolved_at = ?7",
        params![
            i.id,
            i.name,
            i.status.api(),
            i.impact.api(),
            ns(i.created_at),
            ns(i.updated_at),
            i.resolved_at.map(ns),
        ],
    )
    .map_err(sql)?;
    conn.execute(
        "DELETE FROM incident_component WHERE incident_id = ?1",
        [&i.id],
    )
    .map_err(sql)?;
    for (pos, c) in i.components.iter().enumerate() {
        conn.execute(
            "INSERT INTO incident_component (incident_id, position, name, status)
             VALUES (?1, ?2, ?3, ?4)",
            params![i.id, pos as i64, c.name, c.status.api()],
        )
        .map_err(sql)?;
    }
    for u in &i.updates {
        let components = serde_json::to_string(&u.components).map_err(|e| e.to_string())?;
        conn.execute(
            "INSERT INTO incident_update (id, incident_id, status, message, at, components, by_whom)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            params![u.id, i.id, u.status.api(), u.message, ns(u.at), components, u.by],
        )
        .map_err(sql)?;
    }
    Ok(())
}

pub fn load_maintenances(conn: &Connection) -> R<Vec<Maintenance>> {
    let mut st = conn
        .prepare(
            "SELECT id, name, status, sites, components, start_at, end_at, auto, created_at, updated_at
             FROM maintenance ORDER BY start_at DESC, id",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                (r.get::<_, i64>(5)?, r.get::<_, i64>(6)?),
                r.get::<_, bool>(7)?,
                (r.get::<_, i64>(8)?, r.get::<_, i64>(9)?),
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, status, sites, components, (start, end), auto, (created, updated)) =
            row.map_err(sql)?;
        let what = format!("maintenance {id}");
        out.push(Maintenance {
            status: word(&status, &what, MaintenanceStatus::parse)?,
            sites: serde_json::from_str(&sites).map_err(|e| format!("{what}: {e}"))?,
            components: serde_json::from_str(&components).map_err(|e| format!("{what}: {e}"))?,
            start: time_of(start, &what)?,
            end: time_of(end, &what)?,
            auto,
            created_at: time_of(created, &what)?,
            updated_at: time_of(updated, &what)?,
            updates: maintenance_updates(conn, &id)?,
            name,
            id,
        });
    }
    Ok(out)
}

fn maintenance_updates(conn: &Connection, id: &str) -> R<Vec<MaintenanceUpdate>> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, status, message, at, by_whom FROM maintenance_update
             WHERE maintenance_id = ?1 ORDER BY at DESC, rowid DESC",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (uid, status, message, at, by) = row.map_err(sql)?;
        let what = format!("update {uid} of maintenance {id}");
        out.push(MaintenanceUpdate {
            status: word(&status, &what, MaintenanceStatus::parse)?,
            at: time_of(at, &what)?,
            id: uid,
            message,
            by,
        });
    }
    Ok(out)
}

pub fn save_maintenance(conn: &Connection, m: &Maintenance) -> R<()> {
    let sites = serde_json::to_string(&m.sites).map_err(|e| e.to_string())?;
    let components = serde_json::to_string(&m.components).map_err(|e| e.to_string())?;
    conn.execute(
        "INSERT INTO maintenance (id, name, status, sites, components, start_at, end_at, auto, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET name = ?2, status = ?3, sites = ?4, components = ?5,
             start_at = ?6, end_at = ?7, auto = ?8, updated_at = ?10",
        params![
            m.id,
            m.name,
            m.status.api(),
            sites,
            components,
            ns(m.start),
            ns(m.end),
            m.auto,
            ns(m.created_at),
            ns(m.updated_at),
        ],
    )
    .map_err(sql)?;
    for u in &m.updates {
        conn.execute(
            "INSERT INTO maintenance_update (id, maintenance_id, status, message, at, by_whom)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            params![u.id, m.id, u.status.api(), u.message, ns(u.at), u.by],
        )
        .map_err(sql)?;
    }
    Ok(())
}

pub fn load_component_statuses(conn: &Connection) -> R<BTreeMap<String, SetStatus>> {
    let mut st = conn
        .prepare("SELECT name, status, at, by_whom FROM component_status")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(sql)?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (name, status, at, by) = row.map_err(sql)?;
        let what = format!("component {name}");
        let set = SetStatus {
            status: word(&status, &what, ComponentStatus::parse)?,
            at: time_of(at, &what)?,
            by,
        };
        out.insert(name, set);
    }
    Ok(out)
}

pub fn set_component_status(conn: &Connection, name: &str, s: Option<&SetStatus>) -> R<()> {
    match s {
        Some(s) => conn
            .execute(
                "INSERT INTO component_status (name, status, at, by_whom) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET status = ?2, at = ?3, by_whom = ?4",
                params![name, s.status.api(), ns(s.at), s.by],
            )
            .map(drop),
        None => conn
            .execute("DELETE FROM component_status WHERE name = ?1", [name])
            .map(drop),
    }
    .map_err(sql)
}
