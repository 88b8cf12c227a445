//! Assembly: the build queue. Paid, non-cancelled orders wait to be built, the earliest expected
//! delivery first. An amendment updates the order's entry (a model change builds another car); a
//! cancellation takes it out of the queue. Erased orders disappear.

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use edison_schemas::{OrderEvent, OrderStatus};

use super::format;
use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/assembly/migrations");

/// How many orders of the queue's head the report lists.
pub const REPORT_HEAD: i64 = 10;

const COLUMNS: [&str; 7] = ["order_id", "model", "batteries", "expected_delivery", "status", "sequence", "updated_at"];

/// The status that puts an order in the queue: paid, and not cancelled since.
const QUEUED: OrderStatus = OrderStatus::Paid;

#[derive(Debug, Clone, Copy, Default)]
pub struct Assembly;

/// One order as assembly holds it. Every order keeps its row, queued or not, so the sequence
/// gate refuses a stale "paid" that arrives after the cancellation instead of re-queueing it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueEntry {
    pub order_id: String,
    pub model: String,
    pub batteries: i64,
    /// Days since 1970-01-01.
    pub expected_delivery: i64,
    pub status: String,
    pub sequence: i64,
    pub updated_at: i64,
}

impl QueueEntry {
    /// What assembly holds for the order in `event`.
    pub fn from_event(event: &OrderEvent) -> QueueEntry {
        let order = &event.order;
        QueueEntry {
            order_id: order.order_id.clone(),
            model: order.model.as_str().to_owned(),
            batteries: i64::from(order.batteries),
            expected_delivery: i64::from(order.expected_delivery),
            status: order.status.as_str().to_owned(),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Whether the order waits to be built.
    pub fn is_queued(&self) -> bool {
        self.status == QUEUED.as_str()
    }
}

impl Table for QueueEntry {
    const TABLE: &'static str = "build_queue";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<QueueEntry> {
        Some(QueueEntry::from_event(event))
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.model).into(), self.batteries.into(), self.expected_delivery.into(), (&self.status).into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Assembly {
    const NAME: &'static str = "assembly";
    const ABOUT: &'static str = "The build queue: paid, non-cancelled orders, earliest expected delivery first.";
    const TABLES: &'static [&'static str] = &["build_queue"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<QueueEntry>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<QueueEntry>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = String::from("Assembly\n  queue length by model:\n");
        let lengths = queue_length_by_model(pool).await?;
        for (model, orders) in &lengths {
            let _ = writeln!(out, "    Model {model:<4} {orders:>8}");
        }
        let total: i64 = lengths.iter().map(|(_, orders)| orders).sum();
        let _ = writeln!(out, "    total      {total:>8}\n  next to build:");
        for entry in queue_head(pool, REPORT_HEAD).await? {
            let _ = writeln!(
                out,
                "    due {}  Model {}  {} batteries  order {}",
                format::day(entry.expected_delivery),
                entry.model,
                entry.batteries,
                entry.order_id
            );
        }
        Ok(out)
    }
}

/// The first `limit` orders to build: earliest expected delivery first, then by order id.
pub async fn queue_head(pool: &AnyPool, limit: i64) -> Result<Vec<QueueEntry>, sqlx::Error> {
    // The status as a literal, not a bound parameter, so that SQLite uses the partial index
    // `build_queue_order` (migration 0002), defined for exactly these rows.
    let sql = format!(
        "SELECT {} FROM build_queue WHERE status = '{}' ORDER BY expected_delivery, order_id LIMIT $1",
        COLUMNS.join(", "),
        QUEUED.as_str()
    );
    sqlx::query_as(&sql).bind(limit).fetch_all(pool).await
}

/// Queued orders per model (`F`, `P`, `H`), models without any left out.
pub async fn queue_length_by_model(pool: &AnyPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT model, COUNT(*) FROM build_queue WHERE status = '{}' GROUP BY model ORDER BY model",
        QUEUED.as_str()
    );
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Every order assembly holds, queued or not, by order id.
pub async fn entries(pool: &AnyPool) -> Result<Vec<QueueEntry>, sqlx::Error> {
    let sql = format!("SELECT {} FROM build_queue ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{cancel, next, pay, placed, DAY_MS, DELIVERY_DAY, PLACED_AT};
    use edison_schemas::{CarModel, EventType};

    #[test]
    fn only_paid_orders_are_queued_and_a_cancellation_dequeues_but_keeps_the_row() {
        let placed = placed();
        let entry = QueueEntry::from_event(&placed);
        assert!(!entry.is_queued());
        assert_eq!(entry.status, "placed");

        let paid = pay(placed, PLACED_AT + DAY_MS);
        let entry = QueueEntry::from_event(&paid);
        assert!(entry.is_queued());
        assert_eq!(
            entry,
            QueueEntry {
                order_id: paid.order.order_id.clone(),
                model: "P".into(),
                batteries: 3,
                expected_delivery: i64::from(DELIVERY_DAY),
                status: "paid".into(),
                sequence: 2,
                updated_at: PLACED_AT + DAY_MS,
            }
        );

        let cancelled = QueueEntry::from_event(&cancel(paid, PLACED_AT + 2 * DAY_MS));
        assert!(!cancelled.is_queued());
        assert_eq!(cancelled.sequence, 3, "the row stays, with the sequence the gate compares");
    }

    #[test]
    fn an_amendment_updates_the_entry() {
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let amended = next(paid, EventType::Amended, PLACED_AT + 3 * DAY_MS, |order| {
            order.model = CarModel::H;
            order.batteries = 4;
            order.expected_delivery += 14;
        });
        let entry = QueueEntry::from_event(&amended);
        assert!(entry.is_queued());
        assert_eq!((entry.model.as_str(), entry.batteries), ("H", 4));
        assert_eq!(entry.expected_delivery, i64::from(DELIVERY_DAY) + 14);
    }
}
