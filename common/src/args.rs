//! The flags every department takes, in one struct that each command line flattens.

use clap::Args;
use sqlx::migrate::Migrator;

use crate::db::{self, Database, DbError};
use crate::kafka::{await_orders_topic, KafkaArgs, TopicError};

/// Flags every department takes. Defaults that depend on the department are resolved by the
/// methods, given its name.
#[derive(Clone, Args)]
pub struct SharedArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group [default: the department's name].
    #[arg(long, global = true)]
    pub group_id: Option<String>,

    /// The projection's database: sqlite://PATH, a file path, or postgres://...
    /// [default: sqlite://data/DEPARTMENT.db]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// PostgreSQL only: the schema holding this projection, so departments can share one
    /// database [default: the department's name].
    #[arg(long, env = "DATABASE_SCHEMA", global = true)]
    pub database_schema: Option<String>,
}

/// Shows the database URL without its password.
impl std::fmt::Debug for SharedArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedArgs")
            .field("kafka", &self.kafka)
            .field("group_id", &self.group_id)
            .field("database_url", &self.database_url.as_deref().map(db::redact))
            .field("database_schema", &self.database_schema)
            .finish()
    }
}

impl SharedArgs {
    /// The consumer group of department `name`.
    pub fn group_id(&self, name: &str) -> String {
        self.group_id.clone().unwrap_or_else(|| name.to_owned())
    }

    /// The database URL of department `name`.
    pub fn database_url(&self, name: &str) -> String {
        self.database_url.clone().unwrap_or_else(|| db::default_url(name))
    }

    /// The PostgreSQL schema of department `name`.
    pub fn database_schema(&self, name: &str) -> String {
        self.database_schema.clone().unwrap_or_else(|| name.to_owned())
    }

    /// Fails unless the orders topic exists with the partition count Sales recorded. Tools never
    /// wait for it (a department's run does), and nothing here ever creates it.
    pub async fn require_topic(&self) -> Result<i32, TopicError> {
        await_orders_topic(&self.kafka.client_config(), &self.kafka.topic, None).await
    }

    /// Connects to department `name`'s database and brings its schema up to date.
    pub async fn connect(&self, name: &str, migrator: &Migrator) -> Result<Database, DbError> {
        let schema = self.database_schema(name);
        db::connect_to(&self.database_url(name), Some(&schema), migrator).await
    }
}
