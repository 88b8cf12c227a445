//! The mailer against the real broker: every mail the log implies goes out once, through replays,
//! duplicates, rebuilds, erasure and an SMTP server that is down at first.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use edison_common::time::now_ms;
use edison_consumers::departments::mailer::{self, mail, Delivery, LedgerEntry, MailKind, MailStatus, MailerSettings};
use edison_consumers::departments::Mailer;
use edison_consumers::runtime::{checkpoint, Projection};
use edison_schemas::OrderEvent;
use support::*;

fn mailer_to(delivery: Delivery, mail_since: Option<i64>, retry_for: Duration) -> Mailer {
    let settings = MailerSettings { delivery, mail_since, retry_for, ..MailerSettings::spool("unused") };
    Mailer::new(settings).expect("valid settings")
}

/// A mailer delivering into the Maildir `spool`.
fn spool_mailer(spool: &Path, mail_since: Option<i64>) -> Mailer {
    mailer_to(Delivery::Spool(spool.to_owned()), mail_since, Duration::from_secs(30))
}

/// An address where nothing listens, for now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A new order, placed now: after any default cutoff.
fn placed_now() -> OrderEvent {
    let mut event = lifecycles(1).remove(0);
    let now = now_ms();
    event.event_id = uuid::Uuid::now_v7().to_string();
    event.order.order_id = uuid::Uuid::now_v7().to_string();
    event.order.placed_at = now;
    event.occurred_at = now;
    event
}

/// Every mail the log implies, computed from what is read back from the topic: Message-ID → To.
fn implied(mailer: &Mailer, topic: &str) -> BTreeMap<String, String> {
    latest_states(&read_all(topic))
        .values()
        .flat_map(mail::drafts)
        .map(|draft| (mailer.message_id(&draft.order_id, draft.kind), draft.recipient))
        .collect()
}

/// One delivered message file, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivered {
    path: PathBuf,
    inode: u64,
    modified: SystemTime,
    message_id: String,
    to: String,
    subject: String,
}

/// The message files in `dir` (none if it does not exist), by name. Dot-files are in the making.
fn delivered(dir: &Path) -> Vec<Delivered> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<Delivered> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|path| {
            let metadata = std::fs::metadata(&path).unwrap();
            let headers = mail::headers(&std::fs::read(&path).unwrap());
            let header = |name: &str| {
                let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
                let value = values.next().unwrap_or_else(|| panic!("{} has no {name}", path.display()));
                assert_eq!(values.next(), None, "{} has one {name}", path.display());
                value
            };
            for name in ["From", "Date", "MIME-Version", "Content-Type"] {
                header(name);
            }
            Delivered {
                inode: metadata.ino(),
                modified: metadata.modified().unwrap(),
                message_id: header("Message-ID"),
                to: header("To"),
                subject: header("Subject"),
                path,
            }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Message-ID → To of `messages`, which must not hold any Message-ID twice.
fn once_each(messages: &[Delivered]) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    for message in messages {
        let earlier = seen.insert(message.message_id.clone(), message.to.clone());
        assert!(earlier.is_none(), "{} was delivered twice", message.message_id);
    }
    seen
}

fn maildir(spool: &TempDir) -> PathBuf {
    spool.path().join("new")
}

async fn ledger(store: &Store) -> Vec<LedgerEntry> {
    mailer::ledger(&connect(&spool_mailer(Path::new("unused"), None), store).await.pool).await.unwrap()
}

fn statuses(ledger: &[LedgerEntry]) -> BTreeMap<MailStatus, usize> {
    let mut counts = BTreeMap::new();
    for entry in ledger {
        *counts.entry(entry.status).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_every_mail_the_log_implies_lands_in_the_spool_once() {
    every_mail_the_log_implies_lands_in_the_spool_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_every_mail_the_log_implies_lands_in_the_spool_once() {
    every_mail_the_log_implies_lands_in_the_spool_once(Backend::Postgres).await;
}

async fn every_mail_the_log_implies_lands_in_the_spool_once(backend: Backend) {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(40)).await;
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0));

    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    let want = implied(&mailer, &topic);
    assert_eq!(want.len(), 40 + 20 + 8, "a confirmation each, a receipt for even orders, a notice for every fifth");
    let files = delivered(&maildir(&spool));
    assert_eq!(once_each(&files), want, "exactly one mail per (order, kind), to the customer");
    assert_eq!(std::fs::read_dir(spool.path().join("tmp")).unwrap().count(), 0, "nothing left half-written");

    let ledger = ledger(&store).await;
    assert_eq!(statuses(&ledger), BTreeMap::from([(MailStatus::Sent, want.len())]));
    for entry in &ledger {
        let file = files.iter().find(|f| f.message_id == mailer.message_id(&entry.order_id, entry.kind)).unwrap();
        assert_eq!(Some(&file.subject), entry.subject.as_ref());
        assert!(entry.sent_at.is_some_and(|at| at >= entry.created_at) && entry.attempts == 1, "{entry:?}");
    }

    let report = mailer.report(&connect(&mailer, &store).await.pool).await.unwrap();
    let row = |kind: &str| report.lines().find(|l| l.trim_start().starts_with(kind)).unwrap().split_whitespace().skip(1).collect::<Vec<_>>();
    assert_eq!(row("confirmation"), ["40", "0", "0", "0", "0"], "{report}");
    assert_eq!(row("receipt"), ["20", "0", "0", "0", "0"], "{report}");
    assert_eq!(row("cancellation"), ["8", "0", "0", "0", "0"], "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_replays_duplicates_and_a_projection_reset_mail_nothing_again() {
    replays_duplicates_and_a_projection_reset_mail_nothing_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_replays_duplicates_and_a_projection_reset_mail_nothing_again() {
    replays_duplicates_and_a_projection_reset_mail_nothing_again(Backend::Postgres).await;
}

async fn replays_duplicates_and_a_projection_reset_mail_nothing_again(backend: Backend) {
    let topic = orders_topic(3).await;
    let events = lifecycles(30);
    produce_events(&topic, &events).await;
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0));
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    let first = delivered(&maildir(&spool));
    assert_eq!(once_each(&first), implied(&mailer, &topic));
    let recorded = ledger(&store).await;

    // A relay that crashed before marking its sends re-publishes a third of them.
    let duplicates = &events[..events.len() / 3];
    produce_events(&topic, duplicates).await;
    let stats = run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    assert_eq!(stats.consumed, duplicates.len() as u64);
    // A second group replays everything into the same ledger.
    let stats = run_until_caught_up(&mailer, &topic, "mailer-replay", &store).await;
    assert_eq!(stats.consumed, (events.len() + duplicates.len()) as u64);
    // A rebuild empties the projection (and only it) and, as `reset-offsets --to-earliest`
    // does, its checkpoints, then replays: the ledger remembers.
    let db = connect(&mailer, &store).await;
    for table in Mailer::TABLES.iter().chain([&checkpoint::TABLE]) {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&db.pool).await.unwrap();
    }
    let rebuilt = spool_mailer(spool.path(), None);
    run_until_caught_up(&rebuilt, &topic, "mailer-rebuild", &store).await;

    assert_eq!(delivered(&maildir(&spool)), first, "no new file, none rewritten");
    assert_eq!(ledger(&store).await, recorded, "the ledger is as the first run left it");
    let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_orders").fetch_one(&db.pool).await.unwrap();
    assert_eq!(tracked, 30, "the projection is rebuilt");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_new_ledger_records_history_as_historical_and_mails_only_what_follows() {
    a_new_ledger_records_history_as_historical_and_mails_only_what_follows(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_new_ledger_records_history_as_historical_and_mails_only_what_follows() {
    a_new_ledger_records_history_as_historical_and_mails_only_what_follows(Backend::Postgres).await;
}

async fn a_new_ledger_records_history_as_historical_and_mails_only_what_follows(backend: Backend) {
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(20)).await;
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let started = now_ms();
    let mailer = spool_mailer(spool.path(), None);

    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    assert!(delivered(&maildir(&spool)).is_empty(), "the history is not mailed");
    let history = ledger(&store).await;
    assert_eq!(history.len(), implied(&mailer, &topic).len(), "but every mail it implies is recorded");
    assert!(history.iter().all(|e| e.status == MailStatus::Historical && e.sent_at.is_none() && e.attempts == 0));
    let pool = connect(&mailer, &store).await.pool;
    let cutoff = mailer::cutoff(&pool).await.unwrap().expect("the first batch stores the cutoff");
    assert!((started..=now_ms()).contains(&cutoff), "the default cutoff is the mailer's start");

    // An order placed now, handled by a mailer process started later still: the stored cutoff,
    // not the later start, decides.
    let order = placed_now();
    produce_events(&topic, std::slice::from_ref(&order)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = spool_mailer(spool.path(), None);
    run_until_caught_up(&later, &topic, "mailer", &store).await;
    let want = BTreeMap::from([(later.message_id(&order.order.order_id, MailKind::Confirmation), order.order.customer.email.clone())]);
    assert_eq!(once_each(&delivered(&maildir(&spool))), want, "only the new order is mailed");
    assert_eq!(mailer::cutoff(&pool).await.unwrap(), Some(cutoff));
    let counts = mailer::mails_by_kind_and_status(&pool).await.unwrap();
    assert_eq!(counts[&(MailKind::Confirmation, MailStatus::Sent)], 1);
    assert_eq!(counts[&(MailKind::Confirmation, MailStatus::Historical)], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_an_erased_order_keeps_no_personal_data_and_its_unsent_mail_never_goes() {
    an_erased_order_keeps_no_personal_data_and_its_unsent_mail_never_goes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_an_erased_order_keeps_no_personal_data_and_its_unsent_mail_never_goes() {
    an_erased_order_keeps_no_personal_data_and_its_unsent_mail_never_goes(Backend::Postgres).await;
}

async fn an_erased_order_keeps_no_personal_data_and_its_unsent_mail_never_goes(backend: Backend) {
    let topic = orders_topic(3).await;
    let events = lifecycles(10);
    produce_events(&topic, &events).await;
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0));
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    let sent_order = events[0].order.order_id.clone(); // placed, paid and cancelled: three mails out
    let before: Vec<LedgerEntry> = ledger(&store).await.into_iter().filter(|e| e.order_id == sent_order).collect();
    assert_eq!(before.len(), 3);

    // An order whose confirmation cannot go out yet: the SMTP server is down.
    let unsent = placed_now();
    produce_events(&topic, std::slice::from_ref(&unsent)).await;
    let down = mailer_to(Delivery::Smtp { host: "127.0.0.1".into(), port: free_port() }, Some(0), Duration::ZERO);
    run_until_caught_up(&down, &topic, "mailer", &store).await;
    let unsent_id = unsent.order.order_id.clone();
    let pending = ledger(&store).await.into_iter().find(|e| e.order_id == unsent_id).unwrap();
    assert_eq!((pending.status, pending.sent_at), (MailStatus::Pending, None));
    let files = delivered(&maildir(&spool));

    produce(&topic, &[(sent_order.clone().into_bytes(), None), (unsent_id.clone().into_bytes(), None)]).await;
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    // A replay from offset zero brings the erased orders' events back before their tombstones.
    run_until_caught_up(&mailer, &topic, "mailer-replay", &store).await;

    assert_eq!(delivered(&maildir(&spool)), files, "the erased order's mail never went out");
    let ledger = ledger(&store).await;
    let erased: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.order_id == sent_order || e.order_id == unsent_id).collect();
    assert_eq!(erased.len(), 4);
    for entry in erased {
        assert_eq!((&entry.recipient, &entry.subject, &entry.body, &entry.last_error), (&None, &None, &None, &None), "{entry:?}");
        if entry.order_id == sent_order {
            let was = before.iter().find(|b| b.kind == entry.kind).unwrap();
            assert_eq!((entry.status, entry.sent_at, entry.sequence), (MailStatus::Sent, was.sent_at, was.sequence), "proof of what was sent");
        } else {
            assert_eq!((entry.status, entry.sent_at), (MailStatus::Dropped, None));
        }
    }
    let pool = connect(&mailer, &store).await.pool;
    let tracked: Vec<String> = sqlx::query_scalar("SELECT order_id FROM mail_orders").fetch_all(&pool).await.unwrap();
    assert!(!tracked.contains(&sent_order) && !tracked.contains(&unsent_id) && tracked.len() == 9);
}

/// `event` as Sales publishes it when the order is erased before the event went out: the
/// customer's personal data blanked, before the tombstone.
fn blanked(event: &OrderEvent) -> OrderEvent {
    let mut event = event.clone();
    let customer = &mut event.order.customer;
    (customer.name, customer.email, customer.shipping_address) = Default::default();
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_mail_of_an_order_erased_before_it_went_is_dropped_never_failed() {
    mail_of_an_order_erased_before_it_went_is_dropped_never_failed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_mail_of_an_order_erased_before_it_went_is_dropped_never_failed() {
    mail_of_an_order_erased_before_it_went_is_dropped_never_failed(Backend::Postgres).await;
}

/// The demo's "failed" mails: Sales publishes an erased order's unpublished events blanked, and
/// a batch that ends before the tombstone used to record mail to "" that then failed.
async fn mail_of_an_order_erased_before_it_went_is_dropped_never_failed(backend: Backend) {
    let topic = orders_topic(3).await;
    let events = lifecycles(2); // order 0: placed, paid, cancelled; order 1: placed
    let (early, late) = (events[0].order.order_id.clone(), events[3].order.order_id.clone());
    let (store, spool) = (Store::new(backend), tempfile::tempdir().unwrap());
    let mailer = spool_mailer(spool.path(), Some(0));
    produce_events(&topic, &events[..1]).await;
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    let confirmed = ledger(&store).await.remove(0);
    assert_eq!((confirmed.status, &confirmed.order_id), (MailStatus::Sent, &early));

    // Both orders are erased: the events not yet published go out blanked, in batches of their
    // own (each run here ends one), then the tombstones.
    produce_events(&topic, &events[1..].iter().map(blanked).collect::<Vec<_>>()).await;
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    produce(&topic, &[(early.clone().into_bytes(), None), (late.clone().into_bytes(), None)]).await;
    run_until_caught_up(&mailer, &topic, "mailer", &store).await;
    run_until_caught_up(&mailer, &topic, "mailer-replay", &store).await;

    let kinds = |order: &str, entries: &[LedgerEntry]| -> Vec<(MailKind, MailStatus)> {
        let mut kinds: Vec<_> = entries.iter().filter(|e| e.order_id == order).map(|e| (e.kind, e.status)).collect();
        kinds.sort();
        kinds
    };
    let entries = ledger(&store).await;
    use MailKind::*;
    use MailStatus::{Dropped, Sent};
    assert_eq!(kinds(&early, &entries), [(Confirmation, Sent), (Receipt, Dropped), (Cancellation, Dropped)]);
    assert_eq!(kinds(&late, &entries), [(Confirmation, Dropped)]);
    let proof = entries.iter().find(|e| e.order_id == early && e.kind == Confirmation).unwrap();
    assert_eq!((proof.sent_at, proof.sequence), (confirmed.sent_at, confirmed.sequence), "proof of what was sent");
    for entry in &entries {
        assert_eq!((&entry.recipient, &entry.subject, &entry.body, &entry.last_error), (&None, &None, &None, &None), "{entry:?}");
    }
    let files = delivered(&maildir(&spool));
    assert_eq!(files.iter().map(|f| &f.message_id).collect::<Vec<_>>(), [&mailer.message_id(&early, Confirmation)]);
}

/// Runs the real `mailer` binary on `topic` with `flags` before `run --until-caught-up`: its exit
/// status and what it printed (stdout, then stderr).
async fn mailer_process(topic: &str, store: &Store, flags: &[&str]) -> (std::process::ExitStatus, String) {
    let run = Command::new(binary("edison-consumers", "mailer"))
        .args(department_args(topic, "mailer", store))
        .args(flags)
        .args(["run", "--until-caught-up", "--dead-letter-topic", &format!("{topic}.dlq")])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the run ends").unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status, printed)
}

/// A script must be able to tell that a caught-up run left mail undelivered.
#[tokio::test(flavor = "multi_thread")]
async fn mailer_run_until_caught_up_exits_non_zero_while_smtp_is_unreachable() {
    let topic = orders_topic(1).await;
    produce_events(&topic, &lifecycles(3)).await;
    let store = Store::sqlite();
    let closed = format!("smtp://127.0.0.1:{}", free_port());
    let (status, printed) = mailer_process(&topic, &store, &["--smtp-url", &closed, "--mail-since", "0", "--retry-for", "1"]).await;
    assert!(!status.success(), "{status}: {printed}");
    let pending = ledger(&store).await;
    assert!(pending.len() == 6 && pending.iter().all(|e| e.status == MailStatus::Pending), "{pending:?}");
    assert!(printed.contains("6 mails pending because the transport failed"), "{printed}");
    assert!(printed.contains(&closed) && printed.contains("A later run retries them"), "{printed}");

    // A later run that can deliver sends them, and exits 0.
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().to_str().unwrap();
    let (status, printed) = mailer_process(&topic, &store, &["--spool-dir", spool_dir, "--mail-since", "0"]).await;
    assert!(status.success(), "{status}: {printed}");
    assert!(ledger(&store).await.iter().all(|e| e.status == MailStatus::Sent));
    assert_eq!(delivered(&maildir(&spool)).len(), 6);
}

/// A first run over past history mails nothing, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_mailer_run_over_history_notes_the_mails_it_recorded_as_historical() {
    let topic = orders_topic(1).await;
    produce_events(&topic, &lifecycles(3)).await;
    let (store, spool) = (Store::sqlite(), tempfile::tempdir().unwrap());
    let spool_dir = spool.path().to_str().unwrap();
    let (status, printed) = mailer_process(&topic, &store, &["--spool-dir", spool_dir]).await;
    assert!(status.success(), "{status}: {printed}");
    let cutoff = mailer::cutoff(&connect(&spool_mailer(spool.path(), None), &store).await.pool).await.unwrap().unwrap();
    let note = format!(
        "6 mails recorded as historical, never to be sent: what they tell happened before the cutoff {} \
         (stored by the ledger's first run).",
        edison_common::time::format_rfc3339(cutoff)
    );
    assert!(printed.contains(&note), "{printed}");
    assert!(delivered(&maildir(&spool)).is_empty());

    // The next run records nothing as historical, and says nothing about it.
    produce_events(&topic, std::slice::from_ref(&placed_now())).await;
    let (status, printed) = mailer_process(&topic, &store, &["--spool-dir", spool_dir]).await;
    assert!(status.success() && !printed.contains("recorded as historical"), "{status}: {printed}");
    assert_eq!(delivered(&maildir(&spool)).len(), 1);
}

/// Fails the test unless Python's aiosmtpd is there: the SMTP test must not pass by skipping.
fn require_aiosmtpd() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|status| status.success()),
        "the SMTP test needs Python's aiosmtpd: python3 -m pip install aiosmtpd (.ci/run installs it)"
    );
}

/// `tests/smtp_sink.py`: a real SMTP server on loopback writing each message it accepts to a
/// file. Killed when dropped.
struct SmtpSink {
    child: Child,
    dir: TempDir,
    /// When it started listening, ms since the epoch.
    ready_at: i64,
}

impl SmtpSink {
    async fn start(port: u16) -> SmtpSink {
        require_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs tests/smtp_sink.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        match first {
            Ok(Ok(Some(line))) if line == "ready" => {}
            other => panic!("the SMTP sink did not start ({other:?}); exit status {:?}", child.try_wait()),
        }
        SmtpSink { child, dir, ready_at: now_ms() }
    }

    fn messages(&self) -> Vec<Delivered> {
        delivered(self.dir.path())
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("the SMTP sink is killed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_smtp_gets_every_mail_once_and_a_mail_is_sent_only_once_accepted() {
    smtp_gets_every_mail_once_and_a_mail_is_sent_only_once_accepted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_smtp_gets_every_mail_once_and_a_mail_is_sent_only_once_accepted() {
    smtp_gets_every_mail_once_and_a_mail_is_sent_only_once_accepted(Backend::Postgres).await;
}

async fn smtp_gets_every_mail_once_and_a_mail_is_sent_only_once_accepted(backend: Backend) {
    require_aiosmtpd();
    let topic = orders_topic(3).await;
    produce_events(&topic, &lifecycles(20)).await;
    let store = Store::new(backend);
    let port = free_port();
    let smtp = Delivery::Smtp { host: "127.0.0.1".into(), port };

    // The server is down: every mail stays pending, not sent, with the reason.
    let down = mailer_to(smtp.clone(), Some(0), Duration::from_millis(300));
    run_until_caught_up(&down, &topic, "mailer", &store).await;
    let pending = ledger(&store).await;
    assert_eq!(pending.len(), 20 + 10 + 4);
    for entry in &pending {
        assert_eq!((entry.status, entry.sent_at), (MailStatus::Pending, None), "{entry:?}");
    }
    let tried = pending.iter().filter(|e| e.attempts > 0).collect::<Vec<_>>();
    assert_eq!(tried.len(), 1, "a round gives up on its first mail once its retry time is spent");
    assert!(tried[0].last_error.as_deref().is_some_and(|e| e.contains("SMTP")), "{:?}", tried[0]);

    // The next batch's delivery round finds the server still down; it comes up only after that
    // failed attempt (a stand-in takes the port, hangs up on the first connection and leaves it
    // to the real server), and the round's retries deliver everything pending, old and new.
    let order = placed_now();
    produce_events(&topic, std::slice::from_ref(&order)).await;
    let mailer = mailer_to(smtp, Some(0), Duration::from_secs(30));
    let stand_in = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (stats, sink) = tokio::join!(run_until_caught_up(&mailer, &topic, "mailer", &store), async {
        let accepted = tokio::time::timeout(Duration::from_secs(60), stand_in.accept()).await;
        drop(accepted.expect("the mailer tries to deliver").unwrap());
        drop(stand_in);
        SmtpSink::start(port).await
    });
    assert_eq!(stats.consumed, 1);
    let want = implied(&mailer, &topic);
    assert_eq!(want.len(), pending.len() + 1);
    assert_eq!(once_each(&sink.messages()), want, "the server got every mail once");
    let sent = ledger(&store).await;
    for entry in &sent {
        assert_eq!(entry.status, MailStatus::Sent, "{entry:?}");
        assert!(entry.sent_at.is_some_and(|at| at >= sink.ready_at), "marked sent only once accepted: {entry:?}");
        assert_eq!(entry.last_error, None);
    }
    let oldest = sent.iter().find(|e| (&e.order_id, e.kind) == (&tried[0].order_id, tried[0].kind)).unwrap();
    assert!(oldest.attempts >= tried[0].attempts + 2, "it failed again, then went: {oldest:?}");

    // A replay by another group sends nothing again.
    run_until_caught_up(&mailer, &topic, "mailer-replay", &store).await;
    assert_eq!(sink.messages().len(), want.len());
    sink.stop().await;
}

/// SIGTERM while the SMTP server is down stops the mailer at once, not after its retry budget:
/// the wait between retries is cut short, the mail stays pending, and what was applied is
/// committed.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_an_smtp_outage_stops_the_mailer_without_waiting_out_its_retries() {
    let topic = orders_topic(1).await;
    produce_events(&topic, &lifecycles(3)).await;
    let store = Store::sqlite();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("mailer.log");
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let mailer = Process(
        std::process::Command::new(binary("edison-consumers", "mailer"))
            .args(department_args(&topic, "mailer", &store))
            .args(["--smtp-url", &smtp_url, "--mail-since", "0", "--retry-for", "300", "run"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap().contains("delivery failed; retrying") {
        assert!(std::time::Instant::now() < deadline, "no delivery attempt: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stopping = std::time::Instant::now();
    assert!(mailer.terminate().success());
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?} to stop; the retry budget is 300 s");

    let entries = ledger(&store).await;
    let smtp = Delivery::Smtp { host: "127.0.0.1".into(), port };
    assert_eq!(entries.len(), implied(&mailer_to(smtp, Some(0), Duration::from_secs(1)), &topic).len());
    assert!(entries.iter().all(|e| e.status == MailStatus::Pending && e.sent_at.is_none()), "{entries:?}");
    let tried: Vec<_> = entries.iter().filter(|e| e.attempts > 0).collect();
    assert_eq!(tried.len(), 1, "{entries:?}");
    assert!(tried[0].last_error.as_deref().is_some_and(|e| e.contains("shutting down")), "{:?}", tried[0]);
    let group = kafka_describe_group(&group_for(&topic, "mailer"));
    assert!(group.iter().all(|row| row.lag == Some(0)), "offsets committed on shutdown: {group:?}");
}
