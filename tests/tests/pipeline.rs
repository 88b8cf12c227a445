//! The whole pipeline: Sales simulates through its outbox, every department of the registry
//! replays the topic through the `edison` binary, and each projection is what its rules
//! (`support::rules`, restated by the tests; `customers.rs` for customers) say for the events
//! read back.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use clap::Parser;

use edison_consumers::departments::mailer::{self, MailKind, MailStatus, MailerSettings};
use edison_consumers::departments::{assembly, billing, dashboard, shipping, warehouse};
use edison_consumers::departments::{Assembly, Billing, Dashboard, Mailer, Shipping, Warehouse, DEPARTMENTS};
use support::*;

/// `sales simulate --orders N --seed S` into a fresh store and `topic`, through the CLI. The
/// five simulated days start on Wednesday 2025-01-29, so they cross a weekend and a month end:
/// some deliveries are due on a Sunday, some orders paid in January are credited in February.
async fn simulate(topic: &str, orders: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/sales.db", dir.path().display());
    let cli = edison_sales::Cli::parse_from([
        "sales", "--bootstrap-servers", &bootstrap(), "--topic", topic, "--database-url", &store,
        "simulate", "--orders", &orders.to_string(), "--seed", &seed.to_string(), "--start", "2025-01-29T08:00:00Z",
    ]);
    edison_sales::run(cli).await.expect("simulate");
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
    let got = warehouse::reservations(&connect(&Warehouse, &store).await.pool).await.unwrap();
    assert_eq!(got, expected_rows(&latest, |e| Some(rules::reservation(e))));
    assert!(got.iter().any(|r| r.status == "cancelled" && r.batteries_reserved == 0), "some orders released theirs");

    let store = Store::new(backend);
    run_until_caught_up(&Assembly, &topic, "assembly", &store).await;
    let got = assembly::entries(&connect(&Assembly, &store).await.pool).await.unwrap();
    assert_eq!(got, expected_rows(&latest, |e| Some(rules::queue_entry(e))));
    assert!(got.iter().any(rules::queued) && !got.iter().all(rules::queued));

    let store = Store::new(backend);
    run_until_caught_up(&Billing, &topic, "billing", &store).await;
    let got = billing::invoices(&connect(&Billing, &store).await.pool).await.unwrap();
    assert_eq!(got, expected_rows(&latest, rules::invoice));
    assert!(got.iter().any(|invoice| invoice.credited_at.is_some()), "some paid orders were refunded");
    assert!(
        got.iter().any(|invoice| invoice.credit_month.as_ref().is_some_and(|month| *month != invoice.invoice_month)),
        "some credit notes fall in a later month than their invoice"
    );
    assert!(got.len() < latest.len(), "orders cancelled before payment bill nothing");

    let store = Store::new(backend);
    run_until_caught_up(&Shipping, &topic, "shipping", &store).await;
    let got = shipping::shipments(&connect(&Shipping, &store).await.pool).await.unwrap();
    assert_eq!(got, expected_rows(&latest, |e| Some(rules::shipment(e))));
    assert!(got.iter().any(rules::due) && !got.iter().all(rules::due));

    let store = Store::new(backend);
    run_until_caught_up(&Dashboard, &topic, "dashboard", &store).await;
    let got = dashboard::sales(&connect(&Dashboard, &store).await.pool).await.unwrap();
    assert_eq!(got, expected_rows(&latest, |e| Some(rules::sale(e))));

    mailer_sends_what_the_log_implies_once(backend, &topic, &records, &latest).await;
}

/// The mailer, with a ledger cutoff halfway through the history. Its rules, restated:
/// - a live order has exactly the mails its state calls for ([`rules::mails`]), at most one of
///   each kind, to the customer's address;
/// - a mail about something that happened before the cutoff is `historical` and never sent;
///   every other one is `sent`, with `sent_at` set, and is one file in the spool;
/// - an erased order's mails keep order id and kind but no recipient, subject or body; one
///   about something before the cutoff stays `historical`, any other either went out before
///   the erasure (`sent`, the proof) or never will (`dropped`).
async fn mailer_sends_what_the_log_implies_once(
    backend: Backend,
    topic: &str,
    records: &[Record],
    latest: &BTreeMap<String, edison_schemas::OrderEvent>,
) {
    let cutoff = latest.values().nth(latest.len() / 2).unwrap().order.placed_at;
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let settings = MailerSettings { mail_since: Some(cutoff), ..MailerSettings::spool(spool.path()) };
    let mailer = Mailer::new(settings).unwrap();
    run_until_caught_up(&mailer, topic, "mailer", &store).await;
    let ledger = mailer::ledger(&connect(&mailer, &store).await.pool).await.unwrap();

    let status = |happened_at: i64| if happened_at < cutoff { MailStatus::Historical } else { MailStatus::Sent };
    let want: BTreeMap<(String, MailKind), (MailStatus, i64, Option<String>)> = latest
        .values()
        .flat_map(|event| {
            let recipient = event.order.customer.email.clone();
            rules::mails(event).into_iter().map(move |(kind, at)| {
                ((event.order.order_id.clone(), kind), (status(at), at, Some(recipient.clone())))
            })
        })
        .collect();
    let live: BTreeMap<(String, MailKind), (MailStatus, i64, Option<String>)> = ledger
        .iter()
        .filter(|entry| latest.contains_key(&entry.order_id))
        .map(|entry| ((entry.order_id.clone(), entry.kind), (entry.status, entry.happened_at, entry.recipient.clone())))
        .collect();
    assert_eq!(live, want, "live orders: the mails their state calls for, sent or historical by the cutoff");
    let count = |wanted: MailStatus| want.values().filter(|(status, ..)| *status == wanted).count();
    assert!(count(MailStatus::Historical) > 0 && count(MailStatus::Sent) > 0, "the cutoff splits the history");
    for entry in &ledger {
        assert_eq!(entry.sent_at.is_some(), entry.status == MailStatus::Sent, "sent_at marks what went out: {entry:?}");
    }

    let logged: BTreeSet<String> =
        records.iter().map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap()).collect();
    let erased: Vec<_> = ledger.iter().filter(|entry| !latest.contains_key(&entry.order_id)).collect();
    for entry in &erased {
        assert!(logged.contains(&entry.order_id), "mail only about orders in the log: {entry:?}");
        assert_eq!((&entry.recipient, &entry.subject, &entry.body), (&None, &None, &None), "scrubbed: {entry:?}");
        if entry.happened_at < cutoff {
            assert_eq!(entry.status, MailStatus::Historical, "{entry:?}");
        } else {
            // Sales publishes an erased order's unpublished events blanked, before the
            // tombstone: mail recorded from those never goes out.
            let settled = [MailStatus::Sent, MailStatus::Dropped];
            assert!(settled.contains(&entry.status), "went out before the erasure, or never will: {entry:?}");
        }
    }

    let spooled = std::fs::read_dir(spool.path().join("new")).unwrap().count();
    let sent = ledger.iter().filter(|entry| entry.status == MailStatus::Sent).count();
    assert_eq!(spooled, sent, "one file per mail sent");
}

/// What `scripts/demo` does: every department the registry lists, run as `edison NAME` at once,
/// each in its own group and store, replays the whole log, dead-letters nothing, exits 0 and
/// reports. A department added to the registry is in this test without a line changed here.
#[tokio::test(flavor = "multi_thread")]
async fn every_registered_department_replays_the_log_through_edison() {
    let topic = unique("orders-test-registry");
    simulate(&topic, 500, 3).await;
    let records = read_all(&topic).len();
    let edison = binary("edison-consumers", "edison");
    let dir = tempfile::tempdir().unwrap();
    let command = |name: &str, args: &[&str]| {
        let mut command = Command::new(&edison);
        command
            .current_dir(dir.path())
            .env_clear()
            .env("MAILER_SPOOL_DIR", dir.path().join("mail-spool"))
            .arg(name)
            .args(department_args(&topic, name, &Store::at(&format!("sqlite://{}/{name}.db", dir.path().display()))))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let runs: Vec<_> = DEPARTMENTS
        .iter()
        .map(|department| (department.name, command(department.name, &["run", "--until-caught-up"]).spawn().unwrap()))
        .collect();
    for (name, run) in runs {
        let output = run.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        let counts = format!("{name}: consumed {records}, applied {records}, dead-lettered 0");
        assert_eq!(stdout.lines().next(), Some(counts.as_str()), "{stdout}");
        let report = command(name, &["report"]).output().unwrap();
        assert!(report.status.success() && !report.stdout.is_empty(), "{name} reports: {report:?}");
    }
    let stores: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok()?.strip_suffix(".db").map(str::to_owned))
        .collect();
    assert_eq!(stores, DEPARTMENTS.iter().map(|d| d.name.to_owned()).collect(), "one store each, where it was told");
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
    assert_eq!(got, expected_rows(&latest, rules::invoice));
}
