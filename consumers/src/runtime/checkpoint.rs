//! The runtime's own table in every projection database: per partition, the next offset whose
//! records are applied, and when. It is written in the same transaction as the projection, so
//! the database itself says how far it got: `status` reads the last applied time from it, and a
//! shadow rebuild compares it with the live projection's.
//!
//! Beside it, the planner's table of measured apply rates ([`super::planner`]), made with it.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool, Row};

use edison_common::db::{Backend, Placeholders};
use edison_common::time::now_ms;

pub const TABLE: &str = "edison_checkpoints";

/// How far a projection has applied one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    /// Wall-clock time of the transaction, ms since the epoch.
    pub applied_at: i64,
}

/// Creates [`TABLE`] and the planner's [`RATES_TABLE`](super::planner::RATES_TABLE) if they are
/// missing.
pub async fn ensure_table(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS edison_checkpoints (
             topic        TEXT NOT NULL,
             partition_id INTEGER NOT NULL,
             next_offset  BIGINT NOT NULL,
             applied_at   BIGINT NOT NULL,
             PRIMARY KEY (topic, partition_id))",
    )
    .execute(pool)
    .await?;
    super::planner::ensure_rates_table(pool).await
}

/// Records `next_offsets` (partition → next offset) inside the caller's transaction.
pub async fn record(conn: &mut AnyConnection, topic: &str, next_offsets: &HashMap<i32, i64>) -> Result<(), sqlx::Error> {
    if next_offsets.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let sql = record_sql(Backend::of(conn), next_offsets.len());
    let mut query = sqlx::query(&sql);
    for (&partition, &next) in next_offsets {
        query = query.bind(topic).bind(partition).bind(next).bind(now);
    }
    query.execute(conn).await.map(|_| ())
}

/// [`record`], through SQLite's C API (the runtime's [`SqliteWriter`](super::table::SqliteWriter)).
pub fn record_sqlite(conn: &rusqlite::Connection, topic: &str, next_offsets: &HashMap<i32, i64>) -> rusqlite::Result<()> {
    if next_offsets.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut statement = conn.prepare(&record_sql(Backend::Sqlite, next_offsets.len()))?;
    for (row, (&partition, &next)) in next_offsets.iter().enumerate() {
        let at = row * 4;
        statement.raw_bind_parameter(at + 1, topic)?;
        statement.raw_bind_parameter(at + 2, partition)?;
        statement.raw_bind_parameter(at + 3, next)?;
        statement.raw_bind_parameter(at + 4, now)?;
    }
    statement.raw_execute().map(|_| ())
}

/// The statement recording `partitions` checkpoints: each moves only forward.
fn record_sql(backend: Backend, partitions: usize) -> String {
    let mut sql = String::from("INSERT INTO edison_checkpoints (topic, partition_id, next_offset, applied_at) VALUES ");
    Placeholders::new(backend).push_rows(&mut sql, partitions, 4);
    sql.push_str(
        " ON CONFLICT (topic, partition_id) DO UPDATE SET next_offset = excluded.next_offset, \
          applied_at = excluded.applied_at WHERE excluded.next_offset > edison_checkpoints.next_offset",
    );
    sql
}

/// Moves `topic`'s checkpoints back to `targets` (partition → offset) where they lie past them.
/// The runtime steps over records before a checkpoint undecoded, so a reset that should apply
/// events again must move the checkpoint with the group. Returns how many partitions moved.
pub async fn move_back(pool: &AnyPool, topic: &str, targets: &HashMap<i32, i64>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut moved = 0;
    for (&partition, &target) in targets {
        moved += sqlx::query(
            "UPDATE edison_checkpoints SET next_offset = $1 WHERE topic = $2 AND partition_id = $3 AND next_offset > $1",
        )
        .bind(target)
        .bind(topic)
        .bind(partition)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(moved)
}

/// Every partition's checkpoint for `topic`, by partition.
pub async fn read(pool: &AnyPool, topic: &str) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT topic, partition_id, next_offset, applied_at FROM edison_checkpoints \
         WHERE topic = $1 ORDER BY partition_id",
    )
    .bind(topic)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Checkpoint {
                topic: row.try_get("topic")?,
                partition: row.try_get("partition_id")?,
                next_offset: row.try_get("next_offset")?,
                applied_at: row.try_get("applied_at")?,
            })
        })
        .collect()
}

// ---- Measured apply rates (the rebuild planner) ----------------------------------------------
