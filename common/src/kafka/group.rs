//! Consumer-group administration from outside the group: who is in it, where it is, moving it.
//! librdkafka's calls here block, so async callers run them with `spawn_blocking`.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::client::{create, drop_in_background};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupMember {
    pub client_id: String,
    pub host: String,
}

/// A group's state as the broker says (`Empty`, `Stable`, `PreparingRebalance`, ..., or `Dead`
/// when unknown to it) and its active members.
pub type GroupState = (String, Vec<GroupMember>);

/// The group's state (`Empty`, `Stable`, `PreparingRebalance`, ..., or `Dead` when unknown to
/// the broker) and its active members.
pub fn describe_group(
    config: &ClientConfig,
    group: &str,
) -> KafkaResult<GroupState> {
    let consumer: BaseConsumer = create(config)?;
    let list = consumer.fetch_group_list(Some(group), TIMEOUT)?;
    Ok(list.groups().first().map_or_else(|| ("Dead".to_owned(), Vec::new()), state_of))
}

/// Every group the broker knows, by name, in one request: a monitor of many groups asks once
/// per sample instead of once per group. A group missing here is `Dead`.
pub fn list_groups<C: ConsumerContext>(consumer: &impl Consumer<C>) -> KafkaResult<HashMap<String, GroupState>> {
    let list = consumer.fetch_group_list(None, TIMEOUT)?;
    Ok(list.groups().iter().map(|info| (info.name().to_owned(), state_of(info))).collect())
}

fn state_of(info: &rdkafka::groups::GroupInfo) -> GroupState {
    let members = info
        .members()
        .iter()
        .map(|m| GroupMember {
            client_id: m.client_id().to_owned(),
            host: m.client_host().to_owned(),
        })
        .collect();
    (info.state().to_owned(), members)
}

/// One partition's bounds: the first offset still in the log and the next one to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// Every partition's watermarks as Kafka's own tools count lag: the high one is the log end,
/// asked with `isolation.level=read_uncommitted`. A read_committed client is answered the last
/// stable offset, which trails a committed transaction until its markers are written, so a
/// catch-up target or a reader taken right after Sales returned could stop short of it.
pub fn log_end_offsets(config: &ClientConfig, topic: &str) -> KafkaResult<Vec<Watermarks>> {
    let mut config = config.clone();
    config.set("isolation.level", "read_uncommitted");
    let consumer: BaseConsumer = create(&config)?;
    watermarks(&consumer, topic)
}

/// [`log_end_offsets`] off the async threads (librdkafka's calls block).
pub async fn read_log_end_offsets(config: &ClientConfig, topic: &str) -> KafkaResult<Vec<Watermarks>> {
    let (config, topic) = (config.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || log_end_offsets(&config, &topic))
        .await
        .expect("a watermark lookup panicked")
}

/// Every partition of `topic` with its watermarks, by partition; none if the topic does not
/// exist.
pub fn watermarks<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> KafkaResult<Vec<Watermarks>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let mut marks = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?;
            Ok(Watermarks {
                partition: p.id(),
                low,
                high,
            })
        })
        .collect::<KafkaResult<Vec<_>>>()?;
    marks.sort_by_key(|w| w.partition);
    Ok(marks)
}

/// The group's committed offsets on `topic` (partition → next offset); partitions without a
/// commit are absent.
pub fn committed_offsets(
    config: &ClientConfig,
    group: &str,
    topic: &str,
) -> KafkaResult<HashMap<i32, i64>> {
    committed_offsets_of(&group_client(config, group)?, topic)
}

/// [`committed_offsets`] of the group of `consumer` (made by [`group_client`], never
/// subscribed), which a monitor keeps rather than connecting anew for every sample.
pub fn committed_offsets_of(consumer: &BaseConsumer, topic: &str) -> KafkaResult<HashMap<i32, i64>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let mut query = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        query.add_partition(topic, partition.id());
    }
    Ok(offsets_of(&consumer.committed_offsets(query, TIMEOUT)?))
}

/// How many events of a partition a group has still to consume. Without a commit, a group
/// starts at the log start (`auto.offset.reset=earliest`), so the whole log is behind.
pub fn partition_lag(low: i64, high: i64, committed: Option<i64>) -> i64 {
    (high - committed.unwrap_or(low)).max(0)
}

/// A group's lag summed over `watermarks` (partition, low, high).
pub fn total_lag(
    watermarks: impl IntoIterator<Item = (i32, i64, i64)>,
    committed: &HashMap<i32, i64>,
) -> i64 {
    watermarks
        .into_iter()
        .map(|(partition, low, high)| partition_lag(low, high, committed.get(&partition).copied()))
        .sum()
}

/// Partition → offset for the entries of `list` that hold a real offset.
pub fn offsets_of(list: &TopicPartitionList) -> HashMap<i32, i64> {
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

/// Commits `offsets` (partition → next offset) for a group that has no active members; the
/// broker refuses commits from outside a live group.
pub fn commit_offsets(
    config: &ClientConfig,
    group: &str,
    topic: &str,
    offsets: &HashMap<i32, i64>,
) -> KafkaResult<()> {
    let consumer: BaseConsumer = group_client(config, group)?;
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.commit(&list, CommitMode::Sync)
}

/// Deletes an empty group and its committed offsets.
pub async fn delete_group(config: &ClientConfig, group: &str) -> KafkaResult<()> {
    let admin: AdminClient<DefaultClientContext> = create(config)?;
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let deleted = admin.delete_groups(&[group], &options).await;
    drop_in_background(admin);
    for result in deleted? {
        result.map_err(|(_, code)| rdkafka::error::KafkaError::AdminOp(code))?;
    }
    Ok(())
}

/// A client of `group` that only reads or commits its offsets: it never subscribes, so it never
/// joins the group, and it commits nothing by itself.
pub fn group_client(config: &ClientConfig, group: &str) -> KafkaResult<BaseConsumer> {
    let mut config = config.clone();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    create(&config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_commit_or_else_the_log_start() {
        assert_eq!(partition_lag(0, 120, Some(100)), 20);
        assert_eq!(partition_lag(5, 120, None), 115);
        assert_eq!(partition_lag(0, 0, None), 0);
        assert_eq!(partition_lag(0, 10, Some(12)), 0, "never negative");
        let committed = HashMap::from([(0, 100), (2, 7)]);
        assert_eq!(total_lag([(0, 0, 120), (1, 0, 30), (2, 0, 7)], &committed), 50);
    }
}
