//! Creating librdkafka clients without putting secrets on stderr.
//!
//! librdkafka's config errors carry the offending value: `-X sasl.pasword=hunter2` (a typo, so
//! librdkafka does not know the key is secret) fails with `No such configuration property:
//! "sasl.pasword" sasl.pasword hunter2`. Every client built from [`KafkaArgs`](super::KafkaArgs)
//! configs is created here, and its creation errors show only the values of the properties in
//! [`SHOWN`].

use std::cmp::Reverse;

use rdkafka::config::{FromClientConfig, FromClientConfigAndContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientConfig, ClientContext};

/// Properties whose values an error may show: the ones this code sets, none of them secret.
/// Every other value (any other `-X` value, a mistyped key's above all) is hidden.
const SHOWN: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "client.id",
    "enable.idempotence",
    "acks",
    "compression.type",
    "linger.ms",
    "reconnect.backoff.ms",
    "message.timeout.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
    "allow.auto.create.topics",
    "isolation.level",
];

/// Words that mark a property as secret, even if listed in [`SHOWN`].
const SECRET_WORDS: &[&str] = &["password", "secret", "token", "key"];

const HIDDEN: &str = "***";

/// Drops an admin client or a group consumer on the runtime's blocking pool, once its work is
/// done: rust-rdkafka's drop of either waits out a poll of up to 100 ms, which no caller needs to
/// wait for. The runtime still waits for it before it shuts down.
pub(super) fn drop_in_background<T: Send + 'static>(client: T) {
    drop(tokio::task::spawn_blocking(move || drop(client)));
}

/// `config.create()`, with secrets hidden from the error.
pub fn create<T: FromClientConfig>(config: &ClientConfig) -> KafkaResult<T> {
    T::from_config(config).map_err(|error| hide_values(error, config))
}

/// `config.create_with_context(context)`, with secrets hidden from the error.
pub fn create_with_context<C, T>(config: &ClientConfig, context: C) -> KafkaResult<T>
where
    C: ClientContext,
    T: FromClientConfigAndContext<C>,
{
    T::from_config_and_context(config, context).map_err(|error| hide_values(error, config))
}

fn is_shown(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SHOWN.contains(&lower.as_str()) && !SECRET_WORDS.iter().any(|word| lower.contains(word))
}

/// Replaces every hidden value of `config` in the error's text. Creation fails only with
/// `ClientConfig` (one property's error) or `ClientCreation` (librdkafka's message); the other
/// variants carry error codes, not text.
fn hide_values(error: KafkaError, config: &ClientConfig) -> KafkaError {
    let mut hidden: Vec<&str> = config
        .config_map()
        .into_keys()
        .filter(|key| !is_shown(key))
        // `config_map` masks the values librdkafka knows are secret; `get` has them all.
        .filter_map(|key| config.get(key))
        .filter(|value| !value.is_empty())
        .collect();
    // Longest first, so a value containing another is hidden whole.
    hidden.sort_by_key(|value| Reverse(value.len()));
    let hide = |text: &str| {
        hidden
            .iter()
            .fold(text.to_owned(), |text, value| text.replace(value, HIDDEN))
    };
    match error {
        KafkaError::ClientConfig(result, description, key, value) => {
            let value = if is_shown(&key) {
                value
            } else {
                HIDDEN.to_owned()
            };
            KafkaError::ClientConfig(result, hide(&description), key, value)
        }
        KafkaError::ClientCreation(message) => KafkaError::ClientCreation(hide(&message)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::FutureProducer;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", "127.0.0.1:9");
        for (key, value) in pairs {
            config.set(*key, *value);
        }
        config
    }

    fn error_of(config: &ClientConfig) -> String {
        match create::<BaseConsumer>(config) {
            Ok(_) => panic!("the config must be refused"),
            Err(error) => format!("{error} {error:?}"),
        }
    }

    #[test]
    fn a_mistyped_secret_key_keeps_its_value_hidden() {
        let shown = error_of(&config(&[("sasl.pasword", "CANARY77")]));
        assert!(shown.contains("sasl.pasword"), "{shown}");
        assert!(!shown.contains("CANARY77"), "{shown}");
    }

    #[test]
    fn an_invalid_value_is_hidden_unless_its_property_is_known_harmless() {
        let shown = error_of(&config(&[("security.protocol", "CANARY_PLAIN")]));
        assert!(
            shown.contains("security.protocol") && !shown.contains("CANARY_PLAIN"),
            "{shown}"
        );
        let shown = error_of(&config(&[("auto.offset.reset", "sideways")]));
        assert!(
            shown.contains("sideways"),
            "our own settings stay readable: {shown}"
        );
    }

    #[test]
    fn secret_words_win_over_the_shown_list() {
        assert!(is_shown("acks") && is_shown("Group.Id"));
        assert!(
            !is_shown("sasl.password")
                && !is_shown("ssl.key.location")
                && !is_shown("sasl.oauthbearer.token")
        );
        assert!(!is_shown("sasl.pasword"), "unknown keys are hidden");
    }

    #[test]
    fn creation_messages_hide_every_other_value() {
        let error = KafkaError::ClientCreation("cannot load /secret/CANARY.pem for CANARY".into());
        let hidden = hide_values(
            error,
            &config(&[
                ("ssl.key.location", "/secret/CANARY.pem"),
                ("x.y", "CANARY"),
            ]),
        );
        assert_eq!(
            hidden.to_string(),
            "Client creation error: cannot load *** for ***"
        );
    }

    #[test]
    fn valid_configs_create_clients() {
        assert!(create::<FutureProducer>(&config(&[("acks", "all")])).is_ok());
    }
}
