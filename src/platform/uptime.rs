//! Uptime as visitors read it: per site and UTC day, the time up and down its checks
//! saw (time under maintenance and time not checked count as neither), and the 90 days
//! the overview and `/api/sites/SITE/uptime.json` show, newest last.
//!
//! A day's uptime is up / (up + down); a day with neither (before the first check, a
//! database that could not be written, a whole day of maintenance) has no uptime
//! (`null`, drawn as "no data"), never 100 % or 0 %. A partial outage (some upstreams
//! down, some up) counts as up: visitors were served.

use time::{Date, Duration, OffsetDateTime};

use super::Incident;

/// Days the overview and the API show.
pub const DAYS_SHOWN: usize = 90;

/// One site's time up and down on one UTC day, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptimeDay {
    pub day: Date,
    pub up_ms: u64,
    pub down_ms: u64,
}

impl UptimeDay {
    /// Percentage up with two decimals, `None` without data.
    pub fn percent(&self) -> Option<f64> {
        percent(self.up_ms, self.down_ms)
    }
}

/// Up / (up + down) as a percentage with two decimals (never rounded up to 100 when
/// there was downtime), `None` when both are 0.
pub fn percent(up: u64, down: u64) -> Option<f64> {
    let total = up.checked_add(down)?;
    if total == 0 {
        return None;
    }
    let p = (up as f64) * 100.0 / (total as f64);
    let floored = (p * 100.0).floor() / 100.0;
    Some(if down > 0 { floored.min(99.99) } else { 100.0 })
}

/// One day of the 90 shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownDay {
    pub day: Date,
    pub up_ms: u64,
    pub down_ms: u64,
    pub uptime: Option<f64>,
    /// Incidents naming the component that were open at some time that day: their
    /// positions in the `incidents` given to [`shown_days`].
    pub incidents: Vec<usize>,
}

/// The `DAYS_SHOWN` days up to `now`'s day, oldest first, from `days` (any order, any
/// range) and the incidents naming `component`.
pub fn shown_days(
    component: &str,
    days: &[UptimeDay],
    incidents: &[Incident],
    now: OffsetDateTime,
) -> Vec<ShownDay> {
    let today = now.date();
    let first = today - Duration::days(DAYS_SHOWN as i64 - 1);
    let mut out: Vec<ShownDay> = (0..DAYS_SHOWN as i64)
        .map(|i| ShownDay {
            day: first + Duration::days(i),
            up_ms: 0,
            down_ms: 0,
            uptime: None,
            incidents: Vec::new(),
        })
        .collect();
    let index = |d: Date| -> Option<usize> {
        let i = (d - first).whole_days();
        usize::try_from(i).ok().filter(|i| *i < DAYS_SHOWN)
    };
    for d in days {
        if let Some(i) = index(d.day) {
            out[i].up_ms = out[i].up_ms.saturating_add(d.up_ms);
            out[i].down_ms = out[i].down_ms.saturating_add(d.down_ms);
        }
    }
    for (n, inc) in incidents
        .iter()
        .enumerate()
        .filter(|(_, i)| i.components.iter().any(|a| a.name == component))
    {
        let from = inc.created_at.date().max(first);
        let to = inc.resolved_at.unwrap_or(now).date().min(today);
        let mut d = from;
        while d <= to {
            if let Some(i) = index(d) {
                out[i].incidents.push(n);
            }
            match d.next_day() {
                Some(n) => d = n,
                None => break,
            }
        }
    }
    for d in &mut out {
        d.uptime = percent(d.up_ms, d.down_ms);
    }
    out
}

/// The percentage over all shown days, `None` without any data.
pub fn overall(days: &[ShownDay]) -> Option<f64> {
    let up = days.iter().map(|d| d.up_ms).fold(0u64, u64::saturating_add);
    let down = days
        .iter()
        .map(|d| d.down_ms)
        .fold(0u64, u64::saturating_add);
    percent(up, down)
}

/// Splits `[from, to)` into the UTC days it covers: (day, milliseconds on that day).
pub fn split_days(from: OffsetDateTime, to: OffsetDateTime) -> Vec<(Date, u64)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = start
            .date()
            .next_day()
            .map(|d| d.midnight().assume_utc())
            .unwrap_or(to)
            .min(to);
        let ms = u64::try_from((end - start).whole_milliseconds()).unwrap_or(0);
        out.push((start.date(), ms));
        if end <= start {
            break;
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 0), None);
        assert_eq!(percent(100, 0), Some(100.0));
        assert_eq!(percent(0, 100), Some(0.0));
        assert_eq!(
            percent(99_999, 1),
            Some(99.99),
            "downtime never shows as 100"
        );
        assert_eq!(percent(2, 1), Some(66.66));
    }

    #[test]
    fn ninety_days_newest_last_with_gaps_as_none() {
        let now = datetime!(2026-12-07 10:00 UTC);
        let days = [
            UptimeDay {
                day: now.date(),
                up_ms: 3_000,
                down_ms: 1_000,
            },
            UptimeDay {
                day: now.date() - Duration::days(200),
                up_ms: 1,
                down_ms: 0,
            },
        ];
        let shown = shown_days("cloud", &days, &[], now);
        assert_eq!(shown.len(), 90);
        assert_eq!(shown[89].day, now.date());
        assert_eq!(shown[89].uptime, Some(75.0));
        assert_eq!(shown[0].day, now.date() - Duration::days(89));
        assert!(shown[..89].iter().all(|d| d.uptime.is_none()));
        assert_eq!(overall(&shown), Some(75.0));
    }

    #[test]
    fn split_at_midnight() {
        let a = datetime!(2026-12-06 23:59:59 UTC);
        let b = datetime!(2026-12-07 00:00:01.5 UTC);
        assert_eq!(split_days(a, b), vec![(a.date(), 1000), (b.date(), 1500)]);
        assert!(split_days(b, a).is_empty());
    }
}
