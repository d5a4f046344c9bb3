use super::*;
use crate::platform::model::MaintenanceUpdate;
use crate::platform::{Affected, Impact, IncidentStatus, IncidentUpdate, MaintenanceStatus};
use time::macros::datetime;

fn incident() -> Incident {
    let t = datetime!(2026-12-07 10:00:00.123456789 UTC);
    Incident {
        id: "abc123".into(),
        name: "API <down> & out".into(),
        status: IncidentStatus::Identified,
        impact: Impact::Major,
        components: vec![
            Affected {
                name: "api".into(),
                status: ComponentStatus::MajorOutage,
            },
            Affected {
                name: "blog".into(),
                status: ComponentStatus::PartialOutage,
            },
        ],
        created_at: t,
        updated_at: t + time::Duration::minutes(5),
        resolved_at: None,
        updates: vec![
            IncidentUpdate {
                id: "u2".into(),
                status: IncidentStatus::Identified,
                message: "found it".into(),
                at: t + time::Duration::minutes(5),
                components: vec![],
                by: "api:deploy".into(),
            },
            IncidentUpdate {
                id: "u1".into(),
                status: IncidentStatus::Investigating,
                message: "looking".into(),
                at: t,
                components: vec![Affected {
                    name: "api".into(),
                    status: ComponentStatus::MajorOutage,
                }],
                by: "uid 1000".into(),
            },
        ],
    }
}

fn maintenance() -> Maintenance {
    let t = datetime!(2026-12-07 10:00:00 UTC);
    Maintenance {
        id: "m1".into(),
        name: "disk swap".into(),
        status: MaintenanceStatus::Scheduled,
        sites: vec!["cloud".into()],
        components: vec!["mail".into()],
        start: t + time::Duration::hours(1),
        end: t + time::Duration::hours(3),
        auto: true,
        created_at: t,
        updated_at: t,
        updates: vec![MaintenanceUpdate {
            id: "mu1".into(),
            status: MaintenanceStatus::Scheduled,
            message: "new disks".into(),
            at: t,
            by: "uid 0".into(),
        }],
    }
}

#[test]
fn what_is_written_reads_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.db");
    let s = Store::open(&path).unwrap();
    let mut i = incident();
    s.save_incident(&i, &Default::default()).unwrap();
    // A second save adds the new update and changes the row, keeps the old updates.
    i.status = IncidentStatus::Resolved;
    i.resolved_at = Some(i.updated_at);
    i.components.pop();
    s.save_incident(&i, &Default::default()).unwrap();
    let m = maintenance();
    s.save_maintenance(&m, &Default::default()).unwrap();
    let set = SetStatus {
        status: ComponentStatus::DegradedPerformance,
        at: m.created_at,
        by: "api:x".into(),
    };
    s.set_component_status("mail", Some(&set), &Default::default())
        .unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    let l = s.load().unwrap();
    assert_eq!(l.incidents, vec![i]);
    assert_eq!(l.maintenances, vec![m]);
    assert_eq!(l.components.get("mail"), Some(&set));
    s.set_component_status("mail", None, &Default::default())
        .unwrap();
    assert!(s.load().unwrap().components.is_empty());
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.db");
    let junk = b"this is not sqlite, it is somebody's notes\n".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("offramp.db"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn a_database_from_a_newer_offramp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.db");
    drop(Store::open(&path).unwrap());
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", schema::latest() + 1)
            .unwrap();
    }
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("newer offramp"), "{e}");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let e = Store::open(Path::new("/nonexistent-dir-offramp/x.db"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn a_bad_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offramp.db");
    let s = Store::open(&path).unwrap();
    s.save_incident(&incident(), &Default::default()).unwrap();
    s.conn()
        .execute("UPDATE incident SET status = 'exploded'", [])
        .unwrap();
    let e = s.load().unwrap_err().to_string();
    assert!(e.contains("incident abc123"), "{e}");
}
