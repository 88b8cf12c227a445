//! Plumbing shared by Sales and the departments.

pub mod db;
pub mod kafka;
pub mod telemetry;
