use apache_avro::{GenericSingleObjectWriter, Schema};
use edison_schemas::*;
use serde::{Deserialize, Serialize};

const HEADER: usize = 10;

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
            price: Money {
                amount_cents: 4_999_900,
                currency: "EUR".into(),
            },
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

/// The specification's CRC-64-AVRO fingerprints of our schemas, as Java's `SchemaNormalization`
/// and fastavro compute them (fastavro 1.13.1 prints `8860d7025eefcf02`: the header's bytes).
const V1_FINGERPRINT: u64 = 0x02cf_ef5e_02d7_6088;
const V2_FINGERPRINT: u64 = 0xa1ed_9269_2948_d813;
/// What apache-avro 0.22 computes for v1, and what our headers carried until they followed the
/// specification.
const V1_LEGACY_FINGERPRINT: u64 = 0x3aec_b045_100a_ef69;

#[test]
fn the_header_carries_the_specification_fingerprint() {
    let codec = Codec::new().unwrap();
    let bytes = codec.encode(&sample()).unwrap();
    assert_eq!(bytes[2..10], V1_FINGERPRINT.to_le_bytes());
    assert_eq!(fingerprint(ORDER_EVENT_SCHEMA).unwrap(), V1_FINGERPRINT);
    assert_eq!(fingerprint(V2).unwrap(), V2_FINGERPRINT);
    assert_eq!(codec.writer_fingerprint(), V1_FINGERPRINT);
    assert_eq!(fingerprint_of(&bytes), Some(V1_FINGERPRINT));
}

#[test]
fn records_written_with_the_legacy_fingerprint_still_decode() {
    // An independent writer: apache-avro's own single-object implementation, whose header
    // carries its own fingerprint, as ours did before the fix.
    let schema = Schema::parse_str(ORDER_EVENT_SCHEMA).unwrap();
    let mut writer = GenericSingleObjectWriter::new_with_capacity(&schema, 256).unwrap();
    let mut bytes = Vec::new();
    writer
        .write_value(apache_avro::to_value(sample()).unwrap(), &mut bytes)
        .unwrap();
    assert_eq!(
        fingerprint_of(&bytes),
        Some(V1_LEGACY_FINGERPRINT),
        "apache-avro's fingerprint changed"
    );
    let codec = Codec::new().unwrap();
    assert!(codec.knows(V1_LEGACY_FINGERPRINT) && codec.knows(V1_FINGERPRINT));
    assert_eq!(codec.decode(&bytes).unwrap(), sample());
}

#[test]
fn fingerprint_of_reads_the_header_only() {
    let mut bytes = Codec::new().unwrap().encode(&sample()).unwrap();
    bytes.truncate(HEADER);
    assert_eq!(
        fingerprint_of(&bytes),
        Some(V1_FINGERPRINT),
        "no datum needed"
    );
    assert_eq!(fingerprint_of(&bytes[..HEADER - 1]), None);
    bytes[1] = 0x02;
    assert_eq!(fingerprint_of(&bytes), None);
}

#[test]
fn wrong_header_is_rejected() {
    let codec = Codec::new().unwrap();
    let mut bytes = codec.encode(&sample()).unwrap();
    bytes[0] = b'{';
    assert!(matches!(
        codec.decode(&bytes),
        Err(DecodeError::BadMagic([b'{', 0x01]))
    ));
    assert!(matches!(codec.decode(b"{}"), Err(DecodeError::TooShort(2))));
}

#[test]
fn truncated_payload_is_malformed_at_every_cut() {
    let codec = Codec::new().unwrap();
    let bytes = codec.encode(&sample()).unwrap();
    for cut in 10..bytes.len() {
        let err = codec
            .decode(&bytes[..cut])
            .expect_err("truncated datum must not decode");
        assert_eq!(err.kind(), "malformed", "cut at {cut}: {err}");
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let codec = Codec::new().unwrap();
    let mut bytes = codec.encode(&sample()).unwrap();
    bytes.push(0);
    assert!(matches!(
        codec.decode(&bytes),
        Err(DecodeError::TrailingBytes(1))
    ));
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
    bytes[2..10].copy_from_slice(&0xab_u64.to_le_bytes());
    let err = codec.decode(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown writer schema fingerprint 00000000000000ab",
        "16 hex digits"
    );
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
    assert_eq!(
        decoded.sales_channel, "web",
        "the default fills the new field"
    );
    assert_eq!(decoded.sequence, 2);
    assert_eq!(decoded.order, sample().order);
}

/// A v2 event as a v2 Sales writes it.
fn v2_bytes(sales_channel: &str) -> Vec<u8> {
    let v2_codec: Codec<OrderEventV2> = Codec::with_schemas(V2, KNOWN_SCHEMAS).unwrap();
    let v1 = sample();
    let v2 = OrderEventV2 {
        event_id: v1.event_id,
        event_type: v1.event_type,
        sequence: v1.sequence,
        occurred_at: v1.occurred_at,
        order: v1.order,
        sales_channel: sales_channel.into(),
    };
    let bytes = v2_codec.encode(&v2).unwrap();
    assert_eq!(
        v2_codec.decode(&bytes).unwrap().sales_channel,
        sales_channel
    );
    bytes
}

#[test]
fn new_writer_schema_is_unknown_to_an_old_reader() {
    let bytes = v2_bytes("showroom");
    assert_eq!(fingerprint_of(&bytes), Some(V2_FINGERPRINT));
    let codec = Codec::new().unwrap();
    assert!(!codec.knows(V2_FINGERPRINT));
    assert!(matches!(
        codec.decode(&bytes),
        Err(DecodeError::UnknownSchema(V2_FINGERPRINT))
    ));
}

#[test]
fn an_old_reader_that_registers_the_new_schema_decodes_its_records() {
    let mut codec = Codec::new().unwrap();
    assert_eq!(codec.register(V2).unwrap(), V2_FINGERPRINT);
    assert!(codec.knows(V2_FINGERPRINT));
    assert_eq!(
        codec.decode(&v2_bytes("showroom")).unwrap(),
        sample(),
        "the new field is ignored"
    );
    assert_eq!(
        codec.register(V2).unwrap(),
        V2_FINGERPRINT,
        "registering again changes nothing"
    );
    assert_eq!(
        codec.register(ORDER_EVENT_SCHEMA).unwrap(),
        V1_FINGERPRINT,
        "the built-in schema is known"
    );
    assert_eq!(
        codec.decode(&codec.encode(&sample()).unwrap()).unwrap(),
        sample(),
        "v1 still decodes"
    );
}

#[test]
fn a_schema_the_reader_cannot_resolve_is_refused_at_registration() {
    let mut codec = Codec::new().unwrap();
    let string_sequence = ORDER_EVENT_SCHEMA.replace(
        r#""name": "sequence", "type": "long""#,
        r#""name": "sequence", "type": "string""#,
    );
    assert_ne!(string_sequence, ORDER_EVENT_SCHEMA);
    let id = fingerprint(&string_sequence).unwrap();
    match codec.register(&string_sequence) {
        Err(SchemaError::Incompatible { fingerprint, .. }) => assert_eq!(fingerprint, id),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // CarModel has no default, so a reader cannot map a symbol it lacks.
    let new_model = ORDER_EVENT_SCHEMA.replace(r#""MODEL_H"]"#, r#""MODEL_H", "MODEL_X"]"#);
    assert_ne!(new_model, ORDER_EVENT_SCHEMA);
    assert!(matches!(
        codec.register(&new_model),
        Err(SchemaError::PartlyCompatible(_))
    ));
    assert!(matches!(
        codec.register("{not json"),
        Err(SchemaError::Json(_))
    ));
    assert!(matches!(
        codec.register(r#"{"type": "record", "name": "OrderEvent"}"#),
        Err(SchemaError::Parse(_))
    ));
    assert!(!codec.knows(id), "nothing was registered");
}

#[test]
fn every_schema_file_is_known() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/avro");
    let files = std::fs::read_dir(dir).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "avsc")
    });
    assert_eq!(
        files.count(),
        KNOWN_SCHEMAS.len(),
        "list every file of {dir} in KNOWN_SCHEMAS"
    );
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
    assert_eq!(
        Money::format(i64::MIN, "EUR"),
        "EUR -92,233,720,368,547,758.08"
    );
    assert_eq!(
        Money::format(i64::MAX, "EUR"),
        "EUR 92,233,720,368,547,758.07"
    );
}

#[test]
fn money_displays_padded_like_a_string() {
    let price = Money {
        amount_cents: 4_590_000,
        currency: "EUR".into(),
    };
    assert_eq!(format!("[{price:>16}]"), "[   EUR 45,900.00]");
}
