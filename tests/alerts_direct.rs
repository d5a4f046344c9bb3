//! The Alertmanager endpoint driven directly (tests/alertmanager.rs has the real
//! Alertmanager): a resolution ends the alert it names by fingerprint even when the
//! config no longer has its component, so an edit cannot leave an alert firing for ever.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-alertmanager";

fn config(component: &str) -> String {
    format!(
        "{}[maintenance]\nstatus_page = \"builtin\"\n\n[status]\nhosts = [\"status.test\"]\n\n\
         [[site]]\nname = \"cloud\"\nhosts = [\"cloud.test\"]\nupstream = \"http://127.0.0.1:9\"\n\n\
         [[component]]\nname = \"{component}\"\n\n[api]\ntokens = [\"am.token\"]\n\n[alerts]\nincidents = true\n",
        server_section("admin = \"127.0.0.1:0\"")
    )
}

fn post(o: &Offramp, status: &str) -> Value {
    let body = format!(
        r#"{{"version":"4","status":"{status}","alerts":[{{"status":"{status}","labels":{{"alertname":"MailDown","offramp_component":"mail","severity":"critical"}},"annotations":{{"summary":"Mail is down"}},"fingerprint":"f9"}}]}}"#
    );
    let auth = format!("Bearer {TOKEN}");
    let r = Conn::open(o.admin.expect("admin")).request(
        "POST",
        "admin",
        "/api/v1/alertmanager",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn mail_status(o: &Offramp) -> Option<String> {
    let all = o.get("status.test", "/api/v2/components.json").json();
    all["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "mail")
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

#[test]
fn a_resolution_ends_its_alert_even_after_its_component_was_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("am.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.path().join("offramp.toml"), config("mail")).unwrap();
    let o = Offramp::start_in(dir, &[]);
    assert_eq!(post(&o, "firing")["applied"], 1);
    assert_eq!(mail_status(&o).as_deref(), Some("major_outage"));
    let open = o.cli(&["incident", "list", "--json"]).ok().json();
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");

    o.write_config(&config("mail2"));
    wait_for(Duration::from_secs(5), "the rename applied", || {
        mail_status(&o).is_none().then_some(())
    });
    assert_eq!(
        post(&o, "resolved")["applied"],
        1,
        "resolved by fingerprint"
    );

    o.write_config(&config("mail"));
    wait_for(Duration::from_secs(5), "mail back", || {
        mail_status(&o).is_some().then_some(())
    });
    assert_eq!(mail_status(&o).as_deref(), Some("operational"));
    let open = o.cli(&["incident", "list", "--json"]).ok().json();
    assert_eq!(
        open.as_array().map(Vec::len),
        Some(0),
        "its incident resolved: {open}"
    );
}
