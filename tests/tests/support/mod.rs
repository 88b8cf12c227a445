//! Shared helpers for integration tests against the real broker. Every test names its own
//! topics, groups and databases, so tests never share state.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use edison_common::kafka::{ensure_topic, KafkaArgs, TopicSpec};
use edison_consumers::command::{execute, DepartmentCli};
use edison_consumers::runtime::{Projection, RunStats};
use edison_schemas::*;

pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

pub fn kafka_args(topic: &str) -> KafkaArgs {
    KafkaArgs {
        bootstrap_servers: bootstrap(),
        topic: topic.into(),
        overrides: vec![],
    }
}

/// A fresh orders topic with `partitions` partitions.
pub async fn orders_topic(partitions: i32) -> String {
    let topic = unique("orders-test");
    ensure_topic(
        &kafka_args(&topic).client_config(),
        &TopicSpec::orders(&topic, partitions),
    )
    .await
    .expect("the broker must be running: scripts/kafka-local start");
    topic
}

/// Where a test's projection lives: a fresh SQLite file, or a fresh schema in the PostgreSQL
/// that `scripts/postgres-local` runs (or `EDISON_TEST_DATABASE_URL` names).
pub struct Store {
    pub url: String,
    pub schema: String,
    _dir: Option<TempDir>,
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Store {
    pub fn new(backend: Backend) -> Store {
        let schema = unique("t").replace('-', "_");
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/projection.db", dir.path().display());
                Store {
                    url,
                    schema,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Store {
                url: postgres_url(),
                schema,
                _dir: None,
            },
        }
    }

    pub fn sqlite() -> Store {
        Store::new(Backend::Sqlite)
    }

    /// A fresh schema in the database at `url`.
    pub fn at(url: &str) -> Store {
        Store {
            url: url.to_owned(),
            ..Store::new(Backend::Postgres)
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("EDISON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://edison:edison@127.0.0.1:5432/edison".into())
}

/// Runs `DEPARTMENT --topic T --group-id G --database-url U run --until-caught-up`, through the
/// same CLI parsing the binaries use.
pub async fn run_until_caught_up<P: Projection>(
    projection: &P,
    topic: &str,
    group: &str,
    store: &Store,
) -> RunStats {
    let cli = department_cli(
        topic,
        group,
        store,
        &[
            "run",
            "--until-caught-up",
            "--dead-letter-topic",
            &format!("{topic}.dlq"),
        ],
    );
    let run = execute(projection, &cli, CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("a caught-up run must finish")
        .expect("the run must succeed")
        .expect("run returns stats")
}

/// The consumer group a test calls `name` on `topic`. Groups span topics, so tests sharing a
/// group name would rebalance each other; prefixing the test's unique topic keeps them apart.
pub fn group_for(topic: &str, name: &str) -> String {
    format!("{topic}.{name}")
}

pub fn department_cli(topic: &str, group: &str, store: &Store, command: &[&str]) -> DepartmentCli {
    let group = group_for(topic, group);
    let mut args = vec![
        "department",
        "--bootstrap-servers",
        Box::leak(bootstrap().into_boxed_str()),
        "--topic",
        topic,
        "--group-id",
        &group,
        "--database-url",
        &store.url,
        "--database-schema",
        &store.schema,
    ];
    args.extend_from_slice(command);
    DepartmentCli::try_parse_from(args).expect("valid flags")
}

/// Connects to the store's projection database, as the department binary does.
pub async fn connect<P: Projection>(projection: &P, store: &Store) -> edison_common::db::Database {
    department_cli("unused", "unused", store, &["report"])
        .shared
        .connect(P::NAME, projection.migrator())
        .await
        .expect("connect")
}

/// Produces keyed values (None = tombstone) and waits for every acknowledgement.
pub async fn produce(topic: &str, records: &[(Vec<u8>, Option<Vec<u8>>)]) {
    let producer: FutureProducer = kafka_args(topic)
        .producer_config()
        .create()
        .expect("producer");
    let sends = records.iter().map(|(key, value)| {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).key(key.as_slice());
        if let Some(value) = value {
            record = record.payload(value.as_slice());
        }
        producer.send(record, Duration::from_secs(30))
    });
    for result in futures::future::join_all(sends).await {
        result.expect("the broker acknowledges every record");
    }
}

/// Encodes and produces events, keyed by order id.
pub async fn produce_events(topic: &str, events: &[OrderEvent]) {
    let codec = Codec::new().unwrap();
    let records: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.order.order_id.clone().into_bytes(),
                Some(codec.encode(e).unwrap()),
            )
        })
        .collect();
    produce(topic, &records).await;
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
}

/// Every record of `topic`, from offset zero up to the high watermarks (no consumer group).
pub fn read_all(topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    // The log end, not the last stable offset, which trails a commit until its markers land.
    let marks = edison_common::kafka::log_end_offsets(&kafka_args(topic).client_config(), topic).expect("watermarks");
    for mark in marks.into_iter().filter(|m| m.high > m.low) {
        assignment.add_partition_offset(topic, mark.partition, Offset::Beginning).unwrap();
        ends.insert(mark.partition, mark.high);
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out reading {topic}"
        );
        let polled = consumer.poll(Duration::from_millis(500));
        // Transaction markers take offsets but are never delivered: the consumer's position,
        // not the last record's offset, tells when a partition is read to its end.
        let position = consumer.position().expect("position");
        ends.retain(|partition, end| {
            !matches!(position.find_partition(topic, *partition).map(|p| p.offset()), Some(Offset::Offset(at)) if at >= *end)
        });
        let Some(message) = polled else { continue };
        let message = message.expect("read");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        });
    }
    records
}

/// The latest state per order as the log says: highest sequence wins, a tombstone erases.
/// Computed independently of the runtime, from what was read back.
pub fn latest_states(records: &[Record]) -> BTreeMap<String, OrderEvent> {
    let codec = Codec::new().unwrap();
    let mut ordered = records.to_vec();
    ordered.sort_by_key(|r| (r.partition, r.offset));
    let mut latest: BTreeMap<String, OrderEvent> = BTreeMap::new();
    for record in ordered {
        let key = String::from_utf8(record.key.expect("keyed")).unwrap();
        match record.value {
            None => {
                latest.remove(&key);
            }
            Some(value) => {
                let event = codec.decode(&value).expect("valid event");
                if latest
                    .get(&key)
                    .is_none_or(|current| current.sequence < event.sequence)
                {
                    latest.insert(key, event);
                }
            }
        }
    }
    latest
}

/// The rows `rule` says a department holds for `latest` (see [`latest_states`]), in order-id
/// order as the departments' queries return them; `None` from `rule`: no row for that order.
pub fn expected_rows<R>(
    latest: &BTreeMap<String, OrderEvent>,
    rule: impl Fn(&OrderEvent) -> Option<R>,
) -> Vec<R> {
    latest.values().filter_map(rule).collect()
}

/// What each department must hold for one order, restated here from its documentation (module
/// docs and migrations), never taken from its code: the oracle of the integration tests. Each
/// rule reads the order's latest event as the log says ([`latest_states`]); an erased order has
/// none, so no department keeps a row for it. Every row carries the `sequence` and `occurred_at`
/// (as `updated_at`) of that latest event: what the sequence gate compares.
pub mod rules {
    use edison_consumers::departments::assembly::QueueEntry;
    use edison_consumers::departments::billing::Invoice;
    use edison_consumers::departments::dashboard::Sale;
    use edison_consumers::departments::mailer::MailKind;
    use edison_consumers::departments::shipping::Shipment;
    use edison_consumers::departments::warehouse::Reservation;
    use edison_schemas::{CarModel, OrderEvent, OrderStatus};

    /// Warehouse: every order has a reservation, which holds all of the order's batteries unless
    /// the order is cancelled: that releases them (0 reserved).
    pub fn reservation(event: &OrderEvent) -> Reservation {
        let order = &event.order;
        let batteries = i64::from(order.batteries);
        Reservation {
            order_id: order.order_id.clone(),
            model: model(order.model).into(),
            status: status(order.status).into(),
            batteries,
            batteries_reserved: if order.status == OrderStatus::Cancelled { 0 } else { batteries },
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Assembly: every order keeps an entry with its latest model, batteries and expected
    /// delivery (an amendment updates it); see [`queued`] for which entries wait to be built.
    pub fn queue_entry(event: &OrderEvent) -> QueueEntry {
        let order = &event.order;
        QueueEntry {
            order_id: order.order_id.clone(),
            model: model(order.model).into(),
            batteries: i64::from(order.batteries),
            expected_delivery: i64::from(order.expected_delivery),
            status: status(order.status).into(),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Assembly: an order waits to be built while it is paid and not cancelled since, the
    /// earliest expected delivery first (then by order id).
    pub fn queued(entry: &QueueEntry) -> bool {
        entry.status == "paid"
    }

    /// Billing: an order has an invoice once it is paid, for its price, dated when it was paid;
    /// a paid order that is then cancelled also has a credit note for the same amount, dated
    /// when it was cancelled. An order never paid (cancelled before payment, too) bills nothing.
    /// Months are UTC.
    pub fn invoice(event: &OrderEvent) -> Option<Invoice> {
        let order = &event.order;
        let paid_at = order.paid_at?;
        Some(Invoice {
            order_id: order.order_id.clone(),
            currency: order.price.currency.clone(),
            amount_cents: order.price.amount_cents,
            invoiced_at: paid_at,
            invoice_month: super::utc_month(paid_at),
            credited_at: order.cancelled_at,
            credit_month: order.cancelled_at.map(super::utc_month),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        })
    }

    /// Shipping: every order keeps a shipment to its latest customer name and shipping address,
    /// with its expected delivery and that day's ISO week; see [`due`] for which ones ship.
    pub fn shipment(event: &OrderEvent) -> Shipment {
        let order = &event.order;
        Shipment {
            order_id: order.order_id.clone(),
            customer_name: order.customer.name.clone(),
            shipping_address: order.customer.shipping_address.clone(),
            model: model(order.model).into(),
            expected_delivery: i64::from(order.expected_delivery),
            delivery_week: super::iso_week(i64::from(order.expected_delivery)),
            status: status(order.status).into(),
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Shipping: a shipment is due while its order is paid and not cancelled since.
    pub fn due(shipment: &Shipment) -> bool {
        shipment.status == "paid"
    }

    /// Dashboard: every order is one sale, counted by model and by the UTC day it was placed,
    /// with its price, status, and when it was paid (still set after a cancellation: it
    /// converted) and cancelled.
    pub fn sale(event: &OrderEvent) -> Sale {
        let order = &event.order;
        Sale {
            order_id: order.order_id.clone(),
            model: model(order.model).into(),
            currency: order.price.currency.clone(),
            amount_cents: order.price.amount_cents,
            placed_day: super::utc_day(order.placed_at),
            status: status(order.status).into(),
            paid_at: order.paid_at,
            cancelled_at: order.cancelled_at,
            sequence: event.sequence,
            updated_at: event.occurred_at,
        }
    }

    /// Mailer: the mails an order's state calls for, each with the time of what it tells: a
    /// confirmation for every order placed, a receipt once it is paid, a cancellation notice
    /// once it is cancelled (all three for a paid order cancelled later). Whether each went out
    /// depends on the ledger's cutoff; see the pipeline test.
    pub fn mails(event: &OrderEvent) -> Vec<(MailKind, i64)> {
        let order = &event.order;
        let mut mails = vec![(MailKind::Confirmation, order.placed_at)];
        mails.extend(order.paid_at.map(|at| (MailKind::Receipt, at)));
        mails.extend(order.cancelled_at.map(|at| (MailKind::Cancellation, at)));
        mails
    }

    /// How the tables spell a model (`F`, `P` or `H`).
    pub fn model(model: CarModel) -> &'static str {
        match model {
            CarModel::F => "F",
            CarModel::P => "P",
            CarModel::H => "H",
        }
    }

    /// How the tables spell a status (`placed`, `paid`, `cancelled`).
    pub fn status(status: OrderStatus) -> &'static str {
        match status {
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Unknown => "unknown",
        }
    }
}

/// The UTC calendar date of `ms` since the epoch.
fn utc_date(ms: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a timestamp within the calendar")
        .date()
}

/// `YYYY-MM-DD`: the UTC day of `ms` since the epoch.
pub fn utc_day(ms: i64) -> String {
    let date = utc_date(ms);
    format!("{:04}-{:02}-{:02}", date.year(), date.month() as u8, date.day())
}

/// `YYYY-MM`: the UTC month of `ms` since the epoch.
pub fn utc_month(ms: i64) -> String {
    let date = utc_date(ms);
    format!("{:04}-{:02}", date.year(), date.month() as u8)
}

/// `YYYY-Www`: the ISO 8601 week of the day `days` after 1970-01-01, as the time crate's
/// formatter names it (weeks run Monday to Sunday and belong to the year of their Thursday).
pub fn iso_week(days: i64) -> String {
    let date = time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap()
        + time::Duration::days(days);
    date.format(time::macros::format_description!(
        "[year base:iso_week]-W[week_number repr:iso]"
    ))
    .expect("a formattable date")
}

/// A small deterministic lifecycle per order: placed, then paid for even orders, then cancelled
/// for every fifth. Returned in the order Sales would publish them.
pub fn lifecycles(orders: usize) -> Vec<OrderEvent> {
    let base_ms = 1_764_000_000_000_i64;
    let mut events = Vec::new();
    for i in 0..orders {
        let at = base_ms + i as i64 * 60_000;
        let order_id = uuid::Builder::from_unix_timestamp_millis(
            at as u64,
            &(i as u128).to_le_bytes()[..10].try_into().unwrap(),
        )
        .into_uuid()
        .to_string();
        let model = CarModel::ALL[i % 3];
        let mut order = Order {
            order_id,
            customer: Customer {
                customer_id: format!("customer-{i}"),
                name: format!("Customer {i}"),
                email: format!("customer{i}@example.com"),
                shipping_address: format!("{i} Battery Lane"),
            },
            model,
            batteries: 1 + (i % 3) as i32,
            price: Money {
                amount_cents: 4_500_000 + (i % 3) as i64 * 1_000_000,
                currency: "EUR".into(),
            },
            status: OrderStatus::Placed,
            expected_delivery: 20_500 + i as i32,
            placed_at: at,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
        };
        let mut push = |event_type, order: &Order, sequence: i64| {
            events.push(OrderEvent {
                event_id: uuid::Uuid::now_v7().to_string(),
                event_type,
                sequence,
                occurred_at: at + sequence * 1000,
                order: order.clone(),
            })
        };
        push(EventType::Placed, &order, 1);
        if i % 2 == 0 {
            order.status = OrderStatus::Paid;
            order.paid_at = Some(at + 2000);
            push(EventType::Paid, &order, 2);
        }
        if i % 5 == 0 {
            order.status = OrderStatus::Cancelled;
            order.cancelled_at = Some(at + 3000);
            order.cancel_reason = Some("changed mind".into());
            push(EventType::Cancelled, &order, 3);
        }
    }
    events
}

/// Builds a workspace binary (a no-op when it is fresh) and returns its path, so tests can run,
/// signal and kill real processes.
pub fn binary(package: &str, name: &str) -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {name} failed"
    );
    let target = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = target.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// [`lifecycles`] placed an hour apart instead of a minute, so 300 orders span 13 days and a
/// month boundary. Order ids stay unique and time-ordered.
pub fn hourly_lifecycles(orders: usize) -> Vec<OrderEvent> {
    let mut events = lifecycles(orders);
    let mut index = 0_i64;
    for i in 1..events.len() {
        if events[i].order.order_id != events[i - 1].order.order_id {
            index += 1;
        }
        let shift = index * 59 * 60_000;
        let event = &mut events[i];
        event.occurred_at += shift;
        event.order.placed_at += shift;
        event.order.paid_at = event.order.paid_at.map(|at| at + shift);
        event.order.cancelled_at = event.order.cancelled_at.map(|at| at + shift);
    }
    events
}

/// What happens to the orders of a history after it, per order index `i` (in first-seen order),
/// each event the next sequence of the order: a model change (the next model, EUR 10,000.00
/// more, one more battery, two weeks later) for `i % 4 == 0` and an address and name change for
/// `i % 3 == 1`, unless cancelled; a payment 40 days after placing (another month, another year)
/// for `i % 7 == 3` still placed; a cancellation 45 days after placing for `i % 8 == 6` paid.
pub fn amendments(history: &[OrderEvent]) -> Vec<OrderEvent> {
    let mut latest: Vec<OrderEvent> = Vec::new();
    for event in history {
        match latest
            .iter_mut()
            .find(|e| e.order.order_id == event.order.order_id)
        {
            Some(current) if current.sequence < event.sequence => *current = event.clone(),
            Some(_) => {}
            None => latest.push(event.clone()),
        }
    }
    let day = 86_400_000;
    let mut extra = Vec::new();
    for (i, mut last) in latest.into_iter().enumerate() {
        let placed_at = last.order.placed_at;
        let status = last.order.status;
        let mut follow = |event_type, at: i64, change: &dyn Fn(&mut Order)| {
            last.event_id = uuid::Uuid::now_v7().to_string();
            last.event_type = event_type;
            last.sequence += 1;
            last.occurred_at = at;
            change(&mut last.order);
            extra.push(last.clone());
        };
        if i % 4 == 0 && status != OrderStatus::Cancelled {
            follow(EventType::Amended, placed_at + day, &|order| {
                let next = (CarModel::ALL
                    .iter()
                    .position(|m| *m == order.model)
                    .unwrap()
                    + 1)
                    % 3;
                order.model = CarModel::ALL[next];
                order.price.amount_cents += 1_000_000;
                order.batteries += 1;
                order.expected_delivery += 14;
            });
        }
        if i % 3 == 1 && status != OrderStatus::Cancelled {
            follow(EventType::Amended, placed_at + 2 * day, &|order| {
                order.customer.name = format!("{} (moved)", order.customer.name);
                order.customer.shipping_address = format!("{i} Relocation Road");
            });
        }
        if i % 7 == 3 && status == OrderStatus::Placed {
            follow(EventType::Paid, placed_at + 40 * day, &|order| {
                order.status = OrderStatus::Paid;
                order.paid_at = Some(placed_at + 40 * day);
            });
        }
        if i % 8 == 6 && status == OrderStatus::Paid {
            follow(EventType::Cancelled, placed_at + 45 * day, &|order| {
                order.status = OrderStatus::Cancelled;
                order.cancelled_at = Some(placed_at + 45 * day);
                order.cancel_reason = Some("found a used one".into());
            });
        }
    }
    extra
}

/// What [`exercise`] leaves for a department's own checks.
pub struct Exercised<R> {
    pub topic: String,
    pub store: Store,
    pub db: edison_common::db::Database,
    /// The latest event per order, from everything read back from the topic.
    pub latest: BTreeMap<String, OrderEvent>,
    /// The projection's rows at the end, equal to `rule` over `latest`.
    pub rows: Vec<R>,
}

/// Puts a department through what every projection must survive, on `backend`, checking after
/// each step that its rows (`rows`, by order id) are what `rule` says the department must hold
/// for the latest event of each order read back from the topic (`None`: no row for that state).
/// `rule` is the department's rule restated by the test (see [`rules`]), never its own mapping.
/// 1. [`hourly_lifecycles`] of `orders` plus their [`amendments`] and a tombstone, in one run;
/// 2. a later run over stale re-sends (older sequences, and equal ones) of a third of those
///    events and then a tombstone for an order the projection holds: the sequence gate and the
///    erasure at work in the database, not only in the runtime's batch collapse;
/// 3. a rerun of the same group applies nothing and changes nothing;
/// 4. a new group into a fresh store rebuilds the same rows.
pub async fn exercise<P, R, Rows, Fut>(
    projection: &P,
    backend: Backend,
    orders: usize,
    rows: Rows,
    rule: impl Fn(&OrderEvent) -> Option<R>,
) -> Exercised<R>
where
    P: Projection,
    R: PartialEq + std::fmt::Debug,
    Rows: Fn(edison_common::db::Database) -> Fut,
    Fut: std::future::Future<Output = Vec<R>>,
{
    let expected = |latest: &BTreeMap<String, OrderEvent>| expected_rows(latest, &rule);
    let topic = orders_topic(3).await;
    let store = Store::new(backend);
    let history = hourly_lifecycles(orders);
    let mut ids: Vec<String> = history.iter().map(|e| e.order.order_id.clone()).collect();
    ids.dedup();
    let (erased_early, erased_late) = (ids[orders - 2].clone(), ids[4].clone());

    let extra = amendments(&history);
    produce_events(&topic, &history).await;
    produce_events(&topic, &extra).await;
    produce(&topic, &[(erased_early.clone().into_bytes(), None)]).await;
    let stats = run_until_caught_up(projection, &topic, P::NAME, &store).await;
    let mut produced = (history.len() + extra.len() + 1) as u64;
    assert_eq!(
        (stats.consumed, stats.applied),
        (produced, produced),
        "{stats:?}"
    );
    let latest = latest_states(&read_all(&topic));
    assert_eq!(latest.len(), orders - 1, "the tombstone erased one order");
    let db = connect(projection, &store).await;
    assert_eq!(
        rows(db.clone()).await,
        expected(&latest),
        "rows follow the latest event of each order"
    );
    assert!(
        rule(&latest[&erased_late]).is_some(),
        "the projection holds the order erased next"
    );

    let stale: Vec<OrderEvent> = history[..history.len() / 3]
        .iter()
        .chain(&extra[..extra.len() / 3])
        .filter(|e| e.order.order_id != erased_early)
        .cloned()
        .collect();
    produce_events(&topic, &stale).await;
    produce(&topic, &[(erased_late.clone().into_bytes(), None)]).await;
    let stats = run_until_caught_up(projection, &topic, P::NAME, &store).await;
    assert_eq!(stats.consumed, stale.len() as u64 + 1, "{stats:?}");
    produced += stats.consumed;
    let latest = latest_states(&read_all(&topic));
    assert!(!latest.contains_key(&erased_late) && !latest.contains_key(&erased_early));
    let after = rows(db.clone()).await;
    assert_eq!(
        after,
        expected(&latest),
        "stale events changed nothing; the tombstone removed the order"
    );

    let again = run_until_caught_up(projection, &topic, P::NAME, &store).await;
    assert_eq!(
        again,
        RunStats { busy: again.busy, ..RunStats::default() },
        "the group's committed offsets leave nothing to apply"
    );
    assert_eq!(
        rows(db.clone()).await,
        after,
        "rows and sequences unchanged"
    );

    let fresh = Store::new(backend);
    let rebuild =
        run_until_caught_up(projection, &topic, &format!("{}-rebuild", P::NAME), &fresh).await;
    assert_eq!(
        rebuild.consumed, produced,
        "a new group replays the topic from offset zero"
    );
    assert_eq!(
        rows(connect(projection, &fresh).await).await,
        after,
        "a new group rebuilds the same rows"
    );

    Exercised {
        topic,
        store,
        db,
        latest,
        rows: after,
    }
}

/// The flags [`department_cli`] passes, for a real department process (before its subcommand).
pub fn department_args(topic: &str, group: &str, store: &Store) -> Vec<String> {
    let flags = [
        "--bootstrap-servers",
        &bootstrap(),
        "--topic",
        topic,
        "--group-id",
        &group_for(topic, group),
    ];
    let store_flags = [
        "--database-url",
        &store.url,
        "--database-schema",
        &store.schema,
    ];
    flags
        .iter()
        .chain(&store_flags)
        .map(|s| s.to_string())
        .collect()
}

/// A department process, killed if the test ends without stopping it.
pub struct Process(pub std::process::Child);

impl Process {
    /// SIGTERM, the clean shutdown, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.0.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (low, high) watermarks per partition of `topic`.
pub fn watermarks(topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            (
                p.id(),
                consumer
                    .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                    .unwrap(),
            )
        })
        .collect()
}

/// One row of Kafka's own `kafka-consumer-groups --describe` ("-" is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
}

/// Runs Kafka's ConsumerGroupCommand (`scripts/kafka-local run-class`) on `group` and parses its
/// table: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID.
pub fn kafka_describe_group(group: &str) -> Vec<GroupRow> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-local");
    let class = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
    let output = std::process::Command::new(script)
        .args([
            "run-class",
            class,
            "--bootstrap-server",
            &bootstrap(),
            "--describe",
            "--group",
            group,
        ])
        .output()
        .expect("run scripts/kafka-local");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ConsumerGroupCommand failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_group_table(&stdout)
}

fn parse_group_table(text: &str) -> Vec<GroupRow> {
    let mut lines = text.lines().skip_while(|line| !line.starts_with("GROUP"));
    let header: Vec<&str> = lines
        .next()
        .expect("a GROUP ... header")
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column: {text}"))
    };
    let (topic, partition, current, end, lag) = (
        column("TOPIC"),
        column("PARTITION"),
        column("CURRENT-OFFSET"),
        column("LOG-END-OFFSET"),
        column("LAG"),
    );
    let number = |cell: &str| cell.parse::<i64>().ok();
    let mut rows: Vec<GroupRow> = lines
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.len() == header.len())
        .map(|cells| GroupRow {
            topic: cells[topic].to_owned(),
            partition: cells[partition].parse().expect("a partition number"),
            current_offset: number(cells[current]),
            log_end_offset: number(cells[end]),
            lag: number(cells[lag]),
        })
        .collect();
    rows.sort_by_key(|row| row.partition);
    rows
}

/// Starts the department binary `name` with `run` (until stopped) in the test's `group`, logging
/// at info into `log`, and waits until it is assigned partitions `0..partitions` of `topic`.
pub async fn start_member(
    name: &str,
    topic: &str,
    group: &str,
    store: &Store,
    log: &std::path::Path,
    partitions: i32,
) -> Process {
    let member = Process(
        std::process::Command::new(binary("edison-consumers", name))
            .args(department_args(topic, group, store))
            .args(["run", "--dead-letter-topic", &format!("{topic}.dlq")])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("start {name}: {error}")),
    );
    let ids: Vec<String> = (0..partitions).map(|p| p.to_string()).collect();
    let assigned = format!("partitions assigned ids=[{}]", ids.join(", "));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log).unwrap().contains(&assigned) {
        assert!(
            std::time::Instant::now() < deadline,
            "no assignment: {}",
            std::fs::read_to_string(log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    member
}

/// Whether the broker has `topic`, from the list of all topics: asking for it by name could
/// create it on a broker with `auto.create.topics.enable=true`.
pub fn topic_exists(topic: &str) -> bool {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata.topics().iter().any(|t| t.name() == topic)
}
