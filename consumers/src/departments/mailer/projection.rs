//! Applying a batch: the sequence gate, the mail each order's new state implies, and erasure.

use std::collections::HashMap;

use sqlx::AnyConnection;

use edison_common::db::{Backend, Placeholders};
use edison_common::time::now_ms;
use edison_schemas::OrderEvent;

use super::{ledger, mail};
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
        let fresh = advancing(conn, events).await?;
        let columns = ["order_id", "status", "sequence", "updated_at"];
        sql::upsert(conn, "mail_orders", &columns, &fresh, |query, event| {
            query
                .bind(&event.order.order_id)
                .bind(event.order.status.as_str())
                .bind(event.sequence)
                .bind(event.occurred_at)
        })
        .await?;
        let drafts: Vec<mail::Draft> = fresh.into_iter().flat_map(mail::drafts).collect();
        ledger::record(conn, &drafts, cutoff, run, now).await?;
    }
    if !tombstones.is_empty() {
        sql::delete_orders(conn, "mail_orders", &tombstones).await?;
    }
    // Every order of the batch: one erased now, or earlier (a replay records its mail afresh).
    let orders: Vec<&str> = changes.iter().map(Change::order_id).collect();
    ledger::scrub_erased(conn, &orders, now).await
}

/// The sequence gate: those of `events` that advance their order past its last applied one.
async fn advancing<'e>(
    conn: &mut AnyConnection,
    events: Vec<&'e OrderEvent>,
) -> Result<Vec<&'e OrderEvent>, sqlx::Error> {
    let ids: Vec<&str> = events.iter().map(|e| e.order.order_id.as_str()).collect();
    let applied = sequences(conn, &ids).await?;
    Ok(events
        .into_iter()
        .filter(|e| applied.get(&e.order.order_id).is_none_or(|&sequence| e.sequence > sequence))
        .collect())
}

/// The last applied sequence of each of `order_ids` that has a row.
async fn sequences(conn: &mut AnyConnection, order_ids: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in sql::statement_chunks(order_ids, 1) {
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
