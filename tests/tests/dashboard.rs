//! Dashboard against the real broker: sales statistics by model and by day follow the log.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::dashboard::{self, Sale, SalesStats};
use edison_consumers::departments::{format, Dashboard};
use edison_consumers::runtime::Projection;
use edison_schemas::OrderEvent;
use support::*;

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
        |event| Some(Sale::from_event(event)),
    )
    .await;
    let pool = &run.db.pool;
    let events = || run.latest.values();

    let by_model = statistics(events(), |e| e.order.model.as_str().to_owned());
    assert_eq!(dashboard::sales_by_model(pool).await.unwrap(), by_model);
    let by_day = statistics(events(), |e| format::utc_day(e.order.placed_at));
    assert_eq!(dashboard::sales_by_day(pool).await.unwrap(), by_day);
    assert!(by_day.len() > 10, "the orders were placed over days: {by_day:?}");
    let totals = statistics(events(), |_| "all".to_owned());
    assert_eq!(dashboard::sales_totals(pool).await.unwrap(), totals);

    let all = &totals[0];
    assert_eq!(all.orders, run.latest.len() as i64);
    assert!(0 < all.cancelled_after_payment && all.cancelled_after_payment < all.cancelled);
    assert!(0 < all.paid && all.paid < all.orders);
    let report = Dashboard.report(pool).await.unwrap();
    let conversion = all.conversion_permille().unwrap();
    let line = report.lines().find(|line| line.trim_start().starts_with("all ")).unwrap_or_default();
    assert!(line.contains(&format!("{}.{}%", conversion / 10, conversion % 10)), "{report}");
    assert!(line.ends_with(&edison_schemas::Money::format(all.revenue_cents, "EUR")), "{report}");
}
