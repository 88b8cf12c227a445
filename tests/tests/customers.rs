//! Customers against the real broker: one row per customer, aggregated over their orders, equal
//! to a fold written here over the events read back, through amendments that move orders between
//! customers, stale re-sends, erasures, reruns and rebuilds.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use edison_consumers::departments::customers::{self, Contribution, CustomerRow, Customers, Spend};
use edison_consumers::runtime::{Change, Projection, RunStats};
use edison_schemas::{EventType, Money, OrderEvent, OrderStatus};
use support::*;

/// What the projection must hold for the orders in `latest`: customers and spend per currency.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    customers: Vec<CustomerRow>,
    spend: Vec<Spend>,
}

/// The fold the projection is checked against, from the latest event of each live order: orders
/// grouped by customer id; contact details from the order changed last (highest `occurred_at`,
/// then highest order id); spend the prices of orders paid and not cancelled, per currency.
fn fold(latest: &BTreeMap<String, OrderEvent>) -> Expected {
    let mut by_customer: BTreeMap<&str, Vec<&OrderEvent>> = BTreeMap::new();
    for event in latest.values() {
        by_customer.entry(&event.order.customer.customer_id).or_default().push(event);
    }
    let mut expected = Expected::default();
    for (customer_id, events) in by_customer {
        let recency = |e: &&OrderEvent| (e.occurred_at, e.order.order_id.clone());
        let newest = events.iter().max_by_key(|e| recency(e)).unwrap();
        let count = |pick: fn(&OrderEvent) -> bool| events.iter().filter(|e| pick(e)).count() as i64;
        expected.customers.push(CustomerRow {
            customer_id: customer_id.to_owned(),
            name: newest.order.customer.name.clone(),
            email: newest.order.customer.email.clone(),
            shipping_address: newest.order.customer.shipping_address.clone(),
            orders_placed: events.len() as i64,
            orders_paid: count(|e| e.order.paid_at.is_some()),
            orders_cancelled: count(|e| e.order.cancelled_at.is_some()),
            last_order_at: events.iter().map(|e| e.order.placed_at).max().unwrap(),
            updated_at: events.iter().map(|e| e.occurred_at).max().unwrap(),
        });
        let mut spend: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for order in events.iter().map(|e| &e.order) {
            if order.paid_at.is_some() && order.cancelled_at.is_none() {
                let total = spend.entry(&order.price.currency).or_default();
                total.0 += 1;
                total.1 += order.price.amount_cents;
            }
        }
        expected.spend.extend(spend.into_iter().map(|(currency, (orders, spend_cents))| Spend {
            customer_id: customer_id.to_owned(),
            currency: currency.to_owned(),
            orders,
            spend_cents,
        }));
    }
    expected
}

/// What one order contributes, restated here from the event.
fn contribution(event: &OrderEvent) -> Option<Contribution> {
    let order = &event.order;
    Some(Contribution {
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
        spend_cents: match (order.paid_at, order.cancelled_at) {
            (Some(_), None) => Some(order.price.amount_cents),
            _ => None,
        },
        sequence: event.sequence,
        updated_at: event.occurred_at,
    })
}

async fn projection(db: &edison_common::db::Database) -> Expected {
    Expected {
        customers: customers::customers(&db.pool).await.unwrap(),
        spend: customers::spend(&db.pool).await.unwrap(),
    }
}

/// Every row of every table, as text.
async fn everything(db: &edison_common::db::Database) -> String {
    let orders = customers::contributions(&db.pool).await.unwrap();
    format!("{orders:?}\n{:?}", projection(db).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_contributions_follow_the_log_and_customers_equal_the_fold() {
    contributions_follow_the_log_and_customers_equal_the_fold(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_contributions_follow_the_log_and_customers_equal_the_fold() {
    contributions_follow_the_log_and_customers_equal_the_fold(Backend::Postgres).await;
}

/// The per-order contributions through everything `exercise` puts a projection through; then the
/// customers (one per order in this history) equal the fold.
async fn contributions_follow_the_log_and_customers_equal_the_fold(backend: Backend) {
    let rows = |db: edison_common::db::Database| async move { customers::contributions(&db.pool).await.unwrap() };
    let run = exercise(&Customers, backend, 300, rows, contribution).await;
    let expected = fold(&run.latest);
    assert_eq!(projection(&run.db).await, expected);
    assert!(expected.spend.len() > 100 && expected.spend.len() < expected.customers.len(), "{expected:?}");
}

const CUSTOMERS: usize = 12;

/// Customer `c`'s id, name and email, as the orders of the shared-customer history state them.
fn customer_of(order: &mut edison_schemas::Order, c: usize) {
    order.customer.customer_id = format!("customer-{c:02}");
    order.customer.name = format!("Name #{c:02}");
    order.customer.email = format!("customer-{c:02}@example.com");
}

/// [`hourly_lifecycles`] of 120 orders shared among twelve customers (order `i` is customer
/// `i % 12`'s), every ninth in USD, then their [`amendments`] (names and addresses change, some
/// orders are paid or cancelled late), then every tenth order not cancelled moves to another
/// customer three days after it was placed.
fn shared_history() -> Vec<OrderEvent> {
    let mut history = hourly_lifecycles(120);
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for event in &mut history {
        let next = index.len();
        let i = *index.entry(event.order.order_id.clone()).or_insert(next);
        customer_of(&mut event.order, i % CUSTOMERS);
        if i % 9 == 4 {
            event.order.price.currency = "USD".into();
        }
    }
    let extra = amendments(&history);
    let mut latest: BTreeMap<String, OrderEvent> = BTreeMap::new();
    for event in history.iter().chain(&extra) {
        if latest.get(&event.order.order_id).is_none_or(|e| e.sequence < event.sequence) {
            latest.insert(event.order.order_id.clone(), event.clone());
        }
    }
    let mut moves = Vec::new();
    for (order_id, i) in &index {
        let mut event = latest[order_id].clone();
        if i % 10 != 7 || event.order.status == OrderStatus::Cancelled {
            continue;
        }
        event.event_id = uuid::Uuid::now_v7().to_string();
        event.event_type = EventType::Amended;
        event.sequence += 1;
        event.occurred_at = event.order.placed_at + 3 * 86_400_000;
        customer_of(&mut event.order, (i + 5) % CUSTOMERS);
        event.order.customer.shipping_address = format!("{i} Moving Street");
        moves.push(event);
    }
    history.into_iter().chain(extra).chain(moves).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_customers_shared_by_many_orders_equal_the_fold() {
    customers_shared_by_many_orders_equal_the_fold(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_customers_shared_by_many_orders_equal_the_fold() {
    customers_shared_by_many_orders_equal_the_fold(Backend::Postgres).await;
}

async fn customers_shared_by_many_orders_equal_the_fold(backend: Backend) {
    let topic = orders_topic(3).await;
    let store = Store::new(backend);
    let events = shared_history();
    produce_events(&topic, &events).await;
    let stats = run_until_caught_up(&Customers, &topic, "customers", &store).await;
    assert_eq!(stats.applied, events.len() as u64, "{stats:?}");
    let latest = latest_states(&read_all(&topic));
    let db = connect(&Customers, &store).await;
    let expected = fold(&latest);
    assert_eq!(projection(&db).await, expected);
    assert_eq!(expected.customers.len(), CUSTOMERS);
    assert!(expected.customers.iter().any(|c| c.name.ends_with("(moved)")), "a name changed");
    let moved = latest.values().filter(|e| e.order.customer.shipping_address.ends_with("Moving Street")).count();
    assert!(moved >= 8, "orders moved between customers: {moved}");
    let currencies = |id: &str| expected.spend.iter().filter(|s| s.customer_id == id).count();
    assert!(expected.customers.iter().any(|c| currencies(&c.customer_id) == 2), "some spend in two currencies");

    // Erase every order customer 03 has now and one of customer 05's; re-send a third of the
    // history and every move (older and equal sequences) for the orders that stay.
    let gone = "customer-03";
    let mut erased: Vec<String> =
        latest.values().filter(|e| e.order.customer.customer_id == gone).map(|e| e.order.order_id.clone()).collect();
    assert!(erased.len() >= 5, "{erased:?}");
    erased.extend(
        latest.values().find(|e| e.order.customer.customer_id == "customer-05").map(|e| e.order.order_id.clone()),
    );
    let stale: Vec<OrderEvent> = events[..events.len() / 3]
        .iter()
        .chain(events.iter().filter(|e| e.order.customer.shipping_address.ends_with("Moving Street")))
        .filter(|e| !erased.contains(&e.order.order_id))
        .cloned()
        .collect();
    produce_events(&topic, &stale).await;
    let tombstones: Vec<_> = erased.iter().map(|id| (id.clone().into_bytes(), None)).collect();
    produce(&topic, &tombstones).await;
    let stats = run_until_caught_up(&Customers, &topic, "customers", &store).await;
    assert_eq!(stats.consumed, (stale.len() + erased.len()) as u64, "{stats:?}");
    let latest = latest_states(&read_all(&topic));
    let after = fold(&latest);
    assert_eq!(projection(&db).await, after, "stale events changed nothing; erased orders dropped out");
    assert_eq!(after.customers.len(), CUSTOMERS - 1);
    let text = everything(&db).await;
    for trace in [gone, "Name #03", "customer-03@example.com"] {
        assert!(!text.contains(trace), "no row anywhere keeps {trace:?}");
    }

    let again = run_until_caught_up(&Customers, &topic, "customers", &store).await;
    assert_eq!(again, RunStats { busy: again.busy, ..RunStats::default() });
    assert_eq!(everything(&db).await, text, "a rerun changes nothing");

    let fresh = Store::new(backend);
    run_until_caught_up(&Customers, &topic, "customers-rebuild", &fresh).await;
    assert_eq!(everything(&connect(&Customers, &fresh).await).await, text, "a new group rebuilds the same rows");

    // The report: totals per currency from the fold, and no personal data.
    let report = Customers.report(&db.pool).await.unwrap();
    for currency in ["EUR", "USD"] {
        let total: i64 = after.spend.iter().filter(|s| s.currency == currency).map(|s| s.spend_cents).sum();
        assert!(report.contains(&format!("{} from", Money::format(total, currency))), "{report}");
    }
    for personal in ["Name #", "@example.com", "Battery Lane", "Moving Street", "Relocation Road"] {
        assert!(!report.contains(personal), "{report}");
    }
}

/// Two transactions applying orders of one customer at once, as two members of one group on
/// PostgreSQL do when the orders sit on different partitions: each writes only its own order's
/// row, so neither waits for the other, and the customer counts both orders whichever commits
/// first.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_concurrent_batches_for_one_customer_both_count() {
    let store = Store::new(Backend::Postgres);
    let db = connect(&Customers, &store).await;
    let mut orders = lifecycles(2);
    orders.retain(|e| e.sequence == 1);
    for event in &mut orders {
        customer_of(&mut event.order, 1);
    }
    let change = |event: &OrderEvent| vec![Change::Upsert(event.clone())];

    let mut first = db.pool.begin().await.unwrap();
    Customers.apply(&mut first, &change(&orders[0])).await.unwrap();
    // The second commits while the first is still open: had it to wait for the first, it
    // would never finish, and the timeout fails the test.
    let second = async {
        let mut tx = db.pool.begin().await?;
        Customers.apply(&mut tx, &change(&orders[1])).await?;
        tx.commit().await
    };
    tokio::time::timeout(Duration::from_secs(30), second).await.expect("the second batch does not wait").unwrap();
    assert_eq!(projection(&db).await.customers[0].orders_placed, 1, "only the committed order counts yet");
    first.commit().await.unwrap();

    let expected = fold(&orders.iter().map(|e| (e.order.order_id.clone(), e.clone())).collect());
    assert_eq!(projection(&db).await, expected);
    assert_eq!(expected.customers[0].orders_placed, 2);
}
