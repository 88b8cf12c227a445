//! Two instances of one department in one consumer group, as separate processes.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use support::*;

fn start_instance(topic: &str, group: &str, store: &Store, log: &std::path::Path) -> Process {
    Process(Command::new(binary("edison-consumers", "warehouse"))
        .args(department_args(topic, group, store))
        // A short session timeout so the survivor takes over a killed member's partitions soon.
        .args(["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"])
        .args(["run", "--dead-letter-topic", &format!("{topic}.dlq")])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start warehouse"))
}

async fn row_count(store: &Store) -> usize {
    warehouse::reservations(&connect(&Warehouse, store).await.pool).await.unwrap().len()
}

fn assignments(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.contains("partitions assigned"))
        .map(str::to_owned)
        .collect()
}

fn latest_assignment(log: &std::path::Path) -> Option<String> {
    let line = assignments(log).pop()?;
    Some(line[line.find("ids=")?..].to_owned())
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_the_partitions_and_the_survivor_of_a_kill_finishes() {
    let topic = orders_topic(6).await;
    let store = Store::new(Backend::Postgres);
    connect(&Warehouse, &store).await; // migrate once, before two processes race to
    let logs = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let a = start_instance(&topic, "warehouse", &store, &log_a);
    let b = start_instance(&topic, "warehouse", &store, &log_b);

    wait_for("both instances hold different partitions", async || {
        matches!((latest_assignment(&log_a), latest_assignment(&log_b)), (Some(x), Some(y)) if x != y && x != "ids=[]" && y != "ids=[]")
    })
    .await;
    let events = lifecycles(4000);
    let (first_half, second_half) = events.split_at(events.len() / 2);
    produce_events(&topic, first_half).await;
    wait_for("the projection is part-way", async || row_count(&store).await > 0).await;

    drop(a); // SIGKILL: no commit, no leave-group
    produce_events(&topic, second_half).await;
    wait_for("the survivor has applied every order", async || row_count(&store).await == 4000).await;

    let status = tokio::task::spawn_blocking(move || b.terminate()).await.unwrap();
    assert!(status.success(), "SIGTERM is a clean shutdown: {}", std::fs::read_to_string(&log_b).unwrap());
    let b_log = std::fs::read_to_string(&log_b).unwrap();
    assert!(
        latest_assignment(&log_b).is_some_and(|ids| ids == "ids=[0, 1, 2, 3, 4, 5]"),
        "the survivor took over every partition: {b_log}"
    );

    let want: Vec<Reservation> = latest_states(&read_all(&topic)).values().map(rules::reservation).collect();
    let got = warehouse::reservations(&connect(&Warehouse, &store).await.pool).await.unwrap();
    assert_eq!(got, want, "the projection equals the one computed from the topic");
}
