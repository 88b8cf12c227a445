//! The mailer's own rules, case by case, through `apply` into a real (in-memory SQLite) ledger
//! and, for sending, a Maildir in a temporary directory: which mails an order's state implies,
//! the sequence gate, the historical cutoff, erasure, and what a run says at its end.

use std::collections::BTreeMap;
use std::path::Path;

use edison_schemas::{Customer, OrderEvent};

use super::*;
use crate::departments::fixtures::{apply_batch, cancel, memory_database, pay, placed, DAY_MS, PLACED_AT};

pub(super) const PAID_AT: i64 = PLACED_AT + DAY_MS;
const CANCELLED_AT: i64 = PLACED_AT + 2 * DAY_MS;


pub(super) fn spool_mailer(spool: &Path, mail_since: Option<i64>, retry_for: Duration) -> Mailer {
    let settings = MailerSettings { mail_since, retry_for, ..MailerSettings::spool(spool) };
    Mailer::new(settings).expect("valid settings")
}

pub(super) async fn apply(mailer: &Mailer, pool: &AnyPool, changes: Vec<Change>) {
    apply_batch(mailer, pool, &changes).await
}

/// Applies each event as a batch of its own, so the ledger's rules decide, not the runtime's
/// collapse of a batch.
async fn apply_each(mailer: &Mailer, pool: &AnyPool, events: &[OrderEvent]) {
    for event in events {
        apply(mailer, pool, vec![Change::Upsert(event.clone())]).await;
    }
}

pub(super) fn erase(event: &OrderEvent) -> Change {
    Change::Erase { order_id: event.order.order_id.clone() }
}

/// `event` as Sales publishes it when the order is erased before the event went out: the
/// customer's personal data blanked, the pseudonymous id kept.
fn blanked(mut event: OrderEvent) -> OrderEvent {
    let customer_id = event.order.customer.customer_id.clone();
    event.order.customer =
        Customer { customer_id, name: String::new(), email: String::new(), shipping_address: String::new() };
    event
}

/// `event`, about another order.
fn other(mut event: OrderEvent) -> OrderEvent {
    event.order.order_id = "0196a000-0000-7000-8000-00000000cafe".into();
    event
}

/// The ledger rows of `event`'s order, by kind.
pub(super) async fn mails_of(pool: &AnyPool, event: &OrderEvent) -> BTreeMap<MailKind, LedgerEntry> {
    let all = ledger(pool).await.unwrap();
    all.into_iter().filter(|e| e.order_id == event.order.order_id).map(|e| (e.kind, e)).collect()
}

pub(super) async fn statuses(pool: &AnyPool, event: &OrderEvent) -> Vec<(MailKind, MailStatus)> {
    mails_of(pool, event).await.into_values().map(|e| (e.kind, e.status)).collect()
}

/// The message files delivered into `spool`.
fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool.join("new")).map_or(0, Iterator::count)
}

pub(super) async fn round(mailer: &Mailer, pool: &AnyPool) {
    mailer.after_commit(pool, &CancellationToken::new()).await.unwrap();
}

/// A ledger in which the fixture order's confirmation went out, into a Maildir.
async fn confirmed() -> (AnyPool, tempfile::TempDir, Mailer) {
    let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0), Duration::ZERO);
    apply_each(&mailer, &pool, &[placed()]).await;
    round(&mailer, &pool).await;
    (pool, spool, mailer)
}

fn no_personal_data(entry: &LedgerEntry) -> bool {
    (&entry.recipient, &entry.subject, &entry.body, &entry.last_error) == (&None, &None, &None, &None)
}

#[tokio::test]
async fn each_state_records_the_mails_it_implies_once() {
    use MailKind::*;
    use MailStatus::Pending;
    let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0), Duration::ZERO);
    let paid = pay(placed(), PAID_AT);
    let cancelled = cancel(paid.clone(), CANCELLED_AT);
    apply_each(&mailer, &pool, &[placed()]).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Pending)]);
    apply_each(&mailer, &pool, std::slice::from_ref(&paid)).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Pending), (Receipt, Pending)]);
    apply_each(&mailer, &pool, std::slice::from_ref(&cancelled)).await;
    let recorded = mails_of(&pool, &placed()).await;
    let told: Vec<(MailKind, i64, i64)> = recorded.values().map(|e| (e.kind, e.sequence, e.happened_at)).collect();
    assert_eq!(told, [(Confirmation, 1, PLACED_AT), (Receipt, 2, PAID_AT), (Cancellation, 3, CANCELLED_AT)]);
    assert!(recorded.values().all(|e| e.recipient.as_deref() == Some("ada@example.com") && e.status == Pending));

    // A second consumer group replays the whole history into the same ledger.
    apply_each(&mailer, &pool, &[placed(), paid, cancelled.clone()]).await;
    assert_eq!(mails_of(&pool, &placed()).await, recorded, "nothing recorded twice, nothing changed");

    // A ledger that first sees the order in its latest state records all it implies, at once.
    let pool = memory_database(&MIGRATOR).await;
    apply_each(&mailer, &pool, &[cancelled]).await;
    let all: Vec<(MailKind, i64)> =
        mails_of(&pool, &placed()).await.into_values().map(|e| (e.kind, e.sequence)).collect();
    assert_eq!(all, [(Confirmation, 3), (Receipt, 3), (Cancellation, 3)]);
}

#[tokio::test]
async fn only_an_event_past_the_orders_last_sequence_decides() {
    use MailKind::*;
    use MailStatus::Pending;
    let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0), Duration::ZERO);
    let paid = pay(placed(), PAID_AT);
    apply_each(&mailer, &pool, std::slice::from_ref(&paid)).await;
    // The same sequence again, claiming a cancellation: not newer, so it decides nothing.
    let mut same = cancel(paid.clone(), CANCELLED_AT);
    same.sequence = paid.sequence;
    // And an older event, re-sent by a relay after a crash.
    apply_each(&mailer, &pool, &[same, placed()]).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Pending), (Receipt, Pending)]);
    let tracked: (String, i64) =
        sqlx::query_as("SELECT status, sequence FROM mail_orders").fetch_one(&pool).await.unwrap();
    assert_eq!(tracked, ("paid".to_owned(), 2));

    apply_each(&mailer, &pool, &[cancel(paid, CANCELLED_AT)]).await;
    assert_eq!(
        statuses(&pool, &placed()).await,
        [(Confirmation, Pending), (Receipt, Pending), (Cancellation, Pending)]
    );
}

#[tokio::test]
async fn mail_about_what_happened_before_the_cutoff_is_historical() {
    use MailKind::*;
    use MailStatus::{Historical, Pending};
    let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
    // The cutoff is inclusive: a payment at the cutoff is mailed.
    let mailer = spool_mailer(spool.path(), Some(PAID_AT), Duration::ZERO);
    apply_each(&mailer, &pool, &[pay(placed(), PAID_AT)]).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Historical), (Receipt, Pending)]);
    let recorded = mails_of(&pool, &placed()).await;
    let text = |entry: &LedgerEntry| (entry.recipient.is_some(), entry.subject.is_some(), entry.body.is_some());
    assert_eq!(text(&recorded[&Confirmation]), (true, false, false), "a mail never sent is not rendered");
    assert_eq!(text(&recorded[&Receipt]), (true, true, true), "a pending mail is");
    assert_eq!(cutoff(&pool).await.unwrap(), Some(PAID_AT), "the first batch stores the cutoff");
    round(&mailer, &pool).await;
    assert_eq!(spooled(spool.path()), 1, "only the receipt went");

    // By default, a new ledger's cutoff is the mailer's start, and later mailers keep it.
    let pool = memory_database(&MIGRATOR).await;
    let first = spool_mailer(spool.path(), None, Duration::ZERO);
    apply_each(&first, &pool, &[placed()]).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Historical)]);
    assert_eq!(cutoff(&pool).await.unwrap(), Some(first.started_at));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut since_then = other(placed());
    since_then.order.placed_at = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = spool_mailer(spool.path(), None, Duration::ZERO);
    apply_each(&later, &pool, &[since_then.clone()]).await;
    assert_eq!(
        statuses(&pool, &since_then).await,
        [(Confirmation, Pending)],
        "the stored cutoff decides, not the later start"
    );

    // --mail-since overrides the stored cutoff for its run only.
    let strict = spool_mailer(spool.path(), Some(i64::MAX), Duration::ZERO);
    apply_each(&strict, &pool, &[pay(since_then.clone(), now_ms())]).await;
    assert_eq!(statuses(&pool, &since_then).await, [(Confirmation, Pending), (Receipt, Historical)]);
    assert_eq!(cutoff(&pool).await.unwrap(), Some(first.started_at));
}

#[tokio::test]
async fn an_erased_orders_unsent_mail_is_dropped_and_its_sent_mail_stays_as_proof() {
    let (pool, spool, mailer) = confirmed().await;
    let sent = mails_of(&pool, &placed()).await[&MailKind::Confirmation].clone();
    apply_each(&mailer, &pool, &[pay(placed(), PAID_AT)]).await;
    apply(&mailer, &pool, vec![erase(&placed())]).await;
    round(&mailer, &pool).await;

    let erased = mails_of(&pool, &placed()).await;
    let proof = &erased[&MailKind::Confirmation];
    assert_eq!((proof.status, proof.sent_at, proof.sequence), (MailStatus::Sent, sent.sent_at, sent.sequence));
    assert_eq!(erased[&MailKind::Receipt].status, MailStatus::Dropped);
    assert!(erased.values().all(no_personal_data), "{erased:?}");
    assert_eq!(spooled(spool.path()), 1, "the receipt never went");
    let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_orders").fetch_one(&pool).await.unwrap();
    assert_eq!(tracked, 0);
}

/// Sales publishes an erased order's unpublished events blanked, then the tombstone. An event
/// in a batch before the tombstone used to record mail to "" that then `failed`.
#[tokio::test]
async fn an_event_with_the_customer_blanked_erases_its_order_before_the_tombstone() {
    use MailKind::*;
    use MailStatus::{Dropped, Sent};
    let (pool, spool, mailer) = confirmed().await;
    // Erased after its confirmation went, before its payment was published.
    apply_each(&mailer, &pool, &[blanked(pay(placed(), PAID_AT))]).await;
    round(&mailer, &pool).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Sent), (Receipt, Dropped)]);
    // Erased before anything of it was published: the mailer first sees it blanked.
    let unseen = other(pay(placed(), PAID_AT));
    apply_each(&mailer, &pool, &[blanked(unseen.clone())]).await;
    round(&mailer, &pool).await;
    assert_eq!(statuses(&pool, &unseen).await, [(Confirmation, Dropped), (Receipt, Dropped)]);

    apply(&mailer, &pool, vec![erase(&placed()), erase(&unseen)]).await;
    round(&mailer, &pool).await;
    assert_eq!(statuses(&pool, &placed()).await, [(Confirmation, Sent), (Receipt, Dropped)]);
    assert_eq!(statuses(&pool, &unseen).await, [(Confirmation, Dropped), (Receipt, Dropped)]);
    assert!(ledger(&pool).await.unwrap().iter().all(no_personal_data));
    assert_eq!(spooled(spool.path()), 1, "only the confirmation sent before the erasure");
}

#[tokio::test]
async fn a_replay_of_an_erased_orders_history_records_its_mail_as_dropped() {
    let (pool, spool, mailer) = confirmed().await;
    // The payment and the tombstone in one batch: the receipt is never recorded.
    apply(&mailer, &pool, vec![erase(&placed())]).await;
    assert_eq!(statuses(&pool, &placed()).await, [(MailKind::Confirmation, MailStatus::Sent)]);

    // A rebuild empties the projection and replays the log, the erased order's events first.
    for table in Mailer::TABLES {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&pool).await.unwrap();
    }
    for event in [placed(), pay(placed(), PAID_AT)] {
        apply_each(&mailer, &pool, &[event]).await;
        round(&mailer, &pool).await;
    }
    let replayed = mails_of(&pool, &placed()).await;
    assert_eq!(replayed[&MailKind::Receipt].status, MailStatus::Dropped);
    assert!(replayed.values().all(no_personal_data), "{replayed:?}");
    assert_eq!(spooled(spool.path()), 1, "the receipt never went");
}

/// A Maildir that cannot be written (its path is a file) until `unblock`: a transient failure.
pub(super) fn blocked_spool() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::write(&spool, "not a directory").unwrap();
    (dir, spool)
}

pub(super) fn unblock(spool: &Path) {
    std::fs::remove_file(spool).unwrap();
}

#[tokio::test]
async fn a_run_leaving_mail_pending_because_the_transport_failed_is_unfinished() {
    let (pool, (_dir, spool)) = (memory_database(&MIGRATOR).await, blocked_spool());
    let mailer = spool_mailer(&spool, Some(0), Duration::ZERO);
    apply_each(&mailer, &pool, &[pay(placed(), PAID_AT)]).await;
    round(&mailer, &pool).await;
    let summary = mailer.summarize_run(&pool).await.unwrap();
    let unfinished = summary.unfinished.expect("unfinished");
    assert!(unfinished.starts_with("2 mails pending because the transport failed: "), "{unfinished}");
    assert!(unfinished.contains(&format!("the Maildir {} still failed", spool.display())), "{unfinished}");
    assert!(
        unfinished.contains("cannot write to the spool") && unfinished.ends_with("A later run retries them."),
        "{unfinished}"
    );

    // Nothing is left pending once the order is erased: nothing waits for the transport.
    apply(&mailer, &pool, vec![erase(&placed())]).await;
    assert_eq!(mailer.summarize_run(&pool).await.unwrap(), RunSummary::default());

    // A later run finds the transport working again.
    unblock(&spool);
    apply_each(&mailer, &pool, &[other(placed())]).await;
    round(&mailer, &pool).await;
    assert_eq!(mailer.summarize_run(&pool).await.unwrap(), RunSummary::default());
    assert_eq!(spooled(&spool), 1);
}

#[tokio::test]
async fn mail_left_pending_by_a_shutdown_does_not_make_the_run_unfinished() {
    let (pool, (_dir, spool)) = (memory_database(&MIGRATOR).await, blocked_spool());
    let mailer = spool_mailer(&spool, Some(0), Duration::from_secs(60));
    apply_each(&mailer, &pool, &[placed()]).await;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    tokio::time::timeout(Duration::from_secs(10), mailer.after_commit(&pool, &shutdown)).await.unwrap().unwrap();
    let pending = &mails_of(&pool, &placed()).await[&MailKind::Confirmation];
    assert_eq!(pending.status, MailStatus::Pending);
    assert!(pending.last_error.as_deref().is_some_and(|e| e.ends_with("shutting down")), "{pending:?}");
    assert_eq!(mailer.summarize_run(&pool).await.unwrap().unfinished, None);
}

#[tokio::test]
async fn a_run_notes_how_many_mails_it_recorded_as_historical() {
    let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), None, Duration::ZERO);
    apply_each(&mailer, &pool, &[cancel(pay(placed(), PAID_AT), CANCELLED_AT)]).await;
    let notes = mailer.summarize_run(&pool).await.unwrap().notes;
    let started = edison_common::time::format_rfc3339(mailer.started_at);
    assert_eq!(
        notes,
        [format!(
            "3 mails recorded as historical, never to be sent: what they tell happened before the cutoff {started} \
             (stored by the ledger's first run). To mail history, start a new ledger with an earlier --mail-since."
        )]
    );
    // The next run records nothing new, and says nothing.
    apply_each(&mailer, &pool, &[cancel(pay(placed(), PAID_AT), CANCELLED_AT)]).await;
    assert_eq!(mailer.summarize_run(&pool).await.unwrap(), RunSummary::default());

    let explicit = spool_mailer(spool.path(), Some(PAID_AT), Duration::ZERO);
    apply_each(&explicit, &pool, &[other(pay(placed(), PAID_AT))]).await;
    let notes = explicit.summarize_run(&pool).await.unwrap().notes;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("1 mail recorded as historical")
            && notes[0].contains("2025-11-25T16:00:00Z (set by --mail-since)"),
        "{notes:?}"
    );
}
