//! Reading one file by byte ranges: the footer (one read of the file's tail), then each row
//! group its statistics and bloom filter do not rule out, one at a time.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use futures::{Stream, StreamExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::bloom_filter::Sbbf;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::statistics::Statistics;

use super::decode::decode;
use super::prune::{self, RowGroupBounds};
use super::schema::{
    self, ARCHIVED_AT, ARRIVAL, META_SEQUENCE_DIGITS, PARTITION_KEY, SEQUENCE_NUMBER,
};
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::Selection;
use crate::error::Error;

/// A file's bytes, read by range (S3 ranged GETs in production; a [`MemoryFile`] in tests).
pub trait ByteSource: Send + Sync + 'static {
    /// The file's size in bytes (known from the listing).
    fn size(&self) -> u64;
    /// The bytes of `range` (end exclusive). A source may return fewer bytes than asked
    /// for when the file is shorter than [`Self::size`] said; the reader then reports the
    /// file as cut short.
    fn read(&self, range: Range<u64>) -> BoxFuture<'static, Result<Bytes, Error>>;
    /// The file's name for messages (its `s3://` URL).
    fn name(&self) -> String;
}

/// A file held in memory, as a [`ByteSource`].
#[derive(Debug, Clone)]
pub struct MemoryFile {
    name: String,
    bytes: Bytes,
}

impl MemoryFile {
    /// The file `name` (for messages) holding `bytes`.
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

impl ByteSource for MemoryFile {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// As S3 answers a ranged GET: the bytes of the range that exist.
    fn read(&self, range: Range<u64>) -> BoxFuture<'static, Result<Bytes, Error>> {
        let len = self.bytes.len() as u64;
        let result = if range.start < len && range.start <= range.end {
            Ok(self
                .bytes
                .slice(range.start as usize..range.end.min(len) as usize))
        } else {
            Err(Error::InvalidInput(format!(
                "{}: bytes {}..{} are past its end ({len} bytes)",
                self.name, range.start, range.end
            )))
        };
        futures::future::ready(result).boxed()
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Shared counters of what reading cost (atomics; cheap to clone), for `-v` and the bench.
#[derive(Debug, Clone, Default)]
pub struct ParquetCounters(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    objects_listed: AtomicU64,
    files: AtomicU64,
    row_groups: AtomicU64,
    row_groups_read: AtomicU64,
    skipped_by_statistics: AtomicU64,
    skipped_by_bloom_filter: AtomicU64,
    bytes_read: AtomicU64,
    rows_read: AtomicU64,
}

impl ParquetCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> ParquetReadStats {
        let c = &self.0;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        ParquetReadStats {
            objects_listed: get(&c.objects_listed),
            files: get(&c.files),
            row_groups: get(&c.row_groups),
            row_groups_read: get(&c.row_groups_read),
            skipped_by_statistics: get(&c.skipped_by_statistics),
            skipped_by_bloom_filter: get(&c.skipped_by_bloom_filter),
            bytes_read: get(&c.bytes_read),
            rows_read: get(&c.rows_read),
        }
    }

    /// Counts `n` objects listed (by the caller that lists the files).
    pub fn listed(&self, n: u64) {
        self.add(|c| &c.objects_listed, n);
    }

    fn add(&self, counter: impl Fn(&Counts) -> &AtomicU64, n: u64) {
        counter(&self.0).fetch_add(n, Ordering::Relaxed);
    }
}

/// What reading Parquet files cost, counted by [`ParquetCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParquetReadStats {
    /// Objects the listings returned (files and others under the prefixes listed).
    pub objects_listed: u64,
    /// Files opened (their footer read, or tried).
    pub files: u64,
    /// Row groups in the footers read.
    pub row_groups: u64,
    /// Row groups whose rows were read.
    pub row_groups_read: u64,
    /// Row groups skipped by their statistics (arrival or archive time, partition key,
    /// sequence number).
    pub skipped_by_statistics: u64,
    /// Row groups skipped because the partition key's bloom filter does not hold the key.
    pub skipped_by_bloom_filter: u64,
    /// Bytes fetched from the sources (footers, bloom filters, row groups).
    pub bytes_read: u64,
    /// Rows decoded (before the selection's checks on each row).
    pub rows_read: u64,
}

/// How much of a file's end the first read takes: the footer of a batch file is a few KB,
/// so one read brings it, and a small file whole (its row groups are then read from it).
const TAIL_BYTES: u64 = 64 * 1024;

/// Ranges of one request closer than this are read as one (a few bytes more cost less than
/// a second GET).
const COALESCE_GAP: u64 = 1024 * 1024;

/// Decoded bytes per Arrow batch when reading, roughly: batches of small records have
/// 1,024 rows, of large ones fewer.
const BATCH_BYTES: i64 = 8 << 20;

/// A [`ByteSource`] as Parquet's async reader wants it, counting what it reads, serving
/// reads inside the file's tail (read once with the footer) from memory.
#[derive(Clone)]
struct SourceReader {
    source: Arc<dyn ByteSource>,
    counters: ParquetCounters,
    tail: Option<(u64, Bytes)>,
}

impl SourceReader {
    fn fetch(&self, range: Range<u64>) -> BoxFuture<'static, parquet::errors::Result<Bytes>> {
        if let Some((start, tail)) = &self.tail
            && range.start >= *start
            && range.end <= start + tail.len() as u64
        {
            let bytes = tail.slice((range.start - start) as usize..(range.end - start) as usize);
            return futures::future::ready(Ok(bytes)).boxed();
        }
        let wanted = range.end.saturating_sub(range.start);
        let read = self.source.read(range.clone());
        let counters = self.counters.clone();
        async move {
            let bytes = read
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            counters.add(|c| &c.bytes_read, bytes.len() as u64);
            if bytes.len() as u64 != wanted {
                return Err(ParquetError::EOF(format!(
                    "bytes {}..{} were asked for and {} came: the object is shorter than its \
                     listed size",
                    range.start,
                    range.end,
                    bytes.len()
                )));
            }
            Ok(bytes)
        }
        .boxed()
    }
}

impl AsyncFileReader for SourceReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.fetch(range)
    }

    /// Near ranges (a row group's column chunks) are read with one request.
    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            let mut fetched: Vec<(Range<u64>, Bytes)> = Vec::new();
            for merged in coalesce(&ranges, COALESCE_GAP) {
                let bytes = self.fetch(merged.clone()).await?;
                fetched.push((merged, bytes));
            }
            Ok(ranges
                .iter()
                .map(|range| {
                    let (merged, bytes) = fetched
                        .iter()
                        .find(|(m, _)| m.start <= range.start && range.end <= m.end)
                        .expect("every range is inside a merged one");
                    bytes.slice(
                        (range.start - merged.start) as usize..(range.end - merged.start) as usize,
                    )
                })
                .collect())
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.source.size();
            let tail = size.min(TAIL_BYTES);
            if tail > 0 {
                let bytes = self.fetch(size - tail..size).await?;
                self.tail = Some((size - tail, bytes));
            }
            let metadata = ParquetMetaDataReader::new()
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// `ranges` merged where they overlap or lie within `gap` bytes of each other, in order.
fn coalesce(ranges: &[Range<u64>], gap: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// An opened file: its metadata, checked against the contract, and where its columns are.
struct OpenFile {
    metadata: ArrowReaderMetadata,
    arrival: usize,
    archived: usize,
    key: usize,
    sequence: usize,
    sequence_digits: Option<usize>,
}

impl OpenFile {
    fn parquet(&self) -> &ParquetMetaData {
        self.metadata.metadata()
    }

    fn bounds<'a>(&self, row_group: &'a RowGroupMetaData) -> RowGroupBounds<'a> {
        RowGroupBounds {
            arrival: int_bounds(row_group, self.arrival),
            archived: int_bounds(row_group, self.archived),
            key: byte_bounds(row_group, self.key),
            sequence: byte_bounds(row_group, self.sequence),
        }
    }
}

fn int_bounds(row_group: &RowGroupMetaData, column: usize) -> Option<(i64, i64)> {
    match row_group.column(column).statistics()? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

fn byte_bounds(row_group: &RowGroupMetaData, column: usize) -> Option<(&[u8], &[u8])> {
    match row_group.column(column).statistics()? {
        Statistics::ByteArray(s) => Some((s.min_opt()?.data(), s.max_opt()?.data())),
        _ => None,
    }
}

/// Reads the footer and checks the file is one of ours.
async fn open(reader: &mut SourceReader) -> Result<OpenFile, String> {
    let metadata = reader.get_metadata(None).await.map_err(reason)?;
    let metadata =
        ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new()).map_err(reason)?;
    let parquet = metadata.metadata();
    let key_values: std::collections::HashMap<String, Option<String>> = parquet
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    schema::check(metadata.schema(), &key_values)?;
    let columns = parquet.file_metadata().schema_descr().columns();
    let leaf = |name: &str| {
        columns
            .iter()
            .position(|c| c.path().parts() == [name])
            .ok_or_else(|| format!("it has no column {name}: not a kinarch archive file"))
    };
    Ok(OpenFile {
        arrival: leaf(ARRIVAL)?,
        archived: leaf(ARCHIVED_AT)?,
        key: leaf(PARTITION_KEY)?,
        sequence: leaf(SEQUENCE_NUMBER)?,
        sequence_digits: key_values
            .get(META_SEQUENCE_DIGITS)
            .and_then(|v| v.as_deref()?.parse().ok()),
        metadata,
    })
}

/// What went wrong, for people: our own errors (a failed read) as they say it.
fn reason(error: ParquetError) -> String {
    match error {
        ParquetError::External(inner) => inner.to_string(),
        ParquetError::EOF(message) => format!("it is cut short ({message})"),
        other => format!("it is not a readable Parquet file ({other})"),
    }
}

fn file_error(location: &str, reason: String) -> Error {
    Error::ParquetFile {
        location: location.to_owned(),
        reason,
    }
}

/// The records of one file that `selection` keeps ([`Selection::matches`] applied to every
/// row), lazily, one row group at a time, in the file's row order. The footer is read with
/// ranged reads (one read of the file's last 64 KiB, which holds a batch file whole); row
/// groups whose statistics (arrival and archive time, partition key, sequence number when
/// every number of the file has one length: see the [module](super)) or whose
/// `partitionKey` bloom filter show they hold no selected row are not read at all. The
/// selection's limit, split and worker are the caller's.
///
/// A file that cannot be read or decoded (missing, cut short, not Parquet, not this
/// schema) is one item `Err(`[`Error::ParquetFile`]`)`, after the records read before it.
pub fn read_file(
    source: Arc<dyn ByteSource>,
    selection: Selection,
    counters: ParquetCounters,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    async_stream::stream! {
        let location = source.name();
        counters.add(|c| &c.files, 1);
        let mut reader = SourceReader {
            source,
            counters: counters.clone(),
            tail: None,
        };
        let file = match open(&mut reader).await {
            Ok(file) => file,
            Err(reason) => {
                yield Err(file_error(&location, reason));
                return;
            }
        };
        let row_groups = file.parquet().num_row_groups();
        counters.add(|c| &c.row_groups, row_groups as u64);
        let mut first_row = 0usize;
        let mut last_update = None;
        let mut records = Vec::new();
        for index in 0..row_groups {
            let row_group = file.parquet().row_group(index);
            let rows = usize::try_from(row_group.num_rows()).unwrap_or_default();
            let start = first_row;
            first_row += rows;
            if !prune::may_hold(&selection, &file.bounds(row_group), file.sequence_digits) {
                counters.add(|c| &c.skipped_by_statistics, 1);
                continue;
            }
            if let Some(key) = selection.partition_key() {
                let filter = Sbbf::read_from_column_chunk_async(row_group.column(file.key), &mut reader).await;
                match filter {
                    Ok(Some(filter)) if !filter.check(key) => {
                        counters.add(|c| &c.skipped_by_bloom_filter, 1);
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        yield Err(file_error(&location, reason(error)));
                        return;
                    }
                }
            }
            counters.add(|c| &c.row_groups_read, 1);
            let row_bytes = row_group.total_byte_size() / row_group.num_rows().max(1);
            let batch_rows = (BATCH_BYTES / row_bytes.max(1)).clamp(1, 1024) as usize;
            let built = ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), file.metadata.clone())
                .with_row_groups(vec![index])
                .with_batch_size(batch_rows)
                .build();
            let mut batches = match built {
                Ok(batches) => batches,
                Err(error) => {
                    yield Err(file_error(&location, reason(error)));
                    return;
                }
            };
            let mut batch_start = start;
            while let Some(batch) = batches.next().await {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(error) => {
                        yield Err(file_error(&location, reason(error)));
                        return;
                    }
                };
                counters.add(|c| &c.rows_read, batch.num_rows() as u64);
                if let Err(reason) = decode(&batch, batch_start, &selection, &mut last_update, &mut records) {
                    yield Err(file_error(&location, reason));
                    return;
                }
                batch_start += batch.num_rows();
                for record in records.drain(..) {
                    yield Ok(record);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_ranges_are_read_together() {
        assert_eq!(
            coalesce(&[10..20, 0..5, 22..30, 5_000..6_000], 3),
            [0..5, 10..30, 5_000..6_000]
        );
        let inside = coalesce(&[0..10, 2..4], 0);
        assert_eq!((inside.len(), &inside[0]), (1, &(0..10)));
        assert!(coalesce(&[], 5).is_empty());
    }
}
