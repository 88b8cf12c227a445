//! Order events for the departments' unit tests: one order, walked through its life; and a
//! database in memory to apply them to.

use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use edison_schemas::{CarModel, Customer, EventType, Money, Order, OrderEvent, OrderStatus};

use crate::runtime::{Change, Projection};

/// A fresh database in memory with `migrator`'s schema, shared by the pool's connections: a
/// named in-memory SQLite database (`file:NAME?mode=memory&cache=shared`, the `:` escaped, or the
/// URL would read it as a port). Plain `:memory:` would give each connection one of its own.
pub async fn memory_database(migrator: &'static Migrator) -> AnyPool {
    let url = format!("sqlite:{MEMORY_NAME}{}?mode=memory&cache=shared", uuid::Uuid::now_v7().simple());
    edison_common::db::connect(&url, migrator).await.expect("an in-memory database").pool
}

/// How the names of [`memory_database`]'s databases begin in their URLs; SQLite knows them as
/// `file:test-…`.
const MEMORY_NAME: &str = "file%3Atest-";

/// Applies `changes` as one batch, in one transaction, as the runtime does: through SQLite's C
/// API if the projection offers that ([`Projection::APPLY_SQLITE`]), as on a SQLite file.
pub async fn apply_batch<P: Projection>(projection: &P, pool: &AnyPool, changes: &[Change]) {
    if let Some(apply) = P::APPLY_SQLITE {
        let url = pool.connect_options().database_url.to_string();
        let name = url.split_once(MEMORY_NAME).and_then(|(_, rest)| rest.split('?').next()).expect("a memory_database");
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_MEMORY
            | rusqlite::OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        let mut conn = rusqlite::Connection::open_with_flags(format!("file:test-{name}"), flags).unwrap();
        let tx = conn.transaction().unwrap();
        apply(&tx, changes).unwrap();
        return tx.commit().unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    projection.apply(&mut tx, changes).await.unwrap();
    tx.commit().await.unwrap();
}

/// 2025-11-24T16:00:00Z.
pub const PLACED_AT: i64 = 1_764_000_000_000;
pub const DAY_MS: i64 = 86_400_000;
/// 2026-03-30, a Monday in ISO week 2026-W14.
pub const DELIVERY_DAY: i32 = 20_542;

/// A Model P order as placed: EUR 69,900.00, 3 batteries, expected on 2026-03-30. Sequence 1.
pub fn placed() -> OrderEvent {
    OrderEvent {
        event_id: "0196a000-0000-7000-8000-000000000001".into(),
        event_type: EventType::Placed,
        sequence: 1,
        occurred_at: PLACED_AT,
        order: Order {
            order_id: "0196a000-0000-7000-8000-00000000beef".into(),
            customer: Customer {
                customer_id: "customer-1".into(),
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                shipping_address: "12 Analytical Row, London".into(),
            },
            model: CarModel::P,
            batteries: 3,
            price: Money { amount_cents: 6_990_000, currency: "EUR".into() },
            status: OrderStatus::Placed,
            expected_delivery: DELIVERY_DAY,
            placed_at: PLACED_AT,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
        },
    }
}

/// The event after `event`: `event_type` at `at`, with `change` applied to the order.
pub fn next(mut event: OrderEvent, event_type: EventType, at: i64, change: impl FnOnce(&mut Order)) -> OrderEvent {
    event.sequence += 1;
    event.event_type = event_type;
    event.occurred_at = at;
    change(&mut event.order);
    event
}

pub fn pay(event: OrderEvent, at: i64) -> OrderEvent {
    next(event, EventType::Paid, at, |order| {
        order.status = OrderStatus::Paid;
        order.paid_at = Some(at);
    })
}

pub fn cancel(event: OrderEvent, at: i64) -> OrderEvent {
    next(event, EventType::Cancelled, at, |order| {
        order.status = OrderStatus::Cancelled;
        order.cancelled_at = Some(at);
        order.cancel_reason = Some("changed mind".into());
    })
}
