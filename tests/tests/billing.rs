//! Billing against the real broker: invoices, credit notes and revenue by month follow the log,
//! to the cent.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::billing::{self, Invoice, MonthRevenue};
use edison_consumers::departments::{format, Billing};
use edison_consumers::runtime::Projection;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_invoices_credit_notes_and_monthly_revenue_are_exact() {
    invoices_credit_notes_and_monthly_revenue_are_exact(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_invoices_credit_notes_and_monthly_revenue_are_exact() {
    invoices_credit_notes_and_monthly_revenue_are_exact(Backend::Postgres).await;
}

async fn invoices_credit_notes_and_monthly_revenue_are_exact(backend: Backend) {
    let run = exercise(&Billing, backend, 300, |db| async move { billing::invoices(&db.pool).await.unwrap() }, Invoice::from_event).await;
    assert!(run.rows.iter().any(|invoice| invoice.credited_at.is_some()), "some paid orders were credited");

    // Invoiced in the month paid, credited in the month cancelled, from the events read back.
    let mut months: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for order in run.latest.values().map(|event| &event.order) {
        let Some(paid_at) = order.paid_at else { continue };
        let currency = &order.price.currency;
        months.entry((format::utc_month(paid_at), currency.clone())).or_default().0 += order.price.amount_cents;
        if let Some(cancelled_at) = order.cancelled_at {
            months.entry((format::utc_month(cancelled_at), currency.clone())).or_default().1 += order.price.amount_cents;
        }
    }
    let want: Vec<MonthRevenue> = months
        .into_iter()
        .map(|((month, currency), (invoiced_cents, credited_cents))| MonthRevenue { month, currency, invoiced_cents, credited_cents })
        .collect();
    assert_eq!(billing::revenue_by_month(&run.db.pool).await.unwrap(), want);
    assert!(want.len() >= 3, "the history spans months: {want:?}");
    assert!(
        run.rows.iter().any(|invoice| invoice.credit_month.as_ref().is_some_and(|month| *month != invoice.invoice_month)),
        "some credit notes fall in a later month than their invoice"
    );

    let net: i64 = want.iter().map(MonthRevenue::net_cents).sum();
    let report = Billing.report(&run.db.pool).await.unwrap();
    let total = report.lines().find(|line| line.trim_start().starts_with("total")).unwrap_or_default();
    assert!(total.ends_with(&edison_schemas::Money::format(net, "EUR")), "{report}");
}
