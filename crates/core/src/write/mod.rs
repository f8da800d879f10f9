//! Writing a batch of records into its archive table.
//!
//! This is the function both the Lambda archiver and `kinarch archive` call, so the rules
//! (modes, TTL, oversize items, partial failure, replays) cannot drift apart.
//!
//! A record that kinarch replayed with `--metadata` into the stream it was archived from
//! (see [`ReplayFrame::recognize`]) is already in the archive: it is counted in
//! [`WriteOutcome::skipped_replay`] and not written, so a replay never replaces a key's newest
//! record (LATEST) nor archives a record twice (ALL). It is handled, not failed: it never
//! holds back delivery or a checkpoint.
//!
//! A record too large for an item, of a stream with an overflow bucket (tag
//! `ArchiveOverflow`, see [`crate::domain::overflow`]), has its payload stored in S3 first
//! and its item written only once the object is: the item then points at the payload
//! (`recordLocation`). A payload that could not be stored by the deadline fails its record
//! like a write that did not land, so it is delivered again, never reported as archived.
//! At most [`WriterOptions::object_concurrency`] payloads are copied and in flight at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Utc;
use futures::StreamExt;
use futures::future::Either;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::item::{ArchiveStamp, Item, PreparedItem, attr, claim_check};
use crate::aws::objects::ObjectStore;
use crate::aws::retry::Backoff;
use crate::aws::table_check::archive_table_mismatch;
use crate::aws::tables::describe_table;
use crate::aws::{describe, error_code, is_transient};
use crate::domain::config::{ArchiveMode, StreamArchiveConfig};
use crate::domain::frame::ReplayFrame;
use crate::domain::kpl::{self, RecordPosition};
use crate::domain::overflow::StoredPayload;
use crate::domain::plan::{failures, plan_all, reduce_latest};
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

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

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Kinesis records handed in (a KPL container counts once).
    pub records: usize,
    /// KPL containers among them that were de-aggregated (see [`crate::domain::kpl`]).
    pub containers: usize,
    /// User records found in those containers. The other counts ([`Self::written`],
    /// [`Self::skipped_older`], ...) count user records and plain records alike.
    pub user_records: usize,
    /// Items written (ALL: distinct records; LATEST: keys whose newest record was stored).
    pub written: usize,
    /// LATEST: records not written because a newer record of the same key was in the batch
    /// or already in the table. ALL: records delivered twice in the batch.
    pub skipped_older: usize,
    /// Records not written because kinarch replayed them with `--metadata` into the stream
    /// they were archived from: the archive holds them already (see the module
    /// documentation).
    pub skipped_replay: usize,
    /// Items written without their payload because it was too large (see README).
    pub oversize: usize,
    /// Payloads too large for an item that were stored in the stream's overflow bucket.
    pub overflowed: usize,
    /// Records whose write did not land.
    pub failed: usize,
    /// The lowest sequence number that must be delivered again, if any failed.
    pub lowest_failed: Option<SequenceNumber>,
    /// The first error met, for the log.
    pub first_error: Option<String>,
}

/// Writes records into archive tables.
#[derive(Debug, Clone)]
pub struct ArchiveWriter {
    dynamodb: DynamoDbClient,
    objects: Option<ObjectStore>,
    options: WriterOptions,
}

/// What the writes of one batch share for the claim check: the slots bounding payloads in
/// flight ([`WriterOptions::object_concurrency`]) and the count of payloads stored.
struct Overflow {
    slots: Semaphore,
    stored: AtomicUsize,
}

/// Why one request's records did not land.
enum RequestFailure {
    /// The table is missing: nothing in this batch can land.
    TableNotFound,
    /// DynamoDB refused these records as invalid (ValidationException); the message says
    /// why. When the table's key schema does not fit the mode, the whole batch fails (see
    /// [`ArchiveWriter::unfit_table`]); otherwise they failed as [`Self::Failed`] ones do.
    Invalid(String),
    /// These records did not land; the message says why.
    Failed(String),
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
    /// source stream are skipped ([`WriteOutcome::skipped_replay`]).
    pub async fn write(
        &self,
        config: &StreamArchiveConfig,
        records: &[ArchiveRecord],
        deadline: Instant,
    ) -> Result<WriteOutcome, Error> {
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
        let stamp = ArchiveStamp::new(Utc::now(), config.ttl);
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
        }?;
        Ok(WriteOutcome {
            records: records.len(),
            containers,
            user_records,
            skipped_replay,
            overflowed: overflow.stored.into_inner(),
            ..outcome
        })
    }

    /// The claim check of one prepared item: when it is an oversize marker and the stream
    /// has an overflow bucket, stores the payload there and makes the item point at it.
    /// Other items are returned as they are. `Err`: why the payload is not stored (the
    /// record failed; its item must not be written).
    async fn store_payload(
        &self,
        config: &StreamArchiveConfig,
        record: &ArchiveRecord,
        mut prepared: PreparedItem,
        deadline: Instant,
        overflow: &Overflow,
    ) -> Result<Item, String> {
        let Some(target) = config.overflow.as_ref().filter(|_| prepared.oversize) else {
            return Ok(prepared.item);
        };
        let Some(objects) = &self.objects else {
            return Err(format!(
                "stream {} has an overflow bucket but this writer has no S3 client",
                config.stream
            ));
        };
        let location = target.location(&config.stream, record);
        let _slot = overflow
            .slots
            .acquire()
            .await
            .map_err(|_| "overflow slots closed".to_owned())?;
        let backoff = Backoff::new(self.options.first_retry_delay, self.options.max_retry_delay);
        let body = bytes::Bytes::copy_from_slice(&record.data);
        objects
            .put_payload(&location, body, deadline, backoff)
            .await?;
        tracing::debug!(
            stream = %config.stream,
            shard = %record.shard_id,
            sequence_number = %record.sequence_number,
            record_bytes = record.data.len(),
            location = %location,
            "record too large for a DynamoDB item: payload stored in the overflow bucket"
        );
        overflow.stored.fetch_add(1, Ordering::Relaxed);
        claim_check(
            &mut prepared.item,
            &StoredPayload {
                location,
                size: record.data.len() as u64,
            },
        );
        Ok(prepared.item)
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

    async fn write_all(
        &self,
        config: &StreamArchiveConfig,
        records: &[&ArchiveRecord],
        deadline: Instant,
        prepare: impl Fn(&ArchiveRecord) -> PreparedItem,
        overflow: &Overflow,
    ) -> Result<WriteOutcome, Error> {
        let plan = plan_all(records);
        let mut outcome = WriteOutcome {
            records: records.len(),
            ..Default::default()
        };
        let planned: usize = plan.iter().map(Vec::len).sum();
        outcome.skipped_older = records.len() - planned;

        let mut landed = vec![false; records.len()];
        let mut checked = false;
        // A request's items are built when it starts, so only the requests in flight hold
        // items: a batch's items all at once would be ~1 KiB per record.
        //
        // Most requests have no payload to store: their future is `batch_write`'s own and
        // their items go straight into a `Vec<(usize, Item)>`. Keep it so: collecting
        // `(usize, PreparedItem)` (a larger element, so another allocator size class) and
        // converting it cost the Lambda function ~3,700 more minor page faults per
        // 10,000-record invocation (mimalloc, which purges freed pages at once, gave back and
        // refaulted the pages of the item copies `batch_write` makes), ~0.7 µs of CPU per
        // record (BENCHMARKS.md, run I). A request with an oversize record of a stream with
        // an overflow bucket takes `store_then_write`, boxed.
        let mut oversize = 0;
        let mut results = futures::stream::iter(&plan)
            .map(|request| {
                // Positions in `items` of the payloads to store first; none (and not
                // allocated) unless the stream has an overflow bucket and a record is oversize.
                let mut to_store: Vec<usize> = Vec::new();
                let items: Vec<(usize, Item)> = request
                    .iter()
                    .enumerate()
                    .map(|(pos, &i)| {
                        let prepared = prepare(records[i]);
                        if prepared.oversize {
                            if config.overflow.is_some() {
                                to_store.push(pos);
                            } else {
                                oversize += 1;
                            }
                        }
                        (i, prepared.item)
                    })
                    .collect();
                if to_store.is_empty() {
                    Either::Left(self.batch_write(config, items, deadline))
                } else {
                    Either::Right(Box::pin(self.store_then_write(
                        config, records, items, to_store, deadline, overflow,
                    )))
                }
            })
            .buffer_unordered(self.options.batch_concurrency.max(1));
        while let Some((written, failure)) = results.next().await {
            for i in written {
                landed[i] = true;
                outcome.written += 1;
            }
            match failure {
                Some(RequestFailure::TableNotFound) => return Err(self.table_not_found(config)),
                Some(RequestFailure::Invalid(message)) => {
                    if let Some(error) = self.unfit_table(config, &mut checked).await {
                        return Err(error);
                    }
                    outcome.first_error.get_or_insert(message);
                }
                Some(RequestFailure::Failed(message)) => {
                    outcome.first_error.get_or_insert(message);
                }
                None => {}
            }
        }
        drop(results);
        outcome.oversize = oversize;
        // A record delivered twice lands when its twin lands.
        let mut key_landed: HashMap<(&str, RecordPosition<'_>), bool> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            *key_landed
                .entry((r.partition_key.as_str(), r.position()))
                .or_default() |= landed[i];
        }
        let failed =
            |_: usize, r: &ArchiveRecord| !key_landed[&(r.partition_key.as_str(), r.position())];
        let (count, lowest) = failures(records, failed);
        outcome.failed = count;
        outcome.lowest_failed = lowest.cloned();
        Ok(outcome)
    }

    /// A request with payloads to store first (`to_store`: positions in `items` of the
    /// oversize records of a stream with an overflow bucket): an item is written only once
    /// its payload is stored; a record whose payload could not be stored fails, and its item
    /// is not written. The payloads' futures are boxed, built only for such a request (built
    /// for every item of every request they cost about 2 µs per record and 1 MiB of warm
    /// peak, BENCHMARKS.md, run H).
    async fn store_then_write(
        &self,
        config: &StreamArchiveConfig,
        records: &[&ArchiveRecord],
        items: Vec<(usize, Item)>,
        to_store: Vec<usize>,
        deadline: Instant,
        overflow: &Overflow,
    ) -> (Vec<usize>, Option<RequestFailure>) {
        let stored =
            futures::future::join_all(items.into_iter().enumerate().map(|(pos, (i, item))| {
                let prepared = PreparedItem {
                    item,
                    oversize: to_store.contains(&pos),
                };
                Box::pin(async move {
                    let result = self
                        .store_payload(config, records[i], prepared, deadline, overflow)
                        .await;
                    (i, result)
                })
            }))
            .await;
        let mut not_stored = None;
        let items: Vec<(usize, Item)> = stored
            .into_iter()
            .filter_map(|(i, result)| match result {
                Ok(item) => Some((i, item)),
                Err(message) => {
                    not_stored.get_or_insert(message);
                    None
                }
            })
            .collect();
        let (written, failure) = if items.is_empty() {
            (Vec::new(), None)
        } else {
            self.batch_write(config, items, deadline).await
        };
        (written, failure.or(not_stored.map(RequestFailure::Failed)))
    }

    /// One BatchWriteItem request, with its UnprocessedItems retried until they land or the
    /// deadline comes. Returns the indices that landed and why the rest did not.
    async fn batch_write(
        &self,
        config: &StreamArchiveConfig,
        request: Vec<(usize, Item)>,
        deadline: Instant,
    ) -> (Vec<usize>, Option<RequestFailure>) {
        let table = config.table.as_str();
        let key_of = |item: &Item| -> (String, String) {
            let text = |name| {
                item.get(name)
                    .and_then(|v: &AttributeValue| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (text(attr::PARTITION_KEY), text(attr::SEQUENCE_NUMBER))
        };
        let index_of: HashMap<(String, String), usize> =
            request.iter().map(|(i, item)| (key_of(item), *i)).collect();
        let mut pending: Vec<WriteRequest> = request
            .into_iter()
            .map(|(_, item)| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .expect("item is set"),
                    )
                    .build()
            })
            .collect();
        let all: Vec<usize> = index_of.values().copied().collect();
        let mut backoff =
            Backoff::new(self.options.first_retry_delay, self.options.max_retry_delay);
        loop {
            if Instant::now() >= deadline {
                return self.landed_except(
                    &all,
                    &pending,
                    &index_of,
                    key_of,
                    "deadline reached before the write landed",
                );
            }
            let call = self
                .dynamodb
                .batch_write_item()
                .request_items(table, pending.clone())
                .send();
            let message = match tokio::time::timeout_at(deadline, call).await {
                Err(_) => "deadline reached while BatchWriteItem was in flight".to_owned(),
                Ok(Ok(output)) => {
                    pending = output
                        .unprocessed_items
                        .and_then(|mut u| u.remove(table))
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return (all, None);
                    }
                    tracing::debug!(
                        table,
                        unprocessed = pending.len(),
                        "BatchWriteItem left items unprocessed; retrying"
                    );
                    format!("{} items stayed unprocessed (throttled)", pending.len())
                }
                Ok(Err(err)) => {
                    if error_code(&err) == Some("ResourceNotFoundException") {
                        return (Vec::new(), Some(RequestFailure::TableNotFound));
                    }
                    let message = format!("DynamoDB.BatchWriteItem on {table}: {}", describe(&err));
                    if kind_of(&err) == AwsErrorKind::Validation {
                        let (landed, _) =
                            self.landed_except(&all, &pending, &index_of, key_of, &message);
                        return (landed, Some(RequestFailure::Invalid(message)));
                    }
                    if !is_transient(&err) {
                        return self.landed_except(&all, &pending, &index_of, key_of, &message);
                    }
                    tracing::warn!(table, error = %message, "transient DynamoDB error; retrying");
                    message
                }
            };
            if !backoff.wait(deadline).await {
                return self.landed_except(&all, &pending, &index_of, key_of, &message);
            }
        }
    }

    fn landed_except(
        &self,
        all: &[usize],
        pending: &[WriteRequest],
        index_of: &HashMap<(String, String), usize>,
        key_of: impl Fn(&Item) -> (String, String),
        message: &str,
    ) -> (Vec<usize>, Option<RequestFailure>) {
        let not_landed: std::collections::HashSet<usize> = pending
            .iter()
            .filter_map(|w| w.put_request.as_ref())
            .filter_map(|p| index_of.get(&key_of(&p.item)).copied())
            .collect();
        let landed = all
            .iter()
            .copied()
            .filter(|i| !not_landed.contains(i))
            .collect();
        (landed, Some(RequestFailure::Failed(message.to_owned())))
    }

    async fn write_latest(
        &self,
        config: &StreamArchiveConfig,
        records: &[&ArchiveRecord],
        deadline: Instant,
        prepare: impl Fn(&ArchiveRecord) -> PreparedItem,
        overflow: &Overflow,
    ) -> Result<WriteOutcome, Error> {
        let newest = reduce_latest(records);
        let mut outcome = WriteOutcome {
            records: records.len(),
            skipped_older: records.len() - newest.len(),
            ..Default::default()
        };
        let writes: Vec<(usize, PreparedItem)> = newest
            .iter()
            .map(|&i| {
                let mut prepared = prepare(records[i]);
                // LATEST tables have no RANGE key: a user record keeps its container's
                // sequence number there, beside its subSequenceNumber (crate::domain::kpl).
                prepared.item.insert(
                    attr::SEQUENCE_NUMBER.into(),
                    AttributeValue::S(records[i].sequence_number.as_str().to_owned()),
                );
                (i, prepared)
            })
            .collect();
        outcome.oversize = writes
            .iter()
            .filter(|(_, p)| p.oversize && config.overflow.is_none())
            .count();
        let mut results = futures::stream::iter(writes)
            .map(|(i, prepared)| async move {
                let stored = if prepared.oversize && config.overflow.is_some() {
                    // Boxed: only such records carry the S3 call's state.
                    Box::pin(self.store_payload(config, records[i], prepared, deadline, overflow))
                        .await
                } else {
                    Ok(prepared.item)
                };
                let result = match stored {
                    Ok(item) => self.put_if_newer(config, records[i], item, deadline).await,
                    Err(message) => Err(RequestFailure::Failed(message)),
                };
                (i, result)
            })
            .buffer_unordered(self.options.latest_concurrency.max(1));
        let mut failed_keys = std::collections::HashSet::new();
        let mut checked = false;
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(true) => outcome.written += 1,
                Ok(false) => outcome.skipped_older += 1,
                Err(RequestFailure::TableNotFound) => return Err(self.table_not_found(config)),
                Err(RequestFailure::Invalid(message)) => {
                    if let Some(error) = self.unfit_table(config, &mut checked).await {
                        return Err(error);
                    }
                    outcome.first_error.get_or_insert(message);
                    failed_keys.insert(records[i].partition_key.as_str());
                }
                Err(RequestFailure::Failed(message)) => {
                    outcome.first_error.get_or_insert(message);
                    failed_keys.insert(records[i].partition_key.as_str());
                }
            }
        }
        // A key's newest record covers its older ones, so when it failed they all must come
        // again: the lowest of them is where delivery restarts.
        let failed = |_: usize, r: &ArchiveRecord| failed_keys.contains(r.partition_key.as_str());
        let (count, lowest) = failures(records, failed);
        outcome.failed = count;
        outcome.lowest_failed = lowest.cloned();
        Ok(outcome)
    }

    /// Conditional put: stores the item unless the table holds the key with a position
    /// (sequence number, then sub-sequence number) at least as high. `Ok(false)`: a newer
    /// (or the same) record is archived already, which is success for LATEST mode.
    async fn put_if_newer(
        &self,
        config: &StreamArchiveConfig,
        record: &ArchiveRecord,
        item: Item,
        deadline: Instant,
    ) -> Result<bool, RequestFailure> {
        let table = config.table.as_str();
        let mut backoff =
            Backoff::new(self.options.first_retry_delay, self.options.max_retry_delay);
        loop {
            if Instant::now() >= deadline {
                return Err(RequestFailure::Failed(
                    "deadline reached before the write landed".into(),
                ));
            }
            // Sequence numbers compare numerically: a shorter one is smaller, equal lengths
            // compare as strings. DynamoDB's size() gives the length of a string. A user
            // record of a container also replaces the same container's user records with a
            // lower sub-sequence number, and a plain record with the same sequence number
            // (which has no subSequenceNumber).
            let sequence_number = &record.sequence_number;
            let mut call = self
                .dynamodb
                .put_item()
                .table_name(table)
                .set_item(Some(item.clone()))
                .expression_attribute_names("#pk", attr::PARTITION_KEY)
                .expression_attribute_names("#seq", attr::SEQUENCE_NUMBER)
                .expression_attribute_values(
                    ":len",
                    AttributeValue::N(sequence_number.digits().to_string()),
                )
                .expression_attribute_values(
                    ":seq",
                    AttributeValue::S(sequence_number.as_str().to_owned()),
                );
            call = match record.sub_sequence_number {
                None => call.condition_expression(
                    "attribute_not_exists(#pk) OR size(#seq) < :len OR (size(#seq) = :len AND #seq < :seq)",
                ),
                Some(sub) => call
                    .condition_expression(
                        "attribute_not_exists(#pk) OR size(#seq) < :len OR (size(#seq) = :len AND #seq < :seq) \
                         OR (#seq = :seq AND (attribute_not_exists(#sub) OR #sub < :sub))",
                    )
                    .expression_attribute_names("#sub", attr::SUB_SEQUENCE_NUMBER)
                    .expression_attribute_values(":sub", AttributeValue::N(sub.to_string())),
            };
            let call = call.send();
            let message = match tokio::time::timeout_at(deadline, call).await {
                Err(_) => "deadline reached while PutItem was in flight".to_owned(),
                Ok(Ok(_)) => return Ok(true),
                Ok(Err(err)) => match error_code(&err) {
                    Some("ConditionalCheckFailedException") => return Ok(false),
                    Some("ResourceNotFoundException") => return Err(RequestFailure::TableNotFound),
                    _ if kind_of(&err) == AwsErrorKind::Validation => {
                        return Err(RequestFailure::Invalid(format!(
                            "DynamoDB.PutItem on {table}: {}",
                            describe(&err)
                        )));
                    }
                    _ => {
                        let message = format!("DynamoDB.PutItem on {table}: {}", describe(&err));
                        if !is_transient(&err) {
                            return Err(RequestFailure::Failed(message));
                        }
                        tracing::warn!(table, error = %message, "transient DynamoDB error; retrying");
                        message
                    }
                },
            };
            if !backoff.wait(deadline).await {
                return Err(RequestFailure::Failed(message));
            }
        }
    }
}

/// The batch with each KPL container replaced by its user records (plain records borrowed,
/// as they are), and how many containers there were. Each user record keeps the
/// container's sequence number, shard and arrival time, with its index in the container as
/// sub-sequence number. A record that starts with the KPL magic but is not a valid
/// container is archived as the plain record it is, with a warning.
fn deaggregate_batch<'a>(
    config: &StreamArchiveConfig,
    records: &'a [ArchiveRecord],
) -> (Vec<Cow<'a, ArchiveRecord>>, usize) {
    let mut containers = 0;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        match kpl::deaggregate(&record.data) {
            Ok(None) => out.push(Cow::Borrowed(record)),
            Ok(Some(users)) => {
                containers += 1;
                out.extend(users.into_iter().enumerate().map(|(i, user)| {
                    Cow::Owned(ArchiveRecord {
                        partition_key: user.partition_key,
                        sequence_number: record.sequence_number.clone(),
                        shard_id: record.shard_id.clone(),
                        approximate_arrival_timestamp: record.approximate_arrival_timestamp,
                        data: user.data,
                        last_update: None,
                        expire_after: None,
                        oversize_bytes: None,
                        sub_sequence_number: Some(i as u64),
                        explicit_hash_key: user.explicit_hash_key,
                        stored: None,
                    })
                }));
            }
            Err(problem) => {
                tracing::warn!(
                    stream = %config.stream,
                    shard = %record.shard_id,
                    sequence_number = %record.sequence_number,
                    error = %problem,
                    "not a valid KPL container: archived as the plain record it is"
                );
                out.push(Cow::Borrowed(record));
            }
        }
    }
    (out, containers)
}

/// Whether `record` is a replay of kinarch's into the stream it was archived from.
fn is_own_replay(record: &ArchiveRecord) -> bool {
    ReplayFrame::recognize(&record.data).is_some_and(|frame| frame.is_replay_into_source())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::frame::ReplayMetadata;
    use crate::domain::names::StreamName;
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

    fn record(key: &str, seq: &str, data: Vec<u8>) -> ArchiveRecord {
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

    fn writer() -> ArchiveWriter {
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
            assert_eq!(
                outcome,
                WriteOutcome {
                    records: 2,
                    skipped_replay: 2,
                    ..Default::default()
                },
                "{mode}"
            );
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
            assert_eq!(outcome.skipped_replay, 1, "{mode}");
            assert_eq!(outcome.written, 0, "{mode}");
            assert_eq!(outcome.lowest_failed.unwrap().as_str(), "12", "{mode}");
            // LATEST: the key's newest record (14) failed, so its older one comes again too.
            assert_eq!(outcome.failed, 2, "{mode}");
        }
    }

    #[tokio::test]
    async fn a_payload_that_cannot_be_stored_fails_its_record_and_writes_no_item() {
        // No S3 client, an overflow bucket: the large record fails before any DynamoDB
        // call (the client would fail one), and is never counted as written or oversize.
        let batch = vec![record("big", "7", vec![1u8; 600 * 1024])];
        for mode in [ArchiveMode::All, ArchiveMode::Latest] {
            let mut config =
                StreamArchiveConfig::new(StreamName::new("orders").unwrap(), mode, None);
            config.overflow =
                Some(crate::domain::overflow::OverflowTarget::parse("b-1/p").unwrap());
            let outcome = writer()
                .write(&config, &batch, Instant::now() + Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!((outcome.written, outcome.failed), (0, 1), "{mode}");
            assert_eq!((outcome.oversize, outcome.overflowed), (0, 0), "{mode}");
            assert_eq!(outcome.lowest_failed.unwrap().as_str(), "7", "{mode}");
            assert!(
                outcome.first_error.unwrap().contains("no S3 client"),
                "{mode}"
            );
        }
    }

    #[test]
    fn containers_become_user_records_with_the_containers_position_and_shard() {
        let users = vec![
            kpl::UserRecord {
                partition_key: "u1".into(),
                explicit_hash_key: Some("42".into()),
                data: b"a".to_vec(),
            },
            kpl::UserRecord {
                partition_key: "u2".into(),
                explicit_hash_key: None,
                data: b"b".to_vec(),
            },
        ];
        let mut broken = kpl::aggregate(&users);
        broken.pop();
        let batch = vec![
            record("plain", "5", b"p".to_vec()),
            record("agg", "6", kpl::aggregate(&users)),
            record("agg", "7", broken.clone()),
        ];
        let config =
            StreamArchiveConfig::new(StreamName::new("orders").unwrap(), ArchiveMode::All, None);
        let (out, containers) = deaggregate_batch(&config, &batch);
        assert_eq!(containers, 1);
        assert_eq!(out.len(), 4);
        assert_eq!(*out[0], batch[0]);
        assert!(matches!(out[0], Cow::Borrowed(_)));
        for (i, user) in out[1..3].iter().enumerate() {
            assert_eq!(user.partition_key, users[i].partition_key);
            assert_eq!(user.explicit_hash_key, users[i].explicit_hash_key);
            assert_eq!(user.data, users[i].data);
            assert_eq!(user.sequence_number.as_str(), "6");
            assert_eq!(user.sub_sequence_number, Some(i as u64));
            assert_eq!(user.shard_id, batch[1].shard_id);
            assert_eq!(user.approximate_arrival_timestamp, 1.5);
        }
        // A record with the magic that is not a valid container stays as it is.
        assert_eq!(*out[3], batch[2]);
    }
}
