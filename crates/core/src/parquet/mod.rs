//! The Parquet codec of the archive: a batch of records as one Parquet file
//! ([`encode`]), and the records of one file that a [`Selection`] keeps ([`read_file`]),
//! read by byte ranges and pruned by row group. Pure of AWS calls: the writer stores what
//! [`encode`] returns, the reader hands [`read_file`] a [`ByteSource`] over an S3 object.
//! Where files go (keys, hour partitions, files of a batch) is
//! [`crate::domain::parquet`].
//!
//! # The schema (a public contract, written in the README as "The Parquet contract")
//!
//! | column | Parquet type | nullable | value |
//! |---|---|---|---|
//! | `partitionKey` | BYTE_ARRAY STRING | no | the record's partition key |
//! | `sequenceNumber` | BYTE_ARRAY STRING | no | its sequence number (the container's, for a KPL user record) |
//! | `subSequenceNumber` | INT64 | yes | a KPL user record's index in its container |
//! | `explicitHashKey` | BYTE_ARRAY STRING | yes | a KPL user record's explicit hash key |
//! | `data` | BYTE_ARRAY | yes | the record bytes (not base64); null only on an oversize row |
//! | `approximateArrivalTimestamp` | INT64 TIMESTAMP(MILLIS, UTC) | no | when Kinesis accepted it |
//! | `shardId` | BYTE_ARRAY STRING | no | the shard it came from |
//! | `archivedAt` | INT64 TIMESTAMP(MILLIS, UTC) | no | when kinarch archived it |
//! | `oversize` | BOOLEAN | yes | `true` on a row that records a payload too large to be archived |
//! | `recordSize` | INT64 | yes | on such a row, the payload's size in bytes |
//!
//! File key-value metadata: `kinarch.schema` = [`SCHEMA_VERSION`], `kinarch.stream` = the
//! stream's name, and `kinarch.sequenceDigits` = the number of digits of every
//! `sequenceNumber` in the file, written only when they all have the same number (see
//! "Sequence numbers" below).
//!
//! # Decisions (what the issue leaves open)
//!
//! Athena, Spark, DuckDB and pyarrow must read the files with no configuration, so the
//! files use only what every one of them reads:
//! - **Format 1.0 data pages, PLAIN and dictionary encodings only.** `DELTA_*` encodings and
//!   data page v2 would make smaller files, but Spark's vectorized reader before 3.3 and
//!   older Hive-based engines refuse them.
//! - **zstd, level 1, on every column.** Level 1 costs the Lambda function least CPU; a
//!   higher level gains little on Kinesis payloads (measured in BENCHMARKS.md).
//! - **Timestamps are INT64 TIMESTAMP(MILLIS, isAdjustedToUTC = true)**, not the legacy
//!   INT96: every engine above reads them as UTC timestamps. Kinesis gives arrival times in
//!   milliseconds, so nothing is lost: [`arrival_millis`] rounds an
//!   `approximate_arrival_timestamp` (epoch seconds, `f64`) half away from zero to the
//!   millisecond, and a row reads back as `millis / 1000`.
//! - **No embedded Arrow schema** (the `ARROW:schema` key arrow writers add): the Parquet
//!   schema above is the contract, and the footer stays small.
//! - **Dictionary encoding** on every column but `data` and `sequenceNumber`, whose values
//!   are all different (a dictionary would only cost time before the writer falls back).
//! - **Statistics** (min, max, null count) on every column chunk, binary ones truncated to
//!   64 bytes: a truncated min is a prefix and a truncated max is incremented, so both stay
//!   bounds of the chunk's values. No page index: row groups are the unit a reader skips.
//! - **A bloom filter on `partitionKey`** in every row group, sized for its row count at a
//!   1% false positive rate and folded by the writer to the keys it holds.
//! - **Row groups of at most [`MAX_ROW_GROUP_ROWS`] rows**, in the order given: a batch's
//!   file is one row group; a larger (compacted) file has several, each prunable.
//! - **`oversize` and `recordSize` are null on ordinary rows**, `true` and the payload's
//!   size on a row recording a payload that was too large to archive (its `data` is null).
//!
//! # Sequence numbers
//!
//! `sequenceNumber` is a string, and string order is numeric order only between numbers of
//! the same length. A row group's min/max statistics are string order: with rows `1`, `10`,
//! `2` they are `1` and `2`, both one digit, yet the row group holds `10`. So min, max and a
//! bound of equal length do not prove that a row group holds no selected row. The writer
//! therefore records `kinarch.sequenceDigits` when every row of the file has the same number
//! of digits (AWS issues 56-digit numbers today); only then does the reader skip row groups
//! by their sequence statistics (and then it compares numerically, whatever the bound's
//! length). Files without it (emulators' short counters, files rewritten by other tools)
//! are never skipped by sequence.

mod athena;
mod decode;
mod encode;
mod prune;
mod read;
mod schema;
#[cfg(test)]
mod tests;

pub use athena::athena_ddl;
pub use encode::{arrival_millis, encode, encode_archived};
pub use read::{ByteSource, MemoryFile, ParquetCounters, ParquetReadStats, read_file};
pub use schema::{
    ARCHIVED_AT, ARRIVAL, DATA, EXPLICIT_HASH_KEY, META_SCHEMA, META_SEQUENCE_DIGITS, META_STREAM,
    OVERSIZE, PARTITION_KEY, RECORD_SIZE, SEQUENCE_NUMBER, SHARD_ID, SUB_SEQUENCE_NUMBER,
};

#[cfg(doc)]
use crate::domain::selection::Selection;

/// The version of the schema above, in every file's `kinarch.schema`. A new column that
/// older readers can ignore keeps the version; a change that older readers would misread
/// takes a new one, and kinarch refuses files of a version newer than it knows.
pub const SCHEMA_VERSION: u32 = 1;

/// Rows per row group at most.
pub const MAX_ROW_GROUP_ROWS: usize = 65_536;

/// The bloom filter's false positive probability.
pub const BLOOM_FILTER_FPP: f64 = 0.01;

/// Binary statistics (min, max) are cut to this many bytes.
pub const STATISTICS_TRUNCATE_BYTES: usize = 64;
