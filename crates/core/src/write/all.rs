//! ALL mode: every record is an item, written with BatchWriteItem (at most 25 per request,
//! planned by [`crate::domain::plan::plan_all`]), its UnprocessedItems retried until the
//! deadline.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use futures::future::Either;
use tokio::time::Instant;

use super::overflow::Overflow;
use super::{ArchiveWriter, RequestFailure, WriteOutcome};
use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::item::{Item, PreparedItem, attr};
use crate::aws::retry::Backoff;
use crate::aws::{describe, error_code, is_transient};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::kpl::RecordPosition;
use crate::domain::plan::{failures, plan_all};
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

impl ArchiveWriter {
    pub(super) async fn write_all(
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
        // Measured decisions (why: BENCHMARKS.md, "The writer's measured decisions"):
        // items are built when their request starts, so only requests in flight hold items;
        // a request with no payload to store is `batch_write`'s own future over a
        // `Vec<(usize, Item)>` (no `PreparedItem` copy); only a request with a payload to
        // store takes `store_then_write`, boxed.
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
    /// is not written. Its payload futures are boxed and built only for such a request
    /// (measured: BENCHMARKS.md, "The writer's measured decisions").
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
}
