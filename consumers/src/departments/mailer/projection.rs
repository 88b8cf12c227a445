//! Applying a batch: the sequence gate, the mail each order's new state implies, and erasure.

use sqlx::AnyConnection;

use edison_common::time::now_ms;

use super::ledger;
use crate::runtime::{sql, Change};

/// Records in the `mails` ledger what `changes` imply, as recorded in `run`, by the cutoff
/// `mail_since` (or the one the ledger stored, or `started_at` for a new ledger), and erases
/// what they erase.
pub(super) async fn apply(
    conn: &mut AnyConnection,
    changes: &[Change],
    run: &str,
    mail_since: Option<i64>,
    started_at: i64,
) -> Result<(), sqlx::Error> {
    let (events, tombstones) = sql::split(changes);
    let now = now_ms();
    // Sales blanks the customer's data in an erased order's events it had not published yet:
    // such an event is the erasure, ahead of the tombstone. No mail could go to it anyway.
    let blanked = events.iter().filter(|e| e.order.customer.email.is_empty()).map(|e| e.order.order_id.as_str());
    let erased: Vec<&str> = tombstones.iter().copied().chain(blanked).collect();
    ledger::mark_erased(conn, &erased, now).await?;
    if !events.is_empty() {
        let cutoff = ledger::cutoff_in_force(conn, mail_since, started_at, now).await?;
        // The sequence gate: the upsert marks the orders it advances with this batch's id, and
        // only they record mail.
        let batch = batch_id();
        let columns = ["order_id", "status", "sequence", "updated_at", "batch"];
        let advanced = sql::upsert(conn, "mail_orders", &columns, &events, |query, event| {
            query
                .bind(&event.order.order_id)
                .bind(event.order.status.as_str())
                .bind(event.sequence)
                .bind(event.occurred_at)
                .bind(batch)
        })
        .await?;
        // A batch the gate stopped whole (a replay) has nothing to record: spare the ledger a
        // lookup per mail.
        if advanced > 0 {
            ledger::record(conn, &events, batch, cutoff, run, now).await?;
        }
    }
    if !tombstones.is_empty() {
        sql::delete_orders(conn, "mail_orders", &tombstones).await?;
    }
    // Every order of the batch: one erased now, or earlier (a replay records its mail afresh).
    let orders: Vec<&str> = changes.iter().map(Change::order_id).collect();
    ledger::scrub_erased(conn, &orders, now).await
}

/// An id for a batch: 62 random bits (those of a UUIDv7), so two batches, of one process or of
/// two, never share one in practice.
fn batch_id() -> i64 {
    let (_, random) = uuid::Uuid::now_v7().as_u64_pair();
    random as i64
}
