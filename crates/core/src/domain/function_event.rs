//! A replay straight into a consumer function (`reinject --target-function`), its pure
//! parts: the records of one source shard as the function gets them, the Kinesis event of a
//! batch in the exact form Lambda's event source mapping delivers, how a shard's records are
//! cut into batches, and what the function's answer means.
//!
//! **The event.** `{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey",
//! "sequenceNumber","data","approximateArrivalTimestamp"},"eventSource":"aws:kinesis",
//! "eventVersion":"1.0","eventID":"shardId-…:sequence","eventName":"aws:kinesis:record",
//! "invokeIdentityArn","awsRegion","eventSourceARN"}]}`, fields in the mapping's order,
//! `data` in standard base64, the arrival time in epoch seconds with its milliseconds, the
//! shard and sequence number the record had in the source stream, `eventSourceARN` the
//! source stream's. The form is written here (not serialized through `aws_lambda_events`,
//! whose `KinesisRecord` always writes `"encryptionType":"NONE"`, which the mapping leaves
//! out for an unencrypted stream, and turns the arrival time into a date and back); a unit
//! test parses it with `aws_lambda_events::kinesis::KinesisEvent`.
//!
//! **KPL user records.** The archive holds the user records of a KPL container, one item
//! each; the mapping delivered the container. A replay delivers the container again: the
//! user records of one container (same shard and sequence number) selected by the replay
//! are aggregated back into one KPL container ([`crate::domain::kpl::aggregate`]), under
//! the container's sequence number and the first user record's partition key. A replay of
//! whole containers so gives the function the records it got from the stream, and a
//! consumer that de-aggregates (kinarch's archiver does) finds the same user records with
//! the same sub-sequence numbers. A selection that takes only some user records of a
//! container (`--partition-key`, `--where`) delivers a smaller container, whose user
//! records a de-aggregating consumer numbers from 0.
//!
//! **Batches.** Per source shard in sequence order, at most `batch size` records (1 to
//! 10,000, default 100, as the mapping) and at most [`MAX_EVENT_BYTES`] of serialized event
//! (Invoke's synchronous payload limit). A record whose event alone is larger cannot be
//! delivered at all: the shard stops there, as it would stop at a batch that always fails.
//!
//! **The answer.** As the mapping honours it: a function error (Invoke's `FunctionError`)
//! fails the whole batch; a `{"batchItemFailures":[{"itemIdentifier":"<sequenceNumber>"}]}`
//! answer fails the batch from its lowest listed sequence number on (the records before it
//! are delivered); an empty or absent list, or any other answer, is a success. An
//! identifier that is empty, missing or not a sequence number of the batch fails the whole
//! batch (the mapping's rule). kinarch always reads `batchItemFailures`, as a mapping with
//! `ReportBatchItemFailures` does: a function that does not use it never returns the field.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::domain::kpl::{self, UserRecord};
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;

/// Invoke's limit on a synchronous request payload: 6 MB.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

/// The most records the mapping puts in one batch, and so `--batch-size`'s upper bound.
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// The mapping's default batch size.
pub const DEFAULT_BATCH_RECORDS: usize = 100;

/// One record as the consumer function gets it: a plain archived record, or the KPL
/// container rebuilt from the selected user records of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredRecord {
    /// The source shard.
    pub shard_id: String,
    /// Its sequence number in the source stream (the container's, for a container).
    pub sequence_number: SequenceNumber,
    /// Its partition key (the first user record's, for a container).
    pub partition_key: String,
    /// Its bytes (a container's: magic, protobuf, MD5).
    pub data: Vec<u8>,
    /// When it arrived in the source stream, epoch seconds.
    pub arrival: f64,
    /// The archived records it is made of, by partition key and sub-sequence number: itself,
    /// or the container's user records (what a journal and a failure list name).
    pub user_records: Vec<(String, Option<u64>)>,
}

impl DeliveredRecord {
    /// One plain archived record.
    pub fn plain(record: ArchiveRecord) -> Self {
        Self {
            user_records: vec![(record.partition_key.clone(), record.sub_sequence_number)],
            shard_id: record.shard_id,
            sequence_number: record.sequence_number,
            partition_key: record.partition_key,
            data: record.data,
            arrival: record.approximate_arrival_timestamp,
        }
    }
}

/// The records of one shard in the order the function gets them: by sequence number
/// (numerically), the user records of a container (same sequence number, each with a
/// sub-sequence number) aggregated back into one container. `records` must all be of one
/// shard and sendable (their payloads archived).
pub fn shard_records(mut records: Vec<ArchiveRecord>) -> Vec<DeliveredRecord> {
    records.sort_by(|a, b| {
        (&a.sequence_number, a.sub_sequence_number)
            .cmp(&(&b.sequence_number, b.sub_sequence_number))
    });
    let mut delivered = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while let Some(first) = records.next() {
        if first.sub_sequence_number.is_none() {
            delivered.push(DeliveredRecord::plain(first));
            continue;
        }
        let mut users = vec![first];
        while let Some(next) = records.next_if(|r| {
            r.sub_sequence_number.is_some() && r.sequence_number == users[0].sequence_number
        }) {
            users.push(next);
        }
        let data = kpl::aggregate(
            &users
                .iter()
                .map(|u| UserRecord {
                    partition_key: u.partition_key.clone(),
                    explicit_hash_key: u.explicit_hash_key.clone(),
                    data: u.data.clone(),
                })
                .collect::<Vec<_>>(),
        );
        let sub_sequences = users
            .iter()
            .map(|u| (u.partition_key.clone(), u.sub_sequence_number))
            .collect();
        let first = users.swap_remove(0);
        delivered.push(DeliveredRecord {
            shard_id: first.shard_id,
            sequence_number: first.sequence_number,
            partition_key: first.partition_key,
            data,
            arrival: first.approximate_arrival_timestamp,
            user_records: sub_sequences,
        });
    }
    delivered
}

/// What every record of a replay's events shares: where it says it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    /// The source stream's ARN (`eventSourceARN`).
    pub stream_arn: String,
    /// The source stream's region (`awsRegion`).
    pub region: String,
    /// `invokeIdentityArn`: the function's execution role, as the mapping sends it.
    pub invoke_identity_arn: String,
}

/// The event's form, field by field in the mapping's order.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "Records")]
    records: Vec<EventRecord<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord<'a> {
    kinesis: KinesisData<'a>,
    event_source: &'static str,
    event_version: &'static str,
    #[serde(rename = "eventID")]
    event_id: String,
    event_name: &'static str,
    invoke_identity_arn: &'a str,
    aws_region: &'a str,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KinesisData<'a> {
    kinesis_schema_version: &'static str,
    partition_key: &'a str,
    sequence_number: &'a str,
    data: String,
    approximate_arrival_timestamp: f64,
}

fn event_record<'a>(record: &'a DeliveredRecord, source: &'a EventSource) -> EventRecord<'a> {
    EventRecord {
        kinesis: KinesisData {
            kinesis_schema_version: "1.0",
            partition_key: &record.partition_key,
            sequence_number: record.sequence_number.as_str(),
            data: base64::engine::general_purpose::STANDARD.encode(&record.data),
            // Milliseconds, as Kinesis keeps them (an f64 of the archive's value may carry
            // a binary tail: 1.1 + 0.2).
            approximate_arrival_timestamp: (record.arrival * 1000.0).round() / 1000.0,
        },
        event_source: "aws:kinesis",
        event_version: "1.0",
        event_id: format!("{}:{}", record.shard_id, record.sequence_number),
        event_name: "aws:kinesis:record",
        invoke_identity_arn: &source.invoke_identity_arn,
        aws_region: &source.region,
        event_source_arn: &source.stream_arn,
    }
}

/// The serialized event of `records` (one batch).
pub fn event_json(records: &[DeliveredRecord], source: &EventSource) -> Vec<u8> {
    let event = Event {
        records: records.iter().map(|r| event_record(r, source)).collect(),
    };
    serde_json::to_vec(&event).expect("an event of strings and numbers always serializes")
}

/// The bytes one record adds to an event's `Records` array (its comma included).
pub fn record_event_size(record: &DeliveredRecord, source: &EventSource) -> usize {
    serde_json::to_vec(&event_record(record, source))
        .expect("an event record always serializes")
        .len()
        + 1
}

/// `{"Records":[` and `]}`.
const EVENT_FRAME_BYTES: usize = r#"{"Records":[]}"#.len();

/// How many of `sizes` (each record's [`record_event_size`], in order) go in the next batch:
/// at most `batch_size`, and at most `max_bytes` of event. `None` when the first record's
/// event alone is larger than `max_bytes` (it can never be delivered). 0 only for no sizes.
pub fn next_batch_len(sizes: &[usize], batch_size: usize, max_bytes: usize) -> Option<usize> {
    let mut bytes = EVENT_FRAME_BYTES;
    let mut taken = 0;
    for size in sizes.iter().take(batch_size.max(1)) {
        // The first record has no comma before it.
        let added = if taken == 0 { size - 1 } else { *size };
        if bytes + added > max_bytes {
            break;
        }
        bytes += added;
        taken += 1;
    }
    (taken > 0 || sizes.is_empty()).then_some(taken)
}

/// What the function's answer to a batch means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every record of the batch is delivered.
    Delivered,
    /// The records from this index of the batch on are not delivered (those before it
    /// are), and why.
    FailedFrom {
        /// Index in the batch of the first record to deliver again.
        index: usize,
        /// For people: the function error, or the partial failure.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialResponse {
    batch_item_failures: Option<Vec<ItemFailure>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    item_identifier: Option<serde_json::Value>,
}

/// What the function answered to `batch` (its sequence numbers, in order): Invoke's
/// `FunctionError` (if set) and the payload it returned. See the [module
/// documentation](self).
pub fn interpret_answer(
    batch: &[&SequenceNumber],
    function_error: Option<&str>,
    payload: &[u8],
) -> Answer {
    if let Some(kind) = function_error {
        let detail = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| {
                let message = v.get("errorMessage")?.as_str()?.to_owned();
                Some(match v.get("errorType").and_then(|t| t.as_str()) {
                    Some(error_type) => format!("{error_type}: {message}"),
                    None => message,
                })
            })
            .unwrap_or_else(|| String::from_utf8_lossy(payload).chars().take(300).collect());
        return Answer::FailedFrom {
            index: 0,
            reason: format!("function error ({kind}): {detail}"),
        };
    }
    let Ok(PartialResponse {
        batch_item_failures: Some(failures),
    }) = serde_json::from_slice::<PartialResponse>(payload)
    else {
        return Answer::Delivered;
    };
    let mut first: Option<usize> = None;
    for failure in &failures {
        let index = failure
            .item_identifier
            .as_ref()
            .and_then(|id| id.as_str())
            .filter(|id| !id.is_empty())
            .and_then(|id| batch.iter().position(|s| s.as_str() == id));
        let Some(index) = index else {
            return Answer::FailedFrom {
                index: 0,
                reason: format!(
                    "the function answered a batch item failure whose itemIdentifier ({}) is \
                     not a sequence number of the batch, which fails the whole batch",
                    failure
                        .item_identifier
                        .as_ref()
                        .map_or("missing".to_owned(), |v| v.to_string())
                ),
            };
        };
        first = Some(first.map_or(index, |f| f.min(index)));
    }
    match first {
        None => Answer::Delivered,
        Some(index) => Answer::FailedFrom {
            index,
            reason: format!(
                "the function reported {} batch item failure(s), the first at sequence number {}",
                failures.len(),
                batch[index]
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archived(
        shard: &str,
        sequence: &str,
        sub: Option<u64>,
        key: &str,
        data: &[u8],
    ) -> ArchiveRecord {
        ArchiveRecord {
            partition_key: key.into(),
            sequence_number: SequenceNumber::parse(sequence).unwrap(),
            shard_id: shard.into(),
            approximate_arrival_timestamp: 1_777_629_600.123,
            data: data.to_vec(),
            last_update: None,
            expire_after: None,
            oversize_bytes: None,
            sub_sequence_number: sub,
            explicit_hash_key: None,
            stored: None,
        }
    }

    fn source() -> EventSource {
        EventSource {
            stream_arn: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders".into(),
            region: "eu-west-1".into(),
            invoke_identity_arn: "arn:aws:iam::123456789012:role/consumer".into(),
        }
    }

    #[test]
    fn the_event_has_the_mappings_exact_form() {
        let records = shard_records(vec![archived(
            "shardId-000000000001",
            "49590338271490256608559692538361571095921575989136588898",
            None,
            "customer-7",
            b"{\"n\":1}",
        )]);
        let json = String::from_utf8(event_json(&records, &source())).unwrap();
        assert_eq!(
            json,
            r#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"customer-7","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","data":"eyJuIjoxfQ==","approximateArrivalTimestamp":1777629600.123},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000001:49590338271490256608559692538361571095921575989136588898","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/consumer","awsRegion":"eu-west-1","eventSourceARN":"arn:aws:kinesis:eu-west-1:123456789012:stream/orders"}]}"#
        );
        // What the Lambda runtime's Kinesis event types read from it.
        let parsed: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_str(&json).unwrap();
        let record = &parsed.records[0];
        assert_eq!(record.kinesis.data.0, b"{\"n\":1}");
        assert_eq!(record.kinesis.partition_key, "customer-7");
        assert_eq!(record.event_source.as_deref(), Some("aws:kinesis"));
        assert_eq!(
            record.event_id.as_deref(),
            Some("shardId-000000000001:49590338271490256608559692538361571095921575989136588898")
        );
        assert_eq!(
            record
                .kinesis
                .approximate_arrival_timestamp
                .0
                .timestamp_millis(),
            1_777_629_600_123
        );
    }

    #[test]
    fn a_shards_records_go_in_numeric_order_with_containers_rebuilt() {
        let records = shard_records(vec![
            archived("s", "10", None, "b", b"ten"),
            archived("s", "9", Some(1), "a2", b"nine.1"),
            archived("s", "9", Some(0), "a1", b"nine.0"),
            archived("s", "100", None, "c", b"hundred"),
        ]);
        let order: Vec<&str> = records.iter().map(|r| r.sequence_number.as_str()).collect();
        assert_eq!(order, ["9", "10", "100"]);
        let container = &records[0];
        assert_eq!(container.partition_key, "a1");
        assert_eq!(
            container.user_records,
            [("a1".to_owned(), Some(0)), ("a2".to_owned(), Some(1))]
        );
        let users = kpl::deaggregate(&container.data).unwrap().unwrap();
        let users: Vec<(&str, &[u8])> = users
            .iter()
            .map(|u| (u.partition_key.as_str(), u.data.as_slice()))
            .collect();
        assert_eq!(users, [("a1", &b"nine.0"[..]), ("a2", &b"nine.1"[..])]);
        assert_eq!(records[1].data, b"ten");
        assert_eq!(records[1].user_records, [("b".to_owned(), None)]);
    }

    #[test]
    fn batches_are_cut_by_count_and_by_event_bytes() {
        let records = shard_records(
            (1..=5)
                .map(|n| archived("s", &n.to_string(), None, "k", &[b'x'; 300]))
                .collect(),
        );
        let sizes: Vec<usize> = records
            .iter()
            .map(|r| record_event_size(r, &source()))
            .collect();
        assert_eq!(next_batch_len(&sizes, 100, MAX_EVENT_BYTES), Some(5));
        assert_eq!(next_batch_len(&sizes, 2, MAX_EVENT_BYTES), Some(2));
        // The limit is the serialized event's size, exactly.
        let two = event_json(&records[..2], &source()).len();
        assert_eq!(next_batch_len(&sizes, 100, two), Some(2));
        assert_eq!(next_batch_len(&sizes, 100, two - 1), Some(1));
        let one = event_json(&records[..1], &source()).len();
        assert_eq!(next_batch_len(&sizes, 100, one - 1), None);
        assert_eq!(next_batch_len(&[], 100, 10), Some(0));
    }

    fn seqs(numbers: &[&str]) -> Vec<SequenceNumber> {
        numbers
            .iter()
            .map(|n| SequenceNumber::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn answers_are_read_as_the_mapping_reads_them() {
        let owned = seqs(&["5", "6", "7"]);
        let batch: Vec<&SequenceNumber> = owned.iter().collect();
        for delivered in [
            &b""[..],
            b"null",
            b"{}",
            b"\"ok\"",
            br#"{"batchItemFailures":[]}"#,
            br#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(interpret_answer(&batch, None, delivered), Answer::Delivered);
        }
        let partial = interpret_answer(
            &batch,
            None,
            br#"{"batchItemFailures":[{"itemIdentifier":"7"},{"itemIdentifier":"6"}]}"#,
        );
        assert!(
            matches!(partial, Answer::FailedFrom { index: 1, .. }),
            "{partial:?}"
        );
        for whole in [
            &br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#[..],
            br#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            br#"{"batchItemFailures":[{"id":"6"}]}"#,
            br#"{"batchItemFailures":[{"itemIdentifier":"8"}]}"#,
        ] {
            let answer = interpret_answer(&batch, None, whole);
            assert!(
                matches!(answer, Answer::FailedFrom { index: 0, .. }),
                "{answer:?}"
            );
        }
        let Answer::FailedFrom { index, reason } = interpret_answer(
            &batch,
            Some("Unhandled"),
            br#"{"errorType":"Boom","errorMessage":"no database"}"#,
        ) else {
            panic!("a function error fails the batch");
        };
        assert_eq!(index, 0);
        assert_eq!(reason, "function error (Unhandled): Boom: no database");
    }
}
