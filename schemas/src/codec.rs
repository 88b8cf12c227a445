//! Avro single-object encoding with writer-schema lookup by fingerprint.
//!
//! Schemas are parsed and the datum readers and writer built once per [`Codec`] (or once per
//! [`Codec::register`]ed schema); each `encode`/`decode` then runs the serde-direct path and one
//! `HashMap` lookup. Only a writer schema that differs from the reader's goes through `Value` and
//! Avro schema resolution, which is about 6x slower.
//!
//! The header this codec writes carries the specification's fingerprint of the writer schema
//! ([`crate::fingerprint`]). Each schema a codec knows is also found under the fingerprint
//! apache-avro 0.22 computes, which this codec wrote before it followed the specification, so
//! topics written then still replay.

use std::collections::HashMap;
use std::marker::PhantomData;

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::canonical;

/// The schema this build writes and reads into [`crate::OrderEvent`].
pub const ORDER_EVENT_SCHEMA: &str = include_str!("../avro/order_event.v1.avsc");

/// Every version in `schemas/avro/`, oldest first. Readers accept data written with any of them.
pub const KNOWN_SCHEMAS: &[&str] = &[ORDER_EVENT_SCHEMA];

const MAGIC: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// A schema that cannot be used: a bug in `schemas/avro/` or in a caller's schema text.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("Avro schema is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("invalid Avro schema: {0}")]
    Parse(#[source] apache_avro::Error),
    #[error("cannot compute the Parsing Canonical Form of an Avro schema: {0}")]
    Canonical(String),
    #[error("cannot build an Avro reader or writer: {0}")]
    Build(#[source] apache_avro::Error),
    #[error("writer schema {fingerprint:016x} cannot be resolved to the reader schema: {source}")]
    Incompatible {
        fingerprint: u64,
        #[source]
        source: apache_avro::error::CompatibilityError,
    },
    #[error(
        "writer schema {0:016x} resolves to the reader schema only in part: some of its values \
         (an enum symbol the reader lacks and has no default for, a union branch the reader \
         lacks) would not decode"
    )]
    PartlyCompatible(u64),
}

/// A value that does not fit the writer schema: always a bug in the caller.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode order event: {0}")]
pub struct EncodeError(#[source] apache_avro::Error);

/// Bytes that are not a readable order event: poison, except [`DecodeError::UnknownSchema`],
/// a writer schema this codec has not met (yet: see [`Codec::register`]), which is no fault of
/// the record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("value is {0} bytes, shorter than the 10-byte single-object header")]
    TooShort(usize),
    #[error("not Avro single-object encoding: header starts {0:02x?}, expected [c3, 01]")]
    BadMagic([u8; 2]),
    #[error("unknown writer schema fingerprint {0:016x}")]
    UnknownSchema(u64),
    #[error("malformed Avro datum: {0}")]
    Malformed(#[source] apache_avro::Error),
    #[error("{0} bytes left over after the Avro datum")]
    TrailingBytes(usize),
}

impl DecodeError {
    /// A stable, machine-readable name, used in dead-letter headers and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "too_short",
            DecodeError::BadMagic(_) => "bad_magic",
            DecodeError::UnknownSchema(_) => "unknown_schema",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::TrailingBytes(_) => "trailing_bytes",
        }
    }
}

/// The writer-schema fingerprint in the single-object header of `bytes`, without decoding the
/// datum; `None` if `bytes` does not start with such a header.
pub fn fingerprint_of(bytes: &[u8]) -> Option<u64> {
    split_header(bytes).ok().map(|(fingerprint, _)| fingerprint)
}

/// Encodes `T` with the reader schema and decodes `T` from any known writer schema.
///
/// Build one per process (or per thread of work) and reuse it: construction parses schemas.
pub struct Codec<T = crate::OrderEvent> {
    header: [u8; HEADER_LEN],
    writer_fingerprint: u64,
    writer: GenericDatumWriter<'static>,
    reader_schema: &'static Schema,
    /// By specification fingerprint and by legacy (apache-avro) fingerprint.
    readers: HashMap<u64, WriterVersion>,
    _type: PhantomData<fn(T) -> T>,
}

/// How to read data written with one known writer schema.
enum WriterVersion {
    /// Same schema as the reader's: serde-direct.
    Direct(GenericDatumReader<'static>),
    /// Another version: decode to `Value`, resolve against the reader schema, then deserialize.
    Resolving(GenericDatumReader<'static>),
}

impl Codec<crate::OrderEvent> {
    /// The codec for this build's [`crate::OrderEvent`], reading every version in `schemas/avro/`.
    pub fn new() -> Result<Self, SchemaError> {
        Codec::with_schemas(ORDER_EVENT_SCHEMA, KNOWN_SCHEMAS)
    }
}

impl<T: Serialize + DeserializeOwned> Codec<T> {
    /// A codec whose reader (and writer) schema is `reader`, accepting data written with any of
    /// `writers`, each [`Codec::register`]ed. `reader` need not be among `writers`.
    pub fn with_schemas(reader: &str, writers: &[&str]) -> Result<Self, SchemaError> {
        let (reader_schema, writer_fingerprint) = canonical::parse(reader)?;
        let reader_schema = leak(reader_schema);
        let writer = GenericDatumWriter::builder(reader_schema)
            .validate(false)
            .human_readable(false)
            .build()
            .map_err(SchemaError::Build)?;
        let mut header = [0; HEADER_LEN];
        header[..2].copy_from_slice(&MAGIC);
        header[2..].copy_from_slice(&writer_fingerprint.to_le_bytes());
        let mut codec = Codec {
            header,
            writer_fingerprint,
            writer,
            reader_schema,
            readers: HashMap::new(),
            _type: PhantomData,
        };
        for text in [reader].into_iter().chain(writers.iter().copied()) {
            codec.register(text)?;
        }
        Ok(codec)
    }

    /// The specification fingerprint of the schema this codec writes, as in its headers.
    pub fn writer_fingerprint(&self) -> u64 {
        self.writer_fingerprint
    }

    /// Whether data whose header carries `fingerprint` decodes (built in or registered).
    pub fn knows(&self, fingerprint: u64) -> bool {
        self.readers.contains_key(&fingerprint)
    }

    /// Adds the writer schema `schema_json` (learned at run time, say from the schema topic),
    /// to be resolved against this codec's reader schema, and returns its specification
    /// fingerprint. Registering a schema already known changes nothing.
    ///
    /// A schema the reader schema cannot fully resolve is an error, not a reader that fails
    /// record by record: [`SchemaError::Incompatible`], or [`SchemaError::PartlyCompatible`] when
    /// only some of its values (an enum symbol, a union branch) have no reader equivalent.
    pub fn register(&mut self, schema_json: &str) -> Result<u64, SchemaError> {
        let (schema, fingerprint) = canonical::parse(schema_json)?;
        if self.knows(fingerprint) {
            return Ok(fingerprint);
        }
        let direct = fingerprint == self.writer_fingerprint;
        if !direct {
            match SchemaCompatibility::can_read(&schema, self.reader_schema) {
                Ok(Compatibility::Full) => {}
                Ok(Compatibility::Partial) => {
                    return Err(SchemaError::PartlyCompatible(fingerprint))
                }
                Err(source) => {
                    return Err(SchemaError::Incompatible {
                        fingerprint,
                        source,
                    })
                }
            }
        }
        let legacy = legacy_fingerprint(&schema);
        // Readers borrow their schemas. A process meets a handful of schemas, so leaking each
        // once is simpler than a self-referential struct and costs a few KB.
        let schema = leak(schema);
        for id in [fingerprint, legacy] {
            // `read_deser` panics when a reader schema is set, so only resolving readers get one.
            let version = if direct {
                WriterVersion::Direct(build_reader(schema, None)?)
            } else {
                WriterVersion::Resolving(build_reader(schema, Some(self.reader_schema))?)
            };
            self.readers.entry(id).or_insert(version);
        }
        Ok(fingerprint)
    }

    /// Appends the single-object encoding of `value` to `out`.
    pub fn encode_into(&self, value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.header);
        self.writer.write_ser(out, value).map_err(EncodeError)?;
        Ok(())
    }

    pub fn encode(&self, value: &T) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, mut datum) = split_header(bytes)?;
        let value = match self
            .readers
            .get(&id)
            .ok_or(DecodeError::UnknownSchema(id))?
        {
            WriterVersion::Direct(reader) => reader.read_deser(&mut datum),
            WriterVersion::Resolving(reader) => reader
                .read_value(&mut datum)
                .and_then(|value| apache_avro::from_value(&value)),
        }
        .map_err(DecodeError::Malformed)?;
        if !datum.is_empty() {
            return Err(DecodeError::TrailingBytes(datum.len()));
        }
        Ok(value)
    }
}

/// The writer-schema fingerprint and the datum of a single-object encoded value.
fn split_header(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let (header, datum) = bytes.split_at(HEADER_LEN);
    if header[..2] != MAGIC {
        return Err(DecodeError::BadMagic([header[0], header[1]]));
    }
    Ok((
        u64::from_le_bytes(header[2..].try_into().expect("8-byte slice")),
        datum,
    ))
}

fn leak(schema: Schema) -> &'static Schema {
    Box::leak(Box::new(schema))
}

/// The fingerprint apache-avro 0.22 computes (over its own, non-standard canonical form), which
/// headers carried before they followed the specification. Pinned by a test: an apache-avro that
/// computes it differently would make those topics unreadable.
fn legacy_fingerprint(schema: &Schema) -> u64 {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    u64::from_le_bytes(bytes[..8].try_into().expect("CRC-64 is 8 bytes"))
}

fn build_reader(
    writer: &'static Schema,
    reader: Option<&'static Schema>,
) -> Result<GenericDatumReader<'static>, SchemaError> {
    GenericDatumReader::builder(writer)
        .maybe_reader_schema(reader)
        .human_readable(false)
        .build()
        .map_err(SchemaError::Build)
}
