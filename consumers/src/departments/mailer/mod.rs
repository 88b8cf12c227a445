//! Mailer: a confirmation when an order is placed, a receipt when it is paid, a notice when it is
//! cancelled. The one department with a side effect outside its database, so the one whose
//! invariant is "**side effects happen once**".
//!
//! # Once, and only once
//! Mails are decided from each order's state (`placed_at`, `paid_at`, `cancelled_at`), never from
//! `event_type`: the runtime collapses a batch to each order's latest event. [`Mailer::apply`]
//! records every mail the state implies in the `mails` ledger, inside the runtime's transaction,
//! with `INSERT .. ON CONFLICT (order_id, kind) DO NOTHING`: a replay, a duplicate, a second
//! consumer group or a rebuild finds the mail already there and records nothing. Only events that
//! advance an order past its `mail_orders.sequence` decide anything (the sequence gate).
//!
//! [`Mailer::after_commit`] then sends every `pending` mail, oldest first, not just this batch's,
//! so what an earlier batch or run left pending gets another attempt. Each mail is claimed with a
//! lease first (so two mailer processes never send one mail at once), and marked `sent` only after
//! the transport accepted it. A crash between acceptance and marking is the one way a mail can go
//! out twice; its `Message-ID` is deterministic (order id + kind) and so is the whole message, so
//! such a duplicate is recognisable, and the Maildir spool even replaces the earlier file.
//!
//! # Delivery and retries
//! By default into a Maildir (`data/mail-spool`); with `--smtp-url` to an SMTP server. A transient
//! failure (connection refused, timeout, 4xx) is retried with exponential backoff for up to
//! `--retry-for` (30 s) per call; then the call gives up, the mail stays `pending` and the next
//! batch (or run) tries again. Shutdown (SIGTERM, Ctrl-C) ends the wait at once, leaving the mail
//! `pending`. A permanent failure (5xx, or an address that does not parse) marks the mail
//! `failed`, so it does not block the queue.
//!
//! # Rebuilds do not mail history again
//! - The ledger outlives the projection. `mail_orders` is a projection, rebuildable from the log,
//!   and the only table in [`Mailer::TABLES`]; `mails` and `mailer_settings` are not, so a reset
//!   keeps them. Replaying into a kept ledger records nothing new, so nothing is sent. A shadow
//!   rebuild (`mailer rebuild`) is refused, as `SIDE_EFFECTS` is set; snapshots never run
//!   `after_commit`, so they cannot send either.
//! - A brand-new ledger does not mail the past: the first batch it sees stores a cutoff,
//!   `mail_since` (`--mail-since`, by default the time the mailer process started), in
//!   `mailer_settings`. A mail about something that happened before the cutoff (by `placed_at`,
//!   `paid_at` or `cancelled_at`) is recorded as `historical`, with `sent_at` NULL, and never
//!   sent. Later runs use the stored cutoff; an explicit `--mail-since` overrides it for its run.
//!
//! # Erasure (GDPR tombstones)
//! A tombstone deletes the order's `mail_orders` row and strips its ledger rows of personal data
//! (recipient, subject, body, last error), keeping order id, kind, sequence and `sent_at`: proof of
//! what was sent. A mail not yet sent becomes `dropped` and is never sent. The rows stay, so a
//! replay of the order's older events records nothing again.

mod args;
pub mod mail;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use edison_common::db::{max_rows_per_statement, Backend, Placeholders};
use edison_schemas::OrderEvent;

use crate::runtime::{sql, Change, Projection};

pub use args::{parse_mail_since, MailerArgs};
pub use mail::{Draft, MailKind, Outgoing};
pub use transport::{Delivery, SendError, Transport};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/mailer/migrations");

/// Pending mails read per query while sending.
const PAGE: i64 = 500;
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long a claim outlives the retry budget: enough for one more SMTP exchange.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// How the mailer is set up.
#[derive(Debug, Clone)]
pub struct MailerSettings {
    pub delivery: Delivery,
    /// The `From` mailbox, e.g. `Edison Cars <orders@edison-cars.example>`.
    pub from: String,
    /// Mail about anything before this (ms since the epoch) is historical. `None`: the cutoff
    /// stored in the ledger, or, for a new ledger, the time this mailer was created.
    pub mail_since: Option<i64>,
    /// How long one `after_commit` keeps retrying a failing transport.
    pub retry_for: Duration,
}

impl MailerSettings {
    /// The defaults: the Maildir `spool`, Edison's address, a 30 s retry budget.
    pub fn spool(spool: impl Into<std::path::PathBuf>) -> MailerSettings {
        MailerSettings {
            delivery: Delivery::Spool(spool.into()),
            from: args::DEFAULT_FROM.to_owned(),
            mail_since: None,
            retry_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid sender {from:?}: {source}")]
pub struct InvalidSender {
    from: String,
    source: lettre::address::AddressError,
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    delivery: Delivery,
    mail_since: Option<i64>,
    started_at: i64,
    retry_for: Duration,
    /// After a delivery round gave up, no new round starts before this time, so a transport
    /// that is down does not cost every batch the whole retry budget.
    resume_at: std::sync::Mutex<Option<Instant>>,
}

impl Mailer {
    pub fn new(settings: MailerSettings) -> Result<Mailer, InvalidSender> {
        let from = settings.from.parse().map_err(|source| InvalidSender { from: settings.from.clone(), source })?;
        Ok(Mailer {
            from,
            transport: Transport::new(&settings.delivery),
            delivery: settings.delivery,
            mail_since: settings.mail_since,
            started_at: now_ms(),
            retry_for: settings.retry_for,
            resume_at: std::sync::Mutex::new(None),
        })
    }

    /// The `Message-ID` of `order_id`'s mail of `kind`, as this mailer renders it.
    pub fn message_id(&self, order_id: &str, kind: MailKind) -> String {
        mail::message_id(order_id, kind, &self.from)
    }

    /// The cutoff in force: stored by the ledger's first batch, unless overridden.
    async fn cutoff(&self, conn: &mut AnyConnection, now: i64) -> Result<i64, sqlx::Error> {
        sqlx::query("INSERT INTO mailer_settings (id, mail_since, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(self.mail_since.unwrap_or(self.started_at))
            .bind(now)
            .execute(&mut *conn)
            .await?;
        match self.mail_since {
            Some(since) => Ok(since),
            None => sqlx::query_scalar("SELECT mail_since FROM mailer_settings WHERE id = 1").fetch_one(&mut *conn).await,
        }
    }

    /// Sends every pending mail, oldest first, until none is left, until the transport has
    /// failed for longer than the retry budget, or until `shutdown` (the rest stays pending).
    /// Shutdown lets a send in progress finish but cuts a retry's wait short.
    pub async fn send_pending(&self, pool: &AnyPool, shutdown: &CancellationToken) -> Result<SendSummary, sqlx::Error> {
        let deadline = Instant::now() + self.retry_for;
        let mut summary = SendSummary::default();
        let mut after = Cursor::default();
        loop {
            let page = pending_page(pool, &after).await?;
            let Some(last) = page.last() else { return Ok(summary) };
            after = Cursor::of(last);
            for pending in page {
                if shutdown.is_cancelled() {
                    return Ok(summary);
                }
                let now = now_ms();
                if !claim(pool, &pending.mail, now, now + ms(self.retry_for + CLAIM_MARGIN)).await? {
                    continue; // another mailer has it
                }
                let (outcome, attempts) = self.deliver(&pending.mail, deadline, shutdown).await;
                settle(pool, &pending.mail, &outcome, attempts).await?;
                match outcome {
                    Outcome::Sent => summary.sent += 1,
                    Outcome::Failed(error) => {
                        warn!(order_id = %pending.mail.order_id, kind = %pending.mail.kind, %error, "mail failed permanently");
                        summary.failed += 1;
                    }
                    Outcome::Retry(error) => {
                        warn!(%error, delivery = %self.delivery, retried_for = ?self.retry_for, "cannot deliver; mail stays pending");
                        summary.gave_up = true;
                        return Ok(summary);
                    }
                }
            }
        }
    }

    /// Renders and hands over one mail, retrying transient failures until `deadline` or
    /// `shutdown`. Returns the outcome and the number of attempts.
    async fn deliver(&self, mail: &Outgoing, deadline: Instant, shutdown: &CancellationToken) -> (Outcome, i64) {
        let message = match mail::render(mail, &self.from) {
            Ok(message) => message,
            Err(error) => return (Outcome::Failed(error.to_string()), 0),
        };
        let name = format!("{}.{}", mail.order_id, mail.kind);
        let mut delay = FIRST_RETRY;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.transport.send(&name, message.clone()).await {
                Ok(()) => return (Outcome::Sent, attempts),
                Err(error) if error.is_permanent() => return (Outcome::Failed(error.to_string()), attempts),
                Err(error) if Instant::now() + delay > deadline => return (Outcome::Retry(error.to_string()), attempts),
                Err(error) => {
                    warn!(%error, order_id = %mail.order_id, kind = %mail.kind, retry_in = ?delay, "delivery failed; retrying");
                    tokio::select! {
                        _ = sleep(delay) => {}
                        _ = shutdown.cancelled() => return (Outcome::Retry(format!("{error}; shutting down")), attempts),
                    }
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }
}

/// What one [`Mailer::send_pending`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendSummary {
    pub sent: u64,
    pub failed: u64,
    /// The transport kept failing: mails stay pending for the next call.
    pub gave_up: bool,
}

/// How handing one mail over went.
enum Outcome {
    Sent,
    /// Refused for good: marked failed, not retried.
    Failed(String),
    /// Still failing when the retry time ran out: stays pending.
    Retry(String),
}

impl Projection for Mailer {
    const NAME: &'static str = "mailer";
    /// Only the projection: the ledger (`mails`, `mailer_settings`) must survive a rebuild.
    const TABLES: &'static [&'static str] = &["mail_orders"];
    /// A shadow rebuild would start an empty ledger beside the live one: refused.
    const SIDE_EFFECTS: bool = true;

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        let (events, erased) = sql::split(changes);
        let now = now_ms();
        if !events.is_empty() {
            let cutoff = self.cutoff(conn, now).await?;
            let ids: Vec<&str> = events.iter().map(|e| e.order.order_id.as_str()).collect();
            let applied = sequences(conn, &ids).await?;
            let fresh: Vec<&OrderEvent> = events
                .into_iter()
                .filter(|e| applied.get(&e.order.order_id).is_none_or(|&sequence| e.sequence > sequence))
                .collect();
            let columns = ["order_id", "status", "sequence", "updated_at"];
            sql::upsert(conn, "mail_orders", &columns, &fresh, |query, event| {
                query
                    .bind(&event.order.order_id)
                    .bind(event.order.status.as_str())
                    .bind(event.sequence)
                    .bind(event.occurred_at)
            })
            .await?;
            let drafts: Vec<Draft> = fresh.into_iter().flat_map(mail::drafts).collect();
            record(conn, &drafts, cutoff, now).await?;
        }
        if !erased.is_empty() {
            sql::delete_orders(conn, "mail_orders", &erased).await?;
            scrub(conn, &erased, now).await?;
        }
        Ok(())
    }

    async fn after_commit(&self, pool: &AnyPool, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let resume_at = *self.resume_at.lock().expect("not poisoned");
        if resume_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        let summary = self.send_pending(pool, shutdown).await?;
        *self.resume_at.lock().expect("not poisoned") = summary.gave_up.then(|| Instant::now() + self.retry_for);
        if summary.sent + summary.failed > 0 {
            info!(sent = summary.sent, failed = summary.failed, delivery = %self.delivery, "mail delivered");
        }
        Ok(())
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        let mut out = String::from("Mailer\n");
        let since = match cutoff(pool).await? {
            Some(ms) => time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| ms.to_string()),
            None => "not set yet (no batch applied)".to_owned(),
        };
        let _ = writeln!(out, "  mail since: {since}");
        let tracked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_orders").fetch_one(pool).await?;
        let _ = writeln!(out, "  orders tracked: {tracked}");
        let counts = mails_by_kind_and_status(pool).await?;
        let _ = write!(out, "  mails by kind and status:\n    {:<13}", "");
        for status in MailStatus::ALL {
            let _ = write!(out, " {:>10}", status.as_str());
        }
        for kind in MailKind::ALL {
            let _ = write!(out, "\n    {:<13}", kind.as_str());
            for status in MailStatus::ALL {
                let _ = write!(out, " {:>10}", counts.get(&(kind, status)).copied().unwrap_or(0));
            }
        }
        out.push('\n');
        Ok(out)
    }
}

/// Where a mail stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailStatus {
    /// Recorded, not yet accepted by the transport.
    Pending,
    /// Accepted by the transport at `sent_at`.
    Sent,
    /// About something before the cutoff: recorded so it is never sent.
    Historical,
    /// The order was erased before the mail went out: never sent.
    Dropped,
    /// Refused for good (SMTP 5xx, malformed address): not retried.
    Failed,
}

impl MailStatus {
    pub const ALL: [MailStatus; 5] =
        [MailStatus::Sent, MailStatus::Pending, MailStatus::Historical, MailStatus::Dropped, MailStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Historical => "historical",
            MailStatus::Dropped => "dropped",
            MailStatus::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<MailStatus> {
        MailStatus::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// The last applied sequence of each of `order_ids` that has a row.
async fn sequences(conn: &mut AnyConnection, order_ids: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in order_ids.chunks(max_rows_per_statement(1)) {
        let mut sql = String::from("SELECT order_id, sequence FROM mail_orders WHERE order_id IN ");
        Placeholders::new(Backend::of(conn)).push_rows(&mut sql, 1, chunk.len());
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        found.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Records `drafts` in the ledger unless already there: pending if they tell of something at or
/// after `cutoff`, historical otherwise.
async fn record(conn: &mut AnyConnection, drafts: &[Draft], cutoff: i64, now: i64) -> Result<(), sqlx::Error> {
    const COLUMNS: &str = "order_id, kind, sequence, happened_at, status, recipient, subject, body, created_at";
    for chunk in drafts.chunks(max_rows_per_statement(9)) {
        let mut sql = format!("INSERT INTO mails ({COLUMNS}) VALUES ");
        Placeholders::new(Backend::of(conn)).push_rows(&mut sql, chunk.len(), 9);
        sql.push_str(" ON CONFLICT (order_id, kind) DO NOTHING");
        let mut query = sqlx::query(&sql);
        for draft in chunk {
            let status = if draft.happened_at >= cutoff { MailStatus::Pending } else { MailStatus::Historical };
            query = query
                .bind(&draft.order_id)
                .bind(draft.kind.as_str())
                .bind(draft.sequence)
                .bind(draft.happened_at)
                .bind(status.as_str())
                .bind(&draft.recipient)
                .bind(&draft.subject)
                .bind(&draft.body)
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Strips the ledger rows of erased orders of personal data; unsent mail becomes `dropped`.
async fn scrub(conn: &mut AnyConnection, order_ids: &[&str], now: i64) -> Result<(), sqlx::Error> {
    for chunk in order_ids.chunks(max_rows_per_statement(1) - 1) {
        let mut placeholders = Placeholders::new(Backend::of(conn));
        let mut sql = String::from("UPDATE mails SET recipient = NULL, subject = NULL, body = NULL, last_error = NULL, erased_at = ");
        placeholders.push(&mut sql);
        sql.push_str(", status = CASE WHEN status = 'pending' THEN 'dropped' ELSE status END WHERE order_id IN ");
        placeholders.push_rows(&mut sql, 1, chunk.len());
        let query = chunk.iter().fold(sqlx::query(&sql).bind(now), |query, id| query.bind(*id));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A pending mail and where it sorts: oldest first, and in an order's natural sequence.
struct Pending {
    mail: Outgoing,
    happened_at: i64,
}

/// The position after which the next page of pending mail starts. The default precedes every
/// row: `created_at` is a time after the epoch.
#[derive(Default)]
struct Cursor {
    created_at: i64,
    happened_at: i64,
    order_id: String,
    kind: String,
}

impl Cursor {
    fn of(pending: &Pending) -> Cursor {
        Cursor {
            created_at: pending.mail.created_at,
            happened_at: pending.happened_at,
            order_id: pending.mail.order_id.clone(),
            kind: pending.mail.kind.as_str().to_owned(),
        }
    }
}

async fn pending_page(pool: &AnyPool, after: &Cursor) -> Result<Vec<Pending>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT order_id, kind, recipient, subject, body, created_at, happened_at FROM mails \
         WHERE status = 'pending' AND (created_at, happened_at, order_id, kind) > ($1, $2, $3, $4) \
         ORDER BY created_at, happened_at, order_id, kind LIMIT $5",
    )
    .bind(after.created_at)
    .bind(after.happened_at)
    .bind(&after.order_id)
    .bind(&after.kind)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(Pending {
                mail: Outgoing {
                    order_id: row.try_get("order_id")?,
                    kind: MailKind::parse(&kind).ok_or_else(|| unknown("kind", &kind))?,
                    recipient: row.try_get::<Option<String>, _>("recipient")?.unwrap_or_default(),
                    subject: row.try_get::<Option<String>, _>("subject")?.unwrap_or_default(),
                    body: row.try_get::<Option<String>, _>("body")?.unwrap_or_default(),
                    created_at: row.try_get("created_at")?,
                },
                happened_at: row.try_get("happened_at")?,
            })
        })
        .collect()
}

/// Takes the mail for sending until `until`, unless it is no longer pending or another
/// sender's claim has not expired.
async fn claim(pool: &AnyPool, mail: &Outgoing, now: i64, until: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE mails SET claimed_until = $1 WHERE order_id = $2 AND kind = $3 AND status = 'pending' \
         AND (claimed_until IS NULL OR claimed_until < $4)",
    )
    .bind(until)
    .bind(&mail.order_id)
    .bind(mail.kind.as_str())
    .bind(now)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Records how a claimed mail's delivery went and releases the claim. A mail erased meanwhile
/// keeps no error text (it may quote the address).
async fn settle(pool: &AnyPool, mail: &Outgoing, outcome: &Outcome, attempts: i64) -> Result<(), sqlx::Error> {
    let (status, sent_at, error) = match outcome {
        Outcome::Sent => (Some(MailStatus::Sent), Some(now_ms()), None),
        Outcome::Failed(error) => (Some(MailStatus::Failed), None, Some(error.as_str())),
        Outcome::Retry(error) => (None, None, Some(error.as_str())),
    };
    sqlx::query(
        "UPDATE mails SET status = COALESCE($1, status), sent_at = $2, attempts = attempts + $3, \
         last_error = CASE WHEN erased_at IS NULL THEN $4 END, claimed_until = NULL \
         WHERE order_id = $5 AND kind = $6",
    )
    .bind(status.map(MailStatus::as_str))
    .bind(sent_at)
    .bind(attempts)
    .bind(error)
    .bind(&mail.order_id)
    .bind(mail.kind.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {column} {value:?} in the mail ledger").into())
}

fn now_ms() -> i64 {
    ms(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One ledger row, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub order_id: String,
    pub kind: MailKind,
    pub sequence: i64,
    pub happened_at: i64,
    pub status: MailStatus,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The whole ledger, by order id and kind.
pub async fn ledger(pool: &AnyPool) -> Result<Vec<LedgerEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT order_id, kind, sequence, happened_at, status, recipient, subject, body, created_at, sent_at, \
                attempts, last_error \
         FROM mails ORDER BY order_id, kind",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let status: String = row.try_get("status")?;
            Ok(LedgerEntry {
                order_id: row.try_get("order_id")?,
                kind: MailKind::parse(&kind).ok_or_else(|| unknown("kind", &kind))?,
                sequence: row.try_get("sequence")?,
                happened_at: row.try_get("happened_at")?,
                status: MailStatus::parse(&status).ok_or_else(|| unknown("status", &status))?,
                recipient: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                body: row.try_get("body")?,
                created_at: row.try_get("created_at")?,
                sent_at: row.try_get("sent_at")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// How many mails there are of each kind in each status.
pub async fn mails_by_kind_and_status(pool: &AnyPool) -> Result<BTreeMap<(MailKind, MailStatus), i64>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind, status, COUNT(*) FROM mails GROUP BY kind, status").fetch_all(pool).await?;
    rows.into_iter()
        .map(|(kind, status, count)| {
            let kind = MailKind::parse(&kind).ok_or_else(|| unknown("kind", &kind))?;
            let status = MailStatus::parse(&status).ok_or_else(|| unknown("status", &status))?;
            Ok(((kind, status), count))
        })
        .collect()
}

/// The ledger's stored cutoff, once a batch has set it.
pub async fn cutoff(pool: &AnyPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT mail_since FROM mailer_settings WHERE id = 1").fetch_optional(pool).await
}
