//! Rebuild throughput: how fast departments replay the topic into SQLite and PostgreSQL,
//! against a raw rdkafka consume + decode of the same topic (no database) in the same run.
//!
//! Needs the local broker and PostgreSQL (`scripts/bench` starts both). Run:
//! `cargo bench -p edison-consumers --bench rebuild` (BENCH_ORDERS sets the size; about 2.3
//! events per order).

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use edison_consumers::command::{execute, DepartmentCli, NoFlags};
use edison_consumers::departments::{Billing, Warehouse};
use edison_consumers::runtime::Projection;
use edison_schemas::Codec;

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Reads every record from offset zero to the high watermarks and decodes it: the ceiling any
/// department could reach.
fn raw_consume(topic: &str) -> u64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("bench-raw-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0;
    let mut ends = std::collections::HashMap::new();
    for partition in metadata.topics()[0].partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10)).unwrap();
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning).unwrap();
        ends.insert(partition.id(), high);
        remaining += u64::from(high > 0);
    }
    consumer.assign(&assignment).unwrap();
    let codec = Codec::new().unwrap();
    let mut decoded = 0;
    while remaining > 0 {
        let Some(message) = consumer.poll(Duration::from_secs(5)) else { continue };
        let message = message.unwrap();
        if let Some(value) = message.payload() {
            codec.decode(value).expect("valid event");
        }
        decoded += 1;
        // The last record of a partition is followed by its transaction's marker, never delivered.
        if message.offset() + 2 == ends[&message.partition()] {
            remaining -= 1;
        }
    }
    decoded
}

async fn rebuild<P: Projection>(projection: &P, topic: &str, url: &str, label: &str) -> u64 {
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let group = format!("bench-{label}-{schema}");
    let cli = DepartmentCli::<NoFlags>::parse_from([
        P::NAME, "--bootstrap-servers", &bootstrap(), "--topic", topic, "--group-id", &group,
        "--database-url", url, "--database-schema", &schema, "run", "--until-caught-up",
    ]);
    execute(projection, &cli, CancellationToken::new()).await.unwrap().unwrap().consumed
}

#[tokio::main]
async fn main() {
    let orders: u64 = std::env::var("BENCH_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(87_000);
    let postgres = std::env::var("EDISON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://edison:edison@127.0.0.1:5432/edison".into());
    let dir = tempfile::tempdir().unwrap();
    let topic = format!("bench-orders-{}", uuid::Uuid::now_v7().simple());

    let store = format!("sqlite://{}/sales.db", dir.path().display());
    let sales = edison_sales::Cli::parse_from([
        "sales", "--bootstrap-servers", &bootstrap(), "--topic", &topic, "--database-url", &store,
        "simulate", "--orders", &orders.to_string(), "--seed", "1",
    ]);
    edison_sales::run(sales).await.expect("simulate");

    let started = Instant::now();
    let events = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || raw_consume(&topic)
    })
    .await
    .unwrap();
    let raw_rate = events as f64 / started.elapsed().as_secs_f64();
    println!("\n{events} events on {topic}");
    println!("{:<34} {:>10.0} events/s   1.00x", "raw rdkafka consume + decode", raw_rate);

    let sqlite = |name: &str| format!("sqlite://{}/{name}.db", dir.path().display());
    let runs: [(&str, String); 4] = [
        ("warehouse -> SQLite", sqlite("warehouse")),
        ("billing -> SQLite", sqlite("billing")),
        ("warehouse -> PostgreSQL", postgres.clone()),
        ("billing -> PostgreSQL", postgres.clone()),
    ];
    for (label, url) in runs {
        let started = Instant::now();
        let consumed = if label.starts_with("warehouse") {
            rebuild(&Warehouse, &topic, &url, "warehouse").await
        } else {
            rebuild(&Billing, &topic, &url, "billing").await
        };
        assert_eq!(consumed, events, "{label} replays every event");
        let rate = consumed as f64 / started.elapsed().as_secs_f64();
        println!("{label:<34} {rate:>10.0} events/s   {:.2}x", rate / raw_rate);
    }
}
