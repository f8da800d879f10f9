//! Synthetic records, the one place that makes them: the same record `i` for the Lambda
//! events the bench driver sends, the archive items its null endpoint serves and the
//! `ArchiveRecord`s the library's criterion benches encode, so every scenario moves the same
//! bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use serde_json::{Value, json};

use crate::moto::REGION;

/// 46 digits; with a 10-digit index a sequence number has 56 digits, as AWS issues today.
const SEQUENCE_PREFIX: &str = "4959033827149025660855969253836157109592157598";
/// Epoch seconds of the first record's arrival.
const FIRST_ARRIVAL: f64 = 1_764_100_000.0;
/// The shard every synthetic record comes from.
pub const SHARD_ID: &str = "shardId-000000000000";
/// Payload bytes of a record: a small JSON document. 64 bytes is about the most a record
/// can carry when a batch holds 10,000 records: their Lambda event is then 5.9 MiB, just
/// under Lambda's 6 MiB payload limit. So the 10,000-record scenarios use the largest event
/// Lambda can deliver.
pub const PAYLOAD_BYTES: usize = 64;

/// Record `i`'s sequence number: 56 digits, increasing with `i`.
pub fn sequence_number(i: usize) -> String {
    format!("{SEQUENCE_PREFIX}{i:010}")
}

/// The index of a sequence number made by [`sequence_number`].
pub fn index_of_sequence(sequence: &str) -> Option<usize> {
    sequence
        .strip_prefix(SEQUENCE_PREFIX)
        .and_then(|rest| rest.parse().ok())
}

/// Record `i`'s partition key when the records are spread over `keys` keys.
pub fn partition_key(i: usize, keys: usize) -> String {
    format!("key-{}", i % keys.max(1))
}

/// The key number of a partition key made by [`partition_key`].
pub fn key_number(partition_key: &str) -> Option<usize> {
    partition_key.strip_prefix("key-")?.parse().ok()
}

/// Record `i`'s arrival time in epoch seconds, with milliseconds.
pub fn arrival(i: usize) -> f64 {
    FIRST_ARRIVAL + (i as f64) * 0.001
}

/// Record `i`'s payload: a JSON object padded to exactly `bytes` bytes (at least ~20).
pub fn payload(i: usize, bytes: usize) -> Vec<u8> {
    let head = format!("{{\"n\":{i},\"pad\":\"");
    let pad = bytes.saturating_sub(head.len() + 2);
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(head.as_bytes());
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
    out
}

/// Record `i` as the library's `ArchiveRecord` (no archive time, TTL or oversize marker).
pub fn record(i: usize, keys: usize, payload_bytes: usize) -> ArchiveRecord {
    ArchiveRecord::received(
        partition_key(i, keys),
        SequenceNumber::parse(&sequence_number(i)).expect("digits"),
        SHARD_ID.into(),
        arrival(i),
        payload(i, payload_bytes),
    )
}

/// Records `0..n` made by [`record`].
pub fn records(n: usize, keys: usize, payload_bytes: usize) -> Vec<ArchiveRecord> {
    (0..n).map(|i| record(i, keys, payload_bytes)).collect()
}

/// One Lambda Kinesis event record, as Lambda builds it.
pub fn event_record(stream_arn: &str, i: usize, keys: usize, payload_bytes: usize) -> Value {
    crate::kinesis::lambda_event_record(
        stream_arn,
        SHARD_ID,
        &partition_key(i, keys),
        &sequence_number(i),
        &payload(i, payload_bytes),
        arrival(i),
    )
}

/// A Lambda Kinesis event of `records` records spread over `keys` partition keys.
pub fn event(stream: &str, records: usize, keys: usize, payload_bytes: usize) -> Value {
    let arn = stream_arn(stream);
    json!({
        "Records": (0..records)
            .map(|i| event_record(&arn, i, keys, payload_bytes))
            .collect::<Vec<_>>()
    })
}

/// A Lambda Kinesis event of `containers` KPL containers of `per_container` user records
/// each: user record `i` (= container × `per_container` + position) is [`record`] `i`'s key
/// and payload, container `c` has [`sequence_number`] `c` and its first user record's key,
/// as the KPL sends it. Built with kinarch's own encoder: the bench measures decoding, and
/// the tests check that encoder against awslabs' aggregator.
pub fn kpl_event(
    stream: &str,
    containers: usize,
    per_container: usize,
    keys: usize,
    payload_bytes: usize,
) -> Value {
    use kinarch_core::domain::kpl::{UserRecord, aggregate};
    let arn = stream_arn(stream);
    let records = (0..containers)
        .map(|c| {
            let users: Vec<UserRecord> = (0..per_container)
                .map(|j| {
                    let i = c * per_container + j;
                    UserRecord {
                        partition_key: partition_key(i, keys),
                        explicit_hash_key: None,
                        data: payload(i, payload_bytes),
                    }
                })
                .collect();
            crate::kinesis::lambda_event_record(
                &arn,
                SHARD_ID,
                &users[0].partition_key,
                &sequence_number(c),
                &aggregate(&users),
                arrival(c),
            )
        })
        .collect::<Vec<_>>();
    json!({ "Records": records })
}

/// The ARN of a stream in the bench account and region.
pub fn stream_arn(stream: &str) -> String {
    format!("arn:aws:kinesis:{}:123456789012:stream/{stream}", REGION)
}

/// Record `i` as a DynamoDB item in the JSON wire format, as the archiver writes it.
pub fn item_json(i: usize, keys: usize, payload_bytes: usize) -> String {
    let item = json!({
        "partitionKey": {"S": partition_key(i, keys)},
        "sequenceNumber": {"S": sequence_number(i)},
        "lastUpdate": {"S": "2026-11-25 21:07:03"},
        "recordData": {"S": STANDARD.encode(payload(i, payload_bytes))},
        "approximateArrivalTimestamp": {"N": format!("{}", arrival(i))},
        "shardId": {"S": SHARD_ID}
    });
    item.to_string()
}

/// The key of record `i`'s item (`LastEvaluatedKey` of a page that ends with it).
pub fn item_key_json(i: usize, keys: usize) -> String {
    json!({
        "partitionKey": {"S": partition_key(i, keys)},
        "sequenceNumber": {"S": sequence_number(i)}
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_and_keys_read_back() {
        assert_eq!(sequence_number(7).len(), 56);
        assert_eq!(index_of_sequence(&sequence_number(123_456)), Some(123_456));
        assert_eq!(key_number(&partition_key(1234, 100)), Some(34));
        assert_eq!(payload(5, 100).len(), 100);
        let event = event("s", 3, 2, 50);
        assert_eq!(event["Records"].as_array().unwrap().len(), 3);
        let record = record(7, 3, 100);
        assert_eq!(record.sequence_number.to_string(), sequence_number(7));
        assert_eq!(record.data, payload(7, 100));
    }
}
