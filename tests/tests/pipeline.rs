//! The whole pipeline: Sales simulates through its outbox, all six departments replay the
//! topic, and each projection equals the one derived here from the events read back.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;

use edison_consumers::departments::mailer::{self, mail, MailStatus, MailerSettings};
use edison_consumers::departments::{assembly, billing, dashboard, shipping, warehouse};
use edison_consumers::departments::{Assembly, Billing, Dashboard, Mailer, Shipping, Warehouse};
use edison_schemas::OrderEvent;
use support::*;

/// `sales simulate --orders N --seed S` into a fresh store and `topic`, through the CLI.
async fn simulate(topic: &str, orders: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/sales.db", dir.path().display());
    let cli = edison_sales::Cli::parse_from([
        "sales", "--bootstrap-servers", &bootstrap(), "--topic", topic, "--database-url", &store,
        "simulate", "--orders", &orders.to_string(), "--seed", &seed.to_string(),
    ]);
    edison_sales::run(cli).await.expect("simulate");
}

/// Rows derived from each order's latest event, in order-id order, as the queries return them.
fn derive<R>(latest: &BTreeMap<String, OrderEvent>, row: impl Fn(&OrderEvent) -> Option<R>) -> Vec<R> {
    latest.values().filter_map(row).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_six_departments_match_the_simulated_log() {
    six_departments_match_the_simulated_log(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_six_departments_match_the_simulated_log() {
    six_departments_match_the_simulated_log(Backend::Postgres).await;
}

async fn six_departments_match_the_simulated_log(backend: Backend) {
    let topic = unique("orders-test-pipeline");
    simulate(&topic, 2000, 1).await;
    let records = read_all(&topic);
    let latest = latest_states(&records);
    assert!(records.iter().any(|r| r.value.is_none()), "the simulation erases some orders");
    assert!(latest.len() < 2000 && latest.len() > 1900, "{} orders left", latest.len());

    let store = Store::new(backend);
    run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    let pool = connect(&Warehouse, &store).await.pool;
    let got = warehouse::reservations(&pool).await.unwrap();
    assert_eq!(got, derive(&latest, |e| Some(warehouse::Reservation::from_event(e))));

    let store = Store::new(backend);
    run_until_caught_up(&Assembly, &topic, "assembly", &store).await;
    let got = assembly::entries(&connect(&Assembly, &store).await.pool).await.unwrap();
    assert_eq!(got, derive(&latest, |e| Some(assembly::QueueEntry::from_event(e))));

    let store = Store::new(backend);
    run_until_caught_up(&Billing, &topic, "billing", &store).await;
    let got = billing::invoices(&connect(&Billing, &store).await.pool).await.unwrap();
    assert_eq!(got, derive(&latest, billing::Invoice::from_event));
    assert!(got.iter().any(|invoice| invoice.credited_at.is_some()), "some paid orders were refunded");

    let store = Store::new(backend);
    run_until_caught_up(&Shipping, &topic, "shipping", &store).await;
    let got = shipping::shipments(&connect(&Shipping, &store).await.pool).await.unwrap();
    assert_eq!(got, derive(&latest, |e| Some(shipping::Shipment::from_event(e))));

    let store = Store::new(backend);
    run_until_caught_up(&Dashboard, &topic, "dashboard", &store).await;
    let got = dashboard::sales(&connect(&Dashboard, &store).await.pool).await.unwrap();
    assert_eq!(got, derive(&latest, |e| Some(dashboard::Sale::from_event(e))));

    // The mailer: exactly the mail each live order's state implies, each sent once.
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let settings = MailerSettings { mail_since: Some(0), ..MailerSettings::spool(spool.path()) };
    let mailer = Mailer::new(settings).unwrap();
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    let ledger = mailer::ledger(&connect(&mailer, &store).await.pool).await.unwrap();
    let live: BTreeSet<(String, &str)> = ledger
        .iter()
        .filter(|entry| latest.contains_key(&entry.order_id))
        .map(|entry| {
            assert_eq!(entry.status, MailStatus::Sent, "{entry:?}");
            (entry.order_id.clone(), entry.kind.as_str())
        })
        .collect();
    let implied: BTreeSet<(String, &str)> =
        latest.values().flat_map(mail::drafts).map(|d| (d.order_id, d.kind.as_str())).collect();
    assert_eq!(live, implied);
    let spooled = std::fs::read_dir(spool.path().join("new")).unwrap().count();
    let sent = ledger.iter().filter(|entry| entry.status == MailStatus::Sent).count();
    assert_eq!(spooled, sent, "one file per mail sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_started_after_ten_thousand_orders_backfills_completely() {
    let topic = unique("orders-test-late-joiner");
    simulate(&topic, 10_000, 7).await;
    let records = read_all(&topic);
    let latest = latest_states(&records);

    let store = Store::sqlite();
    let stats = run_until_caught_up(&Billing, &topic, "billing", &store).await;
    assert_eq!(stats.consumed as usize, records.len(), "replayed from offset zero");
    let got = billing::invoices(&connect(&Billing, &store).await.pool).await.unwrap();
    assert_eq!(got, derive(&latest, billing::Invoice::from_event));
}
