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
    // 3: the notification outbox: every event in delivery order, what was last announced
    // of each site, component and maintenance, and each target's progress.
    "
    CREATE TABLE event (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        uid     TEXT NOT NULL UNIQUE,   -- the event's \"id\", the same on every attempt
        type    TEXT NOT NULL,
        class   TEXT NOT NULL,          -- site | incident | maintenance | component
        at      INTEGER NOT NULL,
        body    TEXT NOT NULL           -- the JSON delivered
    );
    CREATE TABLE announced (
        key     TEXT PRIMARY KEY,       -- site:NAME | component:NAME | maintenance:ID
        value   TEXT NOT NULL
    );
    CREATE TABLE notify_target (
        name       TEXT PRIMARY KEY,
        cursor     INTEGER NOT NULL,    -- the last event done (delivered or failed)
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_at    INTEGER,
        last_error TEXT,
        last_ok    INTEGER,
        delivered  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE notify_failed (
        target    TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        uid       TEXT NOT NULL,
        type      TEXT NOT NULL,
        at        INTEGER NOT NULL,
        error     TEXT NOT NULL,
        failed_at INTEGER NOT NULL,
        PRIMARY KEY (target, seq)
    );
    CREATE TABLE mirror (
        target    TEXT NOT NULL,
        local_id  TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        PRIMARY KEY (target, local_id)
    );
    ",
    // 4: e-mail subscribers and the queue of mails to send them.
    "
    CREATE TABLE subscriber (
        id              TEXT PRIMARY KEY,       -- 12 of a-z0-9
        address         TEXT NOT NULL UNIQUE,   -- lower-cased
        components      TEXT NOT NULL,          -- JSON array of names; [] = everything
        confirm_token   TEXT NOT NULL,          -- 64 hex digits
        unsub_token     TEXT NOT NULL,          -- 64 hex digits
        origin          TEXT NOT NULL,          -- base URL of the links, as the visitor came
        created_at      INTEGER NOT NULL,
        confirmed_at    INTEGER,                -- NULL: pending
        confirm_sent_at INTEGER
    );
    CREATE TABLE mail (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        subscriber  TEXT NOT NULL REFERENCES subscriber(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,              -- confirm | the event's type
        subject     TEXT NOT NULL,
        text        TEXT NOT NULL,
        html        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     INTEGER NOT NULL,
        last_error  TEXT
    );
    CREATE INDEX mail_by_subscriber ON mail (subscriber, id);
    ",
];

/// The schema version this offramp writes.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}
