//! Portable, batched SQL for projections: multi-row statements, sequence-gated upserts.

use sqlx::any::{AnyArguments, AnyRow};
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
/// `sequence` is higher, which makes replays, duplicates and rebalances harmless. Returns how
/// many rows were inserted or changed: 0 when the gate stopped every one.
pub async fn upsert<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[R],
    bind: impl for<'q> Fn(Query<'q, Any, AnyArguments<'q>>, &'q R) -> Query<'q, Any, AnyArguments<'q>>,
) -> Result<u64, sqlx::Error> {
    let upsert = Upsert::new(table, columns, &[]);
    let mut changed = 0;
    for chunk in statement_chunks(rows, columns.len()) {
        let sql = upsert.sql(Backend::of(conn), chunk.len(), "");
        let query = chunk.iter().fold(sqlx::query(&sql), |query, row| bind(query, row));
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// [`upsert`], returning `returning` of each row it inserted or changed (none of the rows the
/// gate stopped). An update sets each column to the new row's value, or to the expression
/// `updates` gives for it, which may read the row as it was (`{table}.column`): so a row can
/// say what this change added to it.
pub async fn upsert_returning<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    updates: &[(&str, &str)],
    returning: &str,
    rows: &[R],
    bind: impl for<'q> Fn(Query<'q, Any, AnyArguments<'q>>, &'q R) -> Query<'q, Any, AnyArguments<'q>>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let upsert = Upsert::new(table, columns, updates);
    let returning = format!(" RETURNING {returning}");
    let mut changed = Vec::new();
    for chunk in statement_chunks(rows, columns.len()) {
        let sql = upsert.sql(Backend::of(conn), chunk.len(), &returning);
        let query = chunk.iter().fold(sqlx::query(&sql), |query, row| bind(query, row));
        changed.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(changed)
}

/// A sequence-gated upsert's text, but for its rows' placeholders.
struct Upsert {
    /// `INSERT INTO table (columns) VALUES `
    insert: String,
    /// How many columns a row binds.
    columns: usize,
    /// ` ON CONFLICT .. WHERE` the gate.
    conflict: String,
}

impl Upsert {
    fn new(table: &str, columns: &[&str], updates: &[(&str, &str)]) -> Upsert {
        debug_assert!(columns.contains(&"order_id") && columns.contains(&"sequence"));
        let set: Vec<String> = columns
            .iter()
            .filter(|c| **c != "order_id")
            .map(|c| match updates.iter().find(|(column, _)| column == c) {
                Some((_, value)) => format!("{c} = {value}"),
                None => format!("{c} = excluded.{c}"),
            })
            .collect();
        Upsert {
            insert: format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")),
            columns: columns.len(),
            conflict: format!(
                " ON CONFLICT (order_id) DO UPDATE SET {} WHERE excluded.sequence > {table}.sequence",
                set.join(", ")
            ),
        }
    }

    /// The statement for `rows` rows, with `tail` (a `RETURNING` clause, or nothing) at the end.
    fn sql(&self, backend: Backend, rows: usize, tail: &str) -> String {
        let mut sql = self.insert.clone();
        Placeholders::new(backend).push_rows(&mut sql, rows, self.columns);
        sql.push_str(&self.conflict);
        sql.push_str(tail);
        sql
    }
}

/// `rows` cut for multi-row statements of `binds_per_row` variables a row:
/// `ROWS_PER_STATEMENT` rows while that many are left (fewer if the bind limit says so), then
/// the largest power of two that fits. So every statement has one of a few shapes, each compiled
/// once and then reused from sqlx's statement cache. Chunks of whatever was left would compile a
/// new statement for nearly every batch, and the cache would keep up to 100 of them per
/// connection: hundreds of MB for IN lists of thousands of ids.
pub fn statement_chunks<T>(rows: &[T], binds_per_row: usize) -> impl Iterator<Item = &[T]> {
    let full = ROWS_PER_STATEMENT.min(max_rows_per_statement(binds_per_row));
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = if rest.len() >= full { full } else { 1 << rest.len().ilog2() };
        let (chunk, after) = rest.split_at(len);
        rest = after;
        Some(chunk)
    })
}

/// Rows per multi-row statement: enough to spread the per-statement hop to the database over
/// many rows, few enough that compiling it is cheap.
const ROWS_PER_STATEMENT: usize = 512;

/// Deletes the rows of `order_ids` from `table`.
pub async fn delete_orders(conn: &mut AnyConnection, table: &str, order_ids: &[&str]) -> Result<(), sqlx::Error> {
    let backend = Backend::of(conn);
    for chunk in statement_chunks(order_ids, 1) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_a_few_shapes_and_take_every_row_once() {
        let lens = |n: usize, binds: usize| statement_chunks(&vec![0u8; n], binds).map(<[u8]>::len).collect::<Vec<_>>();
        assert_eq!(lens(0, 1), Vec::<usize>::new());
        assert_eq!(lens(1, 1), [1]);
        assert_eq!(lens(1300, 1), [512, 512, 256, 16, 4]);
        assert_eq!(lens(7000, 10).iter().sum::<usize>(), 7000);
        // 3000 binds a row leave room for 10 rows under SQLite's 32766.
        assert_eq!(lens(25, 3000), [10, 10, 4, 1]);
    }
}
