//! Rust types for `order_event.avsc`. Struct and enum names equal the Avro record names, which
//! the serde-direct Avro paths require.

use serde::{Deserialize, Serialize};

/// One change to an order, with the order's full state after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Unique id of this event (UUIDv7 text).
    pub event_id: String,
    pub event_type: EventType,
    /// Per-order sequence, starting at 1. Projections ignore an event at or below the last one
    /// they applied.
    pub sequence: i64,
    /// Milliseconds since the Unix epoch, UTC.
    pub occurred_at: i64,
    pub order: Order,
}

/// What happened to the order. Symbols a reader does not know decode as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Unknown,
    Placed,
    Paid,
    Amended,
    Cancelled,
}

/// The full state of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// UUIDv7 text; also the Kafka record key.
    pub order_id: String,
    pub customer: Customer,
    pub model: CarModel,
    /// Battery packs the car needs.
    pub batteries: i32,
    pub price: Money,
    pub status: OrderStatus,
    /// Days since the Unix epoch.
    pub expected_delivery: i32,
    /// Milliseconds since the Unix epoch, as are the other `_at` fields.
    pub placed_at: i64,
    /// Stays set after a cancellation, so a paid-then-cancelled order is visible from state alone.
    pub paid_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub shipping_address: String,
}

/// An amount in integer minor units (cents) of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount_cents: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    /// `EUR 45,900.00`: integer arithmetic only, for any amount of cents, sums included.
    pub fn format(cents: i64, currency: &str) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        let units = (cents / 100).to_string();
        let groups: Vec<_> = units.as_bytes().rchunks(3).rev().map(String::from_utf8_lossy).collect();
        format!("{currency} {sign}{}.{:02}", groups.join(","), cents % 100)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&Money::format(self.amount_cents, &self.currency))
    }
}

/// The Edison Cars line-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CarModel {
    #[serde(rename = "MODEL_F")]
    F,
    #[serde(rename = "MODEL_P")]
    P,
    #[serde(rename = "MODEL_H")]
    H,
}

impl CarModel {
    pub const ALL: [CarModel; 3] = [CarModel::F, CarModel::P, CarModel::H];

    /// The short name used in CLIs and reports: `F`, `P` or `H`.
    pub fn as_str(self) -> &'static str {
        match self {
            CarModel::F => "F",
            CarModel::P => "P",
            CarModel::H => "H",
        }
    }

    /// Parses the short name, case-insensitively, with or without a `Model ` prefix.
    pub fn parse(name: &str) -> Option<CarModel> {
        let short = name.trim();
        let short = short
            .strip_prefix("Model ")
            .or_else(|| short.strip_prefix("MODEL_"))
            .unwrap_or(short);
        CarModel::ALL
            .into_iter()
            .find(|model| model.as_str().eq_ignore_ascii_case(short))
    }
}

impl std::fmt::Display for CarModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model {}", self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Unknown,
    Placed,
    Paid,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Unknown => "unknown",
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
