//! Shipping against the real broker: shipments to the latest address, due by ISO week.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::shipping::{self, Shipment};
use edison_consumers::departments::{format, Shipping};
use edison_consumers::runtime::Projection;
use edison_schemas::OrderStatus;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_shipments_go_to_the_latest_address_and_are_due_by_iso_week() {
    shipments_go_to_the_latest_address_and_are_due_by_iso_week(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_shipments_go_to_the_latest_address_and_are_due_by_iso_week() {
    shipments_go_to_the_latest_address_and_are_due_by_iso_week(Backend::Postgres).await;
}

async fn shipments_go_to_the_latest_address_and_are_due_by_iso_week(backend: Backend) {
    let run = exercise(
        &Shipping,
        backend,
        300,
        |db| async move { shipping::shipments(&db.pool).await.unwrap() },
        |event| Some(Shipment::from_event(event)),
    )
    .await;
    assert!(
        run.rows.iter().any(|s| s.is_due() && s.shipping_address.ends_with("Relocation Road") && s.customer_name.ends_with("(moved)")),
        "an amendment moved a due shipment"
    );

    let mut weeks: BTreeMap<String, i64> = BTreeMap::new();
    for order in run.latest.values().map(|event| &event.order).filter(|order| order.status == OrderStatus::Paid) {
        *weeks.entry(format::iso_week(i64::from(order.expected_delivery))).or_default() += 1;
    }
    let weeks: Vec<(String, i64)> = weeks.into_iter().collect();
    assert_eq!(shipping::due_by_week(&run.db.pool).await.unwrap(), weeks);
    assert!(weeks.len() > 20, "the deliveries span weeks");

    let report = Shipping.report(&run.db.pool).await.unwrap();
    let (week, due) = &weeks[0];
    assert!(report.contains(&format!("{week:<10} {due:>8}")), "{report}");
}
