//! Kafka: the connection flags every binary takes, the client configs built from them, and the
//! topics the pipeline owns.

mod args;
mod group;
mod topic;

pub use args::{parse_override, KafkaArgs};
pub use group::{
    commit_offsets, committed_offsets, delete_group, describe_group, offsets_of, watermarks, GroupMember, Watermarks,
};
pub use topic::{ensure_topic, topic_configs, TopicError, TopicSpec, TopicStatus};
