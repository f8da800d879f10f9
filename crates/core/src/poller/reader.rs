//! One shard's reading: GetRecords pages written as batches, checkpointed once they landed,
//! read again from the lowest failed record when some did not, until the shard is finished,
//! caught up (without `follow`) or stopped. The rules are those of "Batches, failures and
//! checkpoints", "Limits of the Kinesis API" and "Stopping" in the
//! [module documentation](super).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::aws::retry::{Budget, Retries, retry};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;
use crate::poller::checkpoint::{Checkpoint, CheckpointStore};
use crate::poller::kinesis::{
    ShardCall, ShardCalls, ShardOperation, call_retries, to_archive_record,
};
use crate::poller::lineage::read_to_end;
use crate::poller::{MIN_CALL_INTERVAL, PollerOptions, Position, StartPosition};
use crate::write::{ArchiveWriter, WriteCounts};

/// What every reader of a run shares.
pub(super) struct ReadEnv<'a> {
    pub(super) kinesis: ShardCalls<'a>,
    pub(super) writer: &'a ArchiveWriter,
    pub(super) config: &'a StreamArchiveConfig,
    pub(super) store: &'a CheckpointStore,
    pub(super) options: &'a PollerOptions,
    /// One per shard holding a batch (read, being written):
    /// [`PollerOptions::shards_in_flight`].
    pub(super) permits: &'a Semaphore,
    /// Records archived, for the progress display.
    pub(super) events: mpsc::UnboundedSender<u64>,
}

/// How a reader's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReaderEnd {
    Finished,
    CaughtUp,
    Stopped,
}

/// A reader's counts, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ReaderStats {
    /// Records archived (written and checkpointed).
    pub(super) records: u64,
    /// What became of the records of every batch written.
    pub(super) counts: WriteCounts,
    pub(super) retried_batches: u64,
}

/// The state of one shard's reading, kept between runs of its reader within a run.
pub(super) struct ShardReader {
    pub(super) shard_id: String,
    /// Where a new iterator starts.
    position: Position,
    /// The iterator for the next GetRecords call.
    iterator: Option<String>,
    /// The checkpoint: every record up to this one is archived.
    pub(super) archived_upto: Option<SequenceNumber>,
    pub(super) started_from: String,
    announced: bool,
    last_call: Option<Instant>,
    pub(super) stats: ReaderStats,
}

impl ShardReader {
    /// A reader of `shard_id` from `position`, whose checkpoint is `checkpoint`.
    pub(super) fn new(
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

    /// Reads the shard until it is finished, caught up (without follow) or stopped.
    /// Returns the reader, so that a shard that was caught up can be continued exactly where
    /// it was when it turns out to be closed. `ending` carries the shard's
    /// EndingSequenceNumber once it is closed.
    pub(super) async fn read(
        mut self,
        env: &ReadEnv<'_>,
        mut stop: watch::Receiver<bool>,
        ending: watch::Receiver<Option<SequenceNumber>>,
    ) -> (Self, Result<ReaderEnd, Error>) {
        let end = self.read_inner(env, &mut stop, &ending).await;
        (self, end)
    }

    async fn read_inner(
        &mut self,
        env: &ReadEnv<'_>,
        stop: &mut watch::Receiver<bool>,
        ending: &watch::Receiver<Option<SequenceNumber>>,
    ) -> Result<ReaderEnd, Error> {
        let shard = self.shard_id.clone();
        let options = env.options;
        let mut write_retries = write_attempts(options);
        loop {
            if *stop.borrow() {
                return Ok(ReaderEnd::Stopped);
            }
            let iterator = match self.iterator.take() {
                Some(iterator) => iterator,
                None => {
                    // A shard opened at LATEST is read AT_TIMESTAMP of its start when the
                    // first GetShardIterator is retried (see `opening_position`).
                    let mut opening = Some(self.opening_position(env).await?);
                    let policy = ShardCall::new(&shard, ShardOperation::GetShardIterator);
                    let position = &self.position;
                    let got = tokio::select! {
                        got = retry(&policy, call_retries(Budget::Unbounded), (), |_| {
                            let position = opening.take().unwrap_or_else(|| position.clone());
                            let shard = &shard;
                            async move { env.kinesis.shard_iterator(shard, &position).await }
                        }) => got,
                        _ = until_stopped(stop) => return Ok(ReaderEnd::Stopped),
                    };
                    match got.map_err(|gave_up| gave_up.error)? {
                        Some(Some(iterator)) => {
                            if !self.announced {
                                self.announced = true;
                                tracing::info!(stream = %env.config.stream, shard = %shard, from = %self.started_from, "reading shard");
                            }
                            iterator
                        }
                        // No iterator: the shard has nothing left to read (a closed shard
                        // past its end).
                        Some(None) => return self.finish(env).await,
                        None => continue,
                    }
                }
            };
            if let Some(last) = self.last_call {
                let wait = (last + MIN_CALL_INTERVAL).saturating_duration_since(Instant::now());
                if !wait.is_zero() && pause(stop, wait).await {
                    return Ok(ReaderEnd::Stopped);
                }
            }
            // The permit is held from the read until the batch is checkpointed: it bounds
            // memory to `shards_in_flight` GetRecords answers. A failed read gives it back
            // for its backoff, which is never shorter than MIN_CALL_INTERVAL (the first
            // delay of `call_retries`).
            let policy = ShardCall::new(&shard, ShardOperation::GetRecords);
            let read = tokio::select! {
                read = retry(&policy, call_retries(Budget::Unbounded), (), |_| {
                    let iterator = iterator.as_str();
                    async move {
                        let permit = env.permits.acquire().await.expect("the semaphore is never closed");
                        let called = Instant::now();
                        env.kinesis
                            .get_records(iterator, options.batch_size)
                            .await
                            .map(|page| (page, permit, called))
                    }
                }) => read,
                _ = until_stopped(stop) => return Ok(ReaderEnd::Stopped),
            };
            let Some((page, permit, called)) = read.map_err(|gave_up| gave_up.error)? else {
                // Replaced from the last archived position (`self.position`).
                tracing::debug!(shard = %shard, "shard iterator expired; getting a new one");
                continue;
            };
            self.last_call = Some(called);
            let count = page.records.len();
            let records = page
                .records
                .into_iter()
                .map(|r| to_archive_record(&shard, r))
                .collect::<Result<Vec<_>, Error>>()?;
            if !records.is_empty() {
                let deadline = Instant::now() + options.write_budget;
                let write = env.writer.write(env.config, &records, deadline);
                let mut write = std::pin::pin!(write);
                // At shutdown, a batch being written gets its grace period to land and be
                // checkpointed; otherwise it is abandoned unrecorded, to be read again.
                let written = tokio::select! {
                    outcome = &mut write => Some(outcome),
                    _ = until_stopped(stop) => {
                        tokio::time::timeout(options.shutdown_grace, &mut write).await.ok()
                    }
                };
                let Some(outcome) = written else {
                    tracing::info!(shard = %shard, records = count, "batch abandoned at shutdown; it is read again next time");
                    return Ok(ReaderEnd::Stopped);
                };
                let mut outcome = outcome?;
                self.stats.counts.add(&outcome.counts);
                match &outcome.lowest_failed {
                    None => {
                        write_retries = write_attempts(options);
                        let upto = records.iter().map(|r| &r.sequence_number).max().cloned();
                        self.archived(env, upto, count as u64).await?;
                        self.iterator = page.next_iterator.clone();
                    }
                    Some(lowest) => {
                        // Everything below the lowest failed record landed: the checkpoint
                        // moves to the last of those, and the shard is read again at the
                        // lowest failed one, so nothing is skipped (what is written twice
                        // changes nothing).
                        let landed: Vec<&ArchiveRecord> = records
                            .iter()
                            .filter(|r| &r.sequence_number < lowest)
                            .collect();
                        let upto = landed.iter().map(|r| &r.sequence_number).max().cloned();
                        self.archived(env, upto, landed.len() as u64).await?;
                        drop(permit);
                        self.stats.retried_batches += 1;
                        let error = outcome.first_error.take();
                        let reason = error
                            .as_ref()
                            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
                        let Some(delay) = write_retries.next_delay() else {
                            return Err(Error::ArchiveStalled {
                                stream: env.config.stream.clone(),
                                shard: shard.clone(),
                                sequence_number: lowest.to_string(),
                                attempts: write_retries.failed(),
                                reason,
                                source: error.map(Box::new),
                            });
                        };
                        tracing::warn!(
                            stream = %env.config.stream,
                            shard = %shard,
                            failed = outcome.counts.failed,
                            retry_from = %lowest,
                            error = %reason,
                            "some records were not archived; reading them again after a backoff"
                        );
                        self.position = Position::At(lowest.clone());
                        self.iterator = None;
                        if pause(stop, delay).await {
                            return Ok(ReaderEnd::Stopped);
                        }
                        continue;
                    }
                }
            } else {
                self.iterator = page.next_iterator.clone();
            }
            drop(permit);

            let closed_at = ending.borrow().clone();
            if read_to_end(
                page.next_iterator.is_some(),
                count,
                self.archived_upto.as_ref(),
                closed_at.as_ref(),
            ) {
                return self.finish(env).await;
            }
            // Caught up: MillisBehindLatest 0 on a page shorter than the batch size. Without
            // follow an open shard stops there; a closed one is read on to its end.
            let caught_up = page.millis_behind_latest == Some(0) && count < options.batch_size;
            if caught_up && closed_at.is_none() && !options.follow {
                tracing::info!(stream = %env.config.stream, shard = %shard, records = self.stats.records, "shard caught up");
                return Ok(ReaderEnd::CaughtUp);
            }
            if (count == 0 || caught_up) && pause(stop, options.idle_poll).await {
                return Ok(ReaderEnd::Stopped);
            }
        }
    }

    /// Where the next shard iterator starts. A shard opened at LATEST is checkpointed first
    /// with the time (`startedAt`), and any later iterator of it starts AT_TIMESTAMP of that
    /// time (less [`STARTED_AT_MARGIN`](super::checkpoint::STARTED_AT_MARGIN)) until a record is archived: neither a restart nor a
    /// new iterator in this run loses the records that arrive before the first one lands.
    async fn opening_position(&mut self, env: &ReadEnv<'_>) -> Result<Position, Error> {
        if self.position != Position::Start(StartPosition::Latest) {
            return Ok(self.position.clone());
        }
        let checkpoint = Checkpoint::started(Utc::now());
        env.store.save(&self.shard_id, &checkpoint).await?;
        if let Some(time) = checkpoint.resume_time() {
            self.position = Position::Start(StartPosition::AtTimestamp(time));
        }
        Ok(Position::Start(StartPosition::Latest))
    }

    /// Records a fully archived stretch of the shard: counts, checkpoint, progress.
    async fn archived(
        &mut self,
        env: &ReadEnv<'_>,
        upto: Option<SequenceNumber>,
        records: u64,
    ) -> Result<(), Error> {
        self.stats.records += records;
        if let Some(upto) = upto
            && self.archived_upto.as_ref().is_none_or(|a| &upto > a)
        {
            env.store
                .save(&self.shard_id, &Checkpoint::now(Some(upto.clone()), false))
                .await?;
            self.position = Position::After(upto.clone());
            self.archived_upto = Some(upto);
        }
        if records > 0 {
            let _ = env.events.send(records);
        }
        Ok(())
    }

    /// Checkpoints the shard as finished, so that a restart never reads it again and starts
    /// its children at once.
    async fn finish(&mut self, env: &ReadEnv<'_>) -> Result<ReaderEnd, Error> {
        env.store
            .save(
                &self.shard_id,
                &Checkpoint::now(self.archived_upto.clone(), true),
            )
            .await?;
        tracing::info!(stream = %env.config.stream, shard = %self.shard_id, records = self.stats.records, "shard finished: closed and read to its end");
        Ok(ReaderEnd::Finished)
    }
}

/// The budget of reading a shard's records again after writes that did not all land:
/// [`PollerOptions::max_write_attempts`] failures in a row, with a backoff between them.
fn write_attempts(options: &PollerOptions) -> Retries {
    Retries::new(
        Duration::from_millis(500),
        Duration::from_secs(30),
        Budget::Attempts(options.max_write_attempts),
    )
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
