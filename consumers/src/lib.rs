//! The departments: consumers of the `orders` topic, each materialising its own projection.
//!
//! All Kafka work lives once in [`runtime`]: consume, decode, batch, apply in one transaction,
//! store offsets after commit, dead-letter, shutdown and catch-up detection. A department is a
//! [`runtime::Projection`]: its migrations, its `apply`, its queries and its report.

pub mod admin;
pub mod cli;
pub mod departments;
pub mod rebuild;
pub mod runtime;
