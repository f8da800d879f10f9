//! Reading an archive: look records up by key ([`ArchiveReader::query`]) or go through the whole
//! table ([`ArchiveReader::scan`]).
//!
//! Both return a lazy stream of records: a page is fetched from DynamoDB only when the
//! consumer has taken the previous one, so memory stays at one page (at most 1 MB) per scan
//! segment however large the table, and dropping the stream stops the reads.
//!
//! # Sequence numbers compare numerically
//! The table stores `sequenceNumber` as a string, and DynamoDB orders strings byte by byte,
//! so `"10" < "9"`: a plain key condition `sequenceNumber BETWEEN :from AND :to` would
//! return the wrong records whenever sequence numbers differ in length (emulators issue
//! `"9"`, `"10"`; nothing in the Kinesis API promises a fixed length). So:
//! - **Query** narrows the key condition only when that is provably safe, and the numeric
//!   comparison in Rust ([`SequenceRange::contains`], i.e. [`SequenceNumber`]'s order)
//!   decides. The safe narrowing: when `from` and `to` have the same number of digits `n`,
//!   every number between them numerically also has `n` digits, and among `n`-digit strings
//!   string order is numeric order, so `BETWEEN :from AND :to` returns a superset of the
//!   matches (other-length strings inside the string range are dropped in Rust). AWS issues
//!   sequence numbers of equal length today, so this is the common case. With one bound, or
//!   bounds of different lengths, the key condition names the partition key only. (A filter
//!   expression cannot help: DynamoDB refuses filters on key attributes in a Query.)
//! - **Scan** sends an exact numeric filter built on `size()` (a longer number is larger;
//!   equal lengths compare as strings), so non-matching items are not transferred, and
//!   checks again in Rust. For user records of KPL containers (range key
//!   `<sequence>.<sub-sequence>`, longer than the sequence number, see
//!   [`crate::domain::kpl`]) the filter lets a superset through, which the check in Rust
//!   narrows; a query's key condition likewise reaches up to `<to>:` so that the user
//!   records of the container `to` are inside it.
//!
//! Records come in the table's order: for a query, sort-key (string) order, which is
//! numeric order when all sequence numbers of the key have the same length; a scan has no
//! useful order, except an arrival window read through the time index ([`time_index`]),
//! which comes in arrival order.
//!
//! # Payloads in S3
//! A record too large for an item may have its payload in the stream's overflow bucket
//! (see [`crate::domain::overflow`]). The reader fetches it transparently, in stream order,
//! at most [`FETCH_AHEAD`] payloads ahead of the consumer, so memory stays at a few
//! payloads however many there are. [`ArchiveReader::without_fetch`] leaves them in S3:
//! such records then come with [`Payload::Stored`](crate::domain::record::Payload).
//!
//! # Errors in the stream
//! An `Err` holding [`Error::Item`] reports one item that does not follow the table contract,
//! and [`Error::PayloadUnavailable`] one payload that could not be fetched (naming its
//! location); the stream goes on with the next item ([`Error::is_per_record`]). Any other
//! `Err` (the table is missing, an AWS call failed after retries) is the last item of the
//! stream.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use async_stream::stream;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::Client as KinesisClient;
use aws_smithy_types::retry::ProvideErrorKind;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::item::{Item, attr};
use crate::aws::objects::ObjectStore;
use crate::aws::streams::{list_shards, read_configured_stream_config};
use crate::aws::tables::{TableInfo, describe_table};
use crate::aws::{aws_error_with, region_of, send_with_retries};
use crate::domain::config::{ArchiveMode, StreamArchiveConfig};
use crate::domain::names::{StreamName, TableName};
use crate::domain::record::{ArchiveRecord, Payload, format_last_update};

pub mod locate;
pub mod time_index;

use crate::domain::sequence::{REORDER_WINDOW, SequenceNumber};
use crate::domain::timefmt::epoch_seconds_text;
use crate::error::Error;
use crate::setup::archive_table_mismatch;
use locate::{Located, TableOwner, stream_unreadable};

/// A stream of archived records, as [`ArchiveReader::read`] returns it.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<ArchiveRecord, Error>> + Send>>;

/// The longest a Kinesis partition key can be, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// The most scan segments accepted (DynamoDB allows 1,000,000; each segment is a request
/// in flight and a page in memory, so more than this would only hurt).
pub const MAX_SEGMENTS: u32 = 1000;

/// Overflowed payloads a reader fetches ahead of its consumer at most: enough to hide S3's
/// latency, few enough that a scan of 1 MiB payloads stays within a few MiB.
pub const FETCH_AHEAD: usize = 4;

/// How long one page is retried on throttling and 5xx answers, on top of the SDK's own
/// three attempts, before the read gives up.
const PAGE_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// An inclusive range of sequence numbers; a missing bound is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceRange {
    /// Lowest sequence number included.
    pub from: Option<SequenceNumber>,
    /// Highest sequence number included.
    pub to: Option<SequenceNumber>,
}

impl SequenceRange {
    /// Whether `sequence` lies in the range, comparing numerically.
    pub fn contains(&self, sequence: &SequenceNumber) -> bool {
        self.from.as_ref().is_none_or(|from| sequence >= from)
            && self.to.as_ref().is_none_or(|to| sequence <= to)
    }

    /// The one sequence number the range holds, when `from == to`.
    pub fn single(&self) -> Option<&SequenceNumber> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from == to => Some(from),
            _ => None,
        }
    }

    /// A range with `from` after `to` can hold nothing; most likely the bounds were swapped.
    fn check(&self) -> Result<(), Error> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from > to => Err(Error::InvalidInput(format!(
                "the range is empty: from {from} is after to {to} (sequence numbers compare \
                 numerically); swap the bounds"
            ))),
            _ => Ok(()),
        }
    }
}

/// What [`ArchiveReader::query`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// The records' partition key (1 to 256 characters).
    pub partition_key: String,
    /// Lowest sequence number included (numeric order).
    pub from: Option<SequenceNumber>,
    /// Highest sequence number included (numeric order). `from == to` reads one record.
    pub to: Option<SequenceNumber>,
    /// At most this many records in total, across pages. `Some(0)` reads nothing.
    pub limit: Option<usize>,
    /// Items per DynamoDB request (`Limit`); default: as many as fit in 1 MB, or `limit`
    /// when every item read is sure to be returned (no sequence bounds).
    pub page_size: Option<u32>,
    /// Only records that reached Kinesis in this window (checked on the records read: a
    /// key's records are read whole, by its sequence bounds).
    pub arrived: ArrivalWindow,
}

/// Arrival times (`approximateArrivalTimestamp`) a selection keeps: from `after`
/// (inclusive) to `before` (exclusive), so that consecutive windows never share a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArrivalWindow {
    /// Only records that arrived at or after this time.
    pub after: Option<DateTime<Utc>>,
    /// Only records that arrived before this time.
    pub before: Option<DateTime<Utc>>,
}

impl ArrivalWindow {
    fn bounds(&self) -> (Option<ExactTime>, Option<ExactTime>) {
        (self.after.map(exact_epoch), self.before.map(exact_epoch))
    }
}

/// A time as the exact decimal DynamoDB compares, and the same number as `f64` for Rust.
type ExactTime = (String, f64);

/// See [`ExactTime`].
fn exact_epoch(time: DateTime<Utc>) -> ExactTime {
    let text = epoch_seconds_text(time);
    let number = text.parse::<f64>().unwrap_or(f64::INFINITY);
    (text, number)
}

/// Whether `arrival` is within `[after, before)`. Rounding a decimal to `f64` is
/// monotonic, so this never refuses an item that DynamoDB's exact comparison accepted.
fn arrived_within(
    arrival: f64,
    after: &Option<(String, f64)>,
    before: &Option<(String, f64)>,
) -> bool {
    after.as_ref().is_none_or(|(_, after)| arrival >= *after)
        && before.as_ref().is_none_or(|(_, before)| arrival < *before)
}

impl QueryOptions {
    /// Every record of `partition_key`.
    pub fn key(partition_key: impl Into<String>) -> Self {
        Self {
            partition_key: partition_key.into(),
            ..Self::default()
        }
    }

    /// Only records from this sequence number on (inclusive).
    pub fn from(mut self, from: SequenceNumber) -> Self {
        self.from = Some(from);
        self
    }

    /// Only records up to this sequence number (inclusive).
    pub fn to(mut self, to: SequenceNumber) -> Self {
        self.to = Some(to);
        self
    }

    /// At most `limit` records.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    fn range(&self) -> SequenceRange {
        SequenceRange {
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }
}

/// What [`ArchiveReader::scan`] reads. All filters given apply together (AND); every filter is
/// inclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOptions {
    /// Only records with at least this sequence number (numeric order).
    pub from_sequence: Option<SequenceNumber>,
    /// Only records with at most this sequence number (numeric order).
    pub to_sequence: Option<SequenceNumber>,
    /// Only records archived at or after this time (`lastUpdate`, which has whole-second
    /// resolution: the time is rounded down to its second).
    pub archived_after: Option<DateTime<Utc>>,
    /// Only records that reached Kinesis at or after this time
    /// (`approximateArrivalTimestamp`).
    pub arrived_after: Option<DateTime<Utc>>,
    /// Only records archived before this time (exclusive). `lastUpdate` has whole seconds:
    /// a record archived in the second of a fractional `archived_before` is kept, since it
    /// may have been archived before it (the time is rounded up to its second).
    pub archived_before: Option<DateTime<Utc>>,
    /// Only records that reached Kinesis before this time (exclusive).
    pub arrived_before: Option<DateTime<Utc>>,
    /// At most this many records in total. `Some(0)` reads nothing.
    pub limit: Option<usize>,
    /// Parallel scan over this many segments (1 to [`MAX_SEGMENTS`]); `0` and `1` mean a
    /// plain scan. Faster on large tables, and costs the same reads.
    pub segments: u32,
    /// Items per DynamoDB request (`Limit`, counted before filtering).
    pub page_size: Option<u32>,
    /// Read only this segment of the table's parallel scan, for one of several workers
    /// (`--segment I/N`); then [`ScanOptions::segments`] must be 1. With the time index, a
    /// share of the shards instead (see [`time_index`]).
    pub worker: Option<WorkerSegment>,
    /// Whether an arrival window is read through the table's time index when it has an
    /// ACTIVE one (the default), or always with a Scan.
    pub time_index: TimeIndexUse,
}

/// Whether [`ArchiveReader::scan`] reads an arrival window through the time index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeIndexUse {
    /// Through the index when the table has an ACTIVE one and the stream's shards can be
    /// listed; a Scan otherwise (logged at info level, `-v`, with the reason).
    #[default]
    WhenPresent,
    /// Always a Scan (`--no-time-index`).
    Never,
}

/// What the reads of one [`ArchiveReader`] (and its clones) cost so far: DynamoDB requests
/// and the items they read (`ScannedCount`, before filters: what read capacity is charged
/// for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Scan, Query and GetItem requests answered.
    pub requests: u64,
    /// Items those requests read.
    pub items_read: u64,
}

#[derive(Debug, Default)]
struct ReadCounters {
    requests: AtomicU64,
    items_read: AtomicU64,
}

impl ReadCounters {
    fn count(&self, items_read: u64) {
        self.requests.fetch_add(1, AtomicOrdering::Relaxed);
        self.items_read
            .fetch_add(items_read, AtomicOrdering::Relaxed);
    }
}

/// Segment `index` of `total` of a DynamoDB parallel scan: the share of one worker of
/// many (AWS Batch array jobs, ECS tasks, a Step Functions Map). DynamoDB places each
/// partition key in exactly one segment, so a key's records are all read by one worker, in
/// order, and the workers' segments together are the whole table, each item once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSegment {
    index: u32,
    total: u32,
}

/// DynamoDB's largest `TotalSegments`.
pub const MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

impl WorkerSegment {
    /// Segment `index` of `total`: `0 <= index < total <= 1,000,000`.
    pub fn new(index: u32, total: u32) -> Result<Self, Error> {
        if total == 0 || total > MAX_TOTAL_SEGMENTS || index >= total {
            return Err(Error::InvalidInput(format!(
                "segment {index}/{total} does not exist: give I/N with 0 <= I < N <= \
                 {MAX_TOTAL_SEGMENTS} (segments count from 0)"
            )));
        }
        Ok(Self { index, total })
    }

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::InvalidInput(format!(
                "invalid segment {text:?}: give I/N, e.g. 0/4 for the first of 4 workers"
            ))
        };
        let (index, total) = text.trim().split_once('/').ok_or_else(invalid)?;
        let number = |t: &str| t.trim().parse::<u32>().map_err(|_| invalid());
        Self::new(number(index)?, number(total)?)
    }

    /// Which segment (from 0).
    pub fn index(self) -> u32 {
        self.index
    }

    /// Of how many.
    pub fn total(self) -> u32 {
        self.total
    }
}

impl std::fmt::Display for WorkerSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// How to select records: by key or over the whole table. Handy for tools that take either
/// (the CLI's `reinject`).
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// [`ArchiveReader::query`].
    Query(QueryOptions),
    /// [`ArchiveReader::scan`].
    Scan(ScanOptions),
}

/// The stream archive of one stream: its configuration and a DynamoDB client. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ArchiveReader {
    dynamodb: DynamoDbClient,
    /// For the shard list of a time-index read.
    kinesis: KinesisClient,
    counters: Arc<ReadCounters>,
    /// `None`: payloads in S3 are not fetched ([`Self::without_fetch`]).
    objects: Option<ObjectStore>,
    config: StreamArchiveConfig,
    region: String,
    owner: TableOwner,
}

impl ArchiveReader {
    /// Opens the archive of `stream`, reading its configuration from the stream's tags.
    ///
    /// Fails with [`Error::StreamNotFound`] for an unknown stream and with
    /// [`Error::StreamNotConfigured`] for a stream that has no `StreamArchiveMode` tag. The
    /// table is not checked here: a missing table shows as [`Error::TableNotFound`] on the
    /// first read.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::read::ArchiveReader;
    /// use kinarch_core::aws::{AwsOptions, load_sdk_config};
    /// use kinarch_core::StreamName;
    ///
    /// let sdk = load_sdk_config(&AwsOptions::default()).await;
    /// let archive = ArchiveReader::open(&sdk, StreamName::new("orders")?).await?;
    /// println!("{} mode, table {}", archive.config().mode, archive.config().table);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(sdk: &SdkConfig, stream: StreamName) -> Result<Self, Error> {
        let kinesis = aws_sdk_kinesis::Client::new(sdk);
        let config = read_configured_stream_config(&kinesis, &stream).await?;
        Ok(Self::with_config(sdk, config))
    }

    /// Opens the archive of `stream` wherever it can be found: the table `table` when given,
    /// else the one the stream's tags name, else, when the stream is gone or its tags cannot
    /// be read, the one of the default names that exists (see [`locate`]). Also says how the
    /// table was found, so a caller can tell people that the stream is gone, and whose
    /// archive the table's tag says it is ([`ArchiveReader::owner`]). A table tagged as the
    /// archive of another stream is refused ([`Error::ArchiveOfAnotherStream`]) unless
    /// `force`.
    ///
    /// ```no_run
    /// # async fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::StreamName;
    /// use kinarch_core::read::{ArchiveReader, locate::Located};
    ///
    /// let (archive, located) =
    ///     ArchiveReader::locate(&sdk, StreamName::new("orders")?, None, false).await?;
    /// if let Located::WithoutStream { reason } = located {
    ///     eprintln!("note: {reason}; reading table {}", archive.config().table);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn locate(
        sdk: &SdkConfig,
        stream: StreamName,
        table: Option<&TableName>,
        force: bool,
    ) -> Result<(Self, Located), Error> {
        let kinesis = aws_sdk_kinesis::Client::new(sdk);
        let dynamodb = DynamoDbClient::new(sdk);
        let found =
            locate::locate(&kinesis, &dynamodb, &region_of(sdk), &stream, table, force).await?;
        let mut reader = Self::with_config(sdk, found.config);
        reader.owner = found.owner;
        Ok((reader, found.located))
    }

    /// Whose archive the table's tag says it is; [`TableOwner::Unknown`] when the reader
    /// was not made by [`ArchiveReader::locate`].
    pub fn owner(&self) -> &TableOwner {
        &self.owner
    }

    /// An archive whose configuration the caller knows (no Kinesis call), e.g. a table
    /// made by the original archiver for a stream that no longer exists.
    ///
    /// ```no_run
    /// # fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::read::ArchiveReader;
    /// use kinarch_core::{ArchiveMode, StreamArchiveConfig, StreamName, TableName};
    ///
    /// let mut config = StreamArchiveConfig::new(StreamName::new("orders")?, ArchiveMode::All, None);
    /// config.table = TableName::new("orders-archive-all")?;
    /// let archive = ArchiveReader::with_config(&sdk, config);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_config(sdk: &SdkConfig, config: StreamArchiveConfig) -> Self {
        Self {
            dynamodb: DynamoDbClient::new(sdk),
            kinesis: KinesisClient::new(sdk),
            counters: Arc::default(),
            objects: Some(ObjectStore::new(sdk)),
            config,
            region: region_of(sdk),
            owner: TableOwner::Unknown,
        }
    }

    /// The reader without fetching payloads from S3 (`--no-fetch`): overflowed records come
    /// with their location ([`Payload::Stored`]) and no bytes, and no S3 permission is
    /// needed.
    pub fn without_fetch(mut self) -> Self {
        self.objects = None;
        self
    }

    /// The stream's archive configuration (mode, table, TTL).
    pub fn config(&self) -> &StreamArchiveConfig {
        &self.config
    }

    /// What this reader and its clones have read so far.
    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            requests: self.counters.requests.load(AtomicOrdering::Relaxed),
            items_read: self.counters.items_read.load(AtomicOrdering::Relaxed),
        }
    }

    /// The records of one partition key, optionally between two sequence numbers.
    ///
    /// - `from == to`: that one record (GetItem).
    /// - one bound: an open range; both: a closed range; none: every record of the key.
    /// - LATEST tables hold one record per key: it is returned only if it is in range.
    ///
    /// See the [module documentation](self) for how the bounds compare numerically and how
    /// errors appear in the stream.
    ///
    /// ```no_run
    /// # async fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use futures::TryStreamExt;
    /// use kinarch_core::read::{ArchiveReader, QueryOptions};
    /// use kinarch_core::{SequenceNumber, StreamName};
    ///
    /// let archive = ArchiveReader::open(&sdk, StreamName::new("orders")?).await?;
    /// let options = QueryOptions::key("customer-42")
    ///     .from(SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")?)
    ///     .limit(100);
    /// let mut records = std::pin::pin!(archive.query(options));
    /// while let Some(record) = records.try_next().await? {
    ///     println!("{} {} bytes", record.sequence_number, record.data.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn query(
        &self,
        options: QueryOptions,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = options.limit;
        let inner = stream! {
            let range = options.range();
            let (after, before) = options.arrived.bounds();
            let keep = |r: &ArchiveRecord| {
                range.contains(&r.sequence_number)
                    && arrived_within(r.approximate_arrival_timestamp, &after, &before)
            };
            if let Err(err) = check_partition_key(&options.partition_key).and(range.check()) {
                yield Err(err);
                return;
            }
            if let Err(err) = archive.check_table().await {
                yield Err(err);
                return;
            }
            // What to query after the plan's first step, if anything: the key condition's
            // string range and the page size.
            let query = match plan_query(archive.config.mode, &range) {
                QueryRead::Get { sequence } => {
                    match archive.get(&options.partition_key, sequence.as_ref()).await {
                        Ok(Some(item)) => {
                            if let Some(result) = convert(&item, keep) {
                                yield result;
                            }
                            None
                        }
                        // No plain record under that sequence number: the user records of a
                        // KPL container with it, if any (range keys `<sequence>.<sub-sequence>`,
                        // see crate::domain::kpl).
                        Ok(None) => sequence
                            .filter(|_| archive.config.mode == ArchiveMode::All)
                            .map(|s| (Some(container_range(&s, &s)), page_limit(options.page_size, false, limit))),
                        Err(err) => {
                            yield Err(err);
                            None
                        }
                    }
                }
                QueryRead::Query { between, exact } => Some((
                    between.map(|(low, high)| container_range(&low, &high)),
                    page_limit(options.page_size, exact, limit),
                )),
            };
            if let Some((between, page)) = query {
                let mut pages = std::pin::pin!(archive.query_pages(options.partition_key.clone(), between, page));
                while let Some(page) = pages.next().await {
                    match page {
                        Ok(items) => {
                            for item in &items {
                                if let Some(result) = convert(item, keep) {
                                    yield result;
                                }
                            }
                        }
                        Err(err) => yield Err(err),
                    }
                }
            }
        };
        // The first `limit` records the table returns (as a replay of the same selection
        // reads them), put in numeric order as the replay sends them, then their payloads.
        resolve(
            self.objects.clone(),
            in_sequence_order(cap(inner, limit), REORDER_WINDOW, REORDER_BYTES),
        )
    }

    /// Every record of the table that passes all the given filters, optionally read by a
    /// parallel scan whose segments are merged into one stream.
    ///
    /// See the [module documentation](self) for how errors appear in the stream.
    ///
    /// ```no_run
    /// # async fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use futures::StreamExt;
    /// use kinarch_core::read::{ArchiveReader, ScanOptions};
    /// use kinarch_core::domain::timefmt::parse_time;
    /// use kinarch_core::{Error, StreamName};
    ///
    /// let archive = ArchiveReader::open(&sdk, StreamName::new("orders")?).await?;
    /// let options = ScanOptions {
    ///     arrived_after: Some(parse_time("2024-05-01T00:00:00Z")?),
    ///     segments: 4,
    ///     ..ScanOptions::default()
    /// };
    /// let mut records = std::pin::pin!(archive.scan(options));
    /// while let Some(result) = records.next().await {
    ///     match result {
    ///         Ok(record) => println!("{}/{}", record.partition_key, record.sequence_number),
    ///         Err(Error::Item(bad)) => eprintln!("skipped: {bad}"),
    ///         Err(other) => return Err(other),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn scan(
        &self,
        options: ScanOptions,
    ) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
        let archive = self.clone();
        let limit = options.limit;
        let inner = stream! {
            if options.segments > MAX_SEGMENTS {
                yield Err(Error::InvalidInput(format!(
                    "{} scan segments asked for; use 1 to {MAX_SEGMENTS}",
                    options.segments
                )));
                return;
            }
            let table = match archive.check_table().await {
                Ok(table) => table,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            if options.worker.is_some() && options.segments > 1 {
                yield Err(Error::InvalidInput(
                    "a worker's segment (--segment I/N) is read as one scan: leave out --segments"
                        .into(),
                ));
                return;
            }
            let filter = ScanFilter::new(&options);
            match archive.index_read(table.as_ref(), &options).await {
                Ok(Some((index, shards))) => {
                    let expression = filter.expression(KeyFilters::Excluded);
                    let page = options.page_size.map_or(time_index::PAGE_ITEMS, |size| {
                        size.clamp(1, i32::MAX as u32) as i32
                    });
                    let readers: Vec<RecordStream> = shards
                        .into_iter()
                        .map(|shard| {
                            archive.clone().query_shard(
                                index.clone(),
                                shard,
                                filter.clone(),
                                expression.clone(),
                                page,
                            )
                        })
                        .collect();
                    let mut merged = merge_by_arrival(readers);
                    while let Some(result) = merged.next().await {
                        yield result;
                    }
                    return;
                }
                Ok(None) => {}
                Err(err) => {
                    yield Err(err);
                    return;
                }
            }
            let segments = options.segments.max(1);
            let expression = filter.expression(KeyFilters::Included);
            let page = page_limit(options.page_size, expression.is_none(), limit);
            let parts: Vec<Option<(u32, u32)>> = match options.worker {
                Some(worker) => vec![Some((worker.index(), worker.total()))],
                None => (0..segments)
                    .map(|segment| (segments > 1).then_some((segment, segments)))
                    .collect(),
            };
            let readers: Vec<RecordStream> = parts
                .into_iter()
                .map(|part| {
                    archive.clone().scan_segment(filter.clone(), expression.clone(), part, page)
                })
                .collect();
            let mut merged = futures::stream::select_all(readers);
            while let Some(result) = merged.next().await {
                yield result;
            }
        };
        cap(resolve(self.objects.clone(), inner), limit)
    }

    /// [`Self::query`] or [`Self::scan`], boxed.
    ///
    /// ```no_run
    /// # async fn example(archive: kinarch_core::read::ArchiveReader) {
    /// use futures::StreamExt;
    /// use kinarch_core::read::{QueryOptions, Selection};
    ///
    /// let mut records = archive.read(Selection::Query(QueryOptions::key("customer-42")));
    /// while let Some(record) = records.next().await {
    ///     println!("{:?}", record.map(|r| r.sequence_number));
    /// }
    /// # }
    /// ```
    pub fn read(&self, selection: Selection) -> RecordStream {
        match selection {
            Selection::Query(options) => Box::pin(self.query(options)),
            Selection::Scan(options) => Box::pin(self.scan(options)),
        }
    }

    fn table_not_found(&self) -> Error {
        Error::TableNotFound {
            table: self.config.table.clone(),
            stream: self.config.stream.clone(),
            mode: self.config.mode,
            region: self.region.clone(),
        }
    }

    /// Refuses a table whose key schema does not fit the mode ([`Error::KeySchemaMismatch`]:
    /// its queries would fail with a ValidationException and its scans read records of
    /// another layout) and a missing one ([`Error::TableNotFound`]), with one DescribeTable
    /// before the first read. Optional: when DescribeTable itself fails (a policy without
    /// it, a passing fault), the reads go on and report what they meet.
    async fn check_table(&self) -> Result<Option<TableInfo>, Error> {
        match describe_table(&self.dynamodb, &self.config.table).await {
            Ok(None) => Err(self.table_not_found()),
            Ok(Some(info)) if !info.key_schema.fits(self.config.mode) => {
                Err(archive_table_mismatch(&info, &self.config, &self.region))
            }
            Ok(Some(info)) => Ok(Some(info)),
            Err(err) => {
                tracing::debug!(table = %self.config.table, error = %err, "the table's key schema could not be checked; reading anyway");
                Ok(None)
            }
        }
    }

    /// The time index and the shards to query for `options`, or `None` (with the reason
    /// logged) for a Scan. An error listing the shards that is not "the stream is gone or
    /// unreadable" fails the read: falling back then would make workers of one replay
    /// split the work two different ways.
    async fn index_read(
        &self,
        table: Option<&TableInfo>,
        options: &ScanOptions,
    ) -> Result<Option<(String, Vec<String>)>, Error> {
        let window = options.arrived_after.is_some() || options.arrived_before.is_some();
        if !window {
            return Ok(None);
        }
        if options.time_index == TimeIndexUse::Never {
            tracing::info!(table = %self.config.table, "--no-time-index: scanning the whole table for the arrival window");
            return Ok(None);
        }
        let table_name = &self.config.table;
        let index = match table.and_then(TableInfo::time_index) {
            Some(index) if index.is_active() => index.name.clone(),
            Some(index) => {
                tracing::info!(table = %table_name, index = %index.name, status = %index.status, backfilling = index.backfilling, "the time index is not ready: scanning the whole table for the arrival window");
                return Ok(None);
            }
            None => {
                tracing::info!(table = %table_name, "no time index (kinarch setup --time-index adds one): scanning the whole table for the arrival window");
                return Ok(None);
            }
        };
        let listed = match list_shards(&self.kinesis, &self.config.stream, None).await {
            Ok(listed) => listed,
            Err(err) if stream_unreadable(&err) => {
                tracing::info!(stream = %self.config.stream, error = %err, "the stream's shards cannot be listed, so the time index cannot be queried: scanning the whole table for the arrival window");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let shards = match options.worker {
            None => time_index::shards_to_query(&listed),
            Some(worker) => {
                let groups = time_index::shard_groups(&listed);
                let shards = time_index::shards_of_worker(&groups, worker.index(), worker.total());
                tracing::info!(segment = %worker, groups = groups.len(), shards = shards.len(), "with the time index, --segment splits by shard: this worker reads its share of the shard groups");
                shards
            }
        };
        tracing::info!(table = %table_name, %index, shards = shards.len(), "reading the arrival window through the time index: a Query per shard, merged by arrival time");
        Ok(Some((index, shards)))
    }

    fn read_error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if kind_of(&err) == AwsErrorKind::NotFound {
            self.table_not_found()
        } else {
            let table = &self.config.table;
            aws_error_with(operation, err, |description| {
                format!("on table {table}: {description}")
            })
        }
    }

    /// GetItem by partition key, plus the sequence number on ALL tables.
    async fn get(
        &self,
        partition_key: &str,
        sequence: Option<&SequenceNumber>,
    ) -> Result<Option<Item>, Error> {
        let mut call = self
            .dynamodb
            .get_item()
            .table_name(self.config.table.as_str())
            .key(
                attr::PARTITION_KEY,
                AttributeValue::S(partition_key.to_owned()),
            );
        if let Some(sequence) = sequence {
            call = call.key(
                attr::SEQUENCE_NUMBER,
                AttributeValue::S(sequence.as_str().to_owned()),
            );
        }
        let output = send_with_retries(
            PAGE_RETRY_BUDGET,
            || call.clone().send(),
            |e| self.read_error("DynamoDB.GetItem", e),
        )
        .await?;
        self.counters.count(u64::from(output.item.is_some()));
        Ok(output.item)
    }

    /// Query pages of one partition key, optionally narrowed to a string range.
    fn query_pages(
        &self,
        partition_key: String,
        between: Option<(String, String)>,
        page: Option<i32>,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static {
        let mut call = self
            .dynamodb
            .query()
            .table_name(self.config.table.as_str())
            .expression_attribute_names("#pk", attr::PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(partition_key))
            .set_limit(page);
        call = match &between {
            Some((low, high)) => call
                .key_condition_expression("#pk = :pk AND #seq BETWEEN :low AND :high")
                .expression_attribute_names("#seq", attr::SEQUENCE_NUMBER)
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone())),
            None => call.key_condition_expression("#pk = :pk"),
        };
        self.clone().query_call_pages(call)
    }

    /// Every page of a Query (of the table or of the time index).
    fn query_call_pages(
        self,
        call: QueryFluentBuilder,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static {
        let archive = self.clone();
        self.paginate(move |start| {
            let request = call.clone().set_exclusive_start_key(start);
            let archive = archive.clone();
            async move {
                let output = send_with_retries(
                    PAGE_RETRY_BUDGET,
                    || request.clone().send(),
                    |e| archive.read_error("DynamoDB.Query", e),
                )
                .await?;
                Ok((
                    output.items.unwrap_or_default(),
                    output.scanned_count,
                    output.last_evaluated_key,
                ))
            }
        })
    }

    /// Follows a paginated read to its end: `fetch(start)` reads the page from `start`
    /// (retried) and gives its items, how many items it read (`ScannedCount`, counted in
    /// [`Self::read_stats`]) and where the next page begins. A missing or empty
    /// `LastEvaluatedKey` is the last page; an error is the stream's last item.
    fn paginate<F, Fut>(
        self,
        mut fetch: F,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static
    where
        F: FnMut(Option<Item>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Vec<Item>, i32, Option<Item>), Error>> + Send,
    {
        stream! {
            let mut start: Option<Item> = None;
            loop {
                match fetch(start.take()).await {
                    Ok((items, scanned, next)) => {
                        self.counters.count(scanned.max(0) as u64);
                        start = next.filter(|k| !k.is_empty());
                        yield Ok(items);
                        if start.is_none() {
                            return;
                        }
                    }
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                }
            }
        }
    }

    /// The records of one shard in the arrival window, through the time index, in
    /// [`time_index::arrival_order`]. The window is the key condition (its upper bound is
    /// exclusive, so `BETWEEN` lets the bound itself through and Rust drops it); the other
    /// filters go in a filter expression that names no key attribute (DynamoDB refuses
    /// those in a Query) and are checked again in Rust.
    fn query_shard(
        self,
        index: String,
        shard: String,
        filter: ScanFilter,
        expression: Option<FilterExpression>,
        page: i32,
    ) -> RecordStream {
        Box::pin(stream! {
            let mut call = self
                .dynamodb
                .query()
                .table_name(self.config.table.as_str())
                .index_name(index)
                .limit(page)
                .expression_attribute_names("#sid", attr::SHARD_ID)
                .expression_attribute_names("#aat", attr::APPROXIMATE_ARRIVAL_TIMESTAMP)
                .expression_attribute_values(":sid", AttributeValue::S(shard.clone()));
            let condition = match (&filter.arrived_after, &filter.arrived_before) {
                (Some((after, _)), Some((before, _))) => {
                    call = call
                        .expression_attribute_values(":after", AttributeValue::N(after.clone()))
                        .expression_attribute_values(":before", AttributeValue::N(before.clone()));
                    "#sid = :sid AND #aat BETWEEN :after AND :before"
                }
                (Some((after, _)), None) => {
                    call = call.expression_attribute_values(":after", AttributeValue::N(after.clone()));
                    "#sid = :sid AND #aat >= :after"
                }
                (None, Some((before, _))) => {
                    call = call.expression_attribute_values(":before", AttributeValue::N(before.clone()));
                    "#sid = :sid AND #aat < :before"
                }
                (None, None) => "#sid = :sid",
            };
            call = call.key_condition_expression(condition);
            if let Some(expression) = expression {
                call = call.filter_expression(expression.text);
                for (name, value) in expression.names {
                    call = call.expression_attribute_names(name, value);
                }
                for (name, value) in expression.values {
                    call = call.expression_attribute_values(name, value);
                }
            }
            let mut order = time_index::TieOrder::default();
            let mut pages = std::pin::pin!(self.query_call_pages(call));
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                };
                let mut records = Vec::new();
                for item in page {
                    match convert(&item, |r| filter.matches(r)) {
                        Some(Ok(record)) => records.push(record),
                        Some(Err(err)) => yield Err(err),
                        None => {}
                    }
                }
                for record in order.page(records) {
                    yield Ok(record);
                }
            }
            for record in order.finish() {
                yield Ok(record);
            }
        })
    }

    /// The records of one scan segment (or of the whole table when `segment` is `None`).
    fn scan_segment(
        self,
        filter: ScanFilter,
        expression: Option<FilterExpression>,
        segment: Option<(u32, u32)>,
        page: Option<i32>,
    ) -> RecordStream {
        Box::pin(stream! {
            let mut call = self
                .dynamodb
                .scan()
                .table_name(self.config.table.as_str())
                .set_limit(page);
            if let Some((segment, total)) = segment {
                call = call.segment(segment as i32).total_segments(total as i32);
            }
            if let Some(expression) = expression {
                call = call
                    .filter_expression(expression.text)
                    .set_expression_attribute_names(Some(expression.names))
                    .set_expression_attribute_values(Some(expression.values));
            }
            let archive = self.clone();
            let mut pages = std::pin::pin!(self.paginate(move |start| {
                let request = call.clone().set_exclusive_start_key(start);
                let archive = archive.clone();
                async move {
                    let output = send_with_retries(PAGE_RETRY_BUDGET, || request.clone().send(), |e| archive.read_error("DynamoDB.Scan", e)).await?;
                    Ok((output.items.unwrap_or_default(), output.scanned_count, output.last_evaluated_key))
                }
            }));
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                };
                for item in page {
                    if let Some(result) = convert(&item, |r| filter.matches(r)) {
                        yield result;
                    }
                }
            }
        })
    }
}

/// Merges per-shard streams, each in [`time_index::arrival_order`], into one in that
/// order, holding one record per shard. An item error passes through at once; any other
/// error ends the stream.
fn merge_by_arrival(mut shards: Vec<RecordStream>) -> RecordStream {
    Box::pin(stream! {
        let mut heads: Vec<Option<ArchiveRecord>> = shards.iter().map(|_| None).collect();
        let mut ended = vec![false; shards.len()];
        loop {
            for (i, shard) in shards.iter_mut().enumerate() {
                while heads[i].is_none() && !ended[i] {
                    match shard.next().await {
                        Some(Ok(record)) => heads[i] = Some(record),
                        Some(Err(err)) if err.is_per_record() => yield Err(err),
                        Some(Err(err)) => {
                            yield Err(err);
                            return;
                        }
                        None => ended[i] = true,
                    }
                }
            }
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, head)| head.as_ref().map(|record| (i, record)))
                .min_by(|(_, a), (_, b)| time_index::arrival_order(a, b))
                .map(|(i, _)| i);
            match next.and_then(|i| heads[i].take()) {
                Some(record) => yield Ok(record),
                None => return,
            }
        }
    })
}

/// Reads an item into a record and keeps it if `keep` says so. An item that breaks the
/// contract is an error (it cannot be checked against the filters, and silently dropping
/// it would hide data).
fn convert(
    item: &Item,
    keep: impl Fn(&ArchiveRecord) -> bool,
) -> Option<Result<ArchiveRecord, Error>> {
    match ArchiveRecord::from_item(item) {
        Ok(record) => keep(&record).then_some(Ok(record)),
        Err(err) => Some(Err(err.into())),
    }
}

/// Fetches the payloads that are in S3 (`objects`: `None` leaves them there), in stream
/// order, at most [`FETCH_AHEAD`] ahead of the consumer.
fn resolve(
    objects: Option<ObjectStore>,
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    inner
        .map(move |result| {
            let objects = objects.clone();
            async move {
                let mut record = result?;
                let (Some(objects), Payload::Stored(stored)) = (objects, record.payload()) else {
                    return Ok(record);
                };
                let stored = stored.clone();
                record.data = objects.fetch(&record, &stored).await?;
                Ok(record)
            }
        })
        .buffered(FETCH_AHEAD)
}

/// How many payload bytes [`in_sequence_order`] holds at most (records whose payloads are in
/// S3 are held without them): memory stays bounded for a key of large records, whose order
/// is then numeric within a smaller window.
const REORDER_BYTES: usize = 64 * 1024 * 1024;

/// A record stream put in numeric order of (sequence number, sub-sequence number) within a
/// window of `window` records and `bytes` payload bytes: a record goes out when the window
/// is full and it is the lowest held, or at the end. Errors about one item go out as they
/// come; another error goes out after the records held, and ends the stream. See
/// [`REORDER_WINDOW`].
fn in_sequence_order(
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
    window: usize,
    bytes: usize,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    /// A held record, ordered lowest first.
    struct Held(ArchiveRecord);
    impl Held {
        fn key(&self) -> (&SequenceNumber, Option<u64>) {
            (&self.0.sequence_number, self.0.sub_sequence_number)
        }
    }
    impl PartialEq for Held {
        fn eq(&self, other: &Self) -> bool {
            self.key() == other.key()
        }
    }
    impl Eq for Held {}
    impl PartialOrd for Held {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Held {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            // BinaryHeap pops the greatest: reversed, the lowest.
            other.key().cmp(&self.key())
        }
    }
    stream! {
        let mut held = std::collections::BinaryHeap::new();
        let mut held_bytes = 0usize;
        let mut inner = std::pin::pin!(inner);
        while let Some(result) = inner.next().await {
            match result {
                Ok(record) => {
                    held_bytes += record.data.len();
                    held.push(Held(record));
                    while held.len() > window || (held_bytes > bytes && held.len() > 1) {
                        let Held(lowest) = held.pop().expect("held records");
                        held_bytes -= lowest.data.len();
                        yield Ok(lowest);
                    }
                }
                Err(err) if err.is_per_record() => yield Err(err),
                Err(err) => {
                    while let Some(Held(lowest)) = held.pop() {
                        yield Ok(lowest);
                    }
                    yield Err(err);
                    return;
                }
            }
        }
        while let Some(Held(lowest)) = held.pop() {
            yield Ok(lowest);
        }
    }
}

/// Ends a record stream after `limit` records, or after an error that is not about a
/// single item.
fn cap(
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
    limit: Option<usize>,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    stream! {
        if limit == Some(0) {
            return;
        }
        let mut inner = std::pin::pin!(inner);
        let mut records = 0usize;
        while let Some(result) = inner.next().await {
            match result {
                Ok(record) => {
                    yield Ok(record);
                    records += 1;
                    if Some(records) == limit {
                        return;
                    }
                }
                Err(err) if err.is_per_record() => yield Err(err),
                Err(err) => {
                    yield Err(err);
                    return;
                }
            }
        }
    }
}

fn check_partition_key(key: &str) -> Result<(), Error> {
    let chars = key.chars().count();
    if (1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid partition key ({chars} characters): a Kinesis partition key has 1 to \
             {MAX_PARTITION_KEY_CHARS} characters"
        )))
    }
}

/// The string range of range keys holding the records of container sequence numbers
/// `low..=high` (same digit count): `low` itself up to `high` followed by `:`, which sorts
/// after `.` and every digit, so the user records of a KPL container with sequence number
/// `high` (`<high>.<sub-sequence>`, see [`crate::domain::kpl`]) are inside. The superset
/// (longer numbers starting with `high`) is dropped by the numeric check in Rust.
fn container_range(low: &SequenceNumber, high: &SequenceNumber) -> (String, String) {
    (low.as_str().to_owned(), format!("{}:", high.as_str()))
}

/// How a query is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryRead {
    /// GetItem: ALL tables with `from == to` (key partition key + sequence number), and
    /// every LATEST query (key partition key: the one record, checked against the range).
    Get { sequence: Option<SequenceNumber> },
    /// Query the partition key. `between`: a key-condition narrowing proven safe (both
    /// bounds have the same number of digits). `exact`: every item returned is a match
    /// (no bound at all), so DynamoDB's `Limit` can be the number of records still wanted.
    Query {
        between: Option<(SequenceNumber, SequenceNumber)>,
        exact: bool,
    },
}

fn plan_query(mode: ArchiveMode, range: &SequenceRange) -> QueryRead {
    match mode {
        ArchiveMode::Latest => QueryRead::Get { sequence: None },
        ArchiveMode::All => {
            if let Some(single) = range.single() {
                return QueryRead::Get {
                    sequence: Some(single.clone()),
                };
            }
            match (&range.from, &range.to) {
                (None, None) => QueryRead::Query {
                    between: None,
                    exact: true,
                },
                (Some(from), Some(to)) if from.digits() == to.digits() => QueryRead::Query {
                    between: Some((from.clone(), to.clone())),
                    exact: false,
                },
                _ => QueryRead::Query {
                    between: None,
                    exact: false,
                },
            }
        }
    }
}

/// DynamoDB's `Limit` for a page: the page size asked for; else, when every item read is a
/// match, the total limit (no point reading more); else none (1 MB pages, as filtering may
/// drop most items, and a small `Limit` would then mean many requests).
fn page_limit(page_size: Option<u32>, exact: bool, limit: Option<usize>) -> Option<i32> {
    let clamp = |n: usize| n.clamp(1, i32::MAX as usize) as i32;
    match page_size {
        Some(size) => Some(clamp(size as usize)),
        None if exact => limit.map(clamp),
        None => None,
    }
}

/// The scan filters, checked in Rust ([`ScanFilter::matches`]) and sent to DynamoDB
/// ([`ScanFilter::expression`]) so that non-matching items are not transferred.
#[derive(Debug, Clone, Default, PartialEq)]
struct ScanFilter {
    from_sequence: Option<SequenceNumber>,
    to_sequence: Option<SequenceNumber>,
    /// `lastUpdate` has whole seconds and its fixed-width text orders like time: the time
    /// is formatted the same way (which drops the fraction) and compared as text.
    archived_after: Option<String>,
    /// The exact decimal sent to DynamoDB, and the same number as `f64` for Rust.
    arrived_after: Option<(String, f64)>,
    /// As `archived_after`, rounded up to its second (see [`ScanOptions::archived_before`]).
    archived_before: Option<String>,
    arrived_before: Option<(String, f64)>,
}

/// Whether a filter expression may name key attributes: a Scan's may, a Query's on the
/// time index may not (its key is the arrival time; the table's sort key is left to Rust
/// too, to stay clear of DynamoDB's rule on key attributes in a Query filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFilters {
    Included,
    Excluded,
}

#[derive(Debug, Clone, PartialEq)]
struct FilterExpression {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl ScanFilter {
    fn new(options: &ScanOptions) -> Self {
        Self {
            from_sequence: options.from_sequence.clone(),
            to_sequence: options.to_sequence.clone(),
            archived_after: options.archived_after.map(format_last_update),
            arrived_after: options.arrived_after.map(exact_epoch),
            archived_before: options.archived_before.map(|time| {
                let whole = time.timestamp_subsec_nanos() == 0;
                let second =
                    time - chrono::TimeDelta::nanoseconds(time.timestamp_subsec_nanos().into());
                format_last_update(if whole {
                    second
                } else {
                    second + chrono::TimeDelta::seconds(1)
                })
            }),
            arrived_before: options.arrived_before.map(exact_epoch),
        }
    }

    fn matches(&self, record: &ArchiveRecord) -> bool {
        let sequence_ok = self
            .from_sequence
            .as_ref()
            .is_none_or(|from| record.sequence_number >= *from)
            && self
                .to_sequence
                .as_ref()
                .is_none_or(|to| record.sequence_number <= *to);
        let archived_ok = self
            .archived_after
            .as_deref()
            .is_none_or(|after| record.last_update.as_deref().is_some_and(|at| at >= after));
        let archived_before_ok = self
            .archived_before
            .as_deref()
            .is_none_or(|before| record.last_update.as_deref().is_some_and(|at| at < before));
        let arrived_ok = arrived_within(
            record.approximate_arrival_timestamp,
            &self.arrived_after,
            &self.arrived_before,
        );
        sequence_ok && archived_ok && archived_before_ok && arrived_ok
    }

    /// The filter expression; with [`KeyFilters::Excluded`] (a Query on the time index)
    /// without the conditions on key attributes, which the key condition and Rust check.
    fn expression(&self, keys: KeyFilters) -> Option<FilterExpression> {
        let mut parts = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let keys = keys == KeyFilters::Included;
        if let Some(from) = self.from_sequence.as_ref().filter(|_| keys) {
            // Numeric `>=` on digit strings without leading zeros: longer is larger, equal
            // lengths compare as strings.
            parts.push("(size(#seq) > :seqlen OR (size(#seq) = :seqlen AND #seq >= :seq))");
            names.insert("#seq".to_owned(), attr::SEQUENCE_NUMBER.to_owned());
            values.insert(
                ":seqlen".to_owned(),
                AttributeValue::N(from.digits().to_string()),
            );
            values.insert(
                ":seq".to_owned(),
                AttributeValue::S(from.as_str().to_owned()),
            );
        }
        if let Some(to) = self.to_sequence.as_ref().filter(|_| keys) {
            parts.push("(size(#seq) < :tolen OR (size(#seq) = :tolen AND #seq <= :to))");
            names.insert("#seq".to_owned(), attr::SEQUENCE_NUMBER.to_owned());
            values.insert(
                ":tolen".to_owned(),
                AttributeValue::N(to.digits().to_string()),
            );
            values.insert(":to".to_owned(), AttributeValue::S(to.as_str().to_owned()));
        }
        if let Some(text) = &self.archived_after {
            parts.push("#lu >= :lu");
            names.insert("#lu".to_owned(), attr::LAST_UPDATE.to_owned());
            values.insert(":lu".to_owned(), AttributeValue::S(text.clone()));
        }
        if let Some(text) = &self.archived_before {
            parts.push("#lu < :lub");
            names.insert("#lu".to_owned(), attr::LAST_UPDATE.to_owned());
            values.insert(":lub".to_owned(), AttributeValue::S(text.clone()));
        }
        if let Some((text, _)) = self.arrived_after.as_ref().filter(|_| keys) {
            parts.push("#aat >= :aat");
            names.insert(
                "#aat".to_owned(),
                attr::APPROXIMATE_ARRIVAL_TIMESTAMP.to_owned(),
            );
            values.insert(":aat".to_owned(), AttributeValue::N(text.clone()));
        }
        if let Some((text, _)) = self.arrived_before.as_ref().filter(|_| keys) {
            parts.push("#aat < :aatb");
            names.insert(
                "#aat".to_owned(),
                attr::APPROXIMATE_ARRIVAL_TIMESTAMP.to_owned(),
            );
            values.insert(":aatb".to_owned(), AttributeValue::N(text.clone()));
        }
        (!parts.is_empty()).then(|| FilterExpression {
            text: parts.join(" AND "),
            names,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timefmt::parse_time;
    use chrono::TimeZone;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    fn range(from: Option<&str>, to: Option<&str>) -> SequenceRange {
        SequenceRange {
            from: from.map(seq),
            to: to.map(seq),
        }
    }

    fn record(sequence: &str, last_update: &str, arrival: f64) -> ArchiveRecord {
        ArchiveRecord {
            partition_key: "k".into(),
            sequence_number: seq(sequence),
            shard_id: "shardId-000000000000".into(),
            approximate_arrival_timestamp: arrival,
            data: b"x".to_vec(),
            last_update: Some(last_update.into()),
            expire_after: None,
            oversize_bytes: None,
            sub_sequence_number: None,
            explicit_hash_key: None,
            stored: None,
        }
    }

    #[test]
    fn range_compares_numerically() {
        let r = range(Some("9"), Some("11"));
        let kept: Vec<&str> = ["8", "9", "10", "11", "100", "12"]
            .into_iter()
            .filter(|s| r.contains(&seq(s)))
            .collect();
        assert_eq!(kept, ["9", "10", "11"]);
        assert!(range(Some("10"), None).contains(&seq("100")));
        assert!(!range(Some("10"), None).contains(&seq("9")));
        assert!(range(None, Some("10")).contains(&seq("9")));
        assert!(!range(None, Some("10")).contains(&seq("11")));
        assert!(range(None, None).contains(&seq("0")));
    }

    #[test]
    fn swapped_bounds_are_an_error_numerically() {
        assert!(range(Some("10"), Some("9")).check().is_err());
        // "9" > "10" as strings, but 9 < 10: a valid range.
        assert!(range(Some("9"), Some("10")).check().is_ok());
        assert!(range(Some("5"), Some("5")).check().is_ok());
    }

    #[test]
    fn query_plans() {
        use QueryRead::*;
        assert_eq!(
            plan_query(ArchiveMode::All, &range(Some("10"), Some("10"))),
            Get {
                sequence: Some(seq("10"))
            }
        );
        assert_eq!(
            plan_query(ArchiveMode::Latest, &range(Some("10"), Some("10"))),
            Get { sequence: None }
        );
        assert_eq!(
            plan_query(ArchiveMode::Latest, &range(None, None)),
            Get { sequence: None }
        );
        assert_eq!(
            plan_query(ArchiveMode::All, &range(None, None)),
            Query {
                between: None,
                exact: true
            }
        );
        // Same length: BETWEEN is a safe superset.
        assert_eq!(
            plan_query(ArchiveMode::All, &range(Some("10"), Some("99"))),
            Query {
                between: Some((seq("10"), seq("99"))),
                exact: false
            }
        );
        // Different lengths or one bound: only the partition key in the key condition.
        for r in [
            range(Some("9"), Some("100")),
            range(Some("9"), None),
            range(None, Some("100")),
        ] {
            assert_eq!(
                plan_query(ArchiveMode::All, &r),
                Query {
                    between: None,
                    exact: false
                }
            );
        }
    }

    #[test]
    fn the_between_that_plan_query_sends_is_a_superset_of_the_numeric_range() {
        // Exhaustive over small numbers: whenever plan_query narrows the key condition to
        // BETWEEN, every number numerically in [from, to] is inside that BETWEEN as
        // DynamoDB compares strings (byte by byte), so the Rust-side filter sees it.
        // (from == to is a GetItem of that one number.)
        for from in 10u32..99 {
            for to in (from + 1..100).step_by(7) {
                let plan = plan_query(
                    ArchiveMode::All,
                    &range(Some(&from.to_string()), Some(&to.to_string())),
                );
                let QueryRead::Query {
                    between: Some((low, high)),
                    ..
                } = plan
                else {
                    panic!("[{from}, {to}] has bounds of equal length: {plan:?}");
                };
                for x in 0u32..1000 {
                    let xs = x.to_string();
                    let numeric = (from..=to).contains(&x);
                    let in_between = xs.as_bytes() >= low.as_str().as_bytes()
                        && xs.as_bytes() <= high.as_str().as_bytes();
                    assert!(!numeric || in_between, "{x} in [{from}, {to}]");
                }
            }
        }
    }

    #[test]
    fn worker_segments_are_checked() {
        assert_eq!(
            WorkerSegment::parse(" 3/4 ").unwrap(),
            WorkerSegment::new(3, 4).unwrap()
        );
        assert_eq!(
            WorkerSegment::parse("0/1000000").unwrap().to_string(),
            "0/1000000"
        );
        for bad in ["4/4", "0/0", "x/2", "1", "-1/2", "1/1000001", "1/2/3"] {
            let message = WorkerSegment::parse(bad).unwrap_err().to_string();
            assert!(message.contains("I/N"), "{bad}: {message}");
        }
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(Some(2), false, Some(10)), Some(2));
        assert_eq!(page_limit(None, true, Some(10)), Some(10));
        assert_eq!(page_limit(None, false, Some(10)), None);
        assert_eq!(page_limit(None, true, None), None);
        assert_eq!(page_limit(None, true, Some(usize::MAX)), Some(i32::MAX));
        assert_eq!(page_limit(Some(0), true, None), Some(1));
    }

    #[test]
    fn partition_keys_follow_kinesis_rules() {
        assert!(check_partition_key("k").is_ok());
        assert!(check_partition_key(&"é".repeat(256)).is_ok());
        assert!(check_partition_key("").is_err());
        assert!(check_partition_key(&"k".repeat(257)).is_err());
    }

    #[test]
    fn a_time_index_query_filters_no_key_attribute() {
        let filter = ScanFilter::new(&ScanOptions {
            from_sequence: Some(seq("5")),
            arrived_after: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
            archived_after: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
            ..ScanOptions::default()
        });
        let e = filter.expression(KeyFilters::Excluded).unwrap();
        assert_eq!(e.text, "#lu >= :lu");
        assert_eq!(e.names.len(), 1);
        let full = filter.expression(KeyFilters::Included).unwrap();
        assert!(
            full.text.contains("#seq") && full.text.contains("#aat"),
            "{}",
            full.text
        );
        // Only key conditions: no filter expression at all.
        let window = ScanFilter::new(&ScanOptions {
            arrived_before: Some(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
            ..ScanOptions::default()
        });
        assert_eq!(window.expression(KeyFilters::Excluded), None);
    }

    #[test]
    fn scan_filters_apply_together() {
        let filter = ScanFilter::new(&ScanOptions {
            from_sequence: Some(seq("10")),
            archived_after: Some(parse_time("2024-05-01T12:00:00.700Z").unwrap()),
            arrived_after: Some(parse_time("1714564800.5").unwrap()),
            ..ScanOptions::default()
        });
        let good = record("100", "2024-05-01 12:00:00", 1714564800.5);
        assert!(filter.matches(&good), "at the second and at the instant");
        assert!(!filter.matches(&record("9", "2024-05-01 12:00:00", 1714564801.0)));
        let upto = ScanFilter::new(&ScanOptions {
            from_sequence: Some(seq("9")),
            to_sequence: Some(seq("10")),
            ..ScanOptions::default()
        });
        assert!(upto.matches(&record("10", "2024-05-01 12:00:00", 1.0)));
        assert!(upto.matches(&record("9", "2024-05-01 12:00:00", 1.0)));
        assert!(!upto.matches(&record("11", "2024-05-01 12:00:00", 1.0)));
        assert!(!upto.matches(&record("100", "2024-05-01 12:00:00", 1.0)));
        assert_eq!(
            upto.expression(KeyFilters::Included).unwrap().text,
            "(size(#seq) > :seqlen OR (size(#seq) = :seqlen AND #seq >= :seq)) AND \
             (size(#seq) < :tolen OR (size(#seq) = :tolen AND #seq <= :to))"
        );
        assert!(!filter.matches(&record("11", "2024-05-01 11:59:59", 1714564801.0)));
        assert!(!filter.matches(&record("11", "2024-05-01 12:00:01", 1714564800.4)));
        let mut no_time = good.clone();
        no_time.last_update = None;
        assert!(!filter.matches(&no_time));
        assert!(ScanFilter::default().matches(&no_time));
    }

    #[test]
    fn scan_filter_expression_is_numeric_and_anded() {
        assert_eq!(ScanFilter::default().expression(KeyFilters::Included), None);
        let filter = ScanFilter::new(&ScanOptions {
            from_sequence: Some(seq("123")),
            archived_after: Some(parse_time("2024-05-01T12:00:00.700Z").unwrap()),
            arrived_after: Some(parse_time("1714564800.25").unwrap()),
            ..ScanOptions::default()
        });
        let e = filter.expression(KeyFilters::Included).unwrap();
        assert_eq!(
            e.text,
            "(size(#seq) > :seqlen OR (size(#seq) = :seqlen AND #seq >= :seq)) AND #lu >= :lu AND #aat >= :aat"
        );
        assert_eq!(e.values[":seqlen"], AttributeValue::N("3".into()));
        assert_eq!(e.values[":seq"], AttributeValue::S("123".into()));
        assert_eq!(
            e.values[":lu"],
            AttributeValue::S("2024-05-01 12:00:00".into())
        );
        assert_eq!(e.values[":aat"], AttributeValue::N("1714564800.25".into()));
        assert_eq!(e.names["#aat"], "approximateArrivalTimestamp");
    }

    #[test]
    fn windows_are_after_inclusive_and_before_exclusive() {
        let filter = ScanFilter::new(&ScanOptions {
            arrived_after: Some(parse_time("1714564800").unwrap()),
            arrived_before: Some(parse_time("1714564810.5").unwrap()),
            archived_before: Some(parse_time("2024-05-01T12:00:00.250Z").unwrap()),
            ..ScanOptions::default()
        });
        let at = |arrival: f64, archived: &str| filter.matches(&record("1", archived, arrival));
        assert!(
            at(1714564800.0, "2024-05-01 12:00:00"),
            "the after edge is in"
        );
        assert!(at(1714564810.499, "2024-05-01 11:00:00"));
        assert!(
            !at(1714564810.5, "2024-05-01 11:00:00"),
            "the before edge is out"
        );
        assert!(!at(1714564799.999, "2024-05-01 11:00:00"));
        // lastUpdate 12:00:00 may be 12:00:00.1, before 12:00:00.25: kept; 12:00:01 is not.
        assert!(!at(1714564805.0, "2024-05-01 12:00:01"));
        let e = filter.expression(KeyFilters::Included).unwrap();
        assert_eq!(e.text, "#lu < :lub AND #aat >= :aat AND #aat < :aatb");
        assert_eq!(
            e.values[":lub"],
            AttributeValue::S("2024-05-01 12:00:01".into())
        );
        assert_eq!(e.values[":aatb"], AttributeValue::N("1714564810.5".into()));
        let whole = ScanFilter::new(&ScanOptions {
            archived_before: Some(parse_time("2024-05-01T12:00:00Z").unwrap()),
            ..ScanOptions::default()
        });
        assert!(!whole.matches(&record("1", "2024-05-01 12:00:00", 1.0)));
        assert!(whole.matches(&record("1", "2024-05-01 11:59:59", 1.0)));
        let (after, before) = ArrivalWindow {
            after: Some(parse_time("10").unwrap()),
            before: Some(parse_time("20").unwrap()),
        }
        .bounds();
        assert!(arrived_within(10.0, &after, &before) && !arrived_within(20.0, &after, &before));
    }

    #[tokio::test]
    async fn cap_counts_records_not_item_errors_and_stops_after_fatal_errors() {
        use crate::aws::item::ItemError;
        let item_error = || {
            Err(Error::Item(ItemError {
                key: "k/?".into(),
                problem: "bad".into(),
            }))
        };
        let ok = |s: &str| Ok(record(s, "2024-05-01 12:00:00", 1.0));
        let source = vec![ok("1"), item_error(), ok("2"), ok("3")];
        let out: Vec<_> = cap(futures::stream::iter(source), Some(2)).collect().await;
        assert_eq!(out.len(), 3, "two records and the item error between them");
        assert!(matches!(out[1], Err(Error::Item(_))));

        let source = vec![ok("1"), Err(Error::InvalidInput("boom".into())), ok("2")];
        let out: Vec<_> = cap(futures::stream::iter(source), None).collect().await;
        assert_eq!(out.len(), 2, "nothing after a fatal error");

        let out: Vec<_> = cap(futures::stream::iter(vec![ok("1")]), Some(0))
            .collect()
            .await;
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn records_come_out_in_numeric_order_within_the_window() {
        let ok = |s: &str| Ok(record(s, "2024-05-01 12:00:00", 1.0));
        let sequences = |out: Vec<Result<ArchiveRecord, Error>>| {
            out.into_iter()
                .map(|r| {
                    r.map(|r| r.sequence_number.to_string())
                        .unwrap_or_else(|e| e.to_string())
                })
                .collect::<Vec<_>>()
        };
        // The table's string order: "10" before "9".
        let source = || vec![ok("10"), ok("11"), ok("9"), ok("100")];
        let whole = in_sequence_order(futures::stream::iter(source()), 10, usize::MAX);
        assert_eq!(sequences(whole.collect().await), ["9", "10", "11", "100"]);
        // A window of 1: ordered within it only.
        let small = in_sequence_order(futures::stream::iter(source()), 1, usize::MAX);
        assert_eq!(sequences(small.collect().await), ["10", "9", "11", "100"]);
        // Bytes bound the window too (each record here holds one payload byte per char).
        let by_bytes = in_sequence_order(futures::stream::iter(source()), 10, 1);
        assert_eq!(
            sequences(by_bytes.collect().await),
            ["10", "9", "11", "100"]
        );
        // A fatal error: what was held goes out first, then the error, then nothing.
        let failing = vec![
            ok("10"),
            ok("9"),
            Err(Error::InvalidInput("boom".into())),
            ok("1"),
        ];
        let out = in_sequence_order(futures::stream::iter(failing), 10, usize::MAX);
        assert_eq!(sequences(out.collect().await), ["9", "10", "boom"]);
    }
}
