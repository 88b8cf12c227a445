//! Rebuilding a projection beside the live one, and point-in-time snapshots. Both rely on the
//! retained, compacted log: a projection is disposable.

mod compare;
mod shadow;

pub use compare::{compare_tables, TableComparison};
pub use shadow::{discard_shadow, rebuild_shadow};

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use edison_common::db;
use edison_common::kafka::delete_group;

use crate::cli::{SharedArgs, SnapshotArgs};
use crate::runtime::{self, Projection, RunStats, Stop};

/// Builds a throwaway SQLite projection of the state as of `args.as_of`, under a temporary
/// consumer group that is deleted afterwards. No side effects run.
pub async fn snapshot<P: Projection>(
    projection: &P,
    shared: &SharedArgs,
    args: &SnapshotArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<RunStats> {
    if args.out.exists() {
        bail!(
            "{} already exists; a snapshot goes to a new file",
            args.out.display()
        );
    }
    shared.require_topic().await?;
    let url = format!("sqlite://{}", args.out.display());
    let db = db::connect(&url, projection.migrator()).await?;
    let group = format!(
        "{}.snapshot.{}",
        shared.group_id::<P>(),
        uuid::Uuid::now_v7().simple()
    );
    let mut options = args.consume.options(&group, Stop::CaughtUp);
    options.as_of = Some(args.as_of);
    options.side_effects = false;
    let stats = runtime::run(projection, &db, &shared.kafka, &options, shutdown.clone())
        .await
        .context("snapshot failed")?;
    db.pool.close().await;
    if let Err(error) = delete_group(&shared.kafka.client_config(), &group).await {
        warn!(%error, %group, "could not delete the snapshot's temporary consumer group");
    }
    if shutdown.is_cancelled() {
        bail!("interrupted; {} is incomplete", args.out.display());
    }
    Ok(stats)
}
