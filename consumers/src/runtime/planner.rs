//! The rebuild planner: the apply rate a projection measured on its own past runs, kept in its
//! database beside its checkpoints, and the estimates `reset-offsets` and `rebuild --shadow`
//! print from it. The rate is the department's, not its data's: a reset keeps it.

use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Row};

use edison_common::db::Backend;
use edison_common::time::now_ms;

/// Per topic, the last [`RUNS_KEPT`] runs big enough to measure: records consumed and the time
/// the run was busy with them. It belongs to the projection, not to its data: a reset to the
/// earliest offsets empties the department's tables and its checkpoints but not this, and a
/// shadow rebuild carries it over to the swapped-in projection ([`carry_rates`]).
pub const RATES_TABLE: &str = "edison_apply_rates";

/// How many measured runs per topic make the rate.
pub const RUNS_KEPT: usize = 5;

/// A run with fewer records than this is not measured: a live run's trickle, or a restart that
/// found little to do, says nothing about the speed of a replay.
pub const MIN_MEASURED_EVENTS: u64 = 1_000;

/// Nor is a run busy for less than this: its time is mostly start-up and the last commit.
pub const MIN_MEASURED_BUSY: Duration = Duration::from_secs(1);

pub(super) async fn ensure_rates_table(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS edison_apply_rates (
             topic       TEXT NOT NULL,
             measured_at BIGINT NOT NULL,
             events      BIGINT NOT NULL,
             busy_us     BIGINT NOT NULL,
             PRIMARY KEY (topic, measured_at))",
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Whether a run of `events` records, busy for `busy`, is big enough to measure the rate.
pub fn measurable(events: u64, busy: Duration) -> bool {
    events >= MIN_MEASURED_EVENTS && busy >= MIN_MEASURED_BUSY
}

/// Records the apply rate of the run that just ended: the records it consumed (applied,
/// skipped or dead-lettered alike: a replay consumes them all) and the time it was busy, not
/// waiting for records. Runs too small to measure ([`measurable`]) are ignored; only the last
/// [`RUNS_KEPT`] runs per topic are kept. Needs [`ensure_table`](super::checkpoint::ensure_table).
pub async fn record_rate(pool: &AnyPool, topic: &str, events: u64, busy: Duration) -> Result<(), sqlx::Error> {
    if !measurable(events, busy) {
        return Ok(());
    }
    record_rate_at(pool, topic, now_ms(), events, busy).await
}

async fn record_rate_at(pool: &AnyPool, topic: &str, at: i64, events: u64, busy: Duration) -> Result<(), sqlx::Error> {
    let events = i64::try_from(events).unwrap_or(i64::MAX);
    let busy_us = i64::try_from(busy.as_micros()).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    insert_run(&mut tx, topic, at, events, busy_us).await?;
    keep_last_runs(&mut tx, topic).await?;
    tx.commit().await
}

/// Two runs ending in the same millisecond count as one.
async fn insert_run(conn: &mut AnyConnection, topic: &str, at: i64, events: i64, busy_us: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO edison_apply_rates (topic, measured_at, events, busy_us) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (topic, measured_at) DO UPDATE SET events = edison_apply_rates.events + excluded.events, \
         busy_us = edison_apply_rates.busy_us + excluded.busy_us",
    )
    .bind(topic)
    .bind(at)
    .bind(events)
    .bind(busy_us)
    .execute(conn)
    .await
    .map(|_| ())
}

async fn keep_last_runs(conn: &mut AnyConnection, topic: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM edison_apply_rates WHERE topic = $1 AND measured_at < (SELECT MIN(measured_at) FROM \
         (SELECT measured_at FROM edison_apply_rates WHERE topic = $2 ORDER BY measured_at DESC LIMIT {RUNS_KEPT}) AS kept)"
    ))
    .bind(topic)
    .bind(topic)
    .execute(conn)
    .await
    .map(|_| ())
}

/// One measured run: records consumed, and microseconds busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredRun {
    pub events: i64,
    pub busy_us: i64,
}

/// The rate of `runs`, in events per second: each run's own rate, weighted by its records, so
/// a big replay counts for more than a small restart, and a long, slow trickle that slipped
/// past the floor cannot outweigh it by its duration. `None` without a run.
pub fn weighted_rate(runs: &[MeasuredRun]) -> Option<f64> {
    let runs: Vec<_> = runs.iter().filter(|r| r.events > 0 && r.busy_us > 0).collect();
    let events: f64 = runs.iter().map(|r| r.events as f64).sum();
    let weighted: f64 = runs
        .iter()
        .map(|r| r.events as f64 * (r.events as f64 * 1e6 / r.busy_us as f64))
        .sum();
    (events > 0.0).then(|| weighted / events)
}

/// The measured apply rate of the projection on `topic`, in events per second: the
/// [`weighted_rate`] of its last [`RUNS_KEPT`] measured runs. `None` without a measurement,
/// also when the table is not there (a database the runtime never ran on): it never creates it.
pub async fn apply_rate(pool: &AnyPool, topic: &str) -> Result<Option<f64>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if !rates_table_exists(&mut conn).await? {
        return Ok(None);
    }
    let rows = sqlx::query(&format!(
        "SELECT events, busy_us FROM edison_apply_rates WHERE topic = $1 ORDER BY measured_at DESC LIMIT {RUNS_KEPT}"
    ))
    .bind(topic)
    .fetch_all(&mut *conn)
    .await?;
    let runs = rows
        .iter()
        .map(|row| Ok(MeasuredRun { events: row.try_get("events")?, busy_us: row.try_get("busy_us")? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(weighted_rate(&runs))
}

async fn rates_table_exists(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let exists = match Backend::of(conn) {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let tables: i64 = sqlx::query_scalar(exists).bind(RATES_TABLE).fetch_one(conn).await?;
    Ok(tables > 0)
}

/// Copies the measured runs of every topic from `from` into `to` (a shadow about to replace
/// `from`), keeping the last [`RUNS_KEPT`] of each, so the swap keeps the department's history
/// beside the shadow's own measurement. Needs [`ensure_table`](super::checkpoint::ensure_table) on `to`; `from` may lack the table.
pub async fn carry_rates(from: &AnyPool, to: &AnyPool) -> Result<(), sqlx::Error> {
    let mut source = from.acquire().await?;
    if !rates_table_exists(&mut source).await? {
        return Ok(());
    }
    let rows = sqlx::query("SELECT topic, measured_at, events, busy_us FROM edison_apply_rates")
        .fetch_all(&mut *source)
        .await?;
    drop(source);
    let mut tx = to.begin().await?;
    let mut topics = Vec::new();
    for row in &rows {
        let topic: String = row.try_get("topic")?;
        sqlx::query(
            "INSERT INTO edison_apply_rates (topic, measured_at, events, busy_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (topic, measured_at) DO NOTHING",
        )
        .bind(&topic)
        .bind(row.try_get::<i64, _>("measured_at")?)
        .bind(row.try_get::<i64, _>("events")?)
        .bind(row.try_get::<i64, _>("busy_us")?)
        .execute(&mut *tx)
        .await?;
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    for topic in &topics {
        keep_last_runs(&mut tx, topic).await?;
    }
    tx.commit().await
}

/// What a planner knows of a projection's speed.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// Events per second, from [`apply_rate`].
    Rate(f64),
    /// No measured run yet (or no database yet).
    NoRun,
    /// The database could not be read, and why.
    Unreadable(String),
}

/// The measured rate of the projection at `url` (`schema` on PostgreSQL) on `topic`. Opens the
/// database only if it exists and creates nothing, so a dry run stays one.
pub async fn measured_rate(url: &str, schema: &str, topic: &str) -> Measured {
    let db = match edison_common::db::open_existing(url, Some(schema)).await {
        Ok(Some(db)) => db,
        Ok(None) => return Measured::NoRun,
        Err(error) => return Measured::Unreadable(error.to_string()),
    };
    let rate = apply_rate(&db.pool, topic).await;
    db.pool.close().await;
    match rate {
        Ok(Some(rate)) => Measured::Rate(rate),
        Ok(None) => Measured::NoRun,
        Err(error) => Measured::Unreadable(format!("cannot read {RATES_TABLE}: {error}")),
    }
}

/// One line: `{subject} N events` and how long that takes at the `measured` rate of
/// `projection`'s past runs ("this projection", "the live projection"), or why there is no
/// estimate.
pub fn render_estimate(subject: &str, events: u64, measured: &Measured, projection: &str) -> String {
    let events_text = format!("{subject} {} event{}", grouped(events), if events == 1 { "" } else { "s" });
    if events == 0 {
        return format!("{events_text}; nothing to estimate.\n");
    }
    match measured {
        Measured::Rate(rate) if *rate > 0.0 => format!(
            "{events_text}; estimated: {} at {} events/s (measured on {projection}'s past runs).\n",
            format_estimate(events as f64 / rate),
            format_rate(*rate)
        ),
        Measured::Rate(_) | Measured::NoRun => format!(
            "{events_text}; no estimate yet: {} has no measured run (a run of at least {} records and {} s of work measures one).\n",
            projection,
            grouped(MIN_MEASURED_EVENTS),
            MIN_MEASURED_BUSY.as_secs()
        ),
        Measured::Unreadable(why) => format!("{events_text}; no estimate: {why}.\n"),
    }
}

/// A rough duration: ~42 s, ~7 min, ~2 h 05 min, ~3 d 04 h. Never ~0.
pub fn format_estimate(seconds: f64) -> String {
    let s = seconds.ceil().max(1.0) as u64;
    let minutes = (s + 30) / 60;
    if s < 60 {
        format!("~{s} s")
    } else if minutes < 60 {
        format!("~{minutes} min")
    } else if minutes < 24 * 60 {
        format!("~{} h {:02} min", minutes / 60, minutes % 60)
    } else {
        let hours = (minutes + 30) / 60;
        format!("~{} d {:02} h", hours / 24, hours % 24)
    }
}

/// Events per second: 12,345 from 100 up, one decimal below.
pub fn format_rate(rate: f64) -> String {
    if rate >= 100.0 {
        grouped(rate.round() as u64)
    } else {
        format!("{rate:.1}")
    }
}

/// 1234567 → 1,234,567.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::checkpoint::ensure_table;

    fn run(events: i64, seconds: f64) -> MeasuredRun {
        MeasuredRun { events, busy_us: (seconds * 1e6) as i64 }
    }

    #[test]
    fn only_runs_of_enough_records_and_work_are_measured() {
        assert!(measurable(1_000, Duration::from_secs(1)));
        assert!(!measurable(999, Duration::from_secs(60)), "a trickle");
        assert!(!measurable(1_000_000, Duration::from_millis(999)), "too short to time");
    }

    #[test]
    fn the_rate_weighs_each_run_by_its_records() {
        assert_eq!(weighted_rate(&[]), None);
        assert_eq!(weighted_rate(&[run(10_000, 2.0)]), Some(5_000.0));
        // A 1M-event replay at 100k/s and a slow 1,000-event restart at 500/s: the replay
        // dominates (all events over all the time would say 83,417/s).
        let rate = weighted_rate(&[run(1_000_000, 10.0), run(1_000, 2.0)]).unwrap();
        assert!((rate - 99_900.6).abs() < 1.0, "{rate}");
        assert_eq!(weighted_rate(&[run(0, 1.0), run(5, 0.0)]), None, "nothing to divide");
    }

    #[test]
    fn durations_are_rough_and_never_zero() {
        assert_eq!(format_estimate(0.0), "~1 s");
        assert_eq!(format_estimate(0.2), "~1 s");
        assert_eq!(format_estimate(42.0), "~42 s");
        assert_eq!(format_estimate(89.0), "~1 min");
        assert_eq!(format_estimate(90.0), "~2 min");
        assert_eq!(format_estimate(300.0), "~5 min");
        assert_eq!(format_estimate(3_590.0), "~1 h 00 min");
        assert_eq!(format_estimate(7_500.0), "~2 h 05 min");
        assert_eq!(format_estimate(273_600.0), "~3 d 04 h");
    }

    #[test]
    fn rates_and_counts_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(format_rate(75_834.4), "75,834");
        assert_eq!(format_rate(100.0), "100");
        assert_eq!(format_rate(1.666), "1.7");
    }

    #[test]
    fn an_estimate_is_events_over_the_measured_rate() {
        let subject = "The next run consumes";
        assert_eq!(
            render_estimate(subject, 600_000, &Measured::Rate(2_000.0), "this projection"),
            "The next run consumes 600,000 events; estimated: ~5 min at 2,000 events/s (measured on this projection's past runs).\n"
        );
        assert_eq!(
            render_estimate("The shadow replays", 1, &Measured::Rate(0.5), "the live projection"),
            "The shadow replays 1 event; estimated: ~2 s at 0.5 events/s (measured on the live projection's past runs).\n"
        );
        assert_eq!(
            render_estimate(subject, 135, &Measured::NoRun, "this projection"),
            "The next run consumes 135 events; no estimate yet: this projection has no measured run (a run of at least 1,000 records and 1 s of work measures one).\n"
        );
        assert_eq!(
            render_estimate(subject, 135, &Measured::Unreadable("cannot connect".into()), "this projection"),
            "The next run consumes 135 events; no estimate: cannot connect.\n"
        );
        assert_eq!(
            render_estimate(subject, 0, &Measured::Rate(2_000.0), "this projection"),
            "The next run consumes 0 events; nothing to estimate.\n"
        );
    }

    async fn memory() -> AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn the_last_measured_runs_make_the_rate_and_a_reset_keeps_them() {
        let pool = memory().await;
        assert_eq!(apply_rate(&pool, "orders").await.unwrap(), None, "no table yet: no measurement, nothing created");
        ensure_table(&pool).await.unwrap();
        assert_eq!(apply_rate(&pool, "orders").await.unwrap(), None);
        record_rate(&pool, "orders", 999, Duration::from_secs(10)).await.unwrap();
        record_rate(&pool, "orders", 50_000, Duration::from_millis(500)).await.unwrap();
        assert_eq!(apply_rate(&pool, "orders").await.unwrap(), None, "runs too small are ignored");

        record_rate(&pool, "orders", 10_000, Duration::from_secs(5)).await.unwrap();
        assert_eq!(apply_rate(&pool, "orders").await.unwrap(), Some(2_000.0));
        assert_eq!(apply_rate(&pool, "other").await.unwrap(), None, "per topic");

        // Runs at 1,000/s, then RUNS_KEPT at 4,000/s: only the last ones count.
        for (at, rate) in [(1, 1_000), (2, 4_000), (3, 4_000), (4, 4_000), (5, 4_000), (6, 4_000)] {
            record_rate_at(&pool, "busy", at, rate * 2, Duration::from_secs(2)).await.unwrap();
        }
        assert_eq!(apply_rate(&pool, "busy").await.unwrap(), Some(4_000.0));
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM edison_apply_rates WHERE topic = 'busy'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(kept, RUNS_KEPT as i64);

        // What reset-offsets --to-earliest deletes: the checkpoints, not the rates.
        sqlx::query("DELETE FROM edison_checkpoints WHERE topic = $1").bind("orders").execute(&pool).await.unwrap();
        ensure_table(&pool).await.unwrap();
        assert_eq!(apply_rate(&pool, "orders").await.unwrap(), Some(2_000.0));
    }

    #[tokio::test]
    async fn a_swap_carries_the_live_runs_over_to_the_shadow() {
        let (live, shadow) = (memory().await, memory().await);
        carry_rates(&live, &shadow).await.unwrap();
        ensure_table(&live).await.unwrap();
        ensure_table(&shadow).await.unwrap();
        for at in 1..=4 {
            record_rate_at(&live, "orders", at, 1_000, Duration::from_secs(1)).await.unwrap();
        }
        record_rate_at(&live, "other", 1, 3_000, Duration::from_secs(1)).await.unwrap();
        record_rate_at(&shadow, "orders", 10, 5_000, Duration::from_secs(1)).await.unwrap();
        record_rate_at(&shadow, "orders", 11, 5_000, Duration::from_secs(1)).await.unwrap();
        carry_rates(&live, &shadow).await.unwrap();
        // The shadow's two runs and the live's last three: (2*5000*5000 + 3*1000*1000) / 13,000.
        let rate = apply_rate(&shadow, "orders").await.unwrap().unwrap();
        assert!((rate - 4_076.9).abs() < 0.1, "{rate}");
        assert_eq!(apply_rate(&shadow, "other").await.unwrap(), Some(3_000.0));
    }
}
