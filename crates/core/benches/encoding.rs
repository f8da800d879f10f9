//! Item encoding (`ArchiveRecord::to_item` / `from_item`) and Lambda event decoding: the
//! per-record CPU work of the archiver and of every read.

// criterion_group! makes an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinarch_core::ArchiveTtl;
use kinarch_core::domain::event::decode_event;
use serde_json::json;

mod common;

fn item(c: &mut Criterion) {
    let record = common::record(42, 100);
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 21, 7, 3).unwrap();
    let ttl = ArchiveTtl::from_seconds(86_400).ok();
    let mut group = c.benchmark_group("item");
    group.throughput(Throughput::Elements(1));
    group.bench_function("to_item (100-byte payload, TTL)", |b| {
        b.iter(|| black_box(&record).to_item(black_box(at), ttl))
    });
    let item = record.to_item(at, ttl).item;
    group.bench_function("from_item (100-byte payload, TTL)", |b| {
        b.iter(|| kinarch_core::ArchiveRecord::from_item(black_box(&item)).unwrap())
    });
    group.finish();
}

fn event(c: &mut Criterion) {
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/bench";
    let records: Vec<_> = common::records(1000, 1000)
        .into_iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number.as_str(),
                    "data": STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.approximate_arrival_timestamp
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/bench",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn
            })
        })
        .collect();
    let event = json!({ "Records": records });
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("decode_event (1,000 records)", |b| {
        b.iter(|| decode_event(black_box(&event)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, item, event);
criterion_main!(benches);
