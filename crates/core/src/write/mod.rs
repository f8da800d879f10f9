//! Writing a batch of records into its archive table.
//!
//! This is the function both the Lambda archiver and `kinarch archive` call, so the rules
//! (modes, TTL, oversize items, partial failure, replays) cannot drift apart.
//!
//! A record that kinarch replayed with `--metadata` into the stream it was archived from
//! (see [`ReplayFrame::recognize`](crate::domain::frame::ReplayFrame::recognize)) is already in the archive: it is counted in
//! [`WriteCounts::skipped_replay`] and not written, so a replay never replaces a key's newest
//! record (LATEST) nor archives a record twice (ALL). It is handled, not failed: it never
//! holds back delivery or a checkpoint.
//!
//! A record too large for an item, of a stream with an overflow bucket (tag
//! `ArchiveOverflow`, see [`crate::domain::overflow`]), has its payload stored in S3 first
//! and its item written only once the object is: the item then points at the payload
//! (`recordLocation`). A payload that could not be stored by the deadline fails its record
//! like a write that did not land, so it is delivered again, never reported as archived.
//! At most [`WriterOptions::object_concurrency`] payloads are copied and in flight at once.
//!
//! A stream with a Parquet archive (tag `ArchiveParquet`) has each batch written as Parquet
//! files first (`parquet`); when one does not land, the whole batch fails and no item is
//! written. In mode NONE those files are the whole archive.
//!
//! One file per part: [`WriteOutcome`] and [`WriteCounts`] (`outcome`), the ALL path (`all`: BatchWriteItem),
//! the LATEST path (`latest`: conditional PutItem), the claim check (`overflow`), and what
//! is done to a batch before either (`batch`: KPL de-aggregation, replays left out).

mod all;
mod batch;
mod latest;
mod outcome;
mod overflow;
mod parquet;

use std::borrow::Cow;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::ProvideErrorKind;
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::aws::aws_error_with;
use crate::aws::error::AwsErrorKind;
use crate::aws::item::ArchiveStamp;
use crate::aws::objects::ObjectStore;
use crate::aws::retry::{Budget, Retries};
use crate::aws::table_check::archive_table_mismatch;
use crate::aws::tables::describe_table;
use crate::domain::config::{ArchiveMode, StreamArchiveConfig};
use crate::domain::names::TableName;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

pub use outcome::{WriteCounts, WriteOutcome};

use batch::{deaggregate_batch, is_own_replay};
use overflow::Overflow;

/// Tuning of [`ArchiveWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// BatchWriteItem requests in flight at once (ALL mode).
    pub batch_concurrency: usize,
    /// Conditional PutItem requests in flight at once (LATEST mode).
    pub latest_concurrency: usize,
    /// First retry delay; later delays double, with jitter.
    pub first_retry_delay: Duration,
    /// Longest retry delay.
    pub max_retry_delay: Duration,
    /// Payloads stored in the overflow bucket at once (each is copied for its PutObject, up
    /// to 1 MiB or more, so this bounds the writer's extra memory).
    pub object_concurrency: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            batch_concurrency: 8,
            latest_concurrency: 32,
            first_retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_secs(2),
            object_concurrency: 4,
        }
    }
}

/// Writes records into archive tables.
#[derive(Debug, Clone)]
pub struct ArchiveWriter {
    dynamodb: DynamoDbClient,
    objects: Option<ObjectStore>,
    options: WriterOptions,
}

/// Why one request's records did not land.
enum RequestFailure {
    /// DynamoDB refused them as invalid (ValidationException). When the table's key schema
    /// does not fit the mode, the whole batch fails (see [`ArchiveWriter::unfit_table`]);
    /// otherwise they failed as [`Self::Failed`] ones do.
    Invalid(Error),
    /// They did not land. A missing table ([`Error::TableNotFound`]) fails the whole batch.
    Failed(Error),
}

impl RequestFailure {
    /// [`Self::Invalid`] for an error of kind [`AwsErrorKind::Validation`], else
    /// [`Self::Failed`].
    fn of(error: Error) -> Self {
        if error.aws_kind() == Some(AwsErrorKind::Validation) {
            RequestFailure::Invalid(error)
        } else {
            RequestFailure::Failed(error)
        }
    }
}

/// [`Error::Aws`] of a failed write into `table`.
fn write_error<E>(
    operation: &'static str,
    table: &TableName,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    aws_error_with(operation, err, |description| {
        format!("on table {table}: {description}")
    })
}

impl ArchiveWriter {
    /// A writer using `dynamodb`.
    pub fn new(dynamodb: DynamoDbClient, options: WriterOptions) -> Self {
        Self {
            dynamodb,
            objects: None,
            options,
        }
    }

    /// The writer with an S3 client for the payloads of streams with an overflow bucket.
    /// Without one, such payloads fail their records (they are never dropped).
    pub fn with_objects(mut self, objects: ObjectStore) -> Self {
        self.objects = Some(objects);
        self
    }

    /// Archives `records` as `config` says. Writes that have not landed by `deadline` are
    /// given up and reported in [`WriteOutcome::lowest_failed`]; no write is started after
    /// it. Writes are idempotent, so the caller can deliver again from `lowest_failed`.
    ///
    /// A missing table is an error for the whole batch ([`Error::TableNotFound`]), and so is
    /// a table whose key schema does not fit the mode ([`Error::KeySchemaMismatch`]),
    /// checked with one DescribeTable when DynamoDB refuses a write as invalid
    /// (ValidationException): retrying cannot help either. Records replayed into their own
    /// source stream are skipped ([`WriteCounts::skipped_replay`]).
    pub async fn write(
        &self,
        config: &StreamArchiveConfig,
        records: &[ArchiveRecord],
        deadline: Instant,
    ) -> Result<WriteOutcome, Error> {
        if !config.mode.has_table() && config.parquet.is_none() {
            // Nothing would keep the records (ArchiveTags::config refuses such tags; a
            // library caller's own configuration is checked here).
            return Err(Error::InvalidInput(format!(
                "stream {} is archived in mode NONE (Parquet files only) but its configuration \
                 names no Parquet archive: nothing would be archived",
                config.stream
            )));
        }
        let (expanded, containers) = if config.deaggregate {
            deaggregate_batch(config, records)
        } else {
            (records.iter().map(Cow::Borrowed).collect(), 0)
        };
        let user_records = expanded.len() - (records.len() - containers);
        let kept: Vec<&ArchiveRecord> = expanded
            .iter()
            .map(|r| r.as_ref())
            .filter(|r| !is_own_replay(r))
            .collect();
        let skipped_replay = expanded.len() - kept.len();
        if skipped_replay > 0 {
            tracing::debug!(
                stream = %config.stream,
                skipped_replay,
                "records replayed into their source stream are archived already; not written"
            );
        }
        let archived_at = Utc::now();
        let parquet = match &config.parquet {
            None => parquet::ParquetWritten::default(),
            Some(target) => {
                match self
                    .write_parquet(config, target, &kept, archived_at, deadline)
                    .await
                {
                    Ok(written) => written,
                    // The table gets nothing the Parquet archive lacks: the batch is
                    // delivered again as a whole.
                    Err(error) => {
                        let mut outcome = WriteOutcome {
                            records: records.len(),
                            first_error: Some(error),
                            ..WriteOutcome::default()
                        };
                        outcome.set_failed(&kept, |_, _| true);
                        outcome.counts.containers = containers as u64;
                        outcome.counts.user_records = user_records as u64;
                        outcome.counts.skipped_replay = skipped_replay as u64;
                        return Ok(outcome);
                    }
                }
            }
        };
        let stamp = ArchiveStamp::new(archived_at, config.ttl);
        let prepare = |record: &ArchiveRecord| {
            let prepared = record.to_stamped_item(&stamp);
            if prepared.oversize && config.overflow.is_none() {
                tracing::error!(
                    stream = %config.stream,
                    shard = %record.shard_id,
                    sequence_number = %record.sequence_number,
                    partition_key = %record.partition_key,
                    record_bytes = record.data.len(),
                    "record too large for a DynamoDB item: archived without its payload (oversize)"
                );
            }
            prepared
        };
        let overflow = Overflow {
            slots: Semaphore::new(self.options.object_concurrency.max(1)),
            stored: AtomicUsize::new(0),
        };
        let outcome = match config.mode {
            ArchiveMode::All => {
                self.write_all(config, &kept, deadline, prepare, &overflow)
                    .await
            }
            ArchiveMode::Latest => {
                self.write_latest(config, &kept, deadline, prepare, &overflow)
                    .await
            }
            // No table: the Parquet files are the archive.
            ArchiveMode::None => Ok(WriteOutcome {
                counts: WriteCounts {
                    written: kept.len() as u64,
                    ..WriteCounts::default()
                },
                ..WriteOutcome::default()
            }),
        }?;
        Ok(WriteOutcome {
            records: records.len(),
            counts: WriteCounts {
                containers: containers as u64,
                user_records: user_records as u64,
                skipped_replay: skipped_replay as u64,
                overflowed: overflow.stored.into_inner() as u64,
                parquet_files: parquet.files,
                parquet_bytes: parquet.bytes,
                ..outcome.counts
            },
            ..outcome
        })
    }

    /// The retries of one write: the writer's backoff, until `deadline`.
    fn retries(&self, deadline: Instant) -> Retries {
        Retries::new(
            self.options.first_retry_delay,
            self.options.max_retry_delay,
            Budget::Deadline(deadline),
        )
    }

    /// What a request's failure means for the batch: `Err` when the whole batch fails (the
    /// table is missing, or its key schema does not fit the mode: see
    /// [`Self::unfit_table`]), else the error its records failed with.
    async fn batch_failure(
        &self,
        config: &StreamArchiveConfig,
        failure: RequestFailure,
        checked: &mut bool,
    ) -> Result<Error, Error> {
        match failure {
            RequestFailure::Failed(error @ Error::TableNotFound { .. }) => Err(error),
            RequestFailure::Failed(error) => Ok(error),
            RequestFailure::Invalid(error) => match self.unfit_table(config, checked).await {
                Some(unfit) => Err(unfit),
                None => Ok(error),
            },
        }
    }

    fn table_not_found(&self, config: &StreamArchiveConfig) -> Error {
        Error::TableNotFound {
            table: config.table.clone(),
            stream: config.stream.clone(),
            mode: config.mode,
            region: crate::aws::region_name(self.dynamodb.config().region()),
        }
    }

    /// After DynamoDB refused a write as invalid: [`Error::KeySchemaMismatch`] when the
    /// table's key schema does not fit the mode (an ALL table made with a HASH key only,
    /// say), told by one DescribeTable per batch (`checked`). `None`: it fits, or it could
    /// not be told; the records failed as others do.
    async fn unfit_table(&self, config: &StreamArchiveConfig, checked: &mut bool) -> Option<Error> {
        if std::mem::replace(checked, true) {
            return None;
        }
        let region = crate::aws::region_name(self.dynamodb.config().region());
        match describe_table(&self.dynamodb, &config.table).await {
            Ok(Some(info)) if !info.key_schema.fits(config.mode) => {
                Some(archive_table_mismatch(&info, config, &region))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::frame::{ReplayFrame, ReplayMetadata};
    use crate::domain::names::StreamName;
    use crate::domain::sequence::SequenceNumber;
    use std::time::Duration;

    /// A client that cannot reach anything: any call it makes fails.
    fn unreachable_dynamodb() -> DynamoDbClient {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        DynamoDbClient::from_conf(conf)
    }

    pub(super) fn record(key: &str, seq: &str, data: Vec<u8>) -> ArchiveRecord {
        ArchiveRecord::received(
            key.into(),
            SequenceNumber::parse(seq).unwrap(),
            "shardId-000000000000".into(),
            1.5,
            data,
        )
    }

    /// `original` framed as `reinject --metadata` frames it, into its source (`from` None)
    /// or from the stream `from`.
    fn replayed(original: &ArchiveRecord, seq: &str, from: Option<&str>, sep: u8) -> ArchiveRecord {
        let data = ReplayFrame::encode(&ReplayMetadata::of(original, from), &original.data, sep);
        record(&original.partition_key, seq, data)
    }

    pub(super) fn writer() -> ArchiveWriter {
        ArchiveWriter::new(unreachable_dynamodb(), WriterOptions::default())
    }

    #[tokio::test]
    async fn replays_into_the_source_are_counted_and_never_written() {
        let original = record("k", "3", b"payload".to_vec());
        let batch = vec![
            replayed(&original, "10", None, b'|'),
            replayed(&original, "11", None, b'#'),
        ];
        for mode in [ArchiveMode::All, ArchiveMode::Latest] {
            let config = StreamArchiveConfig::new(StreamName::new("orders").unwrap(), mode, None);
            // No request is made: the client would fail it.
            let outcome = writer()
                .write(&config, &batch, Instant::now() + Duration::from_secs(5))
                .await
                .unwrap();
            // Everything else as in `WriteOutcome::default()`.
            assert_eq!(outcome.records, 2, "{mode}");
            assert_eq!(
                outcome.counts,
                WriteCounts {
                    skipped_replay: 2,
                    ..Default::default()
                },
                "{mode}"
            );
            assert!(outcome.lowest_failed.is_none(), "{mode}");
            assert!(outcome.first_error.is_none(), "{mode}");
        }
    }

    #[tokio::test]
    async fn skipped_replays_are_handled_not_failed() {
        let original = record("k", "3", b"payload".to_vec());
        // The replay has the lowest sequence number; the other two must be written (a
        // replay from another stream is that stream's record) and fail here.
        let batch = vec![
            replayed(&original, "10", None, b'|'),
            record("k", "12", b"new".to_vec()),
            replayed(&original, "14", Some("other"), b'|'),
        ];
        for mode in [ArchiveMode::All, ArchiveMode::Latest] {
            let config = StreamArchiveConfig::new(StreamName::new("orders").unwrap(), mode, None);
            let outcome = writer()
                .write(&config, &batch, Instant::now() + Duration::from_millis(300))
                .await
                .unwrap();
            assert_eq!(outcome.records, 3, "{mode}");
            assert_eq!(outcome.counts.skipped_replay, 1, "{mode}");
            assert_eq!(outcome.counts.written, 0, "{mode}");
            assert_eq!(outcome.lowest_failed.unwrap().as_str(), "12", "{mode}");
            // LATEST: the key's newest record (14) failed, so its older one comes again too.
            assert_eq!(outcome.counts.failed, 2, "{mode}");
        }
    }
}
