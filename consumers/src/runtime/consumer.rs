//! The consume → decode → batch → apply → store-offsets loop.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use edison_common::db::{is_transient, Database};
use edison_common::kafka::{await_topic, check_contract, ensure_topic, offsets_of, read_log_end_offsets, read_registry, registry_topic, total_lag, KafkaArgs, TopicError, TopicSpec};
use edison_schemas::{Codec, DecodeError, SchemaError};

use super::batch::{Change, Collapsed};
use super::{checkpoint, planner};
use super::dead_letter::{self, DeadLetter};
use super::progress::{CatchUp, LagBar};
use super::table::{self, SqliteWriter};
use super::{Projection, RunSummary};

/// How long the consumer may sit idle before it steps over transaction markers and
/// `--until-caught-up` asks the broker for the group's committed offsets.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// The same for a run that stops once caught up: idle there mostly means done, and the last
/// markers are stepped over only then.
const CATCH_UP_IDLE_CHECK: Duration = Duration::from_millis(50);
/// How often an idle consumer retries side effects left pending (e.g. while SMTP was down).
const SIDE_EFFECTS_RETRY: Duration = Duration::from_secs(30);
/// How many records a run that stops once caught up must have decoded to refresh the database's
/// planner statistics at its end.
const ANALYZE_AFTER: u64 = 10_000;
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How a department consumes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The consumer group; each department has its own.
    pub group_id: String,
    /// Where undecodable records go.
    pub dead_letter_topic: String,
    /// At most this many records per transaction.
    pub batch_size: usize,
    /// How long an idle database waits for more records before applying a batch that is not
    /// full; zero applies at once.
    pub linger: Duration,
    /// When the run ends by itself.
    pub stop: Stop,
    /// Apply only what happened at or before this time (ms since the epoch): events by their
    /// `occurred_at`, tombstones by their record timestamp. Later records are skipped. For
    /// point-in-time snapshots; `None` applies everything.
    pub as_of: Option<i64>,
    /// Whether to run the projection's `after_commit` side effects. Off for shadow rebuilds and
    /// snapshots, which must never mail anyone.
    pub side_effects: bool,
}

/// When a run ends by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stop {
    /// Only on shutdown.
    #[default]
    Never,
    /// Once the group has applied everything up to the high watermarks taken at start.
    CaughtUp,
    /// Once each partition is applied up to the given offset (partition → next offset). Records
    /// at or past it are left for a later run, so two projections can be compared at the
    /// same point of the log.
    AtOffsets(HashMap<i32, i64>),
}

/// What a run did. `applied + dead_lettered + skipped == consumed` always holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub consumed: u64,
    /// Records whose change went through a committed transaction (including no-op replays), or
    /// was already in the database.
    pub applied: u64,
    /// Of `applied`, the records below the database's checkpoint: an earlier run applied them,
    /// so they were not even decoded again.
    pub already_applied: u64,
    pub dead_lettered: u64,
    /// Records after the `as_of` time.
    pub skipped: u64,
    pub transactions: u64,
    /// How long the run had something to apply: its whole time but the waits for records.
    pub busy: Duration,
    /// What the projection said at the end ([`Projection::summarize_run`]).
    pub summary: RunSummary,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("applying a batch failed, and retrying cannot help: {0}")]
    Apply(#[from] ApplyError),
    #[error("cannot send to the dead-letter topic {topic}: {source}")]
    DeadLetter { topic: String, source: KafkaError },
    /// A record written with a schema this department cannot read. Not poison: skipping it
    /// would silently drop every event a newer Sales writes. Offsets stay before it.
    #[error(
        "the record at partition {partition}, offset {offset} of {topic} was written with schema          {fingerprint:016x}, which {reason}; stopping without moving past it (a Sales that writes a          new schema publishes it to {registry} first; or deploy a department built with it)"
    )]
    UnreadableSchema { topic: String, partition: i32, offset: i64, fingerprint: u64, registry: String, reason: String },
}

/// Why a batch's transaction failed: through sqlx, or through SQLite's C API.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The database's errors outside a batch's transaction (checkpoints, a run's summary) end a run
/// as a batch's would.
impl From<sqlx::Error> for RuntimeError {
    fn from(error: sqlx::Error) -> RuntimeError {
        RuntimeError::Apply(error.into())
    }
}

impl ApplyError {
    /// Whether the database is only unavailable right now: retry, offsets held.
    fn is_transient(&self) -> bool {
        match self {
            ApplyError::Sqlx(error) => is_transient(error),
            ApplyError::Sqlite(error) => table::is_transient(error),
        }
    }
}

/// Consumes the orders topic into `projection` until `shutdown` is cancelled or `options.stop`
/// says it is done.
///
/// Offsets are stored only after the transaction that applied their records commits (and after
/// their dead letters are acknowledged), and committed on revoke and on return.
pub async fn run<P: Projection>(
    projection: &P,
    db: &Database,
    kafka: &KafkaArgs,
    options: &RunOptions,
    shutdown: CancellationToken,
) -> Result<RunStats, RuntimeError> {
    let admin_config = kafka.client_config();
    // Made first, so that it finds the group's coordinator meanwhile; subscribed once the topic
    // exists, before the rest of the start-up, so that the group join overlaps that.
    let consumer_config = kafka.consumer_config(&options.group_id);
    let consumer: Arc<StreamConsumer<RuntimeContext>> =
        Arc::new(edison_common::kafka::create_with_context(&consumer_config, RuntimeContext::new(&consumer_config))?);
    let shape = await_topic(&admin_config, &kafka.topic, (options.stop == Stop::Never).then_some(&shutdown)).await?;
    consumer.subscribe(&[&kafka.topic])?;
    let producer: FutureProducer = edison_common::kafka::create(&kafka.producer_config())?;
    let dead_letter_topic = TopicSpec::dead_letter(&options.dead_letter_topic);
    // A progress bar while far behind, on a terminal only (no broker calls otherwise).
    let progress = async {
        if LagBar::wanted() {
            lag_at_start(&admin_config, &consumer, &kafka.topic).await.map_or_else(LagBar::hidden, LagBar::behind)
        } else {
            LagBar::hidden()
        }
    };
    // The rest of the start-up, side by side; no record is taken before all of it is done.
    let start = async {
        let (contract, dead_letters, positions, progress) = tokio::join!(
            check_contract(&admin_config, &kafka.topic, &shape),
            ensure_topic(&admin_config, &dead_letter_topic),
            positions(db, &admin_config, &kafka.topic, &options.stop),
            progress,
        );
        contract?;
        dead_letters?;
        positions.map(|positions| (positions, progress))
    };
    let (ready, first) = polling(start, &consumer).await;
    let ((mut catch_up, applied_before), progress) = ready?;
    let filter = Filter::new(options, applied_before);
    let sink = Sink { projection, db, writer: sqlite_writer::<P>(db, &kafka.topic)?, producer, topic: &kafka.topic, options };
    let mut worker = Worker {
        sink: sink.clone(),
        kafka,
        codec: Codec::new()?,
        stored: HashMap::new(),
        side_effects_due: false,
        stats: RunStats::default(),
    };
    info!(group = %options.group_id, topic = %kafka.topic, db = %db.display_url, "consuming");

    // Two stages overlap: while one batch's transaction runs (`in_flight`), the next one is
    // consumed and decoded (`pending`). Batches are applied one at a time and in order, and a
    // batch's offsets are stored only once its transaction committed, so stored offsets never
    // pass what is applied. While the database is busy, `pending` grows up to `batch_size`
    // (far behind: big batches, in which an order's several events collapse); when it is free,
    // what is there goes at once (caught up: a lone record is applied without waiting).
    let mut pending = Batch::default();
    let mut in_flight: Option<Flight<'_>> = None;
    // A record this run cannot read ends it, once the records before it are applied.
    let mut unreadable: Option<RuntimeError> = None;
    if let Some(received) = first {
        if let Err(error) = worker.take(&mut pending, &filter, &consumer, received).await {
            unreadable = Some(error);
        }
    }
    let mut side_effects_tried = Instant::now();
    let mut idle = Duration::ZERO;
    let idle_check = if catch_up.is_some() { CATCH_UP_IDLE_CHECK } else { IDLE_CHECK };
    let started = Instant::now();
    loop {
        if in_flight.is_none() {
            if shutdown.is_cancelled() {
                break;
            }
            if unreadable.is_none() {
                if let Err(error) = receive_ready(&mut worker, &mut pending, &filter, &consumer).await {
                    unreadable = Some(error);
                }
            }
            if !pending.is_empty() && (unreadable.is_some() || pending.len() >= options.batch_size || pending.waited(options.linger)) {
                in_flight = Some(Box::pin(sink.clone().apply(std::mem::take(&mut pending), shutdown.clone())));
            } else if pending.is_empty() {
                // Side effects wait until everything received is applied, so mail is never sent
                // for an order whose erasure was already at hand.
                if worker.side_effects_due {
                    worker.side_effects_due = false;
                    worker.side_effects(&shutdown).await;
                }
                if unreadable.is_some() {
                    break;
                }
                if catch_up.as_ref().is_some_and(|c| c.pending().is_empty()) {
                    info!("caught up with the offsets to stop at");
                    break;
                }
            }
        }
        // Idle: nothing to apply; the time until a record comes does not count as busy.
        let waiting = pending.is_empty() && in_flight.is_none();
        let idle_from = waiting.then(Instant::now);
        // A run that stops once caught up, whose position already reaches its targets, has only
        // transaction markers left: it steps over them at once instead of after an idle wait.
        let idle_wait = match &catch_up {
            Some(catch_up) if waiting && consumer.position().is_ok_and(|at| catch_up.reached_by(&offsets_of(&at))) => Duration::ZERO,
            _ => idle_check,
        };
        let linger = pending.first_at.map(|at| at + options.linger);
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if in_flight.is_none() => break,
            applied = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                match applied? {
                    Some(batch) => worker.finish(&consumer, batch, catch_up.as_mut()).await,
                    // Shutdown interrupted a retry: nothing stored, the batch is consumed again.
                    None => break,
                }
                progress.advance_to(worker.stats.consumed);
            }
            received = consumer.recv(), if unreadable.is_none() && pending.len() < options.batch_size => {
                if let Err(error) = worker.take(&mut pending, &filter, &consumer, received).await {
                    unreadable = Some(error);
                }
            }
            _ = sleep_until_or_never(linger), if in_flight.is_none() && !pending.is_empty() => {}
            _ = sleep(idle_wait), if waiting => {
                if !worker.step_over_markers(&consumer, &filter, catch_up.as_mut(), &shutdown).await? {
                    break;
                }
                if let Some(catch_up) = &catch_up {
                    // Times out while the group rebalances (e.g. waiting out a killed member's
                    // session); the next idle tick asks again.
                    match committed(&consumer, &kafka.topic, catch_up.pending()).await {
                        Ok(offsets) if catch_up.reached_by(&offsets) => {
                            info!("the group's committed offsets reach the offsets to stop at");
                            break;
                        }
                        Ok(_) => {}
                        Err(error) => debug!(%error, "cannot read the group's committed offsets yet"),
                    }
                }
                if side_effects_tried.elapsed() >= SIDE_EFFECTS_RETRY {
                    worker.side_effects(&shutdown).await;
                    side_effects_tried = Instant::now();
                }
            }
        }
        if let Some(from) = idle_from {
            idle += from.elapsed();
        }
    }
    if let Some(error) = unreadable {
        commit_stored(consumer.as_ref());
        return Err(error);
    }

    if !shutdown.is_cancelled() {
        // Caught up, so every tombstone is applied: a last try at what is still pending.
        worker.side_effects(&shutdown).await;
    }
    commit_stored(consumer.as_ref());
    // Closing the consumer (which leaves the group) and dropping the producer each wait out a
    // poll of up to 100 ms in rust-rdkafka: side by side, and beside the last database work.
    let Worker { sink: Sink { producer, .. }, mut stats, .. } = worker;
    let producers = (producer, sink.producer);
    let closing = [
        tokio::task::spawn_blocking(move || drop(consumer)),
        tokio::task::spawn_blocking(move || drop(producers)),
    ];
    stats.busy = started.elapsed().saturating_sub(idle);
    // The planner's measurement: how fast this projection replays. Only runs that stop once
    // caught up measure it; a live run's trickle of tiny batches would understate it.
    if options.stop != Stop::Never {
        let decoded = stats.consumed - stats.already_applied;
        if let Err(error) = planner::record_rate(&db.pool, &kafka.topic, decoded, stats.busy).await {
            warn!(%error, "cannot record this run's apply rate");
        }
        // A rebuild or backfill: what follows (reports, the next replay) is planned on what the
        // database holds now.
        if decoded >= ANALYZE_AFTER {
            if let Err(error) = db.analyze().await {
                warn!(%error, "cannot refresh the database's planner statistics");
            }
        }
    }
    let summary = projection.summarize_run(&db.pool).await;
    for closed in closing {
        closed.await.expect("dropping a Kafka client panicked");
    }
    stats.summary = summary?;
    info!(consumed = stats.consumed, applied = stats.applied, dead_lettered = stats.dead_lettered, "stopped");
    Ok(stats)
}

/// A batch being applied: its transaction, then its dead letters. `None` if shutdown interrupted
/// a retry.
type Flight<'a> = Pin<Box<dyn Future<Output = Result<Option<Batch>, RuntimeError>> + Send + 'a>>;

/// Runs `start` while polling `consumer`, so that the group's assignment is taken, and its
/// partitions fetched, meanwhile. Polling stops at the first record (or error) delivered, which is
/// returned for the loop to take.
async fn polling<'c, T>(
    start: impl Future<Output = T>,
    consumer: &'c StreamConsumer<RuntimeContext>,
) -> (T, Option<KafkaResult<BorrowedMessage<'c>>>) {
    tokio::pin!(start);
    tokio::select! {
        started = &mut start => (started, None),
        received = consumer.recv() => (start.await, Some(received)),
    }
}

/// Takes every record librdkafka already holds, without waiting, up to a full batch.
async fn receive_ready<P: Projection>(
    worker: &mut Worker<'_, P>,
    pending: &mut Batch,
    filter: &Filter,
    consumer: &StreamConsumer<RuntimeContext>,
) -> Result<(), RuntimeError> {
    while pending.len() < worker.sink.options.batch_size {
        let Some(received) = consumer.recv().now_or_never() else { return Ok(()) };
        worker.take(pending, filter, consumer, received).await?;
    }
    Ok(())
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Records consumed since the last transaction.
#[derive(Default)]
struct Batch {
    changes: Collapsed,
    dead_letters: Vec<DeadLetter>,
    /// Partition → next offset to store once this batch is applied.
    next_offsets: HashMap<i32, i64>,
    consumed: u64,
    skipped: u64,
    already_applied: u64,
    /// When its first record came.
    first_at: Option<Instant>,
    /// Whether applying it changed anything, once applied (side effects may be due).
    changed: bool,
}

/// Which records a run takes.
struct Filter {
    stop_at: Option<HashMap<i32, i64>>,
    as_of: Option<i64>,
    /// Partition → the database's checkpoint: records before it are applied already.
    applied_before: HashMap<i32, i64>,
}

impl Filter {
    fn new(options: &RunOptions, applied_before: HashMap<i32, i64>) -> Filter {
        let stop_at = match &options.stop {
            Stop::AtOffsets(targets) => Some(targets.clone()),
            _ => None,
        };
        Filter { stop_at, as_of: options.as_of, applied_before }
    }

    /// Whether the database already holds the record's effect: it lies before the checkpoint
    /// written in the same transaction as the projection.
    fn is_applied_before(&self, message: &BorrowedMessage<'_>) -> bool {
        self.applied_before.get(&message.partition()).is_some_and(|next| message.offset() < *next)
    }

    /// The furthest offset of `partition` this run may store: `position`, unless the run stops
    /// before it. `None` for a partition with nothing to apply.
    fn cap(&self, partition: i32, position: i64) -> Option<i64> {
        match &self.stop_at {
            Some(targets) => targets.get(&partition).map(|target| position.min(*target)),
            None => Some(position),
        }
    }

    /// Whether the record lies at or past its partition's stop offset. A partition without one
    /// has nothing to apply.
    fn is_after_stop(&self, message: &BorrowedMessage<'_>) -> bool {
        self.stop_at
            .as_ref()
            .is_some_and(|targets| targets.get(&message.partition()).is_none_or(|target| message.offset() >= *target))
    }

    fn is_after_as_of(&self, change: &Change, message: &BorrowedMessage<'_>) -> bool {
        let Some(as_of) = self.as_of else { return false };
        match change {
            Change::Upsert(event) => event.occurred_at > as_of,
            Change::Erase { .. } => message.timestamp().to_millis().is_some_and(|at| at > as_of),
        }
    }
}

impl Batch {
    fn len(&self) -> usize {
        self.consumed as usize
    }

    fn is_empty(&self) -> bool {
        self.consumed == 0
    }

    /// Whether its first record came at least `linger` ago.
    fn waited(&self, linger: Duration) -> bool {
        self.first_at.is_some_and(|at| at.elapsed() >= linger)
    }

    /// Adds the record, or returns the fingerprint of its writer schema if `codec` does not know
    /// it; the record is then not taken, and the caller learns the schema or stops.
    fn add(
        &mut self,
        codec: &Codec,
        filter: &Filter,
        consumer: &StreamConsumer<RuntimeContext>,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), u64> {
        if filter.is_after_stop(message) {
            let mut partition = TopicPartitionList::new();
            partition.add_partition(message.topic(), message.partition());
            if let Err(error) = consumer.pause(&partition) {
                warn!(%error, "cannot pause a partition past its stop offset");
            }
            return Ok(());
        }
        // Before the checkpoint: applied by an earlier run, so not decoded again.
        let decoded = if filter.is_applied_before(message) {
            None
        } else {
            match decode(codec, message) {
                Err(Rejected::UnknownSchema(fingerprint)) => return Err(fingerprint),
                decoded => Some(decoded),
            }
        };
        self.consumed += 1;
        self.first_at.get_or_insert_with(Instant::now);
        self.next_offsets.insert(message.partition(), message.offset() + 1);
        match decoded {
            None => self.already_applied += 1,
            Some(Ok(change)) if filter.is_after_as_of(&change, message) => self.skipped += 1,
            Some(Ok(change)) => self.changes.push(change),
            Some(Err(Rejected::UnknownSchema(_))) => unreachable!("returned above"),
            Some(Err(Rejected::Poison(kind, error))) => {
                warn!(partition = message.partition(), offset = message.offset(), kind, %error, "dead-lettering a record");
                self.dead_letters.push(DeadLetter {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    kind,
                    message: error,
                });
            }
        }
        Ok(())
    }
}

/// Why a record cannot be applied.
enum Rejected {
    /// Its writer schema is not known (yet): learn it or stop, never skip.
    UnknownSchema(u64),
    /// It never will be: (kind, message) for the dead-letter topic.
    Poison(&'static str, String),
}

/// A record as a change, or why it is not one.
fn decode(codec: &Codec, message: &BorrowedMessage<'_>) -> Result<Change, Rejected> {
    let poison = |kind, text: String| Rejected::Poison(kind, text);
    let order_id = message
        .key()
        .and_then(|key| std::str::from_utf8(key).ok())
        .filter(|key| Uuid::parse_str(key).is_ok())
        .ok_or_else(|| poison("invalid_key", "the key is not an order id (UUID text)".to_owned()))?;
    let Some(value) = message.payload() else {
        return Ok(Change::Erase { order_id: order_id.to_owned() });
    };
    if value.is_empty() {
        return Err(poison("empty_value", "an empty value is not a tombstone (null)".to_owned()));
    }
    let event = codec.decode(value).map_err(|error| match error {
        DecodeError::UnknownSchema(fingerprint) => Rejected::UnknownSchema(fingerprint),
        error => poison(error.kind(), error.to_string()),
    })?;
    if event.order.order_id != order_id {
        let text = format!("the key {order_id} differs from the event's order id {}", event.order.order_id);
        return Err(poison("key_mismatch", text));
    }
    if event.sequence < 1 {
        return Err(poison("invalid_sequence", format!("sequence {} is below 1", event.sequence)));
    }
    Ok(Change::Upsert(event))
}

/// What applies batches: the projection, its database and the dead-letter producer. Cheap to
/// clone, so a batch's transaction can run while the poll loop goes on.
struct Sink<'a, P> {
    projection: &'a P,
    db: &'a Database,
    /// Applies the batches on SQLite, for a projection that offers it ([`Projection::APPLY_SQLITE`]);
    /// `None`: sqlx applies them.
    writer: Option<Arc<SqliteWriter>>,
    producer: FutureProducer,
    topic: &'a str,
    options: &'a RunOptions,
}

impl<P> Clone for Sink<'_, P> {
    fn clone(&self) -> Self {
        Sink { producer: self.producer.clone(), writer: self.writer.clone(), ..*self }
    }
}

impl<P: Projection> Sink<'_, P> {
    /// Applies the batch in one transaction (retried while the database is unavailable), then
    /// sends its dead letters. `None` if shutdown interrupted a retry: nothing was applied.
    async fn apply(self, mut batch: Batch, shutdown: CancellationToken) -> Result<Option<Batch>, RuntimeError> {
        let changes = std::mem::take(&mut batch.changes).into_changes();
        batch.changed = !changes.is_empty();
        // Dead letters alone still move the checkpoint, so it never lags the stored offsets.
        if !batch.next_offsets.is_empty() && !self.apply_with_retry(changes, &batch.next_offsets, &shutdown).await? {
            return Ok(None);
        }
        if !batch.dead_letters.is_empty() {
            let topic = &self.options.dead_letter_topic;
            dead_letter::send_all(&self.producer, topic, self.topic, &self.options.group_id, &batch.dead_letters)
                .await
                .map_err(|source| RuntimeError::DeadLetter { topic: topic.clone(), source })?;
        }
        Ok(Some(batch))
    }

    /// Retries while the database is unavailable; offsets stay where they are meanwhile.
    async fn apply_with_retry(
        &self,
        mut changes: Vec<Change>,
        next_offsets: &HashMap<i32, i64>,
        shutdown: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        let mut delay = Duration::from_millis(200);
        loop {
            let error = match self.transaction(changes, next_offsets).await {
                Ok(()) => return Ok(true),
                Err((error, unapplied)) if error.is_transient() => {
                    changes = unapplied;
                    error
                }
                Err((error, _)) => return Err(RuntimeError::Apply(error)),
            };
            warn!(%error, retry_in = ?delay, "database busy or unavailable; retrying, offsets held");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                _ = sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
    }

    /// One try at the batch's transaction; a failed one gives `changes` back for the next.
    async fn transaction(&self, changes: Vec<Change>, next_offsets: &HashMap<i32, i64>) -> Result<(), (ApplyError, Vec<Change>)> {
        if let Some(writer) = &self.writer {
            return writer.apply(changes, next_offsets).await.map_err(|(error, changes)| (error.into(), changes));
        }
        let applied = async {
            let mut tx = self.db.pool.begin().await?;
            if !changes.is_empty() {
                self.projection.apply(&mut tx, &changes).await?;
            }
            checkpoint::record(&mut tx, self.topic, next_offsets).await?;
            tx.commit().await
        };
        applied.await.map_err(|error| (error.into(), changes))
    }
}

/// The runtime's own SQLite connection for a projection that applies through SQLite's C API, on a
/// SQLite file; `None` otherwise.
fn sqlite_writer<P: Projection>(db: &Database, topic: &str) -> Result<Option<Arc<SqliteWriter>>, RuntimeError> {
    let (Some(apply), Some(path)) = (P::APPLY_SQLITE, &db.sqlite_file) else { return Ok(None) };
    let writer = SqliteWriter::start(path, topic, apply).map_err(ApplyError::from)?;
    Ok(Some(Arc::new(writer)))
}

/// The poll loop's state: decoding, and what happens once a batch is applied.
struct Worker<'a, P> {
    sink: Sink<'a, P>,
    /// For reading the schema registry topic.
    kafka: &'a KafkaArgs,
    codec: Codec,
    /// Partition → the offset this run last stored.
    stored: HashMap<i32, i64>,
    /// Whether an applied batch changed something whose side effects have not run yet.
    side_effects_due: bool,
    stats: RunStats,
}

impl<P: Projection> Worker<'_, P> {
    /// Adds what the consumer delivered to `batch`; a consumer error is only reported
    /// (librdkafka reconnects and retries by itself).
    async fn take(
        &mut self,
        batch: &mut Batch,
        filter: &Filter,
        consumer: &StreamConsumer<RuntimeContext>,
        received: KafkaResult<BorrowedMessage<'_>>,
    ) -> Result<(), RuntimeError> {
        match received {
            Ok(message) => self.add(batch, filter, consumer, &message).await,
            Err(error) => {
                warn!(%error, "consumer error");
                Ok(())
            }
        }
    }

    /// Adds the record to `batch`. A writer schema this build does not know is looked up in the
    /// registry topic Sales publishes its schemas to, and resolved against ours; a schema found
    /// nowhere (or not readable as ours) stops the run before the record.
    async fn add(
        &mut self,
        batch: &mut Batch,
        filter: &Filter,
        consumer: &StreamConsumer<RuntimeContext>,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), RuntimeError> {
        let Err(fingerprint) = batch.add(&self.codec, filter, consumer, message) else { return Ok(()) };
        let registry = registry_topic(self.sink.topic);
        let unreadable = |reason: String| RuntimeError::UnreadableSchema {
            topic: self.sink.topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            fingerprint,
            registry: registry.clone(),
            reason,
        };
        info!(fingerprint = format!("{fingerprint:016x}"), %registry, "a record has a writer schema this build does not know; reading the registry");
        let known = read_registry(&self.kafka.client_config(), self.sink.topic).await?;
        let Some(schema) = known.schemas.get(&fingerprint) else {
            return Err(unreadable(format!("neither this build nor {registry} knows")));
        };
        let registered = self.codec.register(schema).map_err(|error| unreadable(format!("this build cannot read: {error}")))?;
        info!(fingerprint = format!("{fingerprint:016x}"), registered = format!("{registered:016x}"), "learnt a writer schema from the registry");
        match batch.add(&self.codec, filter, consumer, message) {
            Ok(()) => Ok(()),
            // The registry's schema under this key fingerprints otherwise.
            Err(_) => Err(unreadable(format!("{registry} holds a schema under this key that fingerprints as {registered:016x}"))),
        }
    }

    /// Stores an applied batch's offsets and counts it; the side effects it may have recorded
    /// become due.
    async fn finish(
        &mut self,
        consumer: &StreamConsumer<RuntimeContext>,
        batch: Batch,
        catch_up: Option<&mut CatchUp>,
    ) {
        let mut offsets = TopicPartitionList::new();
        for (&partition, &next) in &batch.next_offsets {
            offsets
                .add_partition_offset(self.sink.topic, partition, Offset::Offset(next))
                .expect("a plain offset is always valid");
        }
        // Fails only for partitions revoked meanwhile; their new owner re-applies them, harmlessly.
        if let Err(error) = consumer.store_offsets(&offsets) {
            debug!(%error, "could not store offsets of revoked partitions");
        }
        self.stored.extend(&batch.next_offsets);
        if let Some(catch_up) = catch_up {
            for (&partition, &next) in &batch.next_offsets {
                catch_up.record_applied(partition, next);
            }
        }
        self.side_effects_due |= batch.changed;
        let dead = batch.dead_letters.len() as u64;
        self.stats.consumed += batch.consumed;
        self.stats.dead_lettered += dead;
        self.stats.skipped += batch.skipped;
        self.stats.already_applied += batch.already_applied;
        self.stats.applied += batch.consumed - dead - batch.skipped;
        self.stats.transactions += u64::from(!batch.next_offsets.is_empty());
        debug!(records = batch.consumed, dead_letters = dead, "batch applied");
    }

    /// Moves the stored offsets over what librdkafka consumed without delivering: the markers
    /// that end each of Sales' transactions, and aborted records. Otherwise the committed offset
    /// of a caught-up partition stays one short of its end, forever behind by one in Kafka's own
    /// lag, and a catch-up run never reaches its target. Called while idle, when every record
    /// delivered is applied, so the consumer's position is exactly what is done; its checkpoint
    /// moves in a transaction of its own, like any batch's. Returns `false` if shutdown interrupted
    /// its retry.
    async fn step_over_markers(
        &mut self,
        consumer: &StreamConsumer<RuntimeContext>,
        filter: &Filter,
        catch_up: Option<&mut CatchUp>,
        shutdown: &CancellationToken,
    ) -> Result<bool, RuntimeError> {
        let mut markers = Batch::default();
        for position in consumer.position()?.elements_for_topic(self.sink.topic) {
            let Offset::Offset(offset) = position.offset() else { continue };
            let partition = position.partition();
            let Some(next) = filter.cap(partition, offset) else { continue };
            if self.stored.get(&partition).is_none_or(|stored| next > *stored) {
                markers.next_offsets.insert(partition, next);
            }
        }
        if markers.next_offsets.is_empty() {
            return Ok(true);
        }
        debug!(offsets = ?markers.next_offsets, "stepping over transaction markers");
        match self.sink.clone().apply(markers, shutdown.clone()).await? {
            Some(markers) => {
                self.finish(consumer, markers, catch_up).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs the projection's side effects, if this run has them on. A failure leaves them
    /// pending for the next call.
    async fn side_effects(&self, shutdown: &CancellationToken) {
        let Sink { projection, db, options, .. } = &self.sink;
        if !(P::SIDE_EFFECTS && options.side_effects) {
            return;
        }
        if let Err(error) = projection.after_commit(&db.pool, shutdown).await {
            warn!(%error, "side effects failed; they stay pending");
        }
    }
}

/// Commits the offsets stored so far. "Nothing stored" is not an error.
fn commit_stored<C: ConsumerContext>(consumer: &impl Consumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => warn!(%error, "committing offsets failed; the next run re-applies from the last commit"),
    }
}

/// Logs rebalances, commits stored offsets before partitions are revoked (so the next owner
/// starts where this one stopped), and says where each assigned partition starts.
struct RuntimeContext {
    /// Whether a partition the group never committed starts at its log start
    /// (`auto.offset.reset=earliest`, unless `-X` says otherwise).
    from_log_start: bool,
}

impl RuntimeContext {
    fn new(config: &ClientConfig) -> RuntimeContext {
        let from_log_start = matches!(config.get("auto.offset.reset"), Some("earliest" | "smallest" | "beginning"));
        RuntimeContext { from_log_start }
    }

    /// Where each assigned partition starts: its committed offset, or its log start if the group
    /// never committed it. librdkafka finds both itself, but it waits 100 ms before it asks for
    /// the log start of a partition without a commit, and it then starts fetching as each answer
    /// comes, so its first fetch holds one partition and, if that one is empty, waits
    /// `fetch.wait.max.ms` on it. If a look-up fails, the assignment is left to librdkafka.
    fn start_offsets(&self, consumer: &BaseConsumer<Self>, assigned: &TopicPartitionList) -> TopicPartitionList {
        // An empty list would ask for every committed offset of the group.
        if assigned.count() == 0 {
            return assigned.clone();
        }
        let look_up = || -> KafkaResult<TopicPartitionList> {
            let mut start = consumer.committed_offsets(assigned.clone(), BROKER_TIMEOUT)?;
            let mut log_starts = TopicPartitionList::new();
            for partition in start.elements() {
                partition.error()?;
                if partition.offset() == Offset::Invalid && self.from_log_start {
                    // ListOffsets' timestamp -2 asks for the log start.
                    log_starts.add_partition_offset(partition.topic(), partition.partition(), Offset::Beginning)?;
                }
            }
            if log_starts.count() > 0 {
                for partition in consumer.offsets_for_times(log_starts, BROKER_TIMEOUT)?.elements() {
                    partition.error()?;
                    // Anything but an offset stays with librdkafka.
                    if let Offset::Offset(offset) = partition.offset() {
                        start.set_partition_offset(partition.topic(), partition.partition(), Offset::Offset(offset))?;
                    }
                }
            }
            Ok(start)
        };
        look_up().unwrap_or_else(|error| {
            debug!(%error, "cannot look up where the assigned partitions start; librdkafka does");
            assigned.clone()
        })
    }
}

impl ClientContext for RuntimeContext {}

impl ConsumerContext for RuntimeContext {
    /// rust-rdkafka's own, but an assignment starts where [`RuntimeContext::start_offsets`] says.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let done = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let start = self.start_offsets(consumer, partitions);
                let done = if cooperative { consumer.incremental_assign(&start) } else { consumer.assign(&start) };
                let ids: Vec<i32> = start.elements().iter().map(|p| p.partition()).collect();
                info!(?ids, "partitions assigned");
                done
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = partitions.count(), "partitions revoked; committing");
                commit_stored(consumer);
                if cooperative { consumer.incremental_unassign(partitions) } else { consumer.unassign() }
            }
            err => {
                warn!(error = %RDKafkaErrorCode::from(err), "rebalancing failed; unassigning");
                if cooperative { consumer.incremental_unassign(partitions) } else { consumer.unassign() }
            }
        };
        if let Err(error) = done {
            warn!(%error, "cannot apply the rebalance");
        }
    }
}

/// Where a run starts and stops: what it has still to apply, if it stops by itself, and the
/// database's checkpoints ([`applied_before`]).
async fn positions(
    db: &Database,
    config: &ClientConfig,
    topic: &str,
    stop: &Stop,
) -> Result<(Option<CatchUp>, HashMap<i32, i64>), RuntimeError> {
    checkpoint::ensure_table(&db.pool).await?;
    let checkpoints = checkpoint::read(&db.pool, topic).await?;
    // One look-up of the watermarks serves both, and none is made if neither needs it.
    let marks = if *stop == Stop::Never && checkpoints.is_empty() { Vec::new() } else { watermarks(config, topic).await? };
    Ok((catch_up(stop, &marks), applied_before(checkpoints, &marks)))
}

/// What a run that stops by itself has still to apply, from the watermarks at start; `None` for
/// a run that never does.
fn catch_up(stop: &Stop, marks: &[(i32, i64, i64)]) -> Option<CatchUp> {
    match stop {
        Stop::Never => None,
        Stop::CaughtUp => Some(CatchUp::new(marks.iter().copied())),
        Stop::AtOffsets(offsets) => Some(CatchUp::new(
            marks.iter().map(|&(partition, low, _)| (partition, low, offsets.get(&partition).copied().unwrap_or(low))),
        )),
    }
}

/// Partition → the database's checkpoint: where an earlier run got to, in the same
/// transactions as the projection. A new group, offsets Kafka expired, or a crash between a
/// commit and the offset commit replay what lies before it; those records are stepped over
/// undecoded (as kafka-delta-ingest does), where the sequence gate would only make them no-ops
/// at the cost of decoding and a statement each. `reset-offsets` moves the checkpoint back with
/// the group, so a reset still applies events again. A checkpoint past the partition's log end
/// (in `marks`, the watermarks at start) belongs to an earlier topic of the same name, and is not
/// trusted.
fn applied_before(checkpoints: Vec<checkpoint::Checkpoint>, marks: &[(i32, i64, i64)]) -> HashMap<i32, i64> {
    let ends: HashMap<i32, i64> = marks.iter().map(|&(partition, _, high)| (partition, high)).collect();
    let mut applied = HashMap::new();
    for checkpoint in checkpoints {
        match ends.get(&checkpoint.partition) {
            Some(&end) if checkpoint.next_offset <= end => {
                applied.insert(checkpoint.partition, checkpoint.next_offset);
            }
            end => warn!(
                partition = checkpoint.partition,
                checkpoint = checkpoint.next_offset,
                log_end = ?end,
                "the database's checkpoint lies past the log end (was the topic recreated?); applying every record again, gated by sequence"
            ),
        }
    }
    applied
}

/// (partition, low, high) for every partition of `topic`.
async fn watermarks(config: &ClientConfig, topic: &str) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
    let marks = read_log_end_offsets(config, topic).await?;
    Ok(marks.into_iter().map(|w| (w.partition, w.low, w.high)).collect())
}

/// How many events the group is behind on `topic` now, for the progress bar; `None` if the
/// broker cannot say.
async fn lag_at_start(config: &ClientConfig, consumer: &Arc<StreamConsumer<RuntimeContext>>, topic: &str) -> Option<i64> {
    let marks = watermarks(config, topic).await.ok()?;
    let offsets = committed(consumer, topic, marks.iter().map(|(partition, _, _)| *partition).collect()).await.ok()?;
    Some(total_lag(marks, &offsets))
}

/// The group's committed offsets for `partitions`, as the broker has them.
async fn committed(
    consumer: &Arc<StreamConsumer<RuntimeContext>>,
    topic: &str,
    partitions: Vec<i32>,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let mut query = TopicPartitionList::new();
    for partition in partitions {
        query.add_partition(topic, partition);
    }
    let consumer = Arc::clone(consumer);
    tokio::task::spawn_blocking(move || Ok(offsets_of(&consumer.committed_offsets(query, BROKER_TIMEOUT)?)))
        .await
    .expect("committed-offsets lookup panicked")
}
