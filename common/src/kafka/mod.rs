//! Kafka: the connection flags every binary takes, the client configs built from them, the
//! clients made from those, and the topics the pipeline owns.

mod args;
mod client;
mod group;
pub mod registry;
mod topic;

pub use args::{parse_override, KafkaArgs};
pub use client::{create, create_with_context};
pub use group::{
    commit_offsets, committed_offsets, committed_offsets_of, delete_group, describe_group, group_client, list_groups, log_end_offsets, offsets_of, partition_lag, read_log_end_offsets,
    total_lag, watermarks,
    GroupMember, GroupState, Watermarks,
};
pub use registry::{
    publish_registry, read_registry, registry_topic, schema_key, Contract, Registry, CONTRACT_KEY,
};
pub use topic::{
    await_orders_topic, await_topic, check_contract, ensure_topic, record_contract, topic_configs, TopicError, TopicSpec,
    TopicStatus,
};
