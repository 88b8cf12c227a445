//! The command line every department binary shares: `run` and `report`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use edison_common::db::{self, Database};
use edison_common::kafka::KafkaArgs;

use crate::runtime::{self, Projection, RunOptions, RunStats, Stop};

#[derive(Debug, Parser)]
#[command(version, about = "A department of Edison Cars: consumes the orders topic into its own projection.")]
pub struct DepartmentCli {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// [`DepartmentCli`] with flags of the department's own, `A`, beside the shared ones.
#[derive(Debug, Parser)]
#[command(version, about = "A department of Edison Cars: consumes the orders topic into its own projection.")]
pub struct DepartmentCliWith<A: Args> {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub department: A,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every department takes.
#[derive(Debug, Clone, Args)]
pub struct SharedArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group [default: the department's name].
    #[arg(long, global = true)]
    pub group_id: Option<String>,

    /// The projection's database: sqlite://PATH, a file path, or postgres://...
    /// [default: sqlite://data/DEPARTMENT.db]
    #[arg(long, env = "DATABASE_URL", global = true)]
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
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Exit 0 once everything up to the high watermarks taken at start is applied.
    #[arg(long)]
    pub until_caught_up: bool,

    /// At most this many records per database transaction.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// At most this many milliseconds between a batch's first record and its transaction.
    #[arg(long, default_value_t = 100)]
    pub batch_ms: u64,

    /// Where undecodable records go.
    #[arg(long, default_value = "orders.dlq")]
    pub dead_letter_topic: String,

    /// Partitions for the orders topic, if this run creates it.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}

impl SharedArgs {
    pub fn group_id<P: Projection>(&self) -> String {
        self.group_id.clone().unwrap_or_else(|| P::NAME.to_owned())
    }

    /// Connects to the department's database and brings its schema up to date.
    pub async fn connect<P: Projection>(&self, projection: &P) -> anyhow::Result<Database> {
        let url = self.database_url.clone().unwrap_or_else(|| db::default_url(P::NAME));
        let schema = self.database_schema.as_deref().unwrap_or(P::NAME);
        Ok(db::connect_to(&url, Some(schema), projection.migrator()).await?)
    }
}

impl RunArgs {
    pub fn options<P: Projection>(&self, shared: &SharedArgs) -> RunOptions {
        RunOptions {
            group_id: shared.group_id::<P>(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            batch_size: self.batch_size as usize,
            batch_timeout: Duration::from_millis(self.batch_ms),
            stop: if self.until_caught_up { Stop::CaughtUp } else { Stop::Never },
            as_of: None,
            partitions: self.partitions,
        }
    }
}

/// Runs one command of a department. Library entry point for binaries and tests.
pub async fn execute<P: Projection>(
    projection: &P,
    cli: &DepartmentCli,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<RunStats>> {
    let db = cli.shared.connect(projection).await?;
    match &cli.command {
        Command::Run(run) => {
            let options = run.options::<P>(&cli.shared);
            let stats = runtime::run(projection, &db, &cli.shared.kafka, &options, shutdown)
                .await
                .with_context(|| format!("{} stopped with an error", P::NAME))?;
            Ok(Some(stats))
        }
        Command::Report => {
            let report = projection.report(&db.pool).await.context("cannot read the projection")?;
            print!("{report}");
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
pub async fn main_with<A: Args, P: Projection>(build: impl FnOnce(A) -> anyhow::Result<P>) -> ExitCode {
    edison_common::telemetry::init_logging();
    let DepartmentCliWith { shared, department, command } = DepartmentCliWith::<A>::parse();
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
