//! The status platform's database (`[server] data`): one SQLite file, opened by this
//! module alone. Everything the platform records lives here (incidents and their
//! updates, scheduled maintenances, component statuses set through the API); the
//! runtime overrides do not (they stay in the state file, so a flip never depends on
//! the database).
//!
//! Durability: WAL with `synchronous=FULL`, every change one transaction, so a write
//! that was acknowledged survives SIGKILL and power loss, and a failed one leaves
//! nothing half-written. The schema is migrated forward on open (`schema`); a file
//! that is not a database, is corrupt, or was written by a newer offramp is refused
//! and never touched.
//!
//! The request path never reads it: the daemon loads everything at start-up, keeps it
//! in memory, and folds what pages need into the published snapshot.

mod outbox;
mod rows;
mod schema;
mod subscribers;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::platform::{ComponentStatus, Incident, Maintenance};

/// Why the database cannot be used or could not take a change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// At start-up: `serve` refuses to start with this line.
    #[error("database {path}: {why}")]
    Open { path: PathBuf, why: String },
    /// A change that was not written (nothing of it was).
    #[error("database {path}: {why}; nothing was changed")]
    Write { path: PathBuf, why: String },
    /// A row that does not read back (a database edited by hand, or damaged).
    #[error("database {path}: {why}")]
    Read { path: PathBuf, why: String },
}

/// A component status set through the API (`PATCH /api/v1/components/NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetStatus {
    pub status: ComponentStatus,
    pub at: time::OffsetDateTime,
    pub by: String,
}

/// Everything the database holds, as loaded at start-up.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    /// Newest `created_at` first.
    pub incidents: Vec<Incident>,
    /// Newest `start` first.
    pub maintenances: Vec<Maintenance>,
    pub components: BTreeMap<String, SetStatus>,
    /// Alertmanager alerts firing, by fingerprint.
    pub alerts: BTreeMap<String, AlertRow>,
}

/// The open database.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Bumped after events are written, for the delivery workers.
    wake: tokio::sync::watch::Sender<i64>,
}

impl Store {
    /// Opens (creating if missing) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |why: String| StoreError::Open {
            path: path.to_path_buf(),
            why,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(fail(format!("directory {} does not exist", dir.display())));
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| fail(e.to_string()))?;
        // The first read of the header: "file is not a database" shows up here.
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?;
        if version > schema::latest() {
            return Err(fail(format!(
                "written by a newer offramp (schema version {version}, this one knows up to {}); refusing to touch it",
                schema::latest()
            )));
        }
        if version > 0 {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| fail(e.to_string()))?;
            if check != "ok" {
                return Err(fail(format!("corrupt ({check}); refusing to touch it")));
            }
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!(
                "cannot use write-ahead logging (journal mode {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| fail(e.to_string()))?;
        let mut conn = conn;
        migrate(&mut conn, version).map_err(fail)?;
        let (wake, _) = tokio::sync::watch::channel(0);
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            wake,
        })
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic mid-transaction rolls the transaction back when it unwinds, so the
        // connection is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    fn read_err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    /// Everything, for start-up.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let conn = self.conn();
        Ok(Loaded {
            incidents: rows::load_incidents(&conn).map_err(|e| self.read_err(e))?,
            maintenances: rows::load_maintenances(&conn).map_err(|e| self.read_err(e))?,
            components: rows::load_component_statuses(&conn).map_err(|e| self.read_err(e))?,
            alerts: health::load_alerts(&conn).map_err(|e| self.read_err(e))?,
        })
    }

    /// Writes an incident as it now is (new or changed), with every update it has, in
    /// one transaction.
    /// `a`: the events it makes, written in the same transaction.
    pub fn save_incident(&self, i: &Incident, a: &Announce) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        rows::save_incident(&tx, i).map_err(|e| self.write_err(e))?;
        outbox::write(&tx, a).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        self.woke(&conn);
        Ok(())
    }

    /// Writes a maintenance as it now is, with its updates, in one transaction.
    pub fn save_maintenance(&self, m: &Maintenance, a: &Announce) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        rows::save_maintenance(&tx, m).map_err(|e| self.write_err(e))?;
        outbox::write(&tx, a).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        self.woke(&conn);
        Ok(())
    }

    /// Sets (`Some`) or clears (`None`) the API-set status of a component.
    pub fn set_component_status(
        &self,
        name: &str,
        status: Option<&SetStatus>,
        a: &Announce,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.write_err(e))?;
        rows::set_component_status(&tx, name, status).map_err(|e| self.write_err(e))?;
        outbox::write(&tx, a).map_err(|e| self.write_err(e))?;
        tx.commit().map_err(|e| self.write_err(e))?;
        self.woke(&conn);
        Ok(())
    }
}

/// Runs database work `f` on the blocking pool, off an async runtime's threads (a
/// commit waits for the disk); a task that died is an error too.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("database task failed: {e}")),
    }
}

/// Applies the migrations after `from`, each in its own transaction with its version.
fn migrate(conn: &mut Connection, from: u32) -> Result<(), String> {
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(from as usize) {
        let version = i as u32 + 1;
        let tx = conn
            .transaction()
            .map_err(|e| format!("migration to schema {version}: {e}"))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("migration to schema {version}: {e}"))?;
    }
    Ok(())
}

mod health;

pub use health::{AlertRow, UptimeDay};
pub use outbox::{Announce, NewEvent, StoredEvent};
pub use subscribers::{
    same_token, NewMail, NewSubscriber, QueuedMail, Subscribed, SubscriberRow, TokenKind,
};
pub use targets::{FailedRow, TargetRow};

#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod tests;
