//! The log carries its own contract: `<topic>.schemas`, a compacted topic retained forever,
//! one partition, written only by Sales. It maps each writer schema's fingerprint to the schema,
//! so a reader resolves records written with a schema it was not built with, and records the
//! topic's partition count, which must never change.
//!
//! Records: key = the fingerprint as 16 lower-case hex digits, value = the schema's JSON text;
//! key [`CONTRACT_KEY`], value = a [`Contract`] as JSON. The latest value of a key wins; a
//! tombstone removes it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::client::{create, drop_in_background};
use super::group::watermarks;
use super::topic::{ensure_topic, TopicError, TopicSpec};

/// The key of the contract record.
pub const CONTRACT_KEY: &str = "contract";

/// Reading the registry to its end takes longer than this only if the broker is in trouble.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// The registry topic of `topic`: `<topic>.schemas`.
pub fn registry_topic(topic: &str) -> String {
    format!("{topic}.schemas")
}

/// The key of a schema's record: its fingerprint as 16 lower-case hex digits.
pub fn schema_key(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// What Sales promises about the shape of its topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// The topic's partition count. Keys go to partitions by this count, so it may never
    /// change: with another count, an order's new events and its tombstone would land on
    /// another partition than its history.
    pub partitions: i32,
    /// Replicas per partition, as created. Informative: reassigning replicas breaks nothing.
    pub replication_factor: i32,
}

/// What a registry holds: the latest value of each key.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub contract: Option<Contract>,
    /// Fingerprint → the schema's JSON text.
    pub schemas: HashMap<u64, String>,
}

/// One record of the registry, parsed.
#[derive(Debug, PartialEq)]
enum Entry {
    Contract(Option<Contract>),
    Schema(u64, Option<String>),
}

impl Registry {
    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Contract(contract) => self.contract = contract,
            Entry::Schema(fingerprint, Some(schema)) => {
                self.schemas.insert(fingerprint, schema);
            }
            Entry::Schema(fingerprint, None) => {
                self.schemas.remove(&fingerprint);
            }
        }
    }
}

/// Parses one record (`value` `None` is a tombstone), or says why it is not one of ours.
fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Entry, String> {
    let key = key
        .and_then(|key| std::str::from_utf8(key).ok())
        .ok_or("the key is not text")?;
    let value = value
        .map(|value| std::str::from_utf8(value).map_err(|_| "the value is not UTF-8"))
        .transpose()?;
    if key == CONTRACT_KEY {
        let contract = value
            .map(|value| {
                serde_json::from_str::<Contract>(value)
                    .map_err(|error| format!("not a contract: {error}"))
            })
            .transpose()?;
        return Ok(Entry::Contract(contract));
    }
    let fingerprint = (key.len() == 16
        && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then(|| u64::from_str_radix(key, 16).ok())
    .flatten()
    .ok_or_else(|| format!("the key {key:?} is neither {CONTRACT_KEY:?} nor a fingerprint"))?;
    if let Some(value) = value {
        serde_json::from_str::<serde_json::Value>(value)
            .map_err(|error| format!("the schema is not JSON: {error}"))?;
    }
    Ok(Entry::Schema(fingerprint, value.map(str::to_owned)))
}

/// Reads `<topic>.schemas` from its beginning to its end as of now. A registry that does not
/// exist (an older Sales, or none has written yet) is empty. Records that are not ours are
/// skipped with a warning. `config`: plain connection settings (`KafkaArgs::client_config`).
pub async fn read_registry(config: &ClientConfig, topic: &str) -> Result<Registry, TopicError> {
    let (config, registry) = (config.clone(), registry_topic(topic));
    tokio::task::spawn_blocking(move || read_blocking(config, &registry))
        .await
        .expect("reading the registry panicked")
}

fn read_blocking(mut config: ClientConfig, registry: &str) -> Result<Registry, TopicError> {
    // librdkafka assigns partitions only to a consumer with a group id; this one never joins
    // its group, nor commits, so the broker never hears of it.
    config
        .set("group.id", format!("{registry}.reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // Dropping the consumer waits for its last fetch, which the broker holds this long at
        // the end of the partition: 500 ms by default, at every start of every binary.
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer = create(&config)?;
    let read = read_with(&consumer, registry);
    drop_in_background(consumer);
    read
}

fn read_with(consumer: &BaseConsumer, registry: &str) -> Result<Registry, TopicError> {
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for mark in watermarks(consumer, registry)?
        .into_iter()
        .filter(|w| w.high > w.low)
    {
        assignment.add_partition_offset(registry, mark.partition, Offset::Beginning)?;
        ends.insert(mark.partition, mark.high);
    }
    let mut found = Registry::default();
    if ends.is_empty() {
        return Ok(found);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(TopicError::ReadTimeout {
                topic: registry.to_owned(),
            });
        }
        let message = match consumer.poll(POLL) {
            None => continue,
            // An aborted or control record may be the last before the end: only the end of the
            // partition says it is read.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ends.remove(&partition);
                continue;
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(message)) => message,
        };
        match parse(message.key(), message.payload()) {
            Ok(entry) => found.apply(entry),
            Err(why) => warn!(
                topic = registry,
                offset = message.offset(),
                why,
                "skipping a registry record"
            ),
        }
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
    }
    Ok(found)
}

/// Records `contract` (if given) and `schemas` (fingerprint, JSON text) in `<topic>.schemas`,
/// creating it if needed, and waits until the broker acknowledged every record. Only Sales
/// calls this. `config`: an idempotent producer's (`KafkaArgs::producer_config`).
pub async fn publish_registry(
    config: &ClientConfig,
    topic: &str,
    contract: Option<&Contract>,
    schemas: &[(u64, &str)],
) -> Result<(), TopicError> {
    let registry = registry_topic(topic);
    let mut spec = TopicSpec::registry(&registry);
    if let Some(contract) = contract {
        spec = spec.replicated(contract.replication_factor);
    }
    ensure_topic(config, &spec).await?;
    let producer: FutureProducer = create(config)?;
    let contract = contract.map(|contract| {
        let json = serde_json::to_string(contract).expect("a contract serializes");
        (CONTRACT_KEY.to_owned(), json)
    });
    let records = contract.into_iter().chain(
        schemas
            .iter()
            .map(|(fingerprint, schema)| (schema_key(*fingerprint), (*schema).to_owned())),
    );
    let mut deliveries = Vec::new();
    for (key, value) in &records.collect::<Vec<_>>() {
        let record = FutureRecord::to(&registry)
            .key(key.as_str())
            .payload(value.as_str());
        deliveries.push(producer.send_result(record).map_err(|(error, _)| error)?);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error.into()),
            Err(_canceled) => return Err(KafkaError::Canceled.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_registry_topic_fingerprints_in_hex_and_the_contract() {
        assert_eq!(registry_topic("orders"), "orders.schemas");
        assert_eq!(schema_key(0x00c3_0001_abcd_ef12), "00c30001abcdef12");
        assert_eq!(schema_key(u64::MAX), "ffffffffffffffff");
        assert_eq!(schema_key(1).len(), 16);
    }

    #[test]
    fn records_parse_to_entries_and_tombstones_to_removals() {
        let schema = br#"{"type":"record","name":"E","fields":[]}"#;
        assert_eq!(
            parse(Some(b"00c30001abcdef12"), Some(schema)),
            Ok(Entry::Schema(
                0x00c3_0001_abcd_ef12,
                Some(String::from_utf8(schema.to_vec()).unwrap())
            ))
        );
        assert_eq!(
            parse(Some(b"00c30001abcdef12"), None),
            Ok(Entry::Schema(0x00c3_0001_abcd_ef12, None))
        );
        let contract = Contract {
            partitions: 6,
            replication_factor: 3,
        };
        let json = serde_json::to_string(&contract).unwrap();
        assert_eq!(json, r#"{"partitions":6,"replication_factor":3}"#);
        assert_eq!(
            parse(Some(b"contract"), Some(json.as_bytes())),
            Ok(Entry::Contract(Some(contract)))
        );
        assert_eq!(parse(Some(b"contract"), None), Ok(Entry::Contract(None)));
    }

    #[test]
    fn records_that_are_not_ours_are_refused() {
        for (key, value) in [
            (None, Some(&b"{}"[..])),
            (Some(&b"00C30001ABCDEF12"[..]), Some(&b"{}"[..])),
            (Some(b"c30001abcdef12"), Some(b"{}")),
            (Some(b"+0c30001abcdef12"), Some(b"{}")),
            (Some(b"00c30001abcdef12"), Some(b"not json")),
            (Some(b"contract"), Some(br#"{"partitions":"six"}"#)),
            (Some(b"contract"), Some(&[0xff][..])),
            (Some(&[0xff][..]), None),
        ] {
            assert!(parse(key, value).is_err(), "{key:?} {value:?}");
        }
    }

    #[test]
    fn the_latest_value_of_each_key_wins() {
        let mut registry = Registry::default();
        registry.apply(Entry::Schema(1, Some("a".into())));
        registry.apply(Entry::Schema(2, Some("b".into())));
        registry.apply(Entry::Schema(1, Some("c".into())));
        registry.apply(Entry::Schema(2, None));
        registry.apply(Entry::Contract(Some(Contract {
            partitions: 3,
            replication_factor: 1,
        })));
        registry.apply(Entry::Contract(Some(Contract {
            partitions: 6,
            replication_factor: 1,
        })));
        assert_eq!(registry.schemas, HashMap::from([(1, "c".to_owned())]));
        assert_eq!(
            registry.contract,
            Some(Contract {
                partitions: 6,
                replication_factor: 1
            })
        );
        registry.apply(Entry::Contract(None));
        assert_eq!(registry.contract, None);
    }
}
