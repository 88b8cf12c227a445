//! The `sales` command line.

use clap::{Args, Parser, Subcommand};
use edison_common::kafka::KafkaArgs;
use edison_schemas::{CarModel, OrderStatus};
use uuid::Uuid;

use crate::error::SalesError;

/// Edison Cars Sales: keeps orders in its own store and publishes every change to Kafka
/// through a transactional outbox. Commands that change an order succeed even when Kafka is
/// down: the events wait in the outbox until a relay delivers them.
#[derive(Parser)]
#[command(name = "sales", version)]
pub struct Cli {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The Sales store: sqlite://PATH, a file path, or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true,
        default_value_t = edison_common::db::default_url("sales")
    )]
    pub database_url: String,

    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds one send may take (librdkafka message.timeout.ms) before the relay gives up and
    /// leaves the rest queued in the outbox.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_timeout: u64,

    #[command(subcommand)]
    pub command: SalesCommand,
}

#[derive(Subcommand)]
pub enum SalesCommand {
    /// Place a new order and print its id. Price, batteries and delivery date come from the
    /// catalogue: F 45,900 EUR (4 weeks), P 69,900 EUR (6 weeks), H 89,900 EUR (8 weeks).
    Place {
        /// F, P or H.
        #[arg(long, value_parser = parse_model)]
        model: CarModel,
        #[arg(long)]
        customer_name: String,
        #[arg(long)]
        email: String,
        /// Shipping address.
        #[arg(long)]
        address: String,
    },
    /// Record the payment of a placed order.
    Pay {
        #[arg(value_parser = parse_order_id)]
        order_id: Uuid,
    },
    /// Amend an order. The model (which changes the price, batteries and delivery date) can
    /// change only before payment; the shipping address can change until the order is cancelled.
    Amend {
        #[arg(value_parser = parse_order_id)]
        order_id: Uuid,
        /// New shipping address.
        #[arg(long)]
        address: Option<String>,
        /// New model: F, P or H.
        #[arg(long, value_parser = parse_model)]
        model: Option<CarModel>,
    },
    /// Cancel an order, paid or not. A paid order keeps its payment time, so Billing can refund.
    Cancel {
        #[arg(value_parser = parse_order_id)]
        order_id: Uuid,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Erase the customer's personal data (GDPR). Blanks name, email and address in the order
    /// and in every stored event of it (events not yet published go out blanked), then
    /// publishes a tombstone so compaction removes the order from the topic. The order's
    /// business data (model, price, dates) stays in the store; it cannot change any more.
    Erase {
        #[arg(value_parser = parse_order_id)]
        order_id: Uuid,
    },
    /// Show an order and its events with their publication state.
    Show {
        #[arg(value_parser = parse_order_id)]
        order_id: Uuid,
    },
    /// List orders, newest first.
    List {
        /// Only orders with this status: placed, paid or cancelled.
        #[arg(long, value_parser = parse_status)]
        status: Option<OrderStatus>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Publish the queued outbox events, then exit (or keep polling with --follow). Exits
    /// non-zero if events remain queued because Kafka failed.
    Relay {
        /// Keep polling the outbox until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Milliseconds between polls with --follow.
        #[arg(long, default_value_t = 500)]
        poll_ms: u64,
        #[command(flatten)]
        in_flight: InFlight,
    },
    /// Generate deterministic order traffic: the same --seed and options give the same events,
    /// ids and timestamps included. Writes in batched transactions and relays each batch while
    /// it writes the next.
    /// A seed can run only once per store (its order ids would collide); the run is refused.
    Simulate {
        /// Orders to place.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        orders: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// At most this many events per second (wall clock); unlimited by default.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<f64>,
        /// Start of the simulated clock (RFC 3339), not the wall clock.
        #[arg(long, value_parser = parse_start, default_value = "2025-01-06T08:00:00Z")]
        start: i64,
        /// Days over which orders are placed.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
        /// Write to the store only; leave every event queued for `sales relay`.
        #[arg(long)]
        no_relay: bool,
        #[command(flatten)]
        in_flight: InFlight,
    },
    /// Create or inspect the orders topic.
    #[command(subcommand)]
    Topic(TopicCommand),
}

impl SalesCommand {
    /// Whether the command only reads the store: it must not create one where there is none.
    pub(crate) fn only_reads(&self) -> bool {
        matches!(self, SalesCommand::Show { .. } | SalesCommand::List { .. })
    }
}

#[derive(Args)]
pub struct InFlight {
    /// The most records in flight to Kafka at once: the relay sends this many outbox rows, then
    /// awaits their acks before marking them published and reading more. `simulate` also
    /// commits this many events per store transaction.
    // Large transactions write the pages their events share (order rows, index and table
    // tails) once per commit rather than once per few thousand events: `simulate` stores 1.4x
    // as fast with 30000 as with 5000.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=30_000))]
    pub concurrency: u64,
}

#[derive(Subcommand)]
pub enum TopicCommand {
    /// Create the topic (compacted, retained forever) if it does not exist, verify it, and
    /// record its partition count in its registry (TOPIC.schemas): departments refuse a topic
    /// whose count differs. Only Sales creates the topic; departments wait for it.
    Create {
        /// Partitions, fixed for good: keys go to partitions by this count.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Replicas per partition (1 for the local single broker). From 3 on, writes need all
        /// replicas but one in sync (min.insync.replicas).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
    },
    /// Print the topic's partitions, watermarks and key configs.
    Describe,
}

pub fn parse_model(text: &str) -> Result<CarModel, SalesError> {
    CarModel::parse(text).ok_or_else(|| SalesError::InvalidModel(text.to_owned()))
}

pub fn parse_order_id(text: &str) -> Result<Uuid, SalesError> {
    Uuid::parse_str(text.trim()).map_err(|_| SalesError::InvalidOrderId(text.to_owned()))
}

fn parse_status(text: &str) -> Result<OrderStatus, SalesError> {
    crate::store::parse_status(text).ok_or_else(|| {
        SalesError::InvalidOption(format!(
            "unknown status {text:?}: expected placed, paid or cancelled"
        ))
    })
}

fn parse_rate(text: &str) -> Result<f64, SalesError> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(SalesError::InvalidOption(format!(
            "--rate must be a positive number of events per second, got {text:?}"
        ))),
    }
}

fn parse_start(text: &str) -> Result<i64, SalesError> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|error| {
            SalesError::InvalidOption(format!("--start {text:?} is not RFC 3339: {error}"))
        })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| SalesError::InvalidOption(format!("--start {text:?} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["sales"].iter().chain(args))
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = parse(&[
            "--bootstrap-servers",
            "b:1",
            "--topic",
            "t",
            "--database-url",
            "x.db",
            "simulate",
            "--orders",
            "3",
        ])
        .unwrap();
        assert_eq!(
            (
                cli.kafka.bootstrap_servers.as_str(),
                cli.kafka.topic.as_str()
            ),
            ("b:1", "t")
        );
        assert_eq!(cli.database_url, "x.db");
        let cli = parse(&["list", "--json", "--database-url", "y.db"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.database_url, "y.db");
    }

    #[test]
    fn bad_input_is_refused_by_the_parser() {
        for args in [
            &[
                "place",
                "--model",
                "Z",
                "--customer-name",
                "a",
                "--email",
                "a@b.c",
                "--address",
                "x",
            ][..],
            &["pay", "not-a-uuid"],
            &["simulate", "--orders", "0"],
            &["simulate", "--orders", "5", "--rate", "0"],
            &["simulate", "--orders", "5", "--rate", "-3"],
            &["simulate", "--orders", "5", "--start", "yesterday"],
            &["list", "--status", "lost"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn start_parses_rfc3339() {
        assert_eq!(
            parse_start("2025-01-06T08:00:00Z").unwrap(),
            crate::simulate::DEFAULT_START_MS
        );
    }
}
