//! The order event shared by Sales and every department, and its Avro codec.
//!
//! Values on the `orders` topic are Avro single-object encoded: the two bytes `C3 01`, the
//! little-endian CRC-64-AVRO fingerprint of the writer schema, then the datum. A reader looks the
//! writer schema up by fingerprint among the versions in `schemas/avro/` and resolves it to its
//! own reader schema, so old and new writers coexist on one topic.

mod codec;
mod event;

pub use codec::{Codec, DecodeError, EncodeError, SchemaError, KNOWN_SCHEMAS, ORDER_EVENT_SCHEMA};
pub use event::{CarModel, Customer, EventType, Money, Order, OrderEvent, OrderStatus};
