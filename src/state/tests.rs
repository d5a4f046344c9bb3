use super::*;
use time::Duration;

fn ov(state: SiteState, seq: u64) -> Override {
    Override {
        state,
        seq,
        since: OffsetDateTime::UNIX_EPOCH,
        until: None,
        reason: None,
        by: None,
        by_name: None,
    }
}

/// CONTRACT section 9's precedence between runtime overrides and windows, case by
/// case: (config state, override (state, set at minute), window (start, end) in
/// minutes, now in minutes) → (state, source).
#[test]
fn windows_and_overrides_the_later_wins() {
    use crate::platform::Window;
    use SiteState::{Offline as Off, Online as On};
    let at = |m: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(m);
    type Case = (
        SiteState,
        Option<(SiteState, i64, bool)>,
        Option<(i64, i64)>,
        i64,
        SiteState,
        Source,
    );
    let cases: &[Case] = &[
        // No window: the override (or config) decides.
        (On, None, None, 5, On, Source::Config),
        (On, Some((Off, 1, false)), None, 5, Off, Source::Runtime),
        // A window in force beats the config, whatever the config says.
        (On, None, Some((0, 10)), 5, Off, Source::Maintenance),
        (Off, None, Some((0, 10)), 5, Off, Source::Maintenance),
        // An override set before the window's start loses to it...
        (
            On,
            Some((On, -5, false)),
            Some((0, 10)),
            5,
            Off,
            Source::Maintenance,
        ),
        (
            On,
            Some((Off, -5, false)),
            Some((0, 10)),
            5,
            Off,
            Source::Maintenance,
        ),
        // ...and is back once the window ends.
        (
            On,
            Some((Off, -5, false)),
            Some((0, 10)),
            10,
            Off,
            Source::Runtime,
        ),
        (
            Off,
            Some((On, -5, false)),
            Some((0, 10)),
            11,
            On,
            Source::Runtime,
        ),
        // One set after the window's start wins (bringing a site back early).
        (
            On,
            Some((On, 3, false)),
            Some((0, 10)),
            5,
            On,
            Source::Runtime,
        ),
        (On, Some((On, 3, true)), Some((0, 10)), 5, On, Source::All),
        // A global override set before the window loses too.
        (
            On,
            Some((On, -1, true)),
            Some((0, 10)),
            5,
            Off,
            Source::Maintenance,
        ),
        // Before its start a window does nothing.
        (
            On,
            Some((On, -5, false)),
            Some((7, 10)),
            5,
            On,
            Source::Runtime,
        ),
        (On, None, Some((7, 10)), 5, On, Source::Config),
    ];
    for (i, (config, o, w, now, state, source)) in cases.iter().enumerate() {
        let mut data = StateData::default();
        if let Some((st, m, all)) = o {
            let seq = data.next_seq();
            let mut ov = ov(*st, seq);
            ov.since = at(*m);
            if *all {
                data.global = Some(ov);
            } else {
                data.sites.insert("cloud".into(), ov);
            }
        }
        let windows: Vec<Window> = w
            .iter()
            .map(|(s, e)| Window {
                id: "w1".into(),
                title: "disk swap".into(),
                sites: vec!["cloud".into()],
                start: at(*s),
                end: at(*e),
            })
            .collect();
        let d = data
            .decide("cloud", *config, at(*now))
            .with_windows("cloud", &windows, at(*now));
        assert_eq!((d.state, d.source), (*state, *source), "case {i}");
        if d.source == Source::Maintenance {
            assert_eq!(d.reason.as_deref(), Some("disk swap"));
            assert_eq!(d.until, Some(at(10)));
            assert_eq!(d.by_json(), "maintenance:w1");
        }
        // Another site is never touched by the window.
        let other = data
            .decide("blog", *config, at(*now))
            .with_windows("blog", &windows, at(*now));
        assert_ne!(other.source, Source::Maintenance, "case {i}");
    }
}

/// Rule 3 of CONTRACT section 9, case by case: (config state, override (state, set at
/// minute, --all), window in force, auto_offline, every upstream down) → (state, source).
#[test]
fn health_turns_only_a_config_online_site_offline() {
    use crate::platform::Window;
    use SiteState::{Offline as Off, Online as On};
    let at = |m: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(m);
    type Case = (
        SiteState,
        Option<(SiteState, bool)>,
        bool,
        bool,
        bool,
        SiteState,
        Source,
    );
    let cases: &[Case] = &[
        // Healthy, or auto_offline off: health changes nothing.
        (On, None, false, true, false, On, Source::Config),
        (On, None, false, false, true, On, Source::Config),
        // All upstreams down with auto_offline: offline, source health.
        (On, None, false, true, true, Off, Source::Health),
        // The config says offline: it stays the config's.
        (Off, None, false, true, true, Off, Source::Config),
        // A manual flip beats it, either way.
        (
            On,
            Some((On, false)),
            false,
            true,
            true,
            On,
            Source::Runtime,
        ),
        (
            On,
            Some((Off, false)),
            false,
            true,
            true,
            Off,
            Source::Runtime,
        ),
        (On, Some((On, true)), false, true, true, On, Source::All),
        // So does a window in force.
        (On, None, true, true, true, Off, Source::Maintenance),
    ];
    for (i, (config, o, window, auto, down, state, source)) in cases.iter().enumerate() {
        let mut data = StateData::default();
        if let Some((st, all)) = o {
            let seq = data.next_seq();
            let mut ov = ov(*st, seq);
            ov.since = at(1);
            if *all {
                data.global = Some(ov);
            } else {
                data.sites.insert("cloud".into(), ov);
            }
        }
        let windows: Vec<Window> = window
            .then(|| Window {
                id: "w1".into(),
                title: "disk swap".into(),
                sites: vec!["cloud".into()],
                start: at(0),
                end: at(10),
            })
            .into_iter()
            .collect();
        let d = data
            .decide("cloud", *config, at(5))
            .with_windows("cloud", &windows, at(5))
            .with_health(*auto, down.then(|| at(2)));
        assert_eq!((d.state, d.source), (*state, *source), "case {i}");
        if d.source == Source::Health {
            assert_eq!(d.since, Some(at(2)));
            assert_eq!(d.by_json(), "health");
        }
    }
    // `reset` during an outage gives the site back to health: the config's decision
    // (newer than the dropped override) is what health then turns offline.
    let mut data = StateData::default();
    let seq = data.next_seq();
    data.sites.insert("cloud".into(), ov(On, seq));
    data.sites.clear();
    let seq = data.next_seq();
    data.config.insert(
        "cloud".into(),
        ConfigMark {
            state: On,
            seq,
            since: Some(at(3)),
        },
    );
    let d = data
        .decide("cloud", On, at(5))
        .with_health(true, Some(at(2)));
    assert_eq!((d.state, d.source), (Off, Source::Health));
}

#[test]
fn newest_decision_wins() {
    let now = OffsetDateTime::now_utc();
    let mut s = StateData::default();
    assert_eq!(s.decide("a", SiteState::Online, now).source, Source::Config);
    s.sites.insert("a".into(), ov(SiteState::Offline, 1));
    assert_eq!(
        s.decide("a", SiteState::Online, now).state,
        SiteState::Offline
    );
    s.global = Some(ov(SiteState::Online, 2));
    let d = s.decide("a", SiteState::Offline, now);
    assert_eq!((d.state, d.source), (SiteState::Online, Source::All));
    s.sites.insert("a".into(), ov(SiteState::Offline, 3));
    assert_eq!(
        s.decide("a", SiteState::Online, now).source,
        Source::Runtime
    );
    // A config edit after both wins.
    s.config.insert(
        "a".into(),
        ConfigMark {
            state: SiteState::Online,
            seq: 4,
            since: None,
        },
    );
    assert_eq!(s.decide("a", SiteState::Online, now).source, Source::Config);
}

#[test]
fn expired_overrides_fall_back() {
    let now = OffsetDateTime::now_utc();
    let mut s = StateData::default();
    s.sites.insert("a".into(), ov(SiteState::Offline, 1));
    let mut g = ov(SiteState::Online, 2);
    g.until = Some(now - Duration::seconds(1));
    s.global = Some(g);
    assert_eq!(
        s.decide("a", SiteState::Online, now).state,
        SiteState::Offline
    );
    assert!(s.prune_expired(now));
    assert!(s.global.is_none());
    assert!(!s.prune_expired(now));
}

#[test]
fn save_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    assert_eq!(load(&path).unwrap(), StateData::default());
    let mut s = StateData {
        seq: 7,
        ..StateData::default()
    };
    s.sites.insert("a".into(), ov(SiteState::Offline, 7));
    save(&path, &s).unwrap();
    assert_eq!(load(&path).unwrap(), s);
    fs::write(&path, "{not json").unwrap();
    assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
    let aside = quarantine(&path).unwrap();
    assert!(aside.exists() && !path.exists());
}
