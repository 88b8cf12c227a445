//! `DEPARTMENT reset-offsets` against the real broker: dry runs change nothing, live groups are
//! refused, a reset to the earliest offsets rebuilds the identical projection, Kafka's own tool
//! agrees on the offsets, a replay from a time changes nothing, and the mailer mails nothing again.
//! A new group on a kept database steps over what its checkpoint says is applied, and a reset
//! moves that checkpoint back.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use edison_common::kafka::committed_offsets;
use edison_consumers::command::execute;
use edison_consumers::departments::mailer::{self, MailerSettings};
use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::{Mailer, Warehouse};
use edison_consumers::runtime::{checkpoint, Projection};
use support::*;

async fn reset<P: Projection>(projection: &P, topic: &str, group: &str, store: &Store, args: &[&str]) -> anyhow::Result<()> {
    let mut command = vec!["reset-offsets"];
    command.extend_from_slice(args);
    execute(projection, &department_cli(topic, group, store, &command), CancellationToken::new()).await.map(|_| ())
}

/// The committed offsets of the group the test calls `group` (see [`group_for`]).
fn offsets(topic: &str, group: &str) -> HashMap<i32, i64> {
    committed_offsets(&kafka_args(topic).client_config(), &group_for(topic, group), topic).expect("committed offsets")
}

async fn reservations(store: &Store) -> Vec<Reservation> {
    warehouse::reservations(&connect(&Warehouse, store).await.pool).await.unwrap()
}

async fn checkpoints<P: Projection>(projection: &P, store: &Store, topic: &str) -> Vec<checkpoint::Checkpoint> {
    checkpoint::read(&connect(projection, store).await.pool, topic).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_changes_nothing() {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(300)).await;
    let (store, group) = (Store::sqlite(), "warehouse");
    run_until_caught_up(&Warehouse, &topic, group, &store).await;
    let (rows, committed) = (reservations(&store).await, offsets(&topic, group));
    let applied = checkpoints(&Warehouse, &store, &topic).await;
    assert_eq!(committed.values().sum::<i64>(), read_all(&topic).len() as i64);

    for args in [&["--to-earliest"][..], &["--to-datetime", "2020-01-01T00:00:00Z"], &["--to-offset", "0:0,1:1"]] {
        reset(&Warehouse, &topic, group, &store, args).await.expect("a dry run succeeds");
    }

    assert_eq!(offsets(&topic, group), committed, "committed offsets unchanged");
    assert_eq!(reservations(&store).await, rows, "rows unchanged");
    assert_eq!(checkpoints(&Warehouse, &store, &topic).await, applied, "checkpoints unchanged");
    let again = run_until_caught_up(&Warehouse, &topic, group, &store).await;
    assert_eq!(again.consumed, 0, "nothing to replay after dry runs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_is_refused_while_a_member_is_active() {
    let topic = orders_topic(2).await;
    produce_events(&topic, &lifecycles(50)).await;
    let (store, group) = (Store::sqlite(), "warehouse");
    let warehouse = binary("edison-consumers", "warehouse");
    let logs = tempfile::tempdir().unwrap();
    let member = start_member("warehouse", &topic, group, &store, &logs.path().join("warehouse.log"), 2).await;

    let refused = Command::new(&warehouse)
        .args(department_args(&topic, group, &store))
        .args(["reset-offsets", "--to-earliest", "--execute"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused") && stderr.contains("1 active member(s)"), "{stderr}");
    let dry_run = Command::new(&warehouse)
        .args(department_args(&topic, group, &store))
        .args(["reset-offsets", "--to-earliest"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&dry_run.stdout);
    assert!(dry_run.status.success(), "a dry run is no reset: {stdout}");
    assert!(stdout.contains("DRY RUN") && stdout.contains("a reset is refused until they stop"), "{stdout}");

    let deadline = Instant::now() + Duration::from_secs(60);
    while reservations(&store).await.len() < 50 {
        assert!(Instant::now() < deadline, "the member never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reservations(&store).await.len(), 50, "the refused reset emptied nothing");
    assert!(member.terminate().success());
    reset(&Warehouse, &topic, group, &store, &["--to-earliest", "--execute"]).await.expect("allowed once it stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_earliest_rebuilds_the_identical_projection_and_kafka_agrees() {
    to_earliest_rebuilds_the_identical_projection_and_kafka_agrees(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_to_earliest_rebuilds_the_identical_projection_and_kafka_agrees() {
    to_earliest_rebuilds_the_identical_projection_and_kafka_agrees(Backend::Postgres).await;
}

async fn to_earliest_rebuilds_the_identical_projection_and_kafka_agrees(backend: Backend) {
    let topic = orders_topic(3).await;
    let history = lifecycles(300);
    produce_events(&topic, &history).await;
    produce_events(&topic, &amendments(&history)).await;
    let erased = history[7].order.order_id.clone();
    produce(&topic, &[(erased.into_bytes(), None)]).await;
    let total = read_all(&topic).len() as u64;
    let (store, group) = (Store::new(backend), "warehouse");
    // Another department's group and database on the same topic, which the reset must not touch.
    let (other_store, other_group) = (Store::new(backend), "billing");
    run_until_caught_up(&Warehouse, &topic, group, &store).await;
    run_until_caught_up(&Warehouse, &topic, other_group, &other_store).await;
    let before = reservations(&store).await;
    let (other_rows, other_offsets) = (reservations(&other_store).await, offsets(&topic, other_group));
    assert_eq!(before.len(), 299);

    reset(&Warehouse, &topic, group, &store, &["--to-earliest", "--execute"]).await.expect("reset");

    assert!(reservations(&store).await.is_empty(), "the projection is emptied");
    assert!(checkpoints(&Warehouse, &store, &topic).await.is_empty(), "and its checkpoints for the topic");
    let low: BTreeMap<i32, i64> = watermarks(&topic).into_iter().map(|(p, (low, _))| (p, low)).collect();
    let committed: BTreeMap<i32, i64> = offsets(&topic, group).into_iter().collect();
    assert_eq!(committed, low, "the group's committed offsets are at the low watermarks");
    let described = kafka_describe_group(&group_for(&topic, group));
    assert_eq!(described.len(), 3, "{described:?}");
    for (row, (partition, (low, high))) in described.iter().zip(watermarks(&topic)) {
        assert_eq!((row.topic.as_str(), row.partition), (topic.as_str(), partition));
        assert_eq!(row.current_offset, Some(low), "Kafka's tool sees the reset offset: {row:?}");
        assert_eq!((row.log_end_offset, row.lag), (Some(high), Some(high - low)), "{row:?}");
    }
    assert_eq!(offsets(&topic, other_group), other_offsets, "the other group is untouched");
    assert_eq!(reservations(&other_store).await, other_rows, "the other projection is untouched");

    let rebuilt = run_until_caught_up(&Warehouse, &topic, group, &store).await;
    assert_eq!(rebuilt.consumed, total, "the next run replays the topic from the start");
    assert_eq!(reservations(&store).await, before, "every row as before, sequences included");
    assert_eq!(offsets(&topic, group).values().sum::<i64>(), total as i64);
}

/// What the dead-letter topic of `topic` holds.
fn dead_letters(topic: &str) -> usize {
    read_all(&format!("{topic}.dlq")).len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_group_steps_over_what_the_database_applied_and_a_reset_applies_it_again() {
    let topic = orders_topic(2).await;
    let events = lifecycles(100);
    produce_events(&topic, &events).await;
    // A poison record: decoding it again would dead-letter it again.
    produce(&topic, &[(events[0].order.order_id.clone().into_bytes(), Some(vec![]))]).await;
    let total = events.len() as u64 + 1;
    let store = Store::sqlite();
    let first = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!((first.consumed, first.already_applied, first.dead_lettered), (total, 0, 1));
    let rows = reservations(&store).await;
    assert_eq!(dead_letters(&topic), 1);

    // A new group (or one whose offsets Kafka expired) on the same database.
    let again = run_until_caught_up(&Warehouse, &topic, "warehouse-again", &store).await;
    assert_eq!((again.consumed, again.applied, again.already_applied, again.dead_lettered), (total, total, total, 0));
    assert_eq!(dead_letters(&topic), 1, "nothing before the checkpoint was decoded again");
    assert_eq!(reservations(&store).await, rows);
    assert_eq!(offsets(&topic, "warehouse-again").values().sum::<i64>(), total as i64, "its offsets are committed");

    // A reset moves the checkpoint back with the group: those records are applied again.
    reset(&Warehouse, &topic, "warehouse-again", &store, &["--to-offset", "0", "--execute"]).await.expect("reset");
    let replay = run_until_caught_up(&Warehouse, &topic, "warehouse-again", &store).await;
    assert_eq!((replay.consumed, replay.already_applied, replay.dead_lettered), (total, 0, 1));
    assert_eq!(dead_letters(&topic), 2, "the poison record was decoded again");
    assert_eq!(reservations(&store).await, rows, "the sequence gate kept every row");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_past_the_log_end_is_not_trusted() {
    let topic = orders_topic(1).await;
    let events = lifecycles(30);
    produce_events(&topic, &events).await;
    let store = Store::sqlite();
    // As if the database had applied a longer, earlier topic of the same name.
    let db = connect(&Warehouse, &store).await;
    checkpoint::ensure_table(&db.pool).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    checkpoint::record(&mut conn, &topic, &HashMap::from([(0, 1_000_000)])).await.unwrap();
    drop(conn);

    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!((stats.consumed, stats.already_applied), (events.len() as u64, 0));
    assert_eq!(reservations(&store).await.len(), 30, "every order applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_from_a_time_changes_nothing() {
    let topic = orders_topic(3).await;
    let events = lifecycles(200);
    let (early, late) = events.split_at(events.len() / 2);
    produce_events(&topic, early).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(200)).await;
    produce_events(&topic, late).await;
    let (store, group) = (Store::sqlite(), "warehouse");
    run_until_caught_up(&Warehouse, &topic, group, &store).await;
    let before = reservations(&store).await;
    let applied = checkpoints(&Warehouse, &store, &topic).await;

    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    reset(&Warehouse, &topic, group, &store, &["--to-datetime", &at, "--execute"]).await.expect("reset");
    assert_eq!(reservations(&store).await, before, "the projection is kept");

    let replay = run_until_caught_up(&Warehouse, &topic, group, &store).await;
    assert_eq!(replay.consumed, late.len() as u64, "exactly the events after {at} are consumed again");
    assert_eq!(reservations(&store).await, before, "applying them again changed nothing");
    let after: Vec<i64> = checkpoints(&Warehouse, &store, &topic).await.iter().map(|c| c.next_offset).collect();
    assert_eq!(after, applied.iter().map(|c| c.next_offset).collect::<Vec<_>>(), "checkpoints end where they were");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mailer_mails_nothing_again_after_a_reset_to_the_earliest_offsets() {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(30)).await;
    let (store, group, spool) = (Store::sqlite(), "mailer", tempfile::tempdir().unwrap());
    let mailer = |since| Mailer::new(MailerSettings { mail_since: since, ..MailerSettings::spool(spool.path()) }).unwrap();
    let spooled = || {
        let mut names: Vec<_> = std::fs::read_dir(spool.path().join("new")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let first = mailer(Some(0));
    let stats = run_until_caught_up(&first, &topic, group, &store).await;
    let sent = spooled();
    assert!(!sent.is_empty(), "the first run mails");
    let db = connect(&first, &store).await;
    let ledger = mailer::ledger(&db.pool).await.unwrap();

    reset(&first, &topic, group, &store, &["--to-earliest", "--execute"]).await.expect("reset");
    let tracked = "SELECT COUNT(*) FROM mail_orders";
    assert_eq!(sqlx::query_scalar::<_, i64>(tracked).fetch_one(&db.pool).await.unwrap(), 0, "the projection is emptied");
    assert_eq!(mailer::ledger(&db.pool).await.unwrap(), ledger, "the ledger is kept");

    let rebuilt = run_until_caught_up(&mailer(None), &topic, group, &store).await;
    assert_eq!(rebuilt.consumed, stats.consumed, "the whole topic is replayed");
    assert_eq!(spooled(), sent, "no new mail in the spool");
    assert_eq!(mailer::ledger(&db.pool).await.unwrap(), ledger, "the ledger is as the first run left it");
    assert_eq!(sqlx::query_scalar::<_, i64>(tracked).fetch_one(&db.pool).await.unwrap(), 30, "the projection is rebuilt");
}
