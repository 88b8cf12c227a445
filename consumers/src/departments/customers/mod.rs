//! Customers: one row per customer (by `customer_id`) with their latest name, email and shipping
//! address, how many orders they placed, paid and cancelled, when they last ordered, and their
//! lifetime spend per currency.
//!
//! # What counts
//! - **Orders placed**: the customer's live orders (not erased), whatever their status.
//! - **Orders paid**: those with `paid_at` set, including orders cancelled after payment.
//! - **Orders cancelled**: those with `cancelled_at` set, before or after payment.
//! - **Lifetime spend**: the latest price of every order paid and *not* cancelled, in integer
//!   cents. Billing credits a paid order that is cancelled, so it is not spend; this is billing's
//!   net revenue, per customer. Sales prices every order in EUR today, but the schema allows any
//!   ISO 4217 code, so spend is kept per currency (`customer_spend`, one row per customer and
//!   currency) and amounts in different currencies are never added up.
//! - **Last order**: the latest `placed_at` of the customer's live orders.
//! - **Latest name, email and address**: from the customer's most recently changed order, the
//!   one whose applied event has the highest `occurred_at`; a tie goes to the highest order id
//!   (UUIDv7 ids sort by time of placing, so the later order wins).
//!
//! # Exact after any replay
//! A customer is an aggregate over many orders, so nothing is ever added to or subtracted from a
//! stored total. Each order has one row in `customer_orders`, its contribution, rewritten from its
//! latest state behind the sequence gate ([`sql::upsert`]); that is all a batch writes.
//! `customers` and `customer_spend` are views over those rows (migration 0002), computed when
//! read, so they give the same rows however the log is batched, replayed or duplicated, an
//! amendment that moves an order to another `customer_id` or an erasure that takes it away
//! included. A lookup of one customer reads only their orders, through the index on
//! `customer_id`; the report aggregates all of them.
//!
//! Stored aggregates were the first design: a delete and an `INSERT .. SELECT` per table for
//! every customer a batch touched, and a lookup of the customers an order belonged to before.
//! That was four fifths of a rebuild's database time (issue 11), and on PostgreSQL it needed a
//! table lock so that two group members could not recompute one customer from each other's
//! uncommitted orders. With views nothing is shared between orders at write time.
//!
//! # Erasure (GDPR tombstones)
//! A tombstone deletes the order's contribution, and its customer is computed without it. A
//! customer with no order left disappears from every view, personal data included; one with
//! orders left shows only what those orders state. The report prints counts, amounts and
//! customer ids, never a name, email or address.

use std::fmt::Write;

use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool};

use edison_schemas::{Money, OrderEvent};

use crate::runtime::table::{self, SqliteApply, Table, Value};
use crate::runtime::{Change, Projection};

static MIGRATOR: Migrator = sqlx::migrate!("src/departments/customers/migrations");

/// How many customers the report lists per currency.
pub const TOP_CUSTOMERS: i64 = 5;

const COLUMNS: [&str; 13] = [
    "order_id",
    "customer_id",
    "name",
    "email",
    "shipping_address",
    "currency",
    "amount_cents",
    "placed_at",
    "paid_at",
    "cancelled_at",
    "spend_cents",
    "sequence",
    "updated_at",
];

const CUSTOMER_COLUMNS: &str = "customer_id, name, email, shipping_address, orders_placed, orders_paid, \
                                orders_cancelled, last_order_at, updated_at";

#[derive(Debug, Clone, Copy, Default)]
pub struct Customers;

/// What one order contributes to its customer, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Contribution {
    pub order_id: String,
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub shipping_address: String,
    pub currency: String,
    pub amount_cents: i64,
    pub placed_at: i64,
    /// Stays set after a cancellation.
    pub paid_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    /// The price if the order is paid and not cancelled: what it adds to lifetime spend.
    pub spend_cents: Option<i64>,
    pub sequence: i64,
    pub updated_at: i64,
}

impl Contribution {
    /// What the order in `event` contributes to its customer.
    pub fn from_event(event: &OrderEvent) -> Contribution {
        let order = &event.order;
        let spends = order.paid_at.is_some() && order.cancelled_at.is_none();
        Contribution {
            order_id: order.order_id.clone(),
            customer_id: order.customer.customer_id.clone(),
            name: order.customer.name.clone(),
            email: order.customer.email.clone(),
            shipping_address: order.customer.shipping_address.clone(),
            currency: order.price.currency.clone(),
            amount_cents: order.price.amount_cents,
            placed_at: order.placed_at,
            paid_at: order.paid_at,
            cancelled_at: order.cancelled_at,
            spend_cents: spends.then_some(order.price.amount_cents),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }
}

/// One customer, aggregated over their live orders.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerRow {
    pub customer_id: String,
    /// Name, email and address from the most recently changed order.
    pub name: String,
    pub email: String,
    pub shipping_address: String,
    pub orders_placed: i64,
    /// Paid, including orders cancelled afterwards.
    pub orders_paid: i64,
    pub orders_cancelled: i64,
    /// The latest `placed_at`, ms since the epoch.
    pub last_order_at: i64,
    /// The latest `occurred_at` of the customer's orders' applied events.
    pub updated_at: i64,
}

/// A customer's lifetime spend in one currency: the orders paid and not cancelled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Spend {
    pub customer_id: String,
    pub currency: String,
    pub orders: i64,
    pub spend_cents: i64,
}

/// All customers together in one currency, for the report.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CurrencyTotals {
    pub currency: String,
    /// Customers who spent anything in the currency.
    pub customers: i64,
    pub orders: i64,
    pub spend_cents: i64,
}

impl Table for Contribution {
    const TABLE: &'static str = "customer_orders";
    const COLUMNS: &'static [&'static str] = &COLUMNS;

    fn row(event: &OrderEvent) -> Option<Contribution> {
        Some(Contribution::from_event(event))
    }

    fn values(&self) -> impl IntoIterator<Item = Value<'_>> {
        [(&self.order_id).into(), (&self.customer_id).into(), (&self.name).into(), (&self.email).into(), (&self.shipping_address).into(), (&self.currency).into(), self.amount_cents.into(), self.placed_at.into(), self.paid_at.into(), self.cancelled_at.into(), self.spend_cents.into(), self.sequence.into(), self.updated_at.into()]
    }
}

impl Projection for Customers {
    const NAME: &'static str = "customers";
    const ABOUT: &'static str =
        "One row per customer: latest contact details, orders placed and paid, lifetime spend per currency.";
    /// The contributions; `customers` and `customer_spend` are views over them.
    const TABLES: &'static [&'static str] = &["customer_orders"];

    const APPLY_SQLITE: Option<SqliteApply> = Some(table::apply_sqlite::<Contribution>);

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    async fn apply(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
        table::apply::<Contribution>(conn, changes).await
    }

    async fn report(&self, pool: &AnyPool) -> Result<String, sqlx::Error> {
        // From the contributions grouped by customer: the `customers` view would also rank
        // every order for the contact details, which the report does not show.
        let (customers, placed, paid, cancelled, repeat): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), \
                    CAST(COALESCE(SUM(placed), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(paid), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(cancelled), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN placed > 1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM (SELECT COUNT(*) AS placed, COUNT(paid_at) AS paid, COUNT(cancelled_at) AS cancelled \
                   FROM customer_orders GROUP BY customer_id) AS per_customer",
        )
        .fetch_one(pool)
        .await?;
        let mut out = String::from("Customers\n");
        let _ = writeln!(out, "  customers {customers:>8}   with more than one order {repeat:>8}");
        let _ = writeln!(out, "  orders    {placed:>8}   paid {paid:>8}   cancelled {cancelled:>8}");
        out.push_str("  lifetime spend (paid, not cancelled) by currency:\n");
        for totals in spend_by_currency(pool).await? {
            let _ = writeln!(
                out,
                "    {:>22} from {:>8} orders by {:>8} customers",
                Money::format(totals.spend_cents, &totals.currency),
                totals.orders,
                totals.customers
            );
            let _ = writeln!(out, "    top customers in {}:", totals.currency);
            for spend in top_spenders(pool, &totals.currency, TOP_CUSTOMERS).await? {
                let _ = writeln!(
                    out,
                    "      {:<36} {:>22} {:>4} orders",
                    spend.customer_id,
                    Money::format(spend.spend_cents, &spend.currency),
                    spend.orders
                );
            }
        }
        Ok(out)
    }
}

/// Every customer, by customer id.
pub async fn customers(pool: &AnyPool) -> Result<Vec<CustomerRow>, sqlx::Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY customer_id");
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Every customer's spend per currency, by customer id and currency.
pub async fn spend(pool: &AnyPool) -> Result<Vec<Spend>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, currency, orders, spend_cents FROM customer_spend ORDER BY customer_id, currency",
    )
    .fetch_all(pool)
    .await
}

/// Every order's contribution, by order id.
pub async fn contributions(pool: &AnyPool) -> Result<Vec<Contribution>, sqlx::Error> {
    let sql = format!("SELECT {} FROM customer_orders ORDER BY order_id", COLUMNS.join(", "));
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Lifetime spend of all customers per currency, by currency.
pub async fn spend_by_currency(pool: &AnyPool) -> Result<Vec<CurrencyTotals>, sqlx::Error> {
    sqlx::query_as(
        "SELECT currency, COUNT(*) AS customers, \
                CAST(SUM(orders) AS BIGINT) AS orders, CAST(SUM(spend_cents) AS BIGINT) AS spend_cents \
         FROM customer_spend GROUP BY currency ORDER BY currency",
    )
    .fetch_all(pool)
    .await
}

/// The `limit` customers who spent most in `currency`, the highest first; ties by customer id.
pub async fn top_spenders(pool: &AnyPool, currency: &str, limit: i64) -> Result<Vec<Spend>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, currency, orders, spend_cents FROM customer_spend WHERE currency = $1 \
         ORDER BY spend_cents DESC, customer_id LIMIT $2",
    )
    .bind(currency)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departments::fixtures::{apply_batch, cancel, memory_database, next, pay, placed, DAY_MS, PLACED_AT};
    use crate::runtime::collapse;
    use edison_schemas::EventType;


    /// Applies `changes` as the runtime does: collapsed to one per order, in one transaction.
    async fn apply(pool: &AnyPool, changes: impl IntoIterator<Item = Change>) {
        apply_batch(&Customers, pool, &collapse(changes)).await
    }

    fn upserts(events: impl IntoIterator<Item = OrderEvent>) -> Vec<Change> {
        events.into_iter().map(Change::Upsert).collect()
    }

    fn erase(event: &OrderEvent) -> Change {
        Change::Erase { order_id: event.order.order_id.clone() }
    }

    /// Every table, every row, as text.
    async fn everything(pool: &AnyPool) -> (Vec<Contribution>, Vec<CustomerRow>, Vec<Spend>) {
        (contributions(pool).await.unwrap(), customers(pool).await.unwrap(), spend(pool).await.unwrap())
    }

    /// Another order of `customer`, placed `days` after the fixture's, with its own id, price and
    /// address; with the fixture's name and email for `customer-1`, its own for anyone else.
    fn order_of(customer: &str, id: u32, days: i64, cents: i64) -> OrderEvent {
        let mut event = placed();
        event.order.order_id = format!("0196a000-0000-7000-8000-{id:012}");
        if customer != "customer-1" {
            event.order.customer.name = format!("Someone {customer}");
            event.order.customer.email = format!("{customer}@example.org");
        }
        event.order.customer.customer_id = customer.into();
        event.order.customer.shipping_address = format!("{id} Battery Lane");
        event.order.placed_at = PLACED_AT + days * DAY_MS;
        event.occurred_at = event.order.placed_at;
        event.order.price.amount_cents = cents;
        event
    }

    fn row(customer: &str, name: &str, email: &str, address: &str) -> CustomerRow {
        CustomerRow {
            customer_id: customer.into(),
            name: name.into(),
            email: email.into(),
            shipping_address: address.into(),
            orders_placed: 0,
            orders_paid: 0,
            orders_cancelled: 0,
            last_order_at: 0,
            updated_at: 0,
        }
    }

    fn spent(customer: &str, currency: &str, orders: i64, spend_cents: i64) -> Spend {
        Spend { customer_id: customer.into(), currency: currency.into(), orders, spend_cents }
    }

    #[test]
    fn spend_is_the_price_of_an_order_paid_and_not_cancelled() {
        let placed = placed();
        assert_eq!(Contribution::from_event(&placed).spend_cents, None, "not paid yet");
        let paid = pay(placed.clone(), PLACED_AT + DAY_MS);
        assert_eq!(Contribution::from_event(&paid).spend_cents, Some(6_990_000));
        let credited = Contribution::from_event(&cancel(paid, PLACED_AT + 2 * DAY_MS));
        assert_eq!((credited.paid_at, credited.spend_cents), (Some(PLACED_AT + DAY_MS), None), "credited back");
        assert_eq!(Contribution::from_event(&cancel(placed, PLACED_AT + DAY_MS)).spend_cents, None);
    }

    #[tokio::test]
    async fn a_customer_aggregates_their_orders_with_spend_per_currency() {
        let pool = memory_database(&MIGRATOR).await;
        // customer-1: the fixture order paid; a second one paid then cancelled; a third paid in
        // USD; a fourth only placed, the latest placed. customer-2: one order, placed.
        let first = pay(placed(), PLACED_AT + DAY_MS);
        let credited =
            cancel(pay(order_of("customer-1", 2, 2, 5_000_000), PLACED_AT + 3 * DAY_MS), PLACED_AT + 9 * DAY_MS);
        let mut dollars = order_of("customer-1", 3, 3, 7_000_000);
        dollars.order.price.currency = "USD".into();
        let dollars = pay(dollars, PLACED_AT + 4 * DAY_MS);
        let latest = order_of("customer-1", 4, 5, 4_500_000);
        let other = order_of("customer-2", 5, 1, 4_500_000);
        apply(&pool, upserts([first, credited, dollars, latest.clone(), other.clone()])).await;

        let (_, rows, spend) = everything(&pool).await;
        let ada = CustomerRow {
            orders_placed: 4,
            orders_paid: 3,
            orders_cancelled: 1,
            last_order_at: PLACED_AT + 5 * DAY_MS,
            updated_at: PLACED_AT + 9 * DAY_MS,
            // The most recently changed order is the credited one, changed on day 9.
            ..row("customer-1", "Ada Lovelace", "ada@example.com", "2 Battery Lane")
        };
        let other = CustomerRow {
            orders_placed: 1,
            last_order_at: other.order.placed_at,
            updated_at: other.occurred_at,
            ..row("customer-2", "Someone customer-2", "customer-2@example.org", "5 Battery Lane")
        };
        assert_eq!(rows, vec![ada, other]);
        assert_eq!(spend, vec![spent("customer-1", "EUR", 1, 6_990_000), spent("customer-1", "USD", 1, 7_000_000)]);

        // A later change to another order makes it the source of the contact details.
        let moved = next(latest, EventType::Amended, PLACED_AT + 20 * DAY_MS, |order| {
            order.customer.name = "Ada King".into();
            order.customer.shipping_address = "1 Ockham Park, Surrey".into();
        });
        apply(&pool, upserts([moved])).await;
        let ada = &customers(&pool).await.unwrap()[0];
        assert_eq!((ada.name.as_str(), ada.shipping_address.as_str()), ("Ada King", "1 Ockham Park, Surrey"));
        assert_eq!((ada.orders_placed, ada.updated_at), (4, PLACED_AT + 20 * DAY_MS));

        let report = Customers.report(&pool).await.unwrap();
        assert!(report.contains("EUR 69,900.00 from        1 orders by        1 customers"), "{report}");
        assert!(report.contains("USD 70,000.00"), "{report}");
        for personal in ["Ada", "ada@example.com", "Battery Lane", "Ockham"] {
            assert!(!report.contains(personal), "the report shows no personal data: {report}");
        }
    }

    #[tokio::test]
    async fn a_tie_in_recency_goes_to_the_highest_order_id() {
        let pool = memory_database(&MIGRATOR).await;
        let mut low = order_of("customer-1", 1, 0, 1);
        let mut high = order_of("customer-1", 2, 0, 1);
        low.order.customer.name = "From the lower id".into();
        high.order.customer.name = "From the higher id".into();
        // Either order in the batch, and either batch first: the same winner.
        apply(&pool, upserts([high.clone(), low.clone()])).await;
        assert_eq!(customers(&pool).await.unwrap()[0].name, "From the higher id");
        let pool = memory_database(&MIGRATOR).await;
        apply(&pool, upserts([high])).await;
        apply(&pool, upserts([low])).await;
        assert_eq!(customers(&pool).await.unwrap()[0].name, "From the higher id");
    }

    #[tokio::test]
    async fn replaying_a_batch_changes_nothing() {
        let pool = memory_database(&MIGRATOR).await;
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let batch = upserts([paid.clone(), order_of("customer-1", 2, 1, 5_000_000), order_of("customer-2", 3, 2, 1)]);
        apply(&pool, batch.clone()).await;
        let once = everything(&pool).await;
        apply(&pool, batch.clone()).await;
        assert_eq!(everything(&pool).await, once, "the same batch again");
        apply(&pool, upserts([placed(), paid])).await;
        assert_eq!(everything(&pool).await, once, "the order's history again");
        assert_eq!(once.1.len(), 2);
        assert_eq!(once.2, vec![spent("customer-1", "EUR", 1, 6_990_000)]);
    }

    #[tokio::test]
    async fn an_event_at_or_below_the_applied_sequence_is_ignored() {
        let pool = memory_database(&MIGRATOR).await;
        let paid = pay(placed(), PLACED_AT + DAY_MS);
        let cancelled = cancel(paid.clone(), PLACED_AT + 2 * DAY_MS);
        apply(&pool, upserts([cancelled.clone()])).await;
        let settled = everything(&pool).await;
        assert_eq!(settled.2, vec![], "credited: no spend");

        // Older: the payment, then the placement, each in a batch of its own.
        apply(&pool, upserts([paid.clone()])).await;
        apply(&pool, upserts([placed()])).await;
        // Equal: another event with the cancellation's sequence, moving the order elsewhere.
        let mut impostor = paid;
        impostor.sequence = cancelled.sequence;
        impostor.order.customer.customer_id = "customer-2".into();
        impostor.order.customer.name = "Somebody Else".into();
        apply(&pool, upserts([impostor])).await;
        assert_eq!(everything(&pool).await, settled);
        let ada = &settled.1[0];
        assert_eq!((ada.customer_id.as_str(), ada.orders_paid, ada.orders_cancelled), ("customer-1", 1, 1));
    }

    #[tokio::test]
    async fn an_order_moved_to_another_customer_counts_for_the_new_one_only() {
        let pool = memory_database(&MIGRATOR).await;
        let moving = pay(placed(), PLACED_AT + DAY_MS);
        let staying = order_of("customer-1", 2, 1, 5_000_000);
        let theirs = order_of("customer-2", 3, 2, 1_000);
        apply(&pool, upserts([moving.clone(), staying.clone(), theirs.clone()])).await;

        let moved = next(moving, EventType::Amended, PLACED_AT + 3 * DAY_MS, |order| {
            order.customer.customer_id = "customer-2".into();
            order.customer.name = "Charles Babbage".into();
            order.customer.email = "charles@example.com".into();
        });
        apply(&pool, upserts([moved.clone()])).await;
        let (_, rows, spend) = everything(&pool).await;
        let left = CustomerRow {
            orders_placed: 1,
            last_order_at: staying.order.placed_at,
            updated_at: staying.occurred_at,
            ..row("customer-1", "Ada Lovelace", "ada@example.com", "2 Battery Lane")
        };
        let joined = CustomerRow {
            orders_placed: 2,
            orders_paid: 1,
            last_order_at: theirs.order.placed_at,
            updated_at: moved.occurred_at,
            ..row("customer-2", "Charles Babbage", "charles@example.com", "12 Analytical Row, London")
        };
        assert_eq!(rows, vec![left, joined]);
        assert_eq!(spend, vec![spent("customer-2", "EUR", 1, 6_990_000)], "the spend moved along");

        // Moving the last order of a customer away leaves no trace of them.
        let away = next(staying, EventType::Amended, PLACED_AT + 4 * DAY_MS, |order| {
            order.customer.customer_id = "customer-3".into();
        });
        apply(&pool, upserts([away])).await;
        let ids: Vec<String> = customers(&pool).await.unwrap().into_iter().map(|c| c.customer_id).collect();
        assert_eq!(ids, ["customer-2", "customer-3"]);
    }

    #[tokio::test]
    async fn erasing_a_customers_last_order_removes_them_and_their_personal_data() {
        let pool = memory_database(&MIGRATOR).await;
        let first = pay(placed(), PLACED_AT + DAY_MS);
        let mut second = order_of("customer-1", 2, 2, 5_000_000);
        second.order.customer.email = "ada@lovelace.example".into();
        let other = order_of("customer-2", 3, 1, 1_000);
        apply(&pool, upserts([first.clone(), second.clone(), other])).await;
        assert_eq!(customers(&pool).await.unwrap()[0].email, "ada@lovelace.example", "the later order's");

        // Erasing the order with the latest details falls back to what the other order states.
        apply(&pool, [erase(&second)]).await;
        let (contributions, customers, spend) = everything(&pool).await;
        assert_eq!(contributions.len(), 2);
        assert_eq!((customers[0].email.as_str(), customers[0].orders_placed), ("ada@example.com", 1));
        assert_eq!(spend, vec![spent("customer-1", "EUR", 1, 6_990_000)]);

        // A stale event and the tombstone in one batch: the tombstone is the latest change.
        apply(&pool, [Change::Upsert(placed()), erase(&first)]).await;
        let (contributions, customers, spend) = everything(&pool).await;
        let left: Vec<&str> = customers.iter().map(|c| c.customer_id.as_str()).collect();
        assert_eq!(left, ["customer-2"]);
        assert!(contributions.iter().all(|c| c.customer_id == "customer-2"));
        assert_eq!(spend, vec![]);
        let text = format!("{:?}", everything(&pool).await);
        for personal in
            ["Ada Lovelace", "ada@example.com", "ada@lovelace.example", "12 Analytical Row", "2 Battery Lane"]
        {
            assert!(!text.contains(personal), "{personal} is gone from every table: {text}");
        }
        // The other customer is untouched; erasing their order empties the projection.
        apply(&pool, [Change::Erase { order_id: "0196a000-0000-7000-8000-000000000003".into() }]).await;
        assert_eq!(everything(&pool).await, (vec![], vec![], vec![]));
    }
}
