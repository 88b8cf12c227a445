//! Billing: an invoice for each paid order and a credit note when a paid order is cancelled,
//! in integer cents, with invoiced, credited and net revenue by month.
//!
//! The projection is exact after any replay: each order has one row, rewritten from its latest
//! state behind the sequence gate, and every total is a sum over those rows.
//!
//! Erasure: a tombstone deletes the order's invoice and credit note, as the issue asks of every
//! projection, so the totals of past months shrink. Accounting would rather keep the documents
//! with the personal data removed (they carry none here but the order id); that would take an
//! `erased` flag instead of the delete, and is a decision for the business, not this consumer.

use std::collections::BTreeMap;
use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use edison_schemas::{Money, OrderEvent};

use super::format;
use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/billing/migrations");

const COLUMNS: [&str; 9] = [
    "order_id",
    "currency",
    "amount_cents",
    "invoiced_at",
    "invoice_month",
    "credited_at",
    "credit_month",
    "sequence",
    "updated_at",
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Billing;

/// A paid order's invoice and, if it was cancelled after payment, its credit note.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invoice {
    pub order_id: String,
    pub currency: String,
    /// Invoiced, and credited if there is a credit note.
    pub amount_cents: i64,
    /// When the order was paid, ms since the epoch.
    pub invoiced_at: i64,
    /// `YYYY-MM` of `invoiced_at`, UTC.
    pub invoice_month: String,
    /// When the paid order was cancelled; `None` while there is no credit note.
    pub credited_at: Option<i64>,
    /// `YYYY-MM` of `credited_at`, UTC.
    pub credit_month: Option<String>,
    pub sequence: i64,
    pub updated_at: i64,
}

impl Invoice {
    /// The invoice of the order in `event`, with its credit note if a paid order was cancelled;
    /// `None` for an order that was never paid (a cancellation before payment bills nothing).
    pub fn from_event(event: &OrderEvent) -> Option<Invoice> {
        let order = &event.order;
        let invoiced_at = order.paid_at?;
        let credited_at = order.cancelled_at;
        Some(Invoice {
            order_id: order.order_id.clone(),
            currency: order.price.currency.clone(),
            amount_cents: order.price.amount_cents,
            invoiced_at,
            invoice_month: format::utc_month(invoiced_at),
            credited_at,
            credit_month: credited_at.map(format::utc_month),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        })
    }

    /// What the order adds to revenue: its amount, or nothing once credited.
    pub fn net_cents(&self) -> i64 {
        if self.credited_at.is_some() {
            0
        } else {
            self.amount_cents
        }
    }
}

/// Revenue of one month in one currency: invoices dated in the month, minus credit notes dated
/// in the month (an order paid in March and cancelled in April counts in both).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MonthRevenue {
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub currency: String,
    pub invoiced_cents: i64,
    pub credited_cents: i64,
}

impl MonthRevenue {
    pub fn net_cents(&self) -> i64 {
        self.invoiced_cents - self.credited_cents
    }
}

impl Table for Invoice {
    const TABLE: &'static str = "invoices";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<Invoice> {
        Invoice::from_event(event)
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.currency).into(), self.amount_cents.into(), self.invoiced_at.into(), (&self.invoice_month).into(), self.credited_at.into(), (&self.credit_month).into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Billing {
    const NAME: &'static str = "billing";
    const ABOUT: &'static str = "Invoices on payment, credit notes on cancellation, revenue by month, to the cent.";
    const TABLES: &'static [&'static str] = &["invoices"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<Invoice>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<Invoice>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = format!("Billing\n  {:<8} {:>22} {:>22} {:>22}\n", "month", "invoiced", "credited", "net");
        let mut line = |label: &str, currency: &str, invoiced: i64, credited: i64| {
            let [invoiced, credited, net] = [invoiced, credited, invoiced - credited].map(|c| Money::format(c, currency));
            let _ = writeln!(out, "  {label:<8} {invoiced:>22} {credited:>22} {net:>22}");
        };
        let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for month in revenue_by_month(pool).await? {
            line(&month.month, &month.currency, month.invoiced_cents, month.credited_cents);
            let total = totals.entry(month.currency).or_default();
            total.0 += month.invoiced_cents;
            total.1 += month.credited_cents;
        }
        for (currency, (invoiced, credited)) in &totals {
            line("total", currency, *invoiced, *credited);
        }
        Ok(out)
    }
}

/// Invoiced, credited (and so net) revenue per month and currency, by month.
pub async fn revenue_by_month(pool: &AnyPool) -> Result<Vec<MonthRevenue>, sqlx::Error> {
    sqlx::query_as(
        "SELECT month, currency, \
                CAST(SUM(invoiced) AS BIGINT) AS invoiced_cents, \
                CAST(SUM(credited) AS BIGINT) AS credited_cents \
         FROM (SELECT invoice_month AS month, currency, amount_cents AS invoiced, 0 AS credited \
               FROM invoices \
               UNION ALL \
               SELECT credit_month, currency, 0, amount_cents \
               FROM invoices WHERE credit_month IS NOT NULL) AS documents \
         GROUP BY month, currency ORDER BY month, currency",
    )
    .fetch_all(pool)
    .await
}

/// Every invoice, credited or not, by order id.
pub async fn invoices(pool: &AnyPool) -> Result<Vec<Invoice>, sqlx::Error> {
    let sql = format!("SELECT {} FROM invoices ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{cancel, pay, placed, DAY_MS, PLACED_AT};

    #[test]
    fn an_order_not_yet_paid_has_no_invoice_and_a_cancellation_before_payment_bills_nothing() {
        assert_eq!(Invoice::from_event(&placed()), None);
        assert_eq!(Invoice::from_event(&cancel(placed(), PLACED_AT + DAY_MS)), None);
    }

    #[test]
    fn payment_invoices_the_price_in_the_month_it_was_paid() {
        // Placed 2025-11-24, paid 40 days later: 2026-01-03.
        let paid = pay(placed(), PLACED_AT + 40 * DAY_MS);
        let invoice = Invoice::from_event(&paid).unwrap();
        assert_eq!(
            invoice,
            Invoice {
                order_id: paid.order.order_id.clone(),
                currency: "EUR".into(),
                amount_cents: 6_990_000,
                invoiced_at: PLACED_AT + 40 * DAY_MS,
                invoice_month: "2026-01".into(),
                credited_at: None,
                credit_month: None,
                sequence: 2,
                updated_at: PLACED_AT + 40 * DAY_MS,
            }
        );
        assert_eq!(invoice.net_cents(), 6_990_000);
    }

    #[test]
    fn a_cancellation_after_payment_credits_the_same_amount_in_its_own_month() {
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let cancelled = cancel(paid, PLACED_AT + 10 * DAY_MS);
        let invoice = Invoice::from_event(&cancelled).unwrap();
        assert_eq!(invoice.invoice_month, "2025-11");
        assert_eq!(invoice.credited_at, Some(PLACED_AT + 10 * DAY_MS));
        assert_eq!(invoice.credit_month.as_deref(), Some("2025-12"));
        assert_eq!(invoice.amount_cents, 6_990_000);
        assert_eq!(invoice.net_cents(), 0);
        assert_eq!(invoice.sequence, 3);
    }

    #[test]
    fn net_revenue_is_invoiced_minus_credited() {
        let month = MonthRevenue { month: "2026-01".into(), currency: "EUR".into(), invoiced_cents: 10_000, credited_cents: 12_500 };
        assert_eq!(month.net_cents(), -2_500);
    }
}
