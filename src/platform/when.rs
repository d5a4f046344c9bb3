//! Times in platform commands: `now`, a duration from now (`+30m` or `30m`), or an
//! RFC 3339 time; a maintenance's end may also be a duration counted from its start,
//! and must be after it and not past. Everything is read against one clock reading
//! passed in, so a command is decided at one instant. The CLI checks with the same
//! functions before it connects, the daemon again when it runs the command.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A start (or any point in time): `now`, `+30m`, `30m`, or RFC 3339.
pub fn at(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    from(s, now)
}

/// An end: RFC 3339, or a duration counted from `start` (`+2h`, `2h`).
pub fn end(s: &str, start: OffsetDateTime) -> Result<OffsetDateTime, String> {
    from(s.trim(), start)
}

/// A window's `start` and `end` as written, read and checked against `now`.
pub fn window(
    start: &str,
    end: &str,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let start = at(start, now)?;
    let end = self::end(end, start)?;
    check_window(start, end, now)?;
    Ok((start, end))
}

/// A window's rule: its end after its start, and not already past.
pub fn check_window(
    start: OffsetDateTime,
    end: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), String> {
    if end <= start {
        return Err("the end is not after the start".into());
    }
    if end <= now {
        return Err("the end is already past".into());
    }
    Ok(())
}

fn from(s: &str, base: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let d = crate::duration::parse(s.strip_prefix('+').unwrap_or(s)).map_err(|_| {
        format!("invalid time {s:?}: use now, a duration (+30m, 2h) or an RFC 3339 time (2026-12-07T18:00:00Z)")
    })?;
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| base.checked_add(d))
        .ok_or_else(|| format!("time {s:?} is too far in the future"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn now_durations_and_rfc3339() {
        let now = datetime!(2026-12-07 10:00:00.5 UTC);
        assert_eq!(at("now", now).unwrap(), now);
        assert_eq!(at("+30m", now).unwrap(), now + time::Duration::minutes(30));
        assert_eq!(at("30m", now).unwrap(), now + time::Duration::minutes(30));
        assert_eq!(
            at("2026-12-07T12:00:00+01:00", now).unwrap(),
            datetime!(2026-12-07 11:00:00 UTC)
        );
        assert_eq!(end("+2h", now).unwrap(), now + time::Duration::hours(2));
        assert_eq!(end("2s", now).unwrap(), now + time::Duration::seconds(2));
        assert!(at("tomorrow", now).unwrap_err().contains("invalid time"));
        assert!(end("", now).is_err());
    }

    #[test]
    fn a_window_ends_after_its_start_and_not_in_the_past() {
        let now = datetime!(2026-12-07 10:00:00 UTC);
        assert_eq!(
            window("now", "+2h", now).unwrap(),
            (now, now + time::Duration::hours(2))
        );
        assert!(
            window("2026-12-07T09:00:00Z", "+2h", now).is_ok(),
            "began already"
        );
        assert!(window("+2h", "2026-12-07T11:00:00Z", now)
            .unwrap_err()
            .contains("not after the start"));
        assert!(window("2026-12-07T08:00:00Z", "+1h", now)
            .unwrap_err()
            .contains("already past"));
        assert!(window("soon", "+1h", now)
            .unwrap_err()
            .contains("invalid time \"soon\""));
    }
}
