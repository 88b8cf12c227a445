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
/// `columns` must include `order_id` and `sequence`, and `key` gives a row's two. An existing
/// row changes only if the new `sequence` is higher, which makes replays, duplicates and
/// rebalances harmless. Returns how many rows were inserted or changed: 0 when the gate stopped
/// every one.
pub async fn upsert<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[R],
    key: impl Fn(&R) -> (&str, i64),
    bind: impl for<'q> Fn(Query<'q, Any, AnyArguments<'q>>, &'q R) -> Query<'q, Any, AnyArguments<'q>>,
) -> Result<u64, sqlx::Error> {
    let rows = past_the_gate(conn, table, rows, key).await?;
    let upsert = Upsert::new(table, columns, &[]);
    let mut changed = 0;
    for chunk in statement_chunks(&rows, columns.len()) {
        let sql = upsert.sql(Backend::of(conn), chunk.len(), "");
        let query = chunk.iter().fold(sqlx::query(&sql), |query, row| bind(query, *row));
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// [`upsert`], returning `returning` of each row it inserted or changed (none of the rows the
/// gate stopped). An update sets each column to the new row's value, or to the expression
/// `updates` gives for it, which may read the row as it was (`{table}.column`): so a row can
/// say what this change added to it.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_returning<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    updates: &[(&str, &str)],
    returning: &str,
    rows: &[R],
    key: impl Fn(&R) -> (&str, i64),
    bind: impl for<'q> Fn(Query<'q, Any, AnyArguments<'q>>, &'q R) -> Query<'q, Any, AnyArguments<'q>>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let rows = past_the_gate(conn, table, rows, key).await?;
    let upsert = Upsert::new(table, columns, updates);
    let returning = format!(" RETURNING {returning}");
    let mut changed = Vec::new();
    for chunk in statement_chunks(&rows, columns.len()) {
        let sql = upsert.sql(Backend::of(conn), chunk.len(), &returning);
        let query = chunk.iter().fold(sqlx::query(&sql), |query, row| bind(query, *row));
        changed.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(changed)
}

/// How many rows of a batch are first checked against the gate, and the smallest batch checked.
const GATE_SAMPLE: usize = 64;

/// Of `rows`, those the sequence gate lets through, or simply all of them: unless a sample
/// of the first says the gate stops most (a replay of what the database holds already, such as
/// a reset group's), every row goes to the upsert. In a replay, asking for the stored sequences
/// first is cheaper than the upsert: a gated upsert that changes nothing costs about what an
/// insert does, binding and comparing the whole row. The upsert's own gate still decides; this
/// only leaves out rows it would stop. Small batches (a caught-up department) are not sampled.
pub(super) async fn past_the_gate<'r, R>(
    conn: &mut AnyConnection,
    table: &str,
    rows: &'r [R],
    key: impl Fn(&R) -> (&str, i64),
) -> Result<Vec<&'r R>, sqlx::Error> {
    if rows.len() < GATE_SAMPLE {
        return Ok(rows.iter().collect());
    }
    let (sample, rest) = rows.split_at(GATE_SAMPLE);
    let through_sample = advancing(conn, table, sample, &key).await?;
    if through_sample.len() * 2 > sample.len() {
        return Ok(rows.iter().collect());
    }
    let mut through = through_sample;
    for chunk in statement_chunks(rest, 3) {
        through.extend(advancing(conn, table, chunk, &key).await?);
    }
    Ok(through)
}

/// Those of `rows` whose `sequence` is above their stored row's, or that have none yet.
async fn advancing<'r, R>(
    conn: &mut AnyConnection,
    table: &str,
    rows: &'r [R],
    key: &impl Fn(&R) -> (&str, i64),
) -> Result<Vec<&'r R>, sqlx::Error> {
    // A scalar subquery, not a join: each row probes the primary key on both engines.
    let mut sql = String::from("SELECT v.column1 FROM (VALUES ");
    Placeholders::new(Backend::of(conn)).push_rows(&mut sql, rows.len(), 3);
    sql.push_str(&format!(
        ") AS v WHERE COALESCE((SELECT sequence FROM {table} WHERE {table}.order_id = v.column2), 0) < v.column3"
    ));
    let query = rows.iter().enumerate().fold(sqlx::query_scalar::<_, i64>(&sql), |query, (at, row)| {
        let (order_id, sequence) = key(row);
        query.bind(at as i64).bind(order_id).bind(sequence)
    });
    let positions = query.fetch_all(&mut *conn).await?;
    Ok(positions.into_iter().map(|at| &rows[at as usize]).collect())
}

/// A sequence-gated upsert's text, but for its rows' placeholders.
pub struct Upsert {
    /// `INSERT INTO table (columns)`
    insert: String,
    /// How many columns a row binds.
    columns: usize,
    /// ` ON CONFLICT .. WHERE` the gate.
    conflict: String,
}

impl Upsert {
    /// `updates` as for [`upsert_returning`]; empty sets each column to the new row's value.
    pub fn new(table: &str, columns: &[&str], updates: &[(&str, &str)]) -> Upsert {
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
            insert: format!("INSERT INTO {table} ({})", columns.join(", ")),
            columns: columns.len(),
            conflict: format!(
                " ON CONFLICT (order_id) DO UPDATE SET {} WHERE excluded.sequence > {table}.sequence",
                set.join(", ")
            ),
        }
    }

    /// The statement for `rows` rows, with `tail` (a `RETURNING` clause, or nothing) at the end.
    pub fn sql(&self, backend: Backend, rows: usize, tail: &str) -> String {
        let mut sql = format!("{} VALUES ", self.insert);
        Placeholders::new(backend).push_rows(&mut sql, rows, self.columns);
        sql.push_str(&self.conflict);
        sql.push_str(tail);
        sql
    }

    /// The statement taking its rows from `select`, a query of the columns in their order.
    pub fn from_select(&self, select: &str) -> String {
        format!("{} {select}{}", self.insert, self.conflict)
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

    /// (order id, sequence, value): `order-N` for N in `ids`, all at `sequence`.
    fn rows(ids: std::ops::Range<usize>, sequence: i64, value: &str) -> Vec<(String, i64, String)> {
        ids.map(|n| (format!("order-{n:03}"), sequence, value.to_owned())).collect()
    }

    fn key(row: &(String, i64, String)) -> (&str, i64) {
        (&row.0, row.1)
    }

    async fn apply(conn: &mut AnyConnection, rows: &[(String, i64, String)]) -> u64 {
        let columns = ["order_id", "sequence", "value"];
        upsert(conn, "t", &columns, rows, key, |query, row| query.bind(&row.0).bind(row.1).bind(&row.2)).await.unwrap()
    }

    async fn table(conn: &mut AnyConnection) -> Vec<(String, i64, String)> {
        sqlx::query_as("SELECT order_id, sequence, value FROM t ORDER BY order_id").fetch_all(conn).await.unwrap()
    }

    #[tokio::test]
    async fn a_replay_sends_only_what_advances_and_the_gate_keeps_every_row_that_does() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (order_id TEXT PRIMARY KEY, sequence BIGINT NOT NULL, value TEXT NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(apply(&mut conn, &rows(0..200, 5, "first")).await, 200);

        // A replay: 200 rows the table holds, at the same or a lower sequence, but for a few
        // that advance, in the sample and after it, and 3 orders the table lacks.
        let mut replay = rows(0..200, 5, "again");
        replay[10..20].iter_mut().for_each(|row| row.1 = 3);
        let advancing = [7, 40, 63, 64, 150, 199];
        for at in advancing {
            replay[at] = (replay[at].0.clone(), 6, "advanced".to_owned());
        }
        replay.extend(rows(200..203, 1, "new"));
        let expected: Vec<&str> =
            advancing.iter().map(|at| replay[*at].0.as_str()).chain(["order-200", "order-201", "order-202"]).collect();
        let through: Vec<&str> =
            past_the_gate(&mut conn, "t", &replay, key).await.unwrap().iter().map(|row| row.0.as_str()).collect();
        assert_eq!(through, expected, "a replay's upsert gets just the rows that advance");
        assert_eq!(apply(&mut conn, &replay).await, 9);
        let after = table(&mut conn).await;
        for (order_id, sequence, value) in &after {
            let (want_sequence, want_value) = match expected.contains(&order_id.as_str()) {
                true if order_id.as_str() >= "order-200" => (1, "new"),
                true => (6, "advanced"),
                false => (5, "first"),
            };
            assert_eq!((*sequence, value.as_str()), (want_sequence, want_value), "{order_id}");
        }
        assert_eq!(after.len(), 203);

        // Mostly new or advancing: every row goes to the upsert, whose gate stops the rest.
        let mut live = rows(0..100, 7, "live");
        live[0].1 = 2;
        let through = past_the_gate(&mut conn, "t", &live, key).await.unwrap();
        assert_eq!(through.len(), 100, "not a replay: nothing is asked first");
        assert_eq!(apply(&mut conn, &live).await, 99, "the upsert's gate stopped the one behind");
    }
}
