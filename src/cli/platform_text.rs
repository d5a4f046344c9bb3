//! How `offramp incident …` and `offramp maintenance …` print their answers for people:
//! tables for lists, a detail view with the timeline (newest first) for one. Every
//! value is escaped (it may come from another operator or a script).

use serde_json::Value;

use crate::table::{cell, escape, grid, time_cell};

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[][..], Vec::as_slice)
}

/// `api (major_outage), blog (partial_outage)`.
fn affected(v: &Value) -> String {
    let parts: Vec<String> = list(v)
        .iter()
        .map(|c| format!("{} ({})", cell(&c["name"]), cell(&c["status"])))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn names(v: &Value) -> String {
    let parts: Vec<String> = list(v).iter().map(cell).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

pub(super) fn incidents_table(v: &Value) -> String {
    if list(v).is_empty() {
        return "no incidents\n".into();
    }
    let mut rows =
        vec![["ID", "STATUS", "IMPACT", "UPDATED", "COMPONENTS", "NAME"].map(String::from)];
    for i in list(v) {
        rows.push([
            cell(&i["id"]),
            cell(&i["status"]),
            cell(&i["impact"]),
            time_cell(&i["updated_at"]),
            affected(&i["components"]),
            cell(&i["name"]),
        ]);
    }
    grid(&rows)
}

pub(super) fn incident_text(i: &Value) -> String {
    let mut out = grid(&[
        ["incident".into(), cell(&i["id"])],
        ["name".into(), cell(&i["name"])],
        ["status".into(), cell(&i["status"])],
        ["impact".into(), cell(&i["impact"])],
        ["components".into(), affected(&i["components"])],
        ["created".into(), time_cell(&i["created_at"])],
        ["resolved".into(), time_cell(&i["resolved_at"])],
    ]);
    out.push_str("updates (newest first):\n");
    for u in list(&i["updates"]) {
        out.push_str(&format!(
            "  {}  {}  by {}\n",
            time_cell(&u["at"]),
            cell(&u["status"]),
            cell(&u["by"])
        ));
        for line in u["message"].as_str().unwrap_or_default().lines() {
            out.push_str(&format!("    {}\n", escape(line)));
        }
    }
    out
}

pub(super) fn maintenances_table(v: &Value) -> String {
    if list(v).is_empty() {
        return "no maintenance\n".into();
    }
    let mut rows = vec![[
        "ID",
        "STATUS",
        "START",
        "END",
        "SITES",
        "COMPONENTS",
        "AUTO",
        "NAME",
    ]
    .map(String::from)];
    for m in list(v) {
        rows.push([
            cell(&m["id"]),
            cell(&m["status"]),
            time_cell(&m["start"]),
            time_cell(&m["end"]),
            names(&m["sites"]),
            names(&m["components"]),
            if m["auto"].as_bool() == Some(false) {
                "no"
            } else {
                "yes"
            }
            .into(),
            cell(&m["name"]),
        ]);
    }
    grid(&rows)
}

pub(super) fn maintenance_text(m: &Value) -> String {
    let mut out = grid(&[
        ["maintenance".into(), cell(&m["id"])],
        ["name".into(), cell(&m["name"])],
        ["status".into(), cell(&m["status"])],
        ["start".into(), time_cell(&m["start"])],
        ["end".into(), time_cell(&m["end"])],
        ["sites".into(), names(&m["sites"])],
        ["components".into(), names(&m["components"])],
        [
            "takes sites offline".into(),
            if m["auto"].as_bool() == Some(false) {
                "no"
            } else {
                "yes"
            }
            .into(),
        ],
    ]);
    out.push_str("updates (newest first):\n");
    for u in list(&m["updates"]) {
        out.push_str(&format!(
            "  {}  {}  by {}\n",
            time_cell(&u["at"]),
            cell(&u["status"]),
            cell(&u["by"])
        ));
        for line in u["message"].as_str().unwrap_or_default().lines() {
            out.push_str(&format!("    {}\n", escape(line)));
        }
    }
    out
}
