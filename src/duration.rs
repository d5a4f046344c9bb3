//! Human durations as used in the config (`grace = "10s"`) and by `offramp offline --until 30m`.
//!
//! Accepted: one or more `<integer><unit>` groups, units `ms`, `s`, `m`, `h`, `d`
//! (`"90s"`, `"1h30m"`). A bare `0` is zero. Anything else is an error that says so.
//! Owns the syntax only; which durations are allowed where (a non-zero timeout, a
//! future `--until`) is for the caller (`config`, `cli`, `control`).

use std::time::Duration;

/// Parses `"90s"`, `"30m"`, `"2h"`, `"1h30m"`, `"500ms"`, `"1d"`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration (expected e.g. \"10s\", \"30m\", \"2h\")".into());
    }
    let bytes = s.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "invalid duration {text:?} (expected e.g. \"10s\", \"30m\", \"2h\", \"1h30m\")"
            ));
        }
        let n: u64 = s[start..i]
            .parse()
            .map_err(|_| format!("duration {text:?} is too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let millis_per_unit: u64 = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "duration {text:?} needs a unit: ms, s, m, h or d (e.g. \"{n}s\")"
                ))
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} in duration {text:?} (use ms, s, m, h or d)"
                ))
            }
        };
        total = n
            .checked_mul(millis_per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way `parse` reads it back (`"1h30m"`, `"10s"`, `"250ms"`).
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{}", ms / size, unit));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "-5s",
            "1.5h",
            "99999999999999999999s",
            "10 s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse("10").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn format_round_trips() {
        for s in ["10s", "1h30m", "250ms", "2d", "0s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
