//! Plumbing shared by Sales and the departments.

pub mod args;
pub mod db;
pub mod kafka;
pub mod telemetry;
pub mod time;
