//! The outbox: every order event in publishing order, appended in the transaction of its change,
//! and read by the relay, by `show` and by the counts.

use std::collections::HashSet;

use edison_common::db::{max_rows_per_statement, Placeholders};
use edison_schemas::Codec;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use super::relay_state::RELAY;
use super::{parse_uuid, Store};
use crate::domain::{self, Change, Transition};
use crate::error::SalesError;

const OUTBOX_COLUMNS: [&str; 6] = ["order_id", "sequence", "event_id", "event_type", "payload", "created_at"];

/// An outbox row as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The row's place in publishing order.
    pub id: i64,
    /// The record key.
    pub order_id: String,
    /// The Avro single-object encoded event, or `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// One outbox row of an order, for `show` and for tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// The row's place in publishing order.
    pub id: i64,
    /// The event's place in its order's history, from 1.
    pub sequence: i64,
    /// The event's own id, also inside its payload.
    pub event_id: Uuid,
    /// `PLACED`, `PAID`, ..., or `ERASED` for the tombstone.
    pub event_type: String,
    /// The Avro single-object encoded event, or `None` for the tombstone.
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    /// When the change happened, in ms since the Unix epoch.
    pub created_at: i64,
    /// The broker has acknowledged it.
    pub published: bool,
}

/// How many rows the outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Every row, published or not.
    pub total: u64,
    /// The rows the broker has not acknowledged yet.
    pub unpublished: u64,
}

impl Store {
    /// Appends the outbox rows of `transitions` in order within `tx`, and returns their ids.
    pub(super) async fn append_outbox(
        &self,
        tx: &mut Transaction<'_, Any>,
        transitions: &[Transition],
        payloads: &[Option<Vec<u8>>],
    ) -> Result<Vec<i64>, SalesError> {
        let mut ids = Vec::with_capacity(transitions.len());
        let outbox: Vec<_> = transitions.iter().zip(payloads).collect();
        for chunk in outbox.chunks(max_rows_per_statement(OUTBOX_COLUMNS.len())) {
            let mut sql = format!("INSERT INTO outbox ({}) VALUES ", OUTBOX_COLUMNS.join(", "));
            Placeholders::new(self.db.backend).push_rows(&mut sql, chunk.len(), OUTBOX_COLUMNS.len());
            sql.push_str(" RETURNING id");
            let mut query = sqlx::query_scalar(&sql);
            for (t, payload) in chunk {
                query = query
                    .bind(t.record.id.to_string())
                    .bind(t.record.sequence)
                    .bind(t.event_id.to_string())
                    .bind(t.change.as_str())
                    .bind(payload.as_deref())
                    .bind(t.occurred_at);
            }
            let mut chunk_ids: Vec<i64> = query.fetch_all(&mut **tx).await.map_err(SalesError::from_write)?;
            // RETURNING promises no order, but both backends number rows in VALUES order.
            chunk_ids.sort_unstable();
            ids.extend(chunk_ids);
        }
        Ok(ids)
    }

    /// Re-encodes every stored event of the order with the customer's personal data blanked.
    pub(super) async fn scrub_outbox(&self, tx: &mut Transaction<'_, Any>, id: Uuid) -> Result<(), SalesError> {
        let rows = sqlx::query("SELECT id, payload FROM outbox WHERE order_id = $1 AND payload IS NOT NULL")
            .bind(id.to_string())
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let payload: Vec<u8> = row.try_get("payload")?;
            let mut event = self.codec.decode(&payload)?;
            event.order.customer = domain::scrubbed(&event.order.customer);
            sqlx::query("UPDATE outbox SET payload = $1 WHERE id = $2")
                .bind(self.codec.encode(&event)?)
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The order's outbox rows, oldest first.
    pub async fn outbox_entries(&self, id: Uuid) -> Result<Vec<OutboxEntry>, SalesError> {
        let published_through = self.published_through().await?;
        let rows = sqlx::query(
            "SELECT id, sequence, event_id, event_type, payload, created_at FROM outbox WHERE order_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id = row.try_get("id")?;
                Ok(OutboxEntry {
                    id,
                    sequence: row.try_get("sequence")?,
                    event_id: parse_uuid(&row.try_get::<String, _>("event_id")?)?,
                    event_type: row.try_get("event_type")?,
                    payload: row.try_get("payload")?,
                    created_at: row.try_get("created_at")?,
                    published: id <= published_through,
                })
            })
            .collect()
    }

    /// Every outbox row and the unpublished ones. Counting them all reads the whole table;
    /// [`Store::queued`] reads only the unpublished tail.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, SalesError> {
        let row = sqlx::query("SELECT COUNT(*) AS total FROM outbox").fetch_one(&self.db.pool).await?;
        Ok(OutboxCounts { total: count(&row, "total")?, unpublished: self.queued().await? })
    }

    /// How many outbox rows are not published yet.
    pub async fn queued(&self) -> Result<u64, SalesError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE id > (SELECT published_through FROM relay_progress WHERE name = $1)",
        )
        .bind(RELAY)
        .fetch_one(&self.db.pool)
        .await?;
        count(&row, "n")
    }

    /// The oldest `limit` unpublished rows with ids up to `until`, in publishing order.
    #[cfg(test)]
    pub(super) async fn unpublished(&self, until: i64, limit: usize) -> Result<Vec<OutboxRow>, SalesError> {
        self.outbox_rows(self.published_through().await?, until, limit).await
    }

    /// The oldest `limit` rows with ids in `(after, until]`, in publishing order. The relay reads
    /// a chunk this way while the one before it commits, before the mark has moved past it.
    pub(crate) async fn outbox_rows(&self, after: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>, SalesError> {
        let rows = sqlx::query("SELECT id, order_id, payload FROM outbox WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3")
            .bind(after)
            .bind(until)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    order_id: row.try_get("order_id")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }

    /// The id of the newest outbox row, 0 if there is none.
    pub(crate) async fn newest_outbox_id(&self) -> Result<i64, SalesError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox").fetch_one(&self.db.pool).await?)
    }

    /// How many outbox rows have ids in `(after, through]`.
    pub(crate) async fn outbox_rows_between(&self, after: i64, through: i64) -> Result<u64, SalesError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE id > $1 AND id <= $2")
            .bind(after)
            .bind(through)
            .fetch_one(&self.db.pool)
            .await?;
        count(&row, "n")
    }
}

/// The outbox payloads of `transitions`: each event Avro-encoded, `None` for a tombstone. The
/// events of an order that a later transition here erases are encoded scrubbed; rows committed
/// earlier are scrubbed in place by the commit.
pub(crate) fn encode_outbox(codec: &Codec, transitions: &[Transition]) -> Result<Vec<Option<Vec<u8>>>, SalesError> {
    let erased: HashSet<Uuid> =
        transitions.iter().filter(|t| t.change == Change::Erased).map(|t| t.record.id).collect();
    transitions
        .iter()
        .map(|t| {
            let Some(mut event) = t.event() else { return Ok(None) };
            if erased.contains(&t.record.id) {
                event.order.customer = domain::scrubbed(&event.order.customer);
            }
            Ok(Some(codec.encode(&event)?))
        })
        .collect()
}

fn count(row: &AnyRow, column: &'static str) -> Result<u64, SalesError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| SalesError::CorruptRow { what: column, value: value.to_string() })
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::*;
    use crate::simulate::{SimulateOptions, Simulation};

    #[tokio::test]
    async fn relay_reads_in_order_above_a_high_water_mark() {
        let (_dir, store) = store().await;
        let options = SimulateOptions { orders: 50, seed: 9, ..SimulateOptions::default() };
        let transitions: Vec<_> = Simulation::new(&options).unwrap().collect();
        store.commit(&transitions).await.unwrap();

        let rows = store.unpublished(i64::MAX, 10_000).await.unwrap();
        assert_eq!(rows.len(), transitions.len());
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
        for (row, t) in rows.iter().zip(&transitions) {
            assert_eq!(row.order_id, t.record.order.order_id);
        }
        store.mark_published_through(rows[2].id).await.unwrap();
        let left = store.unpublished(i64::MAX, 10_000).await.unwrap();
        assert_eq!(left, rows[3..]);
        assert_eq!(store.unpublished(rows[5].id, 10_000).await.unwrap(), rows[3..=5], "none after `until`");
        assert_eq!(store.newest_outbox_id().await.unwrap(), rows.last().unwrap().id);
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!(counts, OutboxCounts { total: rows.len() as u64, unpublished: rows.len() as u64 - 3 });
        assert_eq!(store.outbox_rows_between(rows[0].id, rows[9].id).await.unwrap(), 9);

        // The orders table holds each order's final state.
        let last = transitions.iter().rev().find(|t| t.record.erased_at.is_none()).unwrap();
        assert_eq!(store.get(last.record.id).await.unwrap(), last.record);
        assert_eq!(store.list(None, 1000).await.unwrap().len(), 50);
    }
}
