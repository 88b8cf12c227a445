//! Projections that are one table: a row per order, written whole from the order's latest event
//! (every department but the mailer).
//!
//! Such a row says once what it binds ([`Table`]), and the runtime writes it through either of
//! two paths: sqlx ([`apply`]: on PostgreSQL a batch in one statement, on an in-memory SQLite
//! multi-row statements), or SQLite's C API on a thread of its own ([`apply_sqlite`], SQLite
//! files). sqlx sends each SQLite statement to a worker
//! thread, so it needs multi-row statements to spread that hop, and those cost the engine more
//! per row than a prepared single-row statement does; its `Any` arguments also copy each value
//! twice. Through the C API, replays of 430k events (3 interleaved runs each) took warehouse
//! 2.2-2.6 s -> 1.5-1.9 s, assembly 3.6-5.2 -> 3.0-3.1 s, customers 6.4-7.2 -> 4.2-4.9 s.

use std::collections::HashMap;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, TransactionBehavior};
use sqlx::AnyConnection;

use edison_common::db::Backend;
use edison_schemas::OrderEvent;

use super::sql::{self, Upsert};
use super::{checkpoint, Change};

/// One value a row binds, in its column's place (as JSON: a string, a number or null).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(text: &'a String) -> Value<'a> {
        Value::Text(Some(text))
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(text: &'a Option<String>) -> Value<'a> {
        Value::Text(text.as_deref())
    }
}

impl From<i64> for Value<'_> {
    fn from(int: i64) -> Self {
        Value::Int(Some(int))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(int: Option<i64>) -> Self {
        Value::Int(int)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Value::Text(text) => text.to_sql(),
            Value::Int(int) => int.to_sql(),
        }
    }
}

/// A row of a one-table projection.
pub trait Table: Sized + Send + Sync {
    /// The table.
    const TABLE: &'static str;
    /// Its columns, in the order [`Table::values`] gives them; `order_id` and `sequence` (the
    /// event's) among them, for the sequence gate.
    const COLUMNS: &'static [&'static str];

    /// The order's row after `event`; `None` if the department keeps none for it yet (billing,
    /// before payment).
    fn row(event: &OrderEvent) -> Option<Self>;

    /// What the row binds, in [`Table::COLUMNS`]' order.
    fn values(&self) -> impl IntoIterator<Item = Value<'_>>;
}

/// Applies one batch of `R`'s rows through sqlx: sequence-gated upserts, then the erasures.
pub async fn apply<R: Table>(conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
    let (events, erased) = sql::split(changes);
    // Each row with its event, whose order id and sequence the gate compares.
    let rows: Vec<(&OrderEvent, R)> = events.into_iter().filter_map(|event| Some((event, R::row(event)?))).collect();
    match Backend::of(conn) {
        Backend::Postgres => {
            let rows = sql::past_the_gate(conn, R::TABLE, &rows, gate_key).await?;
            let rows: Vec<&R> = rows.into_iter().map(|(_, row)| row).collect();
            upsert_postgres(conn, &rows).await?;
        }
        Backend::Sqlite => {
            sql::upsert(conn, R::TABLE, R::COLUMNS, &rows, gate_key, |query, (_, row)| {
                row.values().into_iter().fold(query, |query, value| match value {
                    Value::Text(text) => query.bind(text),
                    Value::Int(int) => query.bind(int),
                })
            })
            .await?;
        }
    }
    sql::delete_orders(conn, R::TABLE, &erased).await
}

/// What the sequence gate compares: the order and the event's sequence.
fn gate_key<'e, R>((event, _): &'e (&OrderEvent, R)) -> (&'e str, i64) {
    (&event.order.order_id, event.sequence)
}

/// PostgreSQL: the rows in one statement, whatever their number, bound as one JSON text (an
/// array of rows, each an array of its values) that the upsert unpacks: one round trip and one
/// plan per batch, instead of a statement of thousands of parameters per 512 rows. 430k events,
/// 3 interleaved runs each: warehouse 4.9-5.9 -> 4.4-5.1 s, dashboard 6.0-6.4 -> 4.8-6.0 s,
/// customers 7.0-7.6 -> 6.3-6.8 s. As `jsonb`: `->>` on `json` parses the row's text again for
/// each column (it was slower than the VALUES); objects through `json_to_recordset` gained
/// nothing.
async fn upsert_postgres<R: Table>(conn: &mut AnyConnection, rows: &[&R]) -> Result<(), sqlx::Error> {
    let Some(first) = rows.first() else { return Ok(()) };
    let columns: Vec<String> = first
        .values()
        .into_iter()
        .enumerate()
        .map(|(at, value)| match value {
            Value::Text(_) => format!("r->>{at}"),
            Value::Int(_) => format!("(r->>{at})::bigint"),
        })
        .collect();
    let select = format!("SELECT {} FROM jsonb_array_elements($1::jsonb) AS r", columns.join(", "));
    let sql = Upsert::new(R::TABLE, R::COLUMNS, &[]).from_select(&select);
    let values: Vec<Vec<Value<'_>>> = rows.iter().map(|row| row.values().into_iter().collect()).collect();
    let json = serde_json::to_string(&values).expect("text and integers serialize");
    sqlx::query(&sql).bind(json).execute(conn).await.map(|_| ())
}

/// Applies one batch of `R`'s rows through SQLite's C API, in the caller's transaction: one
/// prepared single-row statement per change, behind the same sequence gate as [`apply`].
pub fn apply_sqlite<R: Table>(conn: &Connection, changes: &[Change]) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(&Upsert::new(R::TABLE, R::COLUMNS, &[]).sql(Backend::Sqlite, 1, ""))?;
    let mut delete = conn.prepare_cached(&format!("DELETE FROM {} WHERE order_id = ?", R::TABLE))?;
    for change in changes {
        match change {
            Change::Upsert(event) => {
                let Some(row) = R::row(event) else { continue };
                for (at, value) in row.values().into_iter().enumerate() {
                    upsert.raw_bind_parameter(at + 1, value)?;
                }
                upsert.raw_execute()?;
            }
            Change::Erase { order_id } => {
                delete.execute([order_id])?;
            }
        }
    }
    Ok(())
}

/// How a projection's batch is applied through SQLite's C API ([`apply_sqlite`] for its row type).
pub type SqliteApply = fn(&Connection, &[Change]) -> rusqlite::Result<()>;

/// A thread of the runtime's own, with a SQLite connection of its own, applying batches through
/// the C API; beside sqlx's pool, which keeps serving migrations, reports and the rest. One
/// thread, not the blocking pool: its connection's page cache and its statements stay where
/// they are, and an applied batch is dropped after its answer went out, not before.
pub struct SqliteWriter {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A batch for the writer: its changes, the offsets to record, and where the outcome goes (with
/// the changes, if it failed, for a retry).
struct Job {
    changes: Vec<Change>,
    next_offsets: HashMap<i32, i64>,
    done: tokio::sync::oneshot::Sender<Result<(), (rusqlite::Error, Vec<Change>)>>,
}

impl SqliteWriter {
    /// Opens the database file at `path` (migrated already) with the departments' PRAGMAs, and
    /// starts the thread that applies `topic`'s batches to it with `apply`.
    pub fn start(path: &std::path::Path, topic: &str, apply: SqliteApply) -> rusqlite::Result<SqliteWriter> {
        let mut conn = Connection::open(path)?;
        for pragma in edison_common::db::SQLITE_PRAGMAS {
            conn.execute_batch(pragma)?;
        }
        let topic = topic.to_owned();
        let (jobs, received) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                for Job { changes, next_offsets, done } in received {
                    let applied = transaction(&mut conn, apply, &changes, &topic, &next_offsets);
                    // The poll loop may have stopped waiting (shut down): then nobody asks.
                    let _ = done.send(applied.map_err(|error| (error, changes)));
                }
            })
            .expect("a thread for the SQLite writer");
        Ok(SqliteWriter { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Applies `changes` and records `next_offsets` in one transaction; a failed one gives the
    /// changes back.
    pub async fn apply(&self, changes: Vec<Change>, next_offsets: &HashMap<i32, i64>) -> Result<(), (rusqlite::Error, Vec<Change>)> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let job = Job { changes, next_offsets: next_offsets.clone(), done };
        self.jobs.as_ref().expect("open until dropped").send(job).expect("the SQLite writer runs until dropped");
        outcome.await.expect("the SQLite writer panicked")
    }
}

impl Drop for SqliteWriter {
    /// Waits for the thread, so its connection is closed when the writer is gone: the last one
    /// to close writes the WAL back into the file.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One batch's transaction. It takes the write lock as it begins (IMMEDIATE), so a busy
/// database fails it before anything ran, and it can be retried whole.
fn transaction(
    conn: &mut Connection,
    apply: SqliteApply,
    changes: &[Change],
    topic: &str,
    next_offsets: &HashMap<i32, i64>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !changes.is_empty() {
        apply(&tx, changes)?;
    }
    checkpoint::record_sqlite(&tx, topic, next_offsets)?;
    tx.commit()
}

/// Whether a SQLite error means "busy right now" (SQLITE_BUSY, SQLITE_LOCKED): retry later.
pub fn is_transient(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    //! Both paths, sqlx's and SQLite's C API, apply the same batches to a table of every kind of
    //! value a row binds, and end on the rows written out by hand below.

    use super::*;
    use edison_schemas::{CarModel, Customer, EventType, Money, Order, OrderStatus};

    /// A row of `t`: every kind of value, nullable or not.
    #[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
    struct Row {
        order_id: String,
        sequence: i64,
        status: String,
        paid_at: Option<i64>,
        reason: Option<String>,
    }

    impl Table for Row {
        const TABLE: &'static str = "t";
        const COLUMNS: &'static [&'static str] = &["order_id", "sequence", "status", "paid_at", "reason"];

        /// No row for a cancelled order (as billing keeps none before payment).
        fn row(event: &OrderEvent) -> Option<Row> {
            let order = &event.order;
            (order.status != OrderStatus::Cancelled).then(|| Row {
                order_id: order.order_id.clone(),
                sequence: event.sequence,
                status: order.status.as_str().to_owned(),
                paid_at: order.paid_at,
                reason: order.cancel_reason.clone(),
            })
        }

        fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
            [(&self.order_id).into(), self.sequence.into(), (&self.status).into(), self.paid_at.into(), (&self.reason).into()]
        }
    }

    const CREATE: &str = "CREATE TABLE t (order_id TEXT PRIMARY KEY, sequence BIGINT NOT NULL, status TEXT NOT NULL, \
                          paid_at BIGINT, reason TEXT)";

    /// Order `id`'s event at `sequence`, paid at `paid_at` if given.
    fn event(id: &str, sequence: i64, paid_at: Option<i64>, reason: Option<&str>) -> Change {
        Change::Upsert(OrderEvent {
            event_id: format!("{id}-{sequence}"),
            event_type: EventType::Placed,
            sequence,
            occurred_at: 0,
            order: Order {
                order_id: id.to_owned(),
                customer: Customer { customer_id: "c".into(), name: "n".into(), email: "e@x.io".into(), shipping_address: "a".into() },
                model: CarModel::F,
                batteries: 1,
                price: Money { amount_cents: 1, currency: "EUR".into() },
                status: if paid_at.is_some() { OrderStatus::Paid } else { OrderStatus::Placed },
                expected_delivery: 0,
                placed_at: 0,
                paid_at,
                cancelled_at: None,
                cancel_reason: reason.map(str::to_owned),
            },
        })
    }

    fn row(id: &str, sequence: i64, paid_at: Option<i64>, reason: Option<&str>) -> Row {
        let status = if paid_at.is_some() { "paid" } else { "placed" }.to_owned();
        Row { order_id: id.into(), sequence, status, paid_at, reason: reason.map(str::to_owned) }
    }

    /// Three batches: new rows; older, newer and equal sequences, a cancelled order and an
    /// erasure; then an erased order coming back.
    fn batches() -> Vec<Vec<Change>> {
        let mut cancelled = event("d", 1, None, None);
        if let Change::Upsert(event) = &mut cancelled {
            event.order.status = OrderStatus::Cancelled;
        }
        vec![
            vec![event("a", 2, None, None), event("b", 1, None, Some("kept")), event("c", 1, None, None)],
            vec![
                event("a", 1, Some(5), None),
                event("b", 3, Some(7), None),
                Change::Erase { order_id: "c".into() },
                cancelled,
                event("e", 4, None, None),
            ],
            vec![event("c", 1, Some(9), None), event("e", 4, Some(1), Some("equal, so ignored"))],
        ]
    }

    fn expected() -> Vec<Row> {
        vec![row("a", 2, None, None), row("b", 3, Some(7), None), row("c", 1, Some(9), None), row("e", 4, None, None)]
    }

    async fn table(pool: &sqlx::AnyPool) -> Vec<Row> {
        sqlx::query_as("SELECT order_id, sequence, status, paid_at, reason FROM t ORDER BY order_id").fetch_all(pool).await.unwrap()
    }

    #[tokio::test]
    async fn sqlx_and_the_c_api_write_the_same_rows_behind_the_same_gate() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("sqlx.db").display());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query(CREATE).execute(&pool).await.unwrap();
        for batch in batches() {
            let mut tx = pool.begin().await.unwrap();
            apply::<Row>(&mut tx, &batch).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(table(&pool).await, expected(), "through sqlx");

        let path = dir.path().join("c.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(CREATE).unwrap();
        for batch in batches() {
            let tx = conn.transaction().unwrap();
            apply_sqlite::<Row>(&tx, &batch).unwrap();
            tx.commit().unwrap();
        }
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        assert_eq!(table(&pool).await, expected(), "through SQLite's C API");
    }

    #[test]
    fn a_busy_database_is_transient_and_a_wrong_statement_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let first = Connection::open(&path).unwrap();
        first.execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE").unwrap();
        let second = Connection::open(&path).unwrap();
        second.busy_timeout(std::time::Duration::ZERO).unwrap();
        let busy = second.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert!(is_transient(&busy), "{busy}");
        let wrong = first.execute_batch("INSERT INTO missing VALUES (1)").unwrap_err();
        assert!(!is_transient(&wrong), "{wrong}");
    }
}
