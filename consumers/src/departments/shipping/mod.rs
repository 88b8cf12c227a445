//! Shipping: a shipment for each paid, non-cancelled order, to the latest shipping address and
//! customer name, counted by the ISO week it is due. Amendments update the shipment; a
//! cancellation means it is no longer due. Erased orders disappear.

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use edison_schemas::{OrderEvent, OrderStatus};

use super::format;
use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/shipping/migrations");

const COLUMNS: [&str; 9] = [
    "order_id",
    "customer_name",
    "shipping_address",
    "model",
    "expected_delivery",
    "delivery_week",
    "status",
    "sequence",
    "updated_at",
];

/// The status that makes a shipment due: paid, and not cancelled since.
const DUE: OrderStatus = OrderStatus::Paid;

#[derive(Debug, Clone, Copy, Default)]
pub struct Shipping;

/// One order as shipping holds it; due while its status is `paid`. Every order keeps its row,
/// so the sequence gate refuses a stale "paid" that arrives after the cancellation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Shipment {
    pub order_id: String,
    pub customer_name: String,
    pub shipping_address: String,
    pub model: String,
    /// Days since 1970-01-01.
    pub expected_delivery: i64,
    /// ISO week of `expected_delivery`, e.g. `2026-W14`.
    pub delivery_week: String,
    pub status: String,
    pub sequence: i64,
    pub updated_at: i64,
}

impl Shipment {
    /// What shipping holds for the order in `event`.
    pub fn from_event(event: &OrderEvent) -> Shipment {
        let order = &event.order;
        let expected_delivery = i64::from(order.expected_delivery);
        Shipment {
            order_id: order.order_id.clone(),
            customer_name: order.customer.name.clone(),
            shipping_address: order.customer.shipping_address.clone(),
            model: order.model.as_str().to_owned(),
            expected_delivery,
            delivery_week: format::iso_week(expected_delivery),
            status: order.status.as_str().to_owned(),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Whether the order is to be shipped.
    pub fn is_due(&self) -> bool {
        self.status == DUE.as_str()
    }
}

impl Table for Shipment {
    const TABLE: &'static str = "shipments";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<Shipment> {
        Some(Shipment::from_event(event))
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.customer_name).into(), (&self.shipping_address).into(), (&self.model).into(), self.expected_delivery.into(), (&self.delivery_week).into(), (&self.status).into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Shipping {
    const NAME: &'static str = "shipping";
    const ABOUT: &'static str = "A shipment per paid, non-cancelled order, counted by the ISO week it is due.";
    const TABLES: &'static [&'static str] = &["shipments"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<Shipment>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<Shipment>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = String::from("Shipping\n  shipments due by ISO week of expected delivery:\n");
        let weeks = due_by_week(pool).await?;
        for (week, shipments) in &weeks {
            let _ = writeln!(out, "    {week:<10} {shipments:>8}");
        }
        let total: i64 = weeks.iter().map(|(_, shipments)| shipments).sum();
        let _ = writeln!(out, "    {:<10} {total:>8}", "total");
        Ok(out)
    }
}

/// Due shipments per ISO week of expected delivery (`2026-W14`), by week; weeks without any
/// left out.
pub async fn due_by_week(pool: &AnyPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    // The status as a literal, not a bound parameter, so that SQLite uses the partial index
    // `shipments_due` (migration 0002), defined for exactly these rows.
    let sql = format!(
        "SELECT delivery_week, COUNT(*) FROM shipments WHERE status = '{}' GROUP BY delivery_week ORDER BY delivery_week",
        DUE.as_str()
    );
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Every order shipping holds, due or not, by order id.
pub async fn shipments(pool: &AnyPool) -> Result<Vec<Shipment>, sqlx::Error> {
    let sql = format!("SELECT {} FROM shipments ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{cancel, next, pay, placed, DAY_MS, DELIVERY_DAY, PLACED_AT};
    use edison_schemas::EventType;

    #[test]
    fn a_paid_order_is_due_in_the_iso_week_of_its_expected_delivery() {
        assert!(!Shipment::from_event(&placed()).is_due());
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let shipment = Shipment::from_event(&paid);
        assert!(shipment.is_due());
        assert_eq!(
            shipment,
            Shipment {
                order_id: paid.order.order_id.clone(),
                customer_name: "Ada Lovelace".into(),
                shipping_address: "12 Analytical Row, London".into(),
                model: "P".into(),
                expected_delivery: i64::from(DELIVERY_DAY),
                delivery_week: "2026-W14".into(),
                status: "paid".into(),
                sequence: 2,
                updated_at: PLACED_AT + DAY_MS,
            }
        );
    }

    #[test]
    fn an_amendment_moves_the_shipment_and_a_cancellation_means_it_is_not_due() {
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let moved = next(paid, EventType::Amended, PLACED_AT + 2 * DAY_MS, |order| {
            order.customer.name = "Ada King".into();
            order.customer.shipping_address = "1 Ockham Park, Surrey".into();
            order.expected_delivery -= 1; // Sunday 2026-03-29
        });
        let shipment = Shipment::from_event(&moved);
        assert_eq!((shipment.customer_name.as_str(), shipment.shipping_address.as_str()), ("Ada King", "1 Ockham Park, Surrey"));
        assert_eq!(shipment.delivery_week, "2026-W13");
        assert!(shipment.is_due());

        let cancelled = Shipment::from_event(&cancel(moved, PLACED_AT + 3 * DAY_MS));
        assert!(!cancelled.is_due());
        assert_eq!(cancelled.sequence, 4);
    }
}
