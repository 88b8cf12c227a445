//! One module per department: migrations, `apply`, queries and report.

pub mod warehouse;

pub use warehouse::Warehouse;
