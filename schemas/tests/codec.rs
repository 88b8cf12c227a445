use apache_avro::{GenericSingleObjectReader, Schema};
use edison_schemas::*;
use serde::{Deserialize, Serialize};

fn sample() -> OrderEvent {
    OrderEvent {
        event_id: "019abcde-0000-7000-8000-000000000001".into(),
        event_type: EventType::Paid,
        sequence: 2,
        occurred_at: 1_764_000_000_000,
        order: Order {
            order_id: "019abcde-0000-7000-8000-00000000000a".into(),
            customer: Customer {
                customer_id: "c-1".into(),
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                shipping_address: "1 Analytical Way, London".into(),
            },
            model: CarModel::P,
            batteries: 2,
            price: Money { amount_cents: 4_999_900, currency: "EUR".into() },
            status: OrderStatus::Paid,
            expected_delivery: 20_500,
            placed_at: 1_763_990_000_000,
            paid_at: Some(1_764_000_000_000),
            cancelled_at: None,
            cancel_reason: None,
        },
    }
}

#[test]
fn round_trip() {
    let codec = Codec::new().unwrap();
    let bytes = codec.encode(&sample()).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    assert_eq!(codec.decode(&bytes).unwrap(), sample());
}

#[test]
fn header_matches_the_avro_library_single_object_reader() {
    // An independent reader: apache-avro's own single-object implementation must accept our bytes.
    let schema = Schema::parse_str(ORDER_EVENT_SCHEMA).unwrap();
    let bytes = Codec::new().unwrap().encode(&sample()).unwrap();
    let reader = GenericSingleObjectReader::builder().schema(schema).build().unwrap();
    let value = reader.read_value(&mut &bytes[..]).unwrap();
    let decoded: OrderEvent = apache_avro::from_value(&value).unwrap();
    assert_eq!(decoded, sample());
}

#[test]
fn wrong_header_is_rejected() {
    let codec = Codec::new().unwrap();
    let mut bytes = codec.encode(&sample()).unwrap();
    bytes[0] = b'{';
    assert!(matches!(codec.decode(&bytes), Err(DecodeError::BadMagic([b'{', 0x01]))));
    assert!(matches!(codec.decode(b"{}"), Err(DecodeError::TooShort(2))));
}

#[test]
fn truncated_payload_is_malformed_at_every_cut() {
    let codec = Codec::new().unwrap();
    let bytes = codec.encode(&sample()).unwrap();
    for cut in 10..bytes.len() {
        let err = codec.decode(&bytes[..cut]).expect_err("truncated datum must not decode");
        assert_eq!(err.kind(), "malformed", "cut at {cut}: {err}");
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let codec = Codec::new().unwrap();
    let mut bytes = codec.encode(&sample()).unwrap();
    bytes.push(0);
    assert!(matches!(codec.decode(&bytes), Err(DecodeError::TrailingBytes(1))));
}

#[test]
fn unknown_fingerprint_is_rejected() {
    let codec = Codec::new().unwrap();
    let mut bytes = codec.encode(&sample()).unwrap();
    bytes[2..10].copy_from_slice(&0x0123_4567_89ab_cdef_u64.to_le_bytes());
    match codec.decode(&bytes) {
        Err(DecodeError::UnknownSchema(id)) => assert_eq!(id, 0x0123_4567_89ab_cdef),
        other => panic!("expected UnknownSchema, got {other:?}"),
    }
}

#[test]
fn garbage_never_panics() {
    let codec = Codec::new().unwrap();
    let valid = codec.encode(&sample()).unwrap();
    // Flip each byte of the datum in turn: decoding may succeed or fail, but must not panic.
    for i in 10..valid.len() {
        let mut bytes = valid.clone();
        bytes[i] ^= 0xFF;
        let _ = codec.decode(&bytes);
    }
}

/// A reader one version ahead: it added `sales_channel` with a default.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "OrderEvent")]
struct OrderEventV2 {
    event_id: String,
    event_type: EventType,
    sequence: i64,
    occurred_at: i64,
    order: Order,
    sales_channel: String,
}

const V2: &str = include_str!("fixtures/order_event.v2-test.avsc");

#[test]
fn v1_data_reads_with_a_newer_reader_schema_through_resolution() {
    let v1_bytes = Codec::new().unwrap().encode(&sample()).unwrap();
    let v2_codec: Codec<OrderEventV2> = Codec::with_schemas(V2, KNOWN_SCHEMAS).unwrap();
    let decoded = v2_codec.decode(&v1_bytes).unwrap();
    assert_eq!(decoded.sales_channel, "web", "the default fills the new field");
    assert_eq!(decoded.sequence, 2);
    assert_eq!(decoded.order, sample().order);
}

#[test]
fn new_writer_schema_is_unknown_to_an_old_reader() {
    let v2_codec: Codec<OrderEventV2> = Codec::with_schemas(V2, KNOWN_SCHEMAS).unwrap();
    let v1_bytes = Codec::new().unwrap().encode(&sample()).unwrap();
    let mut v2_value = v2_codec.decode(&v1_bytes).unwrap();
    v2_value.sales_channel = "showroom".into();
    let v2_bytes = v2_codec.encode(&v2_value).unwrap();
    assert_eq!(v2_codec.decode(&v2_bytes).unwrap().sales_channel, "showroom");
    assert_eq!(Codec::new().unwrap().decode(&v2_bytes).unwrap_err().kind(), "unknown_schema");
}

#[test]
fn every_schema_file_is_known() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/avro");
    let files = std::fs::read_dir(dir).unwrap().filter(|e| {
        e.as_ref().unwrap().path().extension().is_some_and(|x| x == "avsc")
    });
    assert_eq!(files.count(), KNOWN_SCHEMAS.len(), "list every file of {dir} in KNOWN_SCHEMAS");
}

#[test]
fn car_model_parses_short_and_long_names() {
    assert_eq!(CarModel::parse("f"), Some(CarModel::F));
    assert_eq!(CarModel::parse("Model H"), Some(CarModel::H));
    assert_eq!(CarModel::parse("MODEL_P"), Some(CarModel::P));
    assert_eq!(CarModel::parse("Z"), None);
}

#[test]
fn money_is_grouped_integer_cents() {
    assert_eq!(Money::format(4_590_000, "EUR"), "EUR 45,900.00");
    assert_eq!(Money::format(0, "EUR"), "EUR 0.00");
    assert_eq!(Money::format(5, "EUR"), "EUR 0.05");
    assert_eq!(Money::format(99_999, "USD"), "USD 999.99");
    assert_eq!(Money::format(100_000, "EUR"), "EUR 1,000.00");
    assert_eq!(Money::format(-123_456_789, "EUR"), "EUR -1,234,567.89");
    assert_eq!(Money::format(i64::MIN, "EUR"), "EUR -92,233,720,368,547,758.08");
    assert_eq!(Money::format(i64::MAX, "EUR"), "EUR 92,233,720,368,547,758.07");
}

#[test]
fn money_displays_padded_like_a_string() {
    let price = Money { amount_cents: 4_590_000, currency: "EUR".into() };
    assert_eq!(format!("[{price:>16}]"), "[   EUR 45,900.00]");
}
