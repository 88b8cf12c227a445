use edison_common::db::DbError;
use edison_common::kafka::TopicError;
use rdkafka::error::KafkaError;
use uuid::Uuid;

/// Everything Sales can refuse or fail at. Refusals (bad input, illegal transitions) change
/// nothing in the store or on the topic.
#[derive(Debug, thiserror::Error)]
pub enum SalesError {
    #[error("{0:?} is not an order id (expected a UUID)")]
    InvalidOrderId(String),
    #[error("no order {0}")]
    NotFound(Uuid),
    #[error("order {0} was erased; it cannot change any more")]
    Erased(Uuid),
    #[error("order {0} is already paid")]
    AlreadyPaid(Uuid),
    #[error("order {0} is already cancelled")]
    AlreadyCancelled(Uuid),
    #[error("order {id} is cancelled; it cannot be {action}")]
    Cancelled { id: Uuid, action: &'static str },
    #[error("order {0} is paid: the model (and so the price) can change only before payment")]
    ModelChangeAfterPayment(Uuid),
    #[error("nothing to amend on order {0}: give a different --model or --address")]
    NothingToAmend(Uuid),
    #[error("{0:?} does not look like an email address")]
    InvalidEmail(String),
    #[error("the {0} must not be empty")]
    EmptyField(&'static str),
    #[error("the {field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    #[error("unknown model {0:?}: expected F, P or H")]
    InvalidModel(String),
    #[error("{0}")]
    InvalidOption(String),
    #[error(
        "seed {seed} was already simulated into this store (order {order_id} exists); \
         use another --seed or a fresh --database-url"
    )]
    SeedAlreadyUsed { seed: u64, order_id: Uuid },
    #[error("another writer changed one of these orders at the same time; nothing was written, retry")]
    Conflict,
    #[error("the store holds an unreadable {what}: {value:?}")]
    CorruptRow { what: &'static str, value: String },
    /// A command that only reads found no store; `url` is redacted.
    #[error(
        "no Sales store at {url}: nothing has been sold with it yet \
         (`sales place` or `sales simulate` creates it)"
    )]
    NoStore { url: String },

    // The causes below are part of each message and deliberately not `#[source]`s (`#[from]`
    // would make them so): they, and sqlx's and Kafka's errors in turn, already repeat their
    // own source in their message, so a chain (`sales: {:#}`) would print a cause two or three
    // times. The `From`s are written by `from_cause!` instead.
    #[error("{0}")]
    Connect(DbError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("{0}")]
    Schema(edison_schemas::SchemaError),
    #[error("{0}")]
    Encode(edison_schemas::EncodeError),
    #[error("cannot re-encode a stored event: {0}")]
    Decode(edison_schemas::DecodeError),
    #[error("Kafka error: {0}")]
    Kafka(KafkaError),
    #[error("{0}")]
    Topic(TopicError),
}

/// `From` each cause into its variant, without making it a source.
macro_rules! from_cause {
    ($($variant:ident($cause:ty)),* $(,)?) => {$(
        impl From<$cause> for SalesError {
            fn from(cause: $cause) -> SalesError {
                SalesError::$variant(cause)
            }
        }
    )*};
}

from_cause!(
    Connect(DbError),
    Database(sqlx::Error),
    Schema(edison_schemas::SchemaError),
    Encode(edison_schemas::EncodeError),
    Decode(edison_schemas::DecodeError),
    Kafka(KafkaError),
    Topic(TopicError),
);

impl SalesError {
    /// Converts a failed write: a unique-key collision means a concurrent change.
    pub(crate) fn from_write(error: sqlx::Error) -> SalesError {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => SalesError::Conflict,
            _ => SalesError::Database(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn a_chain_names_each_cause_once() {
        let cause = "No such file or directory (os error 2)";
        let errors = [
            SalesError::from(sqlx::Error::Io(io::Error::from_raw_os_error(2))),
            SalesError::from(DbError::CreateDir { path: "data".into(), cause: io::Error::from_raw_os_error(2) }),
        ];
        for error in errors {
            let printed = format!("{:#}", anyhow::Error::from(error));
            assert_eq!(printed.matches(cause).count(), 1, "{printed}");
        }
        let kafka = SalesError::from(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::MessageTimedOut));
        let printed = format!("{:#}", anyhow::Error::from(kafka));
        assert_eq!(printed.matches("timed out").count(), 1, "{printed}");
    }
}
