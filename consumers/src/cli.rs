//! The command line every department binary shares: `run`, `report`, `status`,
//! `reset-offsets`, `rebuild` and `snapshot`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use edison_common::db::{self, Database};
use edison_common::kafka::{await_orders_topic, registry_topic, KafkaArgs, TopicError};

use crate::admin;
use crate::rebuild;
use crate::runtime::{self, Projection, RunOptions, RunStats, Stop};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A department of Edison Cars: consumes the orders topic into its own projection."
)]
pub struct DepartmentCli {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// [`DepartmentCli`] with flags of the department's own, `A`, beside the shared ones.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A department of Edison Cars: consumes the orders topic into its own projection."
)]
pub struct DepartmentCliWith<A: Args> {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub department: A,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every department takes.
#[derive(Clone, Args)]
pub struct SharedArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group [default: the department's name].
    #[arg(long, global = true)]
    pub group_id: Option<String>,

    /// The projection's database: sqlite://PATH, a file path, or postgres://...
    /// [default: sqlite://data/DEPARTMENT.db]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// PostgreSQL only: the schema holding this projection, so departments can share one
    /// database [default: the department's name].
    #[arg(long, env = "DATABASE_SCHEMA", global = true)]
    pub database_schema: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the orders topic into the projection, from offset zero on the first run.
    Run(RunArgs),
    /// Print the projection's summary.
    Report,
    /// Rebuild the projection from offset zero beside the live one, verify it, then swap.
    #[command(long_about = REBUILD_HELP)]
    Rebuild(RebuildArgs),
    /// Build a throwaway SQLite projection of the state as it was at a past time.
    #[command(long_about = SNAPSHOT_HELP)]
    Snapshot(SnapshotArgs),
    /// Move the group's offsets (dry run unless --execute); --to-earliest also empties the projection.
    #[command(long_about = admin::reset::HELP)]
    ResetOffsets(admin::ResetArgs),
    /// The group's state, members, lag per partition, rate and ETA, and the projection's last applied time.
    Status(admin::StatusArgs),
}

const REBUILD_HELP: &str = "\
Rebuild the projection from offset zero beside the live one, verify it, then swap.

1. Builds a shadow projection under the group GROUP.shadow, into DB.shadow.db (SQLite) or the \
schema SCHEMA_shadow (PostgreSQL), while the live department keeps consuming and serving. An \
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

const SNAPSHOT_HELP: &str = "\
Build a throwaway SQLite projection of the state as it was at a past time, for audits and \
disputes. Events count by when they happened (occurred_at), erasures by their record time. It \
reads the whole topic under a temporary consumer group, deleted afterwards, and triggers no side \
effects.

The topic is compacted, but only after min.compaction.lag.ms (one day by default): a snapshot \
as of a time older than that may lack orders whose earlier events were compacted away.";

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Exit 0 once everything up to the high watermarks taken at start is applied.
    #[arg(long)]
    pub until_caught_up: bool,

    #[command(flatten)]
    pub consume: ConsumeArgs,
}

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

/// How records are consumed and batched.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// At most this many records per database transaction.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// At most this many milliseconds between a batch's first record and its transaction.
    #[arg(long, default_value_t = 100)]
    pub batch_ms: u64,

    /// Where undecodable records go; never the orders topic or its registry.
    #[arg(long, default_value = "orders.dlq")]
    pub dead_letter_topic: String,
}

/// Shows the database URL without its password.
impl std::fmt::Debug for SharedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedArgs")
            .field("kafka", &self.kafka)
            .field("group_id", &self.group_id)
            .field(
                "database_url",
                &self.database_url.as_deref().map(db::redact),
            )
            .field("database_schema", &self.database_schema)
            .finish()
    }
}

impl SharedArgs {
    pub fn group_id<P: Projection>(&self) -> String {
        self.group_id.clone().unwrap_or_else(|| P::NAME.to_owned())
    }

    pub fn database_url<P: Projection>(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| db::default_url(P::NAME))
    }

    pub fn database_schema<P: Projection>(&self) -> String {
        self.database_schema
            .clone()
            .unwrap_or_else(|| P::NAME.to_owned())
    }

    /// Fails unless the orders topic exists with the partition count Sales recorded. Tools never
    /// wait for it (a department's run does), and nothing here ever creates it.
    pub async fn require_topic(&self) -> Result<i32, TopicError> {
        await_orders_topic(&self.kafka.client_config(), &self.kafka.topic, None).await
    }

    /// Connects to the department's database and brings its schema up to date.
    pub async fn connect<P: Projection>(&self, projection: &P) -> anyhow::Result<Database> {
        let schema = self.database_schema::<P>();
        Ok(db::connect_to(
            &self.database_url::<P>(),
            Some(&schema),
            projection.migrator(),
        )
        .await?)
    }
}

impl ConsumeArgs {
    /// Refuses a dead-letter topic that is the orders topic, where every poison record would be
    /// consumed again, for ever, or its registry, which only Sales writes.
    pub fn check(&self, topic: &str) -> anyhow::Result<()> {
        let dead_letters = &self.dead_letter_topic;
        if *dead_letters == topic || *dead_letters == registry_topic(topic) {
            bail!(
                "--dead-letter-topic {dead_letters} is the orders topic (--topic {topic}) or its registry: \
                 poison records must go elsewhere (the default is orders.dlq)"
            );
        }
        Ok(())
    }

    pub fn options(&self, group_id: &str, stop: Stop) -> RunOptions {
        RunOptions {
            group_id: group_id.to_owned(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            batch_size: self.batch_size as usize,
            batch_timeout: Duration::from_millis(self.batch_ms),
            stop,
            as_of: None,
            side_effects: true,
        }
    }
}

/// ISO 8601 to milliseconds since the epoch: RFC 3339, a date-time without offset (UTC), or a
/// date (midnight UTC).
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, OffsetDateTime, PrimitiveDateTime};
    let millis = |at: OffsetDateTime| (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(millis(at));
    }
    let local = text.trim().replacen(' ', "T", 1);
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    formats
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(&local, format).ok())
        .or_else(|| Date::parse(&local, format_description!("[year]-[month]-[day]")).ok().map(Date::midnight))
        .map(|at| millis(at.assume_utc()))
        .ok_or_else(|| {
            format!(
                "expected ISO 8601: 2026-11-20T12:00:00Z, 2026-11-20T12:00:00+01:00, 2026-11-20T12:00:00 \
                 (UTC) or 2026-11-20 (midnight UTC), got {text:?}"
            )
        })
}

impl Command {
    /// How the command consumes, if it does.
    fn consume(&self) -> Option<&ConsumeArgs> {
        match self {
            Command::Run(args) => Some(&args.consume),
            Command::Rebuild(args) => Some(&args.consume),
            Command::Snapshot(args) => Some(&args.consume),
            Command::Report | Command::ResetOffsets(_) | Command::Status(_) => None,
        }
    }
}

/// Runs one command of a department. Library entry point for binaries and tests.
pub async fn execute<P: Projection>(
    projection: &P,
    cli: &DepartmentCli,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<RunStats>> {
    let shared = &cli.shared;
    if let Some(consume) = cli.command.consume() {
        consume.check(&shared.kafka.topic)?;
    }
    match &cli.command {
        Command::Run(run) => {
            let db = shared.connect(projection).await?;
            let stop = if run.until_caught_up {
                Stop::CaughtUp
            } else {
                Stop::Never
            };
            let options = run.consume.options(&shared.group_id::<P>(), stop);
            let stats = runtime::run(projection, &db, &shared.kafka, &options, shutdown)
                .await
                .with_context(|| format!("{} stopped with an error", P::NAME))?;
            Ok(Some(stats))
        }
        Command::Report => {
            let db = shared.connect(projection).await?;
            let report = projection
                .report(&db.pool)
                .await
                .context("cannot read the projection")?;
            print!("{report}");
            Ok(None)
        }
        Command::Rebuild(args) if args.discard => {
            rebuild::discard_shadow(projection, shared).await?;
            Ok(None)
        }
        Command::Rebuild(args) => {
            rebuild::rebuild_shadow(projection, shared, args, shutdown).await?;
            Ok(None)
        }
        Command::Snapshot(args) => {
            let stats = rebuild::snapshot(projection, shared, args, shutdown).await?;
            println!(
                "snapshot as of {} written to {}",
                args.as_of,
                args.out.display()
            );
            Ok(Some(stats))
        }
        Command::ResetOffsets(args) => {
            admin::reset_offsets(projection, shared, args).await?;
            Ok(None)
        }
        Command::Status(args) => {
            admin::status::<P>(shared, args, shutdown).await?;
            Ok(None)
        }
    }
}

/// The whole `main` of a department binary: logging, flags, signals, exit code.
pub async fn main<P: Projection>(projection: P) -> ExitCode {
    edison_common::telemetry::init_logging();
    run_main(&projection, &DepartmentCli::parse()).await
}

/// [`main`] for a department with flags of its own: `build` makes the projection from them.
pub async fn main_with<A: Args, P: Projection>(
    build: impl FnOnce(A) -> anyhow::Result<P>,
) -> ExitCode {
    edison_common::telemetry::init_logging();
    let DepartmentCliWith {
        shared,
        department,
        command,
    } = DepartmentCliWith::<A>::parse();
    match build(department) {
        Ok(projection) => run_main(&projection, &DepartmentCli { shared, command }).await,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_main<P: Projection>(projection: &P, cli: &DepartmentCli) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    match execute(projection, cli, shutdown).await {
        Ok(Some(stats)) => {
            println!(
                "{}: consumed {}, applied {}, dead-lettered {}",
                P::NAME,
                stats.consumed,
                stats.applied,
                stats.dead_lettered
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing the current batch");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn neither_help_nor_debug_shows_the_database_password() {
        std::env::set_var("DATABASE_URL", "postgres://edison:s3cret@db/edison");
        let help = DepartmentCli::command().render_long_help().to_string();
        let cli = DepartmentCli::try_parse_from(["warehouse", "report"]).unwrap();
        std::env::remove_var("DATABASE_URL");
        assert!(!help.contains("s3cret"), "{help}");
        assert!(!format!("{cli:?}").contains("s3cret"));
        assert_eq!(
            cli.shared.database_url.as_deref(),
            Some("postgres://edison:s3cret@db/edison")
        );
    }

    #[test]
    fn datetimes_parse_as_iso_8601_in_utc_unless_an_offset_is_given() {
        assert_eq!(
            parse_datetime("2025-11-24T16:00:00Z"),
            Ok(1_764_000_000_000)
        );
        assert_eq!(
            parse_datetime("2025-11-24T17:00:00+01:00"),
            Ok(1_764_000_000_000)
        );
        assert_eq!(parse_datetime("2025-11-24T16:00:00"), Ok(1_764_000_000_000));
        assert_eq!(
            parse_datetime("2025-11-24 16:00:00.250"),
            Ok(1_764_000_000_250)
        );
        assert_eq!(parse_datetime("2025-11-24T16:00"), Ok(1_764_000_000_000));
        assert_eq!(parse_datetime("2025-11-24"), Ok(1_763_942_400_000));
        assert!(parse_datetime("yesterday")
            .unwrap_err()
            .contains("ISO 8601"));
        assert!(parse_datetime("2025-13-01").is_err());
    }

    #[test]
    fn dead_letters_never_go_to_the_orders_topic_or_its_registry() {
        let check = |args: &[&str]| {
            let cli = DepartmentCli::try_parse_from(["warehouse"].iter().chain(args)).unwrap();
            cli.command
                .consume()
                .expect("a consuming command")
                .check(&cli.shared.kafka.topic)
        };
        assert!(check(&["run"]).is_ok());
        assert!(check(&["--topic", "o", "run", "--dead-letter-topic", "o.dlq"]).is_ok());
        for args in [
            &["run", "--dead-letter-topic", "orders"][..],
            &["--topic", "o", "run", "--dead-letter-topic", "o"],
            &[
                "--topic",
                "o",
                "snapshot",
                "--as-of",
                "2025-01-01",
                "--out",
                "x.db",
                "--dead-letter-topic",
                "o",
            ],
            &[
                "--topic",
                "o",
                "rebuild",
                "--shadow",
                "--dead-letter-topic",
                "o.schemas",
            ],
        ] {
            let message = check(args).unwrap_err().to_string();
            assert!(
                message.contains("is the orders topic"),
                "{args:?}: {message}"
            );
        }
    }
}
