//! Billing against the real broker: invoices, credit notes and revenue by month follow the log,
//! to the cent. Its rules, restated in `support::rules`: a paid order has an invoice for its
//! price in the UTC month it was paid, and if it is cancelled later a credit note for the same
//! amount in the month it was cancelled; an order never paid bills nothing.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::billing::{self, MonthRevenue};
use edison_consumers::departments::Billing;
use edison_consumers::runtime::Projection;
use support::*;

#[test]
fn the_tests_months_are_utc() {
    let march_30_2026 = 1_774_828_800_000; // 2026-03-30T00:00:00Z
    assert_eq!(utc_month(march_30_2026), "2026-03");
    assert_eq!(utc_month(march_30_2026 + 2 * 86_400_000), "2026-04");
    assert_eq!(utc_month(1_767_225_599_999), "2025-12", "the last millisecond of 2025");
    assert_eq!(utc_month(1_767_225_600_000), "2026-01");
    assert_eq!(utc_month(-1), "1969-12");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_invoices_credit_notes_and_monthly_revenue_are_exact() {
    invoices_credit_notes_and_monthly_revenue_are_exact(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_invoices_credit_notes_and_monthly_revenue_are_exact() {
    invoices_credit_notes_and_monthly_revenue_are_exact(Backend::Postgres).await;
}

async fn invoices_credit_notes_and_monthly_revenue_are_exact(backend: Backend) {
    let run = exercise(&Billing, backend, 300, |db| async move { billing::invoices(&db.pool).await.unwrap() }, rules::invoice).await;
    assert!(run.rows.iter().any(|invoice| invoice.credited_at.is_some()), "some paid orders were credited");
    assert!(run.rows.len() < run.latest.len(), "orders not paid have no invoice");

    // Invoiced in the month paid, credited in the month cancelled, from the events read back.
    let mut months: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for order in run.latest.values().map(|event| &event.order) {
        let Some(paid_at) = order.paid_at else { continue };
        let currency = &order.price.currency;
        months.entry((utc_month(paid_at), currency.clone())).or_default().0 += order.price.amount_cents;
        if let Some(cancelled_at) = order.cancelled_at {
            months.entry((utc_month(cancelled_at), currency.clone())).or_default().1 += order.price.amount_cents;
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

    // Net revenue: what was invoiced minus what was credited.
    let net: i64 = want.iter().map(|month| month.invoiced_cents - month.credited_cents).sum();
    let report = Billing.report(&run.db.pool).await.unwrap();
    let total = report.lines().find(|line| line.trim_start().starts_with("total")).unwrap_or_default();
    assert!(total.ends_with(&edison_schemas::Money::format(net, "EUR")), "{report}");
}
