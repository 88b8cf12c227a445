//! Idempotent creation and verification of the pipeline's topics.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Kafka admin request failed: {0}")]
    Kafka(#[from] KafkaError),
    #[error("cannot create topic {topic}: {code}")]
    Create { topic: String, code: RDKafkaErrorCode },
    #[error(
        "topic {topic} exists with {key}={actual}, but it must be {expected}; refusing to use it \
         (fix the topic or choose another with --topic)"
    )]
    WrongConfig { topic: String, key: &'static str, actual: String, expected: &'static str },
    #[error("the broker returned no configuration for topic {0}")]
    NoConfig(String),
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

    /// Sets the replication factor (1 on the local single-node broker).
    pub fn replicated(mut self, replication: i32) -> TopicSpec {
        self.replication = replication;
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
pub async fn ensure_topic(config: &ClientConfig, spec: &TopicSpec) -> Result<TopicStatus, TopicError> {
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let options = admin_options();
    let mut new_topic =
        NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.replication));
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
        let actual = topic_configs_with(&admin, &spec.name).await?;
        for &(key, expected) in &spec.required {
            let value = actual.get(key).cloned().unwrap_or_default();
            if value != expected {
                return Err(TopicError::WrongConfig { topic: spec.name.clone(), key, actual: value, expected });
            }
        }
    }
    Ok(status)
}

/// The topic's effective configuration, as the broker reports it.
pub async fn topic_configs(config: &ClientConfig, topic: &str) -> Result<HashMap<String, String>, TopicError> {
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    topic_configs_with(&admin, topic).await
}

async fn topic_configs_with(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<HashMap<String, String>, TopicError> {
    let results = admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options()).await?;
    let resource = match results.into_iter().next() {
        Some(Ok(resource)) if resource.specifier == OwnedResourceSpecifier::Topic(topic.to_owned()) => resource,
        Some(Err(code)) => return Err(TopicError::Kafka(KafkaError::AdminOp(code))),
        _ => return Err(TopicError::NoConfig(topic.to_owned())),
    };
    Ok(resource
        .entries
        .into_iter()
        .filter_map(|entry| Some((entry.name, entry.value?)))
        .collect())
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(30)))
}
