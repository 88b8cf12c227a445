//! One module per department: migrations, `apply`, queries and report.

pub mod assembly;
pub mod billing;
pub mod dashboard;
pub mod format;
pub mod mailer;
pub mod shipping;
pub mod warehouse;

#[cfg(test)]
mod fixtures;

pub use assembly::Assembly;
pub use billing::Billing;
pub use dashboard::Dashboard;
pub use mailer::Mailer;
pub use shipping::Shipping;
pub use warehouse::Warehouse;
