//! Shipping against the real broker: shipments to the latest address, due by ISO week. Its
//! rules, restated in `support::rules`: every order keeps a shipment to its latest customer name
//! and address; it is due while paid and not cancelled since, counted by the ISO week of its
//! expected delivery.

mod support;

use std::collections::BTreeMap;

use edison_consumers::departments::shipping;
use edison_consumers::departments::Shipping;
use edison_consumers::runtime::Projection;
use support::*;

#[test]
fn the_tests_weeks_are_iso_weeks() {
    let monday = 20_542; // 2026-03-30
    assert_eq!(iso_week(monday), "2026-W14");
    assert_eq!(iso_week(monday - 1), "2026-W13", "Sunday ends the week");
    assert_eq!(iso_week(monday + 6), "2026-W14");
    assert_eq!(iso_week(20_454), "2026-W01", "2026-01-01 is a Thursday");
    assert_eq!(iso_week(20_819), "2026-W53", "2027-01-01 is a Friday: the last week of 2026");
    assert_eq!(iso_week(20_087), "2025-W01", "2024-12-30 is a Monday in the first week of 2025");
}

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
        |event| Some(rules::shipment(event)),
    )
    .await;
    assert!(
        run.rows.iter().any(|s| rules::due(s) && s.shipping_address.ends_with("Relocation Road") && s.customer_name.ends_with("(moved)")),
        "an amendment moved a due shipment"
    );
    assert!(run.rows.iter().any(|s| s.status == "cancelled"), "cancelled orders keep their row, not due");

    let mut weeks: BTreeMap<String, i64> = BTreeMap::new();
    for shipment in run.latest.values().map(rules::shipment).filter(rules::due) {
        *weeks.entry(shipment.delivery_week).or_default() += 1;
    }
    let weeks: Vec<(String, i64)> = weeks.into_iter().collect();
    assert_eq!(shipping::due_by_week(&run.db.pool).await.unwrap(), weeks);
    assert!(weeks.len() > 20, "the deliveries span weeks");

    let report = Shipping.report(&run.db.pool).await.unwrap();
    let (week, due) = &weeks[0];
    assert!(report.contains(&format!("{week:<10} {due:>8}")), "{report}");
}
