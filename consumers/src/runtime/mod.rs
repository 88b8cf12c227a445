//! The shared consumer runtime.

mod args;
mod batch;
pub mod checkpoint;
mod consumer;
mod dead_letter;
pub mod planner;
mod progress;
pub mod sql;
pub mod table;

use std::future::Future;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};
use tokio_util::sync::CancellationToken;

pub use args::{ConsumeArgs, DeadLetterTopicError};
pub use batch::{collapse, Change};
pub use consumer::{run, ApplyError, RunOptions, RunStats, RuntimeError, Stop};
pub use dead_letter::{DeadLetter, HEADER_ERROR_KIND, HEADER_GROUP, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC, HEADER_ERROR_MESSAGE};

/// What a department adds to the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Facts the operator should see, one line each (the mailer: how many mails it recorded as
    /// historical, and why).
    pub notes: Vec<String>,
    /// Set when work the run decided on is left undone for a reason the department cannot fix
    /// by itself (mail pending because the transport failed). The run then exits non-zero
    /// with this message, so a script can tell.
    pub unfinished: Option<String>,
}

/// A department's projection of the order log.
///
/// `apply` runs inside the runtime's transaction, which commits before any offset is stored.
/// It must be idempotent and monotonic per order: rows keep the last applied `sequence` and
/// ignore events at or below it ([`sql::upsert`] does this).
pub trait Projection: Send + Sync + 'static {
    /// The default consumer group and database file name.
    const NAME: &'static str;

    /// One line saying what the projection keeps, for `--help` and `edison departments`.
    const ABOUT: &'static str;

    /// The tables a rebuild empties. Leave out what must survive one, such as the mailer's
    /// ledger of mail already sent.
    const TABLES: &'static [&'static str];

    /// Whether `after_commit` acts on the world (sends mail). Such a projection cannot be
    /// shadow-rebuilt: its ledger of what was done must carry over, not be rebuilt.
    const SIDE_EFFECTS: bool = false;

    /// How a batch is applied to a SQLite file, through SQLite's C API on a thread of the
    /// runtime's own, instead of `apply`: [`table::apply_sqlite`] for a one-table projection.
    /// `None` (the default): `apply` serves SQLite too.
    const APPLY_SQLITE: Option<table::SqliteApply> = None;

    /// The department's schema migrations.
    fn migrator(&self) -> &'static Migrator;

    /// Applies one batch. Each order appears at most once, with its latest change.
    fn apply(
        &self,
        conn: &mut AnyConnection,
        changes: &[Change],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Runs after each committed batch, outside its transaction: the place for side effects that
    /// `apply` recorded (the mailer sends the mail it logged). A failure is logged and the run
    /// goes on; what was recorded stays pending for the next call. Once `shutdown` is cancelled
    /// it should finish what is in hand and return, leaving the rest pending. Default: nothing.
    fn after_commit(
        &self,
        _pool: &AnyPool,
        _shutdown: &CancellationToken,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }

    /// Runs once when a run ends (caught up, or shut down), after the last commit: what the
    /// department has to say beside the runtime's counts. Default: nothing.
    fn summarize_run(&self, _pool: &AnyPool) -> impl Future<Output = Result<RunSummary, sqlx::Error>> + Send {
        async { Ok(RunSummary::default()) }
    }

    /// A human-readable summary of the projection.
    fn report(&self, pool: &AnyPool) -> impl Future<Output = Result<String, sqlx::Error>> + Send;
}
