//! Human output of `offramp status` (and of flips): a plain aligned table, and the lines
//! below it (global override, pending restart, failed reload).
//!
//! Everything shown may come from another operator (`--reason`) or a config file, so
//! every control character is escaped before it reaches a terminal. Owns the layout
//! only: the rows come from the daemon's reply (see `daemon::report`), and when to
//! print them is `cli`'s.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `text` with every control character (C0, DEL, C1) and every bidirectional-text
/// control written as a visible escape (`\u{1b}`), so it cannot move the cursor, change
/// colours or reorder what a terminal shows.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value as a cell: `-` for null or empty, control characters escaped.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// An RFC 3339 time to the nearest second, with a space instead of the `T`: times are
/// exact in the daemon and in `--json`, rounded only here.
pub fn time_cell(v: &Value) -> String {
    let Some(s) = v.as_str() else {
        return cell(v);
    };
    let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) else {
        return cell(v).replacen('T', " ", 1);
    };
    let rounded = if t.nanosecond() >= 500_000_000 {
        t + time::Duration::seconds(1)
    } else {
        t
    };
    let rounded = rounded.replace_nanosecond(0).unwrap_or(rounded);
    match rounded.format(&Rfc3339) {
        Ok(f) => escape(&f).replacen('T', " ", 1),
        Err(_) => cell(v).replacen('T', " ", 1),
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|n| n.as_str().map_or_else(|| cell(n), escape))
        .collect()
}

/// Rows (the first one the header) as columns aligned with two spaces between them;
/// the cells are expected escaped already (see [`cell`]).
pub fn grid<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (i, c) in r.as_ref().iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let r = r.as_ref();
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders the `sites` of a control reply (plus the global override, a pending restart
/// and a failed reload, when present) as text.
pub fn render(reply: &Value) -> String {
    let header = ["SITE", "STATE", "SOURCE", "SINCE", "UNTIL", "REASON", "BY"];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    let sites = reply["sites"].as_array().map_or(&[][..], Vec::as_slice);
    for s in sites {
        rows.push([
            cell(&s["name"]),
            cell(&s["state"]),
            // CONTRACT section 9: the table shows source `health` as `auto`.
            if s["source"] == "health" {
                "auto".to_string()
            } else {
                cell(&s["source"])
            },
            time_cell(&s["since"]),
            time_cell(&s["until"]),
            cell(&s["reason"]),
            match &s["by"] {
                Value::Number(n) => format!("uid {n}"),
                Value::String(who) => escape(who),
                _ => "-".into(),
            },
        ]);
    }
    let mut out = grid(&rows);
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
                Value::String(who) => format!(", by {}", escape(who)),
                _ => String::new(),
            },
        ));
        // Sites changed after it (flipped, reset or edited) do not follow it.
        let uncovered: Vec<String> = sites
            .iter()
            .filter(|s| s["source"] != "all")
            .map(|s| format!("{} ({})", cell(&s["name"]), cell(&s["source"])))
            .collect();
        if !uncovered.is_empty() {
            out.push_str(&format!(
                "  not followed by (changed after it): {}\n",
                uncovered.join(", ")
            ));
        }
    }
    let r = &reply["reload"];
    let pending = names(&r["needs_restart"]);
    if !pending.is_empty() {
        out.push_str(&format!(
            "needs restart: {} changed in the config; the running values stay in force until offramp is restarted\n",
            pending.join(", ")
        ));
    }
    if r["ok"] == Value::Bool(false) {
        out.push_str(&format!(
            "last reload FAILED at {} (the previous config is still in force):\n",
            time_cell(&r["at"]),
        ));
        let error = r["error"].as_str().unwrap_or("");
        for line in error.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("  {}\n", escape(line)));
        }
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
                {"name":"cloud","state":"offline","source":"runtime","since":"2026-11-23T04:00:00.6Z","until":null,"reason":"disk swap","by":1000},
                {"name":"blog","state":"online","source":"config","since":null,"until":null,"reason":null,"by":null}
            ],
            "global": {"state":"offline","since":"2026-11-23T04:00:00Z","until":null,"reason":"move","by":0},
            "reload": {"ok": false, "at": "2026-11-23T04:01:00Z", "error": "f:1: bad\nf:2: worse", "needs_restart": ["server.http"]}
        }));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SITE   STATE    SOURCE   SINCE"));
        assert!(lines[1].contains("cloud  offline  runtime  2026-11-23 04:00:01Z"));
        assert!(lines[1].ends_with("disk swap  uid 1000"));
        assert!(lines[2].starts_with("blog   online   config   -"));
        assert!(t.contains("global override (--all): offline"));
        assert!(t.contains("not followed by (changed after it): cloud (runtime), blog (config)"));
        assert!(t.contains("needs restart: server.http changed"));
        assert!(t.contains("last reload FAILED"));
        assert!(t.contains("\n  f:1: bad\n  f:2: worse\n"), "{t}");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let t = render(&json!({
            "sites": [{"name":"cloud","state":"offline","source":"runtime","since":null,"until":null,
                       "reason":"\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\t\u{9b}31m\u{202e}x\u{7f}","by":1}],
            "global": {"state":"offline","since":"2026-11-23T04:00:00Z","until":null,"reason":"\u{1b}[31m","by":0},
            "reload": {"ok": false, "at": "2026-11-23T04:01:00Z", "error": "f:1: \u{1b}[31mred"}
        }));
        assert!(
            !t.chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{t:?}"
        );
        assert!(
            t.contains(r"\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\t\u{9b}31m\u{202e}x\u{7f}"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 2 + 2 + 2, "{t}");
    }
}
