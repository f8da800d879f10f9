//! Arrow batches read from a file → `ArchiveRecord`s, made exactly as the table path makes
//! them: `last_update` is `archivedAt` as the contract's `lastUpdate` text, no expiry, no
//! S3 location; an oversize row has `oversize_bytes` and no data.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use chrono::DateTime;

use super::prune::arrival_seconds;
use super::schema::{
    ARCHIVED_AT, ARRIVAL, DATA, EXPLICIT_HASH_KEY, OVERSIZE, PARTITION_KEY, RECORD_SIZE,
    SEQUENCE_NUMBER, SHARD_ID, SUB_SEQUENCE_NUMBER,
};
use crate::domain::record::{ArchiveRecord, format_last_update};
use crate::domain::selection::Selection;
use crate::domain::sequence::SequenceNumber;

/// The columns of one batch, typed.
struct Columns<'a> {
    keys: &'a StringArray,
    sequences: &'a StringArray,
    subs: &'a Int64Array,
    hash_keys: &'a StringArray,
    data: &'a BinaryArray,
    arrivals: &'a TimestampMillisecondArray,
    shards: &'a StringArray,
    archived: &'a TimestampMillisecondArray,
    oversize: Option<&'a BooleanArray>,
    sizes: Option<&'a Int64Array>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, String> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| format!("column {name} is missing"))
}

fn wrong(name: &str) -> String {
    format!("column {name} is not of the contract's type")
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Self, String> {
        let string = |name| {
            column(batch, name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong(name))
        };
        let int64 = |name| {
            column(batch, name)?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| wrong(name))
        };
        let time = |name| {
            column(batch, name)?
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| wrong(name))
        };
        Ok(Self {
            keys: string(PARTITION_KEY)?,
            sequences: string(SEQUENCE_NUMBER)?,
            subs: int64(SUB_SEQUENCE_NUMBER)?,
            hash_keys: string(EXPLICIT_HASH_KEY)?,
            data: column(batch, DATA)?
                .as_binary_opt::<i32>()
                .ok_or_else(|| wrong(DATA))?,
            arrivals: time(ARRIVAL)?,
            shards: string(SHARD_ID)?,
            archived: time(ARCHIVED_AT)?,
            // Additive columns: a file without them has no oversize rows.
            oversize: match batch.column_by_name(OVERSIZE) {
                Some(c) => Some(c.as_boolean_opt().ok_or_else(|| wrong(OVERSIZE))?),
                None => None,
            },
            sizes: match batch.column_by_name(RECORD_SIZE) {
                Some(c) => Some(
                    c.as_primitive_opt::<Int64Type>()
                        .ok_or_else(|| wrong(RECORD_SIZE))?,
                ),
                None => None,
            },
        })
    }
}

/// Decodes the rows of `batch` that `selection` keeps into `out`. `first_row` is the file's
/// row number of the batch's first row (for messages). `last_update` caches the text of the
/// last `archivedAt` seen (one value per batch file).
pub(super) fn decode(
    batch: &RecordBatch,
    first_row: usize,
    selection: &Selection,
    last_update: &mut Option<(i64, String)>,
    out: &mut Vec<ArchiveRecord>,
) -> Result<(), String> {
    let c = Columns::of(batch)?;
    let wanted_key = selection.partition_key();
    for i in 0..batch.num_rows() {
        let row = first_row + i;
        if c.keys.is_null(i) {
            return Err(null(row, PARTITION_KEY));
        }
        let key = c.keys.value(i);
        if wanted_key.is_some_and(|wanted| wanted != key) {
            continue;
        }
        if c.sequences.is_null(i) {
            return Err(null(row, SEQUENCE_NUMBER));
        }
        let sequence =
            SequenceNumber::parse(c.sequences.value(i)).map_err(|e| format!("row {row}: {e}"))?;
        if c.arrivals.is_null(i) {
            return Err(null(row, ARRIVAL));
        }
        if c.shards.is_null(i) {
            return Err(null(row, SHARD_ID));
        }
        if c.archived.is_null(i) {
            return Err(null(row, ARCHIVED_AT));
        }
        let archived = c.archived.value(i);
        let archived_text = match last_update {
            Some((millis, text)) if *millis == archived => text.clone(),
            _ => {
                let text = DateTime::from_timestamp_millis(archived)
                    .map(format_last_update)
                    .ok_or_else(|| {
                        format!("row {row}: {ARCHIVED_AT} {archived} is out of range")
                    })?;
                *last_update = Some((archived, text.clone()));
                text
            }
        };
        let sub_sequence_number = match c.subs.is_null(i) {
            true => None,
            false => Some(u64::try_from(c.subs.value(i)).map_err(|_| {
                format!(
                    "row {row}: {SUB_SEQUENCE_NUMBER} {} is negative",
                    c.subs.value(i)
                )
            })?),
        };
        let oversize = c.oversize.is_some_and(|o| !o.is_null(i) && o.value(i));
        let (data, oversize_bytes) = if oversize {
            let size = c
                .sizes
                .filter(|s| !s.is_null(i))
                .map(|s| s.value(i))
                .ok_or_else(|| format!("row {row}: an oversize row without {RECORD_SIZE}"))?;
            let size = u64::try_from(size)
                .map_err(|_| format!("row {row}: {RECORD_SIZE} {size} is negative"))?;
            (Vec::new(), Some(size))
        } else {
            if c.data.is_null(i) {
                return Err(null(row, DATA));
            }
            (c.data.value(i).to_vec(), None)
        };
        let record = ArchiveRecord {
            partition_key: key.to_owned(),
            sequence_number: sequence,
            shard_id: c.shards.value(i).to_owned(),
            approximate_arrival_timestamp: arrival_seconds(c.arrivals.value(i)),
            data,
            last_update: Some(archived_text),
            expire_after: None,
            oversize_bytes,
            sub_sequence_number,
            explicit_hash_key: (!c.hash_keys.is_null(i)).then(|| c.hash_keys.value(i).to_owned()),
            stored: None,
        };
        if selection.matches(&record) {
            out.push(record);
        }
    }
    Ok(())
}

fn null(row: usize, column: &str) -> String {
    format!("row {row}: {column} is null, which the contract does not allow")
}
