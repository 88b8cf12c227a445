//! The Sales store: the `orders` table (current state) and the transactional `outbox`.
//!
//! Every change is one transaction that upserts the order row and appends its event to the
//! outbox, so the store and the events can never disagree (no dual write). The relay publishes
//! the outbox later and records how far it got as one high-water mark (`relay_progress`).

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use edison_common::db::{self, max_rows_per_statement, Backend, Database, Placeholders};
use edison_schemas::{CarModel, Codec, Customer, Money, Order, OrderStatus};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::migrate::Migrator;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::domain::{self, Amendment, Change, Command, NewOrder, OrderRecord, Transition};
use crate::error::SalesError;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

const ORDER_COLUMNS: [&str; 17] = [
    "order_id",
    "sequence",
    "status",
    "customer_id",
    "customer_name",
    "email",
    "shipping_address",
    "model",
    "batteries",
    "price_cents",
    "currency",
    "expected_delivery",
    "placed_at",
    "paid_at",
    "cancelled_at",
    "cancel_reason",
    "erased_at",
];
const OUTBOX_COLUMNS: [&str; 6] = ["order_id", "sequence", "event_id", "event_type", "payload", "created_at"];
/// Names the relay's lease and its high-water mark.
const RELAY: &str = "outbox";

/// An outbox row as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub order_id: String,
    /// The Avro single-object encoded event, or `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// One outbox row of an order, for `show` and for tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: String,
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    pub created_at: i64,
    /// The broker has acknowledged it.
    pub published: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub total: u64,
    pub unpublished: u64,
}

pub struct Store {
    db: Database,
    codec: Codec,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://PATH`, a file path,
    /// or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, SalesError> {
        // `db::connect` takes the migrator, so the backend is read from the URL here first.
        let migrator = match Backend::of_url(url) {
            Backend::Postgres => &POSTGRES,
            Backend::Sqlite => &SQLITE,
        };
        let db = db::connect(url, migrator).await?;
        Ok(Store { db, codec: Codec::new()? })
    }

    /// The URL without its password.
    pub fn display_url(&self) -> &str {
        &self.db.display_url
    }

    pub async fn place(&self, new: &NewOrder) -> Result<OrderRecord, SalesError> {
        let now = now_ms();
        let mut rng = rand::rng();
        let record = domain::place(new, domain::uuid_v7(now, &mut rng), domain::uuid_v7(now, &mut rng), now)?;
        let event_id = domain::uuid_v7(now, &mut rng);
        let placed = Transition {
            record,
            change: Change::Event(edison_schemas::EventType::Placed),
            event_id,
            occurred_at: now,
        };
        self.commit(std::slice::from_ref(&placed)).await?;
        Ok(placed.record)
    }

    pub async fn pay(&self, id: Uuid) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Pay).await
    }

    pub async fn amend(&self, id: Uuid, amendment: Amendment) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Amend(amendment)).await
    }

    pub async fn cancel(&self, id: Uuid, reason: Option<String>) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Cancel { reason }).await
    }

    /// GDPR erasure: blanks the personal data in the order row and in every stored event of the
    /// order, and queues a tombstone. Events still unpublished go out scrubbed, before the
    /// tombstone, so departments still learn e.g. of a cancellation, but never see the data.
    pub async fn erase(&self, id: Uuid) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Erase).await
    }

    /// Reads the order, applies `command` and commits the result. A concurrent change to the
    /// same order makes the commit fail on the outbox's (order_id, sequence) key.
    async fn change(&self, id: Uuid, command: Command) -> Result<OrderRecord, SalesError> {
        let current = self.get(id).await?;
        let now = now_ms();
        let (record, change) = current.apply(&command, now)?;
        let transition =
            Transition { record, change, event_id: domain::uuid_v7(now, &mut rand::rng()), occurred_at: now };
        self.commit(std::slice::from_ref(&transition)).await?;
        Ok(transition.record)
    }

    pub async fn get(&self, id: Uuid) -> Result<OrderRecord, SalesError> {
        let sql = format!("SELECT {} FROM orders WHERE order_id = $1", ORDER_COLUMNS.join(", "));
        let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        row.as_ref().map(order_from_row).transpose()?.ok_or(SalesError::NotFound(id))
    }

    pub async fn exists(&self, id: Uuid) -> Result<bool, SalesError> {
        let row = sqlx::query("SELECT 1 FROM orders WHERE order_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The newest orders first (UUIDv7 ids sort by time), optionally of one status.
    pub async fn list(&self, status: Option<OrderStatus>, limit: u32) -> Result<Vec<OrderRecord>, SalesError> {
        let columns = ORDER_COLUMNS.join(", ");
        let rows = match status {
            Some(status) => {
                let sql = format!(
                    "SELECT {columns} FROM orders WHERE status = $1 ORDER BY order_id DESC LIMIT $2"
                );
                sqlx::query(&sql).bind(status.as_str()).bind(i64::from(limit)).fetch_all(&self.db.pool).await?
            }
            None => {
                let sql = format!("SELECT {columns} FROM orders ORDER BY order_id DESC LIMIT $1");
                sqlx::query(&sql).bind(i64::from(limit)).fetch_all(&self.db.pool).await?
            }
        };
        rows.iter().map(order_from_row).collect()
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

    /// Commits `transitions` in one transaction: see [`Store::commit_encoded`].
    pub(crate) async fn commit(&self, transitions: &[Transition]) -> Result<Vec<OutboxRow>, SalesError> {
        self.commit_encoded(transitions, encode_outbox(&self.codec, transitions)?).await
    }

    /// Commits `transitions`, whose outbox payloads [`encode_outbox`] made, in one transaction:
    /// scrubs the stored events of orders erased here, appends the outbox rows in order, and
    /// upserts each order's latest state. Multi-row statements keep the per-statement round trip
    /// off the per-row cost. Returns the outbox rows as committed, so a relay can publish them
    /// without reading them back.
    pub(crate) async fn commit_encoded(
        &self,
        transitions: &[Transition],
        payloads: Vec<Option<Vec<u8>>>,
    ) -> Result<Vec<OutboxRow>, SalesError> {
        let erased = transitions.iter().filter(|t| t.change == Change::Erased).map(|t| t.record.id);
        // The relay's high-water mark needs ids to commit in id order: writers take turns.
        let mut tx = match self.db.backend {
            // IMMEDIATE takes the write lock up front: a deferred transaction that reads first
            // (the erasure scrub) fails with SQLITE_BUSY_SNAPSHOT if another writer committed.
            Backend::Sqlite => self.db.pool.begin_with("BEGIN IMMEDIATE").await?,
            // Readers go on beside this lock.
            Backend::Postgres => {
                let mut tx = self.db.pool.begin().await?;
                sqlx::query("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
                tx
            }
        };
        for id in erased {
            self.scrub_outbox(&mut tx, id).await?;
        }
        let mut ids = Vec::with_capacity(transitions.len());
        let outbox: Vec<_> = transitions.iter().zip(&payloads).collect();
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
            let mut chunk_ids: Vec<i64> = query.fetch_all(&mut *tx).await.map_err(SalesError::from_write)?;
            // RETURNING promises no order, but both backends number rows in VALUES order.
            chunk_ids.sort_unstable();
            ids.extend(chunk_ids);
        }
        let latest = latest_states(transitions);
        let updates: Vec<String> =
            ORDER_COLUMNS[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
        for chunk in latest.chunks(max_rows_per_statement(ORDER_COLUMNS.len())) {
            let mut sql = format!("INSERT INTO orders ({}) VALUES ", ORDER_COLUMNS.join(", "));
            Placeholders::new(self.db.backend).push_rows(&mut sql, chunk.len(), ORDER_COLUMNS.len());
            sql.push_str(" ON CONFLICT (order_id) DO UPDATE SET ");
            sql.push_str(&updates.join(", "));
            let mut query = sqlx::query(&sql);
            for record in chunk {
                let order = &record.order;
                query = query
                    .bind(&order.order_id)
                    .bind(record.sequence)
                    .bind(order.status.as_str())
                    .bind(&order.customer.customer_id)
                    .bind(&order.customer.name)
                    .bind(&order.customer.email)
                    .bind(&order.customer.shipping_address)
                    .bind(order.model.as_str())
                    .bind(i64::from(order.batteries))
                    .bind(order.price.amount_cents)
                    .bind(&order.price.currency)
                    .bind(i64::from(order.expected_delivery))
                    .bind(order.placed_at)
                    .bind(order.paid_at)
                    .bind(order.cancelled_at)
                    .bind(order.cancel_reason.as_deref())
                    .bind(record.erased_at);
            }
            query.execute(&mut *tx).await.map_err(SalesError::from_write)?;
        }
        tx.commit().await.map_err(SalesError::from_write)?;
        let rows = transitions.iter().zip(ids).zip(payloads);
        Ok(rows.map(|((t, id), payload)| OutboxRow { id, order_id: t.record.order.order_id.clone(), payload }).collect())
    }

    /// Re-encodes every stored event of the order with the customer's personal data blanked.
    async fn scrub_outbox(&self, tx: &mut Transaction<'_, Any>, id: Uuid) -> Result<(), SalesError> {
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

    /// The oldest `limit` unpublished rows with ids up to `until`, in publishing order.
    #[cfg(test)]
    async fn unpublished(&self, until: i64, limit: usize) -> Result<Vec<OutboxRow>, SalesError> {
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

    /// The id of the last row the broker acknowledged, with every row before it.
    pub(crate) async fn published_through(&self) -> Result<i64, SalesError> {
        let sql = "SELECT published_through FROM relay_progress WHERE name = $1";
        Ok(sqlx::query_scalar(sql).bind(RELAY).fetch_one(&self.db.pool).await?)
    }

    /// Records that the broker acknowledged every row up to `id`. Never moves the mark back.
    pub(crate) async fn mark_published_through(&self, id: i64) -> Result<(), SalesError> {
        sqlx::query("UPDATE relay_progress SET published_through = $1 WHERE name = $2 AND published_through < $1")
            .bind(id)
            .bind(RELAY)
            .execute(&self.db.pool)
            .await?;
        Ok(())
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

    /// Takes (or renews) the relay lease for `holder` until `now + ttl_ms`; false if another live
    /// holder has it.
    pub(crate) async fn acquire_lease(&self, holder: &str, now: i64, ttl_ms: i64) -> Result<bool, SalesError> {
        let result = sqlx::query(
            "INSERT INTO relay_lease (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE relay_lease.holder = excluded.holder OR relay_lease.expires_at < $4",
        )
        .bind(RELAY)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Extends the lease of `holder` until `now + ttl_ms`; false if another relay took it since
    /// (after it expired), which means that relay fenced this one.
    pub(crate) async fn renew_lease(&self, holder: &str, now: i64, ttl_ms: i64) -> Result<bool, SalesError> {
        let result = sqlx::query("UPDATE relay_lease SET expires_at = $1 WHERE name = $2 AND holder = $3")
            .bind(now + ttl_ms)
            .bind(RELAY)
            .bind(holder)
            .execute(&self.db.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub(crate) async fn release_lease(&self, holder: &str) -> Result<(), SalesError> {
        sqlx::query("UPDATE relay_lease SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(RELAY)
            .bind(holder)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

/// The wall clock in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
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

/// Each order's last state in `transitions`, in order of first appearance. One upsert statement
/// must not touch a row twice (PostgreSQL refuses).
fn latest_states(transitions: &[Transition]) -> Vec<&OrderRecord> {
    let mut position = HashMap::with_capacity(transitions.len());
    let mut latest: Vec<&OrderRecord> = Vec::with_capacity(transitions.len());
    for t in transitions {
        match position.get(&t.record.id) {
            Some(&index) => latest[index] = &t.record,
            None => {
                position.insert(t.record.id, latest.len());
                latest.push(&t.record);
            }
        }
    }
    latest
}

fn order_from_row(row: &AnyRow) -> Result<OrderRecord, SalesError> {
    let text = |column: &str| row.try_get::<String, _>(column);
    let int = |column: &'static str| -> Result<i32, SalesError> {
        let value: i64 = row.try_get(column)?;
        i32::try_from(value).map_err(|_| SalesError::CorruptRow { what: column, value: value.to_string() })
    };
    let model = text("model")?;
    let status = text("status")?;
    let order_id = text("order_id")?;
    Ok(OrderRecord {
        id: parse_uuid(&order_id)?,
        order: Order {
            order_id,
            customer: Customer {
                customer_id: text("customer_id")?,
                name: text("customer_name")?,
                email: text("email")?,
                shipping_address: text("shipping_address")?,
            },
            model: CarModel::parse(&model).ok_or(SalesError::CorruptRow { what: "model", value: model })?,
            batteries: int("batteries")?,
            price: Money { amount_cents: row.try_get("price_cents")?, currency: text("currency")? },
            status: parse_status(&status).ok_or(SalesError::CorruptRow { what: "status", value: status })?,
            expected_delivery: int("expected_delivery")?,
            placed_at: row.try_get("placed_at")?,
            paid_at: row.try_get("paid_at")?,
            cancelled_at: row.try_get("cancelled_at")?,
            cancel_reason: row.try_get("cancel_reason")?,
        },
        sequence: row.try_get("sequence")?,
        erased_at: row.try_get("erased_at")?,
    })
}

pub(crate) fn parse_status(text: &str) -> Option<OrderStatus> {
    [OrderStatus::Placed, OrderStatus::Paid, OrderStatus::Cancelled]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()))
}

fn parse_uuid(text: &str) -> Result<Uuid, SalesError> {
    Uuid::parse_str(text).map_err(|_| SalesError::CorruptRow { what: "uuid", value: text.to_owned() })
}

fn count(row: &AnyRow, column: &'static str) -> Result<u64, SalesError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| SalesError::CorruptRow { what: column, value: value.to_string() })
}

#[cfg(test)]
mod tests {
    use edison_schemas::EventType;

    use super::*;
    use crate::simulate::{SimulateOptions, Simulation};

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/sales.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    fn new_order() -> NewOrder {
        NewOrder {
            model: CarModel::P,
            customer_name: "Grace Hopper".into(),
            email: "grace@example.com".into(),
            address: "1 Compiler Way".into(),
        }
    }

    /// Everything a refused command must leave untouched.
    async fn snapshot(store: &Store, id: Uuid) -> (OrderRecord, Vec<OutboxEntry>) {
        (store.get(id).await.unwrap(), store.outbox_entries(id).await.unwrap())
    }

    #[tokio::test]
    async fn a_change_writes_the_order_and_its_event_together() {
        let (_dir, store) = store().await;
        let placed = store.place(&new_order()).await.unwrap();
        let paid = store.pay(placed.id).await.unwrap();
        assert_eq!(store.get(placed.id).await.unwrap(), paid);

        let entries = store.outbox_entries(placed.id).await.unwrap();
        assert_eq!(entries.iter().map(|e| (e.sequence, e.event_type.as_str())).collect::<Vec<_>>(), [(1, "PLACED"), (2, "PAID")]);
        assert!(entries.iter().all(|e| !e.published));
        let event = store.codec.decode(entries[1].payload.as_deref().unwrap()).unwrap();
        assert_eq!((event.event_type, event.sequence), (EventType::Paid, 2));
        assert_eq!(event.event_id, entries[1].event_id.to_string());
        assert_eq!(event.order, paid.order);
        assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { total: 2, unpublished: 2 });
    }

    #[tokio::test]
    async fn refused_commands_change_nothing() {
        let (_dir, store) = store().await;
        let id = store.place(&new_order()).await.unwrap().id;
        store.pay(id).await.unwrap();
        let before = snapshot(&store, id).await;
        assert!(matches!(store.pay(id).await, Err(SalesError::AlreadyPaid(_))));
        let model = Amendment { model: Some(CarModel::H), address: None };
        assert!(matches!(store.amend(id, model).await, Err(SalesError::ModelChangeAfterPayment(_))));
        assert_eq!(snapshot(&store, id).await, before);

        let unknown = Uuid::now_v7();
        assert!(matches!(store.pay(unknown).await, Err(SalesError::NotFound(u)) if u == unknown));
        let invalid = NewOrder { email: "nope".into(), ..new_order() };
        assert!(matches!(store.place(&invalid).await, Err(SalesError::InvalidEmail(_))));
        assert_eq!(store.outbox_counts().await.unwrap().total, 2);
        assert_eq!(store.list(None, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_stale_change_conflicts_and_rolls_back() {
        let (_dir, store) = store().await;
        let placed = store.place(&new_order()).await.unwrap();
        let stale = |command| {
            let (record, change) = placed.apply(&command, 5).unwrap();
            Transition { record, change, event_id: Uuid::now_v7(), occurred_at: 5 }
        };
        store.commit(&[stale(Command::Pay)]).await.unwrap();
        let result = store.commit(&[stale(Command::Cancel { reason: None })]).await;
        assert!(matches!(result, Err(SalesError::Conflict)), "{result:?}");
        assert_eq!(store.get(placed.id).await.unwrap().order.status, OrderStatus::Paid);
        assert_eq!(store.outbox_counts().await.unwrap().total, 2);
    }

    #[tokio::test]
    async fn erasure_scrubs_published_and_queued_events() {
        let (_dir, store) = store().await;
        let id = store.place(&new_order()).await.unwrap().id;
        let first = store.unpublished(i64::MAX, 10).await.unwrap();
        store.mark_published_through(first[0].id).await.unwrap();
        store.pay(id).await.unwrap();
        let erased = store.erase(id).await.unwrap();
        assert_eq!(erased.order.customer.email, "");
        assert_eq!(store.get(id).await.unwrap(), erased);

        let entries = store.outbox_entries(id).await.unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!((entries[2].event_type.as_str(), entries[2].payload.as_ref()), ("ERASED", None));
        assert_eq!(entries.iter().map(|e| e.published).collect::<Vec<_>>(), [true, false, false]);
        for entry in &entries[..2] {
            let event = store.codec.decode(entry.payload.as_deref().unwrap()).unwrap();
            assert_eq!(event.order.customer, domain::scrubbed(&event.order.customer));
            assert_eq!(event.order.model, CarModel::P, "business data stays");
        }
        assert!(matches!(store.cancel(id, None).await, Err(SalesError::Erased(_))));
    }

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
        store.mark_published_through(rows[1].id).await.unwrap();
        assert_eq!(store.published_through().await.unwrap(), rows[2].id, "the mark never moves back");
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

    /// A store from before the high-water mark (migrations 0001 and 0002), where the relay
    /// stamped each row, upgrades without losing an order or re-sending what is published.
    #[tokio::test]
    async fn upgrading_turns_stamped_rows_into_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let current = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for name in ["0001_orders_outbox.sql", "0002_drop_orders_by_status.sql"] {
            std::fs::copy(current.join(name), old.join(name)).unwrap();
        }
        let url = format!("sqlite://{}/sales.db", dir.path().display());
        let before = db::connect(&url, &Migrator::new(old.as_path()).await.unwrap()).await.unwrap();
        let placed = Simulation::new(&SimulateOptions { orders: 1, ..SimulateOptions::default() }).unwrap().next().unwrap();
        let order = &placed.record.order;
        sqlx::query(
            "INSERT INTO orders VALUES ($1, 1, 'PLACED', $2, $3, $4, $5, 'MODEL_P', $6, $7, 'EUR', $8, $9, NULL, NULL, NULL, NULL)",
        )
        .bind(&order.order_id)
        .bind(&order.customer.customer_id)
        .bind(&order.customer.name)
        .bind(&order.customer.email)
        .bind(&order.customer.shipping_address)
        .bind(i64::from(order.batteries))
        .bind(order.price.amount_cents)
        .bind(i64::from(order.expected_delivery))
        .bind(order.placed_at)
        .execute(&before.pool)
        .await
        .unwrap();
        // Rows 1 and 2 published, 3 not, 4 published after 3 failed (an old relay could).
        for (sequence, published_at) in [(1, Some(10)), (2, Some(10)), (3, None), (4, Some(11))] {
            sqlx::query("INSERT INTO outbox (order_id, sequence, event_id, event_type, payload, created_at, published_at) VALUES ($1, $2, $3, 'PLACED', NULL, 1, $4)")
                .bind(&order.order_id)
                .bind(sequence)
                .bind(Uuid::now_v7().to_string())
                .bind(published_at)
                .execute(&before.pool)
                .await
                .unwrap();
        }
        before.pool.close().await;

        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.published_through().await.unwrap(), 2);
        assert_eq!(store.unpublished(i64::MAX, 10).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(store.get(placed.record.id).await.unwrap().order, *order);
    }

    #[tokio::test]
    async fn one_relay_holds_the_lease_at_a_time() {
        let (_dir, store) = store().await;
        assert!(store.acquire_lease("a", 1000, 500).await.unwrap());
        assert!(store.acquire_lease("a", 1100, 500).await.unwrap(), "renewal");
        assert!(!store.acquire_lease("b", 1200, 500).await.unwrap());
        assert!(store.acquire_lease("b", 1601, 500).await.unwrap(), "after expiry");
        store.release_lease("b").await.unwrap();
        assert!(!store.renew_lease("a", 1650, 500).await.unwrap(), "a lost it to b: a was fenced");
        assert!(store.acquire_lease("a", 1700, 500).await.unwrap(), "after release");
        assert!(store.renew_lease("a", 1800, 500).await.unwrap());
        assert!(!store.acquire_lease("b", 2200, 500).await.unwrap(), "renewed until 2300");
    }
}
