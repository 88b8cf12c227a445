//! The rebuild planner against the real broker: `reset-offsets` and `rebuild --shadow` print,
//! before they start, the events to replay and how long that takes at the apply rate the
//! projection measured on its own past runs (kept in its database, beside its checkpoints), or
//! say that there is no measurement yet. The measured rate survives a reset to the earliest
//! offsets and a shadow swap: it is the department's, not its data's.
//!
//! The runtime records the rate at the end of each run; here the test records a known one with
//! [`planner::record_rate`] itself, so the estimate it expects is exact.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edison_consumers::departments::Warehouse;
use edison_consumers::runtime::{checkpoint, planner};
use support::*;

/// `warehouse ARGS...` as a real process; its stdout, once it succeeded.
fn warehouse(topic: &str, store: &Store, args: &[&str]) -> String {
    let output = Command::new(binary("edison-consumers", "warehouse"))
        .args(department_args(topic, "warehouse", store))
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "warehouse {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// The line of `text` starting with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
}

/// From "...; estimated: ~N min at R events/s (measured on ...)": (seconds, R).
fn estimate(line: &str) -> (f64, f64) {
    let rest = line.split_once("estimated: ~").unwrap_or_else(|| panic!("no estimate in {line:?}")).1;
    let (duration, rest) = rest.split_once(" at ").unwrap();
    let seconds = match duration.split_once(' ') {
        Some((n, "s")) => n.parse::<f64>().unwrap(),
        Some((n, "min")) => n.parse::<f64>().unwrap() * 60.0,
        _ => panic!("unexpected duration {duration:?} in {line:?}"),
    };
    let rate = rest.split_once(" events/s").unwrap().0.replace(',', "").parse().unwrap();
    (seconds, rate)
}

/// Recorded below: 3,000 events in 6,000 busy seconds.
const RATE: f64 = 0.5;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_estimates_come_from_the_projections_measured_rate() {
    estimates_come_from_the_projections_measured_rate(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_estimates_come_from_the_projections_measured_rate() {
    estimates_come_from_the_projections_measured_rate(Backend::Postgres).await;
}

async fn estimates_come_from_the_projections_measured_rate(backend: Backend) {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(100)).await;
    let store = Store::new(backend);
    let log: u64 = watermarks(&topic).values().map(|(low, high)| (high - low) as u64).sum();
    assert_eq!(log, 170, "100 placed, 50 paid, 20 cancelled");
    let dry_run = || warehouse(&topic, &store, &["reset-offsets", "--to-earliest"]);
    let no_estimate = format!(
        "The next run consumes {log} events; no estimate yet: this projection has no measured run (a run of at least 1,000 records and 1 s of work measures one)."
    );

    // Before any run: no database, so no measurement, and the dry run creates none.
    let plan = dry_run();
    assert!(plan.contains(&no_estimate), "{plan}");
    assert!(plan.contains("DRY RUN"), "{plan}");
    if let Backend::Sqlite = backend {
        assert!(!Path::new(store.url.trim_start_matches("sqlite://")).exists(), "a dry run created the projection");
    }

    // A projection database the runtime never ran on (no rates table): still none.
    let db = connect(&Warehouse, &store).await;
    assert!(dry_run().contains(&no_estimate));

    // A run too small to measure changes nothing; a measured one gives the estimate.
    checkpoint::ensure_table(&db.pool).await.unwrap();
    planner::record_rate(&db.pool, &topic, 999, Duration::from_secs(600)).await.unwrap();
    assert!(dry_run().contains(&no_estimate), "a trickle is not a measurement");
    planner::record_rate(&db.pool, &topic, 3_000, Duration::from_secs(6_000)).await.unwrap();
    planner::record_rate(&db.pool, "another-topic", 1_000_000, Duration::from_secs(1)).await.unwrap();
    db.pool.close().await;

    let expected = log as f64 / RATE; // 340 s
    let check = |text: &str, prefix: &str, projection: &str| {
        let found = line(text, prefix);
        assert!(found.starts_with(&format!("{prefix} {log} events; estimated: ~")), "{found}");
        assert!(found.ends_with(&format!("(measured on {projection}'s past runs).")), "{found}");
        let (seconds, rate) = estimate(found);
        assert_eq!(rate, RATE, "the rate recorded for this topic: {found}");
        assert!((seconds - expected).abs() <= 30.0, "{seconds} s for {log} events at {RATE}/s: {found}");
    };
    let plan = dry_run();
    check(&plan, "The next run consumes", "this projection");
    assert!(!plan.contains("no estimate"), "{plan}");
    // The other plans of the same group and database estimate the same way.
    let plan = warehouse(&topic, &store, &["reset-offsets", "--to-offset", "0"]);
    check(&plan, "The next run consumes", "this projection");

    // A reset to the earliest offsets empties the projection and its checkpoints, not the rate.
    let done = warehouse(&topic, &store, &["reset-offsets", "--to-earliest", "--execute"]);
    check(&done, "The next run consumes", "this projection");
    assert!(done.contains("the next run rebuilds the projection from zero"), "{done}");
    check(&dry_run(), "The next run consumes", "this projection");

    // The shadow estimates the whole log from the live projection's rate; the swapped-in
    // projection keeps that rate.
    let rebuilt = warehouse(&topic, &store, &["rebuild", "--shadow"]);
    check(&rebuilt, "The shadow replays the whole log:", "the live projection");
    assert!(rebuilt.contains("swapped: the rebuilt projection is live"), "{rebuilt}");
    let after = warehouse(&topic, &store, &["reset-offsets", "--to-earliest"]);
    check(&after, "The next run consumes", "this projection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_of_a_projection_never_measured_says_so() {
    let topic = orders_topic(2).await;
    produce_events(&topic, &lifecycles(30)).await;
    let store = Store::sqlite();
    let rebuilt = warehouse(&topic, &store, &["rebuild", "--shadow"]);
    assert!(
        rebuilt.contains(
            "The shadow replays the whole log: 51 events; no estimate yet: the live projection has no measured run (a run of at least 1,000 records and 1 s of work measures one)."
        ),
        "{rebuilt}"
    );
}
