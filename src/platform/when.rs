//! Times in platform commands: `now`, a duration from now (`+30m` or `30m`), or an
//! RFC 3339 time; a maintenance's end may also be a duration counted from its start.
//! Everything is read against one clock reading passed in, so a command is decided at
//! one instant.

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
}
