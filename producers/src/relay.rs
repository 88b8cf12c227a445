//! The outbox relay: publishes unpublished outbox rows in outbox order, one Kafka transaction per
//! chunk, and moves the store's high-water mark past a chunk once its transaction committed.
//!
//! Per chunk: read up to `max_in_flight` rows above the mark, begin a transaction, enqueue every
//! send, commit, move the mark to the chunk's last row, repeat. A crash between the commit and the
//! mark re-sends the chunk: duplicates carry the same sequence, and consumers skip them.
//!
//! Two relays must never interleave on the topic: compaction keeps the record with the highest
//! *offset* per key, so an old state published after a newer one is what every replay ends on.
//! Kafka itself fences publishing. Every relay of a topic shares one `transactional.id`; a
//! relay's `init_transactions` aborts what the previous one left open and fences it, so a relay
//! that stalled (a long pause, SIGSTOP) and wakes up can no longer send or commit. Departments
//! read `isolation.level=read_committed`, so an aborted chunk is never applied (and the log
//! cleaner removes it). Moving the mark after a commit is always safe: whatever a later relay
//! publishes starts at or below the mark it read, after the committed chunk on the log.
//!
//! The store's lease only keeps relays from fencing each other needlessly: a relay takes it
//! before `init_transactions`, and a relay that finds another holder while it publishes was
//! fenced, and stops with [`RelayStop::Fenced`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use edison_common::kafka::{ensure_topic, record_contract, KafkaArgs, TopicSpec};
use edison_common::time::now_ms;
use edison_schemas::{fingerprint, KNOWN_SCHEMAS};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::Serialize;
use tokio::sync::{mpsc, OnceCell};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::error::SalesError;
use crate::store::{OutboxRow, Store};

/// How long the reachability probe waits for the broker's metadata.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// What a transaction may take beyond its slowest send: the commit itself.
const COMMIT_MARGIN: Duration = Duration::from_secs(10);
/// What the lease outlives a transaction by.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Outbox rows per Kafka transaction: the most records in flight at once.
    pub max_in_flight: usize,
    /// librdkafka `message.timeout.ms` unless `-X` sets it: how long one send may take, retries
    /// included, before it fails and the drain stops. Short, so commands finish promptly when
    /// Kafka is down.
    pub delivery_timeout: Duration,
    /// Partitions of the topic if the relay has to create it.
    pub partitions: i32,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions { max_in_flight: 5000, delivery_timeout: Duration::from_secs(10), partitions: 6 }
    }
}

/// Why a drain stopped before the outbox was empty. The rows stay queued for the next relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum RelayStop {
    /// Nothing answered at the bootstrap servers.
    Unreachable(String),
    /// A send or the commit failed; the chunk's transaction was aborted.
    DeliveryFailed(String),
    /// Another relay holds the lease and is publishing.
    Busy,
    /// Another relay took over while this one was publishing: Kafka refuses this relay's sends
    /// and commits, and it must not publish again.
    Fenced(String),
    /// The relay itself failed (a bad `-X` setting, a topic with the wrong config, ...).
    Failed(String),
}

impl fmt::Display for RelayStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayStop::Unreachable(detail) => write!(f, "Kafka is unreachable: {detail}"),
            RelayStop::DeliveryFailed(detail) => write!(f, "a delivery failed: {detail}"),
            RelayStop::Busy => f.write_str("another relay is publishing"),
            RelayStop::Fenced(detail) => {
                write!(f, "fenced: another relay took over the outbox while this one stalled ({detail})")
            }
            RelayStop::Failed(detail) => write!(f, "the relay failed: {detail}"),
        }
    }
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    /// Rows in committed transactions, recorded as published.
    pub published: u64,
    /// Rows still unpublished when the drain ended.
    pub queued: u64,
    pub stopped: Option<RelayStop>,
}

/// The relay's producer. Its context keeps the first failed delivery of the open transaction,
/// so a send needs no per-record future: one allocation and cross-thread free fewer per record
/// (glibc's allocator was the top of the relay's profile with `FutureProducer`).
type TxProducer = ThreadedProducer<RelayContext>;

/// Sends librdkafka's own logs and errors to `debug`: with the broker down it repeats "all
/// brokers down" many times a second, and the relay already reports that once, as a
/// [`RelayStop`]. Records the first delivery failure of the open transaction.
#[derive(Default)]
pub struct RelayContext {
    failure: Mutex<Option<String>>,
}

impl RelayContext {
    fn take_failure(&self) -> Option<String> {
        self.failure.lock().expect("not poisoned").take()
    }
}

impl ClientContext for RelayContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        debug!(target: "librdkafka", ?level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        debug!(target: "librdkafka", %error, reason);
    }
}

impl ProducerContext for RelayContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            let key = message.key().map(String::from_utf8_lossy).unwrap_or_default();
            self.failure.lock().expect("not poisoned").get_or_insert_with(|| format!("order {key}: {error}"));
        }
    }
}

/// Publishes a store's outbox to `kafka.topic`; see the module doc.
pub struct Relay {
    /// Transactional, with the topic's shared `transactional.id`.
    producer: TxProducer,
    /// Where to publish, and the clients' settings.
    kafka: KafkaArgs,
    options: RelayOptions,
    /// The longest a chunk's transaction may stay open: librdkafka's `transaction.timeout.ms`.
    transaction_timeout: Duration,
    /// Identifies this relay's lease.
    holder: String,
    /// Set once the broker answered and the topic is known to exist.
    ready: AtomicBool,
    /// Set once `init_transactions` fenced every earlier relay of the topic.
    initialised: OnceCell<()>,
}

impl Relay {
    pub fn new(kafka: &KafkaArgs, options: RelayOptions) -> Result<Relay, SalesError> {
        let config = transactional_config(kafka, options.delivery_timeout);
        let transaction_timeout = millis(&config, "transaction.timeout.ms")
            .ok_or_else(|| SalesError::InvalidOption("-X transaction.timeout.ms must be milliseconds".into()))?;
        Ok(Relay {
            producer: edison_common::kafka::create_with_context(&config, RelayContext::default())?,
            kafka: kafka.clone(),
            options,
            transaction_timeout,
            holder: Uuid::now_v7().to_string(),
            ready: AtomicBool::new(false),
            initialised: OnceCell::new(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.kafka.topic
    }

    /// Publishes the rows queued when it starts, until none is left or a transaction fails. Rows
    /// committed meanwhile wait for the next drain, so a drain ends under a steady stream of
    /// writes too. Broker trouble is not an error: it ends the drain with
    /// [`RelayReport::stopped`] set and the rows queued.
    pub async fn drain(&self, store: &Store) -> Result<RelayReport, SalesError> {
        let mut report = RelayReport::default();
        let until = store.newest_outbox_id().await?;
        if until <= store.published_through().await? {
            return Ok(report);
        }
        report.stopped = self.prepare().await?;
        if report.stopped.is_none() {
            report.stopped = self.drain_leased(store, until, &mut report.published).await?;
        }
        report.queued = store.queued().await?;
        Ok(report)
    }

    /// Probes the broker and ensures the topic, once per relay.
    async fn prepare(&self) -> Result<Option<RelayStop>, SalesError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(None);
        }
        // Fast fail: without this, a down broker costs a full message timeout per command.
        let producer = self.producer.clone();
        let probe = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, PROBE_TIMEOUT).map(|_| ())
        })
        .await
        .expect("the metadata probe does not panic");
        if let Err(error) = probe {
            return Ok(Some(RelayStop::Unreachable(format!("{}: {error}", self.kafka.bootstrap_servers))));
        }
        let spec = TopicSpec::orders(&self.kafka.topic, self.options.partitions);
        let status = ensure_topic(&self.kafka.client_config(), &spec).await?;
        // Before the first event: the topic's shape, and the schemas the events are written
        // with, so that any reader can decode them from the log alone.
        let contract = record_contract(&self.kafka, &writer_schemas()?).await?;
        debug!(topic = %self.kafka.topic, ?status, ?contract, "topic ready");
        self.ready.store(true, Ordering::Release);
        Ok(None)
    }

    /// Takes the lease, then fences every earlier relay of the topic (once per relay): from here
    /// on, no other relay's chunk can commit. `Busy` if another relay holds the lease.
    async fn take_over(&self, store: &Store, chunks: u32) -> Result<Option<RelayStop>, SalesError> {
        if !store.acquire_lease(&self.holder, now_ms(), self.lease_ttl(chunks)).await? {
            return Ok(Some(RelayStop::Busy));
        }
        let producer = self.producer.clone();
        let timeout = self.transaction_timeout;
        let init = self
            .initialised
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || producer.init_transactions(timeout))
                    .await
                    .expect("init_transactions does not panic")
            })
            .await;
        Ok(init.err().map(|error| stop_for(&self.producer, &error)))
    }

    async fn drain_leased(&self, store: &Store, until: i64, published: &mut u64) -> Result<Option<RelayStop>, SalesError> {
        if let Some(stop) = self.take_over(store, 1).await? {
            return Ok(Some(stop));
        }
        let limit = self.options.max_in_flight;
        let mut rows = store.outbox_rows(store.published_through().await?, until, limit).await?;
        let stop = loop {
            if !store.renew_lease(&self.holder, now_ms(), self.lease_ttl(1)).await? {
                break Some(lost_lease());
            }
            let Some(last) = rows.last().map(|row| row.id) else { break None };
            let count = rows.len() as u64;
            // Reading the next chunk overlaps this one's sends and commit.
            let (committed, next) = tokio::join!(
                transact(&self.producer, &self.kafka.topic, rows, self.transaction_timeout),
                store.outbox_rows(last, until, limit),
            );
            if let Err(stop) = committed {
                warn!(%stop, "relay stopped");
                break Some(stop);
            }
            store.mark_published_through(last).await?;
            *published += count;
            debug!(rows = count, through = last, "chunk committed");
            rows = next?;
        };
        store.release_lease(&self.holder).await?;
        Ok(stop)
    }

    /// A chunk's transaction takes at most `transaction.timeout.ms` (then the broker aborts it);
    /// a lease taken before `chunks` chunks are published outlives them with margin, `-X`
    /// overrides of the timeouts included.
    fn lease_ttl(&self, chunks: u32) -> i64 {
        let ttl = self.transaction_timeout.saturating_mul(chunks).saturating_add(LEASE_MARGIN);
        i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 8)
    }

    /// Starts relaying the chunks `simulate` commits. Rows queued before are drained first, so
    /// publishing stays in outbox order.
    pub(crate) async fn pipeline<'a>(&'a self, store: &'a Store) -> Result<Pipeline<'a>, SalesError> {
        let mut stopped = self.drain(store).await?.stopped;
        if stopped.is_none() {
            stopped = self.prepare().await?;
        }
        if stopped.is_none() {
            stopped = self.take_over(store, PIPELINE_DEPTH).await?;
        }
        let published_through = store.published_through().await?;
        let (acked_tx, acked) = mpsc::unbounded_channel();
        let chunks = stopped.is_none().then(|| {
            let (chunks, mut queued) = mpsc::channel::<Vec<OutboxRow>>(1);
            let (producer, topic, timeout) = (self.producer.clone(), self.kafka.topic.clone(), self.transaction_timeout);
            tokio::spawn(async move {
                while let Some(rows) = queued.recv().await {
                    let (count, through) = (rows.len() as u64, rows.last().map(|row| row.id));
                    let failure = transact(&producer, &topic, rows, timeout).await.err();
                    let committed = Committed { count, through, failure };
                    let failed = committed.failure.is_some();
                    if acked_tx.send(committed).is_err() || failed {
                        break;
                    }
                }
            });
            chunks
        });
        Ok(Pipeline { relay: self, store, chunks, acked, published_through, published: 0, interleaved: false, stopped })
    }
}

/// Drains every `poll` until Ctrl-C; broker trouble is retried. A relay fenced by another one
/// (say, a `sales` command's drain while this one stalled) is replaced by a new one, which
/// fences in turn once it holds the lease, and so resumes from the store's mark.
pub async fn follow(kafka: &KafkaArgs, options: &RelayOptions, store: &Store, poll: Duration) -> Result<u64, SalesError> {
    let mut relay = Relay::new(kafka, options.clone())?;
    let mut total = 0;
    loop {
        let report = relay.drain(store).await?;
        total += report.published;
        if report.published > 0 {
            info!(published = report.published, queued = report.queued, "relayed");
        }
        match &report.stopped {
            Some(stop @ RelayStop::Fenced(_)) => {
                warn!(%stop, "starting a new relay");
                relay = Relay::new(kafka, options.clone())?;
            }
            Some(stop) => {
                warn!(%stop, queued = report.queued, "will retry");
                relay.ready.store(false, Ordering::Release);
            }
            None => {}
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(total),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// The producer config of a relay of `kafka.topic`: idempotent, and transactional with one
/// `transactional.id` per topic, so that each new relay fences the ones before it. `-X` may
/// override any of it.
fn transactional_config(kafka: &KafkaArgs, delivery_timeout: Duration) -> ClientConfig {
    let mut config = kafka.producer_config();
    // Bound every send unless the user chose with `-X message.timeout.ms=...`.
    if config.get("message.timeout.ms").is_none() {
        config.set("message.timeout.ms", delivery_timeout.as_millis().to_string());
    }
    if config.get("transactional.id").is_none() {
        config.set("transactional.id", format!("edison-sales-relay.{}", kafka.topic));
    }
    // librdkafka requires message.timeout.ms <= transaction.timeout.ms. The timeout also bounds
    // how long a stalled relay's open transaction holds back read_committed consumers.
    if config.get("transaction.timeout.ms").is_none() {
        let sends = millis(&config, "message.timeout.ms").unwrap_or(delivery_timeout);
        config.set("transaction.timeout.ms", (sends + COMMIT_MARGIN).as_millis().to_string());
    }
    config
}

fn millis(config: &ClientConfig, key: &str) -> Option<Duration> {
    config.get(key)?.trim().parse().ok().map(Duration::from_millis)
}

/// (fingerprint, schema JSON) of every schema Sales' outbox rows may be written with.
pub(crate) fn writer_schemas() -> Result<Vec<(u64, &'static str)>, SalesError> {
    KNOWN_SCHEMAS.iter().map(|schema| Ok((fingerprint(schema)?, *schema))).collect()
}

/// The stop for a relay that finds another holder of the lease while it publishes.
fn lost_lease() -> RelayStop {
    RelayStop::Fenced("another relay holds the lease now".into())
}

/// What the broker committed of one chunk of rows.
struct Committed {
    count: u64,
    /// Id of the chunk's last row.
    through: Option<i64>,
    /// Why the chunk's transaction did not commit; nothing of it is visible then.
    failure: Option<RelayStop>,
}

/// Sends `rows` in one transaction and commits it: all of them are published, or none is (the
/// transaction is aborted, and read_committed consumers never see them). librdkafka's
/// transactional calls block, so the whole transaction runs off the async threads.
async fn transact(producer: &TxProducer, topic: &str, rows: Vec<OutboxRow>, timeout: Duration) -> Result<(), RelayStop> {
    let (producer, topic) = (producer.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || transact_blocking(&producer, &topic, &rows, timeout))
        .await
        .expect("a transaction does not panic")
}

fn transact_blocking(producer: &TxProducer, topic: &str, rows: &[OutboxRow], timeout: Duration) -> Result<(), RelayStop> {
    producer.begin_transaction().map_err(|error| stop_for(producer, &error))?;
    producer.context().take_failure();
    for row in rows {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).key(row.order_id.as_bytes());
        if let Some(payload) = &row.payload {
            record = record.payload(payload);
        }
        // A full queue empties as the producer's thread delivers: wait for room.
        while let Err((error, returned)) = producer.send(record) {
            if error.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                return Err(abort(producer, timeout, format!("outbox row {}: {error}", row.id)));
            }
            std::thread::sleep(Duration::from_millis(5));
            record = returned;
        }
    }
    // The commit flushes every send first and fails if one of them failed.
    let Err(error) = producer.commit_transaction(timeout) else { return Ok(()) };
    if let Some(stop) = fenced(producer, &error) {
        return Err(stop);
    }
    let detail = producer.context().take_failure().unwrap_or_else(|| error.to_string());
    Err(abort(producer, timeout, detail))
}

/// Aborts the open transaction after a failure described by `detail`.
fn abort(producer: &TxProducer, timeout: Duration, detail: String) -> RelayStop {
    match producer.abort_transaction(timeout) {
        Ok(()) => RelayStop::DeliveryFailed(detail),
        Err(error) => fenced(producer, &error).unwrap_or_else(|| {
            RelayStop::Failed(format!("{detail}; aborting the transaction failed too: {error}"))
        }),
    }
}

/// The stop for a failed transactional call: fenced, or failed.
fn stop_for(producer: &TxProducer, error: &KafkaError) -> RelayStop {
    fenced(producer, error).unwrap_or_else(|| RelayStop::Failed(error.to_string()))
}

/// `Some` if `error` (or the producer's fatal error behind it) says a newer relay fenced this one.
fn fenced(producer: &TxProducer, error: &KafkaError) -> Option<RelayStop> {
    let is_fencing = |code| {
        matches!(code, RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
    };
    if let Some((code, reason)) = producer.client().fatal_error().filter(|(code, _)| is_fencing(*code)) {
        return Some(RelayStop::Fenced(format!("{code:?}: {reason}")));
    }
    error.rdkafka_error_code().filter(|code| is_fencing(*code)).map(|_| RelayStop::Fenced(error.to_string()))
}

/// Chunks a pipeline has handed to its publisher and not seen committed: one being published and
/// one waiting.
const PIPELINE_DEPTH: u32 = 2;

/// Publishes committed chunks while the caller commits the next ones. A spawned task sends each
/// chunk from the rows its commit returned, in a Kafka transaction of its own, once the chunk
/// before is committed, and reports back. The caller stays the only writer to the store: it
/// moves the high-water mark and renews the lease between its commits, so neither side waits on
/// the other's SQLite write lock.
///
/// Each event goes out as it was committed, even if a later commit erases its order while it
/// is in flight; that commit's tombstone follows it, as when `sales relay` reads a chunk just
/// before an erasure commits. So the topic never depends on how far the relay lags.
pub(crate) struct Pipeline<'a> {
    relay: &'a Relay,
    store: &'a Store,
    /// `None` once relaying stopped: later chunks stay queued in the outbox.
    chunks: Option<mpsc::Sender<Vec<OutboxRow>>>,
    acked: mpsc::UnboundedReceiver<Committed>,
    /// The store's high-water mark as this pipeline last moved it.
    published_through: i64,
    published: u64,
    /// Another writer committed rows between ours: they are left to a final drain.
    interleaved: bool,
    stopped: Option<RelayStop>,
}

impl Pipeline<'_> {
    /// Hands over the rows of a commit, after marking what the broker committed so far. Waits
    /// while the publisher has a chunk waiting already.
    pub(crate) async fn relay(&mut self, rows: Vec<OutboxRow>) -> Result<(), SalesError> {
        while let Ok(committed) = self.acked.try_recv() {
            self.mark(committed).await?;
        }
        let Some(chunks) = self.chunks.clone() else { return Ok(()) };
        // The publisher ended after a failure, which its last report carries.
        let Ok(permit) = chunks.reserve_owned().await else { return Ok(()) };
        // Renewed once there is room, so the lease covers this chunk and the one ahead of it.
        if !self.store.renew_lease(&self.relay.holder, now_ms(), self.relay.lease_ttl(PIPELINE_DEPTH)).await? {
            self.stop(lost_lease());
            return Ok(());
        }
        permit.send(rows);
        Ok(())
    }

    /// Waits for every handed-over chunk, marks it and releases the lease: (published, stop).
    /// Rows another writer interleaved with ours, and ours after them, go out by a final drain.
    pub(crate) async fn finish(mut self) -> Result<(u64, Option<RelayStop>), SalesError> {
        self.chunks = None;
        while let Some(committed) = self.acked.recv().await {
            self.mark(committed).await?;
        }
        self.store.release_lease(&self.relay.holder).await?;
        if self.interleaved && self.stopped.is_none() {
            let report = self.relay.drain(self.store).await?;
            self.published += report.published;
            self.stopped = report.stopped;
        }
        Ok((self.published, self.stopped))
    }

    /// Moves the high-water mark past a committed chunk, unless rows we never sent (another
    /// writer's) sit below its end: then relaying stops here and the final drain takes over.
    async fn mark(&mut self, committed: Committed) -> Result<(), SalesError> {
        if let Some(failure) = committed.failure {
            warn!(%failure, "relay stopped");
            self.stop(failure);
            return Ok(());
        }
        if let Some(through) = committed.through.filter(|_| !self.interleaved) {
            if self.store.outbox_rows_between(self.published_through, through).await? == committed.count {
                self.store.mark_published_through(through).await?;
                self.published_through = through;
                self.published += committed.count;
            } else {
                debug!(through, "another writer's rows are interleaved with ours");
                self.interleaved = true;
                self.chunks = None;
            }
        }
        debug!(rows = committed.count, "chunk committed");
        Ok(())
    }

    fn stop(&mut self, reason: RelayStop) {
        self.stopped.get_or_insert(reason);
        self.chunks = None;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn kafka(overrides: &[&str]) -> KafkaArgs {
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            kafka: KafkaArgs,
        }
        let mut argv = vec!["relay", "--topic", "orders-x"];
        for pair in overrides {
            argv.extend(["-X", pair]);
        }
        Args::parse_from(argv).kafka
    }

    #[test]
    fn every_relay_of_a_topic_shares_one_transactional_id() {
        let config = transactional_config(&kafka(&[]), Duration::from_secs(10));
        assert_eq!(config.get("transactional.id"), Some("edison-sales-relay.orders-x"));
        assert_eq!(config.get("message.timeout.ms"), Some("10000"));
        assert_eq!(config.get("transaction.timeout.ms"), Some("20000"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
    }

    /// The lease once came from `--delivery-timeout` even when `-X message.timeout.ms` made sends
    /// take far longer, so a second relay could start while the first still had sends in flight.
    #[test]
    fn the_lease_outlives_a_transaction_with_every_timeout_overridden() {
        let relay = Relay::new(&kafka(&["message.timeout.ms=120000"]), RelayOptions {
            delivery_timeout: Duration::from_secs(1),
            ..RelayOptions::default()
        })
        .unwrap();
        assert_eq!(relay.transaction_timeout, Duration::from_secs(130));
        assert!(relay.lease_ttl(1) > 130_000, "{}", relay.lease_ttl(1));
        assert!(relay.lease_ttl(2) > 260_000);

        let explicit = kafka(&["transaction.timeout.ms=300000"]);
        let relay = Relay::new(&explicit, RelayOptions::default()).unwrap();
        assert_eq!(relay.transaction_timeout, Duration::from_secs(300));
    }
}
