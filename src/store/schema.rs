//! The database schema as forward-only migrations: migration N (1-based) brings a
//! database from `user_version` N-1 to N. A released migration is never edited; a
//! change of schema is a new entry at the end.

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[
    // 1: incidents, scheduled maintenance and component statuses set through the API.
    "
    CREATE TABLE incident (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        impact      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,   -- unix time, nanoseconds
        updated_at  INTEGER NOT NULL,
        resolved_at INTEGER
    );
    CREATE TABLE incident_component (
        incident_id TEXT NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        PRIMARY KEY (incident_id, name)
    );
    CREATE TABLE incident_update (
        id          TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL REFERENCES incident(id) ON DELETE CASCADE,
        status      TEXT NOT NULL,
        message     TEXT NOT NULL,
        at          INTEGER NOT NULL,
        components  TEXT NOT NULL,      -- JSON array of {name, status}
        by_whom     TEXT NOT NULL
    );
    CREATE INDEX incident_update_by_incident ON incident_update (incident_id, at);
    CREATE TABLE maintenance (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,      -- scheduled | completed | cancelled (in_progress follows the clock)
        sites       TEXT NOT NULL,      -- JSON array of site names
        components  TEXT NOT NULL,      -- JSON array of component names
        start_at    INTEGER NOT NULL,
        end_at      INTEGER NOT NULL,
        auto        INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE maintenance_update (
        id             TEXT PRIMARY KEY,
        maintenance_id TEXT NOT NULL REFERENCES maintenance(id) ON DELETE CASCADE,
        status         TEXT NOT NULL,
        message        TEXT NOT NULL,
        at             INTEGER NOT NULL,
        by_whom        TEXT NOT NULL
    );
    CREATE INDEX maintenance_update_by_maintenance ON maintenance_update (maintenance_id, at);
    CREATE TABLE component_status (
        name    TEXT PRIMARY KEY,
        status  TEXT NOT NULL,
        at      INTEGER NOT NULL,
        by_whom TEXT NOT NULL
    );
    ",
    // 2: uptime per site and UTC day, and the Alertmanager alerts firing.
    "
    CREATE TABLE uptime (
        site     TEXT NOT NULL,
        day      TEXT NOT NULL,         -- YYYY-MM-DD, UTC
        up_ms    INTEGER NOT NULL,
        down_ms  INTEGER NOT NULL,
        PRIMARY KEY (site, day)
    );
    CREATE TABLE alert (
        fingerprint TEXT PRIMARY KEY,
        component   TEXT NOT NULL,
        status      TEXT NOT NULL,
        summary     TEXT NOT NULL,
        since       INTEGER NOT NULL,
        incident_id TEXT
    );
    ",
];

/// The schema version this offramp writes.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}
