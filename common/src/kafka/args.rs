use std::fmt;

use rdkafka::ClientConfig;

/// Connection flags shared by every binary. Flatten it into a clap command.
#[derive(clap::Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap_servers: String,

    /// The order events topic.
    #[arg(long, env = "EDISON_TOPIC", default_value = "orders", global = true)]
    pub topic: String,

    /// A librdkafka property, as in kcat: `-X key=value`. Repeat it for several. Applied last, so
    /// it overrides the defaults (e.g. `-X security.protocol=SASL_SSL -X sasl.password=...`).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_override, global = true)]
    pub overrides: Vec<(String, String)>,
}

/// Parses one `-X key=value` pair.
pub fn parse_override(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {pair:?}")),
    }
}

impl KafkaArgs {
    /// Plain connection settings, for the admin client and other short-lived clients.
    pub fn client_config(&self) -> ClientConfig {
        self.with_overrides(self.base())
    }

    /// An idempotent producer: `acks=all`, no duplicates or reordering from its own retries.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "10");
        self.with_overrides(config)
    }

    /// A group consumer that stores offsets only when told to (`enable.auto.offset.store=false`)
    /// and commits the stored ones in the background, and on revoke and shutdown. It reads only
    /// committed transactions (librdkafka's default, stated because the relay's fencing rests on
    /// it): a chunk that a fenced relay sent is aborted, and never seen.
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false")
            // What librdkafka prefetches while the database is busy: 2 MB of payload (the
            // default is 64 MB) in fetches of at most 256 KB per partition (default 1 MB). Its
            // own memory is several times the payload (a decompressed copy of each record batch,
            // and a few hundred bytes per record), and a fetch may overshoot the queue's limit:
            // with 4 MB and 1 MB fetches, librdkafka held about 35 MB. Measured on 2M events
            // (warehouse into SQLite): peak RSS 78 -> 61 MB with the smaller fetches, 53 MB with
            // the smaller queue too, and 18 s -> 15 s, not slower. With a queue that small, fetching
            // must resume soon after it drains: librdkafka otherwise backs off a whole second
            // (fetch.queue.backoff.ms), which made a replay three times slower.
            .set("queued.max.messages.kbytes", "2048")
            .set("fetch.message.max.bytes", "262144")
            .set("fetch.queue.backoff.ms", "5")
            // A fetch to a broker waits this long for data when its partitions have none, and
            // no other fetch goes to that broker meanwhile. At start-up the first fetch often
            // holds only the one partition whose start offset was known first, often an empty
            // one: with the default 500 ms every run began half a second late. Data that
            // arrives ends the wait at once, so this only makes idle fetches more frequent.
            .set("fetch.wait.max.ms", "100");
        self.with_overrides(config)
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        // Only `sales topic create` creates topics, explicitly. A broker with
        // `auto.create.topics.enable=true` (Kafka's default) would otherwise create a mistyped
        // `--topic` on a metadata request or produce from a producer-type client (admin clients
        // are, and librdkafka lets producers auto-create by default).
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("allow.auto.create.topics", "false")
            // A new client's first requests often go out on the bootstrap connection beside one
            // of librdkafka's own; the answer to that one retires the connection, and they are
            // sent again on a connection to the broker by its id, which librdkafka opens only
            // half of this after the last one (100 ms by default): 50 ms at most look-ups and
            // before a consumer can join its group. A broker that is down is still retried with
            // a backoff that doubles from here up to `reconnect.backoff.max.ms`.
            .set("reconnect.backoff.ms", "20");
        config
    }

    fn with_overrides(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }
}

/// Shows override keys but never their values: `-X` carries credentials.
impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .overrides
            .iter()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        f.debug_struct("KafkaArgs")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic", &self.topic)
            .field("overrides", &keys)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(overrides: &[(&str, &str)]) -> KafkaArgs {
        KafkaArgs {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic: "orders".into(),
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn overrides_win_over_defaults() {
        let config = args(&[("acks", "1")]).producer_config();
        assert_eq!(config.get("acks"), Some("1"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn consumer_never_stores_offsets_by_itself() {
        let config = args(&[]).consumer_config("warehouse");
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.id"), Some("warehouse"));
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
    }

    #[test]
    fn no_client_asks_the_broker_to_create_a_topic() {
        let args = args(&[]);
        for config in [
            args.client_config(),
            args.producer_config(),
            args.consumer_config("g"),
        ] {
            assert_eq!(config.get("allow.auto.create.topics"), Some("false"));
        }
    }

    #[test]
    fn debug_hides_override_values() {
        let shown = format!("{:?}", args(&[("sasl.password", "hunter2")]));
        assert!(shown.contains("sasl.password=***"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn override_syntax() {
        assert_eq!(parse_override("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert!(parse_override("novalue").is_err());
        assert!(parse_override("=x").is_err());
    }
}
