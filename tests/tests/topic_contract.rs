//! Only Sales creates the orders topic, and its shape cannot drift, tried with the real binaries:
//! a department started first waits (or, catching up, exits) and creates nothing; tools on a
//! mistyped topic fail and create nothing; `sales topic create` records the partition count, and
//! Sales, departments and tools refuse a topic whose count changed since.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;

use edison_common::kafka::{committed_offsets, read_registry, registry_topic, Contract};
use support::*;

/// Runs `warehouse <department_args> <args>` to its end.
fn warehouse(topic: &str, store: &Store, args: &[&str]) -> Output {
    Command::new(binary("edison-consumers", "warehouse"))
        .args(department_args(topic, "warehouse", store))
        .args(args)
        .output()
        .expect("run warehouse")
}

/// Runs `warehouse ... run --until-caught-up --dead-letter-topic DEAD_LETTERS` to its end.
fn catch_up(topic: &str, store: &Store, dead_letters: &str) -> Output {
    warehouse(
        topic,
        store,
        &[
            "run",
            "--until-caught-up",
            "--dead-letter-topic",
            dead_letters,
        ],
    )
}

/// Runs `sales --topic TOPIC <args>` to its end.
fn sales(topic: &str, args: &[&str]) -> Output {
    Command::new(binary("edison-sales", "sales"))
        .args(["--bootstrap-servers", &bootstrap(), "--topic", topic])
        .args(args)
        .output()
        .expect("run sales")
}

/// Asserts the command failed with `message` on stderr.
fn failed(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Neither the topic nor anything named after it exists.
fn nothing_created(topic: &str) {
    for name in [
        topic.to_owned(),
        registry_topic(topic),
        format!("{topic}.dlq"),
    ] {
        assert!(!topic_exists(&name), "{name} was created");
    }
}

/// Waits until `log` contains `text`.
async fn log_shows(log: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_catching_up_on_a_missing_topic_exits_and_creates_nothing() {
    let (topic, store) = (unique("orders-test-missing"), Store::sqlite());
    let output = catch_up(&topic, &store, &format!("{topic}.dlq"));
    failed(
        &output,
        &format!("topic {topic} does not exist yet: only Sales creates it (`sales topic create`)"),
    );
    nothing_created(&topic);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_started_before_the_topic_waits_for_sales_then_consumes() {
    let topic = unique("orders-test-waiting");
    let (store, dir) = (Store::sqlite(), tempfile::tempdir().unwrap());
    let log = dir.path().join("warehouse.log");
    let member = Process(
        Command::new(binary("edison-consumers", "warehouse"))
            .args(department_args(&topic, "warehouse", &store))
            .args(["run", "--dead-letter-topic", &format!("{topic}.dlq")])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    log_shows(&log, &format!("topic {topic} does not exist yet; waiting for Sales to create it (`sales topic create`)")).await;
    nothing_created(&topic);

    succeeded(&sales(&topic, &["topic", "create", "--partitions", "2"]));
    log_shows(&log, "partitions assigned ids=[0, 1]").await;
    let events = lifecycles(20);
    produce_events(&topic, &events).await;
    let group = group_for(&topic, "warehouse");
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_offsets(&kafka_args(&topic).client_config(), &group, &topic)
        .unwrap()
        .values()
        .sum::<i64>()
        < events.len() as i64
    {
        assert!(
            Instant::now() < deadline,
            "the department never consumed the events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(member.terminate().success());
    let waits = std::fs::read_to_string(&log)
        .unwrap()
        .matches("waiting for Sales")
        .count();
    assert_eq!(waits, 1, "the wait is logged once");
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_on_a_mistyped_topic_fail_and_create_nothing() {
    let topic = unique("orders-test-typo");
    let (store, dir) = (Store::sqlite(), tempfile::tempdir().unwrap());
    let snapshot = dir.path().join("snapshot.db");
    let missing = format!("topic {topic} does not exist yet");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["reset-offsets", "--to-earliest"],
        &["reset-offsets", "--to-earliest", "--execute"],
        &[
            "snapshot",
            "--as-of",
            "2025-01-08",
            "--out",
            snapshot.to_str().unwrap(),
        ],
        &["rebuild", "--shadow"],
    ] {
        failed(&warehouse(&topic, &store, args), &missing);
    }
    failed(
        &sales(&topic, &["topic", "describe"]),
        "UnknownTopicOrPartition",
    );
    nothing_created(&topic);
    assert!(!snapshot.exists(), "the snapshot file was created");
    assert!(
        !Path::new(store.url.trim_start_matches("sqlite://")).exists(),
        "the projection was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sales_records_the_partition_count_and_a_changed_count_is_refused_by_all() {
    let (topic, store) = (unique("orders-test-contract"), Store::sqlite());
    let created = succeeded(&sales(&topic, &["topic", "create", "--partitions", "2"]));
    assert!(
        created.contains(&format!(
            "created topic {topic}: 2 partitions, replication factor 1"
        )),
        "{created}"
    );
    let config = kafka_args(&topic).client_config();
    let contract = Contract {
        partitions: 2,
        replication_factor: 1,
    };
    assert_eq!(
        read_registry(&config, &topic).await.unwrap().contract,
        Some(contract.clone())
    );
    let again = succeeded(&sales(&topic, &["topic", "create", "--partitions", "5"]));
    assert!(
        again.contains("already exists with the required configs: 2 partitions"),
        "{again}"
    );
    succeeded(&catch_up(&topic, &store, &format!("{topic}.dlq")));

    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let grown = admin
        .create_partitions(&[NewPartitions::new(&topic, 3)], &AdminOptions::new())
        .await
        .unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
    let refused =
        format!("topic {topic} has 3 partitions, but Sales recorded 2; refusing to use it");
    failed(
        &sales(&topic, &["topic", "create", "--partitions", "3"]),
        &refused,
    );
    failed(&catch_up(&topic, &store, &format!("{topic}.dlq")), &refused);
    failed(&warehouse(&topic, &store, &["status"]), &refused);
    failed(
        &warehouse(&topic, &store, &["reset-offsets", "--to-earliest"]),
        &refused,
    );
    assert_eq!(
        read_registry(&config, &topic).await.unwrap().contract,
        Some(contract),
        "the contract stands"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_may_not_go_to_the_orders_topic() {
    let (topic, store) = (unique("orders-test-dlq"), Store::sqlite());
    for dead_letters in [topic.clone(), registry_topic(&topic)] {
        let output = catch_up(&topic, &store, &dead_letters);
        failed(&output, &format!("--dead-letter-topic {dead_letters} is the orders topic (--topic {topic}) or its registry"));
    }
    nothing_created(&topic);
    assert!(
        !Path::new(store.url.trim_start_matches("sqlite://")).exists(),
        "refused before touching the database"
    );
}
