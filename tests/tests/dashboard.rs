//! Dashboard against the real broker: sales statistics by model and by day follow the log. Its
//! rules, restated in `support::rules` and [`statistics`]: every order is one sale, grouped by
//! model and by the UTC day it was placed; it counts as paid once paid (even if cancelled
//! later), as cancelled once cancelled, and as revenue while paid and not cancelled.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::dashboard::{self, SalesStats};
use edison_consumers::departments::Dashboard;
use edison_consumers::runtime::Projection;
use edison_schemas::OrderEvent;
use support::*;

#[test]
fn the_tests_days_are_utc() {
    let monday = 1_774_828_800_000; // 2026-03-30T00:00:00Z
    assert_eq!(utc_day(monday), "2026-03-30");
    assert_eq!(utc_day(monday - 1), "2026-03-29", "the last millisecond of the day before");
    assert_eq!(utc_day(0), "1970-01-01");
}

/// Conversion from placed to paid in tenths of a percent, rounded half up: `paid / orders * 1000
/// + 1/2`, floored.
fn conversion_permille(stats: &SalesStats) -> i64 {
    (2 * 1000 * stats.paid + stats.orders) / (2 * stats.orders)
}

#[test]
fn conversion_rounds_half_up() {
    let stats = |orders, paid| SalesStats { orders, paid, ..SalesStats::default() };
    assert_eq!(conversion_permille(&stats(3, 2)), 667);
    assert_eq!(conversion_permille(&stats(3, 1)), 333);
    assert_eq!(conversion_permille(&stats(2000, 1)), 1, "0.05% rounds up to 0.1%");
    assert_eq!(conversion_permille(&stats(2000, 3)), 2, "0.15% rounds up to 0.2%");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_sales_statistics_by_model_and_day_follow_the_log() {
    sales_statistics_by_model_and_day_follow_the_log(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_sales_statistics_by_model_and_day_follow_the_log() {
    sales_statistics_by_model_and_day_follow_the_log(Backend::Postgres).await;
}

/// The statistics of `events` per `label` and currency, counted here from the events.
fn statistics<'a>(events: impl Iterator<Item = &'a OrderEvent>, label: impl Fn(&OrderEvent) -> String) -> Vec<SalesStats> {
    let mut groups: BTreeMap<(String, String), SalesStats> = BTreeMap::new();
    for event in events {
        let order = &event.order;
        let key = (label(event), order.price.currency.clone());
        let stats = groups
            .entry(key.clone())
            .or_insert_with(|| SalesStats { label: key.0, currency: key.1, ..SalesStats::default() });
        let (paid, cancelled) = (order.paid_at.is_some(), order.cancelled_at.is_some());
        stats.orders += 1;
        stats.paid += i64::from(paid);
        stats.cancelled += i64::from(cancelled);
        stats.cancelled_after_payment += i64::from(paid && cancelled);
        if paid && !cancelled {
            stats.revenue_cents += order.price.amount_cents;
        }
    }
    groups.into_values().collect()
}

async fn sales_statistics_by_model_and_day_follow_the_log(backend: Backend) {
    let run = exercise(
        &Dashboard,
        backend,
        300,
        |db| async move { dashboard::sales(&db.pool).await.unwrap() },
        |event| Some(rules::sale(event)),
    )
    .await;
    let pool = &run.db.pool;
    let events = || run.latest.values();

    let by_model = statistics(events(), |e| rules::model(e.order.model).to_owned());
    assert_eq!(dashboard::sales_by_model(pool).await.unwrap(), by_model);
    let by_day = statistics(events(), |e| utc_day(e.order.placed_at));
    assert_eq!(dashboard::sales_by_day(pool).await.unwrap(), by_day);
    assert!(by_day.len() > 10, "the orders were placed over days: {by_day:?}");
    let totals = statistics(events(), |_| "all".to_owned());
    assert_eq!(dashboard::sales_totals(pool).await.unwrap(), totals);

    let all = &totals[0];
    assert_eq!(all.orders, run.latest.len() as i64);
    assert!(0 < all.cancelled_after_payment && all.cancelled_after_payment < all.cancelled);
    assert!(0 < all.paid && all.paid < all.orders);
    let report = Dashboard.report(pool).await.unwrap();
    let conversion = conversion_permille(all);
    let line = report.lines().find(|line| line.trim_start().starts_with("all ")).unwrap_or_default();
    assert!(line.contains(&format!("{}.{}%", conversion / 10, conversion % 10)), "{report}");
    assert!(line.ends_with(&edison_schemas::Money::format(all.revenue_cents, "EUR")), "{report}");
}
