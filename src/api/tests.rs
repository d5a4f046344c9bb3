use super::*;
use crate::config::api::read_token;
use crate::platform::ComponentStatus;
use std::os::unix::fs::PermissionsExt;

fn api_with(secret: &str) -> (tempfile::TempDir, Api) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("deploy.token");
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tok = read_token(&p).unwrap();
    (dir, Api { tokens: vec![tok] })
}

#[test]
fn only_the_exact_token_authenticates_and_names_its_file() {
    let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
    let (_d, api) = api_with(secret);
    assert_eq!(
        authenticate(&api, Some(&format!("Bearer {secret}"))),
        Some("api:deploy")
    );
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let given = format!("{scheme}  {secret} ");
        assert_eq!(
            authenticate(&api, Some(&given)),
            Some("api:deploy"),
            "{given}"
        );
    }
    for bad in [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some(&format!("Bearer{secret}")[..]),
        Some(&format!("Bearer\t{secret}")[..]),
        Some(&format!("Bearer {}", secret.to_uppercase())[..]),
        Some("Basic abc"),
        Some(&format!("Bearer {secret}x")[..]),
        Some(&format!("Bearer {}", &secret[1..])[..]),
        Some(&format!("Token {secret}")[..]),
    ] {
        assert_eq!(authenticate(&api, bad), None, "{bad:?}");
    }
    assert!(
        !format!("{api:?}").contains(secret),
        "Debug never shows a secret"
    );
}

#[test]
fn token_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.token");
    let check = |content: &str, mode: u32| {
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        read_token(&p).map(|_| ()).map_err(|e| {
            assert!(e.contains("t.token"), "names the file: {e}");
            e
        })
    };
    let good = "a".repeat(32);
    assert!(check(&good, 0o600).is_ok());
    assert!(check(&good, 0o640).is_ok());
    assert!(check(&good, 0o644)
        .unwrap_err()
        .contains("readable by everyone"));
    assert!(check("", 0o600).unwrap_err().contains("empty"));
    assert!(check(&"a".repeat(31), 0o600)
        .unwrap_err()
        .contains("shorter than 32"));
    assert!(read_token(&dir.path().join("missing.token")).is_err());
}

#[test]
fn bodies_map_onto_commands() {
    let seed =
        br#"{"title":"API down","impact":"major","message":"looking","componentIds":["api"]}"#;
    match body::new_incident(seed) {
        Ok(Command::IncidentOpen { components, .. }) => {
            assert_eq!(components.len(), 1);
            assert_eq!(components[0].name, "api");
            assert_eq!(components[0].status, None);
        }
        other => panic!("{:?}", other.map_err(|r| r.body)),
    }
    let with_status = br#"{"title":"t","message":"m","components":{"api":"major_outage"}}"#;
    assert!(matches!(
        body::new_incident(with_status),
        Ok(Command::IncidentOpen {
            impact: crate::platform::Impact::Minor,
            ..
        })
    ));
    let status = |r: Result<Command, Response>| r.err().map(|r| r.status);
    assert_eq!(status(body::new_incident(b"not json")), Some(400));
    assert_eq!(
        status(body::new_incident(br#"{"title":1,"message":"m"}"#)),
        Some(400)
    );
    assert_eq!(
        status(body::new_incident(br#"{"title":"t","message":"m","x":1}"#)),
        Some(400)
    );
    assert_eq!(
        status(body::new_incident(
            br#"{"title":"t","message":"m","impact":"huge"}"#
        )),
        Some(422)
    );
    assert_eq!(
        status(body::new_incident(
            br#"{"title":"t","message":"m","components":{"a":"on_fire"}}"#
        )),
        Some(422)
    );
    assert!(matches!(
        body::incident_patch("x", br#"{"status":"resolved"}"#),
        Ok(Command::IncidentResolve { .. })
    ));
    assert_eq!(
        status(body::incident_patch("x", br#"{"status":"identified"}"#)),
        Some(422)
    );
    assert!(matches!(
        body::component_patch("api", br#"{"component":{"status":"degraded_performance"}}"#),
        Ok(Command::ComponentSet {
            status: ComponentStatus::DegradedPerformance,
            ..
        })
    ));
    assert_eq!(
        status(body::component_patch("api", br#"{"status":"meh"}"#)),
        Some(422)
    );
    assert!(matches!(
        body::flip("cloud", "reset", b""),
        Ok(Command::Reset { .. })
    ));
    assert!(matches!(
        body::maintenance_patch("m", br#"{"status":"completed"}"#),
        Ok(Command::MaintenanceComplete { .. })
    ));
}
