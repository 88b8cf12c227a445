//! Zero-downtime rebuild: a shadow projection built beside the live one, verified, swapped in.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use sqlx::Executor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use edison_common::db::{self, sqlite_file, Backend, Database};
use edison_common::kafka::{commit_offsets, delete_group, describe_group, read_log_end_offsets, Watermarks};

use super::compare::compare_tables;
use edison_common::args::SharedArgs;

use super::RebuildArgs;
use crate::runtime::{self, checkpoint, planner, Projection, Stop};

/// Where a projection lives: its store and its consumer group.
#[derive(Debug, Clone)]
struct Placement {
    url: String,
    schema: String,
    group: String,
}

impl Placement {
    fn live<P: Projection>(shared: &SharedArgs) -> Placement {
        Placement {
            url: shared.database_url(P::NAME),
            schema: shared.database_schema(P::NAME),
            group: shared.group_id(P::NAME),
        }
    }

    /// The shadow beside this placement: `NAME.shadow.db` next to a SQLite file, or the schema
    /// `SCHEMA_shadow` in the same PostgreSQL database; the group `GROUP.shadow`.
    fn shadow(&self) -> Placement {
        let url = match sqlite_file(&self.url) {
            Some(path) => format!("sqlite://{}", with_suffix(&path, "shadow").display()),
            None => self.url.clone(),
        };
        Placement {
            url,
            schema: format!("{}_shadow", self.schema),
            group: format!("{}.shadow", self.group),
        }
    }

    async fn connect<P: Projection>(&self, projection: &P) -> anyhow::Result<Database> {
        Ok(db::connect_to(&self.url, Some(&self.schema), projection.migrator()).await?)
    }
}

/// Builds or resumes the shadow; once the live consumer is stopped, verifies and swaps.
pub async fn rebuild_shadow<P: Projection>(
    projection: &P,
    shared: &SharedArgs,
    args: &RebuildArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if P::SIDE_EFFECTS {
        bail!("{} has side effects and cannot be shadow-rebuilt; use reset-offsets --to-earliest, which keeps its ledger", P::NAME);
    }
    shared.require_topic().await?;
    let kafka = &shared.kafka;
    let live = Placement::live::<P>(shared);
    let shadow = live.shadow();
    let shadow_db = shadow.connect(projection).await?;
    checkpoint::ensure_table(&shadow_db.pool).await?;

    // The planner: how long the build takes at the live projection's measured rate.
    let marks = read_log_end_offsets(&kafka.client_config(), &kafka.topic)
        .await
        .context("cannot read the topic's watermarks")?;
    let applied = checkpoint::read(&shadow_db.pool, &kafka.topic).await?;
    let measured = planner::measured_rate(&live.url, &live.schema, &kafka.topic).await;
    print!("{}", plan_line(&marks, &applied, &measured));

    info!(group = %shadow.group, db = %shadow_db.display_url, "building the shadow projection");
    let run_to = |db: &Database, group: &str, stop: Stop| {
        let options = args.consume.options(&kafka.topic, group, stop);
        let (db, shutdown) = (db.clone(), shutdown.clone());
        async move {
            let options = runtime::RunOptions { side_effects: false, ..options? };
            anyhow::Ok(runtime::run(projection, &db, kafka, &options, shutdown).await?)
        }
    };
    run_to(&shadow_db, &shadow.group, Stop::CaughtUp).await?;
    if shutdown.is_cancelled() {
        bail!("interrupted; the live projection is untouched. Run `rebuild --shadow` again to resume, or `rebuild --discard`");
    }

    let config = kafka.client_config();
    let (live_group, config_for_lookup) = (live.group.clone(), config.clone());
    let (_, members) =
        tokio::task::spawn_blocking(move || describe_group(&config_for_lookup, &live_group))
            .await??;
    if !members.is_empty() {
        bail!(
            "the shadow is caught up, but the live group {} has {} active member(s). Stop the live {} consumer \
             (its projection keeps serving reads), then run `rebuild --shadow` again to verify and swap",
            live.group,
            members.len(),
            P::NAME
        );
    }

    // Compare both at the same point of the log: the further of the two, per partition.
    let live_db = live.connect(projection).await?;
    checkpoint::ensure_table(&live_db.pool).await?;
    let mut target: HashMap<i32, i64> = HashMap::new();
    for db in [&live_db, &shadow_db] {
        for point in checkpoint::read(&db.pool, &kafka.topic).await? {
            let next = target.entry(point.partition).or_default();
            *next = (*next).max(point.next_offset);
        }
    }
    run_to(&live_db, &live.group, Stop::AtOffsets(target.clone())).await?;
    run_to(&shadow_db, &shadow.group, Stop::AtOffsets(target.clone())).await?;
    if shutdown.is_cancelled() {
        bail!("interrupted before the swap; run `rebuild --shadow` again to resume");
    }

    let comparisons = compare_tables(P::TABLES, &live_db.pool, &shadow_db.pool).await?;
    println!("{} at offsets {:?}:", P::NAME, sorted(&target));
    for comparison in &comparisons {
        print!("{comparison}");
    }
    if !comparisons.iter().all(|c| c.matches()) && !args.accept_diff {
        bail!("the shadow differs from the live projection; nothing swapped (--accept-diff swaps anyway, `rebuild --discard` drops the shadow)");
    }

    // The measured rate is the department's: the swapped-in projection keeps the live one's
    // history beside the shadow's own runs.
    if let Err(error) = planner::carry_rates(&live_db.pool, &shadow_db.pool).await {
        warn!(%error, "could not carry the live projection's measured apply rate over to the shadow");
    }
    swap(&live, &shadow, live_db, shadow_db).await?;
    let (topic, live_group) = (kafka.topic.clone(), live.group.clone());
    let commit_config = config.clone();
    tokio::task::spawn_blocking(move || commit_offsets(&commit_config, &live_group, &topic, &target))
        .await?
        .context("the swap is done, but moving the live group's offsets failed; the next run re-applies harmlessly")?;
    if let Err(error) = delete_group(&config, &shadow.group).await {
        warn!(%error, group = %shadow.group, "could not delete the shadow's consumer group");
    }
    println!(
        "swapped: the rebuilt projection is live; start the {} consumer again",
        P::NAME
    );
    Ok(())
}

/// Events the shadow still has to replay: per partition, from its checkpoint (a resumed build)
/// or else the log start, to the log end.
fn to_replay(marks: &[Watermarks], applied: &[checkpoint::Checkpoint]) -> u64 {
    marks
        .iter()
        .map(|w| {
            let from = applied
                .iter()
                .find(|c| c.partition == w.partition)
                .map_or(w.low, |c| c.next_offset.max(w.low));
            u64::try_from(w.high - from).unwrap_or(0)
        })
        .sum()
}

/// The line printed before the build: the events to replay, and how long at the live
/// projection's measured rate.
fn plan_line(marks: &[Watermarks], applied: &[checkpoint::Checkpoint], measured: &planner::Measured) -> String {
    let subject = if applied.is_empty() {
        "The shadow replays the whole log:"
    } else {
        "The shadow resumes with"
    };
    planner::render_estimate(subject, to_replay(marks, applied), measured, "the live projection")
}

/// Makes the shadow the live projection in one atomic step, keeping the old one beside it.
async fn swap(
    live: &Placement,
    shadow: &Placement,
    live_db: Database,
    shadow_db: Database,
) -> anyhow::Result<()> {
    match live_db.backend {
        Backend::Postgres => {
            let old = format!("{}_before_rebuild", live.schema);
            let mut tx = live_db.pool.begin().await?;
            tx.execute(format!("DROP SCHEMA IF EXISTS {old} CASCADE").as_str())
                .await?;
            tx.execute(format!("ALTER SCHEMA {} RENAME TO {old}", live.schema).as_str())
                .await?;
            tx.execute(
                format!("ALTER SCHEMA {} RENAME TO {}", shadow.schema, live.schema).as_str(),
            )
            .await?;
            tx.commit().await?;
            info!(kept = %old, "swapped schemas");
        }
        Backend::Sqlite => {
            let (live_file, shadow_file) = (
                sqlite_file(&live.url).expect("SQLite"),
                sqlite_file(&shadow.url).expect("SQLite"),
            );
            // Fold each WAL into its file, so the rename moves a complete database.
            for db in [&live_db, &shadow_db] {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&db.pool)
                    .await?;
            }
            live_db.pool.close().await;
            shadow_db.pool.close().await;
            let kept = with_suffix(&live_file, "before-rebuild");
            let _ = std::fs::remove_file(&kept);
            std::fs::hard_link(&live_file, &kept)
                .with_context(|| format!("cannot keep {}", kept.display()))?;
            std::fs::rename(&shadow_file, &live_file).with_context(|| {
                format!(
                    "cannot move {} over {}",
                    shadow_file.display(),
                    live_file.display()
                )
            })?;
            for leftover in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{leftover}", shadow_file.display()));
            }
            info!(kept = %kept.display(), "swapped files");
        }
    }
    Ok(())
}

/// Drops the shadow projection and its consumer group; the live projection is not touched.
pub async fn discard_shadow<P: Projection>(
    projection: &P,
    shared: &SharedArgs,
) -> anyhow::Result<()> {
    let shadow = Placement::live::<P>(shared).shadow();
    match sqlite_file(&shadow.url) {
        Some(file) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
        None => {
            let db = shadow.connect(projection).await?;
            db.pool
                .execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", shadow.schema).as_str())
                .await?;
        }
    }
    if let Err(error) = delete_group(&shared.kafka.client_config(), &shadow.group).await {
        info!(%error, group = %shadow.group, "no shadow consumer group to delete");
    }
    println!("discarded the shadow of {}", P::NAME);
    Ok(())
}

/// `data/warehouse.db` → `data/warehouse.SUFFIX.db`.
fn with_suffix(path: &std::path::Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{suffix}"),
    };
    path.with_file_name(name)
}

fn sorted(offsets: &HashMap<i32, i64>) -> Vec<(i32, i64)> {
    let mut sorted: Vec<_> = offsets.iter().map(|(p, o)| (*p, *o)).collect();
    sorted.sort_unstable();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadows_sit_beside_the_live_projection() {
        let live = Placement {
            url: "sqlite://data/warehouse.db?mode=rwc".into(),
            schema: "warehouse".into(),
            group: "warehouse".into(),
        };
        let shadow = live.shadow();
        assert_eq!(shadow.url, "sqlite://data/warehouse.shadow.db");
        assert_eq!(
            (shadow.schema.as_str(), shadow.group.as_str()),
            ("warehouse_shadow", "warehouse.shadow")
        );
        let pg = Placement {
            url: "postgres://u:p@h/db".into(),
            ..live
        };
        assert_eq!(pg.shadow().url, "postgres://u:p@h/db");
    }

    #[test]
    fn the_plan_counts_the_whole_log_or_what_a_resumed_build_has_left() {
        let marks = [
            Watermarks { partition: 0, low: 0, high: 400 },
            Watermarks { partition: 1, low: 100, high: 300 },
        ];
        let rate = planner::Measured::Rate(100.0);
        assert_eq!(
            plan_line(&marks, &[], &rate),
            "The shadow replays the whole log: 600 events; estimated: ~6 s at 100 events/s (measured on the live projection's past runs).\n"
        );
        let applied = |partition, next_offset| checkpoint::Checkpoint { topic: "t".into(), partition, next_offset, applied_at: 0 };
        assert_eq!(to_replay(&marks, &[applied(0, 350)]), 50 + 200, "partition 1 from its log start");
        assert_eq!(to_replay(&marks, &[applied(0, 400), applied(1, 50)]), 200, "a checkpoint below the log start counts from it");
        assert_eq!(
            plan_line(&marks, &[applied(0, 400), applied(1, 300)], &planner::Measured::NoRun),
            "The shadow resumes with 0 events; nothing to estimate.\n"
        );
        assert!(plan_line(&marks, &[], &planner::Measured::NoRun)
            .ends_with("no estimate yet: the live projection has no measured run (a run of at least 1,000 records and 1 s of work measures one).\n"));
    }
}
