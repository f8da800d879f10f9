//! The Arrow schema the files are written with, and the check that a file read has it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::SCHEMA_VERSION;

/// Column `partitionKey`.
pub const PARTITION_KEY: &str = "partitionKey";
/// Column `sequenceNumber`.
pub const SEQUENCE_NUMBER: &str = "sequenceNumber";
/// Column `subSequenceNumber`.
pub const SUB_SEQUENCE_NUMBER: &str = "subSequenceNumber";
/// Column `explicitHashKey`.
pub const EXPLICIT_HASH_KEY: &str = "explicitHashKey";
/// Column `data`.
pub const DATA: &str = "data";
/// Column `approximateArrivalTimestamp`.
pub const ARRIVAL: &str = "approximateArrivalTimestamp";
/// Column `shardId`.
pub const SHARD_ID: &str = "shardId";
/// Column `archivedAt`.
pub const ARCHIVED_AT: &str = "archivedAt";
/// Column `oversize`.
pub const OVERSIZE: &str = "oversize";
/// Column `recordSize`.
pub const RECORD_SIZE: &str = "recordSize";

/// File metadata key: the schema version.
pub const META_SCHEMA: &str = "kinarch.schema";
/// File metadata key: the stream.
pub const META_STREAM: &str = "kinarch.stream";
/// File metadata key: the number of digits of every sequence number, when they all have one.
pub const META_SEQUENCE_DIGITS: &str = "kinarch.sequenceDigits";

/// The time zone of both timestamp columns (isAdjustedToUTC in Parquet).
pub(super) const UTC: &str = "UTC";

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The columns, in the contract's order: name, type, nullable.
pub(super) fn columns() -> [(&'static str, DataType, bool); 10] {
    [
        (PARTITION_KEY, DataType::Utf8, false),
        (SEQUENCE_NUMBER, DataType::Utf8, false),
        (SUB_SEQUENCE_NUMBER, DataType::Int64, true),
        (EXPLICIT_HASH_KEY, DataType::Utf8, true),
        (DATA, DataType::Binary, true),
        (ARRIVAL, timestamp(), false),
        (SHARD_ID, DataType::Utf8, false),
        (ARCHIVED_AT, timestamp(), false),
        (OVERSIZE, DataType::Boolean, true),
        (RECORD_SIZE, DataType::Int64, true),
    ]
}

/// The schema files are written with.
pub(super) static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        columns()
            .into_iter()
            .map(|(name, data_type, nullable)| Field::new(name, data_type, nullable))
            .collect::<Vec<_>>(),
    ))
});

/// Why a file read is not one kinarch can decode: its schema version is newer, or a column
/// is missing or of another type. Nullability is not checked here: a null where the
/// contract has none is refused when the row is decoded.
pub(super) fn check(
    arrow: &Schema,
    metadata: &HashMap<String, Option<String>>,
) -> Result<(), String> {
    if let Some(version) = metadata.get(META_SCHEMA) {
        let version = version.as_deref().unwrap_or_default();
        match version.parse::<u32>() {
            Ok(v) if v <= SCHEMA_VERSION => {}
            Ok(v) => {
                return Err(format!(
                    "it was written with schema version {v} ({META_SCHEMA}) and this kinarch \
                     reads versions up to {SCHEMA_VERSION}: upgrade kinarch"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "its {META_SCHEMA} metadata is {version:?}, not a version number"
                ));
            }
        }
    }
    for (name, data_type, _) in columns() {
        let additive = matches!(name, OVERSIZE | RECORD_SIZE);
        match arrow.field_with_name(name) {
            Ok(field) if same_type(field.data_type(), &data_type) => {}
            Ok(field) => {
                return Err(format!(
                    "column {name} is {} where a kinarch archive file has {}: not a kinarch \
                     archive file",
                    field.data_type(),
                    data_type
                ));
            }
            Err(_) if additive => {}
            Err(_) => {
                let found: Vec<&str> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(format!(
                    "it has no column {name} (its columns: {}): not a kinarch archive file",
                    found.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Timestamps match whatever time zone name the file gives (`UTC`, `+00:00`): Parquet
/// keeps only isAdjustedToUTC.
fn same_type(found: &DataType, wanted: &DataType) -> bool {
    match (found, wanted) {
        (DataType::Timestamp(a, Some(_)), DataType::Timestamp(b, Some(_))) => a == b,
        _ => found == wanted,
    }
}
