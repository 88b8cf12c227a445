//! Applying a batch: the sequence gate, the mail each order's new state implies, and erasure.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use edison_common::time::now_ms;
use edison_schemas::OrderEvent;

use super::ledger;
use super::mail::{self, MailKind};
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
    let mut recorded: Vec<&str> = Vec::new();
    if !events.is_empty() {
        let cutoff = ledger::cutoff_in_force(conn, mail_since, started_at, now).await?;
        // The sequence gate: only an event that advances its order records mail, and only the
        // mail its state implies that the stored state did not (a later state implies every
        // mail an earlier one did): the upsert returns those kinds of each order it advanced.
        let columns = ["order_id", "status", "sequence", "updated_at", "mails", "new_mails"];
        let updates = [("new_mails", "excluded.mails & ~mail_orders.mails")];
        let returning = "order_id, new_mails";
        let advanced = sql::upsert_returning(conn, "mail_orders", &columns, &updates, returning, &events, gate_key, |query, event| {
            let mails = mail::implied(&event.order).fold(0, |mails, (kind, _)| mails | kind.bit());
            let query = query.bind(&event.order.order_id).bind(event.order.status.as_str());
            query.bind(event.sequence).bind(event.occurred_at).bind(mails).bind(mails)
        })
        .await?;
        let mut new_mails = HashMap::with_capacity(advanced.len());
        for row in &advanced {
            new_mails.insert(row.try_get::<String, _>("order_id")?, row.try_get::<i64, _>("new_mails")?);
        }
        let mut mails: Vec<(&OrderEvent, MailKind, i64)> = Vec::new();
        for event in &events {
            let Some(&new) = new_mails.get(&event.order.order_id).filter(|new| **new != 0) else { continue };
            recorded.push(&event.order.order_id);
            let implied = mail::implied(&event.order).filter(|(kind, _)| new & kind.bit() != 0);
            mails.extend(implied.map(|(kind, at)| (*event, kind, at)));
        }
        ledger::record(conn, &mails, cutoff, run, now).await?;
    }
    if !tombstones.is_empty() {
        sql::delete_orders(conn, "mail_orders", &tombstones).await?;
    }
    // The orders erased now, and those that recorded mail now: one may have been erased
    // before (a replay records its mail afresh). Other orders' mail is as their erasure left it.
    let orders: Vec<&str> = erased.into_iter().chain(recorded).collect();
    ledger::scrub_erased(conn, &orders, now).await
}

/// What the sequence gate compares: the order and the event's sequence.
fn gate_key<'e>(event: &'e &OrderEvent) -> (&'e str, i64) {
    (&event.order.order_id, event.sequence)
}
