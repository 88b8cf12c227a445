//! Any Avro implementation reads our records, and a department reads theirs. The third party is
//! Python's fastavro (`tests/avro_interop.py`): it looks the writer schema up by the
//! specification's fingerprint, computed by fastavro itself from `order_event.v1.avsc`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use edison_consumers::departments::warehouse::{self, Reservation};
use edison_consumers::departments::Warehouse;
use edison_schemas::{CarModel, Codec, Customer, EventType, Money, Order, OrderEvent, OrderStatus};
use edison_common::time::now_ms;
use support::*;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../schemas/avro/order_event.v1.avsc"
);

/// `python3 tests/avro_interop.py COMMAND SCHEMA` with `lines` on stdin: its stdout lines.
fn fastavro(command: &str, lines: &[String]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/avro_interop.py");
    let mut child = Command::new("python3")
        .args([script, command, SCHEMA])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs tests/avro_interop.py");
    // A few short lines: they fit the pipe, so writing them all before reading cannot block.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            lines
                .iter()
                .map(|line| format!("{line}\n"))
                .collect::<String>()
                .as_bytes(),
        )
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "tests/avro_interop.py {command} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The real `sales` binary with `--json`: its output.
fn sales(topic: &str, database_url: &str, args: &[&str]) -> Value {
    let output = Command::new(binary("edison-sales", "sales"))
        .args([
            "--bootstrap-servers",
            &bootstrap(),
            "--topic",
            topic,
            "--database-url",
            database_url,
            "--json",
        ])
        .args(args)
        .output()
        .expect("run sales");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sales {args:?} failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("sales {args:?} printed no JSON ({e}): {stderr}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}


#[tokio::test(flavor = "multi_thread")]
async fn fastavro_reads_what_sales_published_and_a_department_applies_what_fastavro_wrote() {
    let topic = unique("orders-test-avro");
    let dir = tempfile::tempdir().unwrap();
    let sales_db = format!("sqlite://{}/sales.db", dir.path().display());
    sales(&topic, &sales_db, &["topic", "create", "--partitions", "3"]);

    // Sales places and pays an order; its relay publishes both events.
    let before = now_ms();
    let address = "1 Analytical Way, London";
    let place = [
        "place",
        "--model",
        "P",
        "--customer-name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
        "--address",
        address,
    ];
    let placed = sales(&topic, &sales_db, &place);
    let order_id = placed["order"]["id"]
        .as_str()
        .expect("the order id")
        .to_owned();
    let customer_id = placed["order"]["order"]["customer"]["customer_id"].clone();
    sales(&topic, &sales_db, &["pay", &order_id]);
    let after = now_ms();

    let mut records = read_all(&topic);
    records.sort_by_key(|r| r.offset);
    assert_eq!(
        records.len(),
        2,
        "Sales published the placement and the payment: {records:?}"
    );
    let values: Vec<String> = records
        .iter()
        .map(|r| hex(r.value.as_deref().expect("an event")))
        .collect();
    let decoded: Vec<Value> = fastavro("decode", &values)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    // What was placed, written out by hand: the catalogue's model P, 6 weeks from the day placed.
    let [placed, paid] = &decoded[..] else {
        panic!("fastavro decoded {decoded:?}")
    };
    let placed_at = placed["occurred_at"].as_i64().expect("a timestamp in ms");
    let paid_at = paid["occurred_at"].as_i64().expect("a timestamp in ms");
    assert!(
        before <= placed_at && placed_at <= paid_at && paid_at <= after,
        "{before} {placed_at} {paid_at} {after}"
    );
    let order = |status: &str, paid_at: Value| {
        json!({
            "order_id": order_id,
            "customer": {"customer_id": customer_id, "name": "Ada Lovelace", "email": "ada@example.com", "shipping_address": address},
            "model": "MODEL_P",
            "batteries": 3,
            "price": {"amount_cents": 6_990_000, "currency": "EUR"},
            "status": status,
            "expected_delivery": placed_at.div_euclid(86_400_000) + 42,
            "placed_at": placed_at,
            "paid_at": paid_at,
            "cancelled_at": null,
            "cancel_reason": null,
        })
    };
    let event = |decoded: &Value,
                 event_type: &str,
                 sequence: i64,
                 occurred_at: i64,
                 order: Value| {
        let event_id = decoded["event_id"].as_str().expect("an event id");
        assert!(uuid::Uuid::parse_str(event_id).is_ok(), "{event_id}");
        json!({"event_id": event_id, "event_type": event_type, "sequence": sequence, "occurred_at": occurred_at, "order": order})
    };
    assert_eq!(
        placed,
        &event(placed, "PLACED", 1, placed_at, order("PLACED", Value::Null))
    );
    assert_eq!(
        paid,
        &event(paid, "PAID", 2, paid_at, order("PAID", json!(paid_at)))
    );

    // fastavro writes the cancellation of that order and a new order of its own.
    let mut cancelled: OrderEvent =
        serde_json::from_value(paid.clone()).expect("fastavro's record is an OrderEvent");
    cancelled.event_id = uuid::Uuid::now_v7().to_string();
    cancelled.event_type = EventType::Cancelled;
    cancelled.sequence = 3;
    cancelled.occurred_at = paid_at + 1000;
    cancelled.order.status = OrderStatus::Cancelled;
    cancelled.order.cancelled_at = Some(paid_at + 1000);
    cancelled.order.cancel_reason = Some("changed mind".into());
    let new_order = OrderEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: EventType::Placed,
        sequence: 1,
        occurred_at: 1_767_225_600_000,
        order: Order {
            order_id: uuid::Uuid::now_v7().to_string(),
            customer: Customer {
                customer_id: "python-1".into(),
                name: "Grace Hopper".into(),
                email: "grace@example.com".into(),
                shipping_address: "2 Compiler Court, Arlington".into(),
            },
            model: CarModel::H,
            batteries: 4,
            price: Money {
                amount_cents: 8_990_000,
                currency: "EUR".into(),
            },
            status: OrderStatus::Placed,
            expected_delivery: 20_510,
            placed_at: 1_767_225_600_000,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
        },
    };
    let written = [cancelled, new_order];
    let json_lines: Vec<String> = written
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let encoded: Vec<Vec<u8>> = fastavro("encode", &json_lines)
        .iter()
        .map(|line| unhex(line))
        .collect();
    assert_eq!(encoded.len(), written.len());
    let codec = Codec::new().unwrap();
    for (event, value) in written.iter().zip(&encoded) {
        assert_eq!(
            hex(value),
            hex(&codec.encode(event).unwrap()),
            "fastavro writes our bytes, header included"
        );
    }
    let keyed: Vec<_> = written
        .iter()
        .zip(encoded)
        .map(|(e, v)| (e.order.order_id.clone().into_bytes(), Some(v)))
        .collect();
    produce(&topic, &keyed).await;

    // The warehouse applies fastavro's events as it would ours.
    let store = Store::sqlite();
    let stats = run_until_caught_up(&Warehouse, &topic, "warehouse", &store).await;
    assert_eq!(
        (stats.consumed, stats.applied, stats.dead_lettered),
        (4, 4, 0),
        "{stats:?}"
    );
    let rows = warehouse::reservations(&connect(&Warehouse, &store).await.pool)
        .await
        .unwrap();
    // The warehouse's rule, restated here: a row per order with its model, status and
    // batteries, all of them reserved unless the order is cancelled.
    let mut expected: Vec<Reservation> = written
        .iter()
        .map(|e| Reservation {
            order_id: e.order.order_id.clone(),
            model: e.order.model.as_str().to_owned(),
            status: e.order.status.as_str().to_owned(),
            batteries: i64::from(e.order.batteries),
            batteries_reserved: if e.order.status == OrderStatus::Cancelled { 0 } else { i64::from(e.order.batteries) },
            sequence: e.sequence,
            updated_at: e.occurred_at,
        })
        .collect();
    expected.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(rows, expected);
    let ours = rows.iter().find(|r| r.order_id == order_id).unwrap();
    assert_eq!(
        (ours.status.as_str(), ours.batteries_reserved, ours.sequence),
        ("cancelled", 0, 3)
    );
}
