//! Dashboard: sales statistics. Orders and revenue by model and by the UTC day they were placed,
//! conversion from placed to paid, and cancellations. One row per order, from its latest state;
//! the statistics are GROUP BY queries over those rows, public for other readers (a web page).

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use edison_schemas::{Money, OrderEvent};

use super::format;
use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/dashboard/migrations");

/// How many of the latest days the report lists.
pub const REPORT_DAYS: usize = 7;

const COLUMNS: [&str; 10] = [
    "order_id",
    "model",
    "currency",
    "amount_cents",
    "placed_day",
    "status",
    "paid_at",
    "cancelled_at",
    "sequence",
    "updated_at",
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Dashboard;

/// One order as the statistics count it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Sale {
    pub order_id: String,
    pub model: String,
    pub currency: String,
    pub amount_cents: i64,
    /// `YYYY-MM-DD` of `placed_at`, UTC.
    pub placed_day: String,
    pub status: String,
    /// Stays set after a cancellation: the order converted.
    pub paid_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub sequence: i64,
    pub updated_at: i64,
}

impl Sale {
    /// What the dashboard holds for the order in `event`.
    pub fn from_event(event: &OrderEvent) -> Sale {
        let order = &event.order;
        Sale {
            order_id: order.order_id.clone(),
            model: order.model.as_str().to_owned(),
            currency: order.price.currency.clone(),
            amount_cents: order.price.amount_cents,
            placed_day: format::utc_day(order.placed_at),
            status: order.status.as_str().to_owned(),
            paid_at: order.paid_at,
            cancelled_at: order.cancelled_at,
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Paid and not cancelled: what counts as revenue.
    pub fn revenue_cents(&self) -> i64 {
        if self.paid_at.is_some() && self.cancelled_at.is_none() {
            self.amount_cents
        } else {
            0
        }
    }
}

/// Sales statistics of one group of orders (a model, a day, or all) in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SalesStats {
    /// The group: a model (`F`), a placed day (`2026-03-30`), or `all`.
    pub label: String,
    pub currency: String,
    /// Orders placed.
    pub orders: i64,
    /// Orders paid, including those cancelled afterwards.
    pub paid: i64,
    /// Orders cancelled, before or after payment.
    pub cancelled: i64,
    /// Orders cancelled after payment: credited back.
    pub cancelled_after_payment: i64,
    /// The prices of the orders paid and not cancelled.
    pub revenue_cents: i64,
}

impl SalesStats {
    /// Conversion from placed to paid, in tenths of a percent rounded half up (`505` is 50.5%);
    /// `None` without orders.
    pub fn conversion_permille(&self) -> Option<i64> {
        (self.orders > 0).then(|| (self.paid * 1000 + self.orders / 2) / self.orders)
    }

    /// The conversion as the report prints it: `50.5%`, or `-` without orders.
    pub fn conversion_text(&self) -> String {
        self.conversion_permille().map_or_else(|| "-".to_owned(), |p| format!("{}.{}%", p / 10, p % 10))
    }

    /// The revenue as the report prints it: `1,234.50 EUR`.
    pub fn revenue_text(&self) -> String {
        Money::format(self.revenue_cents, &self.currency)
    }

    /// Orders cancelled before they were paid.
    pub fn cancelled_before_payment(&self) -> i64 {
        self.cancelled - self.cancelled_after_payment
    }
}

impl Table for Sale {
    const TABLE: &'static str = "sales";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<Sale> {
        Some(Sale::from_event(event))
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.model).into(), (&self.currency).into(), self.amount_cents.into(), (&self.placed_day).into(), (&self.status).into(), self.paid_at.into(), self.cancelled_at.into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Dashboard {
    const NAME: &'static str = "dashboard";
    const ABOUT: &'static str = "Sales statistics: orders and revenue by model and day, conversion, cancellations.";
    const TABLES: &'static [&'static str] = &["sales"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<Sale>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<Sale>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = String::from("Dashboard\n");
        let header = ["orders", "paid", "conversion", "cancelled", "after payment", "revenue"];
        let _ = writeln!(
            out,
            "  {:<12} {:>8} {:>8} {:>10} {:>9} {:>13} {:>20}",
            "", header[0], header[1], header[2], header[3], header[4], header[5]
        );
        let by_day = sales_by_day(pool).await?;
        let latest_days = &by_day[by_day.len().saturating_sub(REPORT_DAYS)..];
        let sections = [
            ("by model", sales_by_model(pool).await?),
            ("by day placed (latest, UTC)", latest_days.to_vec()),
            ("overall", sales_totals(pool).await?),
        ];
        for (title, rows) in sections {
            let _ = writeln!(out, "  {title}");
            for stats in rows {
                let _ = writeln!(
                    out,
                    "    {:<10} {:>8} {:>8} {:>10} {:>9} {:>13} {:>20}",
                    stats.label,
                    stats.orders,
                    stats.paid,
                    stats.conversion_text(),
                    stats.cancelled,
                    stats.cancelled_after_payment,
                    stats.revenue_text()
                );
            }
        }
        Ok(out)
    }
}

/// Statistics per model (`F`, `P`, `H`) and currency, by model.
pub async fn sales_by_model(pool: &AnyPool) -> Result<Vec<SalesStats>, sqlx::Error> {
    grouped(pool, "model").await
}

/// Statistics per UTC day placed (`2026-03-30`) and currency, oldest day first.
pub async fn sales_by_day(pool: &AnyPool) -> Result<Vec<SalesStats>, sqlx::Error> {
    grouped(pool, "placed_day").await
}

/// Statistics of all orders, one row per currency, labelled `all`.
pub async fn sales_totals(pool: &AnyPool) -> Result<Vec<SalesStats>, sqlx::Error> {
    grouped(pool, "CAST('all' AS TEXT)").await
}

/// The statistics grouped by `label` (a trusted SQL expression) and currency.
async fn grouped(pool: &AnyPool, label: &str) -> Result<Vec<SalesStats>, sqlx::Error> {
    let count = |condition: &str| format!("CAST(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS BIGINT)");
    let sql = format!(
        "SELECT {label} AS label, currency, COUNT(*) AS orders, \
                {} AS paid, {} AS cancelled, {} AS cancelled_after_payment, \
                CAST(SUM(CASE WHEN paid_at IS NOT NULL AND cancelled_at IS NULL THEN amount_cents ELSE 0 END) AS BIGINT) \
                    AS revenue_cents \
         FROM sales GROUP BY 1, 2 ORDER BY 1, 2",
        count("paid_at IS NOT NULL"),
        count("cancelled_at IS NOT NULL"),
        count("paid_at IS NOT NULL AND cancelled_at IS NOT NULL"),
    );
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Every order the dashboard holds, by order id.
pub async fn sales(pool: &AnyPool) -> Result<Vec<Sale>, sqlx::Error> {
    let sql = format!("SELECT {} FROM sales ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{cancel, pay, placed, DAY_MS, PLACED_AT};

    #[test]
    fn a_sale_keeps_the_day_placed_and_whether_it_was_paid_and_cancelled() {
        let placed = placed();
        let sale = Sale::from_event(&placed);
        assert_eq!(
            sale,
            Sale {
                order_id: placed.order.order_id.clone(),
                model: "P".into(),
                currency: "EUR".into(),
                amount_cents: 6_990_000,
                placed_day: "2025-11-24".into(),
                status: "placed".into(),
                paid_at: None,
                cancelled_at: None,
                sequence: 1,
                updated_at: PLACED_AT,
            }
        );
        assert_eq!(sale.revenue_cents(), 0, "not paid yet");

        let paid = pay(placed, PLACED_AT + 8 * DAY_MS);
        let sale = Sale::from_event(&paid);
        assert_eq!(sale.placed_day, "2025-11-24", "the day placed, not the day paid");
        assert_eq!(sale.revenue_cents(), 6_990_000);

        let sale = Sale::from_event(&cancel(paid, PLACED_AT + 9 * DAY_MS));
        assert_eq!(sale.paid_at, Some(PLACED_AT + 8 * DAY_MS), "paid, then cancelled");
        assert_eq!(sale.cancelled_at, Some(PLACED_AT + 9 * DAY_MS));
        assert_eq!(sale.revenue_cents(), 0, "credited back");
    }

    #[test]
    fn conversion_is_paid_over_placed_in_rounded_tenths_of_a_percent() {
        let stats = |orders, paid| SalesStats { orders, paid, ..SalesStats::default() };
        assert_eq!(stats(0, 0).conversion_permille(), None);
        assert_eq!(stats(4, 2).conversion_permille(), Some(500));
        assert_eq!(stats(3, 2).conversion_permille(), Some(667));
        assert_eq!(stats(3, 1).conversion_permille(), Some(333));
        assert_eq!(stats(2000, 1).conversion_permille(), Some(1), "0.05% rounds half up");
        assert_eq!((stats(0, 0).conversion_text(), stats(3, 2).conversion_text()), ("-".to_owned(), "66.7%".to_owned()));
    }
}
