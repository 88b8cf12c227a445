//! Rebuild benchmark (issue 11): how fast, and in how much memory, every department of the
//! registry replays the orders topic, each figure printed beside its peer from the same run.
//!
//! A topic of `BENCH_ORDERS` orders (about 2.15 events each) is written by the release `sales
//! simulate` before any clock starts. Then, per department (`DEPARTMENTS`):
//! - **peer**: a raw rdkafka consume + decode of the whole topic with the departments' consumer
//!   settings (partitions assigned, no group membership, no database), until its position
//!   reaches every partition's log end: what a department could reach at best. It is noisy,
//!   so it runs before each department and once more at the end; every ratio is against its
//!   median, and its min and max are printed.
//! - **engine peer**: SQLite alone doing the warehouse's writes of the topic through its C API,
//!   in the runtime's batches, with everything else done before its clock starts
//!   (`sqlite_alone`); at the start and at the end. Every department writes at least that one
//!   row per order change, so no department's SQLite apply can beat it by much; each one's
//!   ratio to it is printed too.
//! - **apply**: the department as its own process (the release `edison` binary, `run
//!   --until-caught-up`, a fresh group) into a fresh SQLite file, and into a fresh PostgreSQL
//!   schema: events/s over the process's whole wall time (start-up, group join and the final
//!   idle check included: what a rebuild costs; the 1-order row shows that fixed cost), checked
//!   against its `consumed N, applied N, dead-lettered 0` line, and its peak RSS (VmHWM).
//! - **replay**: the same department into the same database with a new group (as after Kafka
//!   expired a group's offsets): every event lies before the database's checkpoint and is
//!   stepped over undecoded. Its events/s against the apply's.
//! - **re-apply**: that group reset to offset 0 (`reset-offsets --to-offset 0 --execute`, which
//!   moves the checkpoint back too): every event is decoded and applied again, and the sequence
//!   gate turns each into a no-op. Its events/s against the apply's. The issue's "replay of
//!   events already applied (all skipped by the sequence gate) >= 2x" is this row; the replay
//!   row above is held to the same ratio.
//!
//! And once:
//! - **flat memory**: warehouse's peak RSS applying a ~100k-event topic into SQLite beside its
//!   peak applying the full topic and a ~2M-event topic (`BENCH_LARGE_ORDERS` orders, 930,000
//!   unless set; 0 leaves it out).
//! - **live latency**: warehouse running (`run`) into SQLite on a topic that `sales simulate
//!   --rate` loads with ~1,000 events/s, while orders are placed one at a time through a Sales
//!   store and relay of their own (what `sales place` does: commit, then relay; one relay is
//!   reused). Measured from the relay returning to the order's row being visible in the
//!   warehouse's database (a read-only connection polling every millisecond).
//!
//! Needs the local broker and PostgreSQL (`EDISON_TEST_DATABASE_URL`, default
//! postgres://edison:edison@127.0.0.1:5432/edison) and the release `edison` and `sales` binaries:
//! `scripts/bench` builds them and runs this. Run alone: `cargo bench -p edison-consumers --bench
//! rebuild`. A run that finishes deletes the topics it made; schemas go after each department.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::process::Command;
use tokio::time::{sleep, Instant};

use edison_common::db::SQLITE_PRAGMAS;
use edison_common::kafka::{log_end_offsets, read_log_end_offsets, registry_topic, KafkaArgs};
use edison_consumers::departments::warehouse::{Reservation, Warehouse};
use edison_consumers::departments::DEPARTMENTS;
use edison_consumers::runtime::planner::grouped;
use edison_consumers::runtime::table;
use edison_consumers::runtime::{collapse, Change, ConsumeArgs, Projection};
use edison_sales::{NewOrder, Relay, RelayOptions, Store};
use edison_schemas::{CarModel, Codec, OrderEvent};

/// About 430k events, so that the whole `scripts/bench` stays under 10 minutes on a 2-core
/// machine; 465,000 orders make the 1M events.
const DEFAULT_ORDERS: u64 = 200_000;
/// About 100k events: the small end of the flat-memory comparison.
const SMALL_ORDERS: u64 = 46_500;
/// About 2M events: the large end (`BENCH_LARGE_ORDERS`; 0 leaves it out). Writing and applying
/// it adds about a minute.
const LARGE_ORDERS: u64 = 930_000;
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The live latency's background load, events/s.
const LOAD_RATE: u32 = 1_000;
const LATENCY_SAMPLES: usize = 200;
const VISIBLE_POLL: Duration = Duration::from_millis(1);
/// The longest a placed order may take to show up, or the raw consume may go without a record,
/// before the bench gives up.
const STUCK_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() {
    let bench = Bench::new();
    let orders = env_u64("BENCH_ORDERS").unwrap_or(DEFAULT_ORDERS);
    let full = bench.simulate("full", orders).await;
    let small = bench.simulate("small", SMALL_ORDERS).await;
    let one = bench.simulate("one", 1).await;
    println!("{} events on {} ({orders} orders)", grouped(full.events), full.name);

    let mut peer = Vec::new();
    let mut engine = vec![bench.sqlite_alone(&full).await];
    let mut rebuilds = Vec::new();
    for department in DEPARTMENTS {
        peer.push(bench.raw_consume(&full).await);
        for backend in [Backend::Sqlite, Backend::Postgres] {
            rebuilds.push(bench.rebuild(department.name, backend, &full).await);
        }
    }
    peer.push(bench.raw_consume(&full).await);
    engine.push(bench.sqlite_alone(&full).await);

    let warehouse = rebuilds.iter().find(|r| r.department == "warehouse" && r.backend == Backend::Sqlite);
    let mut memory = vec![(small.events, bench.apply_once(&small).await)];
    memory.push((full.events, warehouse.expect("warehouse is a department").apply.clone()));
    let large_orders = env_u64("BENCH_LARGE_ORDERS").unwrap_or(LARGE_ORDERS);
    if large_orders > 0 {
        let large = bench.simulate("large", large_orders).await;
        memory.push((large.events, bench.apply_once(&large).await));
    }
    let fixed = bench.apply_once(&one).await;
    let latency = bench.live_latency().await;

    println!();
    print_table(&Peer::of(peer), &Peer::of(engine), &rebuilds, &memory, &fixed, &latency);
    bench.delete_topics().await;
}

/// Where everything runs: broker, PostgreSQL, binaries, scratch directory, and the topics made.
struct Bench {
    bootstrap: String,
    postgres: String,
    edison: PathBuf,
    sales: PathBuf,
    dir: tempfile::TempDir,
    run_id: String,
    topics: std::cell::RefCell<Vec<String>>,
}

/// A topic the bench wrote, with the events Sales reported.
struct Topic {
    name: String,
    events: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// The target for a first apply, against the raw consume.
    fn target(self) -> f64 {
        match self {
            Backend::Sqlite => 0.6,
            Backend::Postgres => 0.3,
        }
    }
}

/// A finished process: how long it ran, and its peak RSS.
#[derive(Clone)]
struct Run {
    elapsed: Duration,
    peak_rss_kb: u64,
}

impl Run {
    fn rate(&self, events: u64) -> f64 {
        events as f64 / self.elapsed.as_secs_f64()
    }

    fn rss_mb(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }
}

/// One department's first apply into one database, and the replay after it.
struct Rebuild {
    department: &'static str,
    backend: Backend,
    events: u64,
    apply: Run,
    replay: Run,
    reapply: Run,
}

impl Bench {
    fn new() -> Bench {
        let release = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_owned()))
            .expect("the bench runs from target/release/deps");
        let binary = |name: &str| {
            let path = release.join(name);
            let hint = format!("build it first (scripts/bench does): cargo build --release --bin {name}");
            assert!(path.exists(), "no {}: {hint}", path.display());
            path
        };
        Bench {
            bootstrap: std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            postgres: std::env::var("EDISON_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://edison:edison@127.0.0.1:5432/edison".into()),
            edison: binary("edison"),
            sales: binary("sales"),
            dir: tempfile::tempdir().expect("a scratch directory"),
            run_id: uuid::Uuid::now_v7().simple().to_string(),
            topics: Default::default(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A name unique to this run, for topics, groups, schemas and files.
    fn unique(&self, what: &str) -> String {
        format!("bench_{what}_{}", uuid::Uuid::now_v7().simple())
    }

    fn new_topic(&self, what: &str) -> String {
        let name = format!("bench-{}-{what}", self.run_id);
        self.topics.borrow_mut().push(name.clone());
        name
    }

    /// The release `sales` binary on `topic`, before its command.
    fn sales_command(&self, topic: &str) -> Command {
        let mut command = Command::new(&self.sales);
        command.args(["--bootstrap-servers", &self.bootstrap, "--topic", topic]);
        command
    }

    /// Runs `sales` on `topic` with `args`; fails the bench unless it succeeds.
    async fn sales(&self, topic: &str, args: &[&str]) -> String {
        let output = self.sales_command(topic).args(args).output().await.expect("sales starts");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "sales {args:?} failed: {}{stdout}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    /// A new topic holding `orders` simulated orders, all published.
    async fn simulate(&self, what: &str, orders: u64) -> Topic {
        let name = self.new_topic(what);
        let store = self.path(&format!("sales-{what}.db"));
        let (store, orders) = (store.display().to_string(), orders.to_string());
        let args = ["--database-url", &store, "--json", "simulate", "--orders", &orders, "--seed", "1"];
        let report: serde_json::Value = serde_json::from_str(&self.sales(&name, &args).await).expect("simulate prints JSON");
        assert_eq!(report["queued"], 0, "simulate left events queued: {report}");
        Topic { events: report["events"].as_u64().expect("an event count"), name }
    }

    /// The peer: a raw consume + decode of `topic`, events/s.
    async fn raw_consume(&self, topic: &Topic) -> f64 {
        let (bootstrap, name) = (self.bootstrap.clone(), topic.name.clone());
        let started = Instant::now();
        let decoded = tokio::task::spawn_blocking(move || raw_consume(&bootstrap, &name, |_, _| {})).await.expect("the raw consume");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(decoded, topic.events, "the raw consume reads every event");
        let rate = decoded as f64 / seconds;
        println!("  {:<30} {:>10}/s {seconds:>7.2} s", "raw consume + decode", grouped(rate as u64));
        rate
    }

    /// The engine peer: SQLite alone doing the warehouse's writes of `topic`, events/s.
    async fn sqlite_alone(&self, topic: &Topic) -> f64 {
        let (bootstrap, name) = (self.bootstrap.clone(), topic.name.clone());
        let path = self.path(&format!("{}.db", self.unique("sqlite-alone")));
        let rate = tokio::task::spawn_blocking(move || sqlite_alone(&bootstrap, &name, &path)).await.expect("the engine peer");
        println!("  {:<30} {:>10}/s", "SQLite alone (warehouse)", grouped(rate as u64));
        rate
    }

    /// `department`'s apply of `topic` into a fresh `backend` database, then its replay.
    async fn rebuild(&self, department: &'static str, backend: Backend, topic: &Topic) -> Rebuild {
        let database = match backend {
            Backend::Sqlite => Database::Sqlite(self.path(&format!("{}.db", self.unique(department)))),
            Backend::Postgres => Database::Postgres { url: self.postgres.clone(), schema: self.unique(department) },
        };
        let apply = self.rebuild_run(department, &database, topic, &self.unique(department), "apply").await;
        let group = self.unique(department);
        let replay = self.rebuild_run(department, &database, topic, &group, "replay").await;
        self.reset_to_zero(department, &database, topic, &group).await;
        let reapply = self.rebuild_run(department, &database, topic, &group, "re-apply").await;
        if let Database::Postgres { url, schema } = &database {
            drop_schema(url, schema).await;
        }
        Rebuild { department, backend, events: topic.events, apply, replay, reapply }
    }

    /// Warehouse's apply of `topic` into a fresh SQLite file.
    async fn apply_once(&self, topic: &Topic) -> Run {
        let database = Database::Sqlite(self.path(&format!("{}.db", self.unique("warehouse"))));
        self.rebuild_run("warehouse", &database, topic, &self.unique("warehouse"), "apply").await
    }

    /// `department reset-offsets --to-offset 0 --execute` for `group`.
    async fn reset_to_zero(&self, department: &str, database: &Database, topic: &Topic, group: &str) {
        let mut command = self.department(department, &topic.name, database, group);
        let output = command.args(["reset-offsets", "--to-offset", "0", "--execute"]).output().await.expect("edison starts");
        assert!(output.status.success(), "reset-offsets failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// One `run --until-caught-up` of `department` as `group`, checked to have applied every
    /// event of `topic`.
    async fn rebuild_run(&self, department: &str, database: &Database, topic: &Topic, group: &str, what: &str) -> Run {
        let label = format!("{department} -> {} {what}", database.label());
        let mut command = self.department(department, &topic.name, database, group);
        command.args(["run", "--until-caught-up"]);
        let (run, stdout) = measured(command, &self.path(&self.unique(department)), &label).await;
        let events = topic.events;
        let expected = format!("{department}: consumed {events}, applied {events}, dead-lettered 0");
        assert!(stdout.lines().any(|line| line == expected), "{label}: expected {expected:?}, got:\n{stdout}");
        let seconds = run.elapsed.as_secs_f64();
        println!("  {label:<30} {:>10}/s {seconds:>7.2} s {:>6.0} MB", grouped(run.rate(events) as u64), run.rss_mb());
        run
    }

    /// The release `edison` running `department` on `topic` into `database` as `group`, before
    /// its command.
    fn department(&self, department: &str, topic: &str, database: &Database, group: &str) -> Command {
        let mut command = Command::new(&self.edison);
        command
            .args([department, "--bootstrap-servers", &self.bootstrap, "--topic", topic, "--group-id", group])
            .args(database.args())
            // Read by the mailer only. Its ledger's cutoff is its first run's start, so the whole
            // (simulated, 2025) history is historical: recorded, never sent.
            .env("MAILER_SPOOL_DIR", self.path("mail-spool"));
        command
    }

    /// Latencies from placing an order to its row in a running warehouse, under a steady load.
    async fn live_latency(&self) -> Latency {
        let topic = self.new_topic("live");
        self.sales(&topic, &["topic", "create"]).await;
        let load_store = self.path("sales-load.db").display().to_string();
        // Another Sales with its own transactional id: one sharing the samples' would fence it.
        let load_id = format!("transactional.id=edison-bench-load.{topic}");
        let mut load = self.sales_command(&topic);
        load.args(["--database-url", &load_store, "-X", &load_id, "simulate", "--orders", "1000000000", "--seed", "2"]);
        let _load = spawn(load.args(["--rate", &LOAD_RATE.to_string()]), &self.path("load"));
        let projection = self.path("live-warehouse.db");
        let mut warehouse = self.department("warehouse", &topic, &Database::Sqlite(projection.clone()), &self.unique("warehouse"));
        let _warehouse = spawn(warehouse.arg("run"), &self.path("live-warehouse"));

        let kafka = KafkaArgs { bootstrap_servers: self.bootstrap.clone(), topic: topic.clone(), overrides: Vec::new() };
        let samples = Sampler::new(&kafka, &self.path("sales-samples.db"), &projection).await;
        let (records_before, started) = (records(&kafka).await, Instant::now());
        let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
        for sample in 0..LATENCY_SAMPLES {
            latencies.push(samples.latency().await);
            // Spread the samples over the consumer's batching cycle.
            sleep(Duration::from_millis((sample as u64 * 37) % 50)).await;
        }
        let load = (records(&kafka).await - records_before) as f64 / started.elapsed().as_secs_f64();
        Latency::of(latencies, load)
    }

    /// Deletes every topic this run made, with its dead-letter and registry topics.
    async fn delete_topics(&self) {
        let topics = self.topics.take();
        let names: Vec<String> = topics.iter().flat_map(|t| [t.clone(), format!("{t}.dlq"), registry_topic(t)]).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create().expect("an admin client");
        if let Err(error) = admin.delete_topics(&names, &AdminOptions::new()).await {
            eprintln!("cannot delete the bench's topics: {error}");
        }
    }
}

/// Where a department's projection goes.
enum Database {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Database {
    fn label(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => Backend::Sqlite.label(),
            Database::Postgres { .. } => Backend::Postgres.label(),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Database::Sqlite(path) => vec!["--database-url".into(), format!("sqlite://{}", path.display())],
            Database::Postgres { url, schema } => {
                vec!["--database-url".into(), url.clone(), "--database-schema".into(), schema.clone()]
            }
        }
    }
}

async fn drop_schema(url: &str, schema: &str) {
    let mut connection = PgConnection::connect(url).await.expect("PostgreSQL");
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::raw_sql(&drop).execute(&mut connection).await.expect("drop the schema");
}

/// The records on `kafka.topic` so far (the sum of its log ends, transaction markers included).
async fn records(kafka: &KafkaArgs) -> i64 {
    let watermarks = read_log_end_offsets(&kafka.client_config(), &kafka.topic).await.expect("watermarks");
    watermarks.iter().map(|w| w.high).sum()
}

/// Reads every record of `topic` from its start (the low watermarks) and decodes it, until the consumer's position
/// in every partition reaches the log end taken at the start (past the transaction marker that
/// follows each partition's last record, which is never delivered). Returns the records read.
///
/// It reads with the departments' own consumer settings (`KafkaArgs::consumer_config`), so it
/// measures the client and the decoding, not a configuration. With librdkafka's defaults it
/// stopped fetching for `fetch.queue.backoff.ms` (1 s) whenever its 64 MB prefetch filled, and
/// read 430k events at 163k–282k/s, in two clusters, depending on how often that happened; with
/// the departments' settings it read 600k–900k/s.
fn raw_consume(bootstrap: &str, topic: &str, mut each: impl FnMut(&BorrowedMessage<'_>, Option<OrderEvent>)) -> u64 {
    let kafka = KafkaArgs { bootstrap_servers: bootstrap.to_owned(), topic: topic.to_owned(), overrides: Vec::new() };
    // No offset is ever stored, so the group commits nothing.
    let config = kafka.consumer_config(&format!("bench-raw-{topic}"));
    let watermarks = log_end_offsets(&config, topic).expect("the topic's watermarks");
    let consumer: BaseConsumer = config.create().expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for w in &watermarks {
        // The low watermark, not `Offset::Beginning`: librdkafka's lookup of that costs ~0.4 s.
        assignment.add_partition_offset(topic, w.partition, Offset::Offset(w.low)).expect("a partition");
    }
    let ends: HashMap<i32, (i64, i64)> = watermarks.iter().map(|w| (w.partition, (w.low, w.high))).collect();
    consumer.assign(&assignment).expect("the assignment");
    let codec = Codec::new().expect("the codec");
    let mut decoded = 0;
    let mut progressed = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(10)) {
            Some(message) => {
                let message = message.expect("a record");
                let event = message.payload().map(|value| codec.decode(value).expect("a valid event"));
                each(&message, event);
                decoded += 1;
                progressed = Instant::now();
            }
            // Only while nothing is queued can the position be at the end.
            None if at_ends(&consumer, topic, &ends) => return decoded,
            None => {
                let stuck = format!("raw consume stuck at {:?}, ends {ends:?}", consumer.position());
                assert!(progressed.elapsed() < STUCK_TIMEOUT, "{stuck}");
            }
        }
    }
}

/// SQLite alone, through its C API (rusqlite, over the same bundled SQLite as sqlx), doing the
/// warehouse's writes of `topic` as the runtime batches them: every record read and decoded
/// first, cut into batches of the departments' default `--batch-size` in the order consumed, each
/// collapsed to one change per order, and then timed alone: one transaction per batch, written
/// by the runtime's own `table::apply_sqlite` (a row made from each event, a prepared single-row
/// upsert with the sequence gate, a delete per erased order), into the warehouse's own migrated
/// table, with the PRAGMAs the departments set. No decoding, no Kafka, no sqlx, no hand-over to
/// a writer thread: what the engine needs for these writes. Returns the topic's records per
/// second of that.
fn sqlite_alone(bootstrap: &str, topic: &str, path: &Path) -> f64 {
    let mut changes = Vec::new();
    let records = raw_consume(bootstrap, topic, |message, event| {
        changes.push(match event {
            Some(event) => Change::Upsert(event),
            None => Change::Erase { order_id: String::from_utf8(message.key().expect("a key").to_vec()).expect("UTF-8") },
        });
    });
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        consume: ConsumeArgs,
    }
    let batch_size = Defaults::parse_from(["bench"]).consume.batch_size as usize;
    // What the table must hold once done, by the log's own rule: per order, the highest sequence
    // seen since its last tombstone; erased orders, nothing.
    let mut latest: HashMap<&str, Option<i64>> = HashMap::new();
    for change in &changes {
        let entry = latest.entry(change.order_id()).or_default();
        match change {
            Change::Upsert(event) => *entry = Some(entry.map_or(event.sequence, |s| s.max(event.sequence))),
            Change::Erase { .. } => *entry = None,
        }
    }
    let expected = latest.values().flatten().fold((0, 0), |(rows, sum), sequence| (rows + 1, sum + sequence));
    drop(latest);
    let mut changes = changes.into_iter().peekable();
    let batches: Vec<Vec<Change>> = std::iter::from_fn(|| {
        changes.peek()?;
        Some(collapse(changes.by_ref().take(batch_size)))
    })
    .collect();

    let mut db = rusqlite::Connection::open(path).expect("the peer's SQLite file");
    for pragma in SQLITE_PRAGMAS {
        db.execute_batch(pragma).expect("the departments' PRAGMAs");
    }
    for migration in Warehouse.migrator().iter() {
        db.execute_batch(&migration.sql).expect("the warehouse's migration");
    }
    let started = Instant::now();
    for batch in &batches {
        let transaction = db.transaction().expect("BEGIN");
        table::apply_sqlite::<Reservation>(&transaction, batch).expect("the batch's writes");
        transaction.commit().expect("COMMIT");
    }
    // As a department's run ends: the WAL written back into the file.
    db.close().expect("closing the peer's SQLite file");
    let rate = records as f64 / started.elapsed().as_secs_f64();
    let db = rusqlite::Connection::open(path).expect("the peer's SQLite file");
    let held: (i64, i64) = db
        .query_row("SELECT COUNT(*), COALESCE(SUM(sequence), 0) FROM reservations", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("the peer's table");
    assert_eq!(held, expected, "SQLite alone: (rows, sum of sequences) held vs the log's");
    rate
}

/// Whether `consumer`'s position is at or past the end in every partition (partition → low and
/// high watermarks; an empty partition has no position).
fn at_ends(consumer: &BaseConsumer, topic: &str, ends: &HashMap<i32, (i64, i64)>) -> bool {
    let position = consumer.position().expect("the consumer's position");
    ends.iter().all(|(&partition, &(low, high))| {
        let offset = position.find_partition(topic, partition).map(|p| p.offset());
        low == high || matches!(offset, Some(Offset::Offset(offset)) if offset >= high)
    })
}

/// Runs `command` to its end, sampling its peak RSS every [`RSS_SAMPLE_EVERY`]; fails the bench
/// unless it succeeds. Returns the run and its stdout.
async fn measured(mut command: Command, logs: &Path, label: &str) -> (Run, String) {
    let started = Instant::now();
    let mut child = spawn(&mut command, logs);
    let pid = child.id().expect("a running child");
    let mut peak_rss_kb = 0;
    let mut tick = tokio::time::interval(RSS_SAMPLE_EVERY);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.expect("the child's status"),
            _ = tick.tick() => peak_rss_kb = peak_rss_kb.max(vm_hwm_kb(pid).unwrap_or(0)),
        }
    };
    let run = Run { elapsed: started.elapsed(), peak_rss_kb };
    let stdout = std::fs::read_to_string(logs.with_extension("out")).expect("the child's stdout");
    if !status.success() {
        let stderr = std::fs::read_to_string(logs.with_extension("err")).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        panic!("{label} failed ({status}):\n{stdout}{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    (run, stdout)
}

/// Starts `command` with stdout and stderr in LOGS.out and LOGS.err; killed when dropped.
fn spawn(command: &mut Command, logs: &Path) -> tokio::process::Child {
    let file = |extension| File::create(logs.with_extension(extension)).expect("a log file");
    command
        .stdin(Stdio::null())
        .stdout(file("out"))
        .stderr(file("err"))
        .kill_on_drop(true)
        .spawn()
        .expect("the process starts")
}

/// The process's peak resident set so far, in kB; `None` once it has exited.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Places orders one at a time and times each one's way into the live warehouse's database.
struct Sampler {
    store: Store,
    relay: Relay,
    projection: PathBuf,
    reader: tokio::sync::Mutex<Option<SqliteConnection>>,
}

impl Sampler {
    /// A Sales store and relay of its own; the first order, untimed, waits out the warehouse's
    /// start, its group join and the relay's first transaction.
    async fn new(kafka: &KafkaArgs, store: &Path, projection: &Path) -> Sampler {
        let store = Store::open(&format!("sqlite://{}", store.display())).await.expect("the samples' store");
        let relay = Relay::new(kafka, RelayOptions::default()).expect("the samples' relay");
        let sampler = Sampler { store, relay, projection: projection.to_owned(), reader: Default::default() };
        let first = sampler.place().await;
        let deadline = Instant::now() + STUCK_TIMEOUT;
        while !sampler.visible(&first).await.unwrap_or(false) {
            assert!(Instant::now() < deadline, "the live warehouse never showed the first order");
            sleep(Duration::from_millis(50)).await;
        }
        sampler
    }

    /// Places an order, commits and relays it; returns its id.
    async fn place(&self) -> String {
        let order = NewOrder {
            model: CarModel::F,
            customer_name: "Bench Sample".into(),
            email: "sample@bench.example".into(),
            address: "1 Bench Road".into(),
        };
        let record = self.store.place(&order).await.expect("the order is placed");
        let report = self.relay.drain(&self.store).await.expect("the order is relayed");
        assert_eq!((report.queued, &report.stopped), (0, &None), "the relay published everything");
        record.order.order_id
    }

    /// From a placed order's relay returning to its row in the warehouse's database.
    async fn latency(&self) -> Duration {
        let order_id = self.place().await;
        let placed = Instant::now();
        while !self.visible(&order_id).await.expect("the warehouse's database is readable") {
            assert!(placed.elapsed() < STUCK_TIMEOUT, "order {order_id} never reached the warehouse");
            sleep(VISIBLE_POLL).await;
        }
        placed.elapsed()
    }

    /// Whether the warehouse holds a reservation for `order_id`, through a read-only connection
    /// opened on first use.
    async fn visible(&self, order_id: &str) -> Result<bool, sqlx::Error> {
        let mut reader = self.reader.lock().await;
        if reader.is_none() {
            let options = SqliteConnectOptions::new().filename(&self.projection).read_only(true);
            *reader = Some(SqliteConnection::connect_with(&options).await?);
        }
        let connection = reader.as_mut().expect("connected above");
        let row = sqlx::query("SELECT 1 FROM reservations WHERE order_id = ?").bind(order_id).fetch_optional(connection).await?;
        Ok(row.is_some())
    }
}

/// The raw consume's runs, events/s.
struct Peer {
    median: f64,
    min: f64,
    max: f64,
    runs: usize,
}

impl Peer {
    fn of(mut rates: Vec<f64>) -> Peer {
        rates.sort_by(f64::total_cmp);
        let n = rates.len();
        let median = if n % 2 == 1 { rates[n / 2] } else { (rates[n / 2 - 1] + rates[n / 2]) / 2.0 };
        Peer { median, min: rates[0], max: rates[n - 1], runs: n }
    }
}

/// The live samples' percentiles, and the load they were taken under.
struct Latency {
    p50: Duration,
    p99: Duration,
    samples: usize,
    load: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>, load: f64) -> Latency {
        samples.sort();
        let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize];
        Latency { p50: at(0.5), p99: at(0.99), samples: samples.len(), load }
    }
}

/// One line of the table. A ratio's target, if any, is checked against it.
struct Row {
    label: String,
    value: String,
    peer: String,
    ratio: Option<f64>,
    target: Option<(String, bool)>,
    rss_mb: Option<f64>,
}

impl Row {
    fn new(label: impl Into<String>, value: impl Into<String>, peer: impl Into<String>) -> Row {
        Row { label: label.into(), value: value.into(), peer: peer.into(), ratio: None, target: None, rss_mb: None }
    }

    fn ratio(mut self, ratio: f64) -> Row {
        self.ratio = Some(ratio);
        self
    }

    fn target(mut self, text: impl Into<String>, holds: bool) -> Row {
        self.target = Some((text.into(), holds));
        self
    }

    fn rss(mut self, run: &Run) -> Row {
        self.rss_mb = Some(run.rss_mb());
        self
    }

    fn print(&self) {
        let ratio = self.ratio.map_or(String::new(), |r| format!("{r:.2}x"));
        let (target, holds) = match &self.target {
            Some((text, holds)) => (text.as_str(), if *holds { "yes" } else { "NO" }),
            None => ("", ""),
        };
        let rss = self.rss_mb.map_or(String::new(), |mb| format!("{mb:.0} MB"));
        println!("{:<40} {:>11} {:>24} {:>7} {:>10} {:>5} {:>8}", self.label, self.value, self.peer, ratio, target, holds, rss);
    }
}

fn print_table(peer: &Peer, engine: &Peer, rebuilds: &[Rebuild], memory: &[(u64, Run)], fixed: &Run, latency: &Latency) {
    let rate = |r: f64| format!("{}/s", grouped(r as u64));
    println!("{:<40} {:>11} {:>24} {:>7} {:>10} {:>5} {:>8}", "", "value", "peer", "ratio", "target", "holds", "peak RSS");
    let spread = format!("{}-{}", grouped(peer.min as u64), grouped(peer.max as u64));
    Row::new(format!("raw consume + decode (median of {})", peer.runs), rate(peer.median), format!("min-max {spread}")).print();
    // The floor of every department's SQLite apply: each writes at least this one row per order.
    Row::new(format!("SQLite alone, warehouse's writes (median of {})", engine.runs), rate(engine.median), rate(peer.median))
        .ratio(engine.median / peer.median)
        .print();
    for rebuild in rebuilds {
        let apply = rebuild.apply.rate(rebuild.events);
        let (replay, reapply) = (rebuild.replay.rate(rebuild.events), rebuild.reapply.rate(rebuild.events));
        let label = format!("{} -> {}", rebuild.department, rebuild.backend.label());
        let target = rebuild.backend.target();
        Row::new(&label, rate(apply), rate(peer.median))
            .ratio(apply / peer.median)
            .target(format!(">= {target}x"), apply / peer.median >= target)
            .rss(&rebuild.apply)
            .print();
        if rebuild.backend == Backend::Sqlite {
            Row::new(format!("{label} vs SQLite alone"), rate(apply), rate(engine.median)).ratio(apply / engine.median).print();
        }
        Row::new(format!("{label} replay"), rate(replay), rate(apply))
            .ratio(replay / apply)
            .target(">= 2x", replay / apply >= 2.0)
            .rss(&rebuild.replay)
            .print();
        Row::new(format!("{label} re-apply (sequence gate)"), rate(reapply), rate(apply))
            .ratio(reapply / apply)
            .target(">= 2x", reapply / apply >= 2.0)
            .rss(&rebuild.reapply)
            .print();
    }
    let (small_events, small) = &memory[0];
    for (events, run) in &memory[1..] {
        let ratio = run.rss_mb() / small.rss_mb();
        let label = format!("warehouse RSS, {} vs {} events", grouped(*events), grouped(*small_events));
        Row::new(label, format!("{:.0} MB", run.rss_mb()), format!("{:.0} MB", small.rss_mb()))
            .ratio(ratio)
            .target("0.8-1.2x", (0.8..=1.2).contains(&ratio))
            .print();
    }
    let fixed_seconds = format!("{:.2} s", fixed.elapsed.as_secs_f64());
    Row::new("warehouse -> SQLite, 1-order topic (fixed)", fixed_seconds, "").rss(fixed).print();
    let live = format!("live p50, {} samples at {:.0} records/s", latency.samples, latency.load);
    Row::new(live, format!("{:.1} ms", millis(latency.p50)), "").target("< 100 ms", millis(latency.p50) < 100.0).print();
    Row::new("live p99", format!("{:.1} ms", millis(latency.p99)), "").print();
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The number in environment variable `name`, if set (`1_000` and `1000` alike).
fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}
