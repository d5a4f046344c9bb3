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
