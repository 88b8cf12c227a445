//! Warehouse: battery reservations per order. Cancelled orders release theirs; erased orders
//! disappear.

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};

use edison_schemas::{OrderEvent, OrderStatus};

use crate::runtime::{sql, Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/warehouse/migrations");

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

impl Projection for Warehouse {
    const NAME: &'static str = "warehouse";
    const TABLES: &'static [&'static str] = &["reservations"];

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        let (events, erased) = sql::split(changes);
        let rows: Vec<Reservation> = events.into_iter().map(Reservation::from_event).collect();
        let columns = ["order_id", "model", "status", "batteries", "batteries_reserved", "sequence", "updated_at"];
        sql::upsert(conn, "reservations", &columns, &rows, |query, row| {
            query
                .bind(&row.order_id)
                .bind(&row.model)
                .bind(&row.status)
                .bind(row.batteries)
                .bind(row.batteries_reserved)
                .bind(row.sequence)
                .bind(row.updated_at)
        })
        .await?;
        sql::delete_orders(conn, "reservations", &erased).await
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
    sqlx::query_as(
        "SELECT order_id, model, status, batteries, batteries_reserved, sequence, updated_at \
         FROM reservations ORDER BY order_id",
    )
    .fetch_all(pool)
    .await
}
