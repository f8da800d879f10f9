//! A replay straight into a consumer function (`kinarch reinject --target-function`): the
//! selection is delivered as Lambda's Kinesis event source mapping delivers a stream, so the
//! function cannot tell a replay from its stream (the event, the batches and how an answer
//! is read: [`crate::domain::function_event`]).
//!
//! The selection is read whole first (as for `--pace original`), since the function gets
//! each source shard's records in sequence order and an archive table returns them by
//! partition key. Then each shard is delivered batch after batch, one batch in flight per
//! shard, `concurrency` shards at once. A batch the function fails (function error, or
//! `batchItemFailures`) is delivered again from its first failed record, up to
//! `max_attempts` times from the same record with backoff (the one `aws::retry` backoff); then
//! that shard stops, and its records not delivered are listed. Throttling (429, reserved
//! concurrency) is tried again with backoff for [`THROTTLED_FOR`]. An Invoke the function
//! can never take (the function does not exist, access denied) ends the replay with the
//! error. A stop (Ctrl-C) lets each shard finish its batch in flight and starts no other.
//!
//! The journal (`--journal`) of a function replay keeps, per source shard (not per
//! partition key), the position of the last archived record the function took: a shard's
//! records go in order, one batch at a time, so a rerun skips each shard's records up to
//! it. Its identity names the function ([`crate::replay::runner::replay_identity`]).
//!
//! `--pace original`: each record is due at its arrival time's offset (divided by the
//! speed) from the first record's; a shard's batch takes the records due by then, as the
//! mapping takes the records that arrived. A dry run does not wait (its batches are full, as
//! [`Replay::estimate_function`] counts them).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_lambda::Client as LambdaClient;
use futures::{FutureExt, StreamExt};
use serde::Serialize;

use crate::aws::error::AwsErrorKind;
use crate::aws::functions::{FunctionInfo, invoke};
use crate::aws::retry::{Budget, Retries};
use crate::domain::function_event::{
    Answer, DEFAULT_BATCH_RECORDS, DeliveredRecord, EventSource, MAX_BATCH_RECORDS,
    MAX_EVENT_BYTES, event_json, interpret_answer, next_batch_len, record_event_size,
    shard_records,
};
use crate::domain::pace::OriginalPace;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;
use crate::read::{ReadOptions, ReadStats};
use crate::replay::journal::{Journal, Position};
use crate::replay::reinject::{FailedRecord, refusal, unavailable};
use crate::replay::runner::{JOURNAL_SAVE_INTERVAL, Replay};

/// How long throttled invocations of one batch are tried again.
pub const THROTTLED_FOR: Duration = Duration::from_secs(300);

/// How to deliver into the function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionOptions {
    /// Records per event (1 to [`MAX_BATCH_RECORDS`]); events are also kept within
    /// [`MAX_EVENT_BYTES`].
    pub batch_size: usize,
    /// Shards delivered at once (one batch in flight each).
    pub concurrency: usize,
    /// Invocations of a batch from the same first record before its shard stops.
    pub max_attempts: u32,
    /// The first backoff after a failed or throttled invocation (doubling, with jitter, up
    /// to `max_backoff`).
    pub first_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Build the events, invoke nothing.
    pub dry_run: bool,
    /// The original pace divided by this speed-up (`--pace original --speed F`).
    pub original_pace: Option<f64>,
}

impl Default for FunctionOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_RECORDS,
            concurrency: 4,
            max_attempts: 3,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            dry_run: false,
            original_pace: None,
        }
    }
}

impl FunctionOptions {
    /// Refuses a batch size outside 1 to 10,000 and no attempts or shards.
    pub fn check(&self) -> Result<(), Error> {
        if !(1..=MAX_BATCH_RECORDS).contains(&self.batch_size) {
            return Err(Error::InvalidInput(format!(
                "batch size {} is outside 1 to {MAX_BATCH_RECORDS} (the event source mapping's \
                 limit)",
                self.batch_size
            )));
        }
        if self.max_attempts == 0 || self.concurrency == 0 {
            return Err(Error::InvalidInput(
                "a function replay needs at least one attempt and one shard at once".into(),
            ));
        }
        Ok(())
    }
}

/// Where the events go and what they say of their source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionTarget {
    /// The function.
    pub function: FunctionInfo,
    /// The source stream, as every event record names it.
    pub source: EventSource,
}

/// A shard that stopped before its end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoppedShard {
    /// The source shard.
    pub shard_id: String,
    /// Why it stopped.
    pub reason: String,
    /// Archived records of the shard not delivered.
    pub undelivered: u64,
}

/// What a replay into a function did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionReport {
    /// Archived records read (those an earlier run delivered excluded).
    pub read: u64,
    /// Archived records the function took (in a dry run, that would go).
    pub delivered: u64,
    /// Records an earlier run with the journal had delivered, not delivered again.
    pub skipped_by_journal: u64,
    /// Invocations made (in a dry run, that would be made).
    pub invocations: u64,
    /// Invocations that failed (function error, batch item failures) and were made again.
    pub retried: u64,
    /// Invocations throttled and made again.
    pub throttled: u64,
    /// Bytes of events sent.
    pub bytes: u64,
    /// Records not delivered, with why.
    pub failed: Vec<FailedRecord>,
    /// Shards that stopped before their end.
    pub stopped_shards: Vec<StoppedShard>,
    /// Wall time.
    pub elapsed: Duration,
    /// Stopped by a signal (each shard finished its batch in flight).
    pub stopped: bool,
    /// Stopped while the selection was read: nothing was invoked.
    pub stopped_while_reading: bool,
    /// Records read but not delivered because it was stopped.
    pub unsent: u64,
    /// What reading the archive cost.
    pub read_stats: ReadStats,
}

/// What the estimate of a function replay counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionEstimate {
    /// The function.
    pub target_function: String,
    /// Archived records that would be delivered.
    pub records: u64,
    /// Kinesis records of the events (a KPL container's user records are one).
    pub event_records: u64,
    /// Invocations at least (every batch taken by the function at its first invocation).
    pub invocations: u64,
    /// Bytes of events.
    pub bytes: u64,
    /// Source shards.
    pub shards: u64,
    /// Records that cannot be delivered (payload not archived, or one record's event above
    /// 6 MB).
    pub undeliverable: u64,
}

/// One shard's records, ready to deliver.
struct ShardQueue {
    shard_id: String,
    records: Vec<DeliveredRecord>,
    sizes: Vec<usize>,
    /// When each record is due, from the start (`--pace original`).
    due: Option<Vec<Duration>>,
}

impl Replay {
    /// Reads the selection and delivers it to `target`'s function (see the [module
    /// documentation](crate::replay::function)). `progress` is called with the archived
    /// records delivered so far after each invocation; `listed` with each record read (a dry
    /// run lists them). With `estimate`, counts what it would do instead ([`FunctionEstimate`]
    /// in the report's place): invokes nothing.
    pub async fn deliver_to_function(
        self,
        lambda: &LambdaClient,
        target: &FunctionTarget,
        options: &FunctionOptions,
        stop: impl Future<Output = ()>,
        mut progress: impl FnMut(u64),
        mut listed: impl FnMut(&ArchiveRecord),
    ) -> Result<FunctionReport, Error> {
        options.check()?;
        let started = Instant::now();
        let (archive, selection, read, journal) = self.into_parts();
        let mut stop = std::pin::pin!(stop.fuse());
        let Some((shards, mut report)) = read_shards(
            &archive,
            &selection,
            read,
            journal.as_ref(),
            target,
            stop.as_mut(),
        )
        .await?
        else {
            return Ok(FunctionReport {
                stopped_while_reading: true,
                read_stats: archive.read_stats(),
                ..FunctionReport::default()
            });
        };
        for shard in &shards {
            for record in &shard.records {
                listed_as_archived(record, &mut listed);
            }
        }
        let mut shards = shards;
        if let Some(speed) = options.original_pace {
            set_due_times(&mut shards, speed)?;
        }
        let journal = RefCell::new(journal);
        let state = Shared {
            lambda,
            target,
            options,
            stopping: tokio::sync::watch::channel(false),
            report: RefCell::new(std::mem::take(&mut report)),
            journal: &journal,
            progress: RefCell::new(&mut progress),
            last_save: Cell::new(Instant::now()),
            save_error: RefCell::new(None),
            start: Instant::now(),
        };
        let results = {
            let deliveries = futures::stream::iter(shards)
                .map(|shard| state.deliver_shard(shard))
                .buffer_unordered(options.concurrency)
                .collect::<Vec<Result<(), Error>>>();
            let mut deliveries = std::pin::pin!(deliveries);
            loop {
                tokio::select! {
                    results = &mut deliveries => break results,
                    () = stop.as_mut(), if !*state.stopping.1.borrow() => {
                        let _ = state.stopping.0.send(true);
                        state.report.borrow_mut().stopped = true;
                    }
                }
            }
        };
        if let (Some(journal), false) = (journal.borrow_mut().as_mut(), options.dry_run)
            && let Err(e) = journal.save()
        {
            state.save_error.borrow_mut().get_or_insert(e);
        }
        let mut report = state.report.into_inner();
        results.into_iter().collect::<Result<Vec<()>, Error>>()?;
        if let Some(e) = state.save_error.into_inner() {
            return Err(e);
        }
        report.elapsed = started.elapsed();
        report.read_stats = archive.read_stats();
        report
            .stopped_shards
            .sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(report)
    }

    /// What [`Replay::deliver_to_function`] would do, invoking nothing. `None` when `stop`
    /// completed while reading.
    pub async fn estimate_function(
        self,
        target: &FunctionTarget,
        options: &FunctionOptions,
        stop: impl Future<Output = ()>,
    ) -> Result<Option<FunctionEstimate>, Error> {
        options.check()?;
        let (archive, selection, read, journal) = self.into_parts();
        let stop = std::pin::pin!(stop.fuse());
        let Some((shards, report)) =
            read_shards(&archive, &selection, read, journal.as_ref(), target, stop).await?
        else {
            return Ok(None);
        };
        let mut estimate = FunctionEstimate {
            target_function: target.function.name.clone(),
            shards: shards.len() as u64,
            undeliverable: report.failed.len() as u64,
            ..FunctionEstimate::default()
        };
        for shard in &shards {
            let mut at = 0;
            while at < shard.records.len() {
                match next_batch_len(&shard.sizes[at..], options.batch_size, MAX_EVENT_BYTES) {
                    Some(taken) => {
                        let batch = &shard.records[at..at + taken];
                        estimate.invocations += 1;
                        estimate.event_records += taken as u64;
                        estimate.records += archived_count(batch);
                        estimate.bytes += event_json(batch, &target.source).len() as u64;
                        at += taken;
                    }
                    None => {
                        estimate.undeliverable += archived_count(&shard.records[at..]);
                        break;
                    }
                }
            }
        }
        Ok(Some(estimate))
    }
}

fn listed_as_archived(record: &DeliveredRecord, listed: &mut impl FnMut(&ArchiveRecord)) {
    // A dry run lists what goes: one line per Kinesis record of the events.
    listed(&ArchiveRecord {
        partition_key: record.partition_key.clone(),
        sequence_number: record.sequence_number.clone(),
        shard_id: record.shard_id.clone(),
        approximate_arrival_timestamp: record.arrival,
        data: record.data.clone(),
        last_update: None,
        expire_after: None,
        oversize_bytes: None,
        sub_sequence_number: None,
        explicit_hash_key: None,
        stored: None,
    });
}

fn archived_count(records: &[DeliveredRecord]) -> u64 {
    records.iter().map(|r| r.user_records.len() as u64).sum()
}

/// Reads the selection whole, leaves out what the journal says an earlier run delivered,
/// lists records that cannot be delivered, and groups the rest by shard in delivery order.
/// `None` when `stop` completed first.
async fn read_shards(
    archive: &crate::read::ArchiveReader,
    selection: &crate::domain::selection::Selection,
    read: ReadOptions,
    journal: Option<&Journal>,
    target: &FunctionTarget,
    stop: std::pin::Pin<&mut futures::future::Fuse<impl Future<Output = ()>>>,
) -> Result<Option<(Vec<ShardQueue>, FunctionReport)>, Error> {
    let reading = archive.read(selection, read).collect::<Vec<_>>();
    let records = tokio::select! {
        records = reading => records,
        () = stop => return Ok(None),
    };
    let mut report = FunctionReport::default();
    let mut by_shard: BTreeMap<String, Vec<ArchiveRecord>> = BTreeMap::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let failure = unavailable(error).map_err(|e| {
                    e.explained(|| "reading the source archive failed; nothing was invoked".into())
                })?;
                report.read += 1;
                report.failed.push(FailedRecord {
                    partition_key: failure.partition_key,
                    sequence_number: failure.id.sequence,
                    sub_sequence_number: failure.id.sub_sequence,
                    reason: failure.reason,
                });
                continue;
            }
        };
        let position = Position {
            sequence: record.sequence_number.clone(),
            sub_sequence: record.sub_sequence_number,
        };
        if journal.is_some_and(|j| j.already_sent(&record.shard_id, &position)) {
            report.skipped_by_journal += 1;
            continue;
        }
        report.read += 1;
        if let Some(reason) = refusal(&record) {
            report.failed.push(FailedRecord {
                partition_key: record.partition_key,
                sequence_number: record.sequence_number,
                sub_sequence_number: record.sub_sequence_number,
                reason,
            });
            continue;
        }
        by_shard
            .entry(record.shard_id.clone())
            .or_default()
            .push(record);
    }
    let shards = by_shard
        .into_iter()
        .map(|(shard_id, records)| {
            let records = shard_records(records);
            let sizes = records
                .iter()
                .map(|r| record_event_size(r, &target.source))
                .collect();
            ShardQueue {
                shard_id,
                records,
                sizes,
                due: None,
            }
        })
        .collect();
    Ok(Some((shards, report)))
}

/// Each record's due time at the original pace: offsets in arrival order across shards.
fn set_due_times(shards: &mut [ShardQueue], speed: f64) -> Result<(), Error> {
    let mut pace = OriginalPace::new(speed).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let mut order: Vec<(f64, usize, usize)> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, shard)| {
            shard
                .records
                .iter()
                .enumerate()
                .map(move |(r, record)| (record.arrival, s, r))
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    for shard in shards.iter_mut() {
        shard.due = Some(vec![Duration::ZERO; shard.records.len()]);
    }
    for (arrival, s, r) in order {
        let due = pace.due(arrival);
        if let Some(dues) = shards[s].due.as_mut() {
            dues[r] = due;
        }
    }
    Ok(())
}

/// What the shards' deliveries share (one task: no locks).
struct Shared<'a, P: FnMut(u64)> {
    lambda: &'a LambdaClient,
    target: &'a FunctionTarget,
    options: &'a FunctionOptions,
    stopping: (
        tokio::sync::watch::Sender<bool>,
        tokio::sync::watch::Receiver<bool>,
    ),
    report: RefCell<FunctionReport>,
    journal: &'a RefCell<Option<Journal>>,
    progress: RefCell<&'a mut P>,
    last_save: Cell<Instant>,
    save_error: RefCell<Option<Error>>,
    start: Instant,
}

impl<P: FnMut(u64)> Shared<'_, P> {
    fn stopping(&self) -> bool {
        *self.stopping.1.borrow()
    }

    /// Sleeps `delay`; `false` when a stop came first.
    async fn sleep(&self, delay: Duration) -> bool {
        let mut stopping = self.stopping.1.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = stopping.wait_for(|s| *s) => false,
        }
    }

    /// The records `batch` delivered: counted, told, and noted in the journal.
    fn delivered(&self, shard_id: &str, batch: &[DeliveredRecord]) {
        let count = archived_count(batch);
        let total = {
            let mut report = self.report.borrow_mut();
            report.delivered += count;
            report.delivered
        };
        (self.progress.borrow_mut())(total);
        if self.options.dry_run {
            return;
        }
        let Some(last) = batch.last() else { return };
        let mut journal = self.journal.borrow_mut();
        let Some(journal) = journal.as_mut() else {
            return;
        };
        let sub_sequence = last.user_records.iter().filter_map(|(_, sub)| *sub).max();
        journal.accepted(
            shard_id,
            Position {
                sequence: last.sequence_number.clone(),
                sub_sequence,
            },
        );
        if self.last_save.get().elapsed() >= JOURNAL_SAVE_INTERVAL {
            self.last_save.set(Instant::now());
            if let Err(e) = journal.save() {
                self.save_error.borrow_mut().get_or_insert(e);
            }
        }
    }

    /// The shard stops at `from`: its records from there on are listed as not delivered.
    fn stop_shard(&self, shard: &ShardQueue, from: usize, reason: String) {
        let mut report = self.report.borrow_mut();
        let mut undelivered = 0;
        for (i, record) in shard.records[from..].iter().enumerate() {
            for (partition_key, sub_sequence_number) in &record.user_records {
                undelivered += 1;
                report.failed.push(FailedRecord {
                    partition_key: partition_key.clone(),
                    sequence_number: record.sequence_number.clone(),
                    sub_sequence_number: *sub_sequence_number,
                    reason: match i {
                        0 => reason.clone(),
                        _ => format!(
                            "not delivered: an earlier record of {} was not delivered",
                            shard.shard_id
                        ),
                    },
                });
            }
        }
        report.stopped_shards.push(StoppedShard {
            shard_id: shard.shard_id.clone(),
            reason,
            undelivered,
        });
    }

    async fn deliver_shard(&self, shard: ShardQueue) -> Result<(), Error> {
        let options = self.options;
        let function = &self.target.function.name;
        let new_retries = || {
            Retries::new(
                options.first_backoff,
                options.max_backoff,
                Budget::Attempts(options.max_attempts),
            )
        };
        let new_throttle = || {
            Retries::new(
                options.first_backoff,
                options.max_backoff,
                Budget::For(THROTTLED_FOR),
            )
        };
        let mut failures = new_retries();
        let mut throttles = new_throttle();
        let mut at = 0;
        while at < shard.records.len() {
            if self.stopping() {
                self.report.borrow_mut().unsent += archived_count(&shard.records[at..]);
                return Ok(());
            }
            // At the original pace, the records due by now (the first one waited for). A dry
            // run waits for nothing, as a stream replay's does: its batches are full.
            let mut available = shard.records.len() - at;
            if let (Some(due), false) = (&shard.due, options.dry_run) {
                let wait = due[at].saturating_sub(self.start.elapsed());
                if !wait.is_zero() && !self.sleep(wait).await {
                    continue;
                }
                let now = self.start.elapsed();
                available = due[at..].iter().take_while(|d| **d <= now).count().max(1);
            }
            let Some(taken) = next_batch_len(
                &shard.sizes[at..at + available],
                options.batch_size,
                MAX_EVENT_BYTES,
            ) else {
                self.stop_shard(
                    &shard,
                    at,
                    format!(
                        "its event alone is {} bytes, above Invoke's {MAX_EVENT_BYTES}-byte \
                         payload limit: it cannot be delivered to function {function}",
                        shard.sizes[at]
                    ),
                );
                return Ok(());
            };
            let batch = &shard.records[at..at + taken];
            let event = event_json(batch, &self.target.source);
            {
                let mut report = self.report.borrow_mut();
                report.invocations += 1;
                report.bytes += event.len() as u64;
            }
            if options.dry_run {
                self.delivered(&shard.shard_id, batch);
                at += taken;
                continue;
            }
            let answer = match invoke(self.lambda, function, event).await {
                Ok(answer) => answer,
                Err(error) if error.aws_kind() == Some(AwsErrorKind::Throttled) => {
                    self.report.borrow_mut().throttled += 1;
                    match throttles.next_delay() {
                        Some(delay) => {
                            tracing::debug!(%error, shard = %shard.shard_id, "throttled; invoking again");
                            self.sleep(delay).await;
                            continue;
                        }
                        None => {
                            self.stop_shard(
                                &shard,
                                at,
                                format!(
                                    "invoking function {function}: still throttled after {} s: \
                                     {error}",
                                    THROTTLED_FOR.as_secs()
                                ),
                            );
                            return Ok(());
                        }
                    }
                }
                Err(error) if error.is_transient() => {
                    self.report.borrow_mut().retried += 1;
                    match failures.next_delay() {
                        Some(delay) => {
                            self.sleep(delay).await;
                            continue;
                        }
                        None => {
                            self.stop_shard(
                                &shard,
                                at,
                                format!("invoking function {function}: {error}"),
                            );
                            return Ok(());
                        }
                    }
                }
                Err(error) => {
                    return Err(error.explained(|| {
                        format!("invoking function {function} failed; the replay stops")
                    }));
                }
            };
            throttles = new_throttle();
            let sequences: Vec<_> = batch.iter().map(|r| &r.sequence_number).collect();
            match interpret_answer(
                &sequences,
                answer.function_error.as_deref(),
                &answer.payload,
            ) {
                Answer::Delivered => {
                    self.delivered(&shard.shard_id, batch);
                    at += taken;
                    failures = new_retries();
                }
                Answer::FailedFrom { index, reason } => {
                    if index > 0 {
                        self.delivered(&shard.shard_id, &batch[..index]);
                        at += index;
                        failures = new_retries();
                    }
                    match failures.next_delay() {
                        Some(delay) => {
                            self.report.borrow_mut().retried += 1;
                            tracing::debug!(shard = %shard.shard_id, %reason, "delivering again from the first failed record");
                            self.sleep(delay).await;
                        }
                        None => {
                            self.stop_shard(
                                &shard,
                                at,
                                format!(
                                    "function {function} failed it {} time(s): {reason}",
                                    options.max_attempts
                                ),
                            );
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A function replay's report as `reinject --target-function -o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSummary {
    /// The function (as given).
    pub target_function: String,
    /// Whether nothing was invoked on purpose.
    pub dry_run: bool,
    /// Archived records read.
    pub read: u64,
    /// Archived records the function took (0 in a dry run).
    pub delivered: u64,
    /// In a dry run, the records that would be delivered; `null` otherwise.
    pub would_deliver: Option<u64>,
    /// Invocations.
    pub invocations: u64,
    /// Invocations made again after a failure.
    pub retried: u64,
    /// Invocations throttled and made again.
    pub throttled: u64,
    /// Event bytes.
    pub bytes: u64,
    /// Records not delivered.
    pub failed: usize,
    /// Those records, with why.
    pub failures: Vec<crate::replay::runner::FailureSummary>,
    /// Shards that stopped before their end.
    pub stopped_shards: Vec<StoppedShard>,
    /// Records an earlier run with the journal delivered.
    pub skipped_by_journal: u64,
    /// Wall time.
    pub seconds: f64,
    /// Stopped by a signal.
    pub stopped: bool,
    /// Records read but not delivered because it stopped.
    pub unsent: u64,
}

impl FunctionSummary {
    /// The summary of `report`, delivered to `function`.
    pub fn new(report: &FunctionReport, function: &str, dry_run: bool) -> Self {
        Self {
            target_function: function.to_owned(),
            dry_run,
            read: report.read,
            delivered: if dry_run { 0 } else { report.delivered },
            would_deliver: dry_run.then_some(report.delivered),
            invocations: report.invocations,
            retried: report.retried,
            throttled: report.throttled,
            bytes: report.bytes,
            failed: report.failed.len(),
            failures: report
                .failed
                .iter()
                .map(|f| crate::replay::runner::FailureSummary {
                    partition_key: f.partition_key.clone(),
                    sequence_number: match f.sub_sequence_number {
                        Some(sub) => format!("{}.{sub}", f.sequence_number),
                        None => f.sequence_number.to_string(),
                    },
                    reason: f.reason.clone(),
                })
                .collect(),
            stopped_shards: report.stopped_shards.clone(),
            skipped_by_journal: report.skipped_by_journal,
            seconds: report.elapsed.as_secs_f64(),
            stopped: report.stopped,
            unsent: report.unsent,
        }
    }
}
