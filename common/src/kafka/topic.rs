//! Idempotent creation and verification of the pipeline's topics, and the check everything but
//! Sales runs instead: the orders topic exists, with the partition count Sales recorded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::args::KafkaArgs;
use super::client::{create, drop_in_background};
use super::registry::{publish_registry, read_registry, Contract};

/// How often a department waiting for the orders topic asks whether it exists.
const POLL: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Not a `#[source]`: KafkaError's message already ends with its code, which it also gives as
    /// its source, so a chain would print the code three times.
    #[error("Kafka request failed: {0}")]
    Kafka(KafkaError),
    #[error("cannot create topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error(
        "topic {topic} exists with {key}={actual}, but it must be {expected}; refusing to use it \
         (fix the topic or choose another with --topic)"
    )]
    WrongConfig {
        topic: String,
        key: &'static str,
        actual: String,
        expected: &'static str,
    },
    #[error("the broker returned no configuration for topic {0}")]
    NoConfig(String),
    #[error(
        "topic {topic} does not exist yet: only Sales creates it (`sales topic create`); \
         check --topic for a typo"
    )]
    Missing { topic: String },
    #[error(
        "topic {topic} has {actual} partitions, but Sales recorded {expected}; refusing to use it: \
         keys go to partitions by the partition count, so an order's next events and its tombstone \
         would land away from its history"
    )]
    ShapeChanged {
        topic: String,
        expected: i32,
        actual: i32,
    },
    #[error("reading {topic} timed out before its end")]
    ReadTimeout { topic: String },
}

impl From<KafkaError> for TopicError {
    fn from(error: KafkaError) -> TopicError {
        TopicError::Kafka(error)
    }
}

/// What a topic must look like. Configs listed in `required` are verified on an existing topic.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    pub configs: Vec<(&'static str, String)>,
    pub required: Vec<(&'static str, &'static str)>,
}

impl TopicSpec {
    /// The order events topic: compacted and retained forever, so a replay from offset zero
    /// always sees every order's latest state.
    ///
    /// - `min.compaction.lag.ms` of one day: a consumer less than a day behind sees every
    ///   intermediate event, not only the latest state.
    /// - `segment.ms` of one hour: closed segments become cleanable within hours, so erased
    ///   orders (tombstones) leave the log soon after `delete.retention.ms` (one day).
    pub fn orders(name: &str, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.to_owned(),
            partitions,
            replication: 1,
            configs: vec![
                ("cleanup.policy", "compact".into()),
                ("retention.ms", "-1".into()),
                ("min.compaction.lag.ms", "86400000".into()),
                ("segment.ms", "3600000".into()),
                ("delete.retention.ms", "86400000".into()),
            ],
            required: vec![("cleanup.policy", "compact")],
        }
    }

    /// A dead-letter topic: plain deletion after 30 days, long enough to inspect and replay
    /// poison messages, short enough not to keep erased customers' data for ever.
    pub fn dead_letter(name: &str) -> TopicSpec {
        TopicSpec {
            name: name.to_owned(),
            partitions: 1,
            replication: 1,
            configs: vec![
                ("cleanup.policy", "delete".into()),
                ("retention.ms", (30 * 24 * 3600 * 1000_i64).to_string()),
            ],
            required: vec![],
        }
    }

    /// The schema registry of a topic (see [`super::registry`]): compacted and retained forever,
    /// one partition, so it is read in the order it was written. Replicated as the broker's
    /// `default.replication.factor` says unless [`TopicSpec::replicated`].
    pub fn registry(name: &str) -> TopicSpec {
        TopicSpec {
            name: name.to_owned(),
            partitions: 1,
            replication: -1,
            configs: vec![
                ("cleanup.policy", "compact".into()),
                ("retention.ms", "-1".into()),
            ],
            required: vec![("cleanup.policy", "compact")],
        }
    }

    /// Sets the replication factor (1 on the local single-node broker). From 3 replicas on, a
    /// write also needs `min.insync.replicas` = all but one of them: `acks=all` then survives a
    /// broker down, and never rests on a single copy. Below 3 the broker's default stays, as
    /// requiring 2 of 2 would stop every write while one broker is down.
    pub fn replicated(mut self, replication: i32) -> TopicSpec {
        self.replication = replication;
        self.configs
            .retain(|(key, _)| *key != "min.insync.replicas");
        if replication >= 3 {
            self.configs
                .push(("min.insync.replicas", (replication - 1).to_string()));
        }
        self
    }
}

/// Whether [`ensure_topic`] created the topic or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicStatus {
    Created,
    Existed,
}

/// Creates the topic if it does not exist, then verifies the required configs. Safe to call from
/// several processes at once.
pub async fn ensure_topic(
    config: &ClientConfig,
    spec: &TopicSpec,
) -> Result<TopicStatus, TopicError> {
    let admin: AdminClient<DefaultClientContext> = create(config)?;
    let ensured = ensure_topic_with(&admin, spec).await;
    drop_in_background(admin);
    ensured
}

async fn ensure_topic_with(
    admin: &AdminClient<DefaultClientContext>,
    spec: &TopicSpec,
) -> Result<TopicStatus, TopicError> {
    let options = admin_options();
    let mut new_topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in &spec.configs {
        new_topic = new_topic.set(key, value);
    }
    let status = match admin.create_topics([&new_topic], &options).await?.pop() {
        Some(Ok(_)) => TopicStatus::Created,
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => TopicStatus::Existed,
        Some(Err((topic, code))) => return Err(TopicError::Create { topic, code }),
        None => return Err(TopicError::NoConfig(spec.name.clone())),
    };
    if status == TopicStatus::Existed {
        let actual = topic_configs_with(admin, &spec.name).await?;
        for &(key, expected) in &spec.required {
            let value = actual.get(key).cloned().unwrap_or_default();
            if value != expected {
                return Err(TopicError::WrongConfig {
                    topic: spec.name.clone(),
                    key,
                    actual: value,
                    expected,
                });
            }
        }
    }
    Ok(status)
}

/// The topic's effective configuration, as the broker reports it.
pub async fn topic_configs(
    config: &ClientConfig,
    topic: &str,
) -> Result<HashMap<String, String>, TopicError> {
    let admin: AdminClient<DefaultClientContext> = create(config)?;
    let configs = topic_configs_with(&admin, topic).await;
    drop_in_background(admin);
    configs
}

async fn topic_configs_with(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<HashMap<String, String>, TopicError> {
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options())
        .await?;
    let resource = match results.into_iter().next() {
        Some(Ok(resource))
            if resource.specifier == OwnedResourceSpecifier::Topic(topic.to_owned()) =>
        {
            resource
        }
        Some(Err(code)) => return Err(TopicError::Kafka(KafkaError::AdminOp(code))),
        _ => return Err(TopicError::NoConfig(topic.to_owned())),
    };
    Ok(resource
        .entries
        .into_iter()
        .filter_map(|entry| Some((entry.name, entry.value?)))
        .collect())
}

/// Checks, before a department or tool touches the orders topic, that it exists and has the
/// partition count Sales recorded in its registry (any count, if none is recorded: topics
/// created by an older Sales, or by tests). Returns the partition count.
///
/// A missing topic is [`TopicError::Missing`], unless `wait` is given: then it logs once that it
/// waits for Sales, and asks every second until the topic exists or `wait` is cancelled (which
/// also ends in `Missing`).
pub async fn await_orders_topic(
    config: &ClientConfig,
    topic: &str,
    wait: Option<&CancellationToken>,
) -> Result<i32, TopicError> {
    let shape = await_topic(config, topic, wait).await?;
    check_contract(config, topic, &shape).await?;
    Ok(shape.partitions)
}

/// The first half of [`await_orders_topic`]: waits (or not) until the topic exists, and returns
/// its shape, for [`check_contract`].
pub async fn await_topic(
    config: &ClientConfig,
    topic: &str,
    wait: Option<&CancellationToken>,
) -> Result<Contract, TopicError> {
    let client = Arc::new(create(config)?);
    let mut waited = false;
    let shape = loop {
        if let Some(shape) = shape_of(&client, topic).await? {
            break shape;
        }
        let missing = || TopicError::Missing {
            topic: topic.to_owned(),
        };
        let Some(shutdown) = wait else {
            return Err(missing());
        };
        if !waited {
            warn!("topic {topic} does not exist yet; waiting for Sales to create it (`sales topic create`)");
            waited = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(missing()),
            _ = tokio::time::sleep(POLL) => {}
        }
    };
    if waited {
        info!(topic, partitions = shape.partitions, "the topic exists now");
    }
    Ok(shape)
}

/// For Sales, once it created the topic or found it, before it publishes: records the topic's
/// shape as its contract in the registry, and each of `schemas` (fingerprint, schema JSON), unless
/// recorded already. A topic whose partition count differs from the recorded one is refused
/// ([`TopicError::ShapeChanged`]).
pub async fn record_contract(kafka: &KafkaArgs, schemas: &[(u64, &str)]) -> Result<Contract, TopicError> {
    let (config, topic) = (kafka.client_config(), kafka.topic.as_str());
    let client = Arc::new(create(&config)?);
    // Creating a topic returns before every broker's metadata has it.
    let deadline = Instant::now() + METADATA_TIMEOUT;
    let shape = loop {
        match shape_of(&client, topic).await? {
            Some(shape) => break shape,
            None if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            None => return Err(TopicError::Missing { topic: topic.to_owned() }),
        }
    };
    let registry = read_registry(&config, topic).await?;
    let recorded = checked(registry.contract, topic, &shape)?;
    let contract = (recorded.as_ref() != Some(&shape)).then_some(&shape);
    let missing: Vec<(u64, &str)> =
        schemas.iter().copied().filter(|(fingerprint, _)| !registry.schemas.contains_key(fingerprint)).collect();
    if contract.is_some() || !missing.is_empty() {
        publish_registry(&kafka.producer_config(), topic, contract, &missing).await?;
    }
    Ok(shape)
}

/// The second half of [`await_orders_topic`]: `ShapeChanged` if the topic's `shape` (from
/// [`await_topic`]) differs from the contract recorded in its registry.
pub async fn check_contract(config: &ClientConfig, topic: &str, shape: &Contract) -> Result<(), TopicError> {
    checked(read_registry(config, topic).await?.contract, topic, shape).map(drop)
}

/// `recorded`, unless the topic's partition count differs from it.
fn checked(recorded: Option<Contract>, topic: &str, shape: &Contract) -> Result<Option<Contract>, TopicError> {
    match recorded {
        Some(recorded) if recorded.partitions != shape.partitions => {
            Err(TopicError::ShapeChanged { topic: topic.to_owned(), expected: recorded.partitions, actual: shape.partitions })
        }
        recorded => Ok(recorded),
    }
}

/// The topic's partition count and replication factor as the broker reports them, off the async
/// threads (librdkafka's call blocks); `None` if it does not exist. Never creates it: `client` is
/// a consumer, whose metadata requests carry `allow.auto.create.topics=false`.
async fn shape_of(client: &Arc<BaseConsumer>, topic: &str) -> KafkaResult<Option<Contract>> {
    let (client, topic) = (Arc::clone(client), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let metadata = client.fetch_metadata(Some(&topic), METADATA_TIMEOUT)?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match found.error().map(RDKafkaErrorCode::from) {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(None),
            Some(code) => return Err(KafkaError::MetadataFetch(code)),
            None => {}
        }
        let partitions = found.partitions();
        Ok((!partitions.is_empty()).then(|| Contract {
            partitions: partitions.len() as i32,
            replication_factor: partitions
                .iter()
                .map(|p| p.replicas().len() as i32)
                .max()
                .unwrap_or_default(),
        }))
    })
    .await
    .expect("a metadata lookup panicked")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(30)))
}

#[cfg(test)]
mod tests {
    use super::super::registry::registry_topic;
    use super::*;

    fn config<'a>(spec: &'a TopicSpec, key: &str) -> Option<&'a str> {
        spec.configs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_orders_topic_is_compacted_and_kept_forever() {
        let spec = TopicSpec::orders("orders", 6);
        assert_eq!(
            (spec.name.as_str(), spec.partitions, spec.replication),
            ("orders", 6, 1)
        );
        assert_eq!(config(&spec, "cleanup.policy"), Some("compact"));
        assert_eq!(config(&spec, "retention.ms"), Some("-1"));
        assert_eq!(
            config(&spec, "min.insync.replicas"),
            None,
            "one broker: the broker's default"
        );
    }

    #[test]
    fn min_insync_replicas_is_all_but_one_from_three_replicas_on() {
        for (replication, expected) in [(1, None), (2, None), (3, Some("2")), (5, Some("4"))] {
            let spec = TopicSpec::orders("orders", 6).replicated(replication);
            assert_eq!(spec.replication, replication);
            assert_eq!(
                config(&spec, "min.insync.replicas"),
                expected,
                "RF {replication}"
            );
        }
        let twice = TopicSpec::orders("orders", 6).replicated(5).replicated(3);
        assert_eq!(
            twice
                .configs
                .iter()
                .filter(|(k, _)| *k == "min.insync.replicas")
                .count(),
            1
        );
        assert_eq!(config(&twice, "min.insync.replicas"), Some("2"));
    }

    #[test]
    fn a_registry_is_one_compacted_partition_kept_forever() {
        let spec = TopicSpec::registry(&registry_topic("orders"));
        assert_eq!(
            (spec.name.as_str(), spec.partitions, spec.replication),
            ("orders.schemas", 1, -1)
        );
        assert_eq!(config(&spec, "cleanup.policy"), Some("compact"));
        assert_eq!(config(&spec, "retention.ms"), Some("-1"));
        assert_eq!(spec.required, [("cleanup.policy", "compact")]);
    }
}
