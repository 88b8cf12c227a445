//! The commands every department has (`run`, `report`, `rebuild`, `snapshot`, `reset-offsets`,
//! `status`), their flags, and [`Department`], the plain descriptor the registry lists.
//!
//! Generic over [`Projection`]: nothing here names a department. The registry
//! (`departments::DEPARTMENTS`) lists one [`Department::of`] per department, and the binaries
//! (`cli`) only parse, look the department up there and call [`Department::run`].

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use edison_common::args::SharedArgs;

use crate::admin;
use crate::rebuild::{self, RebuildArgs, SnapshotArgs, REBUILD_HELP, SNAPSHOT_HELP};
use crate::runtime::{self, ConsumeArgs, Projection, RunStats, Stop};

/// A department's whole command line: the shared flags, its own flags `F`, and a command.
#[derive(Debug, Parser)]
#[command(version)]
pub struct DepartmentCli<F: Args = NoFlags> {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub flags: F,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags of a department that has none of its own.
#[derive(Debug, Clone, Default, Args)]
pub struct NoFlags {}

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

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Exit 0 once everything up to the high watermarks taken at start is applied.
    #[arg(long)]
    pub until_caught_up: bool,

    #[command(flatten)]
    pub consume: ConsumeArgs,
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

/// How a department is made from its own flags. Every projection that is `Default` has no flags
/// of its own; the mailer implements this by hand.
pub trait FromFlags: Projection + Sized {
    /// The department's own flags, flattened beside the shared ones.
    type Flags: Args + FromArgMatches + Clone + std::fmt::Debug;

    fn from_flags(flags: Self::Flags) -> anyhow::Result<Self>;
}

impl<P: Projection + Default> FromFlags for P {
    type Flags = NoFlags;

    fn from_flags(_: NoFlags) -> anyhow::Result<P> {
        Ok(P::default())
    }
}

/// What a department's command returns: the run's counts, for commands that consume.
pub type Outcome = anyhow::Result<Option<RunStats>>;

/// A department's command, running.
pub type Running = Pin<Box<dyn Future<Output = Outcome>>>;

/// A department as the registry lists it: plain data, and functions that monomorphise the generic
/// commands for its projection (a `Projection` is not object-safe, so the registry cannot hold one).
#[derive(Clone, Copy)]
pub struct Department {
    /// Its name: default consumer group, database file and PostgreSQL schema.
    pub name: &'static str,
    /// One line saying what it keeps.
    pub about: &'static str,
    /// The tables a rebuild empties.
    pub tables: &'static [&'static str],
    /// Whether it acts on the world (sends mail), so cannot be shadow-rebuilt.
    pub side_effects: bool,
    /// Its command line, for parsing and `--help`.
    pub command: fn() -> clap::Command,
    /// Builds the department from matches of [`Department::command`] and runs the command.
    pub run: fn(&ArgMatches, CancellationToken) -> Running,
}

impl Department {
    /// The descriptor of `P`.
    pub const fn of<P: FromFlags>() -> Department {
        Department {
            name: P::NAME,
            about: P::ABOUT,
            tables: P::TABLES,
            side_effects: P::SIDE_EFFECTS,
            command: command_of::<P>,
            run: run_of::<P>,
        }
    }
}

fn command_of<P: FromFlags>() -> clap::Command {
    DepartmentCli::<P::Flags>::command().name(P::NAME).about(P::ABOUT)
}

fn run_of<P: FromFlags>(matches: &ArgMatches, shutdown: CancellationToken) -> Running {
    let cli = DepartmentCli::<P::Flags>::from_arg_matches(matches);
    Box::pin(async move {
        let cli = cli?;
        let projection = P::from_flags(cli.flags.clone())?;
        execute(&projection, &cli, shutdown).await
    })
}

/// Runs one command of a department. Library entry point for binaries and tests.
pub async fn execute<P: Projection, F: Args>(projection: &P, cli: &DepartmentCli<F>, shutdown: CancellationToken) -> Outcome {
    let shared = &cli.shared;
    let topic = &shared.kafka.topic;
    if let Some(consume) = cli.command.consume() {
        consume.dead_letter_topic(topic)?;
    }
    let connect = || async { shared.connect(P::NAME, projection.migrator()).await };
    match &cli.command {
        Command::Run(run) => {
            let db = connect().await?;
            let stop = if run.until_caught_up { Stop::CaughtUp } else { Stop::Never };
            let options = run.consume.options(topic, &shared.group_id(P::NAME), stop)?;
            let stats = runtime::run(projection, &db, &shared.kafka, &options, shutdown)
                .await
                .with_context(|| format!("{} stopped with an error", P::NAME))?;
            // Closed, not dropped: SQLite then writes its WAL back into the file and removes it
            // (up to 40 MB after a rebuild), so the file alone holds the projection.
            db.pool.close().await;
            Ok(Some(stats))
        }
        Command::Report => {
            let db = connect().await?;
            let report = projection.report(&db.pool).await.context("cannot read the projection")?;
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
            println!("snapshot as of {} written to {}", args.as_of, args.out.display());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_help_nor_debug_shows_the_database_password() {
        std::env::set_var("DATABASE_URL", "postgres://edison:s3cret@db/edison");
        let help = DepartmentCli::<NoFlags>::command().render_long_help().to_string();
        let cli = DepartmentCli::<NoFlags>::try_parse_from(["warehouse", "report"]).unwrap();
        std::env::remove_var("DATABASE_URL");
        assert!(!help.contains("s3cret"), "{help}");
        assert!(!format!("{cli:?}").contains("s3cret"));
        assert_eq!(cli.shared.database_url.as_deref(), Some("postgres://edison:s3cret@db/edison"));
    }

    #[test]
    fn every_consuming_command_refuses_the_orders_topic_as_dead_letter_topic() {
        let check = |args: &[&str]| {
            let cli = DepartmentCli::<NoFlags>::try_parse_from(["warehouse"].iter().chain(args)).unwrap();
            cli.command.consume().expect("a consuming command").dead_letter_topic(&cli.shared.kafka.topic)
        };
        assert_eq!(check(&["run"]).unwrap(), "orders.dlq");
        assert_eq!(check(&["--topic", "o", "run"]).unwrap(), "o.dlq");
        for args in [
            &["run", "--dead-letter-topic", "orders"][..],
            &["--topic", "o", "snapshot", "--as-of", "2025-01-01", "--out", "x.db", "--dead-letter-topic", "o"],
            &["--topic", "o", "rebuild", "--shadow", "--dead-letter-topic", "o.schemas"],
        ] {
            let message = check(args).unwrap_err().to_string();
            assert!(message.contains("is the orders topic"), "{args:?}: {message}");
        }
    }
}
