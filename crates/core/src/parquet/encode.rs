//! Records → one Parquet file, in one pass over Arrow builders sized up front.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::schema::{
    DATA, META_SCHEMA, META_SEQUENCE_DIGITS, META_STREAM, PARTITION_KEY, SCHEMA, SEQUENCE_NUMBER,
    UTC,
};
use super::{BLOOM_FILTER_FPP, MAX_ROW_GROUP_ROWS, SCHEMA_VERSION, STATISTICS_TRUNCATE_BYTES};
use crate::domain::names::StreamName;
use crate::domain::record::{ArchiveRecord, Payload};
use crate::error::Error;

/// Payload bytes handed to the Parquet writer in one Arrow batch at most: a large batch of
/// records is encoded in slices, so the Arrow copy of its payloads stays small. The row
/// groups do not change (the writer closes one every [`MAX_ROW_GROUP_ROWS`] rows).
const SLICE_BYTES: usize = 8 << 20;

/// A row group is closed at this estimated size even before [`MAX_ROW_GROUP_ROWS`] rows, so
/// a reader never holds more than this of one file in memory (a batch is far smaller).
const MAX_ROW_GROUP_BYTES: usize = 128 << 20;

/// The exact millisecond of an arrival time given in epoch seconds: `seconds * 1000`
/// rounded half away from zero (Kinesis gives milliseconds; the `f64` only approximates
/// them). A row stores this, and reads back as `millis / 1000`, the same `f64` for any
/// time with at most three decimals.
pub fn arrival_millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// Encodes `records` (already in (sequence, sub-sequence) order) as one Parquet file of the
/// contract's schema, rows in the order given, archived at `archived_at`, for `stream`
/// (`kinarch.stream`). See the [module](super) for the schema and its settings.
///
/// A record whose payload is in S3 and not fetched ([`Payload::Stored`]) cannot be written
/// (the writer archives records as they arrive, with their bytes): [`Error::Internal`].
pub fn encode(
    records: &[&ArchiveRecord],
    archived_at: DateTime<Utc>,
    stream: &StreamName,
) -> Result<Vec<u8>, Error> {
    encode_in_row_groups(
        records,
        ArchivedAt::Batch(archived_at.timestamp_millis()),
        stream,
        MAX_ROW_GROUP_ROWS,
    )
}

/// [`encode`] for rows that were archived before (compaction, see [`crate::compact`]): each
/// row keeps its own `archivedAt`, read from its `last_update` (the contract's `lastUpdate`
/// text, to the second: the milliseconds of the original `archivedAt` are not kept). A
/// record without a `last_update` is [`Error::Internal`].
pub fn encode_archived(records: &[&ArchiveRecord], stream: &StreamName) -> Result<Vec<u8>, Error> {
    encode_in_row_groups(records, ArchivedAt::EachRow, stream, MAX_ROW_GROUP_ROWS)
}

/// Where a row's `archivedAt` comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum ArchivedAt {
    /// One time for the whole file (epoch milliseconds): a batch archived now.
    Batch(i64),
    /// Each record's own `last_update`: rows archived before.
    EachRow,
}

/// [`encode`] with row groups of at most `max_rows` rows (tests make small ones).
pub(super) fn encode_in_row_groups(
    records: &[&ArchiveRecord],
    archived_at: ArchivedAt,
    stream: &StreamName,
    max_rows: usize,
) -> Result<Vec<u8>, Error> {
    let digits = sequence_digits(records);
    let payload_bytes: usize = records.iter().map(|r| r.data.len()).sum();
    // Zstd makes small records several times smaller; the footer and bloom filter are a few KB.
    let mut writer = ArrowWriter::try_new_with_options(
        Vec::with_capacity(payload_bytes / 4 + 16 * 1024),
        SCHEMA.clone(),
        ArrowWriterOptions::new()
            .with_properties(properties(records.len(), max_rows, stream, digits))
            .with_skip_arrow_metadata(true),
    )
    .map_err(writer_failed)?;
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < records.len() && end - start < max_rows && bytes < SLICE_BYTES {
            bytes += records[end].data.len();
            end += 1;
        }
        writer
            .write(&batch(&records[start..end], archived_at)?)
            .map_err(writer_failed)?;
        start = end;
    }
    writer.into_inner().map_err(writer_failed)
}

/// The writer's settings (the module's decisions).
fn properties(
    rows: usize,
    max_rows: usize,
    stream: &StreamName,
    digits: Option<usize>,
) -> WriterProperties {
    let mut metadata = vec![
        KeyValue::new(META_SCHEMA.to_owned(), SCHEMA_VERSION.to_string()),
        KeyValue::new(META_STREAM.to_owned(), stream.as_str().to_owned()),
    ];
    if let Some(digits) = digits {
        metadata.push(KeyValue::new(
            META_SEQUENCE_DIGITS.to_owned(),
            digits.to_string(),
        ));
    }
    let key = ColumnPath::from(PARTITION_KEY);
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_statistics_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
        .set_max_row_group_row_count(Some(max_rows))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_column_dictionary_enabled(ColumnPath::from(DATA), false)
        .set_column_dictionary_enabled(ColumnPath::from(SEQUENCE_NUMBER), false)
        .set_column_bloom_filter_enabled(key.clone(), true)
        .set_column_bloom_filter_fpp(key.clone(), BLOOM_FILTER_FPP)
        .set_column_bloom_filter_max_ndv(key, rows.clamp(1, max_rows) as u64)
        .set_key_value_metadata(Some(metadata))
        .build()
}

/// The number of digits every sequence number of `records` has, when they all have the same.
fn sequence_digits(records: &[&ArchiveRecord]) -> Option<usize> {
    let first = records.first()?.sequence_number.digits();
    records
        .iter()
        .all(|r| r.sequence_number.digits() == first)
        .then_some(first)
}

/// One Arrow batch of `records`: every builder sized first, then one pass.
fn batch(records: &[&ArchiveRecord], archived_at: ArchivedAt) -> Result<RecordBatch, Error> {
    let rows = records.len();
    let (mut key_bytes, mut sequence_bytes, mut hash_key_bytes, mut shard_bytes, mut data_bytes) =
        (0, 0, 0, 0, 0);
    for record in records {
        key_bytes += record.partition_key.len();
        sequence_bytes += record.sequence_number.digits();
        hash_key_bytes += record.explicit_hash_key.as_ref().map_or(0, String::len);
        shard_bytes += record.shard_id.len();
        data_bytes += record.data.len();
    }
    let mut keys = StringBuilder::with_capacity(rows, key_bytes);
    let mut sequences = StringBuilder::with_capacity(rows, sequence_bytes);
    let mut subs = Int64Builder::with_capacity(rows);
    let mut hash_keys = StringBuilder::with_capacity(rows, hash_key_bytes);
    let mut data = BinaryBuilder::with_capacity(rows, data_bytes);
    let mut arrivals = TimestampMillisecondBuilder::with_capacity(rows).with_timezone(UTC);
    let mut shards = StringBuilder::with_capacity(rows, shard_bytes);
    let mut oversize = BooleanBuilder::with_capacity(rows);
    let mut sizes = Int64Builder::with_capacity(rows);
    for record in records {
        keys.append_value(&record.partition_key);
        sequences.append_value(record.sequence_number.as_str());
        subs.append_option(
            record
                .sub_sequence_number
                .map(|sub| int64(sub, "subSequenceNumber", record))
                .transpose()?,
        );
        hash_keys.append_option(record.explicit_hash_key.as_deref());
        match record.payload() {
            Payload::Bytes(bytes) => {
                data.append_value(bytes);
                oversize.append_null();
                sizes.append_null();
            }
            Payload::Oversize(size) => {
                data.append_null();
                oversize.append_value(true);
                sizes.append_value(int64(size, "recordSize", record)?);
            }
            Payload::Stored(stored) => {
                return Err(Error::Internal(format!(
                    "record {}/{}: its payload is in S3 ({}) and was not fetched, so it \
                     cannot be written to Parquet",
                    record.partition_key, record.sequence_number, stored.location
                )));
            }
        }
        arrivals.append_value(arrival_millis(record.approximate_arrival_timestamp));
        shards.append_value(&record.shard_id);
    }
    let archived = match archived_at {
        ArchivedAt::Batch(millis) => TimestampMillisecondArray::from_value(millis, rows),
        ArchivedAt::EachRow => records
            .iter()
            .map(|record| row_archived_at(record).map(Some))
            .collect::<Result<TimestampMillisecondArray, Error>>()?,
    }
    .with_timezone(UTC);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(keys.finish()),
        Arc::new(sequences.finish()),
        Arc::new(subs.finish()),
        Arc::new(hash_keys.finish()),
        Arc::new(data.finish()),
        Arc::new(arrivals.finish()),
        Arc::new(shards.finish()),
        Arc::new(archived),
        Arc::new(oversize.finish()),
        Arc::new(sizes.finish()),
    ];
    RecordBatch::try_new(SCHEMA.clone(), columns)
        .map_err(|e| Error::Internal(format!("building a Parquet row batch: {e}")))
}

/// A row's own `archivedAt` (epoch milliseconds), from its `last_update`.
fn row_archived_at(record: &ArchiveRecord) -> Result<i64, Error> {
    record
        .last_update
        .as_deref()
        .and_then(crate::domain::record::parse_last_update)
        .map(|time| time.timestamp_millis())
        .ok_or_else(|| {
            Error::Internal(format!(
                "record {}/{}: no archive time (lastUpdate {:?}) to keep in a rewritten file",
                record.partition_key, record.sequence_number, record.last_update
            ))
        })
}

fn int64(value: u64, column: &str, record: &ArchiveRecord) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| {
        Error::Internal(format!(
            "record {}/{}: {column} {value} does not fit the column's int64",
            record.partition_key, record.sequence_number
        ))
    })
}

fn writer_failed(error: parquet::errors::ParquetError) -> Error {
    Error::Internal(format!("writing a Parquet file: {error}"))
}
