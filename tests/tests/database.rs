//! Database failure modes (unreachable at start, a failed migration, an outage mid-run), and
//! what a finished run leaves behind.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use edison_consumers::command::execute;
use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_at_start_is_a_clear_error_without_the_password() {
    let store = Store::at("postgres://edison:s3cret@127.0.0.1:1/edison");
    let cli = department_cli("orders-unused", "g", &store, &["run"]);
    let error = execute(&Warehouse, &cli, CancellationToken::new()).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("cannot connect to the database at postgres://edison:***@127.0.0.1:1/edison"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_is_a_clear_error() {
    let store = Store::sqlite();
    let db = connect(&Warehouse, &store).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00'").execute(&db.pool).await.unwrap();
    db.pool.close().await;
    let cli = department_cli("orders-unused", "g", &store, &["report"]);
    let error = execute(&Warehouse, &cli, CancellationToken::new()).await.unwrap_err();
    assert!(format!("{error:#}").contains("database migration failed"), "{error:#}");
}

/// A PostgreSQL of the test's own, so stopping it disturbs no other test.
struct OwnPostgres {
    home: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = OwnPostgres { home: std::env::temp_dir().join(unique("edison-pg")), port };
        pg.run("start");
        pg
    }

    fn url(&self) -> String {
        format!("postgres://edison:edison@127.0.0.1:{}/edison", self.port)
    }

    fn run(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres-local");
        let status = Command::new(script)
            .arg(action)
            .env("EDISON_PG_HOME", &self.home)
            .env("EDISON_PG_PORT", self.port.to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "postgres-local {action}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres-local");
        let _ = Command::new(script)
            .args(["stop", "--purge"])
            .env("EDISON_PG_HOME", &self.home)
            .env("EDISON_PG_PORT", self.port.to_string())
            .stdout(std::process::Stdio::null())
            .status();
    }
}

fn committed(group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut query = TopicPartitionList::new();
    for partition in 0..partitions {
        query.add_partition(topic, partition);
    }
    let offsets = consumer.committed_offsets(query, Duration::from_secs(10)).unwrap();
    offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_mid_run_is_retried_and_offsets_hold_still() {
    let pg = OwnPostgres::start();
    let topic = orders_topic(3).await;
    let events = lifecycles(3000);
    produce_events(&topic, &events).await;
    let store = Store::at(&pg.url());
    let cli = department_cli(&topic, "warehouse", &store, &["run", "--until-caught-up", "--batch-size", "50"]);
    let run = tokio::spawn(async move { execute(&Warehouse, &cli, CancellationToken::new()).await });

    let db = connect(&Warehouse, &store).await;
    while warehouse::reservations(&db.pool).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.pool.close().await;
    pg.run("stop");
    // Offsets stored before the outage may still be committed during the first second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = committed(&group_for(&topic, "warehouse"), &topic, 3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(committed(&group_for(&topic, "warehouse"), &topic, 3), during, "no offset advances while the database is down");
    assert!(!run.is_finished(), "the run waits for the database instead of failing");
    let total: i64 = during.values().sum();
    assert!(total < events.len() as i64, "the outage began mid-run");

    pg.run("start");
    let stats = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap().unwrap().unwrap().unwrap();
    assert_eq!(stats.dead_lettered, 0, "a database outage never dead-letters");
    let want: Vec<Reservation> = latest_states(&read_all(&topic)).values().map(rules::reservation).collect();
    let got = warehouse::reservations(&connect(&Warehouse, &store).await.pool).await.unwrap();
    assert_eq!(got, want);
}

/// SQLite's outage: another process holding the write lock for longer than the busy timeout
/// (10 s), so the runtime's writer gets SQLITE_BUSY, not just a wait. The run retries the
/// batch, stores no offset meanwhile, and applies everything once the lock is gone.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_database_locked_by_another_writer_is_retried_and_offsets_hold_still() {
    let topic = orders_topic(3).await;
    let events = lifecycles(500);
    let (first, rest) = events.split_at(1);
    produce_events(&topic, first).await;
    let store = Store::sqlite();
    // Migrated before the run starts: two first migrations of one file at once would collide.
    let db = connect(&Warehouse, &store).await;
    let cli = department_cli(&topic, "warehouse", &store, &["run"]);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { execute(&Warehouse, &cli, shutdown).await }
    });
    while warehouse::reservations(&db.pool).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let group = group_for(&topic, "warehouse");
    // The first record's offset is committed once the run is up (commit interval: 1 s).
    let mut before = committed(&group, &topic, 3);
    while before.values().sum::<i64>() < 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        before = committed(&group, &topic, 3);
    }
    let mut lock = db.pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *lock).await.unwrap();
    produce_events(&topic, rest).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(!run.is_finished(), "the run waits for the database instead of failing");
    assert_eq!(committed(&group, &topic, 3), before, "no offset advances while the database is locked");
    sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);

    let want: Vec<Reservation> = latest_states(&read_all(&topic)).values().map(rules::reservation).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while warehouse::reservations(&db.pool).await.unwrap() != want {
        assert!(tokio::time::Instant::now() < deadline, "the run applied everything once the lock was gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let stats = run.await.unwrap().unwrap().unwrap();
    assert_eq!(stats.dead_lettered, 0, "a locked database never dead-letters");
}

/// A run that stops once caught up after a bulk load leaves PostgreSQL's planner statistics of
/// its tables fresh, for the reports and replays that follow: autovacuum would take a minute or
/// more, and only it sets `last_autoanalyze`, so `last_analyze` is the run's doing.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_catch_up_run_over_a_bulk_load_refreshes_the_planner_statistics() {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(6000)).await;
    let store = Store::new(Backend::Postgres);
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert!(stats.consumed >= 10_000, "a bulk load: {} records", stats.consumed);
    let db = connect(&Warehouse, &store).await;
    let analyzed: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND last_analyze IS NOT NULL ORDER BY relname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(analyzed.contains(&"reservations".to_owned()), "analyzed: {analyzed:?}");
}

/// `run` closes its database: SQLite writes the WAL back into the file and removes it, so after
/// a rebuild or backfill the file alone holds the projection (a copy of it is whole).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_finished_run_leaves_the_projection_in_the_file_alone() {
    let topic = orders_topic(1).await;
    produce_events(&topic, &lifecycles(20)).await;
    let store = Store::new(Backend::Sqlite);
    let file = PathBuf::from(store.url.trim_start_matches("sqlite://"));
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert!(!wal.exists(), "{} is left beside the file", wal.display());
    // The file alone, copied elsewhere, has every order.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&file, copy.path().join("projection.db")).unwrap();
    let copied = Store::at(&format!("sqlite://{}/projection.db", copy.path().display()));
    let db = connect(&Warehouse, &copied).await;
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reservations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(orders, 20);
}
