//! Assembly against the real broker: the build queue follows the log. Its rules, restated in
//! `support::rules`: every order keeps an entry with its latest model, batteries and expected
//! delivery; it waits to be built while paid and not cancelled since, earliest delivery first.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::assembly::{self, QueueEntry, REPORT_HEAD};
use edison_consumers::departments::Assembly;
use edison_consumers::runtime::Projection;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_build_queue_holds_the_paid_orders_by_expected_delivery() {
    the_build_queue_holds_the_paid_orders_by_expected_delivery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_the_build_queue_holds_the_paid_orders_by_expected_delivery() {
    the_build_queue_holds_the_paid_orders_by_expected_delivery(Backend::Postgres).await;
}

async fn the_build_queue_holds_the_paid_orders_by_expected_delivery(backend: Backend) {
    let run = exercise(
        &Assembly,
        backend,
        300,
        |db| async move { assembly::entries(&db.pool).await.unwrap() },
        |event| Some(rules::queue_entry(event)),
    )
    .await;
    assert!(run.rows.iter().any(|entry| entry.status == "cancelled"), "cancelled orders keep their row");

    assert!(
        run.rows.iter().any(|entry| rules::queued(entry) && run.latest[&entry.order_id].event_type == edison_schemas::EventType::Amended),
        "an amendment updated a queued entry"
    );

    let mut queue: Vec<QueueEntry> = run.latest.values().map(rules::queue_entry).filter(rules::queued).collect();
    queue.sort_by(|a, b| (a.expected_delivery, &a.order_id).cmp(&(b.expected_delivery, &b.order_id)));
    let pool = &run.db.pool;
    let head = assembly::queue_head(pool, REPORT_HEAD).await.unwrap();
    assert_eq!(head, queue[..REPORT_HEAD as usize], "the earliest deliveries first");

    let mut lengths: BTreeMap<String, i64> = BTreeMap::new();
    for entry in &queue {
        *lengths.entry(entry.model.clone()).or_default() += 1;
    }
    let lengths: Vec<(String, i64)> = lengths.into_iter().collect();
    assert_eq!(assembly::queue_length_by_model(pool).await.unwrap(), lengths);
    assert_eq!(lengths.len(), 3);

    let report = Assembly.report(pool).await.unwrap();
    assert!(report.contains(&format!("total      {:>8}", queue.len())), "{report}");
    assert!(report.contains(&head[0].order_id), "{report}");
}
