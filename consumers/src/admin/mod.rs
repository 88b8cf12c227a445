//! Operating a department from outside its consumer group: `reset-offsets` moves the group (and,
//! to rebuild, empties the projection), `status` shows where the group is, and the progress bar
//! `run` shows while it is far behind. Generic over [`Projection`](crate::runtime::Projection),
//! so every department binary has them; no JVM tools needed.
//!
//! Lag here is Kafka's: the log-end offset minus the group's committed offset, per partition, so
//! the figures match `kafka-consumer-groups --describe`.

mod progress;
pub mod reset;
pub mod status;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;

pub use edison_common::kafka::Watermarks;
use edison_common::kafka::{committed_offsets, describe_group, GroupMember};

pub use progress::LagBar;
pub use reset::{reset_offsets, ResetArgs};
pub use status::{status, StatusArgs};

const TIMEOUT: Duration = Duration::from_secs(10);

/// How many events of a partition the group has still to consume. Without a commit, the group
/// starts at the log start (`auto.offset.reset=earliest`), so the whole log is behind.
pub fn partition_lag(low: i64, high: i64, committed: Option<i64>) -> i64 {
    (high - committed.unwrap_or(low)).max(0)
}

/// The group's lag summed over `watermarks` (partition, low, high).
pub fn total_lag(
    watermarks: impl IntoIterator<Item = (i32, i64, i64)>,
    committed: &HashMap<i32, i64>,
) -> i64 {
    watermarks
        .into_iter()
        .map(|(partition, low, high)| partition_lag(low, high, committed.get(&partition).copied()))
        .sum()
}

/// The group's state and active members.
async fn group_state(
    config: &ClientConfig,
    group: &str,
) -> anyhow::Result<(String, Vec<GroupMember>)> {
    let (config, group) = (config.clone(), group.to_owned());
    blocking(move || describe_group(&config, &group))
        .await
        .context("cannot describe the consumer group")
}

/// The group's committed offsets on `topic`, partition → next offset.
async fn group_offsets(
    config: &ClientConfig,
    group: &str,
    topic: &str,
) -> anyhow::Result<HashMap<i32, i64>> {
    let (config, group, topic) = (config.clone(), group.to_owned(), topic.to_owned());
    blocking(move || committed_offsets(&config, &group, &topic))
        .await
        .context("cannot read the group's committed offsets")
}

/// Every partition's watermarks, off the async threads.
async fn watermarks(config: &ClientConfig, topic: &str) -> anyhow::Result<Vec<Watermarks>> {
    let (config, topic) = (config.clone(), topic.to_owned());
    blocking(move || edison_common::kafka::log_end_offsets(&config, &topic).context("cannot read the topic's watermarks"))
    .await
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .expect("a broker call panicked")
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
        assert_eq!(
            total_lag([(0, 0, 120), (1, 0, 30), (2, 0, 7)], &committed),
            50
        );
    }
}
