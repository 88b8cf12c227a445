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

    #[error(transparent)]
    Connect(#[from] DbError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Schema(#[from] edison_schemas::SchemaError),
    #[error(transparent)]
    Encode(#[from] edison_schemas::EncodeError),
    #[error("cannot re-encode a stored event: {0}")]
    Decode(#[from] edison_schemas::DecodeError),
    #[error("Kafka error: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topic(#[from] TopicError),
}

impl SalesError {
    /// Converts a failed write: a unique-key collision means a concurrent change.
    pub(crate) fn from_write(error: sqlx::Error) -> SalesError {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => SalesError::Conflict,
            _ => SalesError::Database(error),
        }
    }
}
