//! Reading an archive: the records of a [`Selection`], by key (GetItem or Query,
//! `query.rs`) or over the whole table (Scan, or the time index for an arrival window,
//! `scan.rs`), through [`ArchiveReader::read`]. What every read is made of (pages, limit,
//! payload fetching, orders) is in `pages.rs`; the expressions sent are
//! [`crate::aws::expression`]'s.
//!
//! Every read returns a lazy stream of records: a page is fetched from DynamoDB only when the
//! consumer has taken the previous one, so memory stays at one page (at most 1 MB) per scan
//! segment however large the table, and dropping the stream stops the reads.
//!
//! # Sequence numbers compare numerically
//! The table stores `sequenceNumber` as a string, and DynamoDB orders strings byte by byte,
//! so `"10" < "9"`: a plain key condition `sequenceNumber BETWEEN :from AND :to` would
//! return the wrong records whenever sequence numbers differ in length (emulators issue
//! `"9"`, `"10"`; nothing in the Kinesis API promises a fixed length). So:
//! - **Query** narrows the key condition only when that is provably safe, and the numeric
//!   comparison in Rust ([`SequenceRange::contains`], i.e. [`SequenceNumber`](crate::SequenceNumber)'s order)
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
//! Order: a key's records come in numeric sequence order within
//! [`REORDER_WINDOW`](crate::domain::sequence::REORDER_WINDOW) (the table's sort-key order is
//! string order, which differs where sequence numbers differ in length), as a replay sends
//! them; a scan has no useful order, except an arrival window read through the time index
//! ([`time_index`]), which comes in arrival order.
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

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::Client as KinesisClient;
use aws_smithy_types::retry::ProvideErrorKind;
use futures::{Stream, StreamExt};

use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::objects::ObjectStore;
use crate::aws::streams::read_configured_stream_config;
use crate::aws::table_check::checked_archive_table;
use crate::aws::tables::TableInfo;
use crate::aws::{aws_error_with, region_of};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::filter::Verdict;
use crate::domain::names::{StreamName, TableName};
use crate::domain::parquet::ParquetTarget;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;
use crate::parquet::{ParquetCounters, ParquetReadStats};
use locate::{Located, TableOwner};

pub use crate::domain::selection::{
    MAX_PARTITION_KEY_CHARS, MAX_SEGMENTS, MAX_TOTAL_SEGMENTS, ScanSplit, Selection, SelectionSpec,
    SequenceRange, TimeWindow, WorkerSegment,
};

pub mod locate;
mod pages;
pub mod parquet;
mod query;
mod scan;
pub mod time_index;

/// A stream of archived records, as [`ArchiveReader::read`] returns it.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<ArchiveRecord, Error>> + Send>>;

/// Overflowed payloads a reader fetches ahead of its consumer at most: enough to hide S3's
/// latency, few enough that a scan of 1 MiB payloads stays within a few MiB.
pub const FETCH_AHEAD: usize = 4;

/// Keys of `--keys-from` read at once; each key's records are held until the keys before
/// it are returned.
pub const KEYS_AHEAD: usize = 8;

/// How long one page is retried on throttling and 5xx answers, on top of the SDK's own
/// three attempts, before the read gives up.
const PAGE_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// How a selection is read: what changes the cost of a read, not the records it returns
/// (those are the [`Selection`]'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Items per DynamoDB request (`Limit`, counted before filtering; at least 1); default:
    /// as many as fit in 1 MB, or the selection's limit when every item read is sure to be
    /// returned (no bounds at all).
    pub page_size: Option<u32>,
    /// Whether an arrival window is read through the table's time index.
    pub time_index: TimeIndexUse,
    /// Which store is read: the table or the Parquet archive.
    pub source: ArchiveSource,
}

/// Which store of an archive a read goes to (`--source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveSource {
    /// Mode NONE: the Parquet archive. A table without a Parquet archive: the table. A table
    /// mode with a Parquet archive: split by the times of its marker object (see
    /// [`read_parts`](crate::domain::parquet::read_parts)): what `kinarch tier` moved from the
    /// files, then the table up to when the Parquet archive began (for a key: the table for
    /// all the rest, one Query), then the files; without a marker, the table. A worker's
    /// share (`--segment`) of a read spanning both stores is refused: the two divide keys
    /// among workers differently.
    #[default]
    Auto,
    /// The DynamoDB table.
    Table,
    /// The Parquet files in S3 (the whole history, also beyond the table's TTL or from
    /// before the table existed).
    Parquet,
}

impl ArchiveSource {
    /// `auto`, `table`, `parquet`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveSource::Auto => "auto",
            ArchiveSource::Table => "table",
            ArchiveSource::Parquet => "parquet",
        }
    }
}

/// Whether a read of an arrival window goes through the time index.
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

/// What the `--where` filter of a reader's reads (and its clones') did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Records the filter looked at.
    pub read: u64,
    /// Records it selected.
    pub selected: u64,
    /// Records whose payload is not JSON (or not in the archive): not selected.
    pub not_json: u64,
}

#[derive(Debug, Default)]
struct ReadCounters {
    requests: AtomicU64,
    items_read: AtomicU64,
    filter_read: AtomicU64,
    filter_selected: AtomicU64,
    filter_not_json: AtomicU64,
}

impl ReadCounters {
    fn count(&self, items_read: u64) {
        self.requests.fetch_add(1, AtomicOrdering::Relaxed);
        self.items_read
            .fetch_add(items_read, AtomicOrdering::Relaxed);
    }
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
    /// For the Parquet archive, which is read whatever [`Self::without_fetch`] says.
    files: ObjectStore,
    /// What the Parquet reads of this reader and its clones cost.
    parquet: ParquetCounters,
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

    /// Opens the archive of `stream` whose Parquet files are under `target` (`--parquet`),
    /// whatever the stream's tag says: with the stream's configuration while its tags can be
    /// read, else (the stream is gone) as a Parquet-only archive
    /// ([`ArchiveMode::None`](crate::ArchiveMode::None)), [`Located::WithoutStream`] saying
    /// why.
    pub async fn locate_parquet(
        sdk: &SdkConfig,
        stream: StreamName,
        target: ParquetTarget,
    ) -> Result<(Self, Located), Error> {
        let kinesis = aws_sdk_kinesis::Client::new(sdk);
        let (config, located) = match read_configured_stream_config(&kinesis, &stream).await {
            Ok(config) => (config, Located::Tags),
            Err(err) if locate::stream_unreadable(&err) => (
                StreamArchiveConfig::new(stream, crate::ArchiveMode::None, None),
                Located::WithoutStream {
                    reason: err.to_string(),
                },
            ),
            Err(err) => return Err(err),
        };
        Ok((Self::with_config(sdk, config).with_parquet(target), located))
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
            files: ObjectStore::new(sdk),
            parquet: ParquetCounters::default(),
            config,
            region: region_of(sdk),
            owner: TableOwner::Unknown,
        }
    }

    /// The reader without fetching payloads from S3 (`--no-fetch`): overflowed records come
    /// with their location ([`Payload::Stored`](crate::domain::record::Payload::Stored)) and
    /// no bytes, and no S3 permission is needed.
    pub fn without_fetch(mut self) -> Self {
        self.objects = None;
        self
    }

    /// The reader of the Parquet archive under `target` instead of the one the stream's
    /// tag names (`--parquet`): a stream that is gone, or files copied elsewhere.
    pub fn with_parquet(mut self, target: ParquetTarget) -> Self {
        self.config.parquet = Some(target);
        self
    }

    /// What this reader's Parquet reads have cost so far (files, row groups read and
    /// skipped, bytes fetched).
    pub fn parquet_stats(&self) -> ParquetReadStats {
        self.parquet.snapshot()
    }

    /// The store a read with `source` goes to: [`ArchiveSource::Table`],
    /// [`ArchiveSource::Parquet`], or [`ArchiveSource::Auto`] for a read split between both
    /// by the marker object's times (see [`ArchiveSource::Auto`]).
    pub fn resolve_source(&self, source: ArchiveSource) -> ArchiveSource {
        match source {
            ArchiveSource::Auto if !self.config.mode.has_table() => ArchiveSource::Parquet,
            ArchiveSource::Auto if self.config.parquet.is_none() => ArchiveSource::Table,
            chosen => chosen,
        }
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

    /// The records of `selection`, read as `options` say: by key (GetItem or Query) or over
    /// the whole table (Scan, or the time index for an arrival window). See the
    /// [module documentation](self) for the order and for how errors appear in the stream.
    ///
    /// ```no_run
    /// # async fn example(archive: kinarch_core::read::ArchiveReader) -> Result<(), kinarch_core::Error> {
    /// use futures::StreamExt;
    /// use kinarch_core::read::{ReadOptions, Selection};
    ///
    /// let selection = Selection::key("customer-42")?;
    /// let mut records = archive.read(&selection, ReadOptions::default());
    /// while let Some(record) = records.next().await {
    ///     println!("{:?}", record.map(|r| r.sequence_number));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn read(&self, selection: &Selection, options: ReadOptions) -> RecordStream {
        let Some(filter) = selection.content().cloned() else {
            return self.read_unfiltered(selection, options);
        };
        let records = self.read_unfiltered(&selection.unfiltered(), options);
        let counters = self.counters.clone();
        let filtered = records.filter(move |item| {
            let keep = match item {
                Ok(record) => {
                    counters.filter_read.fetch_add(1, AtomicOrdering::Relaxed);
                    match filter.test(record) {
                        Verdict::Selected => {
                            counters
                                .filter_selected
                                .fetch_add(1, AtomicOrdering::Relaxed);
                            true
                        }
                        Verdict::NotSelected => false,
                        Verdict::NotJson => {
                            counters
                                .filter_not_json
                                .fetch_add(1, AtomicOrdering::Relaxed);
                            tracing::info!(
                                partition_key = %record.partition_key,
                                sequence_number = %record.sequence_number,
                                sub_sequence_number = ?record.sub_sequence_number,
                                "the payload is not JSON: not selected by --where"
                            );
                            false
                        }
                    }
                }
                Err(_) => true,
            };
            std::future::ready(keep)
        });
        Box::pin(pages::cap(filtered, selection.limit()))
    }

    /// What the `--where` filter of this reader's reads did so far.
    pub fn filter_stats(&self) -> FilterStats {
        FilterStats {
            read: self.counters.filter_read.load(AtomicOrdering::Relaxed),
            selected: self.counters.filter_selected.load(AtomicOrdering::Relaxed),
            not_json: self.counters.filter_not_json.load(AtomicOrdering::Relaxed),
        }
    }

    /// [`Self::read`] of a selection without a `--where` filter.
    fn read_unfiltered(&self, selection: &Selection, options: ReadOptions) -> RecordStream {
        let source = self.resolve_source(options.source);
        if let Some(keys) = selection.keys()
            && source != ArchiveSource::Parquet
        {
            // One read per key (a Query of the table), KEYS_AHEAD at once, returned key by
            // key in the list's order. (The Parquet archive is read in one pass: the key
            // list is one more bound on its rows.)
            let archive = self.clone();
            let limit = selection.limit();
            let reads = futures::stream::iter(keys.to_vec())
                .map({
                    let selection = selection.clone();
                    move |key| {
                        let archive = archive.clone();
                        let selection = selection.for_key(&key);
                        async move {
                            archive
                                .read_unfiltered(&selection, options)
                                .collect::<Vec<_>>()
                                .await
                        }
                    }
                })
                .buffered(KEYS_AHEAD)
                .flat_map(futures::stream::iter);
            return Box::pin(pages::cap(reads, limit));
        }
        tracing::info!(stream = %self.config.stream, source = source.as_str(), "reading the archive");
        if source == ArchiveSource::Auto {
            return Box::pin(self.read_split(selection.clone(), options));
        }
        if source == ArchiveSource::Parquet {
            let Some(target) = self.config.parquet.clone() else {
                let error = Error::NoParquetArchive {
                    stream: self.config.stream.clone(),
                };
                return Box::pin(futures::stream::once(async move { Err(error) }));
            };
            return Box::pin(self.read_parquet(target, selection.clone()));
        }
        if !self.config.mode.has_table() {
            let error = Error::InvalidInput(format!(
                "stream {} is archived in mode NONE: it has no table to read; read its \
                 Parquet archive (--source parquet, the default for this mode)",
                self.config.stream
            ));
            return Box::pin(futures::stream::once(async move { Err(error) }));
        }
        match selection.partition_key() {
            Some(key) => Box::pin(self.query(key.to_owned(), selection.clone(), options)),
            None => Box::pin(self.scan(selection.clone(), options)),
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
        match checked_archive_table(&self.dynamodb, &self.config, &self.region).await {
            Ok(info) => Ok(Some(info)),
            Err(err @ (Error::TableNotFound { .. } | Error::KeySchemaMismatch { .. })) => Err(err),
            Err(err) => {
                tracing::debug!(table = %self.config.table, error = %err, "the table's key schema could not be checked; reading anyway");
                Ok(None)
            }
        }
    }

    /// An AWS error of a read: a missing table as [`Error::TableNotFound`], others named
    /// with the table.
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
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::domain::record::ArchiveRecord;
    use crate::domain::selection::SequenceRange;
    use crate::domain::sequence::SequenceNumber;

    pub(crate) fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    pub(crate) fn range(from: Option<&str>, to: Option<&str>) -> SequenceRange {
        SequenceRange {
            from: from.map(seq),
            to: to.map(seq),
        }
    }

    pub(crate) fn record(sequence: &str, last_update: &str, arrival: f64) -> ArchiveRecord {
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
}
