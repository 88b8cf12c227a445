//! Following a topic from outside any consumer group: the page's reader of the orders topic (the
//! latest events) and of the dead-letter topic (counts per origin group).

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use edison_common::kafka::{self, read_log_end_offsets, Watermarks};

/// How long to wait before looking again for a topic that does not exist yet (the dead-letter
/// topic appears with the first dead letter), or after an error.
const RETRY: Duration = Duration::from_secs(2);

/// Calls `record` for each record of `topic` from the offset `start` picks per partition (from
/// its watermarks at start) on, as they arrive, until `shutdown`. Reads committed transactions
/// only, as the departments do. Never joins a group nor commits: it is invisible to the lag
/// it reports.
pub async fn follow(
    config: &ClientConfig,
    topic: &str,
    start: impl Fn(&Watermarks) -> i64,
    mut record: impl FnMut(&BorrowedMessage<'_>),
    shutdown: &CancellationToken,
) {
    let consumer = loop {
        match assigned(config, topic, &start).await {
            Ok(Some(consumer)) => break consumer,
            Ok(None) => {}
            Err(error) => warn!(%error, topic, "cannot follow the topic; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = consumer.recv() => match received {
                Ok(message) => record(&message),
                Err(error) => {
                    warn!(%error, topic, "reading the topic failed; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            },
        }
    }
}

/// A consumer assigned to every partition of `topic` at `start`; `None` while the topic does
/// not exist.
async fn assigned(
    config: &ClientConfig,
    topic: &str,
    start: &impl Fn(&Watermarks) -> i64,
) -> rdkafka::error::KafkaResult<Option<StreamConsumer>> {
    let marks = read_log_end_offsets(config, topic).await?;
    if marks.is_empty() {
        return Ok(None);
    }
    let mut config = config.clone();
    config
        // librdkafka wants a group id to consume; this one never subscribes nor commits.
        .set("group.id", format!("{topic}.page-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed");
    let consumer: StreamConsumer = kafka::create(&config)?;
    let mut assignment = TopicPartitionList::new();
    for mark in &marks {
        assignment.add_partition_offset(topic, mark.partition, Offset::Offset(start(mark)))?;
    }
    consumer.assign(&assignment)?;
    Ok(Some(consumer))
}
