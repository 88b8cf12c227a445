//! The outbox relay: publishes unpublished outbox rows in outbox order and, once the broker has
//! acknowledged them, moves the store's high-water mark past them.
//!
//! Pipeline per chunk: read up to `max_in_flight` rows above the mark, enqueue every send, await
//! every ack, move the mark to the last row of the acked prefix, repeat. The producer is
//! idempotent (`acks=all`), so within a partition its own retries neither duplicate nor reorder.
//! A crash between the ack and the mark re-sends the chunk: duplicates carry the same sequence,
//! and consumers skip them.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edison_common::kafka::{ensure_topic, KafkaArgs, TopicSpec};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::error::SalesError;
use crate::store::{now_ms, OutboxRow, Store};

/// How long the reachability probe waits for the broker's metadata.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Outbox rows sent before awaiting their acks: the most records in flight at once.
    pub max_in_flight: usize,
    /// librdkafka `message.timeout.ms`: how long one send may take, retries included, before
    /// it fails and the drain stops. Short, so commands finish promptly when Kafka is down.
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
    /// A send failed; rows from the first failed one on are still queued.
    DeliveryFailed(String),
    /// Another relay holds the lease and is publishing.
    Busy,
    /// The relay itself failed (a bad `-X` setting, a topic with the wrong config, ...).
    Failed(String),
}

impl fmt::Display for RelayStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayStop::Unreachable(detail) => write!(f, "Kafka is unreachable: {detail}"),
            RelayStop::DeliveryFailed(detail) => write!(f, "a delivery failed: {detail}"),
            RelayStop::Busy => f.write_str("another relay is publishing"),
            RelayStop::Failed(detail) => write!(f, "the relay failed: {detail}"),
        }
    }
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    /// Rows acknowledged by the broker and recorded as published.
    pub published: u64,
    /// Rows still unpublished when the drain ended.
    pub queued: u64,
    pub stopped: Option<RelayStop>,
}

/// Sends librdkafka's own logs and errors to `debug`: with the broker down it repeats "all
/// brokers down" many times a second, and the relay already reports that once, as a
/// [`RelayStop`].
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        debug!(target: "librdkafka", ?level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        debug!(target: "librdkafka", %error, reason);
    }
}

pub struct Relay {
    producer: FutureProducer<QuietContext>,
    admin: ClientConfig,
    topic: String,
    bootstrap_servers: String,
    options: RelayOptions,
    /// Identifies this relay's lease.
    holder: String,
    /// Set once the broker answered and the topic is known to exist.
    ready: AtomicBool,
}

impl Relay {
    pub fn new(kafka: &KafkaArgs, options: RelayOptions) -> Result<Relay, SalesError> {
        let mut config = kafka.producer_config();
        // Bound every send unless the user chose with `-X message.timeout.ms=...`.
        if config.get("message.timeout.ms").is_none() {
            config.set("message.timeout.ms", options.delivery_timeout.as_millis().to_string());
        }
        Ok(Relay {
            producer: config.create_with_context(QuietContext)?,
            admin: kafka.client_config(),
            topic: kafka.topic.clone(),
            bootstrap_servers: kafka.bootstrap_servers.clone(),
            options,
            holder: Uuid::now_v7().to_string(),
            ready: AtomicBool::new(false),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes the rows queued when it starts, until none is left or a send fails. Rows
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
            return Ok(Some(RelayStop::Unreachable(format!("{}: {error}", self.bootstrap_servers))));
        }
        let spec = TopicSpec::orders(&self.topic, self.options.partitions);
        let status = ensure_topic(&self.admin, &spec).await?;
        debug!(topic = %self.topic, ?status, "topic ready");
        self.ready.store(true, Ordering::Release);
        Ok(None)
    }

    async fn drain_leased(&self, store: &Store, until: i64, published: &mut u64) -> Result<Option<RelayStop>, SalesError> {
        let stop = loop {
            if !store.acquire_lease(&self.holder, now_ms(), self.lease_ttl(1)).await? {
                break Some(RelayStop::Busy);
            }
            let rows = store.unpublished(until, self.options.max_in_flight).await?;
            if rows.is_empty() {
                break None;
            }
            let acked = publish(&self.producer, &self.topic, &rows).await;
            if let Some(through) = acked.through {
                store.mark_published_through(through).await?;
            }
            *published += acked.count;
            debug!(acked = acked.count, "chunk published");
            if let Some(failure) = acked.failure {
                warn!(%failure, "relay stopped");
                break Some(RelayStop::DeliveryFailed(failure));
            }
        };
        store.release_lease(&self.holder).await?;
        Ok(stop)
    }

    /// A chunk takes at most one delivery timeout; a lease taken before `chunks` chunks are
    /// published outlives them with margin.
    fn lease_ttl(&self, chunks: i64) -> i64 {
        let timeout = i64::try_from(self.options.delivery_timeout.as_millis()).unwrap_or(i64::MAX / 8);
        timeout.saturating_mul(chunks).saturating_add(5_000)
    }

    /// Starts relaying the chunks `simulate` commits. Rows queued before are drained first, so
    /// publishing stays in outbox order.
    pub(crate) async fn pipeline<'a>(&'a self, store: &'a Store) -> Result<Pipeline<'a>, SalesError> {
        let mut stopped = self.drain(store).await?.stopped;
        if stopped.is_none() {
            stopped = self.prepare().await?;
        }
        if stopped.is_none() && !store.acquire_lease(&self.holder, now_ms(), self.lease_ttl(PIPELINE_DEPTH)).await? {
            stopped = Some(RelayStop::Busy);
        }
        let published_through = store.published_through().await?;
        let (acked_tx, acked) = mpsc::unbounded_channel();
        let chunks = stopped.is_none().then(|| {
            let (chunks, mut queued) = mpsc::channel::<Vec<OutboxRow>>(1);
            let (producer, topic) = (self.producer.clone(), self.topic.clone());
            tokio::spawn(async move {
                while let Some(rows) = queued.recv().await {
                    let acked = publish(&producer, &topic, &rows).await;
                    let failed = acked.failure.is_some();
                    if acked_tx.send(acked).is_err() || failed {
                        break;
                    }
                }
            });
            chunks
        });
        Ok(Pipeline { relay: self, store, chunks, acked, published_through, published: 0, interleaved: false, stopped })
    }

    /// Drains every `poll` until cancelled by Ctrl-C; broker trouble is retried.
    pub async fn follow(&self, store: &Store, poll: Duration) -> Result<u64, SalesError> {
        let mut total = 0;
        loop {
            let report = self.drain(store).await?;
            total += report.published;
            if report.published > 0 {
                info!(published = report.published, queued = report.queued, "relayed");
            }
            if let Some(stop) = &report.stopped {
                warn!(%stop, queued = report.queued, "will retry");
                self.ready.store(false, Ordering::Release);
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(total),
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// What the broker acknowledged of one chunk of rows.
struct Acked {
    /// Rows in the acked prefix.
    count: u64,
    /// Id of the prefix's last row.
    through: Option<i64>,
    /// The first failure; the rows from it on stay unpublished.
    failure: Option<String>,
}

/// Sends `rows` and reports the acked prefix. Rows after a failure are re-sent by the next drain
/// even if acked, so the last record of every key on the compacted topic is always its latest
/// state.
async fn publish(producer: &FutureProducer<QuietContext>, topic: &str, rows: &[OutboxRow]) -> Acked {
    let mut deliveries = Vec::with_capacity(rows.len());
    let mut enqueue_failure = None;
    for row in rows {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).key(row.order_id.as_bytes());
        if let Some(payload) = &row.payload {
            record = record.payload(payload);
        }
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((error, _)) => {
                enqueue_failure = Some(format!("outbox row {}: {error}", row.id));
                break;
            }
        }
    }
    let mut acked = Acked { count: 0, through: None, failure: None };
    let mut failure = None;
    // Await every delivery, even after a failure, so no send is left in flight.
    for (row, delivery) in rows.iter().zip(deliveries) {
        let error = match delivery.await {
            Ok(Ok(_)) if failure.is_none() => {
                acked.count += 1;
                acked.through = Some(row.id);
                continue;
            }
            Ok(Ok(_)) => continue,
            Ok(Err((error, _))) => error.to_string(),
            Err(_) => "the producer was dropped".to_owned(),
        };
        failure.get_or_insert_with(|| format!("outbox row {}: {error}", row.id));
    }
    acked.failure = failure.or(enqueue_failure);
    acked
}

/// Chunks a pipeline has handed to its publisher and not seen acked: one being published and one
/// waiting.
const PIPELINE_DEPTH: i64 = 2;

/// Publishes committed chunks while the caller commits the next ones. A spawned task sends each
/// chunk from the rows its commit returned, once the chunk before is acked, and reports the
/// acked prefix back. The caller stays the only writer to the store: it moves the high-water mark
/// and renews the lease between its commits, so neither side waits on the other's SQLite write
/// lock.
///
/// Each event goes out as it was committed, even if a later commit erases its order while it
/// is in flight; that commit's tombstone follows it, as when `sales relay` reads a chunk just
/// before an erasure commits. So the topic never depends on how far the relay lags.
pub(crate) struct Pipeline<'a> {
    relay: &'a Relay,
    store: &'a Store,
    /// `None` once relaying stopped: later chunks stay queued in the outbox.
    chunks: Option<mpsc::Sender<Vec<OutboxRow>>>,
    acked: mpsc::UnboundedReceiver<Acked>,
    /// The store's high-water mark as this pipeline last moved it.
    published_through: i64,
    published: u64,
    /// Another writer committed rows between ours: they are left to a final drain.
    interleaved: bool,
    stopped: Option<RelayStop>,
}

impl Pipeline<'_> {
    /// Hands over the rows of a commit, after marking what the broker acked so far. Waits while
    /// the publisher has a chunk waiting already.
    pub(crate) async fn relay(&mut self, rows: Vec<OutboxRow>) -> Result<(), SalesError> {
        while let Ok(acked) = self.acked.try_recv() {
            self.mark(acked).await?;
        }
        let Some(chunks) = self.chunks.clone() else { return Ok(()) };
        // The publisher ended after a failure, which its last report carries.
        let Ok(permit) = chunks.reserve_owned().await else { return Ok(()) };
        // Renewed once there is room, so the lease covers this chunk and the one ahead of it.
        if !self.store.acquire_lease(&self.relay.holder, now_ms(), self.relay.lease_ttl(PIPELINE_DEPTH)).await? {
            self.stop(RelayStop::Busy);
            return Ok(());
        }
        permit.send(rows);
        Ok(())
    }

    /// Waits for every handed-over chunk, marks it and releases the lease: (published, stop).
    /// Rows another writer interleaved with ours, and ours after them, go out by a final drain.
    pub(crate) async fn finish(mut self) -> Result<(u64, Option<RelayStop>), SalesError> {
        self.chunks = None;
        while let Some(acked) = self.acked.recv().await {
            self.mark(acked).await?;
        }
        self.store.release_lease(&self.relay.holder).await?;
        if self.interleaved && self.stopped.is_none() {
            let report = self.relay.drain(self.store).await?;
            self.published += report.published;
            self.stopped = report.stopped;
        }
        Ok((self.published, self.stopped))
    }

    /// Moves the high-water mark past an acked prefix, unless rows we never sent (another
    /// writer's) sit below its end: then relaying stops here and the final drain takes over.
    async fn mark(&mut self, acked: Acked) -> Result<(), SalesError> {
        if let Some(through) = acked.through.filter(|_| !self.interleaved) {
            if self.store.outbox_rows_between(self.published_through, through).await? == acked.count {
                self.store.mark_published_through(through).await?;
                self.published_through = through;
                self.published += acked.count;
            } else {
                debug!(through, "another writer's rows are interleaved with ours");
                self.interleaved = true;
                self.chunks = None;
            }
        }
        debug!(acked = acked.count, "chunk published");
        if let Some(failure) = acked.failure {
            warn!(%failure, "relay stopped");
            self.stop(RelayStop::DeliveryFailed(failure));
        }
        Ok(())
    }

    fn stop(&mut self, reason: RelayStop) {
        self.stopped.get_or_insert(reason);
        self.chunks = None;
    }
}
