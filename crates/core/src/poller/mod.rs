//! Archiving without Lambda (`kinarch archive`): read a stream's shards directly and write
//! every batch with the same [`ArchiveWriter`] the Lambda function uses.
//!
//! For containers, hosts and laptops, where no Lambda event source mapping delivers the
//! records. Everything that decides *what* is written (modes, TTL, oversize items, the
//! partial-failure rule) is the writer's, so the two ways of archiving cannot drift apart;
//! this module only decides *what to read when*.
//!
//! # Shard order
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
//! # Where reading starts
//! A shard with a checkpoint continues after it. A shard without one starts at
//! [`PollerOptions::start`] (TRIM_HORIZON, LATEST or a time), except a shard whose
//! parent was archived (it has a checkpoint, or was read in this run) and a shard that
//! appeared during the run: these start at TRIM_HORIZON, because their records came after
//! what was archived and skipping them would leave a gap. With LATEST, a shard that is
//! already closed can never receive a new record and is marked finished without reading.
//!
//! # Batches, failures and checkpoints
//! One GetRecords page (at most [`PollerOptions::batch_size`] records) is one batch.
//! When the writer reports [`WriteOutcome::lowest_failed`](crate::WriteOutcome), the
//! checkpoint moves to the last record below it, and after a backoff the shard is read again
//! at that sequence number (AT_SEQUENCE_NUMBER): nothing is skipped, and what is written
//! twice changes nothing. After [`PollerOptions::max_write_attempts`] failures in a
//! row the run stops with [`Error::ArchiveStalled`]; the checkpoint stays before the
//! records. A missing archive table stops the run at once ([`Error::TableNotFound`]).
//!
//! # Limits of the Kinesis API
//! GetRecords allows 5 calls per second per shard: a reader waits at least
//! [`MIN_CALL_INTERVAL`] between calls, and [`PollerOptions::idle_poll`] when the shard
//! has nothing new. ProvisionedThroughputExceeded and other throttling answers are retried
//! after an exponential backoff with jitter. An expired shard iterator is replaced from the
//! last archived position.
//!
//! # Stopping
//! Without `follow`, the run ends when every open shard is caught up (MillisBehindLatest 0
//! on a page shorter than the batch size) and every closed shard is finished. With `follow`
//! it keeps polling and picks up new shards (ListShards every
//! [`PollerOptions::relist_interval`], and at once when a shard finishes) until the
//! `shutdown` future given to [`StreamPoller::run`] completes. Then no new batch is read;
//! a batch being written gets [`PollerOptions::shutdown_grace`] to land and be
//! checkpointed, otherwise it is abandoned unrecorded, to be read again next time.

pub mod checkpoint;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_smithy_types::retry::ProvideErrorKind;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::aws::retry::Backoff;
use crate::aws::streams::{ShardInfo, list_shards, read_configured_stream_config};
use crate::aws::tables::describe_table;
use crate::aws::{aws_error, describe, error_code, is_transient, region_of};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::names::StreamName;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::domain::timefmt::parse_time;
use crate::error::Error;
use crate::poller::checkpoint::{Checkpoint, CheckpointLocation, CheckpointStore};
use crate::write::{ArchiveWriter, WriterOptions};

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
    /// Parses `TRIM_HORIZON`, `LATEST` (any case) or a time (RFC 3339 or epoch seconds).
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
    /// Items written (see [`WriteOutcome::written`](crate::WriteOutcome)).
    pub written: u64,
    /// Records not written because a newer one of their key was archived (LATEST), or
    /// because they were read twice in a batch.
    pub skipped_older: u64,
    /// Records archived without their payload (too large for an item).
    pub oversize: u64,
    /// Batches whose writes partly failed and were read again.
    pub retried_batches: u64,
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
    /// tag), [`Error::TableNotFound`], [`Error::Checkpoint`], or [`Error::InvalidInput`]
    /// for options out of range. Throttling, 5xx answers and timeouts on the way are
    /// retried with backoff for up to a minute.
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
        let deadline = Instant::now() + OPEN_RETRY_BUDGET;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let (config, store) = loop {
            match Self::prepare(&kinesis, &dynamodb, &stream, &options, &region).await {
                Ok(prepared) => break prepared,
                Err(error) if error.is_transient() => {
                    tracing::warn!(stream = %stream, error = %error, "preparing the archiver failed; retrying");
                    if !backoff.wait(deadline).await {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        };
        Ok(Self {
            kinesis,
            writer: ArchiveWriter::new(dynamodb, WriterOptions::default()),
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
        // A stream without the mode tag is refused rather than archived as LATEST (the
        // Lambda's default): a person starting an archiver by hand most likely forgot
        // `kinarch setup`, and the error says so.
        let config = read_configured_stream_config(kinesis, stream).await?;
        if describe_table(dynamodb, &config.table).await?.is_none() {
            return Err(Error::TableNotFound {
                table: config.table.clone(),
                stream: config.stream.clone(),
                mode: config.mode,
                region: region.to_owned(),
            });
        }
        let location = match &options.checkpoints {
            Some(location) => location.clone(),
            None => CheckpointLocation::default_for(&config)?,
        };
        let store = CheckpointStore::open(dynamodb, location, &config).await?;
        Ok((config, store))
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
        let checkpoints = self.store.load().await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<u64>();
        let permits = Semaphore::new(self.options.shards_in_flight);
        let mut shards: BTreeMap<String, Entry> = BTreeMap::new();
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
                        self.merge_listing(&mut shards, listing, &checkpoints, first_listing);
                        first_listing = false;
                        match self.start_ready(&mut shards).await {
                            Ok(ready) => {
                                let count = ready.len();
                                for (reader, ending) in ready {
                                    readers.push(self.read_shard(
                                        reader,
                                        stop_rx.clone(),
                                        ending,
                                        events_tx.clone(),
                                        &permits,
                                    ));
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
                counts.shards_finished = finished_count(&shards);
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
                    let entry = shards.get_mut(&reader.shard_id).expect("readers have entries");
                    entry.ending_tx = None;
                    match end {
                        Ok(ReaderEnd::Finished) => {
                            entry.state = EntryState::Finished;
                            list_now = true;
                        }
                        Ok(ReaderEnd::CaughtUp) => entry.state = EntryState::CaughtUp,
                        Ok(ReaderEnd::Stopped) => entry.state = EntryState::Stopped,
                        Err(error) => {
                            entry.state = EntryState::Stopped;
                            if fatal.is_none() {
                                fatal = Some(error);
                            }
                            let _ = stop_tx.send(true);
                        }
                    }
                    entry.reader = Some(reader);
                    counts.shards_reading = readers.len();
                    counts.shards_finished = finished_count(&shards);
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
        Ok(self.summary(
            shards,
            stopped.unwrap_or(StopReason::CaughtUp),
            started.elapsed(),
        ))
    }

    /// Adds new shards, and passes news of closed shards to their readers.
    fn merge_listing(
        &self,
        shards: &mut BTreeMap<String, Entry>,
        listing: Vec<ShardInfo>,
        checkpoints: &HashMap<String, Checkpoint>,
        first_listing: bool,
    ) {
        for info in listing {
            match shards.get_mut(&info.shard_id) {
                Some(entry) => {
                    // AWS closes a shard once; an emulator may move the end later (moto
                    // keeps adding records to closed shards), so any change is passed on.
                    if let Some(ending) = &info.ending_sequence_number
                        && info.ending_sequence_number != entry.info.ending_sequence_number
                    {
                        tracing::info!(shard = %info.shard_id, ending_sequence_number = %ending, "shard closed (resharded)");
                        if let Some(tx) = &entry.ending_tx {
                            let _ = tx.send(Some(ending.clone()));
                        }
                        if entry.state == EntryState::CaughtUp {
                            // Caught up while it was open; records may have come before it
                            // closed, and it must be read to its end for its children.
                            entry.state = EntryState::Waiting;
                        }
                    }
                    entry.info = info;
                }
                None => {
                    let checkpoint = checkpoints.get(&info.shard_id).cloned();
                    let state = if checkpoint.as_ref().is_some_and(|c| c.finished) {
                        EntryState::Finished
                    } else {
                        EntryState::Waiting
                    };
                    shards.insert(
                        info.shard_id.clone(),
                        Entry {
                            info,
                            state,
                            listed_first: first_listing,
                            checkpoint,
                            reader: None,
                            ending_tx: None,
                        },
                    );
                }
            }
        }
    }

    /// Starts every waiting shard whose parents are finished. Returns the readers to run.
    async fn start_ready(
        &self,
        shards: &mut BTreeMap<String, Entry>,
    ) -> Result<Vec<(ShardReader, watch::Receiver<Option<SequenceNumber>>)>, Error> {
        let ready: Vec<String> = shards
            .iter()
            .filter(|(_, e)| e.state == EntryState::Waiting)
            .filter(|(_, e)| {
                e.info.parents().all(|parent| {
                    shards
                        .get(parent)
                        .is_none_or(|p| p.state == EntryState::Finished)
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut started = Vec::new();
        for id in ready {
            let lineage_archived = shards[&id].info.parents().any(|parent| {
                shards
                    .get(parent)
                    .is_some_and(|p| p.checkpoint.is_some() || p.reader.is_some())
            });
            let entry = shards.get_mut(&id).expect("ready shards have entries");
            let reader = match entry.reader.take() {
                Some(reader) => reader,
                None => {
                    let checkpointed = entry
                        .checkpoint
                        .as_ref()
                        .and_then(|c| c.sequence_number.clone());
                    let (position, from) = match checkpointed {
                        Some(seq) => {
                            let from = format!("after checkpoint {seq}");
                            (Position::After(seq), from)
                        }
                        None if lineage_archived => (
                            Position::Start(StartPosition::TrimHorizon),
                            "TRIM_HORIZON (its parents were archived)".to_owned(),
                        ),
                        None if !entry.listed_first => (
                            Position::Start(StartPosition::TrimHorizon),
                            "TRIM_HORIZON (a new shard)".to_owned(),
                        ),
                        None => (
                            Position::Start(self.options.start),
                            self.options.start.to_string(),
                        ),
                    };
                    if matches!(position, Position::Start(StartPosition::Latest))
                        && entry.info.is_closed()
                    {
                        // No record can arrive in a closed shard any more.
                        tracing::info!(shard = %id, "closed shard skipped: LATEST reads only new records");
                        self.store.save(&id, &Checkpoint::now(None, true)).await?;
                        entry.state = EntryState::Finished;
                        continue;
                    }
                    ShardReader::new(id.clone(), position, from, entry.checkpoint.as_ref())
                }
            };
            let (tx, rx) = watch::channel(entry.info.ending_sequence_number.clone());
            entry.ending_tx = Some(tx);
            entry.state = EntryState::Reading;
            started.push((reader, rx));
        }
        Ok(started)
    }

    fn summary(
        &self,
        shards: BTreeMap<String, Entry>,
        stopped: StopReason,
        elapsed: Duration,
    ) -> ArchiveSummary {
        let mut summary = ArchiveSummary {
            config: self.config.clone(),
            checkpoints: self.store.location().clone(),
            start: self.options.start,
            follow: self.options.follow,
            stopped,
            records: 0,
            written: 0,
            skipped_older: 0,
            oversize: 0,
            retried_batches: 0,
            elapsed,
            shards: Vec::with_capacity(shards.len()),
        };
        for (id, entry) in shards {
            let state = match entry.state {
                EntryState::Finished => ShardState::Finished,
                EntryState::CaughtUp => ShardState::CaughtUp,
                EntryState::Stopped | EntryState::Reading => ShardState::Stopped,
                EntryState::Waiting => ShardState::Waiting,
            };
            let parents = entry.info.parents().map(str::to_owned).collect();
            let (records, sequence_number, started_from) = match &entry.reader {
                Some(reader) => {
                    summary.records += reader.stats.records;
                    summary.written += reader.stats.written;
                    summary.skipped_older += reader.stats.skipped_older;
                    summary.oversize += reader.stats.oversize;
                    summary.retried_batches += reader.stats.retried_batches;
                    (
                        reader.stats.records,
                        reader.archived_upto.clone(),
                        Some(reader.started_from.clone()),
                    )
                }
                None => (0, entry.checkpoint.and_then(|c| c.sequence_number), None),
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

    /// Reads one shard until it is finished, caught up (without follow) or stopped.
    /// Returns the reader, so that a shard that was caught up can be continued exactly where
    /// it was when it turns out to be closed.
    async fn read_shard(
        &self,
        mut reader: ShardReader,
        mut stop: watch::Receiver<bool>,
        ending: watch::Receiver<Option<SequenceNumber>>,
        events: mpsc::UnboundedSender<u64>,
        permits: &Semaphore,
    ) -> (ShardReader, Result<ReaderEnd, Error>) {
        let end = self
            .read_shard_inner(&mut reader, &mut stop, &ending, &events, permits)
            .await;
        (reader, end)
    }

    async fn read_shard_inner(
        &self,
        reader: &mut ShardReader,
        stop: &mut watch::Receiver<bool>,
        ending: &watch::Receiver<Option<SequenceNumber>>,
        events: &mpsc::UnboundedSender<u64>,
        permits: &Semaphore,
    ) -> Result<ReaderEnd, Error> {
        let shard = reader.shard_id.clone();
        let mut throttled = Backoff::new(MIN_CALL_INTERVAL, Duration::from_secs(5));
        let mut write_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut failed_writes = 0u32;
        loop {
            if *stop.borrow() {
                return Ok(ReaderEnd::Stopped);
            }
            let iterator = match reader.iterator.take() {
                Some(iterator) => iterator,
                None => {
                    let got = tokio::select! {
                        got = self.shard_iterator(&shard, &reader.position) => got,
                        _ = until_stopped(stop) => return Ok(ReaderEnd::Stopped),
                    };
                    match got {
                        Ok(Some(iterator)) => {
                            if !reader.announced {
                                reader.announced = true;
                                tracing::info!(stream = %self.config.stream, shard = %shard, from = %reader.started_from, "reading shard");
                            }
                            iterator
                        }
                        // No iterator: the shard has nothing left to read (a closed shard
                        // past its end).
                        Ok(None) => return self.finish(reader).await,
                        Err(CallError::Transient(message)) => {
                            tracing::warn!(shard = %shard, error = %message, "GetShardIterator failed; retrying");
                            if pause(stop, throttled.next_delay()).await {
                                return Ok(ReaderEnd::Stopped);
                            }
                            continue;
                        }
                        Err(CallError::Expired) => continue,
                        Err(CallError::Fatal(error)) => return Err(error),
                    }
                }
            };
            if let Some(last) = reader.last_call {
                let wait = (last + MIN_CALL_INTERVAL).saturating_duration_since(Instant::now());
                if !wait.is_zero() && pause(stop, wait).await {
                    return Ok(ReaderEnd::Stopped);
                }
            }
            let permit = tokio::select! {
                permit = permits.acquire() => permit.expect("the semaphore is never closed"),
                _ = until_stopped(stop) => return Ok(ReaderEnd::Stopped),
            };
            reader.last_call = Some(Instant::now());
            let page = tokio::select! {
                page = self.get_records(&iterator) => page,
                _ = until_stopped(stop) => return Ok(ReaderEnd::Stopped),
            };
            let page = match page {
                Ok(page) => page,
                Err(CallError::Transient(message)) => {
                    drop(permit);
                    reader.iterator = Some(iterator);
                    tracing::warn!(shard = %shard, error = %message, "GetRecords throttled or failed; backing off");
                    if pause(stop, throttled.next_delay()).await {
                        return Ok(ReaderEnd::Stopped);
                    }
                    continue;
                }
                Err(CallError::Expired) => {
                    tracing::debug!(shard = %shard, "shard iterator expired; getting a new one");
                    continue;
                }
                Err(CallError::Fatal(error)) => return Err(error),
            };
            throttled = Backoff::new(MIN_CALL_INTERVAL, Duration::from_secs(5));
            let count = page.records.len();
            let records = page
                .records
                .into_iter()
                .map(|r| to_archive_record(&shard, r))
                .collect::<Result<Vec<_>, Error>>()?;
            if !records.is_empty() {
                let deadline = Instant::now() + self.options.write_budget;
                let write = self.writer.write(&self.config, &records, deadline);
                let mut write = std::pin::pin!(write);
                let written = tokio::select! {
                    outcome = &mut write => Some(outcome),
                    _ = until_stopped(stop) => {
                        tokio::time::timeout(self.options.shutdown_grace, &mut write).await.ok()
                    }
                };
                let Some(outcome) = written else {
                    tracing::info!(shard = %shard, records = count, "batch abandoned at shutdown; it is read again next time");
                    return Ok(ReaderEnd::Stopped);
                };
                let outcome = outcome?;
                reader.stats.written += outcome.written as u64;
                reader.stats.skipped_older += outcome.skipped_older as u64;
                reader.stats.oversize += outcome.oversize as u64;
                match &outcome.lowest_failed {
                    None => {
                        failed_writes = 0;
                        write_backoff =
                            Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
                        let upto = records.iter().map(|r| &r.sequence_number).max().cloned();
                        self.archived(reader, upto, count as u64, events).await?;
                        reader.iterator = page.next_iterator.clone();
                    }
                    Some(lowest) => {
                        // Everything below the lowest failed record landed.
                        let landed: Vec<&ArchiveRecord> = records
                            .iter()
                            .filter(|r| &r.sequence_number < lowest)
                            .collect();
                        let upto = landed.iter().map(|r| &r.sequence_number).max().cloned();
                        self.archived(reader, upto, landed.len() as u64, events)
                            .await?;
                        drop(permit);
                        failed_writes += 1;
                        reader.stats.retried_batches += 1;
                        let reason = outcome
                            .first_error
                            .clone()
                            .unwrap_or_else(|| "unknown".into());
                        if failed_writes >= self.options.max_write_attempts {
                            return Err(Error::ArchiveStalled {
                                stream: self.config.stream.clone(),
                                shard: shard.clone(),
                                sequence_number: lowest.to_string(),
                                attempts: failed_writes,
                                reason,
                            });
                        }
                        tracing::warn!(
                            stream = %self.config.stream,
                            shard = %shard,
                            failed = outcome.failed,
                            retry_from = %lowest,
                            error = %reason,
                            "some records were not archived; reading them again after a backoff"
                        );
                        reader.position = Position::At(lowest.clone());
                        reader.iterator = None;
                        if pause(stop, write_backoff.next_delay()).await {
                            return Ok(ReaderEnd::Stopped);
                        }
                        continue;
                    }
                }
            } else {
                reader.iterator = page.next_iterator.clone();
            }
            drop(permit);

            let Some(_) = &page.next_iterator else {
                return self.finish(reader).await;
            };
            let closed_at = ending.borrow().clone();
            if let Some(end) = &closed_at {
                let zero = SequenceNumber::parse("0").expect("0 is a sequence number");
                if count == 0 && reader.archived_upto.as_ref().unwrap_or(&zero) >= end {
                    return self.finish(reader).await;
                }
            }
            let caught_up = page.millis_behind_latest == Some(0) && count < self.options.batch_size;
            if caught_up && closed_at.is_none() && !self.options.follow {
                tracing::info!(stream = %self.config.stream, shard = %shard, records = reader.stats.records, "shard caught up");
                return Ok(ReaderEnd::CaughtUp);
            }
            if (count == 0 || caught_up) && pause(stop, self.options.idle_poll).await {
                return Ok(ReaderEnd::Stopped);
            }
        }
    }

    /// Records a fully archived stretch of a shard: counts, checkpoint, progress.
    async fn archived(
        &self,
        reader: &mut ShardReader,
        upto: Option<SequenceNumber>,
        records: u64,
        events: &mpsc::UnboundedSender<u64>,
    ) -> Result<(), Error> {
        reader.stats.records += records;
        if let Some(upto) = upto
            && reader.archived_upto.as_ref().is_none_or(|a| &upto > a)
        {
            self.store
                .save(
                    &reader.shard_id,
                    &Checkpoint::now(Some(upto.clone()), false),
                )
                .await?;
            reader.position = Position::After(upto.clone());
            reader.archived_upto = Some(upto);
        }
        if records > 0 {
            let _ = events.send(records);
        }
        Ok(())
    }

    async fn finish(&self, reader: &mut ShardReader) -> Result<ReaderEnd, Error> {
        self.store
            .save(
                &reader.shard_id,
                &Checkpoint::now(reader.archived_upto.clone(), true),
            )
            .await?;
        tracing::info!(stream = %self.config.stream, shard = %reader.shard_id, records = reader.stats.records, "shard finished: closed and read to its end");
        Ok(ReaderEnd::Finished)
    }

    /// GetShardIterator for `position`. `Ok(None)`: the shard has nothing left to read.
    async fn shard_iterator(
        &self,
        shard: &str,
        position: &Position,
    ) -> Result<Option<String>, CallError> {
        let mut call = self
            .kinesis
            .get_shard_iterator()
            .stream_name(self.config.stream.as_str())
            .shard_id(shard);
        call = match position {
            Position::Start(StartPosition::TrimHorizon) => {
                call.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Position::Start(StartPosition::Latest) => {
                call.shard_iterator_type(ShardIteratorType::Latest)
            }
            Position::Start(StartPosition::AtTimestamp(time)) => call
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_smithy_types::DateTime::from_secs_and_nanos(
                    time.timestamp(),
                    time.timestamp_subsec_nanos(),
                )),
            Position::After(seq) => call
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq.as_str()),
            Position::At(seq) => call
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq.as_str()),
        };
        match call.send().await {
            Ok(output) => Ok(output.shard_iterator),
            Err(err) => {
                let checkpoint_misfits = error_code(&err) == Some("InvalidArgumentException")
                    && matches!(position, Position::After(_));
                Err(match self.classify(err, "Kinesis.GetShardIterator") {
                    CallError::Fatal(Error::Aws {
                        operation,
                        kind,
                        code,
                        status,
                        message,
                        source,
                    }) if checkpoint_misfits => CallError::Fatal(Error::Aws {
                        operation,
                        kind,
                        code,
                        status,
                        message: format!(
                            "{message}; the checkpoint of shard {shard} in {} does not fit the \
                             stream (was the stream deleted and created again?): remove that \
                             checkpoint to archive the shard from the start",
                            self.store.location()
                        ),
                        source,
                    }),
                    other => other,
                })
            }
        }
    }

    async fn get_records(&self, iterator: &str) -> Result<Page, CallError> {
        let limit = i32::try_from(self.options.batch_size).unwrap_or(MAX_BATCH_SIZE as i32);
        match self
            .kinesis
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
        {
            Ok(output) => Ok(Page {
                records: output.records,
                next_iterator: output.next_shard_iterator,
                millis_behind_latest: output.millis_behind_latest,
            }),
            Err(err) => Err(self.classify(err, "Kinesis.GetRecords")),
        }
    }

    fn classify<E>(&self, err: SdkError<E, HttpResponse>, operation: &'static str) -> CallError
    where
        E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match error_code(&err) {
            Some("ExpiredIteratorException") => CallError::Expired,
            Some("ResourceNotFoundException") => CallError::Fatal(Error::StreamNotFound {
                stream: self.config.stream.clone(),
                region: self.region.clone(),
            }),
            _ if is_transient(&err) => {
                CallError::Transient(format!("{operation}: {}", describe(&err)))
            }
            _ => CallError::Fatal(aws_error(operation, err)),
        }
    }
}

/// One GetRecords answer.
struct Page {
    records: Vec<aws_sdk_kinesis::types::Record>,
    next_iterator: Option<String>,
    millis_behind_latest: Option<i64>,
}

/// Why a Kinesis call did not answer.
enum CallError {
    /// Throttled, 5xx, timeout: try again after a backoff.
    Transient(String),
    /// The shard iterator is older than 5 minutes: get a new one.
    Expired,
    /// Cannot go on.
    Fatal(Error),
}

/// Where a reader (re)starts when it needs a new shard iterator.
#[derive(Debug, Clone)]
enum Position {
    Start(StartPosition),
    After(SequenceNumber),
    At(SequenceNumber),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    Waiting,
    Reading,
    CaughtUp,
    Finished,
    Stopped,
}

/// What the run knows of a shard.
struct Entry {
    info: ShardInfo,
    state: EntryState,
    /// Listed when the run started (not created during it).
    listed_first: bool,
    /// Its checkpoint when the run started.
    checkpoint: Option<Checkpoint>,
    /// Its reader, once started and while it is not running.
    reader: Option<ShardReader>,
    /// Tells a running reader that its shard closed.
    ending_tx: Option<watch::Sender<Option<SequenceNumber>>>,
}

fn finished_count(shards: &BTreeMap<String, Entry>) -> usize {
    shards
        .values()
        .filter(|e| e.state == EntryState::Finished)
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderEnd {
    Finished,
    CaughtUp,
    Stopped,
}

#[derive(Debug, Default, Clone, Copy)]
struct ReaderStats {
    records: u64,
    written: u64,
    skipped_older: u64,
    oversize: u64,
    retried_batches: u64,
}

/// The state of one shard's reading, kept between runs of its reader within a run.
struct ShardReader {
    shard_id: String,
    /// Where a new iterator starts.
    position: Position,
    /// The iterator for the next GetRecords call.
    iterator: Option<String>,
    /// The checkpoint: every record up to this one is archived.
    archived_upto: Option<SequenceNumber>,
    started_from: String,
    announced: bool,
    last_call: Option<Instant>,
    stats: ReaderStats,
}

impl ShardReader {
    fn new(
        shard_id: String,
        position: Position,
        started_from: String,
        checkpoint: Option<&Checkpoint>,
    ) -> Self {
        Self {
            shard_id,
            position,
            iterator: None,
            archived_upto: checkpoint.and_then(|c| c.sequence_number.clone()),
            started_from,
            announced: false,
            last_call: None,
            stats: ReaderStats::default(),
        }
    }
}

/// A Kinesis record as the writer takes it. The arrival time keeps Kinesis' millisecond
/// precision the way a Lambda event carries it (epoch seconds with three decimals), so both
/// archivers store the same `approximateArrivalTimestamp`.
fn to_archive_record(
    shard: &str,
    record: aws_sdk_kinesis::types::Record,
) -> Result<ArchiveRecord, Error> {
    let sequence_number = SequenceNumber::parse(&record.sequence_number)?;
    // Rounded to the nearest millisecond: AWS sends milliseconds; an emulator may send
    // microseconds, which the Lambda event path would round the same way.
    let arrival = record
        .approximate_arrival_timestamp
        .map(|t| {
            let millis = t.secs() * 1000 + (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000;
            millis as f64 / 1000.0
        })
        .unwrap_or(0.0);
    Ok(ArchiveRecord {
        partition_key: record.partition_key,
        sequence_number,
        shard_id: shard.to_owned(),
        approximate_arrival_timestamp: arrival,
        data: record.data.into_inner(),
        last_update: None,
        expire_after: None,
        oversize_bytes: None,
    })
}

/// Completes when the stop flag is set (or its sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Sleeps for `duration`; returns true when the stop flag was set meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        _ = until_stopped(stop) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::primitives::Blob;

    fn shard(id: u32, parents: &[u32], ending: Option<&str>) -> ShardInfo {
        let name = |n: &u32| format!("shardId-{n:012}");
        ShardInfo {
            shard_id: name(&id),
            parent_shard_id: parents.first().map(name),
            adjacent_parent_shard_id: parents.get(1).map(name),
            ending_sequence_number: ending.map(|e| SequenceNumber::parse(e).unwrap()),
        }
    }

    /// An archiver that makes no AWS call in what these tests use (listing merges and
    /// start decisions), with checkpoints in a temporary file.
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

    #[tokio::test]
    async fn children_start_only_after_every_parent_is_finished() {
        let a = archiver(StartPosition::TrimHorizon, "lineage").await;
        let mut shards = BTreeMap::new();
        // 0 was split into 1 and 2; 1 and 2 were merged into 3.
        let listing = vec![
            shard(0, &[], Some("50")),
            shard(1, &[0], Some("80")),
            shard(2, &[0], None),
            shard(3, &[1, 2], None),
        ];
        a.merge_listing(&mut shards, listing.clone(), &HashMap::new(), true);
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(started(&ready), ["000 from TRIM_HORIZON"]);
        assert!(
            a.start_ready(&mut shards).await.unwrap().is_empty(),
            "started once"
        );

        let (reader, _) = ready.into_iter().next().unwrap();
        let parent = shards.get_mut(&reader.shard_id).unwrap();
        parent.state = EntryState::Finished;
        parent.reader = Some(reader);
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
        let mut finish = |shards: &mut BTreeMap<String, Entry>| {
            let reader = children.next().unwrap();
            let entry = shards.get_mut(&reader.shard_id).unwrap();
            entry.state = EntryState::Finished;
            entry.reader = Some(reader);
        };
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
        let mut shards = BTreeMap::new();
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
        a.merge_listing(&mut shards, listing, &checkpoints, true);
        let ready = a.start_ready(&mut shards).await.unwrap();
        assert_eq!(
            started(&ready),
            [
                "001 from TRIM_HORIZON (its parents were archived)",
                "002 from after checkpoint 7",
                "005 from LATEST"
            ]
        );
        assert_eq!(shards["shardId-000000000004"].state, EntryState::Finished);
        assert!(a.store.load().await.unwrap()["shardId-000000000004"].finished);

        // A shard that appears during the run is read from its start.
        a.merge_listing(&mut shards, vec![shard(6, &[], None)], &checkpoints, false);
        assert_eq!(
            started(&a.start_ready(&mut shards).await.unwrap()),
            ["006 from TRIM_HORIZON (a new shard)"]
        );
    }

    #[tokio::test]
    async fn a_caught_up_shard_that_closes_is_read_again_to_its_end() {
        let a = archiver(StartPosition::TrimHorizon, "reopen").await;
        let mut shards = BTreeMap::new();
        a.merge_listing(
            &mut shards,
            vec![shard(0, &[], None)],
            &HashMap::new(),
            true,
        );
        let (mut reader, _) = a.start_ready(&mut shards).await.unwrap().pop().unwrap();
        reader.archived_upto = Some(SequenceNumber::parse("12").unwrap());
        let entry = shards.get_mut("shardId-000000000000").unwrap();
        entry.state = EntryState::CaughtUp;
        entry.reader = Some(reader);
        a.merge_listing(
            &mut shards,
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

    #[test]
    fn kinesis_records_keep_millisecond_arrival_like_lambda_events() {
        let record = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("49590338271490256608559692538361571095921575989136588898")
            .approximate_arrival_timestamp(aws_smithy_types::DateTime::from_millis(
                1_545_084_650_987,
            ))
            .data(Blob::new(vec![0u8, 0xff]))
            .partition_key("k")
            .build()
            .unwrap();
        let archived = to_archive_record("shardId-000000000003", record).unwrap();
        assert_eq!(archived.approximate_arrival_timestamp, 1545084650.987);
        assert_eq!(
            crate::domain::record::format_epoch_seconds(archived.approximate_arrival_timestamp),
            "1545084650.987"
        );
        assert_eq!(archived.data, vec![0u8, 0xff]);
        let micro = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("1")
            .approximate_arrival_timestamp(aws_smithy_types::DateTime::from_secs_and_nanos(
                1_795_646_227,
                259_600_000,
            ))
            .data(Blob::new(vec![]))
            .partition_key("k")
            .build()
            .unwrap();
        assert_eq!(
            to_archive_record("s", micro)
                .unwrap()
                .approximate_arrival_timestamp,
            1795646227.26,
            "rounded to the nearest millisecond"
        );
        assert_eq!(archived.shard_id, "shardId-000000000003");
        let bad = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("12x")
            .data(Blob::new(vec![]))
            .partition_key("k")
            .build()
            .unwrap();
        assert!(to_archive_record("s", bad).is_err());
    }
}
