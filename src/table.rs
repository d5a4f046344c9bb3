//! Human output of `offramp status` (and of flips): a plain aligned table.

use serde_json::Value;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    }
}

fn time_cell(v: &Value) -> String {
    // RFC 3339 reads better with a space than a 'T' in a table.
    cell(v).replacen('T', " ", 1)
}

/// Renders the `sites` of a control reply (plus the global override and a failed
/// reload, when present) as text.
pub fn render(reply: &Value) -> String {
    let header = ["SITE", "STATE", "SOURCE", "SINCE", "UNTIL", "REASON", "BY"];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for s in reply["sites"].as_array().into_iter().flatten() {
        rows.push([
            cell(&s["name"]),
            cell(&s["state"]),
            cell(&s["source"]),
            time_cell(&s["since"]),
            time_cell(&s["until"]),
            cell(&s["reason"]),
            match &s["by"] {
                Value::Number(n) => format!("uid {n}"),
                _ => "-".into(),
            },
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let g = &reply["global"];
    if g.is_object() {
        out.push_str(&format!(
            "global override (--all): {} since {}{}{}{}\n",
            cell(&g["state"]),
            time_cell(&g["since"]),
            if g["until"].is_string() {
                format!(" until {}", time_cell(&g["until"]))
            } else {
                String::new()
            },
            if g["reason"].is_string() {
                format!(", reason: {}", cell(&g["reason"]))
            } else {
                String::new()
            },
            match &g["by"] {
                Value::Number(n) => format!(", by uid {n}"),
                _ => String::new(),
            },
        ));
    }
    let r = &reply["reload"];
    if r["ok"] == Value::Bool(false) {
        out.push_str(&format!(
            "last reload FAILED at {} (the previous config is still in force):\n  {}\n",
            time_cell(&r["at"]),
            cell(&r["error"]).replace("\n", "\n  ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligns_columns_and_shows_extras() {
        let t = render(&json!({
            "sites": [
                {"name":"cloud","state":"offline","source":"runtime","since":"2026-11-23T04:00:00Z","until":null,"reason":"disk swap","by":1000},
                {"name":"blog","state":"online","source":"config","since":null,"until":null,"reason":null,"by":null}
            ],
            "global": {"state":"offline","since":"2026-11-23T04:00:00Z","until":null,"reason":"move","by":0},
            "reload": {"ok": false, "at": "2026-11-23T04:01:00Z", "error": "f:1: bad"}
        }));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SITE   STATE    SOURCE   SINCE"));
        assert!(lines[1].contains("cloud  offline  runtime  2026-11-23 04:00:00Z"));
        assert!(lines[1].ends_with("disk swap  uid 1000"));
        assert!(lines[2].starts_with("blog   online   config   -"));
        assert!(t.contains("global override (--all): offline"));
        assert!(t.contains("last reload FAILED"));
    }
}
