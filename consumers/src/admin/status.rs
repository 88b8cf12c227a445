//! `DEPARTMENT status`: where the department's consumer group is (state, members, committed
//! offsets against the log end, lag, rate, ETA) and how recent its projection is.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use edison_common::args::SharedArgs;
use edison_common::db::{self, Backend};
use edison_common::time::{format_rfc3339, now_ms};
use edison_common::kafka::GroupMember;

use edison_common::kafka::partition_lag;

use super::{group_offsets, group_state, watermarks, Watermarks};
use crate::runtime::{checkpoint, Projection};

/// How long a one-shot status watches the committed offsets move, for the rate.
const SAMPLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print JSON, one object per line (one per refresh with --watch).
    #[arg(long)]
    pub json: bool,

    /// Refresh every SECONDS [default: 2] until Ctrl-C; the rate is measured between refreshes.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2", value_parser = parse_seconds)]
    pub watch: Option<f64>,

    /// Only a header and one summary line (scripts/status puts the departments in one table).
    #[arg(long, conflicts_with = "json")]
    pub brief: bool,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.1..=86_400.0).contains(s))
        .ok_or_else(|| format!("expected seconds between 0.1 and 86400, got {text:?}"))
}

/// One department's status, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub department: String,
    pub group: String,
    pub topic: String,
    /// The group's state as the broker says: Empty, Stable, PreparingRebalance, ..., or Dead
    /// (unknown to the broker: it never committed, or was deleted).
    pub state: String,
    pub members: Vec<GroupMember>,
    pub partitions: Vec<PartitionStatus>,
    /// Summed over the partitions.
    pub lag: i64,
    /// Offsets the group committed per second over `interval_seconds`.
    pub events_per_second: f64,
    pub interval_seconds: f64,
    /// `lag / events_per_second`; `None` when the rate is 0.
    pub eta_seconds: Option<f64>,
    pub eta: String,
    /// The projection's database, without password.
    pub database: String,
    /// When the projection last committed a batch (the newest checkpoint of the topic).
    pub last_applied_ms: Option<i64>,
    pub last_applied_at: Option<String>,
    /// Why there is no last applied time (no database yet, nothing applied yet, an error).
    pub database_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// `None` if the group never committed an offset for the partition.
    pub committed: Option<i64>,
    pub log_start: i64,
    pub log_end: i64,
    pub lag: i64,
}

/// The broker's view at one moment.
struct Sample {
    at: Instant,
    state: String,
    members: Vec<GroupMember>,
    marks: Vec<Watermarks>,
    committed: HashMap<i32, i64>,
}

/// Prints the status once (after sampling the committed offsets for a second) or, with
/// `--watch`, every interval until `shutdown`.
pub async fn status<P: Projection>(
    shared: &SharedArgs,
    args: &StatusArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    shared.require_topic().await?;
    let (group, topic) = (shared.group_id(P::NAME), shared.kafka.topic.clone());
    let interval = args.watch.map(Duration::from_secs_f64);
    let mut before = sample(shared, &group, &topic).await?;
    let mut wait = interval.map_or(SAMPLE, |every| every.min(SAMPLE));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        let after = sample(shared, &group, &topic).await?;
        let database = db::redact(&shared.database_url(P::NAME));
        let (last_applied_ms, note) = last_applied(
            &shared.database_url(P::NAME),
            &shared.database_schema(P::NAME),
            &topic,
        )
        .await;
        let status = build(
            P::NAME,
            &group,
            &topic,
            &before,
            &after,
            database,
            last_applied_ms,
            note,
        );
        let text = if args.json {
            format!("{}\n", serde_json::to_string(&status)?)
        } else if args.brief {
            render_brief(&status, now_ms())
        } else {
            render(&status, now_ms())
        };
        let mut out = std::io::stdout().lock();
        if let (Some(every), false) = (interval, args.json) {
            if out.is_terminal() {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "every {}s, Ctrl-C to stop", every.as_secs_f64())?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        let Some(every) = interval else { return Ok(()) };
        (before, wait) = (after, every);
    }
}

async fn sample(shared: &SharedArgs, group: &str, topic: &str) -> anyhow::Result<Sample> {
    let config = shared.kafka.client_config();
    let (state, members) = group_state(&config, group).await?;
    let committed = group_offsets(&config, group, topic).await?;
    let marks = watermarks(&config, topic).await?;
    Ok(Sample {
        at: Instant::now(),
        state,
        members,
        marks,
        committed,
    })
}

#[allow(clippy::too_many_arguments)]
fn build(
    department: &str,
    group: &str,
    topic: &str,
    before: &Sample,
    after: &Sample,
    database: String,
    last_applied_ms: Option<i64>,
    database_note: Option<String>,
) -> Status {
    let partitions = partitions(&after.marks, &after.committed);
    let lag = partitions.iter().map(|p| p.lag).sum();
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    let events_per_second = rate(&before.committed, &after.committed, &after.marks, seconds);
    let eta_seconds = (events_per_second > 0.0).then(|| lag as f64 / events_per_second);
    Status {
        department: department.to_owned(),
        group: group.to_owned(),
        topic: topic.to_owned(),
        state: after.state.clone(),
        members: after.members.clone(),
        partitions,
        lag,
        events_per_second,
        interval_seconds: seconds,
        eta_seconds,
        eta: format_eta(lag, events_per_second),
        database,
        last_applied_ms,
        last_applied_at: last_applied_ms.map(format_rfc3339),
        database_note,
    }
}

/// Each partition of `marks` with the group's `committed` offset on it and its lag.
pub fn partitions(marks: &[Watermarks], committed: &HashMap<i32, i64>) -> Vec<PartitionStatus> {
    marks
        .iter()
        .map(|w| {
            let committed = committed.get(&w.partition).copied();
            PartitionStatus {
                partition: w.partition,
                committed,
                log_start: w.low,
                log_end: w.high,
                lag: partition_lag(w.low, w.high, committed),
            }
        })
        .collect()
}

/// Offsets committed per second between two samples. A partition first committed in between
/// counts from its log start; offsets moved back (a reset) count as nothing.
pub fn rate(
    before: &HashMap<i32, i64>,
    after: &HashMap<i32, i64>,
    marks: &[Watermarks],
    seconds: f64,
) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    let low = |partition: &i32| {
        marks
            .iter()
            .find(|w| w.partition == *partition)
            .map_or(0, |w| w.low)
    };
    let moved: i64 = after
        .iter()
        .map(|(partition, now)| {
            (now - before
                .get(partition)
                .copied()
                .unwrap_or_else(|| low(partition)))
            .max(0)
        })
        .sum();
    moved as f64 / seconds
}

/// When the projection last applied a batch of `topic`, or why that cannot be said. Opens the
/// database only if it exists, and never creates or migrates anything.
async fn last_applied(url: &str, schema: &str, topic: &str) -> (Option<i64>, Option<String>) {
    let db = match db::open_existing(url, Some(schema)).await {
        Ok(Some(db)) => db,
        Ok(None) => {
            return (
                None,
                Some("no database yet: the department has not run".to_owned()),
            )
        }
        Err(error) => return (None, Some(format!("cannot open the database: {error}"))),
    };
    let found = newest_checkpoint(&db.pool, db.backend, topic).await;
    db.pool.close().await;
    match found {
        Ok(Some(ms)) => (Some(ms), None),
        Ok(None) => (None, Some("nothing applied yet".to_owned())),
        Err(error) => (None, Some(format!("cannot read the checkpoints: {error}"))),
    }
}

async fn newest_checkpoint(
    pool: &AnyPool,
    backend: Backend,
    topic: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let exists = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let tables: i64 = sqlx::query_scalar(exists)
        .bind(checkpoint::TABLE)
        .fetch_one(pool)
        .await?;
    if tables == 0 {
        return Ok(None);
    }
    sqlx::query_scalar(&format!(
        "SELECT MAX(applied_at) FROM {} WHERE topic = $1",
        checkpoint::TABLE
    ))
    .bind(topic)
    .fetch_one(pool)
    .await
}

/// The status as a small report with one line per partition.
pub fn render(status: &Status, now_ms: i64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: group {}, topic {}",
        status.department, status.group, status.topic
    );
    let _ = writeln!(out, "  group     {}", group_line(status));
    if status.partitions.is_empty() {
        let _ = writeln!(
            out,
            "  lag       none: the topic {} does not exist yet",
            status.topic
        );
    } else {
        let _ = writeln!(
            out,
            "  lag       {} events, {:.1} events/s over {:.1}s, ETA {}",
            status.lag, status.events_per_second, status.interval_seconds, status.eta
        );
    }
    let _ = writeln!(
        out,
        "  applied   {} ({})",
        applied_line(status, now_ms),
        status.database
    );
    if !status.partitions.is_empty() {
        let _ = writeln!(
            out,
            "  {:>9} {:>12} {:>12} {:>12}",
            "PARTITION", "COMMITTED", "LOG-END", "LAG"
        );
    }
    for p in &status.partitions {
        let committed = p.committed.map_or("-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "  {:>9} {committed:>12} {:>12} {:>12}",
            p.partition, p.log_end, p.lag
        );
    }
    out
}

pub const BRIEF_HEADER: &str = "DEPARTMENT   GROUP                STATE                MEMBERS          LAG   EVENTS/S  ETA          LAST APPLIED";

/// A header and one line: what scripts/status puts in its table.
pub fn render_brief(status: &Status, now_ms: i64) -> String {
    format!(
        "{BRIEF_HEADER}\n{:<12} {:<20} {:<20} {:>7} {:>12} {:>10.1}  {:<12} {}\n",
        status.department,
        status.group,
        status.state,
        status.members.len(),
        status.lag,
        status.events_per_second,
        status.eta,
        applied_line(status, now_ms)
    )
}

fn group_line(status: &Status) -> String {
    match status.members.len() {
        0 => format!("{}, no active members", status.state),
        n => {
            let who: Vec<String> = status
                .members
                .iter()
                .map(|m| format!("{}@{}", m.client_id, m.host))
                .collect();
            format!(
                "{}, {n} member{}: {}",
                status.state,
                if n == 1 { "" } else { "s" },
                who.join(", ")
            )
        }
    }
}

fn applied_line(status: &Status, now_ms: i64) -> String {
    match (
        &status.last_applied_at,
        status.last_applied_ms,
        &status.database_note,
    ) {
        (Some(at), Some(ms), _) => format!(
            "{at} ({} ago)",
            format_duration((now_ms - ms).max(0) as f64 / 1000.0)
        ),
        (_, _, Some(note)) => note.clone(),
        _ => "unknown".to_owned(),
    }
}

/// "caught up" without lag, "—" without progress, else the time the lag takes at `rate`.
pub fn format_eta(lag: i64, rate: f64) -> String {
    if lag <= 0 {
        "caught up".to_owned()
    } else if rate <= 0.0 || !rate.is_finite() {
        "—".to_owned()
    } else {
        format_duration(lag as f64 / rate)
    }
}

/// 42s, 3m 05s, 2h 07m, 3d 04h.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.ceil().max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_lag_over_rate_and_a_dash_without_progress() {
        assert_eq!(format_eta(0, 0.0), "caught up");
        assert_eq!(format_eta(500, 0.0), "—");
        assert_eq!(format_eta(500, 100.0), "5s");
        assert_eq!(format_eta(18_500, 100.0), "3m 05s");
        assert_eq!(format_eta(7_620, 1.0), "2h 07m");
        assert_eq!(format_eta(273_600, 1.0), "3d 04h");
        assert_eq!(
            format_eta(1, 3.0),
            "1s",
            "rounded up, never 0s while behind"
        );
    }

    #[test]
    fn the_rate_counts_committed_progress_per_second() {
        let marks = [
            Watermarks {
                partition: 0,
                low: 0,
                high: 500,
            },
            Watermarks {
                partition: 1,
                low: 10,
                high: 500,
            },
        ];
        let before = HashMap::from([(0, 100)]);
        let after = HashMap::from([(0, 300), (1, 60)]);
        assert_eq!(
            rate(&before, &after, &marks, 2.0),
            125.0,
            "(200 + 50) / 2 s, partition 1 from its log start"
        );
        assert_eq!(
            rate(&after, &before, &marks, 2.0),
            0.0,
            "offsets moved back count as nothing"
        );
        assert_eq!(rate(&before, &after, &marks, 0.0), 0.0);
    }

    #[test]
    fn the_report_lists_partitions_and_says_why_there_is_no_applied_time() {
        let status = Status {
            department: "warehouse".into(),
            group: "warehouse".into(),
            topic: "orders".into(),
            state: "Stable".into(),
            members: vec![GroupMember {
                client_id: "rdkafka".into(),
                host: "/127.0.0.1".into(),
            }],
            partitions: vec![PartitionStatus {
                partition: 0,
                committed: None,
                log_start: 0,
                log_end: 20,
                lag: 20,
            }],
            lag: 20,
            events_per_second: 0.0,
            interval_seconds: 1.0,
            eta_seconds: None,
            eta: format_eta(20, 0.0),
            database: "sqlite://data/warehouse.db".into(),
            last_applied_ms: None,
            last_applied_at: None,
            database_note: Some("no database yet: the department has not run".into()),
        };
        let text = render(&status, 0);
        assert!(
            text.contains("Stable, 1 member: rdkafka@/127.0.0.1"),
            "{text}"
        );
        assert!(
            text.contains("20 events, 0.0 events/s over 1.0s, ETA —"),
            "{text}"
        );
        assert!(text.contains("no database yet"), "{text}");
        assert!(
            text.lines()
                .last()
                .unwrap()
                .split_whitespace()
                .eq(["0", "-", "20", "20"]),
            "{text}"
        );
        let applied = Status {
            last_applied_ms: Some(10_000),
            last_applied_at: Some(format_rfc3339(10_000)),
            database_note: None,
            ..status
        };
        let brief = render_brief(&applied, 75_000);
        assert!(brief.starts_with(BRIEF_HEADER), "{brief}");
        assert!(
            brief.contains("1970-01-01T00:00:10Z (1m 05s ago)"),
            "{brief}"
        );
    }
}
