//! Compaction of the Parquet archive (`kinarch compact`, and the Lambda function on a
//! schedule): the small files of each finished shard-hour rewritten into one. What is
//! rewritten into what is decided in [`crate::domain::compaction`]; this module reads, writes
//! and deletes.
//!
//! One output, step by step:
//! 1. every input file is read whole (one GetObject each) and decoded; a file that cannot
//!    be read, or is gone (another compaction), stops this output with nothing changed;
//! 2. the rows are the union of the inputs, one row per (sequence number, sub-sequence
//!    number), in that order, each keeping its `archivedAt` to the second (see
//!    [`crate::parquet::encode`], which keeps a record's own `lastUpdate`);
//! 3. the new file is stored under the layout's key (one PutObject), then read back and
//!    its rows counted;
//! 4. only then are the inputs deleted.
//!
//! A crash or a failure between 3 and 4 leaves the new file beside (some of) the old ones:
//! their sequence ranges overlap, so readers read them as one run and keep one row per
//! record, and the next compaction finishes the job. A reader that listed the old files
//! before they were deleted reads the new one instead (see `read::parquet`). Nothing is
//! ever overwritten: when the output's key is an input's (a file that spans all the
//! others, as a batch retried in smaller parts makes), that file is kept, and the others
//! are deleted only when it already holds every row of theirs; otherwise the others are
//! compacted among themselves.
//!
//! Run one compaction of a stream at a time (the schedule's rate longer than the
//! function's timeout): two at once are still safe for readers, but may write the same
//! shard-hour twice.

use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use tokio::time::Instant;

use crate::aws::objects::{ListedObject, ObjectStore};
use crate::aws::retry::{Budget, Retries};
use crate::domain::compaction::{
    CompactionProgress, MAX_INPUT_BYTES, Rewrite, plan, progress_key, scheduled_start, union_key,
};
use crate::domain::names::StreamName;
use crate::domain::overflow::ObjectLocation;
use crate::domain::parquet::{
    FileKey, ParquetTarget, hour_of, listing_prefixes, may_hold, stream_prefix,
};
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::TimeWindow;
use crate::error::Error;
use crate::parquet::encode;
use crate::read::parquet::read_whole_file;

/// Input files read at once.
const READS_AHEAD: usize = 8;

/// Deletes in flight at once.
const DELETES_AHEAD: usize = 8;

/// How long the PutObject of an output is retried (throttling, server errors, timeouts)
/// when the run has no deadline.
const PUT_BUDGET: StdDuration = StdDuration::from_secs(60);

/// How long before its deadline a run starts no new output (one output takes seconds).
pub const DEADLINE_MARGIN: StdDuration = StdDuration::from_secs(20);

/// What the default `before` leaves out: hours that ended less than this long ago (a
/// retried batch may still land there; one that lands later anyway is compacted by the
/// next run).
pub const SETTLE: Duration = Duration::hours(1);

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only shard-hours that ended after this time (`None`: from the first).
    pub after: Option<DateTime<Utc>>,
    /// Only shard-hours that ended at or before this time (finished ones).
    pub before: DateTime<Utc>,
    /// Plan only: list and say what would be rewritten; read, write and delete nothing.
    pub dry_run: bool,
    /// Start no output after this instant less [`DEADLINE_MARGIN`] (the Lambda function's).
    pub deadline: Option<Instant>,
    /// Input bytes of one output at most ([`MAX_INPUT_BYTES`]).
    pub max_input_bytes: u64,
}

impl CompactOptions {
    /// Every shard-hour that ended at or before `before`.
    pub fn before(before: DateTime<Utc>) -> Self {
        Self {
            after: None,
            before,
            dry_run: false,
            deadline: None,
            max_input_bytes: MAX_INPUT_BYTES,
        }
    }
}

/// One output of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    /// Its key (`<PREFIX>/<stream>/date=.../hour=.../<shard>-<first>-<last>.parquet`).
    pub key: String,
    /// The files it replaces (their keys), the output's own key included when it was an
    /// input that already held every row (then nothing was written).
    pub inputs: Vec<String>,
    /// Their bytes, together.
    pub input_bytes: u64,
    /// The output's bytes (in a dry run: unknown, 0).
    pub output_bytes: u64,
    /// Its rows (in a dry run: unknown, 0).
    pub rows: u64,
    /// Whether a new file was written (`false` when an input already held every row, and in
    /// a dry run).
    pub written: bool,
    /// Input files deleted.
    pub deleted: u64,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// The stream.
    pub stream: String,
    /// Shard-hours that ended at or before this time were looked at.
    pub before: DateTime<Utc>,
    /// A dry run.
    pub dry_run: bool,
    /// Objects listed.
    pub listed: u64,
    /// Finished shard-hours with at least one file.
    pub shard_hours: u64,
    /// The outputs, in (hour, shard) order.
    pub outputs: Vec<OutputReport>,
    /// Runs of overlapping files above the input bound, left as they are (their keys).
    pub too_large: Vec<Vec<String>>,
    /// Outputs that failed, with why (their files are as they were, or side by side).
    pub failed: Vec<String>,
    /// The deadline came: the hour of the first output not started.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Every shard-hour that ended at or before this time is compacted (`None`: none could
    /// be said to be: a failure in the first hour).
    pub done_before: Option<DateTime<Utc>>,
}

impl CompactionReport {
    /// (files before, bytes before, files after, bytes after) over the outputs: each output
    /// is one file after (in a dry run its bytes are unknown: 0).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        self.outputs.iter().fold((0, 0, 0, 0), |t, o| {
            (
                t.0 + o.inputs.len() as u64,
                t.1 + o.input_bytes,
                t.2 + 1,
                t.3 + o.output_bytes,
            )
        })
    }
}

/// The compaction of Parquet archives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Compactor {
    objects: ObjectStore,
}

impl Compactor {
    /// A compactor using `sdk`'s S3 client.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            objects: ObjectStore::new(sdk),
        }
    }

    /// Compacts the finished shard-hours of `stream` under `target` that `options` select
    /// (see the [module](self)). `Err` only when the listing fails; an output that fails is
    /// in the report's `failed` (and the rest go on).
    pub async fn compact(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
        options: &CompactOptions,
    ) -> Result<CompactionReport, Error> {
        let (listed, files) = self.list(target, stream, options).await?;
        let planned = plan(
            files,
            |o: &ListedObject| o.size,
            options.before,
            options.max_input_bytes,
        );
        let mut report = CompactionReport {
            stream: stream.to_string(),
            before: options.before,
            dry_run: options.dry_run,
            listed,
            shard_hours: planned.shard_hours as u64,
            outputs: Vec::new(),
            too_large: planned
                .too_large
                .iter()
                .map(|run| run.iter().map(|(_, o)| o.location.to_string()).collect())
                .collect(),
            failed: Vec::new(),
            stopped_at: None,
            done_before: Some(hour_of(options.before)),
        };
        for run in &report.too_large {
            tracing::warn!(
                stream = %stream,
                files = ?run,
                max_input_bytes = options.max_input_bytes,
                "overlapping files above the input bound of one output: left as they are"
            );
        }
        let stop_at = options
            .deadline
            .map(|deadline| deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline));
        for rewrite in planned.rewrites {
            let hour = rewrite.output.hour;
            if stop_at.is_some_and(|stop| Instant::now() >= stop) {
                tracing::info!(stream = %stream, hour = %hour, "the deadline is near: compaction stops here");
                report.stopped_at = Some(hour);
                report.done_before = report.done_before.map(|done| done.min(hour));
                break;
            }
            if options.dry_run {
                report.outputs.push(OutputReport {
                    key: rewrite.output.key(target, stream),
                    inputs: rewrite
                        .inputs
                        .iter()
                        .map(|(_, o)| o.location.key.clone())
                        .collect(),
                    input_bytes: rewrite.inputs.iter().map(|(_, o)| o.size).sum(),
                    output_bytes: 0,
                    rows: 0,
                    written: false,
                    deleted: 0,
                });
                continue;
            }
            let output = location(target, &rewrite.output.key(target, stream));
            match self
                .rewrite(target, stream, rewrite, options.deadline)
                .await
            {
                Ok(Some(done)) => report.outputs.push(done),
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(stream = %stream, output = %output, error = %err, "a shard-hour was not compacted");
                    report.failed.push(err.to_string());
                    // Hours from this one on are not all compacted.
                    report.done_before = report.done_before.map(|done| done.min(hour));
                }
            }
        }
        Ok(report)
    }

    /// The scheduled compaction of `stream`: the hours finished since the last run (its
    /// progress object, [`progress_key`]; without one, from the Parquet archive's start,
    /// its marker; without that, every hour), up to now less [`SETTLE`], stopping before
    /// `deadline`; the progress object then says how far it got.
    pub async fn compact_scheduled(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
        deadline: Option<Instant>,
    ) -> Result<CompactionReport, Error> {
        let progress_at = location(target, &progress_key(target, stream));
        let progress = match self.objects.get(&progress_at).await? {
            Some(bytes) => Some(CompactionProgress::parse(&bytes).map_err(|e| {
                Error::InvalidInput(format!(
                    "the compaction progress object {progress_at} is not kinarch's ({e}): \
                     delete it, and the next run starts from the archive's beginning"
                ))
            })?),
            None => None,
        };
        let since = match progress {
            Some(_) => None,
            None => self.parquet_since(target, stream).await?,
        };
        let done = progress.as_ref().map(|p| p.compacted_before);
        let options = CompactOptions {
            after: scheduled_start(done, since),
            deadline,
            ..CompactOptions::before(Utc::now() - SETTLE)
        };
        let report = self.compact(target, stream, &options).await?;
        if let Some(reached) = report.done_before
            && done.is_none_or(|done| reached > done)
        {
            let body = CompactionProgress {
                stream: stream.to_string(),
                compacted_before: reached,
            }
            .to_json();
            self.objects
                .put(&progress_at, Bytes::from(body), put_retries(deadline))
                .await?;
        }
        Ok(report)
    }

    /// When the stream's Parquet archive began (its marker's `parquetSince`); `None` without
    /// one.
    async fn parquet_since(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(self
            .objects
            .marker(target, stream)
            .await?
            .and_then(|marker| marker.parquet_since))
    }

    /// The archive's files under the hours `options` select, and how many objects were
    /// listed.
    async fn list(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
        options: &CompactOptions,
    ) -> Result<(u64, Vec<(FileKey, ListedObject)>), Error> {
        let window = TimeWindow::new(options.after, Some(options.before));
        let prefixes = match options.after {
            Some(_) => listing_prefixes(target, stream, &window, options.before),
            None => vec![stream_prefix(target, stream)],
        };
        let mut listed = 0;
        let mut files = Vec::new();
        for prefix in prefixes {
            let objects = self.objects.list(target.bucket(), &prefix).await?;
            listed += objects.len() as u64;
            files.extend(objects.into_iter().filter_map(|object| {
                let key = FileKey::parse(&object.location.key)?;
                may_hold(&key, &window).then_some((key, object))
            }));
        }
        Ok((listed, files))
    }

    /// Carries out one rewrite; `None` when nothing was left to do (see the module: the
    /// output's key was an input's that lacked rows, and the others were one file).
    async fn rewrite(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
        rewrite: Rewrite<ListedObject>,
        deadline: Option<Instant>,
    ) -> Result<Option<OutputReport>, Error> {
        let output_at = location(target, &rewrite.output.key(target, stream));
        let failed = |reason: String, source: Option<Error>| Error::Compaction {
            output: output_at.to_string(),
            reason,
            source: source.map(Box::new),
        };
        let mut inputs: Vec<(FileKey, ListedObject, Vec<ArchiveRecord>)> =
            futures::stream::iter(rewrite.inputs)
                .map(|(key, listed)| async move {
                    let rows = self.read_rows(&listed.location).await?;
                    Ok::<_, Error>((key, listed, rows))
                })
                .buffered(READS_AHEAD)
                .try_collect()
                .await
                .map_err(|err| {
                    failed(format!("an input file cannot be read ({err})"), Some(err))
                })?;
        loop {
            if inputs.len() < 2 {
                return Ok(None);
            }
            let key = union_key(inputs.iter().map(|(k, _, _)| k));
            let mut union: Vec<&ArchiveRecord> =
                inputs.iter().flat_map(|(_, _, rows)| rows.iter()).collect();
            union.sort_by(|a, b| {
                (&a.sequence_number, a.sub_sequence_number)
                    .cmp(&(&b.sequence_number, b.sub_sequence_number))
            });
            union.dedup_by(|a, b| {
                a.sequence_number == b.sequence_number
                    && a.sub_sequence_number == b.sub_sequence_number
            });
            let input_bytes = inputs.iter().map(|(_, o, _)| o.size).sum();
            let input_keys = || {
                inputs
                    .iter()
                    .map(|(_, o, _)| o.location.key.clone())
                    .collect()
            };
            if let Some(covering) = inputs.iter().position(|(k, _, _)| *k == key) {
                if distinct(&inputs[covering].2) == union.len() {
                    // It holds every row: the others go, nothing is written.
                    let others: Vec<ObjectLocation> = inputs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != covering)
                        .map(|(_, (_, o, _))| o.location.clone())
                        .collect();
                    let deleted = self.delete_all(&others).await.map_err(|err| {
                        failed(
                            format!("deleting a replaced file failed ({err})"),
                            Some(err),
                        )
                    })?;
                    return Ok(Some(OutputReport {
                        key: key.key(target, stream),
                        inputs: input_keys(),
                        input_bytes,
                        output_bytes: inputs[covering].1.size,
                        rows: union.len() as u64,
                        written: false,
                        deleted,
                    }));
                }
                // It lacks rows of the others: it stays, they are compacted among themselves.
                tracing::info!(
                    file = %inputs[covering].1.location,
                    "a file spans the others of its shard-hour without all their rows: it is kept as it is"
                );
                inputs.remove(covering);
                continue;
            }
            let output_at = location(target, &key.key(target, stream));
            let body = encode(&union, chrono::Utc::now(), stream)?;
            let output_bytes = body.len() as u64;
            self.objects
                .put(&output_at, Bytes::from(body), put_retries(deadline))
                .await
                .map_err(|err| failed(format!("writing it failed ({err})"), Some(err)))?;
            let rows = self
                .read_rows(&output_at)
                .await
                .map_err(|err| failed(format!("reading it back failed ({err})"), Some(err)))?;
            if rows.len() != union.len() {
                return Err(failed(
                    format!(
                        "it reads back with {} rows where {} were written; the files it \
                         would replace are kept",
                        rows.len(),
                        union.len()
                    ),
                    None,
                ));
            }
            let replaced: Vec<ObjectLocation> =
                inputs.iter().map(|(_, o, _)| o.location.clone()).collect();
            let deleted = self.delete_all(&replaced).await.map_err(|err| {
                failed(
                    format!("deleting a replaced file failed ({err})"),
                    Some(err),
                )
            })?;
            tracing::info!(
                stream = %stream,
                output = %output_at,
                files = replaced.len(),
                rows = union.len(),
                bytes = output_bytes,
                "shard-hour compacted"
            );
            return Ok(Some(OutputReport {
                key: key.key(target, stream),
                inputs: input_keys(),
                input_bytes,
                output_bytes,
                rows: union.len() as u64,
                written: true,
                deleted,
            }));
        }
    }

    /// Every row of one file (one GetObject); a file that is gone is an error.
    async fn read_rows(&self, at: &ObjectLocation) -> Result<Vec<ArchiveRecord>, Error> {
        read_whole_file(&self.objects, at).await
    }

    /// Deletes `locations`, a few at once; how many.
    async fn delete_all(&self, locations: &[ObjectLocation]) -> Result<u64, Error> {
        futures::stream::iter(locations)
            .map(|at| self.objects.delete(at))
            .buffer_unordered(DELETES_AHEAD)
            .try_fold(0u64, |n, ()| async move { Ok(n + 1) })
            .await
    }
}

/// Rows of one file counted once per (sequence, sub-sequence) number.
fn distinct(rows: &[ArchiveRecord]) -> usize {
    let mut positions: Vec<_> = rows.iter().map(ArchiveRecord::position).collect();
    positions.sort();
    positions.dedup();
    positions.len()
}

fn location(target: &ParquetTarget, key: &str) -> ObjectLocation {
    ObjectLocation {
        bucket: target.bucket().clone(),
        key: key.to_owned(),
    }
}

fn put_retries(deadline: Option<Instant>) -> Retries {
    let budget = match deadline {
        Some(deadline) => Budget::Deadline(deadline),
        None => Budget::For(PUT_BUDGET),
    };
    Retries::new(
        StdDuration::from_millis(100),
        StdDuration::from_secs(2),
        budget,
    )
}
