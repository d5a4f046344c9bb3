//! Webhook notifications end to end (CONTRACT sections 11, 15 and 17), the delivery: a
//! target answering 500 or 429 is retried with the same event, a hanging one holds up
//! neither a flip nor another target, one down longer than `give_up_after` has its
//! events marked failed, pending deliveries survive SIGKILL and go out in order, and a
//! site state edited in the config is announced at start-up or on reload. Seen through
//! the requests that arrive (`common/webhook.rs`), `offramp notify list` and
//! `/metrics`.
//!
//! Time knobs keep it fast: `give_up_after = "2s"`, `timeout = "500ms"`; every wait is
//! bounded (`LIMIT`, in `common/notify_helpers.rs`). The first retry comes about 0.5 s
//! after a failure (backoff 0.5 s · 2^n), so no test needs more than a few seconds.
//! What the events themselves carry is checked in `tests/notify.rs`.

mod common;

#[path = "common/webhook.rs"]
mod webhook;

#[path = "common/notify_helpers.rs"]
mod notify_helpers;

use std::time::{Duration, Instant};

use common::*;
use notify_helpers::*;
use serde_json::Value;
use webhook::*;

// ---------------------------------------------------------------------------------
// Failures and retries
// ---------------------------------------------------------------------------------

#[test]
fn a_target_answering_500_is_retried_with_the_same_event_until_it_takes_it() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    hook.script(&[Reply::Status(500), Reply::Status(500)]);
    let o = Offramp::start(&config(
        &origin,
        &target("ops", &hook.url("/hook"), "events = [\"site\"]\n"),
    ));
    flip(&o, "offline");
    hook.wait_count(1, LIMIT, "the first attempt");
    let failing = wait_for(LIMIT, "ops shown failing with its last error", || {
        let e = notify_entry(&o, "ops");
        (e["status"] != "ok" && !e["last_error"].is_null()).then_some(e)
    });
    assert!(
        failing["status"] == "pending" || failing["status"] == "retrying",
        "{failing}"
    );
    assert!(json_u64(&failing, "pending") >= 1, "{failing}");
    assert!(
        failing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "the error says what the target answered: {failing}"
    );
    rfc3339(&failing["next_attempt"]);

    let reqs = hook.wait_until(LIMIT, "a delivered attempt", |r| {
        r.iter().any(Recorded::delivered)
    });
    assert_eq!(
        reqs.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [Some(500), Some(500), Some(200)],
        "{}",
        describe(&reqs)
    );
    for r in &reqs[1..] {
        assert_eq!(
            r.body, reqs[0].body,
            "a retry sends the same event, byte for byte"
        );
        assert_eq!(
            r.header("x-offramp-delivery"),
            reqs[0].header("x-offramp-delivery")
        );
    }
    for w in reqs.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(200),
            "a back-off between attempts, not a hot loop: {gap:?}"
        );
    }
    let ev = reqs[0].json();
    assert_eq!(ev["type"], "site.offline", "{ev}");

    let ok = wait_idle(&o, "ops", LIMIT);
    assert_eq!(json_u64(&ok, "delivered"), 1, "{ok}");
    assert_eq!(json_u64(&ok, "failed"), 0, "retried, not given up: {ok}");
    rfc3339(&ok["last_ok"]);
    assert_eq!(
        target_metric(&o, "offramp_notify_failures_total", "ops"),
        Some(2.0),
        "two failed attempts"
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_deliveries_total", "ops"),
        Some(1.0)
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_pending", "ops"),
        Some(0.0)
    );

    // Healthy again: the next event goes at once, and only once.
    flip(&o, "online");
    let evs = wait_events(&hook, "site.online", |e| e.len() >= 2);
    wait_idle(&o, "ops", LIMIT);
    assert_eq!(kinds(&evs), ["site.offline", "site.online"]);
    assert_eq!(hook.count(), 4, "{}", describe(&hook.requests()));
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    hook.script(&[Reply::RetryAfter(1)]);
    let o = Offramp::start(&config(
        &origin,
        &target("ops", &hook.url("/hook"), "events = [\"site\"]\n"),
    ));
    flip(&o, "offline");
    let reqs = hook.wait_until(LIMIT, "the attempt after the 429", |r| {
        r.iter().any(Recorded::delivered)
    });
    assert_eq!(reqs.len(), 2, "{}", describe(&reqs));
    assert_eq!(reqs[0].answered, Some(429));
    assert_eq!(reqs[1].body, reqs[0].body, "the same event again");
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 is waited for (the back-off alone would be 0.5 s): {gap:?}"
    );
    assert!(
        gap < Duration::from_secs(5),
        "not much longer than asked: {gap:?}"
    );
    wait_idle(&o, "ops", LIMIT);
}

#[test]
fn a_hanging_target_delays_neither_a_flip_nor_another_target() {
    let origin = TestOrigin::start("origin");
    // `slow` times out after 500 ms and is retried; `stuck` would hold a delivery 5 s.
    let slow = Webhook::start();
    slow.set_default(Reply::Hang);
    let stuck = Webhook::start();
    stuck.set_default(Reply::Hang);
    let fast = Webhook::start();
    let o = Offramp::start(&config(
        &origin,
        &format!(
            "{}{}{}",
            target(
                "slow",
                &slow.url("/"),
                "events = [\"site\"]\ntimeout = \"500ms\"\n"
            ),
            target(
                "stuck",
                &stuck.url("/"),
                "events = [\"site\"]\ntimeout = \"5s\"\n"
            ),
            target("fast", &fast.url("/"), "events = [\"site\"]\n"),
        ),
    ));
    let t = Instant::now();
    flip(&o, "offline");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the flip does not wait for deliveries: {took:?}"
    );
    slow.wait_count(1, LIMIT, "slow's first attempt");
    stuck.wait_count(1, LIMIT, "stuck's first attempt");

    // Both hang now; a second flip and `fast` are not held up by them.
    let t = Instant::now();
    flip(&o, "online");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "a flip while two targets hang: {took:?}"
    );
    let got = fast.wait_until(
        Duration::from_secs(2),
        "fast to get both flips while the others hang",
        |r| r.len() >= 2,
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "promptly: {:?}",
        t.elapsed()
    );
    assert_eq!(
        kinds(&events(&got)),
        ["site.offline", "site.online"],
        "{}",
        describe(&got)
    );
    wait_idle(&o, "fast", LIMIT);

    // `timeout` bounds each attempt: slow is tried again, with the same first event.
    let tries = slow.wait_count(3, LIMIT, "slow retried after its 500 ms timeouts");
    for r in &tries {
        assert_eq!(
            r.body, tries[0].body,
            "in order: the first event until it is taken"
        );
        assert_eq!(r.answered, None);
    }
    assert_eq!(
        stuck.count(),
        1,
        "stuck's attempt is still within its 5 s timeout"
    );
    let e = notify_entry(&o, "fast");
    assert_eq!(json_u64(&e, "delivered"), 2, "{e}");
    let e = notify_entry(&o, "slow");
    assert_ne!(e["status"], "ok", "{e}");
    assert!(e["last_error"].is_string(), "the timeout is the error: {e}");
    assert_eq!(
        json_u64(&e, "pending"),
        2,
        "pending counts what this target is to get (events = [\"site\"]: two flips): {e}"
    );
}

#[test]
fn a_target_down_longer_than_give_up_after_has_its_events_marked_failed() {
    let origin = TestOrigin::start("origin");
    let mut dead = Webhook::start_down();
    let live = Webhook::start();
    let o = Offramp::start(&config(
        &origin,
        &format!(
            "{}{}",
            target(
                "dead",
                &dead.url("/"),
                "events = [\"site\"]\ngive_up_after = \"2s\"\n"
            ),
            target("live", &live.url("/"), "events = [\"site\"]\n"),
        ),
    ));
    let t = Instant::now();
    flip(&o, "offline");
    flip(&o, "online");
    let got = wait_events(&live, "live to get both flips", |e| e.len() >= 2);
    assert_eq!(kinds(&got), ["site.offline", "site.online"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "live is not held up by dead: {:?}",
        t.elapsed()
    );
    let e = wait_for(LIMIT, "dead shown failing", || {
        let e = notify_entry(&o, "dead");
        e["last_error"].is_string().then_some(e)
    });
    assert_ne!(e["status"], "ok", "dead is failing: {e}");

    let e = wait_for(LIMIT, "dead's two events given up", || {
        let e = notify_entry(&o, "dead");
        (e["failed"].as_u64() >= Some(2) && e["pending"] == 0).then_some(e)
    });
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "not before give_up_after: {:?}",
        t.elapsed()
    );
    assert_eq!(
        json_u64(&e, "failed"),
        2,
        "the two site events given up, nothing of a class the target does not get \
         (events = [\"site\"]): {e}"
    );
    let failures = e["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("failures is a list: {e}"));
    let mut types: Vec<&str> = failures
        .iter()
        .map(|f| f["type"].as_str().unwrap_or_default())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["site.offline", "site.online"], "{e}");
    let mut failed_ids: Vec<&str> = failures
        .iter()
        .map(|f| f["event"].as_str().unwrap_or_default())
        .collect();
    failed_ids.sort_unstable();
    let mut live_ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap_or("")).collect();
    live_ids.sort_unstable();
    assert_eq!(failed_ids, live_ids, "the same events live got: {e}");
    for f in failures {
        let (at, failed_at) = (rfc3339(&f["at"]), rfc3339(&f["failed_at"]));
        // (Times may be shown to the second.)
        assert!(
            failed_at - at >= time::Duration::seconds(1),
            "given up once older than give_up_after: {f}"
        );
        assert!(
            f["error"].as_str().is_some_and(|s| !s.is_empty()),
            "the last error: {f}"
        );
    }
    let table = o.cli(&["notify", "list"]).ok().stdout;
    assert!(
        table.contains("dead") && table.contains("site.offline") && table.contains("site.online"),
        "the table lists the failed events:\n{table}"
    );
    assert!(
        target_metric(&o, "offramp_notify_given_up_total", "dead").unwrap_or(0.0) >= 1.0,
        "given up counted"
    );
    assert!(
        target_metric(&o, "offramp_notify_failures_total", "dead").unwrap_or(0.0) >= 2.0,
        "failed attempts counted"
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_pending", "dead"),
        Some(0.0)
    );
    assert_eq!(
        target_metric(&o, "offramp_notify_given_up_total", "live").unwrap_or(0.0),
        0.0
    );

    // Back up: the next event is delivered, the given-up ones are not.
    dead.up();
    flip(&o, "offline");
    let back = dead.wait_until(LIMIT, "dead, up again, to get the next event", |r| {
        r.iter().any(Recorded::delivered)
    });
    let evs = events(&back);
    assert_eq!(kinds(&evs), ["site.offline"], "{}", describe(&back));
    assert!(
        !live_ids.contains(&evs[0]["id"].as_str().unwrap_or_default()),
        "a new event"
    );
    let e = wait_idle(&o, "dead", LIMIT);
    assert_eq!(json_u64(&e, "delivered"), 1, "{e}");
    assert_eq!(json_u64(&e, "failed"), 2, "{e}");
}

// ---------------------------------------------------------------------------------
// Restarts and config edits
// ---------------------------------------------------------------------------------

#[test]
fn pending_deliveries_survive_sigkill_and_go_out_in_order_after_the_restart() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    hook.set_default(Reply::Status(500));
    // Every class, so that `pending` counts exactly what this target is to get: three
    // flips, each a site event and a component event.
    let o = Offramp::start(&config(&origin, &target("ops", &hook.url("/hook"), "")));
    flip(&o, "offline");
    flip(&o, "online");
    flip(&o, "offline");
    let first = hook.wait_count(1, LIMIT, "the first attempt")[0].json();
    wait_for(LIMIT, "six events pending", || {
        (notify_entry(&o, "ops")["pending"] == 6).then_some(())
    });

    let o = o.kill_and_restart();
    hook.set_default(Reply::Status(200));
    hook.wait_until(LIMIT, "six events delivered after the restart", |r| {
        let delivered: Vec<Recorded> = r.iter().filter(|r| r.delivered()).cloned().collect();
        events(&delivered).len() >= 6
    });
    let e = wait_idle(&o, "ops", LIMIT);
    let reqs = hook.requests();
    let evs = events(&reqs);
    assert_eq!(
        evs.len(),
        6,
        "each change once, none lost, nothing made up at start-up:\n{}",
        describe(&reqs)
    );
    let sites = class(&evs, "site.");
    assert_eq!(
        kinds(sites.iter().copied()),
        ["site.offline", "site.online", "site.offline"],
        "{}",
        describe(&reqs)
    );
    for ev in &sites {
        assert_eq!(ev["source"], "flip", "{ev}");
    }
    let comps: Vec<&Value> = class(&evs, "component.")
        .into_iter()
        .map(|e| &e["component"]["status"])
        .collect();
    assert_eq!(
        comps,
        ["under_maintenance", "operational", "under_maintenance"],
        "{}",
        describe(&reqs)
    );
    assert_eq!(
        evs[0], first,
        "the event attempted before the kill is the one delivered first, the same id"
    );
    // In order: once an event is attempted, the ones before it are never sent again.
    let index: Vec<usize> = reqs
        .iter()
        .map(|r| {
            let id = r.json()["id"].clone();
            evs.iter().position(|e| e["id"] == id).expect("known id")
        })
        .collect();
    assert!(
        index.windows(2).all(|w| w[0] <= w[1]),
        "attempts in event order: {index:?}\n{}",
        describe(&reqs)
    );
    for i in 0..evs.len() {
        let delivered = reqs
            .iter()
            .zip(&index)
            .filter(|(r, ix)| r.delivered() && **ix == i)
            .count();
        assert_eq!(
            delivered,
            1,
            "event {i} delivered once after the restart:\n{}",
            describe(&reqs)
        );
    }
    assert_eq!(json_u64(&e, "failed"), 0, "{e}");
}

#[test]
fn a_state_edited_in_the_config_while_stopped_or_running_is_announced_with_source_config() {
    let origin = TestOrigin::start("origin");
    let hook = Webhook::start();
    let notify = target("ops", &hook.url("/hook"), "events = [\"site\"]\n");
    let mut o = Offramp::start(&config_with_state(&origin, "online", &notify));
    assert_eq!(o.get("cloud.test", "/").status, 200, "online");
    // A flip and its reset, both delivered: what was announced is on record.
    flip(&o, "offline");
    flip(&o, "reset");
    wait_events(&hook, "the flip and the reset", |e| e.len() >= 2);
    wait_idle(&o, "ops", LIMIT);
    assert_eq!(o.stop(), Some(0), "graceful stop; log:\n{}", o.log_text());

    // Edited while offramp was not running: announced at start-up.
    o.write_config(&config_with_state(&origin, "offline", &notify));
    let dir = std::mem::replace(&mut o.dir, tempfile::tempdir().expect("tempdir"));
    drop(o);
    let o = Offramp::start_in(dir, &[]);
    assert_eq!(
        o.get("cloud.test", "/").status,
        302,
        "offline by the config"
    );
    let evs = wait_events(&hook, "site.offline from the config", |e| e.len() >= 3);
    wait_idle(&o, "ops", LIMIT);
    let evs_now = events(&hook.requests());
    assert_eq!(
        kinds(&evs_now),
        ["site.offline", "site.online", "site.offline"],
        "one event for the edit, none for the starts themselves: {}",
        describe(&hook.requests())
    );
    assert_eq!(evs[2]["site"], "cloud", "{}", evs[2]);
    assert_eq!(evs[2]["state"], "offline", "{}", evs[2]);
    assert_eq!(evs[2]["source"], "config", "{}", evs[2]);

    // Edited while running: announced by the reload.
    o.replace_config(&config_with_state(&origin, "online", &notify));
    o.cli(&["reload"]).ok();
    let evs = wait_events(&hook, "site.online from the config", |e| e.len() >= 4);
    wait_idle(&o, "ops", LIMIT);
    assert_eq!(
        kinds(&evs),
        ["site.offline", "site.online", "site.offline", "site.online"]
    );
    assert_eq!(evs[3]["source"], "config", "{}", evs[3]);
    assert_eq!(hook.count(), 4, "{}", describe(&hook.requests()));
}
