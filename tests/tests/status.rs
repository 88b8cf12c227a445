//! `DEPARTMENT status` against the real broker: its lag figures are the broker's own, and it
//! reports a department that has not run yet without creating anything.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use edison_consumers::departments::Warehouse;
use edison_common::time::now_ms;
use support::*;

/// `warehouse ... status --json`, run as the binary, parsed.
fn status_json(topic: &str, group: &str, store: &Store) -> Value {
    let output = Command::new(binary("edison-consumers", "warehouse"))
        .args(department_args(topic, group, store))
        .args(["status", "--json"])
        .output()
        .expect("run warehouse status");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}


#[tokio::test(flavor = "multi_thread")]
async fn the_lag_per_partition_is_the_brokers_own() {
    let topic = orders_topic(3).await;
    let events = lifecycles(300);
    let (consumed, pending) = events.split_at(400);
    produce_events(&topic, consumed).await;
    let store = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    produce_events(&topic, pending).await;

    let status = status_json(&topic, "warehouse", &store);
    let described = kafka_describe_group(&group_for(&topic, "warehouse"));

    let partitions = status["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{status}");
    assert_eq!(described.len(), 3, "{described:?}");
    for (ours, kafka) in partitions.iter().zip(&described) {
        assert_eq!(ours["partition"].as_i64(), Some(i64::from(kafka.partition)));
        assert_eq!(ours["committed"].as_i64(), kafka.current_offset, "CURRENT-OFFSET: {ours} {kafka:?}");
        assert_eq!(ours["log_end"].as_i64(), kafka.log_end_offset, "LOG-END-OFFSET: {ours} {kafka:?}");
        assert_eq!(ours["lag"].as_i64(), kafka.lag, "LAG: {ours} {kafka:?}");
    }
    assert_eq!(status["lag"].as_i64(), Some(pending.len() as i64), "the events produced since the run: {status}");
    assert_eq!((status["state"].as_str(), status["members"].as_array().map(Vec::len)), (Some("Empty"), Some(0)), "{status}");
    assert_eq!((status["events_per_second"].as_f64(), status["eta"].as_str()), (Some(0.0), Some("—")), "{status}");
    assert!(status["eta_seconds"].is_null(), "{status}");
    let applied = status["last_applied_ms"].as_i64().unwrap_or_else(|| panic!("a last applied time: {status}"));
    assert!((now_ms() - 120_000..=now_ms()).contains(&applied), "{status}");
    assert!(status["database_note"].is_null(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_member_and_its_rate_show() {
    let topic = orders_topic(2).await;
    let store = Store::sqlite();
    let logs = tempfile::tempdir().unwrap();
    let member = start_member("warehouse", &topic, "warehouse", &store, &logs.path().join("warehouse.log"), 2).await;
    // A steady trickle while status samples, so the group commits progress within its second.
    let events = lifecycles(600);
    let producing = tokio::spawn({
        let topic = topic.clone();
        async move {
            for chunk in events.chunks(40) {
                produce_events(&topic, chunk).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = status_json(&topic, "warehouse", &store);
    producing.await.unwrap();
    assert!(member.terminate().success());

    assert_eq!(status["state"].as_str(), Some("Stable"), "{status}");
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{status}");
    assert!(!members[0]["client_id"].as_str().unwrap().is_empty() && !members[0]["host"].as_str().unwrap().is_empty());
    assert!(status["events_per_second"].as_f64().unwrap() > 0.0, "the group commits as it goes: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_department_that_never_ran_is_reported_and_nothing_is_created() {
    let topic = orders_topic(1).await;
    let store = Store::sqlite();
    let status = status_json(&topic, "warehouse", &store);
    assert_eq!(status["state"].as_str(), Some("Dead"), "unknown to the broker: {status}");
    assert_eq!(status["lag"].as_i64(), Some(0));
    assert!(status["database_note"].as_str().unwrap().contains("no database yet"), "{status}");
    let path = store.url.trim_start_matches("sqlite://");
    assert!(!std::path::Path::new(path).exists(), "status created {path}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_department_that_never_ran_is_reported_and_nothing_is_created() {
    let topic = orders_topic(1).await;
    let store = Store::new(Backend::Postgres);
    let status = status_json(&topic, "warehouse", &store);
    assert!(status["database_note"].as_str().unwrap().contains("no database yet"), "{status}");
    assert!(status["last_applied_ms"].is_null(), "{status}");
    sqlx::any::install_default_drivers();
    let server = sqlx::AnyPool::connect(&postgres_url()).await.unwrap();
    let schemas = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1";
    let found: i64 = sqlx::query_scalar(schemas).bind(&store.schema).fetch_one(&server).await.unwrap();
    assert_eq!(found, 0, "status created the schema {}", store.schema);
    connect(&Warehouse, &store).await; // the first real connection creates and migrates it
    let status_after = status_json(&topic, "warehouse", &store);
    assert_eq!(status_after["database_note"].as_str(), Some("nothing applied yet"), "{status_after}");
}
