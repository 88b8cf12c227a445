//! Rebuilding a projection beside the live one, and point-in-time snapshots. Both rely on the
//! retained, compacted log: a projection is disposable.

mod compare;
mod shadow;

pub use compare::{compare_tables, TableComparison};
pub use shadow::{discard_shadow, rebuild_shadow};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use edison_common::args::SharedArgs;
use edison_common::db;
use edison_common::kafka::delete_group;
use edison_common::time::parse_datetime;

use crate::runtime::{self, ConsumeArgs, Projection, RunStats, Stop};

pub const REBUILD_HELP: &str = "\
Rebuild the projection from offset zero beside the live one, verify it, then swap.

1. Builds a shadow projection under the group GROUP.shadow, into DB.shadow.db (SQLite) or the \
schema SCHEMA_shadow (PostgreSQL), while the live department keeps consuming and serving. It \
first prints the events to replay and how long that should take at the apply rate the live \
projection's own past catch-up runs measured (or that it has no measurement yet). An \
interrupted build leaves the live projection untouched: run `rebuild --shadow` again to resume, \
or `rebuild --discard` to drop it.
2. Once the shadow is caught up, stop the live consumer (its projection keeps serving reads) \
and run `rebuild --shadow` again: both projections are brought to the same offsets and \
compared, table by table (row count and checksum), listing rows that differ.
3. If they match (or --accept-diff), swaps atomically (a file rename on SQLite, keeping \
DB.before-rebuild.db; a schema rename in one transaction on PostgreSQL, keeping \
SCHEMA_before_rebuild), moves the live group's offsets to the shadow's and deletes the shadow \
group. Start the live consumer again afterwards. On SQLite, close other readers of the file \
(reports, status) before the swap: a connection left open would keep the old file and could \
disturb the new one's write-ahead log. On PostgreSQL readers may stay.

Departments with side effects (the mailer) cannot be shadow-rebuilt: use reset-offsets, which \
keeps the mailer's ledger.";

pub const SNAPSHOT_HELP: &str = "\
Build a throwaway SQLite projection of the state as it was at a past time, for audits and \
disputes. Events count by when they happened (occurred_at), erasures by their record time. It \
reads the whole topic under a temporary consumer group, deleted afterwards, and triggers no side \
effects.

The topic is compacted, but only after min.compaction.lag.ms (one day by default): a snapshot \
as of a time older than that may lack orders whose earlier events were compacted away.";

#[derive(Debug, Clone, Args)]
#[group(id = "rebuild_action", required = true, multiple = false)]
pub struct RebuildArgs {
    /// Build (or resume) the shadow projection; once the live consumer is stopped, verify and swap.
    #[arg(long, group = "rebuild_action")]
    pub shadow: bool,

    /// Drop an unfinished shadow projection and its consumer group.
    #[arg(long, group = "rebuild_action")]
    pub discard: bool,

    /// Swap even if the shadow differs from the live projection (e.g. a changed projection).
    #[arg(long)]
    pub accept_diff: bool,

    #[command(flatten)]
    pub consume: ConsumeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// The point in time, ISO 8601: 2026-11-20T12:00:00Z, 2026-11-20T12:00:00 (UTC) or 2026-11-20
    /// (midnight UTC).
    #[arg(long, value_parser = parse_datetime)]
    pub as_of: i64,

    /// The SQLite file to create. It must not exist.
    #[arg(long)]
    pub out: std::path::PathBuf,

    #[command(flatten)]
    pub consume: ConsumeArgs,
}

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
        shared.group_id(P::NAME),
        uuid::Uuid::now_v7().simple()
    );
    let mut options = args.consume.options(&shared.kafka.topic, &group, Stop::CaughtUp)?;
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
