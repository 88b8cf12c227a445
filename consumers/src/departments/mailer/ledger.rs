//! The ledger, which outlives the projection: every mail decided on (`mails`) and its status, the
//! cutoff before which mail is history (`mailer_settings`), and the orders erased.

use std::collections::BTreeMap;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Row};

use edison_common::db::{Backend, Placeholders};

use edison_schemas::OrderEvent;

use super::mail::{self, MailKind};
use crate::runtime::sql;

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

/// The cutoff in force: `mail_since` if given, else the one stored by the ledger's first batch,
/// which stores `mail_since` or `default`.
pub(super) async fn cutoff_in_force(
    conn: &mut AnyConnection,
    mail_since: Option<i64>,
    default: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO mailer_settings (id, mail_since, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(mail_since.unwrap_or(default))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    match mail_since {
        Some(since) => Ok(since),
        None => Ok(cutoff(&mut *conn).await?.expect("stored just now")),
    }
}

/// Records `mails` (each the event whose state implies it, its kind, and when what it tells
/// happened) as recorded in `run`, unless already there: pending if it tells of something at or
/// after `cutoff`, historical otherwise.
///
/// Only a pending mail is rendered: a historical one is never sent, so it keeps its recipient
/// (to whom it would have gone) but no subject or body, and a rebuild over years of history
/// writes a few dozen bytes a mail, not a rendered message.
pub(super) async fn record(
    conn: &mut AnyConnection,
    mails: &[(&OrderEvent, MailKind, i64)],
    cutoff: i64,
    run: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    const COLUMNS: &str =
        "order_id, kind, sequence, happened_at, status, recipient, subject, body, created_at, recorded_in";
    // Bound per mail; `created_at` and `recorded_in` are the same for the whole statement.
    const PER_MAIL: usize = 8;
    for chunk in sql::statement_chunks(mails, PER_MAIL) {
        // VALUES name their columns column1, column2, ... on both engines. The WHERE tells
        // SQLite's parser that ON CONFLICT is the INSERT's.
        let mut placeholders = Placeholders::new(Backend::of(conn));
        let mut sql = format!("INSERT INTO mails ({COLUMNS}) SELECT ");
        for column in 1..=PER_MAIL {
            sql.push_str(&format!("column{column}, "));
        }
        placeholders.push(&mut sql);
        sql.push_str(", ");
        placeholders.push(&mut sql);
        sql.push_str(" FROM (VALUES ");
        placeholders.push_rows(&mut sql, chunk.len(), PER_MAIL);
        sql.push_str(") AS mail WHERE true ON CONFLICT (order_id, kind) DO NOTHING");
        let mut query = sqlx::query(&sql).bind(now).bind(run);
        for &(event, kind, happened_at) in chunk {
            let pending = happened_at >= cutoff;
            let status = if pending { MailStatus::Pending } else { MailStatus::Historical };
            let (subject, body) =
                pending.then(|| (mail::subject(kind, &event.order), mail::body(kind, &event.order))).unzip();
            query = query
                .bind(&event.order.order_id)
                .bind(kind.as_str())
                .bind(event.sequence)
                .bind(happened_at)
                .bind(status.as_str())
                .bind(&event.order.customer.email)
                .bind(subject)
                .bind(body);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Notes `order_ids` as erased, for good: Sales never changes an erased order again, so any
/// later event of one is a replay or a re-send.
pub(super) async fn mark_erased(conn: &mut AnyConnection, order_ids: &[&str], now: i64) -> Result<(), sqlx::Error> {
    for chunk in sql::statement_chunks(order_ids, 2) {
        let mut sql = String::from("INSERT INTO erased_orders (order_id, erased_at) VALUES ");
        Placeholders::new(Backend::of(conn)).push_rows(&mut sql, chunk.len(), 2);
        sql.push_str(" ON CONFLICT (order_id) DO NOTHING");
        let query = chunk.iter().fold(sqlx::query(&sql), |query, id| query.bind(*id).bind(now));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Strips the mails of those of `order_ids` that are erased of personal data; unsent mail
/// becomes `dropped`. Covers mail recorded before the erasure and mail a replay records after.
pub(super) async fn scrub_erased(conn: &mut AnyConnection, order_ids: &[&str], now: i64) -> Result<(), sqlx::Error> {
    // Erased orders are few: finding them in their own small table first spares a lookup in
    // the large ledger for every order of the batch.
    let mut erased = Vec::new();
    for chunk in sql::statement_chunks(order_ids, 1) {
        let mut sql = String::from("SELECT order_id FROM erased_orders WHERE order_id IN ");
        Placeholders::new(Backend::of(conn)).push_rows(&mut sql, 1, chunk.len());
        let query = chunk.iter().fold(sqlx::query_scalar::<_, String>(&sql), |query, id| query.bind(*id));
        erased.extend(query.fetch_all(&mut *conn).await?);
    }
    for chunk in sql::statement_chunks(&erased, 2) {
        let mut placeholders = Placeholders::new(Backend::of(conn));
        let mut sql = String::from(
            "UPDATE mails SET recipient = NULL, subject = NULL, body = NULL, last_error = NULL, erased_at = COALESCE(erased_at, ",
        );
        placeholders.push(&mut sql);
        sql.push_str("), status = CASE WHEN status = 'pending' THEN 'dropped' ELSE status END WHERE order_id IN ");
        placeholders.push_rows(&mut sql, 1, chunk.len());
        let query = chunk.iter().fold(sqlx::query(&sql).bind(now), |query, id| query.bind(id));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// How many mails are in `status` now; only those recorded in `run`, if given.
pub(super) async fn count(pool: &AnyPool, status: MailStatus, run: Option<&str>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM mails WHERE status = $1 AND ($2 IS NULL OR recorded_in = $2)")
        .bind(status.as_str())
        .bind(run)
        .fetch_one(pool)
        .await
}

pub(super) fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {column} {value:?} in the mail ledger").into())
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
pub async fn cutoff<'c>(db: impl Executor<'c, Database = Any>) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT mail_since FROM mailer_settings WHERE id = 1").fetch_optional(db).await
}
