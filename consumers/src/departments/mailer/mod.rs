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
//! advance an order past its `mail_orders.sequence` decide anything (the sequence gate), and
//! only about the mail their order's stored state did not imply yet (`mail_orders.mails`).
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
//! `failed`, so it does not block the queue. A run that ends with mail pending because the
//! transport gave up is unfinished (the binary exits non-zero); one stopped by shutdown is not.
//!
//! # Rebuilds do not mail history again
//! - The ledger outlives the projection. `mail_orders` is a projection, rebuildable from the log,
//!   and the only table in [`Mailer::TABLES`]; `mails`, `mailer_settings` and `erased_orders` are
//!   not, so a reset keeps them. Replaying into a kept ledger records nothing new, so nothing is
//!   sent. A shadow rebuild (`mailer rebuild`) is refused, as `SIDE_EFFECTS` is set; snapshots
//!   never run `after_commit`, so they cannot send either.
//! - A brand-new ledger does not mail the past: the first batch it sees stores a cutoff,
//!   `mail_since` (`--mail-since`, by default the time the mailer process started), in
//!   `mailer_settings`. A mail about something that happened before the cutoff (by `placed_at`,
//!   `paid_at` or `cancelled_at`) is recorded as `historical`, with `sent_at` NULL, and never
//!   sent; the run says how many it recorded. A historical mail is not rendered: it keeps its
//!   recipient, but no subject or body, which only a mail that goes out needs. Later runs use
//!   the stored cutoff; an explicit `--mail-since` overrides it for its run.
//!
//! # Erasure (GDPR)
//! An order is erased by its tombstone, or already by an event without the customer's email:
//! Sales publishes an erased order's events it had not published yet with the personal data
//! blanked, before the tombstone. The order is noted in `erased_orders`, its `mail_orders` row
//! goes with the tombstone, and its ledger rows are stripped of personal data (recipient,
//! subject, body, last error), keeping order id, kind, sequence and `sent_at`: proof of what was
//! sent. A mail not yet sent becomes `dropped` and is never sent, and so is any mail of the order
//! a replay records later.

mod args;
mod ledger;
pub mod mail;
mod projection;
mod report;
mod sender;
#[cfg(test)]
mod tests;
pub mod transport;

use std::sync::Mutex;
use std::time::Duration;

use edison_common::time::now_ms;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};
use tokio_util::sync::CancellationToken;

use crate::runtime::{Change, Projection, RunSummary};

pub use args::{parse_mail_since, MailerArgs};
pub use ledger::{cutoff, ledger, mails_by_kind_and_status, LedgerEntry, MailStatus};
pub use mail::{Draft, MailKind, Outgoing};
pub use transport::{Delivery, SendError, Transport};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/mailer/migrations");

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
    sender: sender::Sender,
    /// `--mail-since`, if given.
    mail_since: Option<i64>,
    /// The cutoff a new ledger stores unless `mail_since` is given.
    started_at: i64,
    /// The current run's id, renewed when it ends: the ledger notes which run recorded a mail.
    run: Mutex<String>,
}

impl Mailer {
    pub fn new(settings: MailerSettings) -> Result<Mailer, InvalidSender> {
        let from = settings.from.parse().map_err(|source| InvalidSender { from: settings.from.clone(), source })?;
        Ok(Mailer {
            sender: sender::Sender::new(from, settings.delivery, settings.retry_for),
            mail_since: settings.mail_since,
            started_at: now_ms(),
            run: Mutex::new(run_id()),
        })
    }

    /// The `Message-ID` of `order_id`'s mail of `kind`, as this mailer renders it.
    pub fn message_id(&self, order_id: &str, kind: MailKind) -> String {
        mail::message_id(order_id, kind, self.sender.from())
    }
}

fn run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Projection for Mailer {
    const NAME: &'static str = "mailer";
    const ABOUT: &'static str = "A confirmation, a receipt and a cancellation notice as orders reach each state; each sent once.";
    /// Only the projection: the ledger (`mails`, `mailer_settings`, `erased_orders`) must
    /// survive a rebuild.
    const TABLES: &'static [&'static str] = &["mail_orders"];
    /// A shadow rebuild would start an empty ledger beside the live one: refused.
    const SIDE_EFFECTS: bool = true;

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        let run = self.run.lock().expect("not poisoned").clone();
        projection::apply(conn, changes, &run, self.mail_since, self.started_at).await
    }

    async fn after_commit(&self, pool: &AnyPool, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        self.sender.round(pool, shutdown).await
    }

    async fn summarize_run(&self, pool: &AnyPool) -> Result<RunSummary, sqlx::Error> {
        let run = std::mem::replace(&mut *self.run.lock().expect("not poisoned"), run_id());
        report::summarize_run(pool, &run, self.mail_since, self.sender.failure().as_deref()).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        report::report(pool).await
    }
}
