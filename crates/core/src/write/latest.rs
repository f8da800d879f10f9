//! LATEST mode: one item per partition key, its newest record, written with a conditional
//! PutItem that never replaces a newer record.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use tokio::time::Instant;

use super::overflow::Overflow;
use super::{ArchiveWriter, RequestFailure, WriteOutcome, write_error};
use crate::aws::expression::stored_is_older;
use crate::aws::item::{Item, PreparedItem, attr};
use crate::aws::retry::{RetryPolicy, Verdict, retry};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::plan::reduce_latest;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

impl ArchiveWriter {
    /// LATEST: each key's newest record of the batch, written with [`Self::put_if_newer`],
    /// [`WriterOptions::latest_concurrency`](super::WriterOptions) at once.
    pub(super) async fn write_latest(
        &self,
        config: &StreamArchiveConfig,
        records: &[&ArchiveRecord],
        deadline: Instant,
        prepare: impl Fn(&ArchiveRecord) -> PreparedItem,
        overflow: &Overflow,
    ) -> Result<WriteOutcome, Error> {
        let newest = reduce_latest(records);
        let mut outcome = WriteOutcome::default();
        outcome.counts.skipped_older = (records.len() - newest.len()) as u64;
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
        outcome.counts.oversize = writes
            .iter()
            .filter(|(_, p)| p.oversize && config.overflow.is_none())
            .count() as u64;
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
                    Err(error) => Err(RequestFailure::Failed(error)),
                };
                (i, result)
            })
            .buffer_unordered(self.options.latest_concurrency.max(1));
        let mut failed_keys = std::collections::HashSet::new();
        let mut checked = false;
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(true) => outcome.counts.written += 1,
                Ok(false) => outcome.counts.skipped_older += 1,
                Err(failure) => {
                    let error = self.batch_failure(config, failure, &mut checked).await?;
                    outcome.first_error.get_or_insert(error);
                    failed_keys.insert(records[i].partition_key.as_str());
                }
            }
        }
        // A key's newest record covers its older ones, so when it failed they all must come
        // again: the lowest of them is where delivery restarts.
        let failed = |_: usize, r: &ArchiveRecord| failed_keys.contains(r.partition_key.as_str());
        outcome.set_failed(records, failed);
        Ok(outcome)
    }

    /// Conditional put: stores the item unless the table holds the key with a position
    /// (sequence number, then sub-sequence number) at least as high. `Ok(false)`: a newer
    /// (or the same) record is archived already, which is success for LATEST mode.
    /// Transient errors are retried until `deadline`.
    async fn put_if_newer(
        &self,
        config: &StreamArchiveConfig,
        record: &ArchiveRecord,
        item: Item,
        deadline: Instant,
    ) -> Result<bool, RequestFailure> {
        let policy = PutIfNewer {
            writer: self,
            config,
        };
        let condition = stored_is_older(&record.sequence_number, record.sub_sequence_number);
        retry(&policy, self.retries(deadline), (), |_| {
            self.dynamodb
                .put_item()
                .table_name(config.table.as_str())
                .set_item(Some(item.clone()))
                .condition_expression(condition.text.clone())
                .set_expression_attribute_names(Some(condition.names.clone()))
                .set_expression_attribute_values(Some(condition.values.clone()))
                .send()
        })
        .await
        .map_err(|gave_up| RequestFailure::of(gave_up.error))
    }
}

/// LATEST's conditional PutItem: a failed condition is success (a newer record is
/// archived), transient errors are retried, a missing table fails the batch
/// ([`Error::TableNotFound`]).
struct PutIfNewer<'a> {
    writer: &'a ArchiveWriter,
    config: &'a StreamArchiveConfig,
}

impl RetryPolicy for PutIfNewer<'_> {
    type Request = ();
    type Answer = Result<PutItemOutput, SdkError<PutItemError, HttpResponse>>;
    type Output = bool;

    fn operation(&self) -> &'static str {
        PUT_ITEM
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<bool, ()> {
        let Err(err) = answer else {
            return Verdict::Done(true);
        };
        match err.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => Verdict::Done(false),
            Some(e) if e.is_resource_not_found_exception() => {
                Verdict::Fail(self.writer.table_not_found(self.config))
            }
            _ => Verdict::after(write_error(PUT_ITEM, &self.config.table, err)),
        }
    }
}

const PUT_ITEM: &str = "DynamoDB.PutItem";
