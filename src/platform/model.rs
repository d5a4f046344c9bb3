//! The status platform's vocabulary (CONTRACT section 9): component statuses with the
//! "worst wins" rule, incidents and their updates, scheduled maintenance windows, and
//! the page-wide indicator, each with Statuspage's API words and page wording.
//!
//! Owns: these types, their parsing from API/CLI words, their ordering and limits. Does
//! not own: storage (`store`), what a command does (`platform::command`), pages
//! (`status`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest incident or maintenance title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest update message, in characters.
pub const MAX_MESSAGE: usize = 10_000;

/// Why a word is not one of a type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} (expected one of: {})", .expected.trim_end().replace(' ', ", "))]
pub struct UnknownWord {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

macro_rules! words {
    ($(#[$m:meta])* $name:ident, $what:literal, [$($variant:ident => $api:literal, $label:literal),+ $(,)?]) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The API / CLI word (`partial_outage`).
            pub fn api(self) -> &'static str {
                match self { $($name::$variant => $api),+ }
            }

            /// The words a visitor reads (`Partial Outage`).
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Parses the API / CLI word.
            pub fn parse(s: &str) -> Result<$name, UnknownWord> {
                match s { $($api => Ok($name::$variant),)+
                    _ => Err(UnknownWord {
                        what: $what,
                        given: s.to_string(),
                        expected: concat!($($api, " "),+),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.api())
            }
        }
    };
}

words!(
    /// A component's status, Statuspage's five words.
    ComponentStatus, "component status", [
    Operational => "operational", "Operational",
    DegradedPerformance => "degraded_performance", "Degraded Performance",
    PartialOutage => "partial_outage", "Partial Outage",
    MajorOutage => "major_outage", "Major Outage",
    UnderMaintenance => "under_maintenance", "Under Maintenance",
]);

impl ComponentStatus {
    /// Rank for "worst wins": major_outage > partial_outage > degraded_performance >
    /// under_maintenance > operational.
    pub fn severity(self) -> u8 {
        match self {
            ComponentStatus::Operational => 0,
            ComponentStatus::UnderMaintenance => 1,
            ComponentStatus::DegradedPerformance => 2,
            ComponentStatus::PartialOutage => 3,
            ComponentStatus::MajorOutage => 4,
        }
    }

    /// The worst of `statuses`; `Operational` when there are none.
    pub fn worst(statuses: impl IntoIterator<Item = ComponentStatus>) -> ComponentStatus {
        statuses
            .into_iter()
            .max_by_key(|s| s.severity())
            .unwrap_or(ComponentStatus::Operational)
    }
}

words!(
    /// Where an incident is in its lifecycle.
    IncidentStatus, "incident status", [
    Investigating => "investigating", "Investigating",
    Identified => "identified", "Identified",
    Monitoring => "monitoring", "Monitoring",
    Resolved => "resolved", "Resolved",
]);

words!(
    /// How bad an incident is.
    Impact, "impact", [
    None => "none", "None",
    Minor => "minor", "Minor",
    Major => "major", "Major",
    Critical => "critical", "Critical",
]);

words!(
    /// Where a scheduled maintenance is in its lifecycle.
    MaintenanceStatus, "maintenance status", [
    Scheduled => "scheduled", "Scheduled",
    InProgress => "in_progress", "In Progress",
    Completed => "completed", "Completed",
    Cancelled => "cancelled", "Cancelled",
]);

impl MaintenanceStatus {
    /// Completed or cancelled: nothing more will happen to it.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            MaintenanceStatus::Completed | MaintenanceStatus::Cancelled
        )
    }
}

/// A component an incident affects, and the status the incident gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    pub name: String,
    pub status: ComponentStatus,
}

/// The status an incident gives a component named without one.
pub const DEFAULT_AFFECTED: ComponentStatus = ComponentStatus::PartialOutage;

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    pub id: String,
    pub status: IncidentStatus,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The affected components as of this update.
    pub components: Vec<Affected>,
    /// Who made it: `uid N`, `api:NAME`, `alertmanager`, `health`, ...
    pub by: String,
}

/// An incident with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub name: String,
    pub status: IncidentStatus,
    pub impact: Impact,
    /// The affected components as of the latest update.
    pub components: Vec<Affected>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Newest first.
    pub updates: Vec<IncidentUpdate>,
}

impl Incident {
    /// Not yet resolved.
    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }
}

/// One entry of a maintenance's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceUpdate {
    pub id: String,
    pub status: MaintenanceStatus,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: String,
}

/// A scheduled maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: String,
    pub name: String,
    /// As stored: `Scheduled` until something ends it early (`complete`: `Completed`
    /// with `end` moved to that moment; `cancel`: `Cancelled`). Use [`Maintenance::status_at`]
    /// for the status a visitor sees, which follows the clock.
    pub status: MaintenanceStatus,
    /// Sites it takes offline (when `auto`) and shows under maintenance.
    pub sites: Vec<String>,
    /// Components without a proxy it shows under maintenance.
    pub components: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    /// Takes its sites offline at `start` and back at `end` (`--no-auto`: false).
    pub auto: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Newest first; the first one scheduled it.
    pub updates: Vec<MaintenanceUpdate>,
}

impl Maintenance {
    /// The status at `now`: cancelled stays cancelled; otherwise scheduled before
    /// `start`, in progress until `end`, completed after.
    pub fn status_at(&self, now: OffsetDateTime) -> MaintenanceStatus {
        match self.status {
            MaintenanceStatus::Cancelled => MaintenanceStatus::Cancelled,
            _ if now >= self.end => MaintenanceStatus::Completed,
            _ if now >= self.start => MaintenanceStatus::InProgress,
            _ => MaintenanceStatus::Scheduled,
        }
    }

    /// The window this maintenance puts in force on its sites, if it has `auto` and is
    /// not cancelled (whether it is in progress is for the caller to ask at a time).
    pub fn window(&self) -> Option<Window> {
        (self.auto && self.status != MaintenanceStatus::Cancelled && !self.sites.is_empty()).then(
            || Window {
                id: self.id.clone(),
                title: self.name.clone(),
                sites: self.sites.clone(),
                start: self.start,
                end: self.end,
            },
        )
    }
}

/// What the precedence rule needs of an automatic maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    pub title: String,
    pub sites: Vec<String>,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl Window {
    /// In force at `now`: `start <= now < end`.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        self.start <= now && now < self.end
    }
}

/// The page-wide indicator (`status.indicator` of the API) and its banner words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    None,
    Maintenance,
    Minor,
    Major,
    Critical,
}

impl Indicator {
    /// The API word (`none`, `minor`, `major`, `critical`, `maintenance`).
    pub fn api(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Maintenance => "maintenance",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
        }
    }

    /// Statuspage's banner wording.
    pub fn description(self) -> &'static str {
        match self {
            Indicator::None => "All Systems Operational",
            Indicator::Maintenance => "Service Under Maintenance",
            Indicator::Minor => "Minor System Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major System Outage",
        }
    }

    /// From the components' statuses and the impacts of the unresolved incidents
    /// (CONTRACT section 9, "Pages").
    pub fn of(
        statuses: impl IntoIterator<Item = ComponentStatus>,
        open_impacts: impl IntoIterator<Item = Impact>,
    ) -> Indicator {
        let worst = ComponentStatus::worst(statuses);
        let impact = open_impacts.into_iter().max().unwrap_or(Impact::None);
        if worst == ComponentStatus::MajorOutage || impact == Impact::Critical {
            Indicator::Critical
        } else if worst == ComponentStatus::PartialOutage || impact == Impact::Major {
            Indicator::Major
        } else if worst == ComponentStatus::DegradedPerformance || impact == Impact::Minor {
            Indicator::Minor
        } else if worst == ComponentStatus::UnderMaintenance {
            Indicator::Maintenance
        } else {
            Indicator::None
        }
    }
}

impl PartialOrd for Impact {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Impact {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

/// Checks a title: not blank, at most [`MAX_TITLE`] characters.
pub fn check_title(title: &str) -> Result<(), String> {
    if title.trim().is_empty() {
        return Err("the title is empty".into());
    }
    let n = title.chars().count();
    if n > MAX_TITLE {
        return Err(format!(
            "the title is {n} characters long; at most {MAX_TITLE} are allowed"
        ));
    }
    Ok(())
}

/// Checks a message: not blank (an update that says nothing is a mistake), at most
/// [`MAX_MESSAGE`] characters.
pub fn check_message(message: &str) -> Result<(), String> {
    if message.trim().is_empty() {
        return Err("the message is empty".into());
    }
    let n = message.chars().count();
    if n > MAX_MESSAGE {
        return Err(format!(
            "the message is {n} characters long; at most {MAX_MESSAGE} are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentStatus as C;

    #[test]
    fn worst_wins_in_the_contract_order() {
        assert_eq!(C::worst([]), C::Operational);
        assert_eq!(
            C::worst([C::Operational, C::UnderMaintenance]),
            C::UnderMaintenance
        );
        assert_eq!(
            C::worst([C::UnderMaintenance, C::DegradedPerformance]),
            C::DegradedPerformance
        );
        assert_eq!(C::worst([C::MajorOutage, C::PartialOutage]), C::MajorOutage);
    }

    #[test]
    fn words_round_trip_and_unknown_words_are_named() {
        for s in C::ALL {
            assert_eq!(C::parse(s.api()), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.api());
        }
        for s in MaintenanceStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.api());
        }
        let e = Impact::parse("huge").unwrap_err().to_string();
        assert!(e.contains("\"huge\"") && e.contains("critical"), "{e}");
    }

    #[test]
    fn indicator_follows_components_and_impacts() {
        use Indicator as I;
        assert_eq!(I::of([C::Operational], []), I::None);
        assert_eq!(I::of([C::UnderMaintenance], []), I::Maintenance);
        assert_eq!(I::of([C::UnderMaintenance], [Impact::Minor]), I::Minor);
        assert_eq!(I::of([C::PartialOutage], [Impact::None]), I::Major);
        assert_eq!(I::of([C::Operational], [Impact::Critical]), I::Critical);
        assert_eq!(I::Major.description(), "Partial System Outage");
    }

    #[test]
    fn titles_and_messages_are_bounded() {
        assert!(check_title(&"x".repeat(MAX_TITLE)).is_ok());
        assert!(check_title(&"é".repeat(MAX_TITLE + 1)).is_err());
        assert!(check_title("  ").is_err());
        assert!(check_message(&"x".repeat(MAX_MESSAGE + 1)).is_err());
        assert!(check_message("").is_err() && check_message(" \n\t").is_err());
        assert!(check_message(".").is_ok());
    }

    #[test]
    fn maintenance_status_follows_the_clock() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let h = time::Duration::hours(1);
        let m = Maintenance {
            id: "m1".into(),
            name: "disk swap".into(),
            status: MaintenanceStatus::Scheduled,
            sites: vec!["cloud".into()],
            components: vec![],
            start: t0 + h,
            end: t0 + 2 * h,
            auto: true,
            created_at: t0,
            updated_at: t0,
            updates: vec![],
        };
        assert_eq!(m.status_at(t0), MaintenanceStatus::Scheduled);
        assert_eq!(m.status_at(t0 + h), MaintenanceStatus::InProgress);
        assert_eq!(m.status_at(t0 + 2 * h), MaintenanceStatus::Completed);
        assert!(m
            .window()
            .is_some_and(|w| w.in_force(t0 + h) && !w.in_force(t0 + 2 * h)));
    }
}
