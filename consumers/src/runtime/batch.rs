//! Turning consumed records into the changes a projection applies.

use std::collections::HashMap;

use edison_schemas::OrderEvent;

/// One order's change, as a projection sees it.
// Nearly every change is an upsert, so boxing the event would only add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The order's full state after an event.
    Upsert(OrderEvent),
    /// A tombstone: the order is erased (GDPR).
    Erase { order_id: String },
}

impl Change {
    pub fn order_id(&self) -> &str {
        match self {
            Change::Upsert(event) => &event.order.order_id,
            Change::Erase { order_id } => order_id,
        }
    }
}

/// Reduces changes in log order to one per order.
///
/// Every event carries the order's full state, so only the latest matters, which is also why
/// compaction loses nothing. "Latest" is the highest sequence, not the last offset: a relay that
/// re-sends after a crash can put an older event after a newer one. A tombstone erases whatever
/// came before it; an event after a tombstone re-creates the order, as in the log.
pub fn collapse(changes: impl IntoIterator<Item = Change>) -> Vec<Change> {
    let mut collapsed = Collapsed::default();
    for change in changes {
        collapsed.push(change);
    }
    collapsed.into_changes()
}

/// Changes reduced as they come, by [`collapse`]'s rule, so a batch holds one per order.
#[derive(Debug, Default)]
pub struct Collapsed {
    /// Order id → its change's index in `changes`.
    latest: HashMap<String, usize, foldhash::fast::RandomState>,
    changes: Vec<Change>,
}

impl Collapsed {
    pub fn push(&mut self, change: Change) {
        match self.latest.get(change.order_id()) {
            None => {
                self.latest.insert(change.order_id().to_owned(), self.changes.len());
                self.changes.push(change);
            }
            Some(&i) => {
                let keep_current = matches!(
                    (&self.changes[i], &change),
                    (Change::Upsert(current), Change::Upsert(next)) if current.sequence >= next.sequence
                );
                if !keep_current {
                    self.changes[i] = change;
                }
            }
        }
    }

    /// The changes, in the order their orders first appeared.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edison_schemas::*;

    fn event(order: &str, sequence: i64) -> Change {
        Change::Upsert(OrderEvent {
            event_id: format!("{order}-{sequence}"),
            event_type: EventType::Placed,
            sequence,
            occurred_at: 0,
            order: Order {
                order_id: order.into(),
                customer: Customer {
                    customer_id: "c".into(),
                    name: "n".into(),
                    email: "e@x.io".into(),
                    shipping_address: "a".into(),
                },
                model: CarModel::F,
                batteries: 1,
                price: Money { amount_cents: 1, currency: "EUR".into() },
                status: OrderStatus::Placed,
                expected_delivery: 0,
                placed_at: 0,
                paid_at: None,
                cancelled_at: None,
                cancel_reason: None,
            },
        })
    }

    fn erase(order: &str) -> Change {
        Change::Erase { order_id: order.into() }
    }

    #[test]
    fn keeps_the_highest_sequence_per_order() {
        let out = collapse([event("a", 1), event("b", 1), event("a", 3), event("a", 2)]);
        assert_eq!(out, vec![event("a", 3), event("b", 1)]);
    }

    #[test]
    fn tombstone_wins_over_earlier_events_and_later_events_recreate() {
        assert_eq!(collapse([event("a", 1), erase("a")]), vec![erase("a")]);
        assert_eq!(collapse([event("a", 1), erase("a"), event("a", 1)]), vec![event("a", 1)]);
    }
}
