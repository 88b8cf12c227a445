//! The registry topic (`<topic>.schemas`) against the real broker: what Sales publishes reads
//! back, the latest value of a key wins, a tombstone removes it, records that are not ours are
//! skipped, and a registry nobody wrote is empty and stays uncreated.

mod support;

use std::collections::HashMap;

use edison_common::kafka::{
    publish_registry, read_registry, registry_topic, schema_key, topic_configs, Contract,
    CONTRACT_KEY,
};
use rdkafka::ClientConfig;
use support::*;

/// A fresh topic name, with Sales' producer config and a reader's.
fn registry_test() -> (String, ClientConfig, ClientConfig) {
    let topic = unique("orders-test-registry");
    let args = kafka_args(&topic);
    (topic, args.producer_config(), args.client_config())
}

const V1: &str = r#"{"type":"record","name":"E","fields":[]}"#;
const V2: &str =
    r#"{"type":"record","name":"E","fields":[{"name":"x","type":"long","default":0}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn what_sales_publishes_reads_back_latest_value_first() {
    let (topic, producer, reader) = registry_test();
    let contract = Contract {
        partitions: 6,
        replication_factor: 1,
    };
    publish_registry(
        &producer,
        &topic,
        Some(&contract),
        &[(1, V1), (0xfeed_0000_0000_0002, V2)],
    )
    .await
    .unwrap();

    let registry = read_registry(&reader, &topic).await.unwrap();
    assert_eq!(registry.contract, Some(contract));
    assert_eq!(
        registry.schemas,
        HashMap::from([(1, V1.to_owned()), (0xfeed_0000_0000_0002, V2.to_owned())])
    );
    let configs = topic_configs(&reader, &registry_topic(&topic))
        .await
        .unwrap();
    assert_eq!(
        (
            configs["cleanup.policy"].as_str(),
            configs["retention.ms"].as_str()
        ),
        ("compact", "-1")
    );
    assert_eq!(
        watermarks(&registry_topic(&topic)).len(),
        1,
        "one partition, read in the order written"
    );

    let grown = Contract {
        partitions: 12,
        replication_factor: 1,
    };
    publish_registry(&producer, &topic, Some(&grown), &[(1, V2)])
        .await
        .unwrap();
    let registry = read_registry(&reader, &topic).await.unwrap();
    assert_eq!(registry.contract, Some(grown), "the latest contract wins");
    assert_eq!(
        registry.schemas[&1], V2,
        "the latest schema of a fingerprint wins"
    );
    assert_eq!(registry.schemas.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tombstone_removes_its_key_and_foreign_records_are_skipped() {
    let (topic, producer, reader) = registry_test();
    let contract = Contract {
        partitions: 3,
        replication_factor: 1,
    };
    publish_registry(&producer, &topic, Some(&contract), &[(7, V1), (8, V2)])
        .await
        .unwrap();
    let registry = registry_topic(&topic);
    produce(
        &registry,
        &[
            (schema_key(7).into_bytes(), None),
            (b"not-a-fingerprint".to_vec(), Some(V1.as_bytes().to_vec())),
            (schema_key(9).into_bytes(), Some(b"not json".to_vec())),
            (
                CONTRACT_KEY.as_bytes().to_vec(),
                Some(b"{\"partitions\":\"many\"}".to_vec()),
            ),
        ],
    )
    .await;

    let read = read_registry(&reader, &topic).await.unwrap();
    assert_eq!(
        read.schemas,
        HashMap::from([(8, V2.to_owned())]),
        "7 removed, 9 and the foreign key skipped"
    );
    assert_eq!(
        read.contract,
        Some(contract),
        "an unreadable contract leaves the last good one"
    );

    produce(&registry, &[(CONTRACT_KEY.as_bytes().to_vec(), None)]).await;
    assert_eq!(
        read_registry(&reader, &topic).await.unwrap().contract,
        None,
        "a tombstone removes the contract"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_nobody_wrote_is_empty_and_reading_it_creates_nothing() {
    let topic = unique("orders-test-registry");
    let registry = read_registry(&kafka_args(&topic).client_config(), &topic)
        .await
        .unwrap();
    assert!(registry.contract.is_none() && registry.schemas.is_empty());
    assert!(
        !topic_exists(&registry_topic(&topic)),
        "reading created the registry"
    );
}
