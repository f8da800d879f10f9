//! Kinesis fixtures: streams, records, and Lambda events built from what the stream holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_core::SequenceNumber;
use serde_json::{Value, json};

use crate::dynamo::ArchivedRecord;

/// A record as read back from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its partition key.
    pub partition_key: String,
    /// Its sequence number, as the emulator gave it.
    pub sequence_number: String,
    /// Its payload.
    pub data: Vec<u8>,
    /// Epoch seconds with milliseconds.
    pub arrival: f64,
}

/// Creates a stream with `shards` shards and waits until it is active. Returns its ARN.
pub async fn create_stream(kinesis: &Client, name: &str, shards: i32) -> String {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    crate::world::eventually(
        &format!("stream {name} is ACTIVE"),
        Duration::from_secs(10),
        || async {
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .expect("DescribeStreamSummary")
                .stream_description_summary
                .expect("summary");
            (summary.stream_status == StreamStatus::Active).then_some(summary.stream_arn)
        },
    )
    .await
}

/// Adds tags to a stream.
pub async fn tag_stream(kinesis: &Client, name: &str, tags: &[(&str, &str)]) {
    let mut call = kinesis.add_tags_to_stream().stream_name(name);
    for (k, v) in tags {
        call = call.tags(*k, *v);
    }
    call.send().await.expect("AddTagsToStream");
}

/// Puts one record; returns its shard and sequence number.
pub async fn put(kinesis: &Client, stream: &str, key: &str, data: &[u8]) -> (String, String) {
    let out = kinesis
        .put_record()
        .stream_name(stream)
        .partition_key(key)
        .data(Blob::new(data))
        .send()
        .await
        .expect("PutRecord");
    (out.shard_id, out.sequence_number)
}

/// Every record of every shard, from TRIM_HORIZON, grouped by shard in shard order.
pub async fn read_all(kinesis: &Client, stream: &str) -> Vec<StreamRecord> {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard.shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        // moto never ends a shard's iterator; stop at the first empty page.
        while let Some(it) = iterator {
            let out = kinesis
                .get_records()
                .shard_iterator(it)
                .limit(1000)
                .send()
                .await
                .expect("GetRecords");
            if out.records.is_empty() {
                break;
            }
            for r in out.records {
                let arrival = r
                    .approximate_arrival_timestamp
                    .map(|t| t.as_secs_f64())
                    .unwrap_or(0.0);
                records.push(StreamRecord {
                    shard_id: shard.shard_id.clone(),
                    partition_key: r.partition_key,
                    sequence_number: r.sequence_number,
                    data: r.data.into_inner(),
                    arrival: (arrival * 1000.0).round() / 1000.0,
                });
            }
            iterator = out.next_shard_iterator;
        }
    }
    records
}

/// One Lambda event record, as Lambda builds it from a stream record.
pub fn event_record(stream_arn: &str, r: &StreamRecord) -> Value {
    lambda_event_record(
        stream_arn,
        &r.shard_id,
        &r.partition_key,
        &r.sequence_number,
        &r.data,
        r.arrival,
    )
}

/// The envelope Lambda puts around one Kinesis record (the one place tests and benches
/// build it).
pub fn lambda_event_record(
    stream_arn: &str,
    shard_id: &str,
    partition_key: &str,
    sequence_number: &str,
    data: &[u8],
    arrival: f64,
) -> Value {
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": STANDARD.encode(data),
            "approximateArrivalTimestamp": arrival
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{shard_id}:{sequence_number}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/kinarch-test",
        "awsRegion": crate::moto::REGION,
        "eventSourceARN": stream_arn
    })
}

/// A Lambda Kinesis event holding `records`.
pub fn event(stream_arn: &str, records: &[StreamRecord]) -> Value {
    json!({ "Records": records.iter().map(|r| event_record(stream_arn, r)).collect::<Vec<_>>() })
}

/// `records` as an archive holds them (see [`crate::dynamo::archived`]).
pub fn as_archived(records: &[StreamRecord]) -> BTreeSet<ArchivedRecord> {
    records
        .iter()
        .map(|r| {
            (
                r.partition_key.clone(),
                r.sequence_number.clone(),
                r.shard_id.clone(),
                r.data.clone(),
            )
        })
        .collect()
}

/// Puts `records` (partition key, data) with PutRecords, 500 per call, one call at a time
/// (moto loses records when two PutRecords reach one shard at once).
pub async fn put_many(kinesis: &Client, stream: &str, records: &[(String, Vec<u8>)]) {
    for chunk in records.chunks(500) {
        let entries = chunk
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .expect("PutRecords entry")
            })
            .collect();
        let out = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(out.failed_record_count, Some(0), "every record put");
    }
}

/// The numerically newest record of every partition key: what a LATEST table must hold.
pub fn newest_per_key(records: &[StreamRecord]) -> BTreeMap<String, StreamRecord> {
    let sequence = |r: &StreamRecord| {
        SequenceNumber::parse(&r.sequence_number).expect("a valid sequence number")
    };
    let mut newest: BTreeMap<String, StreamRecord> = BTreeMap::new();
    for r in records {
        match newest.get(&r.partition_key) {
            Some(current) if sequence(current) >= sequence(r) => {}
            _ => {
                newest.insert(r.partition_key.clone(), r.clone());
            }
        }
    }
    newest
}
