//! `kinarch tier`: the items of an ALL table that arrived before a time, moved into the
//! Parquet archive (the same layout and schema as the writer's files), and with `delete`
//! removed from the table once the file holding them was read back and checked.
//!
//! # How a run goes
//! 1. The table is read as `scan` reads it (through the time index when there is one, else
//!    a Scan; a worker's segment with `--segment I/N`), payloads in the overflow bucket
//!    fetched, up to [`BUFFER_BYTES`] of payloads at a time.
//! 2. Those records are grouped as the writer groups a batch (one file per shard and arrival
//!    hour, [`files_of`]). For each group the files already under its hour are listed, and
//!    those of its shard whose sequence range overlaps the group's are read: a record already
//!    there with the same content ([`row_digest`]) is not written again (a rerun after an
//!    interruption, or a record the Lambda function also wrote), one there with other content
//!    is neither written nor deleted ([`TierReport::conflicting`]).
//! 3. The rest is written as one file, then read back whole and checked: the same number of
//!    rows and the same [`FileDigest`] (key, sequence, sub-sequence and bytes of every row, in
//!    order). A file that cannot be read back or differs is reported and none of its items is
//!    deleted.
//! 4. With `delete` (which first records `tieredBefore` in the stream's marker object, so
//!    that `--source auto` reads take what arrived before it from the files, see
//!    [`read_parts`](crate::domain::parquet::read_parts)): the items of the records now in a
//!    checked file are deleted
//!    (BatchWriteItem, 25 per request, unprocessed ones retried), then the overflow objects of
//!    the deleted items. An item whose file was not checked is never deleted.
//!
//! An interrupted run (Ctrl-C, a crash) leaves files whose items are still in the table; a
//! rerun finds those records in the files (step 2), writes nothing again and deletes their
//! items. Files of one shard-hour may overlap (a shard-hour larger than the buffer, several
//! workers, a rerun): readers keep one row per record.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::aws::batch_write::{MAX_WRITES_PER_REQUEST, batch_write};
use crate::aws::item::{ArchiveStamp, attr, item_size};
use crate::aws::objects::{ListedObject, ObjectStore};
use crate::aws::retry::{Budget, Retries};
use crate::domain::config::ArchiveMode;
use crate::domain::overflow::ObjectLocation;
use crate::domain::parquet::{
    FileKey, FileRecords, ParquetMarker, ParquetTarget, files_of, hour_prefix,
};
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::{Selection, SelectionSpec, TimeWindow, WorkerSegment};
use crate::domain::tier::{
    BUFFER_BYTES, FileDigest, ITEM_OVERHEAD_BYTES, MonthlyStorage, RowDigest, RowKey, presence,
    row_digest,
};
use crate::error::Error;
use crate::read::parquet::read_whole_file;
use crate::read::{ArchiveReader, ArchiveSource, ReadOptions, TimeIndexUse};

/// Files handled at once (written, read back, their items deleted).
const FILE_CONCURRENCY: usize = 4;

/// How long one BatchWriteItem of deletes retries throttling and unprocessed items.
const DELETE_BUDGET: Duration = Duration::from_secs(300);

/// Problems named in the report at most (the counts count them all).
const NAMED_PROBLEMS: usize = 10;

/// What to tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRequest {
    /// Items whose record arrived before this (`--older-than`).
    pub older_than: DateTime<Utc>,
    /// Delete the items (and their overflow objects) once their file is checked.
    pub delete: bool,
    /// Read and count only: no file written, nothing deleted.
    pub dry_run: bool,
    /// This worker's segment of a Scan (`--segment I/N`).
    pub worker: Option<WorkerSegment>,
    /// Whether an arrival window is read through the time index.
    pub time_index: TimeIndexUse,
}

/// What a tier run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierReport {
    /// Items read from the table (records that arrived before the time).
    pub items_read: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Their size in the table as DynamoDB bills storage (attributes and 100 bytes each).
    pub table_bytes: u64,
    /// Groups of one shard and arrival hour: the files a dry run would write (at least).
    pub groups: u64,
    /// Records written into new files.
    pub records_written: u64,
    /// Records found in the archive's files already, with the same content.
    pub records_already_archived: u64,
    /// Files written and checked.
    pub files_written: u64,
    /// Their bytes.
    pub file_bytes: u64,
    /// Files that could not be written or did not read back as written: their items stay.
    pub files_failed: u64,
    /// Records whose row in an existing file has other content: neither written nor deleted.
    pub conflicting: u64,
    /// Items that cannot be read (not the table contract, a payload that cannot be fetched):
    /// left in the table.
    pub unreadable: u64,
    /// Items deleted.
    pub items_deleted: u64,
    /// Items that should have been deleted and were not (the call failed).
    pub items_not_deleted: u64,
    /// Overflow objects deleted with their items.
    pub payloads_deleted: u64,
    /// The first problems, each one line.
    pub problems: Vec<String>,
    /// The run stopped before the end (Ctrl-C): what is counted was done.
    pub stopped: bool,
}

impl TierReport {
    /// Whether something was left undone that a rerun or a person must see to (exit 1).
    pub fn has_problems(&self) -> bool {
        self.files_failed + self.conflicting + self.unreadable + self.items_not_deleted > 0
    }

    /// What the items read cost per month in the table, and in S3 (at most their payload
    /// bytes: the files are compressed).
    pub fn monthly_storage(&self) -> MonthlyStorage {
        let parquet = if self.file_bytes > 0 {
            self.file_bytes
        } else {
            self.payload_bytes
        };
        MonthlyStorage::of(self.table_bytes, parquet)
    }

    fn problem(&mut self, text: String) {
        tracing::warn!("{text}");
        if self.problems.len() < NAMED_PROBLEMS {
            self.problems.push(text);
        }
    }

    fn add(&mut self, other: TierReport) {
        self.records_written += other.records_written;
        self.records_already_archived += other.records_already_archived;
        self.files_written += other.files_written;
        self.file_bytes += other.file_bytes;
        self.files_failed += other.files_failed;
        self.conflicting += other.conflicting;
        self.items_deleted += other.items_deleted;
        self.items_not_deleted += other.items_not_deleted;
        self.payloads_deleted += other.payloads_deleted;
        for problem in other.problems {
            if self.problems.len() < NAMED_PROBLEMS {
                self.problems.push(problem);
            }
        }
    }
}

/// A tier of one stream's ALL table into its Parquet archive.
#[derive(Debug)]
pub struct Tier {
    reader: ArchiveReader,
    target: ParquetTarget,
    objects: ObjectStore,
    dynamodb: DynamoDbClient,
}

impl Tier {
    /// A tier of `reader`'s table into `target` (`--parquet`), else into the Parquet archive
    /// the stream's tag names. Refused for a LATEST table (it holds the newest record per key,
    /// the state, not history) and for mode NONE (no table); without a Parquet archive,
    /// [`Error::NoParquetArchive`].
    pub fn new(
        sdk: &SdkConfig,
        reader: ArchiveReader,
        target: Option<ParquetTarget>,
    ) -> Result<Self, Error> {
        let config = reader.config();
        let reason = match config.mode {
            ArchiveMode::All => None,
            ArchiveMode::Latest => Some(format!(
                "its table {} is a LATEST table, which holds the newest record of each key \
                 (the state), not the history; only ALL tables are tiered",
                config.table
            )),
            ArchiveMode::None => Some(
                "it is archived in mode NONE, to Parquet only: there is no table to tier".into(),
            ),
        };
        if let Some(reason) = reason {
            return Err(Error::NotTierable {
                stream: config.stream.clone(),
                reason,
            });
        }
        let Some(target) = target.or_else(|| config.parquet.clone()) else {
            return Err(Error::NoParquetArchive {
                stream: config.stream.clone(),
            });
        };
        Ok(Self {
            reader,
            target,
            objects: ObjectStore::new(sdk),
            dynamodb: DynamoDbClient::new(sdk),
        })
    }

    /// Where the files go.
    pub fn target(&self) -> &ParquetTarget {
        &self.target
    }

    /// The reader of the table (its configuration, what it has read).
    pub fn reader(&self) -> &ArchiveReader {
        &self.reader
    }

    /// Runs the tier (see the [module documentation](self)) until the items are all handled
    /// or `stop` completes: then the shard-hours in hand are finished, and the records read
    /// but not yet handled stay in the table for the next run. `Err`: the table could not be read on;
    /// what was done before is done (files written, items deleted).
    pub async fn run(
        &self,
        request: &TierRequest,
        stop: impl Future<Output = ()>,
    ) -> Result<TierReport, Error> {
        let selection = Selection::new(SelectionSpec {
            arrived: TimeWindow::new(None, Some(request.older_than)),
            worker: request.worker,
            ..SelectionSpec::default()
        })?;
        let options = ReadOptions {
            source: ArchiveSource::Table,
            time_index: request.time_index,
            ..ReadOptions::default()
        };
        if request.delete && !request.dry_run {
            self.mark_tiered(request.older_than).await?;
        }
        let mut records = self.reader.read(&selection, options);
        let mut report = TierReport::default();
        let mut buffer: Vec<ArchiveRecord> = Vec::new();
        let mut buffered = 0usize;
        let stamp = ArchiveStamp::new(Utc::now(), None);
        let mut stop = std::pin::pin!(stop);
        loop {
            let next = tokio::select! {
                biased;
                () = &mut stop => {
                    report.stopped = true;
                    return Ok(report);
                }
                next = records.next() => next,
            };
            match next {
                None => break,
                Some(Ok(record)) => {
                    report.items_read += 1;
                    report.payload_bytes += record.data.len() as u64;
                    report.table_bytes += item_size(&record.to_stamped_item(&stamp).item) as u64
                        + ITEM_OVERHEAD_BYTES;
                    buffered += record.data.len();
                    buffer.push(record);
                    if buffered >= BUFFER_BYTES {
                        self.flush(&mut buffer, request, &mut report, &mut stop)
                            .await;
                        buffered = 0;
                        if report.stopped {
                            return Ok(report);
                        }
                    }
                }
                Some(Err(err)) if err.is_per_record() => {
                    report.unreadable += 1;
                    report.problem(format!("left in the table: {err}"));
                }
                Some(Err(err)) => {
                    // Finish what was read: those items are handled as they would have been.
                    self.flush(&mut buffer, request, &mut report, &mut stop)
                        .await;
                    return Err(err);
                }
            }
        }
        self.flush(&mut buffer, request, &mut report, &mut stop)
            .await;
        Ok(report)
    }

    /// Records in the marker object that what arrived before `older_than` is in the files
    /// (and may leave the table): `--source auto` reads then take it from there. Written
    /// before the first item is deleted; a later time never moves back.
    async fn mark_tiered(&self, older_than: DateTime<Utc>) -> Result<(), Error> {
        let stream = &self.reader.config().stream;
        let mut marker = self
            .objects
            .marker(&self.target, stream)
            .await?
            .unwrap_or_else(|| ParquetMarker {
                stream: stream.to_string(),
                parquet_since: None,
                tiered_before: None,
            });
        if marker
            .tiered_before
            .is_some_and(|before| before >= older_than)
        {
            return Ok(());
        }
        marker.tiered_before = Some(older_than);
        self.objects.put_marker(&self.target, stream, &marker).await
    }

    /// Handles the buffered records, shard-hour by shard-hour, and empties the buffer. When
    /// `stop` completes, no further shard-hour starts and those in hand are finished
    /// ([`TierReport::stopped`]).
    async fn flush(
        &self,
        buffer: &mut Vec<ArchiveRecord>,
        request: &TierRequest,
        report: &mut TierReport,
        stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) {
        let files = files_of(buffer.iter());
        report.groups += files.len() as u64;
        if !request.dry_run {
            let listings = self.hour_listings(&files).await;
            let halt = AtomicBool::new(false);
            let mut outcomes = futures::stream::iter(files)
                .take_while(|_| std::future::ready(!halt.load(Ordering::Relaxed)))
                .map(|file| {
                    let listed = listings.get(&file.key.hour).map_or(&[][..], Vec::as_slice);
                    self.tier_group(file.key, file.records, listed, request.delete)
                })
                .buffer_unordered(FILE_CONCURRENCY);
            loop {
                tokio::select! {
                    biased;
                    () = stop.as_mut(), if !report.stopped => {
                        report.stopped = true;
                        halt.store(true, Ordering::Relaxed);
                    }
                    outcome = outcomes.next() => match outcome {
                        Some(outcome) => report.add(outcome),
                        None => break,
                    },
                }
            }
        }
        buffer.clear();
    }

    /// One shard-hour's records: written unless archived already, checked, then deleted.
    async fn tier_group(
        &self,
        key: FileKey,
        records: Vec<&ArchiveRecord>,
        listed: &[ListedObject],
        delete: bool,
    ) -> TierReport {
        let mut report = TierReport::default();
        let existing = self.existing_rows(&key, listed).await;
        let split = presence(&records, &existing);
        report.records_already_archived += split.archived.len() as u64;
        report.conflicting += split.conflicting.len() as u64;
        for record in split.conflicting.iter().take(NAMED_PROBLEMS) {
            report.problem(format!(
                "record {}/{} of {} is in the Parquet archive already with other content: \
                 neither written again nor deleted from the table",
                record.partition_key, record.sequence_number, record.shard_id
            ));
        }
        let mut checked = split.archived;
        if !split.to_write.is_empty() {
            match self.write_checked(&split.to_write).await {
                Ok(bytes) => {
                    report.files_written += 1;
                    report.file_bytes += bytes;
                    report.records_written += split.to_write.len() as u64;
                    checked.extend(split.to_write);
                }
                Err(problem) => {
                    report.files_failed += 1;
                    report.problem(problem);
                }
            }
        }
        if delete && !checked.is_empty() {
            self.delete_items(&checked, &mut report).await;
        }
        report
    }

    /// The objects under each arrival hour of `files`, listed once per hour (the groups of
    /// one hour's shards share its listing). An hour that cannot be listed has none here:
    /// its records are written (again, if they were).
    async fn hour_listings(
        &self,
        files: &[FileRecords<'_>],
    ) -> HashMap<DateTime<Utc>, Vec<ListedObject>> {
        let stream = &self.reader.config().stream;
        let hours: std::collections::BTreeSet<DateTime<Utc>> =
            files.iter().map(|file| file.key.hour).collect();
        let mut listings = HashMap::new();
        for hour in hours {
            let prefix = hour_prefix(&self.target, stream, hour);
            match self.objects.list(self.target.bucket(), &prefix).await {
                Ok(listed) => {
                    listings.insert(hour, listed);
                }
                Err(err) => {
                    tracing::warn!(error = %err, prefix, "cannot list the hour's files; writing its records");
                }
            }
        }
        listings
    }

    /// The rows (key and digest) of the files already in the archive (`listed`, their hour)
    /// that may hold records of `group` (its shard, an overlapping sequence range). A file
    /// that cannot be read holds nothing here: its records are written again.
    async fn existing_rows(
        &self,
        group: &FileKey,
        listed: &[ListedObject],
    ) -> HashMap<RowKey, RowDigest> {
        let mut rows = HashMap::new();
        for object in listed {
            let Some(file) = FileKey::parse(&object.location.key) else {
                continue;
            };
            let overlaps = file.shard_id == group.shard_id
                && file.first <= group.last
                && file.last >= group.first;
            if !overlaps {
                continue;
            }
            match self.read_whole(&object.location).await {
                Ok(records) => {
                    for record in records {
                        let digest = row_digest(&record);
                        rows.insert((record.sequence_number, record.sub_sequence_number), digest);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "an existing file cannot be read; its records are written again");
                }
            }
        }
        rows
    }

    /// Writes `records` (one shard-hour, in order) as one file, reads it back whole and
    /// checks it. `Ok`: its size; `Err`: what went wrong, one line.
    async fn write_checked(&self, records: &[&ArchiveRecord]) -> Result<u64, String> {
        let stream = &self.reader.config().stream;
        let key = files_of(records.iter().copied())
            .into_iter()
            .next()
            .expect("one group")
            .key;
        let location = ObjectLocation {
            bucket: self.target.bucket().clone(),
            key: key.key(&self.target, stream),
        };
        let failed = |what: String| {
            format!(
                "file {location} ({} records of {}): {what}; its items stay in the table",
                records.len(),
                key.shard_id
            )
        };
        let body = crate::parquet::encode(records, Utc::now(), stream)
            .map_err(|e| failed(format!("not written: {e}")))?;
        let size = body.len() as u64;
        let retries = Retries::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            Budget::For(DELETE_BUDGET),
        );
        self.objects
            .put(&location, Bytes::from(body), retries)
            .await
            .map_err(|e| failed(format!("not written: {e}")))?;
        let read = self
            .read_whole(&location)
            .await
            .map_err(|e| failed(format!("written but not readable back: {e}")))?;
        let wrote = FileDigest::of(records.iter().copied());
        let found = FileDigest::of(read.iter());
        if wrote != found {
            return Err(failed(format!(
                "written but it reads back as {} rows of other content than the {} written",
                found.rows, wrote.rows
            )));
        }
        tracing::debug!(location = %location, rows = wrote.rows, bytes = size, "file written and checked");
        Ok(size)
    }

    /// A whole file's records, in order (one GET).
    async fn read_whole(&self, location: &ObjectLocation) -> Result<Vec<ArchiveRecord>, Error> {
        read_whole_file(&self.objects, location).await
    }

    /// Deletes the items of `records` (in a checked file), 25 per request, then the overflow
    /// objects of those deleted.
    async fn delete_items(&self, records: &[&ArchiveRecord], report: &mut TierReport) {
        let config = self.reader.config();
        let not_found = || Error::TableNotFound {
            table: config.table.clone(),
            stream: config.stream.clone(),
            mode: config.mode,
            region: crate::aws::region_name(self.dynamodb.config().region()),
        };
        for chunk in records.chunks(MAX_WRITES_PER_REQUEST) {
            let requests = chunk.iter().map(|record| delete_request(record)).collect();
            let retries = Retries::new(
                Duration::from_millis(50),
                Duration::from_secs(5),
                Budget::For(DELETE_BUDGET),
            );
            let left =
                match batch_write(&self.dynamodb, &config.table, requests, retries, &not_found)
                    .await
                {
                    Ok(()) => Vec::new(),
                    Err(gave_up) => {
                        report.problem(format!(
                        "{} items of table {} were not deleted (they are in the Parquet archive; \
                         run tier again): {}",
                        gave_up.left.len(),
                        config.table,
                        gave_up.error
                    ));
                        gave_up.left
                    }
                };
            let kept: std::collections::HashSet<(String, String)> =
                left.iter().filter_map(key_of_delete).collect();
            for record in chunk {
                if kept.contains(&(record.partition_key.clone(), record.range_key())) {
                    report.items_not_deleted += 1;
                    continue;
                }
                report.items_deleted += 1;
                if let Some(stored) = &record.stored {
                    match self.objects.delete(&stored.location).await {
                        Ok(()) => report.payloads_deleted += 1,
                        Err(err) => report.problem(format!(
                            "the overflow object {} of a deleted item was not deleted \
                             (delete it, or let the bucket's expiry rule): {err}",
                            stored.location
                        )),
                    }
                }
            }
        }
    }
}

/// The DeleteRequest of a record's item (an ALL table's key).
fn delete_request(record: &ArchiveRecord) -> WriteRequest {
    let key = HashMap::from([
        (
            attr::PARTITION_KEY.to_owned(),
            AttributeValue::S(record.partition_key.clone()),
        ),
        (
            attr::SEQUENCE_NUMBER.to_owned(),
            AttributeValue::S(record.range_key()),
        ),
    ]);
    WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .expect("key is set"),
        )
        .build()
}

/// The key of a DeleteRequest: partition key and range key.
fn key_of_delete(request: &WriteRequest) -> Option<(String, String)> {
    let key = &request.delete_request.as_ref()?.key;
    let text = |name: &str| key.get(name)?.as_s().ok().cloned();
    Some((text(attr::PARTITION_KEY)?, text(attr::SEQUENCE_NUMBER)?))
}
