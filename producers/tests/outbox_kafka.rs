//! The outbox against a real broker (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092; start
//! one with `scripts/kafka-local start`). These tests fail, not skip, when no broker answers.
//! Each uses its own topic and its own temporary store.

use std::collections::{HashMap, HashSet};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use edison_sales::{Cli, NewOrder, OrderRecord, Store};
use edison_schemas::{CarModel, Codec, OrderStatus};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

/// Nothing listens on port 1: a broker that is down.
const DOWN: &str = "127.0.0.1:1";
const TIMEOUT: Duration = Duration::from_secs(30);

fn bootstrap() -> String {
    let servers = std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let first = servers.split(',').next().unwrap_or_default().to_owned();
    let reachable = first
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
    assert!(reachable, "no Kafka broker at {servers}: start one with `scripts/kafka-local start`");
    servers
}

/// A unique topic and a temporary store.
struct Scenario {
    _dir: Option<TempDir>,
    url: String,
    topic: String,
}

impl Scenario {
    fn new() -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sales.db", dir.path().display());
        Scenario { _dir: Some(dir), url, topic: format!("orders-test-{}", uuid::Uuid::now_v7()) }
    }

    /// A fresh database on the PostgreSQL server that `scripts/postgres-local` runs (or
    /// EDISON_TEST_DATABASE_URL names).
    async fn postgres() -> Scenario {
        let server = std::env::var("EDISON_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://edison:edison@127.0.0.1:5432/edison".into());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("no PostgreSQL: start one with `scripts/postgres-local start`");
        let name = format!("sales_test_{}", uuid::Uuid::now_v7().simple());
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let (without_database, _) = server.split('?').next().unwrap().rsplit_once('/').unwrap();
        let url = format!("{without_database}/{name}");
        Scenario { _dir: None, url, topic: format!("orders-test-{}", uuid::Uuid::now_v7()) }
    }

    async fn sales(&self, bootstrap: &str, args: &[&str]) -> anyhow::Result<()> {
        let global = ["sales", "--bootstrap-servers", bootstrap, "--topic", &self.topic, "--database-url", &self.url];
        edison_sales::run(Cli::parse_from(global.iter().chain(args))).await
    }

    async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// One record read back from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    partition: i32,
    key: String,
    value: Option<Vec<u8>>,
}

/// Every record of the topic, in partition order, read up to the high watermarks.
fn read_topic(bootstrap: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).unwrap();
    // Asks for the log end: a read_committed client is answered the last stable offset, which
    // trails a commit until its markers are written.
    let log_end: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("isolation.level", "read_uncommitted").create().unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for partition in metadata.topics()[0].partitions() {
        // Right after the relay created the topic a partition's leader may still be moving in.
        let deadline = Instant::now() + TIMEOUT;
        let (_, high) = loop {
            match log_end.fetch_watermarks(topic, partition.id(), TIMEOUT) {
                Ok(marks) => break marks,
                Err(error) if Instant::now() < deadline => eprintln!("watermarks of {topic}: {error}; asking again"),
                Err(error) => panic!("watermarks of {topic}: {error}"),
            }
        };
        if high > 0 {
            remaining.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning).unwrap();
        }
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !remaining.is_empty() {
        assert!(Instant::now() < deadline, "timed out reading {topic}; still to read: {remaining:?}");
        let polled = consumer.poll(Duration::from_millis(200));
        // Transaction markers take offsets but are never delivered: the position says when a
        // partition is read to its end.
        let position = consumer.position().unwrap();
        remaining.retain(|partition, end| {
            !matches!(position.find_partition(topic, *partition).map(|p| p.offset()), Some(Offset::Offset(at)) if at >= *end)
        });
        let Some(message) = polled else { continue };
        let message = message.unwrap();
        records.push(Record {
            partition: message.partition(),
            key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
            value: message.payload().map(<[u8]>::to_vec),
        });
    }
    records.sort_by_key(|r| r.partition); // stable: keeps offset order within a partition
    records
}

/// (key, sequence) of each record; a tombstone takes `final_sequence[key]`.
fn sequences(records: &[Record], final_sequence: &HashMap<String, i64>) -> Vec<(String, i64)> {
    let codec = Codec::new().unwrap();
    records
        .iter()
        .map(|r| {
            let sequence = match &r.value {
                Some(bytes) => codec.decode(bytes).unwrap().sequence,
                None => final_sequence[&r.key],
            };
            (r.key.clone(), sequence)
        })
        .collect()
}

fn final_sequences(orders: &[OrderRecord]) -> HashMap<String, i64> {
    orders.iter().map(|r| (r.order.order_id.clone(), r.sequence)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_broker_down_changes_queue_and_a_later_relay_publishes_each_once_in_order() {
    let bootstrap = bootstrap();
    let s = Scenario::new();
    let place = ["place", "--model", "P", "--customer-name", "Ada", "--email", "ada@example.com", "--address", "1 Road"];
    s.sales(DOWN, &place).await.expect("place succeeds with Kafka down");
    let store = s.store().await;
    let id = store.list(None, 1).await.unwrap()[0].id.to_string();
    s.sales(DOWN, &["pay", &id]).await.expect("pay succeeds with Kafka down");
    assert_eq!(store.outbox_counts().await.unwrap().unpublished, 2);

    s.sales(&bootstrap, &["relay"]).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().unpublished, 0);
    s.sales(&bootstrap, &["relay"]).await.unwrap(); // nothing left: publishes nothing again

    let records = read_topic(&bootstrap, &s.topic);
    let codec = Codec::new().unwrap();
    let events: Vec<_> = records.iter().map(|r| codec.decode(r.value.as_deref().unwrap()).unwrap()).collect();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    assert!(records.iter().all(|r| r.key == id));
    let last = &events[1].order;
    assert_eq!((last.status, last.price.amount_cents), (OrderStatus::Paid, 6_990_000));
    assert_eq!(last, &store.get(id.parse().unwrap()).await.unwrap().order);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_mid_drain_loses_nothing_and_duplicates_repeat_a_sequence() {
    let bootstrap = bootstrap();
    let s = Scenario::new();
    s.sales(&bootstrap, &["simulate", "--orders", "20000", "--seed", "3", "--no-relay"]).await.unwrap();
    let store = s.store().await;
    let total = store.outbox_counts().await.unwrap().total;

    // Small chunks keep the drain slow enough to kill it in the middle; a short delivery
    // timeout keeps its orphaned lease short.
    let mut relay = Command::new(env!("CARGO_BIN_EXE_sales"))
        .args(["--bootstrap-servers", &bootstrap, "--topic", &s.topic, "--database-url", &s.url])
        .args(["--delivery-timeout", "2", "relay", "--concurrency", "200"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let unpublished = store.outbox_counts().await.unwrap().unpublished;
        assert!(unpublished > 0, "the relay finished before it could be killed");
        if unpublished < total {
            break;
        }
        assert!(Instant::now() < deadline, "the relay published nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.kill().unwrap(); // SIGKILL: no cleanup, lease left behind, acks possibly unrecorded
    relay.wait().unwrap();
    let left = store.outbox_counts().await.unwrap().unpublished;
    assert!(left > 0 && left < total, "killed mid-drain: {left} of {total} left");

    s.sales(&bootstrap, &["relay"]).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().unpublished, 0);

    let orders = store.list(None, 1_000_000).await.unwrap();
    let final_sequence = final_sequences(&orders);
    let records = read_topic(&bootstrap, &s.topic);
    assert!(records.len() as u64 >= total);
    // Same (key, sequence) means the same bytes: a duplicate is a re-send, never a new event.
    let mut seen: HashMap<(String, i64), &Option<Vec<u8>>> = HashMap::new();
    for (record, key_sequence) in records.iter().zip(sequences(&records, &final_sequence)) {
        let first = seen.entry(key_sequence.clone()).or_insert(&record.value);
        assert_eq!(*first, &record.value, "{key_sequence:?} published with different contents");
    }
    assert_eq!(seen.len() as u64, total, "every outbox row is on the topic");
    // Compaction keeps the last record of a key: it must carry the order's final sequence.
    let mut last: HashMap<String, i64> = HashMap::new();
    for (key, sequence) in sequences(&records, &final_sequence) {
        last.insert(key, sequence);
    }
    assert_eq!(last, final_sequence);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_publishes_the_same_events() {
    let bootstrap = bootstrap();
    let (a, b) = (Scenario::new(), Scenario::new());
    // Small chunks: the relay publishes while later chunks commit, some of them erasing orders
    // whose events are still in flight.
    let simulate = ["simulate", "--orders", "2000", "--seed", "77", "--concurrency", "100"];
    for s in [&a, &b] {
        s.sales(&bootstrap, &simulate).await.unwrap();
    }
    let (store_a, store_b) = (a.store().await, b.store().await);
    let orders = store_a.list(None, 5000).await.unwrap();
    assert_eq!(orders.len(), 2000);
    assert!(orders.iter().any(|r| r.erased_at.is_some()));
    assert_eq!(orders, store_b.list(None, 5000).await.unwrap());
    let topic_a = read_topic(&bootstrap, &a.topic);
    assert_eq!(topic_a.len() as u64, store_a.outbox_counts().await.unwrap().total);
    assert_eq!(topic_a, read_topic(&bootstrap, &b.topic));

    let again = a.sales(&bootstrap, &simulate).await;
    let error = again.expect_err("a seed runs once per store").to_string();
    assert!(error.contains("seed 77 was already simulated"), "{error}");
    assert_eq!(store_a.list(None, 5000).await.unwrap().len(), 2000);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_rows_another_writer_commits_during_a_simulation_are_not_skipped() {
    rows_another_writer_commits_during_a_simulation_are_not_skipped(Scenario::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_rows_another_writer_commits_during_a_simulation_are_not_skipped() {
    rows_another_writer_commits_during_a_simulation_are_not_skipped(Scenario::postgres().await).await;
}

/// A command that only reads finds no Sales store in a database without Sales' tables, and
/// migrates nothing there. It needs no broker.
#[tokio::test(flavor = "multi_thread")]
async fn reading_a_postgres_database_without_sales_tables_creates_none() {
    let s = Scenario::postgres().await;
    let error = s.sales(DOWN, &["list"]).await.expect_err("there is no Sales store yet");
    let message = format!("no Sales store at {}: nothing has been sold", edison_common::db::redact(&s.url));
    assert!(format!("{error:#}").contains(&message), "{error:#}");
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0, "no migration ran");
    s.store().await;
    s.sales(DOWN, &["list"]).await.expect("a store now");
}

/// The relay records progress as one high-water mark, and `simulate` relays the rows its own
/// commits returned. Orders placed meanwhile by another writer land between those rows: the
/// mark must never pass them unpublished.
async fn rows_another_writer_commits_during_a_simulation_are_not_skipped(s: Scenario) {
    let bootstrap = bootstrap();
    let store = s.store().await;
    let simulating = AtomicBool::new(true);
    let simulate = async {
        // Small chunks: many commits for the other writer to slip between.
        let result = s.sales(&bootstrap, &["simulate", "--orders", "1000", "--seed", "5", "--concurrency", "20"]).await;
        simulating.store(false, Ordering::Release);
        result
    };
    // From the simulation's first commit until it returns. Its last drain ends although new
    // rows keep coming: a drain publishes what was queued when it started.
    let place = async {
        while store.outbox_counts().await.unwrap().total == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut placed = Vec::new();
        while simulating.load(Ordering::Acquire) {
            let new = NewOrder {
                model: CarModel::H,
                customer_name: "Hedy Lamarr".into(),
                email: "hedy@example.com".into(),
                address: "2 Frequency Lane".into(),
            };
            placed.push(store.place(&new).await.unwrap().id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        placed
    };
    let (simulated, placed) = tokio::join!(simulate, place);
    simulated.unwrap();

    let simulated_ids: Vec<i64> = {
        let placed: HashSet<_> = placed.iter().collect();
        let orders = store.list(None, 1_000_000).await.unwrap();
        let mut ids = Vec::new();
        for order in orders.iter().filter(|o| !placed.contains(&o.id)) {
            ids.extend(store.outbox_entries(order.id).await.unwrap().iter().map(|e| e.id));
        }
        ids
    };
    let (first, last) = (simulated_ids.iter().min().unwrap(), simulated_ids.iter().max().unwrap());
    let mut interleaved = 0;
    for id in &placed {
        let entry = &store.outbox_entries(*id).await.unwrap()[0];
        interleaved += usize::from(entry.id > *first && entry.id < *last);
    }
    assert!(interleaved > 0, "no order placed among the simulation's rows ({} placed)", placed.len());

    // Whatever simulate left queued, one more drain publishes; nothing may sit below the mark.
    s.sales(&bootstrap, &["relay"]).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().unpublished, 0);
    let orders = store.list(None, 1_000_000).await.unwrap();
    let final_sequence = final_sequences(&orders);
    let records = read_topic(&bootstrap, &s.topic);
    let on_topic: HashSet<(String, i64)> = sequences(&records, &final_sequence).into_iter().collect();
    for order in &orders {
        for entry in store.outbox_entries(order.id).await.unwrap() {
            let key = (order.order.order_id.clone(), entry.sequence);
            assert!(on_topic.contains(&key), "outbox row {} ({key:?}) never reached the topic", entry.id);
        }
    }
}

/// Sends `signal` (e.g. `STOP`, `CONT`) to a child process.
fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Two relays must never interleave: compaction keeps each key's highest offset, so an old
/// state published after a newer one is what every replay would end on. Relay A stalls
/// (SIGSTOP) in the middle of a large outbox, past its lease; newer events of the same orders
/// are committed and relay B publishes them; then A wakes up. A must find itself fenced.
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_stalled_past_its_lease_is_fenced_and_every_key_ends_on_its_newest_state() {
    let bootstrap = bootstrap();
    let s = Scenario::new();
    s.sales(&bootstrap, &["simulate", "--orders", "20000", "--seed", "12", "--no-relay"]).await.unwrap();
    let store = s.store().await;
    let total = store.outbox_counts().await.unwrap().total;

    // Small transactions keep A busy for many of them; short timeouts keep its lease short
    // (transaction timeout 2 s + 5 s), so B takes over soon after A stops.
    let a = Command::new(env!("CARGO_BIN_EXE_sales"))
        .args(["--bootstrap-servers", &bootstrap, "--topic", &s.topic, "--database-url", &s.url])
        .args(["--delivery-timeout", "1", "-X", "transaction.timeout.ms=2000", "relay", "--concurrency", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while store.outbox_counts().await.unwrap().unpublished == total {
        assert!(Instant::now() < deadline, "relay A published nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&a, "STOP");
    let left = store.outbox_counts().await.unwrap().unpublished;
    assert!(left > total / 2, "A was stopped early in the outbox: {left} of {total} left");

    // Newer states of orders A has not published yet, and of some it has.
    let mut amended = 0;
    for order in store.list(None, 1_000_000).await.unwrap() {
        if order.erased_at.is_some() || order.order.status == OrderStatus::Cancelled {
            continue;
        }
        let address = Some(format!("{} Fencing Road", order.sequence));
        store.amend(order.id, edison_sales::Amendment { address, model: None }).await.unwrap();
        amended += 1;
        if amended == 2000 {
            break;
        }
    }
    // B waits out A's lease (`sales relay` retries while another relay holds it), fences A and
    // publishes everything.
    s.sales(&bootstrap, &["relay"]).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().unpublished, 0);

    signal(&a, "CONT");
    let output = a.wait_with_output().unwrap();

    // What every department reads (committed transactions only): per key, sequences never go
    // back along the offsets, and the last record carries the order's newest state.
    let orders = store.list(None, 1_000_000).await.unwrap();
    let final_sequence = final_sequences(&orders);
    let records = read_topic(&bootstrap, &s.topic);
    let mut last: HashMap<String, i64> = HashMap::new();
    for (key, sequence) in sequences(&records, &final_sequence) {
        let previous = last.insert(key.clone(), sequence).unwrap_or(0);
        assert!(sequence >= previous, "order {key}: sequence {sequence} committed after {previous}");
    }
    let stale = final_sequence.iter().filter(|(key, sequence)| last.get(*key) != Some(sequence)).count();
    assert_eq!(stale, 0, "orders whose last record is not their newest state");
    assert_eq!(last.len(), final_sequence.len());

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the fenced relay exited 0: {stderr}");
    assert!(stderr.contains("fenced"), "no word of fencing: {stderr}");
}
