//! Records as Arrow: one row per record, lossless both ways, and Arrow IPC stream bytes for
//! clients (pyarrow, DuckDB, Polars read them directly).
//!
//! | column | type | null |
//! |---|---|---|
//! | `offset` | UInt64 | no |
//! | `epoch` | UInt64 | no |
//! | `key` | Binary | yes |
//! | `value` | Binary | no |
//! | `headers` | List<Struct<name: Utf8, value: Binary>> | no |
//! | `timestamp_ms` | UInt64 | no |
//! | `scarab_id` | UInt64 | no |
//! | `producer_id` | UInt64 | yes |
//! | `producer_seq` | UInt64 | yes |

use std::io::Cursor;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};

use crate::model::{Header, ProducerSeq, Record, StoredRecord};

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Binary, false),
    ])
}

fn header_item() -> Field {
    Field::new("item", DataType::Struct(header_fields()), false)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("offset", DataType::UInt64, false),
        Field::new("epoch", DataType::UInt64, false),
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, false),
        Field::new("headers", DataType::List(Arc::new(header_item())), false),
        Field::new("timestamp_ms", DataType::UInt64, false),
        Field::new("scarab_id", DataType::UInt64, false),
        Field::new("producer_id", DataType::UInt64, true),
        Field::new("producer_seq", DataType::UInt64, true),
    ]))
});

/// The schema of record batches (see the module docs).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One row per record.
pub fn records_to_batch(records: &[StoredRecord]) -> Result<RecordBatch, ArrowError> {
    let n = records.len();
    let (mut offset, mut epoch, mut timestamp, mut scarab) = (
        UInt64Builder::with_capacity(n),
        UInt64Builder::with_capacity(n),
        UInt64Builder::with_capacity(n),
        UInt64Builder::with_capacity(n),
    );
    let (mut producer, mut sequence) = (UInt64Builder::with_capacity(n), UInt64Builder::with_capacity(n));
    let (mut key, mut value) = (BinaryBuilder::new(), BinaryBuilder::new());
    let header_builder = StructBuilder::new(
        header_fields(),
        vec![Box::new(StringBuilder::new()), Box::new(BinaryBuilder::new())],
    );
    let mut headers = ListBuilder::new(header_builder).with_field(header_item());
    for stored in records {
        let record = &stored.record;
        offset.append_value(stored.offset);
        epoch.append_value(stored.epoch);
        key.append_option(record.key.as_deref());
        value.append_value(&record.value);
        let entries = headers.values();
        for header in &record.headers {
            entries.field_builder::<StringBuilder>(0).expect("name column").append_value(&header.name);
            entries.field_builder::<BinaryBuilder>(1).expect("value column").append_value(&header.value);
            entries.append(true);
        }
        headers.append(true);
        timestamp.append_value(record.timestamp_ms);
        scarab.append_value(record.scarab_id);
        producer.append_option(record.producer.map(|p| p.producer));
        sequence.append_option(record.producer.map(|p| p.sequence));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(offset.finish()),
        Arc::new(epoch.finish()),
        Arc::new(key.finish()),
        Arc::new(value.finish()),
        Arc::new(headers.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(scarab.finish()),
        Arc::new(producer.finish()),
        Arc::new(sequence.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// The records of a batch with [`schema`]; refuses other schemas.
pub fn batch_to_records(batch: &RecordBatch) -> Result<Vec<StoredRecord>, ArrowError> {
    if batch.schema() != schema() {
        return Err(ArrowError::SchemaError("not a Pyralog record batch".into()));
    }
    let u64s = |i: usize| batch.column(i).as_primitive::<UInt64Type>();
    let (offset, epoch, timestamp, scarab, producer, sequence) =
        (u64s(0), u64s(1), u64s(5), u64s(6), u64s(7), u64s(8));
    let (key, value) = (batch.column(2).as_binary::<i32>(), batch.column(3).as_binary::<i32>());
    let headers = batch.column(4).as_list::<i32>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let entries = headers.value(row);
        let entries = entries.as_struct();
        let (names, values) = (entries.column(0).as_string::<i32>(), entries.column(1).as_binary::<i32>());
        let producer = match (producer.is_valid(row), sequence.is_valid(row)) {
            (true, true) => {
                Some(ProducerSeq { producer: producer.value(row), sequence: sequence.value(row) })
            }
            (false, false) => None,
            _ => return Err(ArrowError::InvalidArgumentError(format!("row {row}: half a producer"))),
        };
        let record = Record {
            key: key.is_valid(row).then(|| key.value(row).to_vec()),
            value: value.value(row).to_vec(),
            headers: (0..entries.len())
                .map(|h| Header { name: names.value(h).to_owned(), value: values.value(h).to_vec() })
                .collect(),
            timestamp_ms: timestamp.value(row),
            scarab_id: scarab.value(row),
            producer,
        };
        out.push(StoredRecord { offset: offset.value(row), epoch: epoch.value(row), record });
    }
    Ok(out)
}

/// The batch as Arrow IPC stream bytes.
pub fn batch_to_ipc(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// The batches of Arrow IPC stream bytes (untrusted input: malformed bytes are an error).
///
/// arrow-ipc 60 panics on some malformed buffer offsets instead of returning an error (found
/// by the `arrow_ipc_reading_is_total` proptest); the panic is contained here and reported as
/// an error, so a client decoding a damaged stream does not crash.
pub fn ipc_to_batches(bytes: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    let decode = || -> Result<Vec<RecordBatch>, ArrowError> {
        let batches: Vec<RecordBatch> =
            StreamReader::try_new(Cursor::new(bytes), None)?.collect::<Result<_, _>>()?;
        for batch in &batches {
            arrow_array::StructArray::from(batch.clone()).to_data().validate_full()?;
        }
        Ok(batches)
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err(ArrowError::IpcError("malformed Arrow IPC stream".into())))
}
