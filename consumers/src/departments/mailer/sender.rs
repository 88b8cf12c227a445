//! Sending: every pending mail, oldest first, each under a claim (a lease, so two mailers never
//! send one mail at once), retrying a failing transport with backoff for a bounded time.

use std::sync::Mutex;
use std::time::Duration;

use lettre::message::Mailbox;
use sqlx::{AnyPool, Row};
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use edison_common::time::now_ms;

use super::ledger::{unknown, MailStatus};
use super::mail::{self, MailKind, Outgoing};
use super::transport::{Delivery, Transport};

/// Pending mails read per query while sending.
const PAGE: i64 = 500;
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long a claim outlives the retry budget: enough for one more SMTP exchange.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

pub(super) struct Sender {
    from: Mailbox,
    transport: Transport,
    delivery: Delivery,
    retry_for: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// After a round gave up, no new round starts before this time, so a transport that is down
    /// does not cost every batch the whole retry budget.
    resume_at: Option<Instant>,
    /// Why the last round that gave up did, unless a mail went out since: mail pending then
    /// waits for the transport.
    failure: Option<String>,
}

/// What one [`Sender::send_pending`] call did.
#[derive(Debug, Default)]
struct SendSummary {
    sent: u64,
    failed: u64,
    /// Why the transport still failed when the retry time ran out; the rest stays pending.
    gave_up: Option<String>,
}

/// How handing one mail over went.
enum Outcome {
    Sent,
    /// Refused for good: marked failed, not retried.
    Failed(String),
    /// Still failing when the retry time ran out: stays pending.
    Retry(String),
    /// Failing when shutdown cut the retries short: stays pending.
    Interrupted(String),
}

impl Sender {
    pub(super) fn new(from: Mailbox, delivery: Delivery, retry_for: Duration) -> Sender {
        Sender { from, transport: Transport::new(&delivery), delivery, retry_for, state: Mutex::default() }
    }

    pub(super) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Why mail pending now waits for the transport, if it does: the last round gave up on it
    /// and no mail has gone out since.
    pub(super) fn failure(&self) -> Option<String> {
        self.state.lock().expect("not poisoned").failure.clone()
    }

    /// A delivery round, unless the last one gave up less than the retry time ago.
    pub(super) async fn round(&self, pool: &AnyPool, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let resume_at = self.state.lock().expect("not poisoned").resume_at;
        if resume_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        let summary = self.send_pending(pool, shutdown).await?;
        let mut state = self.state.lock().expect("not poisoned");
        if summary.sent > 0 {
            state.failure = None;
        }
        state.resume_at = summary.gave_up.is_some().then(|| Instant::now() + self.retry_for);
        if let Some(error) = summary.gave_up {
            state.failure =
                Some(format!("{} still failed after retrying for {:?}: {error}", self.delivery, self.retry_for));
        }
        if summary.sent + summary.failed > 0 {
            info!(sent = summary.sent, failed = summary.failed, delivery = %self.delivery, "mail delivered");
        }
        Ok(())
    }

    /// Sends every pending mail, oldest first, until none is left, until the transport has
    /// failed for longer than the retry budget, or until `shutdown` (the rest stays pending).
    /// Shutdown lets a send in progress finish but cuts a retry's wait short.
    async fn send_pending(&self, pool: &AnyPool, shutdown: &CancellationToken) -> Result<SendSummary, sqlx::Error> {
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
                        summary.gave_up = Some(error);
                        return Ok(summary);
                    }
                    Outcome::Interrupted(_) => return Ok(summary),
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
                Err(error) if Instant::now() + delay > deadline => {
                    return (Outcome::Retry(error.to_string()), attempts)
                }
                Err(error) => {
                    warn!(%error, order_id = %mail.order_id, kind = %mail.kind, retry_in = ?delay, "delivery failed; retrying");
                    tokio::select! {
                        _ = sleep(delay) => {}
                        _ = shutdown.cancelled() => return (Outcome::Interrupted(format!("{error}; shutting down")), attempts),
                    }
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }
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
/// (by another mailer's batch) stays `dropped` unless it went out: then `sent` is the proof. It
/// keeps no error text either (that may quote the address).
async fn settle(pool: &AnyPool, mail: &Outgoing, outcome: &Outcome, attempts: i64) -> Result<(), sqlx::Error> {
    let (status, sent_at, error) = match outcome {
        Outcome::Sent => (Some(MailStatus::Sent), Some(now_ms()), None),
        Outcome::Failed(error) => (Some(MailStatus::Failed), None, Some(error.as_str())),
        Outcome::Retry(error) | Outcome::Interrupted(error) => (None, None, Some(error.as_str())),
    };
    sqlx::query(
        "UPDATE mails SET status = CASE WHEN status = 'pending' OR $1 = 'sent' THEN COALESCE($1, status) ELSE status END, \
         sent_at = $2, attempts = attempts + $3, last_error = CASE WHEN erased_at IS NULL THEN $4 END, claimed_until = NULL \
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

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{memory_database, pay, placed};
    use crate::departments::mailer::tests::{
        apply, blocked_spool, erase, mails_of, round, spool_mailer, statuses, unblock, PAID_AT,
    };
    use crate::departments::mailer::MIGRATOR;
    use crate::runtime::Change;
    use crate::runtime::Projection;

    /// Two mailers share a ledger: one claims mail and hands it over while the other applies
    /// the order's tombstone.
    #[tokio::test]
    async fn a_mail_erased_while_out_for_delivery_stays_dropped_unless_it_went() {
        let (pool, spool) = (memory_database(&MIGRATOR).await, tempfile::tempdir().unwrap());
        let mailer = spool_mailer(spool.path(), Some(0), Duration::ZERO);
        apply(&mailer, &pool, vec![Change::Upsert(pay(placed(), PAID_AT))]).await;
        let page = pending_page(&pool, &Cursor::default()).await.unwrap();
        let now = now_ms();
        for pending in &page {
            assert!(claim(&pool, &pending.mail, now, now + 60_000).await.unwrap());
        }
        apply(&mailer, &pool, vec![erase(&placed())]).await;
        let [confirmation, receipt] = &page[..] else { panic!("two mails") };
        settle(&pool, &receipt.mail, &Outcome::Sent, 1).await.unwrap();
        settle(&pool, &confirmation.mail, &Outcome::Failed("550 no such user".into()), 1).await.unwrap();

        assert_eq!(
            statuses(&pool, &placed()).await,
            [(MailKind::Confirmation, MailStatus::Dropped), (MailKind::Receipt, MailStatus::Sent)]
        );
        let mails = mails_of(&pool, &placed()).await;
        assert!(mails[&MailKind::Receipt].sent_at.is_some(), "the proof of what went");
        assert!(mails.values().all(|e| e.last_error.is_none() && e.recipient.is_none()), "{mails:?}");
    }

    /// A send proves the transport works again: mail pending after it (here, claimed by
    /// another mailer) does not wait for the transport.
    #[tokio::test]
    async fn a_mail_sent_after_a_round_gave_up_clears_the_failure() {
        let (pool, (_dir, spool)) = (memory_database(&MIGRATOR).await, blocked_spool());
        let mailer = spool_mailer(&spool, Some(0), Duration::ZERO);
        apply(&mailer, &pool, vec![Change::Upsert(pay(placed(), PAID_AT))]).await;
        round(&mailer, &pool).await;
        assert!(mailer.sender.failure().is_some());

        unblock(&spool);
        let receipt = pending_page(&pool, &Cursor::default()).await.unwrap().pop().unwrap().mail;
        assert!(claim(&pool, &receipt, now_ms(), i64::MAX).await.unwrap(), "another mailer takes the receipt");
        round(&mailer, &pool).await;
        assert_eq!(
            statuses(&pool, &placed()).await,
            [(MailKind::Confirmation, MailStatus::Sent), (MailKind::Receipt, MailStatus::Pending)]
        );
        assert_eq!(mailer.summarize_run(&pool).await.unwrap().unfinished, None);
    }
}
