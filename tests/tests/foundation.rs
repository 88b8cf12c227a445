//! The first slice end to end: events on a real broker, materialised by the warehouse. Its
//! rule, restated in `support::rules`: a reservation holds the order's batteries unless the order
//! is cancelled; older events never overwrite newer ones; an erased order disappears.

mod support;

use edison_common::kafka::{ensure_topic, topic_configs, TopicError, TopicSpec};
use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use edison_consumers::runtime::RunStats;
use support::*;

async fn reservations(store: &Store) -> Vec<Reservation> {
    warehouse::reservations(&connect(&Warehouse, store).await.pool).await.unwrap()
}

/// What the warehouse must hold for the topic's records, by its rule.
fn expected(records: &[Record]) -> Vec<Reservation> {
    latest_states(records).values().map(rules::reservation).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_n_orders_give_n_rows_that_match_what_was_sent_and_a_rerun_applies_nothing() {
    n_orders_give_n_rows_that_match_what_was_sent_and_a_rerun_applies_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_n_orders_give_n_rows_that_match_what_was_sent_and_a_rerun_applies_nothing() {
    n_orders_give_n_rows_that_match_what_was_sent_and_a_rerun_applies_nothing(Backend::Postgres).await;
}

async fn n_orders_give_n_rows_that_match_what_was_sent_and_a_rerun_applies_nothing(backend: Backend) {
    let topic = orders_topic(6).await;
    let events = lifecycles(300);
    produce_events(&topic, &events).await;
    let store = Store::new(backend);

    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!(stats.consumed, events.len() as u64);
    assert_eq!(stats.applied + stats.dead_lettered, stats.consumed);
    let rows = reservations(&store).await;
    assert_eq!(rows.len(), 300, "one row per order");
    let want = expected(&read_all(&topic));
    assert_eq!(rows, want, "rows match the latest event of each order as sent");
    assert!(rows.iter().any(|r| r.status == "cancelled" && r.batteries_reserved == 0));
    assert!(rows.iter().any(|r| r.status == "placed" && r.batteries_reserved == r.batteries && r.batteries > 0));
    assert!(rows.iter().any(|r| r.status == "paid" && r.sequence == 2));

    let again = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let nothing = RunStats { busy: again.busy, ..RunStats::default() };
    assert_eq!(again, nothing, "the group's committed offsets leave nothing to apply");
    assert_eq!(reservations(&store).await, rows, "rows and sequences unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_group_started_after_production_backfills_the_same_projection() {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(200)).await;
    let first = Store::sqlite();
    let late = Store::sqlite();

    run_until_caught_up(&Warehouse, &topic, "warehouse", &first).await;
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse-late-joiner", &late).await;
    assert!(stats.consumed > 0, "the new group replays from offset zero");
    assert_eq!(reservations(&late).await, reservations(&first).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_and_duplicated_events_change_nothing() {
    let topic = orders_topic(1).await;
    let events = lifecycles(50);
    produce_events(&topic, &events).await;
    // A relay that crashed before marking its sends re-publishes them after newer ones.
    produce_events(&topic, &events[..20]).await;
    let store = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let want = expected(&read_all(&topic));
    assert_eq!(reservations(&store).await, want, "older sequences never overwrite newer ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tombstone_removes_the_row() {
    let topic = orders_topic(2).await;
    let events = lifecycles(10);
    produce_events(&topic, &events).await;
    let store = Store::sqlite();
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let erased = events[3].order.order_id.clone();
    assert!(reservations(&store).await.iter().any(|r| r.order_id == erased));

    produce(&topic, &[(erased.clone().into_bytes(), None)]).await;
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!(stats.consumed, 1);
    let rows = reservations(&store).await;
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r.order_id != erased), "the erased order is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_orders_topic_is_compacted_and_retained_forever() {
    let topic = orders_topic(6).await;
    let configs = topic_configs(&kafka_args(&topic).client_config(), &topic).await.unwrap();
    assert_eq!(configs["cleanup.policy"], "compact");
    assert_eq!(configs["retention.ms"], "-1");
    assert_eq!(configs["min.compaction.lag.ms"], "86400000");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_topic_that_deletes_old_records_is_refused() {
    let topic = unique("orders-test-delete");
    let config = kafka_args(&topic).client_config();
    ensure_topic(&config, &TopicSpec::dead_letter(&topic)).await.unwrap();
    match ensure_topic(&config, &TopicSpec::orders(&topic, 6)).await {
        Err(TopicError::WrongConfig { key, actual, .. }) => {
            assert_eq!((key, actual.as_str()), ("cleanup.policy", "delete"));
        }
        other => panic!("a non-compacted orders topic must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_go_to_the_dead_letter_topic_with_their_origin() {
    let topic = orders_topic(1).await;
    let events = lifecycles(5);
    let codec = edison_schemas::Codec::new().unwrap();
    let good = codec.encode(&events[0]).unwrap();
    let valid_key = events[0].order.order_id.clone().into_bytes();
    let mut wrong_order = good.clone();
    wrong_order.truncate(good.len() - 3);
    produce_events(&topic, &events).await;
    produce(
        &topic,
        &[
            (b"not-a-uuid".to_vec(), Some(good.clone())),
            (valid_key.clone(), Some(vec![])),
            (valid_key.clone(), Some(b"{\"json\": true}".to_vec())),
            (valid_key.clone(), Some(wrong_order)),
            (events.last().unwrap().order.order_id.clone().into_bytes(), Some(good)),
        ],
    )
    .await;
    let store = Store::sqlite();
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!(stats.dead_lettered, 5);
    assert_eq!(stats.applied + stats.dead_lettered, stats.consumed);
    assert_eq!(reservations(&store).await.len(), 5, "the projection is unaffected");

    let letters = read_all(&format!("{topic}.dlq"));
    let kinds: Vec<&str> = letters.iter().map(|l| l.headers["edison.error.kind"].as_str()).collect();
    assert_eq!(kinds, ["invalid_key", "empty_value", "bad_magic", "malformed", "key_mismatch"]);
    for letter in &letters {
        assert_eq!(letter.headers["edison.source.topic"], topic);
        assert_eq!(letter.headers["edison.source.partition"], "0");
        assert_eq!(letter.headers["edison.consumer.group"], group_for(&topic, "warehouse"));
        assert!(!letter.headers["edison.error.message"].is_empty());
    }
    let offsets: Vec<i64> = letters.iter().map(|l| l.headers["edison.source.offset"].parse().unwrap()).collect();
    assert_eq!(offsets, (events.len() as i64..events.len() as i64 + 5).collect::<Vec<_>>());
    assert_eq!(letters[0].key.as_deref(), Some(&b"not-a-uuid"[..]), "the original key is kept");
    assert_eq!(letters[1].value.as_deref(), Some(&[][..]), "the original value is kept");
}
