//! The flags that say how a department consumes, and the [`RunOptions`] they make.

use std::time::Duration;

use clap::Args;

use edison_common::kafka::registry_topic;

use super::{RunOptions, Stop};

/// How records are consumed and batched.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// At most this many records per database transaction. Records that come while a batch is
    /// being applied join the next one, so a department far behind applies big batches (an
    /// order's several events collapse into one change) and one caught up applies each record
    /// as it comes. 20,000 replayed 430k events 15-28% faster than 5,000 (every department,
    /// SQLite and PostgreSQL), but how full its batches get depends on how fast the database
    /// is, so its peak RSS grew with the log: 53 MB at 100k events, 74 MB at 2M. 5,000 keeps
    /// it flat (44-50 MB); choose more for a one-off rebuild.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// How many milliseconds an idle database waits for more records before applying a batch
    /// that is not full; 0 applies at once.
    #[arg(long, default_value_t = 0)]
    pub batch_ms: u64,

    /// Where undecodable records go; never the orders topic or its registry [default: TOPIC.dlq,
    /// so runs on different topics never share one].
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
}

/// A dead-letter topic that is the orders topic (every poison record would be consumed again,
/// for ever) or its registry (which only Sales writes).
#[derive(Debug, thiserror::Error)]
#[error(
    "--dead-letter-topic {dead_letters} is the orders topic (--topic {topic}) or its registry: \
     poison records must go elsewhere (the default is {topic}.dlq)"
)]
pub struct DeadLetterTopicError {
    dead_letters: String,
    topic: String,
}

impl ConsumeArgs {
    /// The dead-letter topic of a run on `topic`, refusing the orders topic and its registry.
    pub fn dead_letter_topic(&self, topic: &str) -> Result<String, DeadLetterTopicError> {
        let dead_letters = self.dead_letter_topic.clone().unwrap_or_else(|| format!("{topic}.dlq"));
        if dead_letters == topic || dead_letters == registry_topic(topic) {
            return Err(DeadLetterTopicError { dead_letters, topic: topic.to_owned() });
        }
        Ok(dead_letters)
    }

    /// The options of a run of `group_id` on `topic`.
    pub fn options(&self, topic: &str, group_id: &str, stop: Stop) -> Result<RunOptions, DeadLetterTopicError> {
        Ok(RunOptions {
            group_id: group_id.to_owned(),
            dead_letter_topic: self.dead_letter_topic(topic)?,
            batch_size: self.batch_size as usize,
            linger: Duration::from_millis(self.batch_ms),
            stop,
            as_of: None,
            side_effects: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        consume: ConsumeArgs,
    }

    fn options(topic: &str, args: &[&str]) -> Result<RunOptions, DeadLetterTopicError> {
        let cli = Cli::try_parse_from(["department"].iter().chain(args)).unwrap();
        cli.consume.options(topic, "group", Stop::Never)
    }

    #[test]
    fn dead_letters_go_to_the_topics_own_dead_letter_topic_by_default() {
        assert_eq!(options("orders", &[]).unwrap().dead_letter_topic, "orders.dlq");
        assert_eq!(options("demo-1", &[]).unwrap().dead_letter_topic, "demo-1.dlq");
        assert_eq!(options("o", &["--dead-letter-topic", "poison"]).unwrap().dead_letter_topic, "poison");
    }

    #[test]
    fn dead_letters_never_go_to_the_orders_topic_or_its_registry() {
        for (topic, dead_letters) in [("orders", "orders"), ("o", "o"), ("o", "o.schemas")] {
            let message = options(topic, &["--dead-letter-topic", dead_letters]).unwrap_err().to_string();
            assert!(message.contains("is the orders topic"), "{topic} {dead_letters}: {message}");
            assert!(message.contains(&format!("default is {topic}.dlq")), "{message}");
        }
    }
}
