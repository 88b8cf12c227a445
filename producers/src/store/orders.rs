//! Orders: placing and changing them, each change committed with its outbox event in one
//! transaction, and reading them back.

use std::collections::HashMap;

use edison_common::db::{max_rows_per_statement, Backend, Placeholders};
use edison_common::time::now_ms;
use edison_schemas::{CarModel, Customer, Money, Order, OrderStatus};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use super::outbox::{encode_outbox, OutboxRow};
use super::{parse_uuid, Store};
use crate::domain::{self, Amendment, Change, Command, NewOrder, OrderRecord, Transition};
use crate::error::SalesError;

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

impl Store {
    /// Places a new order (priced from the catalogue) and queues its `PLACED` event.
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

    /// Records the payment of a placed order.
    pub async fn pay(&self, id: Uuid) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Pay).await
    }

    /// Changes the model (before payment) or the shipping address of an order.
    pub async fn amend(&self, id: Uuid, amendment: Amendment) -> Result<OrderRecord, SalesError> {
        self.change(id, Command::Amend(amendment)).await
    }

    /// Cancels an order, paid or not.
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

    /// The order's current state, or [`SalesError::NotFound`].
    pub async fn get(&self, id: Uuid) -> Result<OrderRecord, SalesError> {
        let sql = format!("SELECT {} FROM orders WHERE order_id = $1", ORDER_COLUMNS.join(", "));
        let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        row.as_ref().map(order_from_row).transpose()?.ok_or(SalesError::NotFound(id))
    }

    /// Whether the store has the order.
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
        let ids = self.append_outbox(&mut tx, transitions, &payloads).await?;
        self.upsert_orders(&mut tx, &latest_states(transitions)).await?;
        tx.commit().await.map_err(SalesError::from_write)?;
        let rows = transitions.iter().zip(ids).zip(payloads);
        Ok(rows.map(|((t, id), payload)| OutboxRow { id, order_id: t.record.order.order_id.clone(), payload }).collect())
    }

    /// Writes each of `latest` (one state per order) over the order's row, or inserts it.
    async fn upsert_orders(&self, tx: &mut Transaction<'_, Any>, latest: &[&OrderRecord]) -> Result<(), SalesError> {
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
            query.execute(&mut **tx).await.map_err(SalesError::from_write)?;
        }
        Ok(())
    }
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

/// An order status by its name, in any case: `placed`, `paid` or `cancelled`.
pub(crate) fn parse_status(text: &str) -> Option<OrderStatus> {
    [OrderStatus::Placed, OrderStatus::Paid, OrderStatus::Cancelled]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()))
}

#[cfg(test)]
mod tests {
    use edison_schemas::EventType;

    use super::super::tests::{new_order, store};
    use super::super::{OutboxCounts, OutboxEntry};
    use super::*;

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
}
