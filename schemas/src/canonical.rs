//! The Avro specification's Parsing Canonical Form and its CRC-64-AVRO fingerprint.
//!
//! apache-avro 0.22's own `Schema::canonical_form` keeps `{"type":"long"}` for a primitive with
//! a `logicalType`, where the specification (and Java's `SchemaNormalization`, and fastavro)
//! write `"long"`. Its fingerprints therefore match no other implementation, so we compute the
//! canonical form ourselves, from the schema's JSON, by the specification's rules:
//!
//! - PRIMITIVES: `{"type":"int", ...}` becomes `"int"` (logical types are annotations);
//! - FULLNAMES: every name and reference is written as its fullname, resolved against the
//!   `namespace` attribute or the enclosing named type's namespace; `namespace` is dropped;
//! - STRIP and ORDER: only `name`, `type`, `fields`, `symbols`, `items`, `values`, `size`, in
//!   that order;
//! - STRINGS, INTEGERS, WHITESPACE: strings as parsed (escapes resolved), integers as plain
//!   numbers, no whitespace.
//!
//! A named type met again after its definition is written as its quoted fullname, as Java does.
//! The input must already be a valid schema ([`parse`] checks that with apache-avro first), so
//! the errors here only guard against structures the validator accepts and the rules do not
//! cover.

use std::collections::HashSet;

use apache_avro::Schema;
use serde_json::{Map, Value};

use crate::SchemaError;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The CRC-64-AVRO fingerprint of the Parsing Canonical Form of `schema_json`, the number whose
/// little-endian bytes follow `C3 01` in a single-object header (Java's
/// `SchemaNormalization.parsingFingerprint64`; fastavro's `fingerprint(.., "CRC-64-AVRO")` is
/// the hex of those bytes, so it reads byte-reversed).
pub fn fingerprint(schema_json: &str) -> Result<u64, SchemaError> {
    parse(schema_json).map(|(_, fingerprint)| fingerprint)
}

/// Parses and validates `schema_json`, and computes its specification fingerprint.
pub(crate) fn parse(schema_json: &str) -> Result<(Schema, u64), SchemaError> {
    let json: Value = serde_json::from_str(schema_json).map_err(SchemaError::Json)?;
    let schema = Schema::parse(&json).map_err(SchemaError::Parse)?;
    Ok((schema, crc64_avro(canonical_form(&json)?.as_bytes())))
}

/// The CRC-64-AVRO (Rabin) fingerprint of `bytes`, as the specification's reference code
/// computes it.
fn crc64_avro(bytes: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    const TABLE: [u64; 256] = {
        let mut table = [0; 256];
        let mut i = 0;
        while i < 256 {
            let mut fp = i as u64;
            let mut bit = 0;
            while bit < 8 {
                fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
                bit += 1;
            }
            table[i] = fp;
            i += 1;
        }
        table
    };
    bytes.iter().fold(EMPTY, |fp, &b| {
        (fp >> 8) ^ TABLE[((fp ^ b as u64) & 0xff) as usize]
    })
}

fn canonical_form(schema: &Value) -> Result<String, SchemaError> {
    let mut writer = Canonical {
        out: String::new(),
        defined: HashSet::new(),
    };
    writer.schema(schema, None)?;
    Ok(writer.out)
}

struct Canonical {
    out: String,
    /// Fullnames of the named types written so far: later uses are references.
    defined: HashSet<String>,
}

impl Canonical {
    /// Writes `schema`, whose short names resolve in `namespace` (that of the enclosing named
    /// type; `None` is the null namespace).
    fn schema(&mut self, schema: &Value, namespace: Option<&str>) -> Result<(), SchemaError> {
        match schema {
            Value::String(name) => self.reference(name, namespace),
            Value::Array(branches) => self.list(branches, |w, branch| w.schema(branch, namespace)),
            Value::Object(object) => match object.get("type") {
                Some(Value::String(kind)) => match kind.as_str() {
                    "record" | "enum" | "fixed" => self.named(kind, object, namespace),
                    "array" => self.container("array", "items", object, namespace),
                    "map" => self.container("map", "values", object, namespace),
                    // A primitive (any logicalType is stripped) or a reference to a named type.
                    other => self.reference(other, namespace),
                },
                // apache-avro accepts a schema nested in "type": `{"type": {"type": "int"}}`.
                Some(inner @ (Value::Object(_) | Value::Array(_))) => self.schema(inner, namespace),
                _ => Err(invalid("a schema object without a string \"type\"")),
            },
            _ => Err(invalid(
                "a schema that is not a string, an array or an object",
            )),
        }
    }

    /// A primitive's name, or a named type's fullname.
    fn reference(&mut self, name: &str, namespace: Option<&str>) -> Result<(), SchemaError> {
        if PRIMITIVES.contains(&name) {
            self.quoted(name);
            return Ok(());
        }
        let fullname = fullname(name, namespace);
        if !self.defined.contains(&fullname) {
            return Err(invalid(&format!(
                "a reference to {fullname}, which is not defined before"
            )));
        }
        self.quoted(&fullname);
        Ok(())
    }

    fn container(
        &mut self,
        kind: &str,
        key: &str,
        object: &Map<String, Value>,
        namespace: Option<&str>,
    ) -> Result<(), SchemaError> {
        let inner = object
            .get(key)
            .ok_or_else(|| invalid(&format!("an \"{kind}\" without \"{key}\"")))?;
        self.out.push_str(&format!(r#"{{"type":"{kind}","{key}":"#));
        self.schema(inner, namespace)?;
        self.out.push('}');
        Ok(())
    }

    fn named(
        &mut self,
        kind: &str,
        object: &Map<String, Value>,
        enclosing: Option<&str>,
    ) -> Result<(), SchemaError> {
        let name = object
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("a named type without a name"))?;
        // A dotted name is already a fullname; an empty namespace is the null namespace.
        let namespace = match object.get("namespace").and_then(Value::as_str) {
            Some("") => None,
            Some(namespace) => Some(namespace),
            None => enclosing,
        };
        let fullname = fullname(name, namespace);
        if !self.defined.insert(fullname.clone()) {
            self.quoted(&fullname);
            return Ok(());
        }
        self.out.push_str(r#"{"name":"#);
        self.quoted(&fullname);
        self.out.push_str(&format!(r#","type":"{kind}""#));
        let missing = |key: &str| invalid(&format!("{fullname} has no valid \"{key}\""));
        let array = |key| {
            object
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| missing(key))
        };
        match kind {
            "record" => {
                // Nested definitions inherit the namespace of the record's fullname.
                let inner = fullname.rsplit_once('.').map(|(namespace, _)| namespace);
                self.out.push_str(r#","fields":"#);
                self.list(array("fields")?, |w, field| {
                    let name = field
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("fields"))?;
                    let schema = field.get("type").ok_or_else(|| missing("fields"))?;
                    w.out.push_str(r#"{"name":"#);
                    w.quoted(name);
                    w.out.push_str(r#","type":"#);
                    w.schema(schema, inner)?;
                    w.out.push('}');
                    Ok(())
                })?;
            }
            "enum" => {
                self.out.push_str(r#","symbols":"#);
                self.list(array("symbols")?, |w, symbol| {
                    w.quoted(symbol.as_str().ok_or_else(|| missing("symbols"))?);
                    Ok(())
                })?;
            }
            _ => {
                let size = object
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing("size"))?;
                self.out.push_str(&format!(r#","size":{size}"#));
            }
        }
        self.out.push('}');
        Ok(())
    }

    /// `[item,item,...]`, each written by `item`.
    fn list(
        &mut self,
        items: &[Value],
        mut item: impl FnMut(&mut Self, &Value) -> Result<(), SchemaError>,
    ) -> Result<(), SchemaError> {
        self.out.push('[');
        for (i, value) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            item(self, value)?;
        }
        self.out.push(']');
        Ok(())
    }

    /// `text` as a JSON string: escapes resolved on parsing are not reintroduced (STRINGS).
    fn quoted(&mut self, text: &str) {
        self.out.push_str(&Value::from(text).to_string());
    }
}

fn fullname(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) if !name.contains('.') => format!("{namespace}.{name}"),
        _ => name.to_owned(),
    }
}

fn invalid(what: &str) -> SchemaError {
    SchemaError::Canonical(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonical form and fingerprint as `fingerprint` computes them.
    fn canonical(schema_json: &str) -> (String, u64) {
        let json: Value = serde_json::from_str(schema_json).unwrap();
        Schema::parse(&json).unwrap_or_else(|e| panic!("apache-avro rejects {schema_json}: {e}"));
        let form = canonical_form(&json).unwrap();
        let fingerprint = fingerprint(schema_json).unwrap();
        assert_eq!(fingerprint, crc64_avro(form.as_bytes()));
        (form, fingerprint)
    }

    // The expected canonical forms and fingerprints below are fastavro 1.13.1's
    // (`fastavro.schema.to_parsing_canonical_form` and `fingerprint(.., "CRC-64-AVRO")`, its hex
    // read as little-endian bytes), computed from the same schema text.

    #[test]
    fn the_order_event_schemas_match_fastavro() {
        let v1 = canonical(crate::ORDER_EVENT_SCHEMA);
        assert_eq!(
            v1.0,
            r#"{"name":"com.edisoncars.orders.OrderEvent","type":"record","fields":[{"name":"event_id","type":"string"},{"name":"event_type","type":{"name":"com.edisoncars.orders.EventType","type":"enum","symbols":["UNKNOWN","PLACED","PAID","AMENDED","CANCELLED"]}},{"name":"sequence","type":"long"},{"name":"occurred_at","type":"long"},{"name":"order","type":{"name":"com.edisoncars.orders.Order","type":"record","fields":[{"name":"order_id","type":"string"},{"name":"customer","type":{"name":"com.edisoncars.orders.Customer","type":"record","fields":[{"name":"customer_id","type":"string"},{"name":"name","type":"string"},{"name":"email","type":"string"},{"name":"shipping_address","type":"string"}]}},{"name":"model","type":{"name":"com.edisoncars.orders.CarModel","type":"enum","symbols":["MODEL_F","MODEL_P","MODEL_H"]}},{"name":"batteries","type":"int"},{"name":"price","type":{"name":"com.edisoncars.orders.Money","type":"record","fields":[{"name":"amount_cents","type":"long"},{"name":"currency","type":"string"}]}},{"name":"status","type":{"name":"com.edisoncars.orders.OrderStatus","type":"enum","symbols":["UNKNOWN","PLACED","PAID","CANCELLED"]}},{"name":"expected_delivery","type":"int"},{"name":"placed_at","type":"long"},{"name":"paid_at","type":["null","long"]},{"name":"cancelled_at","type":["null","long"]},{"name":"cancel_reason","type":["null","string"]}]}}]}"#
        );
        assert_eq!(v1.1, 0x02cf_ef5e_02d7_6088);

        let v2 = canonical(include_str!("../tests/fixtures/order_event.v2-test.avsc"));
        let v2_form =
            v1.0.replace("]}}]}", r#"]}},{"name":"sales_channel","type":"string"}]}"#);
        assert_eq!(v2.0, v2_form, "v1 plus the new field");
        assert_eq!(v2.1, 0xa1ed_9269_2948_d813);
    }

    #[test]
    fn primitives_and_logical_types_are_plain_names() {
        assert_eq!(
            canonical(r#""int""#),
            (r#""int""#.into(), 0x7275_d51a_3f39_5c8f)
        );
        assert_eq!(
            canonical(r#"{"type": "int"}"#),
            (r#""int""#.into(), 0x7275_d51a_3f39_5c8f)
        );
        assert_eq!(
            canonical(r#"{"type": "int", "logicalType": "date"}"#),
            (r#""int""#.into(), 0x7275_d51a_3f39_5c8f)
        );
        assert_eq!(
            canonical(r#"{"type": "long", "logicalType": "timestamp-micros"}"#),
            (r#""long""#.into(), 0xd054_e144_93f4_1db7)
        );
        assert_eq!(
            canonical(r#"{"type": "string", "logicalType": "uuid"}"#),
            (r#""string""#.into(), 0x8f01_4872_6345_03c7)
        );
        assert_eq!(
            canonical(r#"{"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}"#),
            (r#""bytes""#.into(), 0x4fc0_16da_c320_1965)
        );
        assert_eq!(
            canonical(
                r#"{"type": "fixed", "name": "Decimal", "namespace": "money", "size": 8,
                    "logicalType": "decimal", "precision": 10, "aliases": ["Dec"]}"#
            ),
            (
                r#"{"name":"money.Decimal","type":"fixed","size":8}"#.into(),
                0x5cbd_eddd_4863_c4af
            )
        );
    }

    #[test]
    fn unions_arrays_and_maps_keep_only_their_structure() {
        let schema = r#"["null", {"type": "array", "items": {"type": "map", "values": {"type": "double", "doc": "d"}}}, {"type": "float"}]"#;
        assert_eq!(
            canonical(schema),
            (
                r#"["null",{"type":"array","items":{"type":"map","values":"double"}},"float"]"#
                    .into(),
                0x2d0f_c2a2_a12a_cd33
            )
        );
    }

    #[test]
    fn attributes_are_stripped_and_ordered_and_whitespace_removed() {
        let record = r#"{"fields": [{"type": "boolean", "default": true, "name": "on", "doc": "x",
            "aliases": ["enabled"], "order": "descending"}], "doc": "top", "type": "record",
            "aliases": ["Old"], "name": "Flags", "namespace": ""}"#;
        assert_eq!(
            canonical(record),
            (
                r#"{"name":"Flags","type":"record","fields":[{"name":"on","type":"boolean"}]}"#
                    .into(),
                0xacf0_c419_25ba_6eea
            )
        );
        let enumeration = "{\"type\" : \"enum\" ,\n \"name\" : \"Suit\" ,\n \"symbols\" : [ \"SPADES\" , \"HEARTS\" ]\n}";
        assert_eq!(
            canonical(enumeration),
            (
                r#"{"name":"Suit","type":"enum","symbols":["SPADES","HEARTS"]}"#.into(),
                0x5864_ee3d_f3ba_448f
            )
        );
        let escaped = r#"{"type": "record", "name": "\u0041scii", "fields": [{"name": "\u0062", "type": "string"}]}"#;
        assert_eq!(
            canonical(escaped).0,
            r#"{"name":"Ascii","type":"record","fields":[{"name":"b","type":"string"}]}"#
        );
    }

    #[test]
    fn names_resolve_to_fullnames_and_reused_types_are_references() {
        let schema = r#"{"type": "record", "name": "Outer", "namespace": "a.b", "fields": [
            {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["X", "Y"], "default": "X", "doc": "k"}}]}},
            {"name": "other", "type": {"type": "record", "name": "Other", "namespace": "c", "fields": [
                {"name": "again", "type": "a.b.Kind"},
                {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 16}}]}},
            {"name": "dotted", "type": {"type": "record", "name": "x.y.Dotted", "namespace": "ignored", "fields": [
                {"name": "id", "type": "c.Id"},
                {"name": "here", "type": {"type": "enum", "name": "Here", "symbols": ["H"]}}]}},
            {"name": "kinds", "type": {"type": "array", "items": "Kind"}},
            {"name": "by_name", "type": {"type": "map", "values": "Inner"}},
            {"name": "maybe", "type": ["null", "x.y.Here", "Outer"]}]}"#;
        let expected = concat!(
            r#"{"name":"a.b.Outer","type":"record","fields":["#,
            r#"{"name":"inner","type":{"name":"a.b.Inner","type":"record","fields":["#,
            r#"{"name":"kind","type":{"name":"a.b.Kind","type":"enum","symbols":["X","Y"]}}]}},"#,
            r#"{"name":"other","type":{"name":"c.Other","type":"record","fields":["#,
            r#"{"name":"again","type":"a.b.Kind"},{"name":"id","type":{"name":"c.Id","type":"fixed","size":16}}]}},"#,
            r#"{"name":"dotted","type":{"name":"x.y.Dotted","type":"record","fields":["#,
            r#"{"name":"id","type":"c.Id"},{"name":"here","type":{"name":"x.y.Here","type":"enum","symbols":["H"]}}]}},"#,
            r#"{"name":"kinds","type":{"type":"array","items":"a.b.Kind"}},"#,
            r#"{"name":"by_name","type":{"type":"map","values":"a.b.Inner"}},"#,
            r#"{"name":"maybe","type":["null","x.y.Here","a.b.Outer"]}]}"#,
        );
        assert_eq!(canonical(schema), (expected.into(), 0x7e35_dabd_adfc_3e26));

        let recursive = r#"{"type": "record", "name": "Node", "namespace": "list", "fields": [
            {"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"], "default": null}]}"#;
        assert_eq!(
            canonical(recursive),
            (
                r#"{"name":"list.Node","type":"record","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","list.Node"]}]}"#.into(),
                0x428d_ed21_d49a_e4b5
            )
        );
    }

    #[test]
    fn crc64_avro_matches_apache_avro_rabin_over_the_same_bytes() {
        // apache-avro's fingerprint is its Rabin digest over its own canonical form: hashing that
        // text here must give the same number, whatever the text's flaws.
        let schema = Schema::parse_str(crate::ORDER_EVENT_SCHEMA).unwrap();
        let legacy = u64::from_le_bytes(
            schema.fingerprint::<apache_avro::rabin::Rabin>().bytes[..8]
                .try_into()
                .unwrap(),
        );
        assert_eq!(crc64_avro(schema.canonical_form().as_bytes()), legacy);
        assert_eq!(legacy, 0x3aec_b045_100a_ef69);
    }

    #[test]
    fn invalid_schemas_are_errors() {
        assert!(matches!(fingerprint("{"), Err(SchemaError::Json(_))));
        assert!(matches!(
            fingerprint(r#"{"type": "record", "name": "R"}"#),
            Err(SchemaError::Parse(_))
        ));
        assert!(matches!(
            fingerprint(r#""Undefined""#),
            Err(SchemaError::Parse(_))
        ));
    }
}
