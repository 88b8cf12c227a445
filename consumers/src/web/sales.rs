//! The sales section: the dashboard's statistics, recomputed whenever its checkpoints move.
//!
//! The checkpoint table is written in the transaction of every applied batch, so a change in it
//! is exactly "the projection changed". Polling it (one small query every [`POLL`]) needs no
//! hook in the runtime and leaves the consumer alone.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::AnyPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::departments::dashboard::{self, SalesStats};
use crate::runtime::checkpoint::{self, Checkpoint};

/// How often the checkpoints are compared: the page follows the projection within this much
/// (plus the query and the browser's own time).
const POLL: Duration = Duration::from_millis(200);

/// The sales section of the page, as `/api/sales` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct SalesView {
    /// When the projection last applied a batch, ms since the epoch; `None` before the first.
    pub last_applied_ms: Option<i64>,
    /// Per model (`F`, `P`, `H`) and currency.
    pub by_model: Vec<StatsView>,
    /// Per UTC day placed and currency, oldest first.
    pub by_day: Vec<StatsView>,
    /// All orders, one row per currency, labelled `all`.
    pub totals: Vec<StatsView>,
}

/// One row of statistics with the figures as the report prints them.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// The counts, flattened into this object.
    #[serde(flatten)]
    pub stats: SalesStats,
    /// Orders cancelled before payment.
    pub cancelled_before_payment: i64,
    /// `50.5%`, or `-` without orders: the report's text.
    pub conversion: String,
    /// `1,234.50 EUR`: the report's text.
    pub revenue: String,
}

impl From<SalesStats> for StatsView {
    fn from(stats: SalesStats) -> StatsView {
        StatsView {
            cancelled_before_payment: stats.cancelled_before_payment(),
            conversion: stats.conversion_text(),
            revenue: stats.revenue_text(),
            stats,
        }
    }
}

/// The statistics the projection holds now.
async fn view(pool: &AnyPool, checkpoints: &[Checkpoint]) -> Result<SalesView, sqlx::Error> {
    let rows = |stats: Vec<SalesStats>| stats.into_iter().map(StatsView::from).collect();
    Ok(SalesView {
        last_applied_ms: checkpoints.iter().map(|c| c.applied_at).max(),
        by_model: rows(dashboard::sales_by_model(pool).await?),
        by_day: rows(dashboard::sales_by_day(pool).await?),
        totals: rows(dashboard::sales_totals(pool).await?),
    })
}

/// Publishes the sales section into `sales` at start and after every change of the
/// projection, until `shutdown`.
pub async fn publish(pool: AnyPool, topic: String, sales: watch::Sender<Arc<str>>, shutdown: CancellationToken) {
    let mut seen: Option<Vec<Checkpoint>> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = match checkpoint::read(&pool, &topic).await {
            Ok(now) if seen.as_ref() == Some(&now) => continue,
            Ok(now) => now,
            Err(error) => {
                warn!(%error, "cannot read the dashboard's checkpoints");
                continue;
            }
        };
        match view(&pool, &now).await {
            Ok(view) => {
                sales.send_replace(super::json(&view));
                seen = Some(now);
            }
            Err(error) => warn!(%error, "cannot read the dashboard's statistics"),
        }
    }
}
