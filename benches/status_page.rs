//! The status host's overview with a busy platform: 50 components (in 5 groups), 20
//! unresolved incidents with 3 updates each and 1,000 past ones, 10 maintenance windows.
//! Target: rendered in under 5 ms (CONTRACT issue 18). Requests are answered from a
//! copy rendered once per snapshot; this measures the rendering itself, and the
//! Statuspage summary JSON.
//!
//! Run: `cargo bench --bench status_page`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use offramp::config::SiteState;
use offramp::platform::model::MaintenanceUpdate;
use offramp::platform::{
    Affected, ComponentStatus, ComponentView, Impact, Incident, IncidentStatus, IncidentUpdate,
    Indicator, Maintenance, MaintenanceStatus, PlatformView,
};
use offramp::status::{SiteView, View};
use time::{Duration, OffsetDateTime};

fn view() -> View {
    let now = OffsetDateTime::now_utc();
    let components: Vec<ComponentView> = (0..50)
        .map(|i| ComponentView {
            name: format!("service-{i}"),
            description: Some(format!("Service number {i} & friends")),
            group: Some(format!("Group {}", i % 5)),
            site: i < 40,
            status: if i % 7 == 0 {
                ComponentStatus::PartialOutage
            } else {
                ComponentStatus::Operational
            },
            checked: i < 40,
        })
        .collect();
    let incident = |n: usize, open: bool| {
        let at = now - Duration::hours(n as i64);
        let updates: Vec<IncidentUpdate> = (0..3)
            .map(|u| IncidentUpdate {
                id: format!("u{n}-{u}"),
                status: if open {
                    IncidentStatus::Identified
                } else {
                    IncidentStatus::Resolved
                },
                message: format!("Update {u} of incident {n}: <details> & more text to render. ")
                    .repeat(3),
                at: at + Duration::minutes(u),
                components: vec![],
                by: "uid 1000".into(),
            })
            .rev()
            .collect();
        Incident {
            id: format!("inc{n:08}"),
            name: format!("Incident {n} <with markup>"),
            status: if open {
                IncidentStatus::Identified
            } else {
                IncidentStatus::Resolved
            },
            impact: Impact::Major,
            components: vec![Affected {
                name: format!("service-{}", n % 50),
                status: ComponentStatus::PartialOutage,
            }],
            created_at: at,
            updated_at: at + Duration::minutes(2),
            resolved_at: (!open).then_some(at + Duration::minutes(2)),
            updates,
        }
    };
    let mut incidents: Vec<Incident> = (0..20).map(|n| incident(n, true)).collect();
    incidents.extend((20..1020).map(|n| incident(n, false)));
    let maintenances: Vec<Maintenance> = (0..10)
        .map(|n| Maintenance {
            id: format!("mnt{n:08}"),
            name: format!("Window {n}"),
            status: MaintenanceStatus::Scheduled,
            sites: vec![format!("service-{n}")],
            components: vec![],
            start: now + Duration::hours(n + 1),
            end: now + Duration::hours(n + 3),
            auto: true,
            created_at: now,
            updated_at: now,
            updates: vec![MaintenanceUpdate {
                id: format!("mu{n}"),
                status: MaintenanceStatus::Scheduled,
                message: "Planned work.".into(),
                at: now,
                by: "uid 0".into(),
            }],
        })
        .collect();
    let platform = PlatformView {
        indicator: Indicator::of(components.iter().map(|c| c.status), [Impact::Major]),
        components,
        incidents: Arc::new(incidents),
        maintenances: Arc::new(maintenances),
        history_days: 14,
        built_at: now,
        // 92 days of uptime for each of the 40 checked sites, some with downtime.
        uptime: Arc::new(
            (0..40)
                .map(|i| {
                    let days = (0..92)
                        .map(|d| offramp::platform::uptime::UptimeDay {
                            day: now.date() - Duration::days(d),
                            up_ms: 86_400_000
                                - (d as u64 * i as u64 * 1000) % 90_000_000 % 86_400_000,
                            down_ms: (d as u64 * i as u64 * 1000) % 90_000_000 % 86_400_000,
                        })
                        .collect();
                    (format!("service-{i}"), days)
                })
                .collect(),
        ),
    };
    View {
        title: "Home lab status".into(),
        links: vec![],
        sites: (0..40)
            .map(|i| SiteView::new(&format!("service-{i}"), SiteState::Online, None, None, None))
            .collect(),
        history: vec![],
        updated_at: now,
        platform: Arc::new(platform),
        rendered: Default::default(),
        subscribe: false,
    }
}

fn bench(c: &mut Criterion) {
    let v = view();
    let page = offramp::status::render_overview(&v);
    assert!(page.len() > 10_000 && page.contains("Incident 19 &lt;with markup&gt;"));
    c.bench_function(
        "overview: 50 components, 20 open + 1,000 past incidents",
        |b| b.iter(|| black_box(offramp::status::render_overview(black_box(&v)))),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
