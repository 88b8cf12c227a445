"""Python's fastavro, an Avro implementation independent of ours, on Avro single-object encoding
(C3 01, the schema's CRC-64-AVRO fingerprint little-endian, then the datum), for the
cross-language test tests/tests/avro_interop.rs:

    python3 tests/avro_interop.py decode SCHEMA.avsc  < hex values, one a line  > JSON records
    python3 tests/avro_interop.py encode SCHEMA.avsc  < JSON records, one a line > hex values

The header is fastavro's own: the fingerprint of the Parsing Canonical Form it computes from
SCHEMA.avsc. `decode` reads only values whose header is exactly that, as a consumer that looks
writer schemas up by fingerprint would. Timestamps and dates are printed as the numbers Avro
stores (milliseconds and days since the epoch); `encode` takes them so too. Needs fastavro
(`python3 -m pip install fastavro`).
"""

import datetime
import io
import json
import sys

try:
    import fastavro
    from fastavro.schema import fingerprint, to_parsing_canonical_form
except ImportError:
    sys.exit("avro_interop: fastavro is not installed: python3 -m pip install fastavro (.ci/run does)")

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def load(path):
    """The single-object header of the schema at `path`, and the parsed schema."""
    with open(path) as file:
        schema = json.load(file)
    canonical = to_parsing_canonical_form(schema)
    header = b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return header, fastavro.parse_schema(schema)


def stored(value):
    """fastavro reads timestamp-millis as a datetime and date as a date: back to Avro's numbers."""
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.date):
        return (value - EPOCH.date()).days
    raise TypeError(f"cannot print {value!r} as JSON")


def decode(header, schema):
    for line in sys.stdin:
        value = bytes.fromhex(line.strip())
        if value[:10] != header:
            sys.exit(f"avro_interop: header {value[:10].hex()} is not the schema's {header.hex()}")
        datum = io.BytesIO(value[10:])
        record = fastavro.schemaless_reader(datum, schema)
        if datum.read():
            sys.exit("avro_interop: bytes left over after the datum")
        print(json.dumps(record, default=stored))


def encode(header, schema):
    for line in sys.stdin:
        value = io.BytesIO()
        value.write(header)
        fastavro.schemaless_writer(value, schema, json.loads(line))
        print(value.getvalue().hex())


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("decode", "encode"):
        sys.exit(__doc__)
    command = {"decode": decode, "encode": encode}[sys.argv[1]]
    command(*load(sys.argv[2]))
