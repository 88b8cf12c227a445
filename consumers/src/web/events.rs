//! The latest events of the orders topic, as they arrive: what the page lists under "Latest
//! events". Read from the log, because the projection keeps no customer names.
//!
//! An erasure (a tombstone) drops the order's earlier events from the list, so a name the log
//! has forgotten does not stay on the page.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientConfig;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use edison_schemas::{Codec, EventType, Money, OrderEvent};

/// How often a changed list is published: records arriving in a burst (a replay, a simulation)
/// make one update, not one each.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// One record of the orders topic, as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentEvent {
    /// The record's partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's key: the order id.
    pub order_id: String,
    /// What the record says: `PLACED`, `PAID`, `AMENDED`, `CANCELLED`, `UNKNOWN`, `ERASED` (a
    /// tombstone) or `UNDECODABLE` (a value this build cannot read; the department
    /// dead-letters it or stops on it).
    pub event: String,
    /// When it happened (the event's `occurred_at`, else the record's timestamp), ms since the
    /// epoch.
    pub at_ms: Option<i64>,
    /// The order's state after the event; absent for a tombstone or an undecodable value.
    pub order: Option<OrderLine>,
}

/// What the page shows of an order beside its event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderLine {
    /// `F`, `P` or `H`.
    pub model: String,
    /// `placed`, `paid` or `cancelled`.
    pub status: String,
    /// User input: the page renders it as text.
    pub customer_name: String,
    /// `69,900.00 EUR`.
    pub price: String,
}

/// The latest records, newest first, at most `capacity`.
struct Recent {
    capacity: usize,
    events: VecDeque<RecentEvent>,
    codec: Codec,
}

impl Recent {
    fn record(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, partition: i32, offset: i64, timestamp: Option<i64>) {
        let order_id = key.map(|key| String::from_utf8_lossy(key).into_owned()).unwrap_or_default();
        let decoded = value.map(|value| self.codec.decode(value));
        let (event, at_ms, order) = match decoded {
            None => {
                // The log forgets this order's personal data: so does the page.
                self.events.retain(|e| e.order_id != order_id);
                ("ERASED".to_owned(), timestamp, None)
            }
            Some(Ok(event)) => (event_name(event.event_type).to_owned(), Some(event.occurred_at), Some(line(&event))),
            Some(Err(_)) => ("UNDECODABLE".to_owned(), timestamp, None),
        };
        self.events.push_front(RecentEvent { partition, offset, order_id, event, at_ms, order });
        self.events.truncate(self.capacity);
    }
}

fn event_name(event_type: EventType) -> &'static str {
    match event_type {
        EventType::Unknown => "UNKNOWN",
        EventType::Placed => "PLACED",
        EventType::Paid => "PAID",
        EventType::Amended => "AMENDED",
        EventType::Cancelled => "CANCELLED",
    }
}

fn line(event: &OrderEvent) -> OrderLine {
    let order = &event.order;
    OrderLine {
        model: order.model.as_str().to_owned(),
        status: order.status.as_str().to_owned(),
        customer_name: order.customer.name.clone(),
        price: Money::format(order.price.amount_cents, &order.price.currency),
    }
}

/// Follows `topic` from `capacity` records before each partition's end, publishing the latest
/// `capacity` records into `events` as they arrive, until `shutdown`.
pub async fn publish(config: ClientConfig, topic: String, capacity: usize, events: watch::Sender<Arc<str>>, shutdown: CancellationToken) {
    let codec = match Codec::new() {
        Ok(codec) => codec,
        Err(error) => return tracing::error!(%error, "the built-in schema does not load; the page lists no events"),
    };
    let recent = std::sync::Mutex::new(Recent { capacity, events: VecDeque::new(), codec });
    let changed = std::sync::atomic::AtomicBool::new(true);
    let on_record = |message: &BorrowedMessage<'_>| {
        let timestamp = message.timestamp().to_millis();
        recent.lock().expect("never poisoned").record(message.key(), message.payload(), message.partition(), message.offset(), timestamp);
        changed.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let start = |mark: &edison_common::kafka::Watermarks| (mark.high - capacity as i64).max(mark.low);
    let follow = super::tail::follow(&config, &topic, start, on_record, &shutdown);
    let publish = async {
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        loop {
            tick.tick().await;
            if changed.swap(false, std::sync::atomic::Ordering::Relaxed) {
                let list: Vec<RecentEvent> = recent.lock().expect("never poisoned").events.iter().cloned().collect();
                events.send_replace(super::json(&list));
            }
        }
    };
    tokio::select! {
        _ = follow => {}
        _ = publish => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_keeps_the_newest_and_a_tombstone_takes_the_orders_name_with_it() {
        let codec = Codec::new().unwrap();
        let mut recent = Recent { capacity: 3, events: VecDeque::new(), codec: Codec::new().unwrap() };
        let placed = crate::departments::fixtures::placed();
        let mut other = placed.clone();
        other.order.order_id = "another order".into();
        let value = |event: &OrderEvent| codec.encode(event).unwrap();
        let key = |event: &OrderEvent| event.order.order_id.clone().into_bytes();
        recent.record(Some(&key(&placed)), Some(&value(&placed)), 0, 1, None);
        recent.record(Some(&key(&other)), Some(&value(&other)), 1, 1, None);
        assert_eq!(recent.events[0].order_id, other.order.order_id, "newest first");
        assert_eq!(recent.events[1].order.as_ref().unwrap().customer_name, placed.order.customer.name);
        recent.record(Some(&key(&placed)), None, 0, 2, Some(5));
        let listed: Vec<(&str, &str)> = recent.events.iter().map(|e| (e.order_id.as_str(), e.event.as_str())).collect();
        assert_eq!(listed, [(placed.order.order_id.as_str(), "ERASED"), (other.order.order_id.as_str(), "PLACED")]);
        recent.record(Some(b"x"), Some(b"not avro"), 0, 3, Some(6));
        recent.record(Some(b"y"), Some(b"not avro"), 0, 4, Some(7));
        assert_eq!(recent.events.len(), 3, "at most the capacity");
        assert_eq!((recent.events[0].event.as_str(), recent.events[2].event.as_str()), ("UNDECODABLE", "ERASED"));
    }
}
