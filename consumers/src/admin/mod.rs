//! Operating a department from outside its consumer group: `reset-offsets` moves the group (and,
//! to rebuild, empties the projection), and `status` shows where the group is. Generic over [`Projection`](crate::runtime::Projection),
//! so every department binary has them; no JVM tools needed.
//!
//! Lag here is Kafka's: the log-end offset minus the group's committed offset, per partition, so
//! the figures match `kafka-consumer-groups --describe`.

pub mod reset;
pub mod status;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;

pub use edison_common::kafka::Watermarks;
use edison_common::kafka::{committed_offsets, describe_group, read_log_end_offsets, GroupMember};

pub use reset::{reset_offsets, ResetArgs};
pub use status::{status, StatusArgs};

const TIMEOUT: Duration = Duration::from_secs(10);

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
    read_log_end_offsets(config, topic).await.context("cannot read the topic's watermarks")
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .expect("a broker call panicked")
}
