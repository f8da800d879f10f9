//! `kinarch_core::replay::reinject` against moto, through the fault proxy.

use std::collections::{BTreeMap, HashSet};

use kinarch_core::domain::frame::ReplayFrame;
use kinarch_core::replay::reinject::{Framing, ReinjectOptions, reinject};
use kinarch_core::{ArchiveRecord, SequenceNumber, StreamName};
use kinarch_tests::kinesis;
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};

fn archived(i: u64, keys: u64) -> ArchiveRecord {
    let mut data = format!("record {i} ").into_bytes();
    data.extend_from_slice(&[0x00, 0xff, b'|', (i % 256) as u8]);
    ArchiveRecord {
        partition_key: format!("key-{}", i % keys),
        // Sequence numbers of growing length, as an archive of a long-lived stream has.
        sequence_number: SequenceNumber::parse(&(i * 7 + 3).to_string()).unwrap(),
        shard_id: format!("shardId-00000000000{}", i % 3),
        approximate_arrival_timestamp: 1_764_000_000.0 + i as f64 / 1000.0,
        data,
        last_update: Some("2026-11-25 00:00:00".into()),
        expire_after: None,
        oversize_bytes: None,
        sub_sequence_number: None,
        explicit_hash_key: None,
        stored: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_reinject_keeps_per_key_order_through_partial_failures() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let direct = aws_sdk_kinesis::Client::new(&moto.sdk_config().await);
    let through_proxy = aws_sdk_kinesis::Client::new(&moto.sdk_config_via(&proxy.endpoint()).await);
    kinesis::create_stream(&direct, "replay", 3).await;

    // Seeded plan: a fifth of the entries of each PutRecords call fail.
    let seed = 20261125u64;
    proxy.set_rule(move |call| {
        if call.operation() != "PutRecords" {
            return None;
        }
        let entries = serde_json::from_str::<serde_json::Value>(&call.body).ok()?["Records"]
            .as_array()?
            .len();
        let fail: Vec<usize> = (0..entries)
            .filter(|i| {
                (seed ^ (call.nth_of_target * 31 + *i as u64))
                    .wrapping_mul(0x9E3779B97F4A7C15)
                    .is_multiple_of(5)
            })
            .collect();
        Some(Fault::FailEntries(fail))
    });

    let total = 5000u64;
    let records: Vec<ArchiveRecord> = (0..total).map(|i| archived(i, 40)).collect();
    let mut options = ReinjectOptions::new(
        StreamName::new("orders").unwrap(),
        StreamName::new("replay").unwrap(),
    );
    options.framing = Framing::Metadata { separator: b'|' };
    // One call in flight: moto numbers a shard's records as "highest + 1" without a lock, so
    // concurrent PutRecords calls into one shard can overwrite each other there (seen: 1499
    // of 1500 arrived). AWS has no such race; the in-flight logic is unit-tested.
    options.concurrency = 1;
    options.max_attempts = 50;
    let mut progress_calls = 0;
    let report = reinject(
        &through_proxy,
        futures::stream::iter(records.clone().into_iter().map(Ok)),
        &options,
        |_| progress_calls += 1,
    )
    .await
    .unwrap();
    println!(
        "fault plan seed {seed}: injected {} failed entries; report {report:?}",
        proxy.injected()
    );
    assert!(proxy.injected() > 100, "the plan failed entries");
    assert_eq!(report.read, total);
    assert_eq!(report.sent, total);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(
        report.retried >= proxy.injected(),
        "every failed entry was retried"
    );
    assert!(progress_calls > 0);

    let back = kinesis::read_all(&direct, "replay").await;
    let arrived: HashSet<String> = back
        .iter()
        .filter_map(|r| {
            ReplayFrame::parse(&r.data, b'|')
                .metadata
                .map(|m| m.original_sequence_number)
        })
        .collect();
    let missing: Vec<&ArchiveRecord> = records
        .iter()
        .filter(|r| !arrived.contains(r.sequence_number.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "records missing from the target stream: {missing:?}"
    );
    assert_eq!(
        back.len() as u64,
        total,
        "every record arrives exactly once"
    );
    let mut per_key: BTreeMap<String, Vec<SequenceNumber>> = BTreeMap::new();
    let originals: BTreeMap<String, &ArchiveRecord> = records
        .iter()
        .map(|r| (r.sequence_number.to_string(), r))
        .collect();
    for r in &back {
        let frame = ReplayFrame::parse(&r.data, b'|');
        let metadata = frame.metadata.expect("framed");
        let original = originals[&metadata.original_sequence_number];
        assert_eq!(frame.payload, &original.data[..], "payload byte for byte");
        assert_eq!(
            r.partition_key, original.partition_key,
            "original partition key"
        );
        assert_eq!(metadata.original_shard_id, original.shard_id);
        assert_eq!(
            metadata.original_approximate_arrival_timestamp,
            original.approximate_arrival_timestamp
        );
        assert_eq!(metadata.original_stream_name.as_deref(), Some("orders"));
        per_key
            .entry(r.partition_key.clone())
            .or_default()
            .push(original.sequence_number.clone());
    }
    for (key, sequence) in per_key {
        assert!(
            sequence.windows(2).all(|w| w[0] < w[1]),
            "key {key} out of order: {sequence:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_reinject_into_the_same_stream_is_byte_exact() {
    let moto = Moto::start();
    let client = aws_sdk_kinesis::Client::new(&moto.sdk_config().await);
    kinesis::create_stream(&client, "orders", 1).await;
    let records: Vec<ArchiveRecord> = (0..20).map(|i| archived(i, 3)).collect();
    let options = ReinjectOptions::new(
        StreamName::new("orders").unwrap(),
        StreamName::new("orders").unwrap(),
    );
    let report = reinject(
        &client,
        futures::stream::iter(records.clone().into_iter().map(Ok)),
        &options,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.sent, report.failed.len()), (20, 0));
    let back = kinesis::read_all(&client, "orders").await;
    let sent: HashSet<Vec<u8>> = back.iter().map(|r| r.data.clone()).collect();
    let expected: HashSet<Vec<u8>> = records.iter().map(|r| r.data.clone()).collect();
    assert_eq!(sent, expected);

    // Same stream and --metadata: no originalStreamName.
    let mut framed = options.clone();
    framed.framing = Framing::Metadata { separator: b'#' };
    reinject(
        &client,
        futures::stream::iter(records[..1].iter().cloned().map(Ok)),
        &framed,
        |_| {},
    )
    .await
    .unwrap();
    let last = kinesis::read_all(&client, "orders").await.pop().unwrap();
    let frame = ReplayFrame::parse(&last.data, b'#');
    assert_eq!(frame.metadata.unwrap().original_stream_name, None);
    assert_eq!(frame.payload, &records[0].data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_target_stream_is_an_error_naming_it() {
    let moto = Moto::start();
    let client = aws_sdk_kinesis::Client::new(&moto.sdk_config().await);
    let options = ReinjectOptions::new(
        StreamName::new("orders").unwrap(),
        StreamName::new("nowhere").unwrap(),
    );
    let err = reinject(
        &client,
        futures::stream::iter([Ok(archived(1, 1))]),
        &options,
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nowhere") && err.contains("not found"),
        "{err}"
    );
}
