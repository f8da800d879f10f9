//! LATEST mode: one item per partition key, its newest record, written with a conditional
//! PutItem that never replaces a newer record.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use tokio::time::Instant;

use super::overflow::Overflow;
use super::{ArchiveWriter, RequestFailure, WriteOutcome};
use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::item::{Item, PreparedItem, attr};
use crate::aws::retry::Backoff;
use crate::aws::{describe, error_code, is_transient};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::plan::{failures, reduce_latest};
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

impl ArchiveWriter {
    pub(super) async fn write_latest(
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
