//! The order event shared by Sales and every department, and its Avro codec.
//!
//! Values on the `orders` topic are Avro single-object encoded: the two bytes `C3 01`, the
//! little-endian CRC-64-AVRO fingerprint of the writer schema, then the datum. The fingerprint is
//! the specification's, over the schema's Parsing Canonical Form ([`fingerprint`]), so any Avro
//! implementation (Java's `SchemaNormalization`, fastavro, ...) finds our writer schema by it.
//!
//! A [`Codec`] looks the writer schema up by that fingerprint, in one `HashMap`, among:
//! - the versions in `schemas/avro/` ([`KNOWN_SCHEMAS`]) and its own reader schema;
//! - the schemas [`Codec::register`]ed at run time (say, read from a schema topic);
//! - for each of those, also the fingerprint apache-avro 0.22 computes, which headers carried
//!   before they followed the specification (it keeps `{"type":"long"}` for a logical type where
//!   the specification writes `"long"`), so topics written then still replay.
//!
//! The writer schema is then resolved to the codec's reader schema, so old and new writers
//! coexist on one topic. A fingerprint found nowhere is [`DecodeError::UnknownSchema`]: the
//! caller can learn the schema ([`fingerprint_of`] reads a header without decoding; then
//! [`Codec::knows`], [`Codec::register`]) instead of discarding the record.
//!
//! Fingerprints are `u64`s, printed as 16 hex digits. Java's `parsingFingerprint64` gives the
//! same number; fastavro's `fingerprint(.., "CRC-64-AVRO")` is the hex of the header's
//! little-endian bytes, so it reads byte-reversed (`8860d7025eefcf02` for `02cfef5e02d76088`).

mod canonical;
mod codec;
mod event;

pub use canonical::fingerprint;
pub use codec::{
    fingerprint_of, Codec, DecodeError, EncodeError, SchemaError, KNOWN_SCHEMAS, ORDER_EVENT_SCHEMA,
};
pub use event::{CarModel, Customer, EventType, Money, Order, OrderEvent, OrderStatus};
