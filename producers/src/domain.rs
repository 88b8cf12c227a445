//! The order lifecycle as pure functions: what each command may do to an order, and the state it
//! leaves. No I/O here, so every rule is unit-tested directly.

use edison_schemas::{CarModel, Customer, EventType, Money, Order, OrderEvent, OrderStatus};
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::error::SalesError;

pub const CURRENCY: &str = "EUR";
const DAY_MS: i64 = 86_400_000;
const MAX_FIELD_LEN: usize = 500;

/// What a model costs and needs, from the fixed catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    pub price_cents: i64,
    pub batteries: i32,
    /// Weeks from order to delivery.
    pub lead_weeks: i32,
}

pub fn catalogue(model: CarModel) -> ModelSpec {
    match model {
        CarModel::F => ModelSpec { price_cents: 4_590_000, batteries: 2, lead_weeks: 4 },
        CarModel::P => ModelSpec { price_cents: 6_990_000, batteries: 3, lead_weeks: 6 },
        CarModel::H => ModelSpec { price_cents: 8_990_000, batteries: 4, lead_weeks: 8 },
    }
}

/// A customer's request for a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub model: CarModel,
    pub customer_name: String,
    pub email: String,
    pub address: String,
}

/// A change to an existing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pay,
    Amend(Amendment),
    Cancel { reason: Option<String> },
    /// GDPR erasure: blanks the customer's personal data and publishes a tombstone.
    Erase,
}

/// Model changes (which change the price) are allowed only before payment; address changes
/// until the order is cancelled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amendment {
    pub address: Option<String>,
    pub model: Option<CarModel>,
}

/// What a transition publishes: an event with the new state, or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Event(EventType),
    Erased,
}

impl Change {
    /// The name stored in the outbox and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Event(EventType::Placed) => "PLACED",
            Change::Event(EventType::Paid) => "PAID",
            Change::Event(EventType::Amended) => "AMENDED",
            Change::Event(EventType::Cancelled) => "CANCELLED",
            Change::Event(EventType::Unknown) => "UNKNOWN",
            Change::Erased => "ERASED",
        }
    }
}

/// An order as Sales keeps it: the published state, its sequence, and whether it was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRecord {
    pub id: Uuid,
    pub order: Order,
    /// The sequence of the last event; the next change gets `sequence + 1`.
    pub sequence: i64,
    pub erased_at: Option<i64>,
}

/// One committed change: the order's new state and the outbox entry that announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub record: OrderRecord,
    pub change: Change,
    pub event_id: Uuid,
    pub occurred_at: i64,
}

impl Transition {
    /// The event to publish, or `None` for a tombstone.
    pub fn event(&self) -> Option<OrderEvent> {
        match self.change {
            Change::Event(event_type) => Some(OrderEvent {
                event_id: self.event_id.to_string(),
                event_type,
                sequence: self.record.sequence,
                occurred_at: self.occurred_at,
                order: self.record.order.clone(),
            }),
            Change::Erased => None,
        }
    }
}

/// Validates a new order and builds its first state (sequence 1).
pub fn place(new: &NewOrder, id: Uuid, customer_id: Uuid, at: i64) -> Result<OrderRecord, SalesError> {
    let name = required("customer name", &new.customer_name)?;
    let email = valid_email(&new.email)?;
    let address = required("address", &new.address)?;
    let spec = catalogue(new.model);
    Ok(OrderRecord {
        id,
        order: Order {
            order_id: id.to_string(),
            customer: Customer {
                customer_id: customer_id.to_string(),
                name,
                email,
                shipping_address: address,
            },
            model: new.model,
            batteries: spec.batteries,
            price: Money { amount_cents: spec.price_cents, currency: CURRENCY.to_owned() },
            status: OrderStatus::Placed,
            expected_delivery: expected_delivery(at, spec),
            placed_at: at,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
        },
        sequence: 1,
        erased_at: None,
    })
}

impl OrderRecord {
    /// The state after `command` at time `at`, or why the command is refused.
    pub fn apply(&self, command: &Command, at: i64) -> Result<(OrderRecord, Change), SalesError> {
        let id = self.id;
        if self.erased_at.is_some() {
            return Err(SalesError::Erased(id));
        }
        let status = self.order.status;
        let mut next = self.clone();
        next.sequence += 1;
        let order = &mut next.order;
        let event = match command {
            Command::Pay => {
                match status {
                    OrderStatus::Paid => return Err(SalesError::AlreadyPaid(id)),
                    OrderStatus::Cancelled => return Err(SalesError::Cancelled { id, action: "paid" }),
                    _ => {}
                }
                order.status = OrderStatus::Paid;
                order.paid_at = Some(at);
                EventType::Paid
            }
            Command::Amend(amendment) => {
                if status == OrderStatus::Cancelled {
                    return Err(SalesError::Cancelled { id, action: "amended" });
                }
                let mut changed = false;
                if let Some(model) = amendment.model.filter(|&model| model != order.model) {
                    if status == OrderStatus::Paid {
                        return Err(SalesError::ModelChangeAfterPayment(id));
                    }
                    let spec = catalogue(model);
                    order.model = model;
                    order.batteries = spec.batteries;
                    order.price.amount_cents = spec.price_cents;
                    order.expected_delivery = expected_delivery(order.placed_at, spec);
                    changed = true;
                }
                if let Some(address) = &amendment.address {
                    let address = required("address", address)?;
                    changed |= address != order.customer.shipping_address;
                    order.customer.shipping_address = address;
                }
                if !changed {
                    return Err(SalesError::NothingToAmend(id));
                }
                EventType::Amended
            }
            Command::Cancel { reason } => {
                if status == OrderStatus::Cancelled {
                    return Err(SalesError::AlreadyCancelled(id));
                }
                order.status = OrderStatus::Cancelled;
                order.cancelled_at = Some(at);
                order.cancel_reason = reason.as_deref().map(|r| required("reason", r)).transpose()?;
                EventType::Cancelled
            }
            Command::Erase => {
                next.order.customer = scrubbed(&next.order.customer);
                next.erased_at = Some(at);
                return Ok((next, Change::Erased));
            }
        };
        Ok((next, Change::Event(event)))
    }
}

/// The customer with every personal field blanked; the pseudonymous customer id stays.
pub fn scrubbed(customer: &Customer) -> Customer {
    Customer {
        customer_id: customer.customer_id.clone(),
        name: String::new(),
        email: String::new(),
        shipping_address: String::new(),
    }
}

/// A UUIDv7 for `at_ms` whose random part comes from `rng`: seeded simulations get the same ids.
pub fn uuid_v7(at_ms: i64, rng: &mut impl Rng) -> Uuid {
    let mut random = [0u8; 10];
    rng.fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(at_ms.max(0) as u64, &random).into_uuid()
}

fn expected_delivery(placed_at: i64, spec: ModelSpec) -> i32 {
    let days = placed_at.div_euclid(DAY_MS) + 7 * i64::from(spec.lead_weeks);
    i32::try_from(days).unwrap_or(i32::MAX)
}

fn required(field: &'static str, value: &str) -> Result<String, SalesError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(SalesError::EmptyField(field));
    }
    if value.len() > MAX_FIELD_LEN {
        return Err(SalesError::TooLong { field, max: MAX_FIELD_LEN });
    }
    Ok(value.to_owned())
}

/// A sanity check, not RFC 5322: one `@`, a non-empty local part, a dotted domain, no spaces.
fn valid_email(email: &str) -> Result<String, SalesError> {
    let email = required("email", email)?;
    let invalid = || SalesError::InvalidEmail(email.clone());
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || !domain_ok || domain.contains('@') || email.contains(char::is_whitespace) {
        return Err(invalid());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_736_150_400_000; // 2025-01-06T08:00:00Z

    fn new_order() -> NewOrder {
        NewOrder {
            model: CarModel::F,
            customer_name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            address: "1 Analytical Row, London".into(),
        }
    }

    fn placed() -> OrderRecord {
        place(&new_order(), Uuid::from_u128(1), Uuid::from_u128(2), T0).unwrap()
    }

    fn after(record: &OrderRecord, command: Command) -> OrderRecord {
        record.apply(&command, T0 + 1000).unwrap().0
    }

    fn cancel() -> Command {
        Command::Cancel { reason: None }
    }

    fn amend_model(model: CarModel) -> Command {
        Command::Amend(Amendment { model: Some(model), address: None })
    }

    fn amend_address(address: &str) -> Command {
        Command::Amend(Amendment { model: None, address: Some(address.into()) })
    }

    #[test]
    fn placing_prices_from_the_catalogue() {
        let record = placed();
        assert_eq!(record.sequence, 1);
        assert_eq!(record.order.status, OrderStatus::Placed);
        assert_eq!(record.order.price, Money { amount_cents: 4_590_000, currency: "EUR".into() });
        assert_eq!(record.order.batteries, 2);
        // 2025-01-06 is day 20094; Model F ships four weeks later.
        assert_eq!(record.order.expected_delivery, 20094 + 28);
    }

    #[test]
    fn placing_validates_input() {
        let cases = [
            (NewOrder { email: "no-at-sign".into(), ..new_order() }, "email"),
            (NewOrder { email: "a@b".into(), ..new_order() }, "email"),
            (NewOrder { email: "a b@c.de".into(), ..new_order() }, "email"),
            (NewOrder { email: "@c.de".into(), ..new_order() }, "email"),
            (NewOrder { customer_name: "  ".into(), ..new_order() }, "name"),
            (NewOrder { address: "".into(), ..new_order() }, "address"),
        ];
        for (bad, what) in cases {
            let error = place(&bad, Uuid::nil(), Uuid::nil(), T0).unwrap_err();
            assert!(error.to_string().contains(what), "{bad:?}: {error}");
        }
    }

    #[test]
    fn pay_then_cancel_keeps_paid_at() {
        let paid = after(&placed(), Command::Pay);
        assert_eq!((paid.order.status, paid.sequence, paid.order.paid_at), (OrderStatus::Paid, 2, Some(T0 + 1000)));
        let (cancelled, change) = paid
            .apply(&Command::Cancel { reason: Some("changed mind".into()) }, T0 + 5000)
            .unwrap();
        assert_eq!(change, Change::Event(EventType::Cancelled));
        assert_eq!(cancelled.order.status, OrderStatus::Cancelled);
        assert_eq!(cancelled.order.paid_at, Some(T0 + 1000));
        assert_eq!(cancelled.order.cancelled_at, Some(T0 + 5000));
        assert_eq!(cancelled.order.cancel_reason.as_deref(), Some("changed mind"));
        assert_eq!(cancelled.sequence, 3);
    }

    #[test]
    fn model_change_reprices_before_payment() {
        let (amended, change) = placed().apply(&amend_model(CarModel::H), T0 + 1).unwrap();
        assert_eq!(change, Change::Event(EventType::Amended));
        assert_eq!(amended.order.price.amount_cents, 8_990_000);
        assert_eq!(amended.order.batteries, 4);
        assert_eq!(amended.order.expected_delivery, 20094 + 56);
    }

    #[test]
    fn address_change_allowed_after_payment() {
        let amended = after(&after(&placed(), Command::Pay), amend_address("2 New Street"));
        assert_eq!(amended.order.customer.shipping_address, "2 New Street");
        assert_eq!(amended.order.status, OrderStatus::Paid);
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let placed = placed();
        let paid = after(&placed, Command::Pay);
        let cancelled = after(&placed, cancel());
        let erased = after(&placed, Command::Erase);
        let cases: Vec<(&OrderRecord, Command, &str)> = vec![
            (&paid, Command::Pay, "already paid"),
            (&cancelled, Command::Pay, "cancelled"),
            (&cancelled, cancel(), "already cancelled"),
            (&cancelled, amend_address("x"), "cancelled"),
            (&paid, amend_model(CarModel::P), "only before payment"),
            (&placed, amend_model(CarModel::F), "nothing to amend"),
            (&placed, Command::Amend(Amendment::default()), "nothing to amend"),
            (&placed, amend_address(" "), "address"),
            (&erased, Command::Pay, "erased"),
            (&erased, cancel(), "erased"),
            (&erased, Command::Erase, "erased"),
        ];
        for (record, command, expected) in cases {
            let error = record.apply(&command, T0).unwrap_err();
            assert!(error.to_string().contains(expected), "{command:?}: {error}");
        }
    }

    #[test]
    fn erasure_blanks_personal_data_and_tombstones() {
        let (erased, change) = placed().apply(&Command::Erase, T0 + 9).unwrap();
        assert_eq!(change, Change::Erased);
        assert_eq!(erased.erased_at, Some(T0 + 9));
        assert_eq!(erased.sequence, 2);
        let customer = &erased.order.customer;
        assert_eq!((customer.name.as_str(), customer.email.as_str(), customer.shipping_address.as_str()), ("", "", ""));
        assert_eq!(customer.customer_id, Uuid::from_u128(2).to_string());
        let transition =
            Transition { record: erased, change, event_id: Uuid::nil(), occurred_at: T0 + 9 };
        assert_eq!(transition.event(), None);
    }

    #[test]
    fn seeded_uuids_are_v7_and_reproducible() {
        use rand::SeedableRng;
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let id = uuid_v7(T0, &mut a);
        assert_eq!(id, uuid_v7(T0, &mut b));
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64, T0 / 1000);
    }
}
