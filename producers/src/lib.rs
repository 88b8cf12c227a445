//! Sales: records orders in its own store and publishes every change to the orders topic
//! through a transactional outbox.
//!
//! - [`Store`]: orders and outbox; each change is one transaction (no dual write).
//! - [`Relay`]: publishes the outbox in order with the idempotent producer.
//! - [`simulate`]: deterministic order traffic for demos, tests and benchmarks.
//! - [`Cli`] and [`run`]: the `sales` binary.

mod cli;
mod commands;
pub mod domain;
mod error;
pub mod relay;
pub mod simulate;
mod store;

pub use cli::{parse_model, parse_order_id, Cli, InFlight, SalesCommand, TopicCommand};
pub use commands::run;
pub use domain::{Amendment, Change, Command, NewOrder, OrderRecord, Transition};
pub use error::SalesError;
pub use relay::{Relay, RelayOptions, RelayReport, RelayStop};
pub use simulate::{SimulateOptions, SimulateReport};
pub use store::{OutboxCounts, OutboxEntry, Store};
