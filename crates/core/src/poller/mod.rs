//! Archiving without Lambda (`kinarch archive`): read a stream's shards directly and write
//! every batch with the same [`ArchiveWriter`] the Lambda function uses.
//!
//! For containers, hosts and laptops, where no Lambda event source mapping delivers the
//! records. Everything that decides *what* is written (modes, TTL, oversize items, the
//! partial-failure rule) is the writer's, so the two ways of archiving cannot drift apart;
//! this module only decides *what to read when*.
//!
//! # Parts
//! [`StreamPoller::run`] coordinates: it lists the shards, asks `lineage` which may start
//! and where (pure decisions on the listing and the checkpoints, which `run` then carries
//! out and checkpoints), and runs one `reader` per shard started (read, write, checkpoint).
//! `kinesis` makes the GetShardIterator and GetRecords calls, sorts their errors, and turns
//! Kinesis records into [`ArchiveRecord`](crate::ArchiveRecord)s; [`checkpoint`] keeps the
//! checkpoints. Each rule below is implemented, and documented again with its reasons,
//! where the part named with it says.
//!
//! # Shard order (`lineage`)
//! Every shard listed by ListShards is read, each by its own reader, at most
//! [`PollerOptions::shards_in_flight`] of them holding a batch at once. After a
//! reshard, a child shard is started only when every parent is finished (closed and read to
//! its end), as Lambda does, so the records of one partition key are archived in the order
//! they were written, across the reshard too. A parent that
//! ListShards no longer lists has aged out of the stream and counts as finished.
//!
//! A closed shard is finished when GetRecords answers with no next iterator (what AWS
//! does at a closed shard's end), or with no records while the last sequence number archived
//! is at least the shard's EndingSequenceNumber (needed for emulators that never end a closed
//! shard's iterator). Finished shards are checkpointed as such, so a restart never reads them
//! again and starts their children at once.
//!
//! # Where reading starts (`lineage`)
//! A shard with a checkpoint continues after it. A shard without one starts at
//! [`PollerOptions::start`] (TRIM_HORIZON, LATEST or a time), except a shard whose
//! parent was archived (it has a checkpoint, or was read in this run) and a shard that
//! appeared during the run: these start at TRIM_HORIZON, because their records came after
//! what was archived and skipping them would leave a gap. With LATEST, a shard that is
//! already closed can never receive a new record and is marked finished without reading.
//!
//! # Batches, failures and checkpoints (`reader`)
//! One GetRecords page (at most [`PollerOptions::batch_size`] records) is one batch.
//! When the writer reports [`WriteOutcome::lowest_failed`](crate::WriteOutcome), the
//! checkpoint moves to the last record below it, and after a backoff the shard is read again
//! at that sequence number (AT_SEQUENCE_NUMBER): nothing is skipped, and what is written
//! twice changes nothing. After [`PollerOptions::max_write_attempts`] failures in a
//! row the run stops with [`Error::ArchiveStalled`]; the checkpoint stays before the
//! records. A missing archive table stops the run at once ([`Error::TableNotFound`]), and
//! so does any error retrying cannot fix: a table whose key schema does not fit the mode is
//! refused by [`StreamPoller::open`] ([`Error::KeySchemaMismatch`]; should it change
//! during the run, the writer reports the same after a ValidationException, see
//! [`ArchiveWriter::write`]).
//!
//! # Start-up (`open`)
//! Throttling, 5xx answers and timeouts while the archiver starts are retried for up to a
//! minute (a supervisor's restart should not fail on a passing fault); a refused connection
//! is not: nothing listens at the endpoint, and waiting a minute would only hide a wrong
//! `--endpoint-url`. During the run it is retried like any network failure.
//!
//! # Limits of the Kinesis API (`reader`, `kinesis`)
//! GetRecords allows 5 calls per second per shard: a reader waits at least
//! [`MIN_CALL_INTERVAL`] between calls, and [`PollerOptions::idle_poll`] when the shard
//! has nothing new. ProvisionedThroughputExceeded and other throttling answers are retried
//! after an exponential backoff with jitter. An expired shard iterator is replaced from the
//! last archived position.
//!
//! # Stopping (`run`, `reader`)
//! Without `follow`, the run ends when every open shard is caught up (MillisBehindLatest 0
//! on a page shorter than the batch size) and every closed shard is finished. With `follow`
//! it keeps polling and picks up new shards (ListShards every
//! [`PollerOptions::relist_interval`], and at once when a shard finishes) until the
//! `shutdown` future given to [`StreamPoller::run`] completes. Then no new batch is read;
//! a batch being written gets [`PollerOptions::shutdown_grace`] to land and be
//! checkpointed, otherwise it is abandoned unrecorded, to be read again next time.

pub mod checkpoint;
pub mod dry_run;
pub(crate) mod kinesis;
mod lineage;
mod reader;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::aws::objects::ObjectStore;
use crate::aws::region_of;
use crate::aws::retry::{Budget, Retries, RetryPolicy, Verdict, retry};
use crate::aws::streams::{ShardInfo, list_shards, read_configured_stream_config};
use crate::aws::table_check::checked_archive_table;
use crate::aws::tables::TableInfo;
use crate::domain::config::StreamArchiveConfig;
use crate::domain::names::StreamName;
use crate::domain::sequence::SequenceNumber;
use crate::domain::timefmt::parse_time;
use crate::error::Error;
use crate::poller::checkpoint::{Checkpoint, CheckpointLocation, CheckpointStore};
use crate::poller::kinesis::ShardCalls;
use crate::poller::lineage::{Decision, Lineage, Phase};
use crate::poller::reader::{ReadEnv, ReaderEnd, ShardReader};
use crate::write::{ArchiveWriter, WriteCounts, WriterOptions};

/// GetRecords returns at most 10,000 records per call.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// Records per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// Least time between two GetRecords calls on one shard (the API allows 5 per second).
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// How long [`StreamPoller::open`] retries throttling, 5xx answers and timeouts.
const OPEN_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Where a shard without checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record the stream still holds.
    TrimHorizon,
    /// Only records that arrive after the run starts.
    Latest,
    /// Records that arrived at or after this time.
    AtTimestamp(DateTime<Utc>),
}

impl StartPosition {
    /// Parses `TRIM_HORIZON`, `LATEST` (any case) or a time in any form of
    /// [`crate::domain::timefmt`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("TRIM_HORIZON") {
            return Ok(StartPosition::TrimHorizon);
        }
        if trimmed.eq_ignore_ascii_case("LATEST") {
            return Ok(StartPosition::Latest);
        }
        parse_time(trimmed)
            .map(StartPosition::AtTimestamp)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "invalid start position {:?}: use TRIM_HORIZON, LATEST or a time ({e})",
                    text.chars().take(100).collect::<String>()
                ))
            })
    }
}

impl fmt::Display for StartPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartPosition::TrimHorizon => f.write_str("TRIM_HORIZON"),
            StartPosition::Latest => f.write_str("LATEST"),
            StartPosition::AtTimestamp(time) => {
                f.write_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
        }
    }
}

/// Where a reader (re)starts when it needs a new shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// Where a shard without checkpoint starts.
    Start(StartPosition),
    /// After the last record archived (its checkpoint).
    After(SequenceNumber),
    /// At the lowest record whose write failed, to read it again.
    At(SequenceNumber),
}

/// How [`StreamPoller`] runs. [`Default`] gives the values documented on each field.
#[derive(Debug, Clone)]
pub struct PollerOptions {
    /// Where shards without checkpoint start (see the [module documentation](self)).
    /// Default TRIM_HORIZON.
    pub start: StartPosition,
    /// Keep polling after catching up, until `shutdown`. Default false.
    pub follow: bool,
    /// Records per GetRecords call and per batch, 1 to [`MAX_BATCH_SIZE`]. Default
    /// [`DEFAULT_BATCH_SIZE`].
    pub batch_size: usize,
    /// Where checkpoints are kept; `None`: [`CheckpointLocation::default_for`] the archive.
    pub checkpoints: Option<CheckpointLocation>,
    /// Shards that may hold a batch (read, being written) at once; bounds memory to this many
    /// GetRecords answers (Kinesis caps one at 10 MB). Default 8.
    pub shards_in_flight: usize,
    /// Wait before polling a shard again when it had nothing new. Default 1 s.
    pub idle_poll: Duration,
    /// With `follow`: how often ListShards is asked for new and closed shards. Default 5 s.
    pub relist_interval: Duration,
    /// Time one batch's writes may take, retries included, before the records not written
    /// count as failed. Default 60 s.
    pub write_budget: Duration,
    /// After `shutdown`, time a batch being written gets to land and be checkpointed.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// Failed writes of one shard in a row before the run stops. Default 10.
    pub max_write_attempts: u32,
    /// Shards per ListShards call; `None`: the service's default.
    pub list_shards_page_size: Option<i32>,
}

impl Default for PollerOptions {
    fn default() -> Self {
        Self {
            start: StartPosition::TrimHorizon,
            follow: false,
            batch_size: DEFAULT_BATCH_SIZE,
            checkpoints: None,
            shards_in_flight: 8,
            idle_poll: Duration::from_secs(1),
            relist_interval: Duration::from_secs(5),
            write_budget: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_write_attempts: 10,
            list_shards_page_size: None,
        }
    }
}

/// Counts for a progress display, reported as batches land.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveProgress {
    /// Records archived so far in this run.
    pub records: u64,
    /// Shards being read.
    pub shards_reading: usize,
    /// Shards finished (closed and read to their end), in this run or before.
    pub shards_finished: usize,
}

/// Where a shard stands at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Closed and read to its end (in this run or an earlier one).
    Finished,
    /// Open, and every record it held was archived.
    CaughtUp,
    /// Reading was stopped by the shutdown signal.
    Stopped,
    /// Not started: a parent is not finished yet.
    Waiting,
}

impl ShardState {
    /// `finished`, `caught-up`, `stopped` or `waiting`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardState::Finished => "finished",
            ShardState::CaughtUp => "caught-up",
            ShardState::Stopped => "stopped",
            ShardState::Waiting => "waiting",
        }
    }
}

/// One shard in the [`ArchiveSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    /// The shard.
    pub shard_id: String,
    /// Its parents, if it came from a reshard.
    pub parents: Vec<String>,
    /// Where it stands.
    pub state: ShardState,
    /// Records archived from it in this run.
    pub records: u64,
    /// Its checkpoint: every record up to this one is archived.
    pub sequence_number: Option<SequenceNumber>,
    /// Where this run started reading it (`after checkpoint N`, `TRIM_HORIZON`, ...), if it
    /// did.
    pub started_from: Option<String>,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every open shard was caught up and every closed shard finished (without `follow`).
    CaughtUp,
    /// The shutdown future completed.
    Shutdown,
}

impl StopReason {
    /// `caught-up` or `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::CaughtUp => "caught-up",
            StopReason::Shutdown => "shutdown",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveSummary {
    /// The stream, mode, TTL and table.
    pub config: StreamArchiveConfig,
    /// Where the checkpoints are.
    pub checkpoints: CheckpointLocation,
    /// The start position of shards without checkpoint.
    pub start: StartPosition,
    /// Whether the run followed the stream.
    pub follow: bool,
    /// Why it ended.
    pub stopped: StopReason,
    /// Records archived (read, written, checkpointed).
    pub records: u64,
    /// What became of the records of every batch written, added up (see
    /// [`WriteCounts`]). A batch read again after a partial failure is counted each time it
    /// is written: its records may be in [`WriteCounts::failed`] and, later, in
    /// [`WriteCounts::written`].
    pub counts: WriteCounts,
    /// Batches whose writes partly failed and were read again.
    pub retried_batches: u64,
    /// Checkpoints ignored because they speak of an earlier table of the archive's name
    /// (see [`checkpoint::Checkpoints::stale`]).
    pub stale_checkpoints: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Every shard, by id.
    pub shards: Vec<ShardSummary>,
}

/// Archives one stream by reading its shards. See the [module documentation](self).
///
/// ```no_run
/// # async fn example() -> Result<(), kinarch_core::Error> {
/// use kinarch_core::StreamName;
/// use kinarch_core::aws::{AwsOptions, load_sdk_config};
/// use kinarch_core::poller::{PollerOptions, StreamPoller};
///
/// let sdk = load_sdk_config(&AwsOptions::default()).await;
/// let archiver =
///     StreamPoller::open(&sdk, StreamName::new("orders")?, PollerOptions::default())
///         .await?;
/// let shutdown = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// let summary = archiver.run(shutdown, |p| eprintln!("{} records", p.records)).await?;
/// println!("archived {} records in {:?}", summary.records, summary.elapsed);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StreamPoller {
    kinesis: KinesisClient,
    writer: ArchiveWriter,
    config: StreamArchiveConfig,
    store: CheckpointStore,
    options: PollerOptions,
    region: String,
}

impl StreamPoller {
    /// Prepares archiving `stream`: reads its configuration from its tags, checks that the
    /// archive table exists, and opens (or creates) the checkpoint store.
    ///
    /// Fails with [`Error::StreamNotFound`], [`Error::StreamNotConfigured`] (no
    /// `StreamArchiveMode` tag: the message names `kinarch setup`), [`Error::Config`] (a bad
    /// tag), [`Error::TableNotFound`], [`Error::KeySchemaMismatch`] (the table's key schema
    /// does not fit the mode), [`Error::Checkpoint`], or [`Error::InvalidInput`] for options
    /// out of range. Throttling, 5xx answers and timeouts on the way are retried with
    /// backoff for up to a minute; a refused connection (nothing listens at the endpoint)
    /// is not: it fails at once, naming the endpoint.
    pub async fn open(
        sdk: &SdkConfig,
        stream: StreamName,
        options: PollerOptions,
    ) -> Result<Self, Error> {
        if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
            return Err(Error::InvalidInput(format!(
                "the batch size must be 1 to {MAX_BATCH_SIZE} records (GetRecords' limit), not {}",
                options.batch_size
            )));
        }
        if options.shards_in_flight == 0 {
            return Err(Error::InvalidInput(
                "at least one shard must be allowed in flight".into(),
            ));
        }
        let kinesis = KinesisClient::new(sdk);
        let dynamodb = DynamoDbClient::new(sdk);
        let region = region_of(sdk);
        // An archiver started by a supervisor (or after a crash) should not exit because
        // AWS throttled or failed one of these calls: every step is safe to repeat.
        let retries = Retries::new(
            Duration::from_millis(200),
            Duration::from_secs(5),
            Budget::For(OPEN_RETRY_BUDGET),
        );
        let policy = Opening {
            stream: &stream,
            sdk,
            region: &region,
        };
        let (config, store) = retry(&policy, retries, (), |_| {
            Self::prepare(&kinesis, &dynamodb, &stream, &options, &region)
        })
        .await
        .map_err(|gave_up| gave_up.error)?;
        Ok(Self {
            kinesis,
            writer: ArchiveWriter::new(dynamodb, WriterOptions::default())
                .with_objects(ObjectStore::new(sdk)),
            config,
            store,
            options,
            region,
        })
    }

    /// The configuration from the stream's tags, a check that the table exists, and the
    /// checkpoint store.
    async fn prepare(
        kinesis: &KinesisClient,
        dynamodb: &DynamoDbClient,
        stream: &StreamName,
        options: &PollerOptions,
        region: &str,
    ) -> Result<(StreamArchiveConfig, CheckpointStore), Error> {
        let (config, table) = Self::checked_config(kinesis, dynamodb, stream, region).await?;
        let location = match &options.checkpoints {
            Some(location) => location.clone(),
            None => CheckpointLocation::default_for(&config)?,
        };
        // Mode NONE has no table whose incarnation checkpoints could outlive.
        let incarnation = table.map(|t| t.incarnation).unwrap_or_default();
        let store = CheckpointStore::open(dynamodb, location, &config, incarnation).await?;
        Ok((config, store))
    }

    /// The configuration from the stream's tags and the archive table, once the table is
    /// known to exist with a key schema that fits the mode (`None` in mode NONE, which has
    /// no table; it needs its Parquet archive).
    async fn checked_config(
        kinesis: &KinesisClient,
        dynamodb: &DynamoDbClient,
        stream: &StreamName,
        region: &str,
    ) -> Result<(StreamArchiveConfig, Option<TableInfo>), Error> {
        // A stream without the mode tag is refused rather than archived as LATEST (the
        // Lambda's default): a person starting an archiver by hand most likely forgot
        // `kinarch setup`, and the error says so.
        let config = read_configured_stream_config(kinesis, stream).await?;
        // A misfit is refused now, not retried batch after batch.
        if !config.mode.has_table() {
            if config.parquet.is_none() {
                return Err(Error::InvalidInput(format!(
                    "stream {stream} is archived in mode NONE (Parquet files only) but has no \
                     ArchiveParquet tag: run `kinarch setup {stream} NONE --parquet \
                     s3://BUCKET[/PREFIX]`"
                )));
            }
            return Ok((config, None));
        }
        let table = checked_archive_table(dynamodb, &config, region).await?;
        Ok((config, Some(table)))
    }

    /// The stream's archive configuration.
    pub fn config(&self) -> &StreamArchiveConfig {
        &self.config
    }

    /// Where the checkpoints are.
    pub fn checkpoints(&self) -> &CheckpointLocation {
        self.store.location()
    }

    /// Archives until caught up (or, with `follow`, until `shutdown` completes), calling
    /// `progress` as batches land. `shutdown` also ends a run without `follow` early.
    ///
    /// A fatal error (the archive table or the stream disappeared, access denied, a shard
    /// that cannot be archived after [`PollerOptions::max_write_attempts`]) stops every
    /// shard; checkpoints written so far stay valid.
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()>,
        mut progress: impl FnMut(&ArchiveProgress),
    ) -> Result<ArchiveSummary, Error> {
        let started = Instant::now();
        let loaded = self.store.load().await?;
        if let Some(note) = loaded.stale_note(&self.config.table, self.options.start) {
            tracing::warn!(stream = %self.config.stream, checkpoints = %self.store.location(), "{note}");
        }
        let stale_checkpoints = loaded.stale.len();
        let checkpoints = loaded.current;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<u64>();
        let permits = Semaphore::new(self.options.shards_in_flight);
        let env = ReadEnv {
            kinesis: ShardCalls {
                client: &self.kinesis,
                stream: &self.config.stream,
                stream_arn: None,
                region: &self.region,
                checkpoints: Some(self.store.location()),
            },
            writer: &self.writer,
            config: &self.config,
            store: &self.store,
            options: &self.options,
            permits: &permits,
            events: events_tx,
        };
        let mut shards = Shards::default();
        let mut readers = FuturesUnordered::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut counts = ArchiveProgress::default();
        let mut stopped: Option<StopReason> = None;
        let mut fatal: Option<Error> = None;
        let mut first_listing = true;
        let mut list_now = true;
        let mut next_list = Instant::now();

        loop {
            let stopping = stopped.is_some() || fatal.is_some();
            if !stopping && (list_now || (self.options.follow && Instant::now() >= next_list)) {
                list_now = false;
                next_list = Instant::now() + self.options.relist_interval;
                let listing = tokio::select! {
                    listing = list_shards(&self.kinesis, &self.config.stream, self.options.list_shards_page_size) => Some(listing),
                    _ = &mut shutdown => None,
                };
                let started_now = match listing {
                    None => {
                        stopped = Some(StopReason::Shutdown);
                        let _ = stop_tx.send(true);
                        continue;
                    }
                    Some(Err(error)) => {
                        fatal = Some(error);
                        let _ = stop_tx.send(true);
                        continue;
                    }
                    Some(Ok(listing)) => {
                        shards.merge_listing(listing, &checkpoints, first_listing);
                        first_listing = false;
                        match self.start_ready(&mut shards).await {
                            Ok(ready) => {
                                let count = ready.len();
                                for (reader, ending) in ready {
                                    readers.push(reader.read(&env, stop_rx.clone(), ending));
                                }
                                count
                            }
                            Err(error) => {
                                fatal = Some(error);
                                let _ = stop_tx.send(true);
                                continue;
                            }
                        }
                    }
                };
                counts.shards_reading = readers.len();
                counts.shards_finished = shards.lineage.finished_count();
                progress(&counts);
                if readers.is_empty() && started_now == 0 && !self.options.follow {
                    stopped = Some(StopReason::CaughtUp);
                    break;
                }
            }
            if readers.is_empty() {
                if stopping {
                    break;
                }
                if !self.options.follow {
                    // Every reader ended: list once more, for shards that closed (and their
                    // children) while they were read.
                    list_now = true;
                    continue;
                }
            }
            tokio::select! {
                Some((reader, end)) = readers.next(), if !readers.is_empty() => {
                    let phase = match end {
                        Ok(ReaderEnd::Finished) => {
                            // Its children may start now.
                            list_now = true;
                            Phase::Finished
                        }
                        Ok(ReaderEnd::CaughtUp) => Phase::CaughtUp,
                        Ok(ReaderEnd::Stopped) => Phase::Stopped,
                        Err(error) => {
                            if fatal.is_none() {
                                fatal = Some(error);
                            }
                            let _ = stop_tx.send(true);
                            Phase::Stopped
                        }
                    };
                    shards.reader_ended(reader, phase);
                    counts.shards_reading = readers.len();
                    counts.shards_finished = shards.lineage.finished_count();
                    progress(&counts);
                }
                Some(records) = events_rx.recv() => {
                    counts.records += records;
                    progress(&counts);
                }
                _ = &mut shutdown, if stopped.is_none() => {
                    tracing::info!(stream = %self.config.stream, "stopping: no new batch is read; batches being written get their grace period");
                    stopped = Some(StopReason::Shutdown);
                    let _ = stop_tx.send(true);
                }
                _ = tokio::time::sleep_until(next_list), if self.options.follow && !stopping => {}
            }
        }
        if let Some(error) = fatal {
            return Err(error);
        }
        let mut summary = self.summary(
            shards,
            stopped.unwrap_or(StopReason::CaughtUp),
            started.elapsed(),
        );
        summary.stale_checkpoints = stale_checkpoints;
        Ok(summary)
    }

    /// Carries out what [`Lineage::ready`] decides: a reader for each shard to read (a new
    /// one, or the one it had in this run), and a finished checkpoint for each shard
    /// finished unread. Returns the readers to run, each with the receiver that tells it
    /// its shard's EndingSequenceNumber.
    async fn start_ready(
        &self,
        shards: &mut Shards,
    ) -> Result<Vec<(ShardReader, watch::Receiver<Option<SequenceNumber>>)>, Error> {
        let mut started = Vec::new();
        for decision in shards.lineage.ready(self.options.start) {
            let reader = match &decision {
                Decision::Start {
                    shard_id,
                    position,
                    started_from,
                } => {
                    let checkpoint = shards
                        .lineage
                        .get(shard_id)
                        .and_then(|s| s.checkpoint.as_ref());
                    ShardReader::new(
                        shard_id.clone(),
                        position.clone(),
                        started_from.clone(),
                        checkpoint,
                    )
                }
                Decision::Resume { shard_id } => shards
                    .parked
                    .remove(shard_id)
                    .expect("a shard read in this run keeps its reader"),
                Decision::FinishUnread { shard_id } => {
                    tracing::info!(shard = %shard_id, "closed shard skipped: LATEST reads only new records");
                    self.store
                        .save(shard_id, &Checkpoint::now(None, true))
                        .await?;
                    shards.lineage.apply(&decision);
                    continue;
                }
            };
            shards.lineage.apply(&decision);
            let ending = shards
                .lineage
                .get(&reader.shard_id)
                .and_then(|s| s.info.ending_sequence_number.clone());
            let (tx, rx) = watch::channel(ending);
            shards.endings.insert(reader.shard_id.clone(), tx);
            started.push((reader, rx));
        }
        Ok(started)
    }

    fn summary(&self, shards: Shards, stopped: StopReason, elapsed: Duration) -> ArchiveSummary {
        let Shards {
            lineage,
            mut parked,
            ..
        } = shards;
        let mut summary = ArchiveSummary {
            config: self.config.clone(),
            checkpoints: self.store.location().clone(),
            start: self.options.start,
            follow: self.options.follow,
            stopped,
            records: 0,
            counts: WriteCounts::default(),
            retried_batches: 0,
            stale_checkpoints: 0,
            elapsed,
            shards: Vec::new(),
        };
        for (id, shard) in lineage.into_shards() {
            let state = match shard.phase {
                Phase::Finished => ShardState::Finished,
                Phase::CaughtUp => ShardState::CaughtUp,
                Phase::Stopped | Phase::Reading => ShardState::Stopped,
                Phase::Waiting => ShardState::Waiting,
            };
            let parents = shard.info.parents().map(str::to_owned).collect();
            let (records, sequence_number, started_from) = match parked.remove(&id) {
                Some(reader) => {
                    summary.records += reader.stats.records;
                    summary.counts.add(&reader.stats.counts);
                    summary.retried_batches += reader.stats.retried_batches;
                    (
                        reader.stats.records,
                        reader.archived_upto,
                        Some(reader.started_from),
                    )
                }
                None => (0, shard.checkpoint.and_then(|c| c.sequence_number), None),
            };
            summary.shards.push(ShardSummary {
                shard_id: id,
                parents,
                state,
                records,
                sequence_number,
                started_from,
            });
        }
        summary
    }
}

/// The start-up of an archiver ([`StreamPoller::prepare`]): transient failures are retried,
/// except a refused connection (nothing listens at the endpoint: a wrong URL or port, not a
/// passing fault).
struct Opening<'a> {
    stream: &'a StreamName,
    sdk: &'a SdkConfig,
    region: &'a str,
}

impl RetryPolicy for Opening<'_> {
    type Request = ();
    type Answer = Result<(StreamArchiveConfig, CheckpointStore), Error>;
    type Output = (StreamArchiveConfig, CheckpointStore);

    fn operation(&self) -> &'static str {
        "preparing the archiver"
    }

    fn log_retry(&self, error: &Error, _attempt: u32, _partial: bool) {
        tracing::warn!(stream = %self.stream, error = %error, "preparing the archiver failed; retrying");
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<Self::Output, ()> {
        match answer {
            Ok(prepared) => Verdict::Done(prepared),
            Err(error) if error.is_connection_refused() => {
                Verdict::Fail(refused(error, self.sdk, self.region))
            }
            Err(error) => Verdict::after(error),
        }
    }
}

/// A connection refused while the archiver starts, said as such: the endpoint named, and
/// that it was not retried.
fn refused(error: Error, sdk: &SdkConfig, region: &str) -> Error {
    let endpoint = match sdk.endpoint_url() {
        Some(url) => format!("endpoint {url}"),
        None => format!("the AWS endpoint of region {region}"),
    };
    error.explained(|| {
        format!(
            "the connection to {endpoint} was refused: nothing listens there (check \
             --endpoint-url and the network); not retried at start-up"
        )
    })
}

/// A run's shards: their lineage, and what the run holds for those it reads.
#[derive(Default)]
struct Shards {
    lineage: Lineage,
    /// The readers of shards read in this run that are not running: for the summary, and
    /// to go on exactly where a caught-up shard stopped when it turns out to be closed.
    parked: HashMap<String, ShardReader>,
    /// Tells each running reader that its shard closed.
    endings: HashMap<String, watch::Sender<Option<SequenceNumber>>>,
}

impl Shards {
    /// Takes in a listing, and passes news of closed shards to their running readers.
    fn merge_listing(
        &mut self,
        listing: Vec<ShardInfo>,
        checkpoints: &HashMap<String, Checkpoint>,
        first_listing: bool,
    ) {
        for closed in self.lineage.merge(listing, checkpoints, first_listing) {
            tracing::info!(shard = %closed.shard_id, ending_sequence_number = %closed.ending, "shard closed (resharded)");
            if let Some(tx) = self.endings.get(&closed.shard_id) {
                let _ = tx.send(Some(closed.ending));
            }
        }
    }

    /// Keeps the reader of a shard whose reading ended, and where it ended.
    fn reader_ended(&mut self, reader: ShardReader, phase: Phase) {
        self.endings.remove(&reader.shard_id);
        self.lineage.set_phase(&reader.shard_id, phase);
        self.parked.insert(reader.shard_id.clone(), reader);
    }
}

#[cfg(test)]
mod tests {
    use super::lineage::tests::shard;
    use super::*;

    /// An archiver that makes no AWS call in what these tests use (carrying out lineage's
    /// decisions), with checkpoints in a temporary file.
    async fn archiver(start: StartPosition, name: &str) -> StreamPoller {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let config = StreamArchiveConfig::new(
            StreamName::new("orders").unwrap(),
            crate::ArchiveMode::All,
            None,
        );
        let dir = std::env::temp_dir().join(format!("kinarch-local-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.json"));
        let _ = std::fs::remove_file(&path);
        let store = CheckpointStore::open(
            &DynamoDbClient::new(&sdk),
            CheckpointLocation::File(path),
            &config,
            crate::aws::tables::TableIncarnation::default(),
        )
        .await
        .unwrap();
        StreamPoller {
            kinesis: KinesisClient::new(&sdk),
            writer: ArchiveWriter::new(DynamoDbClient::new(&sdk), WriterOptions::default()),
            config,
            store,
            options: PollerOptions {
                start,
                ..PollerOptions::default()
            },
            region: "us-east-1".into(),
        }
    }

    fn started(ready: &[(ShardReader, watch::Receiver<Option<SequenceNumber>>)]) -> Vec<String> {
        ready
            .iter()
            .map(|(r, _)| format!("{} from {}", &r.shard_id[17..], r.started_from))
            .collect()
    }

    fn phase(shards: &Shards, id: &str) -> Phase {
        shards.lineage.get(id).unwrap().phase
    }

    #[tokio::test]
    async fn children_start_only_after_every_parent_is_finished() {
        let a = archiver(StartPosition::TrimHorizon, "lineage").await;
        let mut shards = Shards::default();
        // 0 was split into 1 and 2; 1 and 2 were merged into 3.
        let listing = vec![
            shard(0, &[], Some("50")),
            shard(1, &[0], Some("80")),
            shard(2, &[0], None),
            shard(3, &[1, 2], None),
        ];
        shards.merge_listing(listing.clone(), &HashMap::new(), true);
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(started(&ready), ["000 from TRIM_HORIZON"]);
        assert!(
            a.start_ready(&mut shards).await.unwrap().is_empty(),
            "started once"
        );

        let (reader, _) = ready.into_iter().next().unwrap();
        shards.reader_ended(reader, Phase::Finished);
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(
            started(&ready),
            [
                "001 from TRIM_HORIZON (its parents were archived)",
                "002 from TRIM_HORIZON (its parents were archived)"
            ]
        );
        // The merged shard waits for both parents.
        let mut children = ready.into_iter().map(|(reader, _)| reader);
        let mut finish =
            |shards: &mut Shards| shards.reader_ended(children.next().unwrap(), Phase::Finished);
        finish(&mut shards);
        assert!(a.start_ready(&mut shards).await.unwrap().is_empty());
        finish(&mut shards);
        assert_eq!(
            started(&a.start_ready(&mut shards).await.unwrap()),
            ["003 from TRIM_HORIZON (its parents were archived)"]
        );
    }

    #[tokio::test]
    async fn checkpoints_decide_where_shards_resume_and_latest_skips_closed_shards() {
        let a = archiver(StartPosition::Latest, "resume").await;
        let mut shards = Shards::default();
        let checkpoints = HashMap::from([
            (
                "shardId-000000000000".to_owned(),
                Checkpoint::now(Some(SequenceNumber::parse("40").unwrap()), true),
            ),
            (
                "shardId-000000000002".to_owned(),
                Checkpoint::now(Some(SequenceNumber::parse("7").unwrap()), false),
            ),
        ]);
        let listing = vec![
            shard(0, &[], Some("50")), // finished in an earlier run
            shard(1, &[0], None),      // child of an archived parent: no gap allowed
            shard(2, &[0], None),      // has its own checkpoint
            shard(4, &[], Some("9")),  // closed, never archived: LATEST has nothing in it
            shard(5, &[], None),       // open, never archived
        ];
        shards.merge_listing(listing, &checkpoints, true);
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(
            started(&ready),
            [
                "001 from TRIM_HORIZON (its parents were archived)",
                "002 from after checkpoint 7",
                "005 from LATEST"
            ]
        );
        assert_eq!(phase(&shards, "shardId-000000000004"), Phase::Finished);
        assert!(a.store.load().await.unwrap().current["shardId-000000000004"].finished);

        // A shard that appears during the run is read from its start.
        shards.merge_listing(vec![shard(6, &[], None)], &checkpoints, false);
        assert_eq!(
            started(&a.start_ready(&mut shards).await.unwrap()),
            ["006 from TRIM_HORIZON (a new shard)"]
        );
    }

    #[tokio::test]
    async fn a_caught_up_shard_that_closes_is_read_again_to_its_end() {
        let a = archiver(StartPosition::TrimHorizon, "reopen").await;
        let mut shards = Shards::default();
        shards.merge_listing(vec![shard(0, &[], None)], &HashMap::new(), true);
        let (mut reader, _) = a.start_ready(&mut shards).await.unwrap().pop().unwrap();
        reader.archived_upto = Some(SequenceNumber::parse("12").unwrap());
        shards.reader_ended(reader, Phase::CaughtUp);
        shards.merge_listing(
            vec![shard(0, &[], Some("20")), shard(1, &[0], None)],
            &HashMap::new(),
            false,
        );
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(ready.len(), 1, "the parent again, not yet its child");
        let (reader, ending) = &ready[0];
        assert_eq!(reader.shard_id, "shardId-000000000000");
        assert_eq!(reader.archived_upto.as_ref().unwrap().as_str(), "12");
        assert_eq!(ending.borrow().as_ref().unwrap().as_str(), "20");
    }

    #[test]
    fn start_positions_parse_keywords_and_times() {
        assert_eq!(
            StartPosition::parse("trim_horizon").unwrap(),
            StartPosition::TrimHorizon
        );
        assert_eq!(
            StartPosition::parse(" LATEST ").unwrap(),
            StartPosition::Latest
        );
        let at = StartPosition::parse("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(at.to_string(), "2024-05-01T12:00:00Z");
        assert_eq!(StartPosition::parse("1714564800").unwrap(), at);
        let err = StartPosition::parse("yesterday").unwrap_err().to_string();
        assert!(
            err.contains("TRIM_HORIZON") && err.contains("LATEST") && err.contains("RFC 3339"),
            "{err}"
        );
    }
}
