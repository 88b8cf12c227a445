//! Poison messages: anything the runtime cannot turn into a [`super::Change`].

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

pub const HEADER_SOURCE_TOPIC: &str = "edison.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "edison.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "edison.source.offset";
pub const HEADER_ERROR_KIND: &str = "edison.error.kind";
pub const HEADER_ERROR_MESSAGE: &str = "edison.error.message";
pub const HEADER_GROUP: &str = "edison.consumer.group";

/// A record that could not be decoded, kept byte for byte with why it failed.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Stable name: `invalid_key`, `empty_value`, `key_mismatch`, or a decode error kind.
    pub kind: &'static str,
    pub message: String,
}

/// Sends dead letters concurrently and waits until the broker has acknowledged all of them, so
/// their source offsets can be stored.
pub async fn send_all(
    producer: &FutureProducer,
    dead_letter_topic: &str,
    source_topic: &str,
    group_id: &str,
    letters: &[DeadLetter],
) -> Result<(), KafkaError> {
    let sends = letters.iter().map(|letter| {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header(HEADER_SOURCE_TOPIC, source_topic))
            .insert(header(HEADER_SOURCE_PARTITION, &partition))
            .insert(header(HEADER_SOURCE_OFFSET, &offset))
            .insert(header(HEADER_ERROR_KIND, letter.kind))
            .insert(header(HEADER_ERROR_MESSAGE, &letter.message))
            .insert(header(HEADER_GROUP, group_id));
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dead_letter_topic).headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &letter.value {
            record = record.payload(value.as_slice());
        }
        async move {
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(error, _)| error)
        }
    });
    try_join_all(sends).await.map(|_| ())
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header { key, value: Some(value) }
}
