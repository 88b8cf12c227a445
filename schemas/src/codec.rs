//! Avro single-object encoding with writer-schema lookup by fingerprint.
//!
//! Schemas are parsed and the datum readers and writer built once per [`Codec`]; each
//! `encode`/`decode` then runs the serde-direct path. Only a writer schema that differs from the
//! reader's goes through `Value` and Avro schema resolution, which is about 6x slower.

use std::collections::HashMap;
use std::marker::PhantomData;

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The schema this build writes and reads into [`crate::OrderEvent`].
pub const ORDER_EVENT_SCHEMA: &str = include_str!("../avro/order_event.v1.avsc");

/// Every version in `schemas/avro/`, oldest first. Readers accept data written with any of them.
pub const KNOWN_SCHEMAS: &[&str] = &[ORDER_EVENT_SCHEMA];

const MAGIC: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// A schema that cannot be used: a bug in `schemas/avro/` or in a caller's schema text.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid Avro schema: {0}")]
    Parse(#[source] apache_avro::Error),
    #[error("cannot build an Avro reader or writer: {0}")]
    Build(#[source] apache_avro::Error),
}

/// A value that does not fit the writer schema: always a bug in the caller.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode order event: {0}")]
pub struct EncodeError(#[source] apache_avro::Error);

/// Bytes that are not a readable order event. Consumers dead-letter these.
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

/// Encodes `T` with the reader schema and decodes `T` from any known writer schema.
///
/// Build one per process (or per thread of work) and reuse it: construction parses schemas.
pub struct Codec<T = crate::OrderEvent> {
    header: [u8; HEADER_LEN],
    writer: GenericDatumWriter<'static>,
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
    /// `writers`. `reader` need not be among `writers`.
    pub fn with_schemas(reader: &str, writers: &[&str]) -> Result<Self, SchemaError> {
        // Readers and writers borrow their schemas. A process builds a handful of codecs, so
        // leaking the parsed schemas is simpler than a self-referential struct and costs a few KB.
        let reader_schema = leak_parsed(reader)?;
        let reader_fingerprint = fingerprint(reader_schema);
        let writer = GenericDatumWriter::builder(reader_schema)
            .validate(false)
            .human_readable(false)
            .build()
            .map_err(SchemaError::Build)?;

        let mut readers = HashMap::new();
        for text in writers.iter().copied().chain([reader]) {
            let writer_schema = leak_parsed(text)?;
            let id = fingerprint(writer_schema);
            let version = if id == reader_fingerprint {
                WriterVersion::Direct(build_reader(writer_schema, None)?)
            } else {
                WriterVersion::Resolving(build_reader(writer_schema, Some(reader_schema))?)
            };
            readers.entry(id).or_insert(version);
        }

        let mut header = [0; HEADER_LEN];
        header[..2].copy_from_slice(&MAGIC);
        header[2..].copy_from_slice(&reader_fingerprint.to_le_bytes());
        Ok(Codec { header, writer, readers, _type: PhantomData })
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
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(bytes.len()));
        }
        let (header, mut datum) = bytes.split_at(HEADER_LEN);
        if header[..2] != MAGIC {
            return Err(DecodeError::BadMagic([header[0], header[1]]));
        }
        let id = u64::from_le_bytes(header[2..].try_into().expect("8-byte slice"));
        let value = match self.readers.get(&id).ok_or(DecodeError::UnknownSchema(id))? {
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

fn leak_parsed(text: &str) -> Result<&'static Schema, SchemaError> {
    let schema = Schema::parse_str(text).map_err(SchemaError::Parse)?;
    Ok(Box::leak(Box::new(schema)))
}

fn fingerprint(schema: &Schema) -> u64 {
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
