//! The relay's state in the store: its high-water mark (`relay_progress`), below which every
//! outbox row is published, and its lease (`relay_lease`), which lets one relay publish at a
//! time.

use super::Store;
use crate::error::SalesError;

/// Names the relay's lease and its high-water mark.
pub(super) const RELAY: &str = "outbox";

impl Store {
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

    /// Lets the lease of `holder` expire now, so the next relay need not wait out its ttl.
    pub(crate) async fn release_lease(&self, holder: &str) -> Result<(), SalesError> {
        sqlx::query("UPDATE relay_lease SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(RELAY)
            .bind(holder)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;

    #[tokio::test]
    async fn the_mark_never_moves_back() {
        let (_dir, store) = store().await;
        assert_eq!(store.published_through().await.unwrap(), 0);
        store.mark_published_through(3).await.unwrap();
        store.mark_published_through(2).await.unwrap();
        assert_eq!(store.published_through().await.unwrap(), 3);
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
