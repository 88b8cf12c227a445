//! The Sales store: the `orders` table (current state) and the transactional `outbox`.
//!
//! Every change is one transaction that upserts the order row and appends its event to the
//! outbox, so the store and the events can never disagree (no dual write). The relay publishes
//! the outbox later and records how far it got as one high-water mark (`relay_progress`).
//!
//! - this module: connecting, migrating, and the [`Store`] itself;
//! - `orders`: placing and changing orders (the transaction above), and reading them;
//! - `outbox`: appending, scrubbing, reading and counting outbox rows;
//! - `relay_state`: the relay's high-water mark and its lease.

mod orders;
mod outbox;
mod relay_state;

use edison_common::db::{self, Backend, Database, DbError};
use edison_schemas::Codec;
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::error::SalesError;

pub(crate) use orders::parse_status;
pub(crate) use outbox::{encode_outbox, OutboxRow};
pub use outbox::{OutboxCounts, OutboxEntry};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Sales' orders and outbox in one database (SQLite or PostgreSQL).
pub struct Store {
    db: Database,
    codec: Codec,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`: `sqlite://PATH`, a file path,
    /// or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, SalesError> {
        let db = db::connect(url, migrator(url)).await?;
        Store::with(db)
    }

    /// Opens the store at `url` only if Sales has made one there, for commands that only read:
    /// it creates no file, directory or table, and fails with [`SalesError::NoStore`] where
    /// there is no Sales store. An existing store is migrated like [`Store::open`] does, so a
    /// store written by an older `sales` reads with today's queries.
    pub async fn open_existing(url: &str) -> Result<Store, SalesError> {
        let no_store = || SalesError::NoStore { url: db::redact(url) };
        let db = db::open_existing(url, None).await?.ok_or_else(no_store)?;
        if !has_sales_tables(&db).await? {
            db.pool.close().await;
            return Err(no_store());
        }
        migrator(url)
            .run(&db.pool)
            .await
            .map_err(|cause| DbError::Migrate { url: db.display_url.clone(), cause })?;
        Store::with(db)
    }

    fn with(db: Database) -> Result<Store, SalesError> {
        Ok(Store { db, codec: Codec::new()? })
    }

    /// The URL without its password.
    pub fn display_url(&self) -> &str {
        &self.db.display_url
    }
}

/// `db::connect` takes the migrator, so the backend is read from the URL first.
fn migrator(url: &str) -> &'static Migrator {
    match Backend::of_url(url) {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    }
}

/// Whether Sales' first migration ran here: an empty SQLite file, or a PostgreSQL database that
/// only other services use, is no Sales store.
async fn has_sales_tables(db: &Database) -> Result<bool, SalesError> {
    let sql = match db.backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'outbox'"
        }
    };
    let tables: i64 = sqlx::query_scalar(sql).fetch_one(&db.pool).await?;
    Ok(tables > 0)
}

/// A UUID column, or the row is corrupt.
fn parse_uuid(text: &str) -> Result<Uuid, SalesError> {
    Uuid::parse_str(text).map_err(|_| SalesError::CorruptRow { what: "uuid", value: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use edison_schemas::CarModel;

    use super::*;
    use crate::domain::{NewOrder, Transition};
    use crate::simulate::{SimulateOptions, Simulation};

    /// A fresh store in a directory of its own, which `open` has to create.
    pub(super) async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&url(&dir)).await.unwrap();
        (dir, store)
    }

    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}/nested/sales.db", dir.path().display())
    }

    pub(super) fn new_order() -> NewOrder {
        NewOrder {
            model: CarModel::P,
            customer_name: "Grace Hopper".into(),
            email: "grace@example.com".into(),
            address: "1 Compiler Way".into(),
        }
    }

    #[tokio::test]
    async fn opening_to_read_creates_no_store() {
        let dir = tempfile::tempdir().unwrap();
        let result = Store::open_existing(&url(&dir)).await;
        assert!(matches!(&result, Err(SalesError::NoStore { url: named }) if *named == url(&dir)), "{:?}", result.err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "neither the file nor its directory");

        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(Store::open_existing(empty.to_str().unwrap()).await, Err(SalesError::NoStore { .. })));
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "no table was created in it");
    }

    #[tokio::test]
    async fn opening_to_read_finds_what_open_made() {
        let (dir, store) = store().await;
        let id = store.place(&new_order()).await.unwrap().id;
        let reader = Store::open_existing(&url(&dir)).await.unwrap();
        assert_eq!(reader.get(id).await.unwrap(), store.get(id).await.unwrap());
    }

    /// A store from before the high-water mark (migrations 0001 and 0002), where the relay
    /// stamped each row, with one order and four outbox rows: 1 and 2 published, 3 not, 4
    /// published after 3 failed (an old relay could). Returns its URL and the order.
    async fn stamped_store(dir: &Path) -> (String, Transition) {
        let old = dir.join("migrations");
        std::fs::create_dir(&old).unwrap();
        let current = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for name in ["0001_orders_outbox.sql", "0002_drop_orders_by_status.sql"] {
            std::fs::copy(current.join(name), old.join(name)).unwrap();
        }
        let url = format!("sqlite://{}/sales.db", dir.display());
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
        (url, placed)
    }

    /// The stamped rows become the mark, and no order is lost.
    async fn assert_upgraded(store: &Store, placed: &Transition) {
        assert_eq!(store.published_through().await.unwrap(), 2);
        assert_eq!(store.unpublished(i64::MAX, 10).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(store.get(placed.record.id).await.unwrap().order, placed.record.order);
    }

    #[tokio::test]
    async fn upgrading_turns_stamped_rows_into_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let (url, placed) = stamped_store(dir.path()).await;
        assert_upgraded(&Store::open(&url).await.unwrap(), &placed).await;
    }

    #[tokio::test]
    async fn opening_to_read_upgrades_an_older_store_too() {
        let dir = tempfile::tempdir().unwrap();
        let (url, placed) = stamped_store(dir.path()).await;
        assert_upgraded(&Store::open_existing(&url).await.unwrap(), &placed).await;
    }
}
