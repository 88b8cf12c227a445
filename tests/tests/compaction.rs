//! The compacted topic alone suffices: after the broker has compacted old events away, a
//! brand-new group still rebuilds identical projections, and erased orders stay erased.

mod support;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use support::*;

async fn reservations(store: &Store) -> Vec<Reservation> {
    warehouse::reservations(&connect(&Warehouse, store).await.pool).await.unwrap()
}

/// Makes the broker compact `topic` within seconds. AlterConfigs replaces the whole topic
/// config, so the compaction policy is restated.
async fn force_compaction(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = kafka_args(topic).client_config().create().unwrap();
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "-1")
        .set("segment.ms", "100")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("min.compaction.lag.ms", "0")
        // Tombstones outlive the test, so the rebuild must honour them rather than never see
        // the erased order's older events.
        .set("delete.retention.ms", "86400000");
    for result in admin.alter_configs([&config], &AdminOptions::new()).await.unwrap() {
        result.expect("alter topic config");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_group_rebuilds_identical_projections_after_compaction() {
    let topic = orders_topic(2).await;
    let events = lifecycles(300);
    produce_events(&topic, &events).await;
    let erased: Vec<String> = events.iter().step_by(37).map(|e| e.order.order_id.clone()).collect();
    let tombstones: Vec<_> = erased.iter().map(|id| (id.clone().into_bytes(), None)).collect();
    produce(&topic, &tombstones).await;
    let produced = read_all(&topic).len();
    assert_eq!(produced, events.len() + erased.len());

    let before = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &before).await;
    let projection = reservations(&before).await;
    assert!(erased.iter().all(|id| projection.iter().all(|r| &r.order_id != id)));

    force_compaction(&topic).await;
    let keys = latest_states(&read_all(&topic)).len() + erased.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    let remaining = loop {
        // The active segment is never cleaned. An append rolls an expired one, so re-send each
        // partition's last record, which changes no projection.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let records = read_all(&topic);
        if records.len() <= keys + 2 {
            break records.len();
        }
        assert!(Instant::now() < deadline, "{topic} not compacted: {} records left of {produced}, {keys} keys", records.len());
        let mut last_per_partition = std::collections::BTreeMap::new();
        for record in records {
            last_per_partition.insert(record.partition, (record.key.unwrap(), record.value));
        }
        produce(&topic, &last_per_partition.into_values().collect::<Vec<_>>()).await;
    };
    assert!(remaining < produced, "compaction removed records: {remaining} left of {produced}");

    let rebuilt = Store::sqlite();
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse-after-compaction", &rebuilt).await;
    assert_eq!(stats.consumed as usize, remaining);
    assert_eq!(reservations(&rebuilt).await, projection, "identical projection from the compacted log");
}
