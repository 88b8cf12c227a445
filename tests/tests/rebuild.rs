//! Shadow rebuilds and point-in-time snapshots against the real broker.

mod support;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use edison_common::kafka::{committed_offsets, describe_group};
use edison_consumers::command::execute;
use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use support::*;

async fn reservations(store: &Store) -> Vec<Reservation> {
    warehouse::reservations(&connect(&Warehouse, store).await.pool).await.unwrap()
}

/// The reservations a shadow being built holds so far, read as it is (0 while it has no file or
/// table yet): connecting as the department would migrate it, beside the rebuild migrating it.
async fn rows_so_far(store: &Store) -> usize {
    let Ok(Some(db)) = edison_common::db::open_existing(&store.url, None).await else { return 0 };
    let count = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM reservations").fetch_one(&db.pool).await;
    count.map_or(0, |rows| rows as usize)
}

async fn rebuild(topic: &str, store: &Store, args: &[&str]) -> anyhow::Result<()> {
    let mut command = vec!["rebuild"];
    command.extend_from_slice(args);
    let cli = department_cli(topic, "warehouse", store, &command);
    execute(&Warehouse, &cli, CancellationToken::new()).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_shadow_rebuild_swaps_in_an_identical_projection() {
    shadow_rebuild_swaps_in_an_identical_projection(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_shadow_rebuild_swaps_in_an_identical_projection() {
    shadow_rebuild_swaps_in_an_identical_projection(Backend::Postgres).await;
}

async fn shadow_rebuild_swaps_in_an_identical_projection(backend: Backend) {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(400)).await;
    let store = Store::new(backend);
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let before = reservations(&store).await;
    // Events the live consumer has not seen yet: verification brings both to the same offsets.
    produce_events(&topic, &lifecycles(420)[400..]).await;

    rebuild(&topic, &store, &["--shadow"]).await.expect("rebuild");

    let after = reservations(&store).await;
    assert_eq!(after.len(), 420);
    assert_eq!(after[..], before[..].iter().chain(&after[400..]).cloned().collect::<Vec<_>>()[..]);
    let config = kafka_args(&topic).client_config();
    let live_offsets = committed_offsets(&config, &group_for(&topic, "warehouse"), &topic).unwrap();
    let end: i64 = read_all(&topic).len() as i64;
    assert_eq!(live_offsets.values().sum::<i64>(), end, "the live group's offsets moved to the shadow's");
    let (state, _) = describe_group(&config, &group_for(&topic, "warehouse.shadow")).unwrap();
    assert_eq!(state, "Dead", "the shadow group is gone");
    let again = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!(again.consumed, 0, "nothing left to apply after the swap");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_differing_shadow_is_listed_and_not_swapped_and_an_interrupted_one_leaves_live_intact() {
    let topic = orders_topic(2).await;
    produce_events(&topic, &lifecycles(200)).await;
    let store = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    // Damage the live projection the way a bug would.
    let db = connect(&Warehouse, &store).await;
    sqlx::query("UPDATE reservations SET batteries_reserved = 99 WHERE order_id IN (SELECT order_id FROM reservations ORDER BY order_id LIMIT 3)")
        .execute(&db.pool)
        .await
        .unwrap();
    let damaged = reservations(&store).await;

    // Interrupted at once: the shadow build stops, live is untouched.
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let cli = department_cli(&topic, "warehouse", &store, &["rebuild", "--shadow"]);
    let error = execute(&Warehouse, &cli, shutdown).await.unwrap_err();
    assert!(format!("{error:#}").contains("live projection is untouched"), "{error:#}");
    assert_eq!(reservations(&store).await, damaged);

    // Resumed: verification finds the three damaged rows and refuses to swap.
    let error = rebuild(&topic, &store, &["--shadow"]).await.unwrap_err();
    assert!(format!("{error:#}").contains("differs"), "{error:#}");
    assert_eq!(reservations(&store).await, damaged, "nothing swapped");

    // Accepting the difference swaps in the repaired projection.
    rebuild(&topic, &store, &["--shadow", "--accept-diff"]).await.unwrap();
    let want: Vec<Reservation> = latest_states(&read_all(&topic)).values().map(rules::reservation).collect();
    assert_eq!(reservations(&store).await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shadow_waits_for_the_live_consumer_to_stop() {
    let topic = orders_topic(1).await;
    produce_events(&topic, &lifecycles(50)).await;
    let store = Store::sqlite();
    let live_cli = department_cli(&topic, "warehouse", &store, &["run"]);
    let stop_live = CancellationToken::new();
    let live = tokio::spawn({
        let stop_live = stop_live.clone();
        async move { execute(&Warehouse, &live_cli, stop_live).await }
    });
    let config = kafka_args(&topic).client_config();
    while describe_group(&config, &group_for(&topic, "warehouse")).unwrap().1.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = rebuild(&topic, &store, &["--shadow"]).await.unwrap_err();
    assert!(format!("{error:#}").contains("active member"), "{error:#}");
    stop_live.cancel();
    live.await.unwrap().unwrap();
    rebuild(&topic, &store, &["--shadow"]).await.expect("swap once the live consumer stopped");
    rebuild(&topic, &store, &["--discard"]).await.expect("discarding nothing is fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_shows_the_state_as_of_a_past_time() {
    let topic = orders_topic(2).await;
    let events = lifecycles(100);
    produce_events(&topic, &events).await;
    // lifecycles() spaces orders a minute apart; cut in the middle of the history.
    let as_of = events[events.len() / 2].occurred_at;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.db");
    let iso = time::OffsetDateTime::from_unix_timestamp_nanos(as_of as i128 * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cli = department_cli(&topic, "warehouse", &Store::sqlite(), &["snapshot", "--as-of", &iso, "--out", out.to_str().unwrap()]);
    let stats = execute(&Warehouse, &cli, CancellationToken::new()).await.unwrap().unwrap();
    assert!(stats.skipped > 0 && stats.applied > 0);

    let past: Vec<_> = read_all(&topic)
        .into_iter()
        .filter(|r| {
            let event = edison_schemas::Codec::new().unwrap().decode(r.value.as_ref().unwrap()).unwrap();
            event.occurred_at <= as_of
        })
        .collect();
    let want: Vec<Reservation> = latest_states(&past).values().map(rules::reservation).collect();
    let snapshot = Store::at(&format!("sqlite://{}", out.display()));
    assert_eq!(reservations(&snapshot).await, want);

    let again = department_cli(&topic, "warehouse", &Store::sqlite(), &["snapshot", "--as-of", &iso, "--out", out.to_str().unwrap()]);
    let error = execute(&Warehouse, &again, CancellationToken::new()).await.unwrap_err();
    assert!(format!("{error:#}").contains("already exists"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_rebuild_killed_mid_way_leaves_live_intact_and_resumes() {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(15_000)).await;
    let store = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let live = reservations(&store).await;

    let shadow = Store::at(&store.url.replace("projection.db", "projection.shadow.db"));
    let process = Process(
        std::process::Command::new(binary("edison-consumers", "warehouse"))
            .args(department_args(&topic, "warehouse", &store))
            // A short session, so the resumed build need not wait long for the dead member.
            .args(["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"])
            .args(["rebuild", "--shadow", "--batch-size", "100"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(std::time::Instant::now() < deadline, "the shadow never got rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows = rows_so_far(&shadow).await;
        assert!(rows < live.len(), "the shadow finished before the kill; make it longer");
        if rows > 0 {
            break;
        }
    }
    drop(process); // SIGKILL mid-build
    assert_eq!(reservations(&store).await, live, "the live projection is untouched");

    rebuild(&topic, &store, &["--shadow"]).await.expect("the rebuild resumes and swaps");
    assert_eq!(reservations(&store).await, live, "the rebuilt projection equals the live one");
}
