//! Warehouse: battery reservations per order. Cancelled orders release theirs; erased orders
//! disappear.

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};

use edison_schemas::{OrderEvent, OrderStatus};

use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/warehouse/migrations");

/// The columns of `reservations`, in [`Reservation`]'s order.
pub const COLUMNS: [&str; 7] = ["order_id", "model", "status", "batteries", "batteries_reserved", "sequence", "updated_at"];

#[derive(Debug, Clone, Copy, Default)]
pub struct Warehouse;

/// One order's reservation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reservation {
    pub order_id: String,
    pub model: String,
    pub status: String,
    pub batteries: i64,
    pub batteries_reserved: i64,
    pub sequence: i64,
    pub updated_at: i64,
}

impl Reservation {
    /// What the warehouse holds for the order in `event`.
    pub fn from_event(event: &OrderEvent) -> Reservation {
        let order = &event.order;
        let released = order.status == OrderStatus::Cancelled;
        Reservation {
            order_id: order.order_id.clone(),
            model: order.model.as_str().to_owned(),
            status: order.status.as_str().to_owned(),
            batteries: i64::from(order.batteries),
            batteries_reserved: if released { 0 } else { i64::from(order.batteries) },
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }
}

impl Table for Reservation {
    const TABLE: &'static str = "reservations";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<Reservation> {
        Some(Reservation::from_event(event))
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.model).into(), (&self.status).into(), self.batteries.into(), self.batteries_reserved.into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Warehouse {
    const NAME: &'static str = "warehouse";
    const ABOUT: &'static str = "Battery reservations per order; cancelled orders release theirs.";
    const TABLES: &'static [&'static str] = &["reservations"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<Reservation>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<Reservation>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = String::from("Warehouse\n  orders by status:\n");
        for (status, orders) in orders_by_status(pool).await? {
            let _ = writeln!(out, "    {status:<10} {orders:>8}");
        }
        out.push_str("  batteries to reserve by model:\n");
        for totals in reserved_by_model(pool).await? {
            let _ = writeln!(
                out,
                "    Model {:<4} {:>8} batteries for {:>6} open reservations",
                totals.model, totals.batteries_reserved, totals.open_reservations
            );
        }
        Ok(out)
    }
}

/// Reserved batteries for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTotals {
    pub model: String,
    pub batteries_reserved: i64,
    pub open_reservations: i64,
}

pub async fn orders_by_status(pool: &AnyPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM reservations GROUP BY status ORDER BY status")
        .fetch_all(pool)
        .await
}

pub async fn reserved_by_model(pool: &AnyPool) -> Result<Vec<ModelTotals>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT model, CAST(SUM(batteries_reserved) AS BIGINT) AS reserved, \
                CAST(SUM(CASE WHEN batteries_reserved > 0 THEN 1 ELSE 0 END) AS BIGINT) AS open \
         FROM reservations GROUP BY model ORDER BY model",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ModelTotals {
                model: row.try_get("model")?,
                batteries_reserved: row.try_get("reserved")?,
                open_reservations: row.try_get("open")?,
            })
        })
        .collect()
}

/// Every reservation, by order id.
pub async fn reservations(pool: &AnyPool) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = format!("SELECT {} FROM reservations ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    //! The warehouse's own rules, case by case, through `apply` into a real (in-memory SQLite)
    //! database: a placed order reserves its batteries, a cancellation releases them, an older
    //! event never overwrites a newer one, and an erased order disappears.

    use super::*;
    use crate::departments::fixtures::{apply_batch, cancel, memory_database, next, pay, placed, DAY_MS, PLACED_AT};
    use edison_schemas::{CarModel, EventType};


    async fn apply(pool: &AnyPool, changes: Vec<Change>) {
        apply_batch(&Warehouse, pool, &changes).await
    }

    /// Applies each event as a batch of its own, so the database's sequence gate decides, not
    /// the runtime's collapse of a batch.
    async fn apply_each(pool: &AnyPool, events: &[OrderEvent]) {
        for event in events {
            apply(pool, vec![Change::Upsert(event.clone())]).await;
        }
    }

    fn erase(order_id: &str) -> Change {
        Change::Erase { order_id: order_id.to_owned() }
    }

    /// The fixture's order (Model P, 3 batteries) as the warehouse should hold it.
    fn held(status: &str, reserved: i64, sequence: i64, updated_at: i64) -> Reservation {
        Reservation {
            order_id: "0196a000-0000-7000-8000-00000000beef".into(),
            model: "P".into(),
            status: status.into(),
            batteries: 3,
            batteries_reserved: reserved,
            sequence,
            updated_at,
        }
    }

    /// Another order: Model H with 4 batteries.
    fn other_order() -> OrderEvent {
        let mut event = placed();
        event.order.order_id = "0196a000-0000-7000-8000-00000000cafe".into();
        event.order.model = CarModel::H;
        event.order.batteries = 4;
        event
    }

    fn totals(model: &str, batteries_reserved: i64, open_reservations: i64) -> ModelTotals {
        ModelTotals { model: model.into(), batteries_reserved, open_reservations }
    }

    #[tokio::test]
    async fn a_placed_order_reserves_all_its_batteries_and_payment_keeps_them() {
        let pool = memory_database(&MIGRATOR).await;
        apply_each(&pool, &[placed()]).await;
        assert_eq!(reservations(&pool).await.unwrap(), [held("placed", 3, 1, PLACED_AT)]);
        assert_eq!(reserved_by_model(&pool).await.unwrap(), [totals("P", 3, 1)]);

        apply_each(&pool, &[pay(placed(), PLACED_AT + DAY_MS)]).await;
        assert_eq!(reservations(&pool).await.unwrap(), [held("paid", 3, 2, PLACED_AT + DAY_MS)]);
    }

    #[tokio::test]
    async fn an_amendment_reserves_what_the_amended_car_needs() {
        let pool = memory_database(&MIGRATOR).await;
        let amended = next(placed(), EventType::Amended, PLACED_AT + DAY_MS, |order| {
            order.model = CarModel::H;
            order.batteries = 4;
        });
        apply_each(&pool, &[placed(), amended]).await;
        let want = Reservation { model: "H".into(), batteries: 4, ..held("placed", 4, 2, PLACED_AT + DAY_MS) };
        assert_eq!(reservations(&pool).await.unwrap(), [want]);
        assert_eq!(reserved_by_model(&pool).await.unwrap(), [totals("H", 4, 1)], "nothing left reserved for a Model P");
    }

    #[tokio::test]
    async fn a_cancelled_order_releases_its_batteries() {
        let pool = memory_database(&MIGRATOR).await;
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let cancelled = cancel(paid.clone(), PLACED_AT + 2 * DAY_MS);
        apply_each(&pool, &[placed(), paid, cancelled]).await;
        assert_eq!(reservations(&pool).await.unwrap(), [held("cancelled", 0, 3, PLACED_AT + 2 * DAY_MS)]);
        assert_eq!(reserved_by_model(&pool).await.unwrap(), [totals("P", 0, 0)], "no open reservation");
        assert_eq!(orders_by_status(&pool).await.unwrap(), [("cancelled".to_owned(), 1)]);

        let pool = memory_database(&MIGRATOR).await;
        apply_each(&pool, &[placed(), cancel(placed(), PLACED_AT + DAY_MS)]).await;
        assert_eq!(
            reservations(&pool).await.unwrap(),
            [held("cancelled", 0, 2, PLACED_AT + DAY_MS)],
            "cancelled before payment: released too"
        );
    }

    #[tokio::test]
    async fn an_older_or_equal_sequence_never_overwrites_a_newer_one() {
        let pool = memory_database(&MIGRATOR).await;
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let cancelled = cancel(paid.clone(), PLACED_AT + 2 * DAY_MS);
        let newest = [held("cancelled", 0, 3, PLACED_AT + 2 * DAY_MS)];
        apply_each(&pool, std::slice::from_ref(&cancelled)).await;
        // A relay re-sending after a crash: the older events arrive after the newest one.
        for older in [paid, placed()] {
            apply_each(&pool, std::slice::from_ref(&older)).await;
            assert_eq!(reservations(&pool).await.unwrap(), newest, "sequence {} came late", older.sequence);
        }
        // The same sequence again, claiming something else: not newer, so ignored as well.
        let mut replayed = cancelled;
        replayed.order.status = edison_schemas::OrderStatus::Paid;
        replayed.order.batteries = 9;
        apply_each(&pool, &[replayed]).await;
        assert_eq!(reservations(&pool).await.unwrap(), newest, "an equal sequence is not newer");
    }

    #[tokio::test]
    async fn an_erased_order_disappears_and_the_others_stay() {
        let pool = memory_database(&MIGRATOR).await;
        apply(&pool, vec![Change::Upsert(placed()), Change::Upsert(other_order())]).await;
        assert_eq!(reservations(&pool).await.unwrap().len(), 2);

        apply(&pool, vec![erase(&placed().order.order_id)]).await;
        let left = reservations(&pool).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].order_id.as_str(), left[0].batteries_reserved), (other_order().order.order_id.as_str(), 4));
        assert_eq!(reserved_by_model(&pool).await.unwrap(), [totals("H", 4, 1)], "the erased order's batteries are not counted");

        apply(&pool, vec![erase("0196a000-0000-7000-8000-000000000000")]).await;
        assert_eq!(reservations(&pool).await.unwrap(), left, "erasing an unknown order changes nothing");
    }
}
