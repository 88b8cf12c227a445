//! Schemas travel with the log. Sales publishes each writer schema to `<topic>.schemas` before
//! its first event with it; a department that meets a fingerprint it was not built with reads
//! that registry and resolves the schema against its own. A fingerprint found nowhere stops the
//! department before the record, with the committed offsets left there: a newer schema is never
//! skipped silently.
//!
//! "A Sales built with v2" is played by the test: it publishes the v2-test schema to the registry
//! with the same library call the relay uses, then produces v2-encoded events, as such a Sales
//! would. The v1 events come from the real `sales` binary.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use edison_common::kafka::{publish_registry, read_registry};
use edison_consumers::command::execute;
use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use edison_schemas::{fingerprint, Codec, EventType, Order, OrderEvent, OrderStatus, KNOWN_SCHEMAS, ORDER_EVENT_SCHEMA};
use support::*;

const V2: &str = include_str!("../../schemas/tests/fixtures/order_event.v2-test.avsc");

/// The order event as a v2 build of Sales has it: one field more, with a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "OrderEvent")]
struct OrderEventV2 {
    event_id: String,
    event_type: EventType,
    sequence: i64,
    occurred_at: i64,
    order: Order,
    sales_channel: String,
}

/// The real `sales` binary; panics with its stderr if it fails.
fn sales(topic: &str, database_url: &str, args: &[&str]) -> String {
    let output = Command::new(binary("edison-sales", "sales"))
        .args(["--bootstrap-servers", &bootstrap(), "--topic", topic, "--database-url", database_url])
        .args(args)
        .output()
        .expect("run sales");
    assert!(output.status.success(), "sales {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Places `count` orders with the real `sales` binary on a new topic: (topic, their v1 events).
fn v1_history(count: usize) -> (String, Vec<OrderEvent>) {
    let topic = unique("orders-test");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sales.db", dir.path().display());
    for i in 0..count {
        let name = format!("Customer {i}");
        let place = ["place", "--model", "F", "--customer-name", &name, "--email", "c@example.com", "--address", "1 Way"];
        sales(&topic, &url, &place);
    }
    let codec = Codec::new().unwrap();
    let events = read_all(&topic).iter().map(|r| codec.decode(r.value.as_deref().unwrap()).unwrap()).collect();
    (topic, events)
}

/// Produces keyed values; returns (partition, offset) of each.
async fn produce_at(topic: &str, records: &[(String, Vec<u8>)]) -> Vec<(i32, i64)> {
    let producer: FutureProducer = kafka_args(topic).producer_config().create().unwrap();
    let mut at = Vec::new();
    for (key, value) in records {
        let record = FutureRecord::to(topic).key(key.as_bytes()).payload(value.as_slice());
        let delivery = producer.send(record, Duration::from_secs(30)).await.expect("acknowledged");
        at.push((delivery.partition, delivery.offset));
    }
    at
}

/// What a v1 department reads of a v2 event: the same event without the field it does not know.
fn as_v1(event: &OrderEventV2) -> OrderEvent {
    OrderEvent {
        event_id: event.event_id.clone(),
        event_type: event.event_type,
        sequence: event.sequence,
        occurred_at: event.occurred_at,
        order: event.order.clone(),
    }
}

/// The warehouse's rows for `events` by its rule (`support::rules::reservation`): one row per
/// order, from its latest event by sequence.
fn expected_reservations(events: &[OrderEvent]) -> Vec<Reservation> {
    let mut latest: BTreeMap<&str, &OrderEvent> = BTreeMap::new();
    for event in events {
        if latest.get(event.order.order_id.as_str()).is_none_or(|seen| event.sequence > seen.sequence) {
            latest.insert(&event.order.order_id, event);
        }
    }
    latest.into_values().map(rules::reservation).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_department_reads_v2_events_by_the_schema_sales_published_and_a_v2_reader_reads_both() {
    let (topic, v1) = v1_history(3);
    // The relay published v1 before its first event.
    let registry = read_registry(&kafka_args(&topic).client_config(), &topic).await.unwrap();
    let v1_fingerprint = fingerprint(ORDER_EVENT_SCHEMA).unwrap();
    assert_eq!(registry.schemas.get(&v1_fingerprint).map(String::as_str), Some(ORDER_EVENT_SCHEMA));
    assert!(registry.contract.is_some_and(|contract| contract.partitions == 6));

    // A v2 Sales: schema first, then its events (the first two orders paid, by phone).
    let v2_fingerprint = fingerprint(V2).unwrap();
    publish_registry(&kafka_args(&topic).producer_config(), &topic, None, &[(v2_fingerprint, V2)]).await.unwrap();
    let writer = Codec::<OrderEventV2>::with_schemas(V2, &[]).unwrap();
    let paid: Vec<OrderEventV2> = v1[..2]
        .iter()
        .map(|placed| OrderEventV2 {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: EventType::Paid,
            sequence: 2,
            occurred_at: placed.occurred_at + 1000,
            order: Order { status: OrderStatus::Paid, paid_at: Some(placed.occurred_at + 1000), ..placed.order.clone() },
            sales_channel: "phone".into(),
        })
        .collect();
    let records: Vec<_> = paid.iter().map(|e| (e.order.order_id.clone(), writer.encode(e).unwrap())).collect();
    produce_at(&topic, &records).await;

    // A v1 department (this build) applies them all, and dead-letters nothing.
    let store = Store::sqlite();
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!((stats.consumed, stats.applied, stats.dead_lettered), (5, 5, 0), "{stats:?}");
    let rows = warehouse::reservations(&connect(&Warehouse, &store).await.pool).await.unwrap();
    let log: Vec<OrderEvent> = v1.iter().cloned().chain(paid.iter().map(as_v1)).collect();
    assert_eq!(rows, expected_reservations(&log));
    assert_eq!(rows.iter().filter(|r| r.status == "paid").count(), 2);

    // A v2 department reads the v1 history (the default filled in) and the v2 events.
    let reader = Codec::<OrderEventV2>::with_schemas(V2, KNOWN_SCHEMAS).unwrap();
    let channels: Vec<(i64, String)> = read_all(&topic)
        .iter()
        .map(|r| reader.decode(r.value.as_deref().unwrap()).unwrap())
        .map(|e| (e.sequence, e.sales_channel))
        .collect();
    let mut counted = channels.clone();
    counted.sort();
    assert_eq!(counted, [(1, "web".into()), (1, "web".into()), (1, "web".into()), (2, "phone".into()), (2, "phone".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fingerprint_nobody_published_stops_the_department_before_it_and_offsets_stay() {
    let (topic, v1) = v1_history(2);
    // Valid single-object framing, a schema nobody published.
    let unknown = 0x0123_4567_89ab_cdef_u64;
    let mut value = vec![0xC3, 0x01];
    value.extend_from_slice(&unknown.to_le_bytes());
    value.extend_from_slice(b"\x02\x04");
    let key = v1[0].order.order_id.clone();
    let (partition, offset) = produce_at(&topic, &[(key, value)]).await[0];

    let store = Store::sqlite();
    let cli = department_cli(&topic, "warehouse", &store, &["run", "--until-caught-up", "--dead-letter-topic", &format!("{topic}.dlq")]);
    let mut first_committed = None;
    for attempt in 1..=2 {
        let run = execute(&Warehouse, &cli, CancellationToken::new());
        let error = tokio::time::timeout(Duration::from_secs(120), run).await.expect("it stops").expect_err("it must fail");
        let message = format!("{error:#}");
        for part in ["0123456789abcdef", &format!("partition {partition}"), &format!("offset {offset}")] {
            assert!(message.contains(part), "attempt {attempt}: {part:?} missing from: {message}");
        }
        // Everything before it is applied and committed; nothing past it.
        let committed: BTreeMap<i32, Option<i64>> = kafka_describe_group(&group_for(&topic, "warehouse"))
            .into_iter()
            .filter(|row| row.topic == topic)
            .map(|row| (row.partition, row.current_offset))
            .collect();
        let at = committed.get(&partition).copied().flatten();
        assert!(at.is_some_and(|at| at <= offset), "attempt {attempt}: committed {at:?} is past offset {offset}");
        assert_eq!(*first_committed.get_or_insert(at), at, "attempt {attempt} moved the committed offset");
    }
    assert!(!topic_exists(&format!("{topic}.dlq")) || read_all(&format!("{topic}.dlq")).is_empty(), "not poison: nothing dead-lettered");
    // What is applied is right; the unknown record's own partition is applied up to it. Other
    // partitions stop wherever the run did.
    let rows = warehouse::reservations(&connect(&Warehouse, &store).await.pool).await.unwrap();
    let expected = expected_reservations(&v1);
    assert!(rows.iter().all(|row| expected.contains(row)), "{rows:?}");
    assert!(rows.iter().any(|row| row.order_id == v1[0].order.order_id), "{rows:?}");
}
