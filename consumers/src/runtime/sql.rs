//! Portable, batched SQL for projections: multi-row statements, sequence-gated upserts.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use edison_common::db::{max_rows_per_statement, Backend, Placeholders};

use super::Change;

/// The changes of a batch split into the latest events and the erased order ids.
pub fn split(changes: &[Change]) -> (Vec<&edison_schemas::OrderEvent>, Vec<&str>) {
    let mut upserts = Vec::new();
    let mut erasures = Vec::new();
    for change in changes {
        match change {
            Change::Upsert(event) => upserts.push(event),
            Change::Erase { order_id } => erasures.push(order_id.as_str()),
        }
    }
    (upserts, erasures)
}

/// Inserts or updates rows keyed by `order_id`, in as few statements as the bind limit allows.
///
/// `columns` must include `order_id` and `sequence`. An existing row changes only if the new
/// `sequence` is higher, which makes replays, duplicates and rebalances harmless.
pub async fn upsert<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[R],
    bind: impl for<'q> Fn(Query<'q, Any, AnyArguments<'q>>, &'q R) -> Query<'q, Any, AnyArguments<'q>>,
) -> Result<(), sqlx::Error> {
    debug_assert!(columns.contains(&"order_id") && columns.contains(&"sequence"));
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| **c != "order_id")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let backend = Backend::of(conn);
    let mut rest = rows;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(chunk_len(rest.len(), max_rows_per_statement(columns.len())));
        rest = after;
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        Placeholders::new(backend).push_rows(&mut sql, chunk.len(), columns.len());
        sql.push_str(&format!(
            " ON CONFLICT (order_id) DO UPDATE SET {} WHERE excluded.sequence > {table}.sequence",
            updates.join(", ")
        ));
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// How many of `remaining` rows the next statement takes: `ROWS_PER_STATEMENT` while that many
/// are left, then the largest power of two that fits. So every statement has one of a few
/// shapes, each compiled once and then reused from sqlx's statement cache, where a chunk of
/// whatever was left would be a new statement to compile for every batch.
fn chunk_len(remaining: usize, bind_limit_rows: usize) -> usize {
    let full = ROWS_PER_STATEMENT.min(bind_limit_rows);
    if remaining >= full {
        full
    } else {
        1 << remaining.ilog2()
    }
}

/// Rows per multi-row statement: enough to spread the per-statement hop to the database over
/// many rows, few enough that compiling it is cheap.
const ROWS_PER_STATEMENT: usize = 512;

/// Deletes the rows of `order_ids` from `table`.
pub async fn delete_orders(conn: &mut AnyConnection, table: &str, order_ids: &[&str]) -> Result<(), sqlx::Error> {
    let backend = Backend::of(conn);
    for chunk in order_ids.chunks(max_rows_per_statement(1)) {
        let mut sql = format!("DELETE FROM {table} WHERE order_id IN ");
        Placeholders::new(backend).push_rows(&mut sql, 1, chunk.len());
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
