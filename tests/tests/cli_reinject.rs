//! `kinarch reinject`, the real binary against moto: framed and raw replay into another and
//! the same stream, byte for byte; per-key order through injected PutRecords partial
//! failures; `--rate` as a ceiling; dry run; records that cannot be sent; bad input.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use kinarch_core::domain::frame::ReplayFrame;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{self, kinarch};
use kinarch_tests::kinesis;
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};

/// The test world and the records archived in it.
struct World {
    base: kinarch_tests::world::World,
    records: Vec<ArchiveRecord>,
}

impl std::ops::Deref for World {
    type Target = kinarch_tests::world::World;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

fn record(key: &str, seq: u64, data: Vec<u8>) -> ArchiveRecord {
    ArchiveRecord::received(
        key.into(),
        SequenceNumber::parse(&seq.to_string()).unwrap(),
        format!("shardId-00000000000{}", seq % 2),
        1_714_564_800.0 + seq as f64 / 1000.0,
        data,
    )
}

/// Stream `orders` archived in ALL mode with `count` records over 5 keys (sequence numbers
/// of 1 to 3 digits, every third payload binary), and an empty stream `replay`.
async fn world(count: u64) -> World {
    world_of(count, 5).await
}

/// [`world`] with the records spread over `keys` partition keys.
async fn world_of(count: u64, keys: u64) -> World {
    let base = kinarch_tests::world::World::start().await;
    let records: Vec<ArchiveRecord> = (0..count)
        .map(|i| {
            let data = if i % 3 == 0 {
                vec![0x00, 0xff, b'|', b'\n', i as u8]
            } else {
                format!("{{\"order\":{i}}}").into_bytes()
            };
            record(&format!("customer-{}", i % keys), i * 7 + 3, data)
        })
        .collect();
    let archived_at = Utc.timestamp_opt(1_714_600_000, 0).unwrap();
    base.archived("orders", 1, &records, archived_at).await;
    base.stream("replay", 2).await;
    World { base, records }
}

/// The original record of each record read back, checked byte for byte, grouped by key
/// in stream order.
fn originals_by_key(
    w: &World,
    back: &[kinesis::StreamRecord],
    separator: u8,
    other_stream: bool,
) -> BTreeMap<String, Vec<SequenceNumber>> {
    let by_seq: BTreeMap<String, &ArchiveRecord> = w
        .records
        .iter()
        .map(|r| (r.sequence_number.to_string(), r))
        .collect();
    let mut per_key: BTreeMap<String, Vec<SequenceNumber>> = BTreeMap::new();
    for r in back {
        let frame = ReplayFrame::parse(&r.data, separator);
        let metadata = frame.metadata.expect("framed with --metadata");
        let original = by_seq[&metadata.original_sequence_number];
        assert_eq!(frame.payload, &original.data[..]);
        assert_eq!(r.partition_key, original.partition_key);
        assert_eq!(metadata.original_shard_id, original.shard_id);
        assert_eq!(
            metadata.original_approximate_arrival_timestamp,
            original.approximate_arrival_timestamp
        );
        assert_eq!(
            metadata.original_stream_name.as_deref(),
            other_stream.then_some("orders")
        );
        per_key
            .entry(r.partition_key.clone())
            .or_default()
            .push(original.sequence_number.clone());
    }
    per_key
}

fn assert_in_order(per_key: &BTreeMap<String, Vec<SequenceNumber>>) {
    for (key, seqs) in per_key {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{key}: {seqs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_reinject_into_another_stream_is_byte_exact_and_ordered() {
    let w = world(40).await;
    let run = kinarch(
        &w.moto,
        &["reinject", "orders", "--target", "replay", "--metadata"],
    )
    .await;
    run.ok();
    assert!(
        run.stderr
            .contains("replay: read 40, sent 40, retried 0, failed 0"),
        "{}",
        run.stderr
    );
    let back = kinesis::read_all(&w.kinesis, "replay").await;
    assert_eq!(back.len(), 40);
    let per_key = originals_by_key(&w, &back, b'|', true);
    assert_eq!(per_key.values().map(Vec::len).sum::<usize>(), 40);
    assert_in_order(&per_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_reinject_of_one_key_into_the_same_stream() {
    let w = world(30).await;
    let keyed: Vec<&ArchiveRecord> = w
        .records
        .iter()
        .filter(|r| r.partition_key == "customer-2")
        .collect();
    let (from, to) = (
        keyed[1].sequence_number.to_string(),
        keyed[4].sequence_number.to_string(),
    );
    kinarch(
        &w.moto,
        &[
            "reinject",
            "orders",
            "--partition-key",
            "customer-2",
            "--from",
            &from,
            "--to",
            &to,
            "--yes",
        ],
    )
    .await
    .ok();
    let back = kinesis::read_all(&w.kinesis, "orders").await;
    let sent: Vec<Vec<u8>> = back.iter().map(|r| r.data.clone()).collect();
    let expected: Vec<Vec<u8>> = keyed[1..=4].iter().map(|r| r.data.clone()).collect();
    assert_eq!(sent, expected, "raw bytes, in sequence order");
    assert!(back.iter().all(|r| r.partition_key == "customer-2"));

    // Framed into the same stream: no originalStreamName, another separator.
    kinarch(
        &w.moto,
        &[
            "reinject",
            "orders",
            "--partition-key",
            "customer-2",
            "--from",
            &from,
            "--to",
            &from,
            "--metadata",
            "--separator",
            "#",
        ],
    )
    .await
    .ok();
    let last = kinesis::read_all(&w.kinesis, "orders").await.pop().unwrap();
    let frame = ReplayFrame::parse(&last.data, b'#');
    assert_eq!(frame.metadata.unwrap().original_stream_name, None);
    assert_eq!(frame.payload, &keyed[1].data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_through_putrecords_partial_failures() {
    let w = world(60).await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    // Every other call fails its first and third entries.
    proxy.set_rule(|call| {
        (call.operation() == "PutRecords" && call.nth_of_target % 2 == 0)
            .then(|| Fault::FailEntries(vec![0, 2]))
    });
    // moto numbers records without a lock: one call in flight keeps it exact (see reinject.rs).
    let run = kinarch_via(
        &w.moto,
        &proxy,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--metadata",
            "--concurrency",
            "1",
        ],
    )
    .await;
    run.ok();
    assert!(proxy.injected() >= 4, "faults were injected");
    let retried: u64 = run
        .stderr
        .split("retried ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(
        retried,
        proxy.injected(),
        "the summary counts every retry: {}",
        run.stderr
    );
    let back = kinesis::read_all(&w.kinesis, "replay").await;
    assert_eq!(back.len(), 60, "every record arrives once");
    assert_in_order(&originals_by_key(&w, &back, b'|', true));
}

/// `kinarch` run against moto through `proxy`.
async fn kinarch_via(moto: &Moto, proxy: &FaultProxy, args: &[&str]) -> cli::Run {
    let mut env = moto.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    let mut command = cli::command_with_env(&env);
    command
        .args(["--endpoint-url", &proxy.endpoint()])
        .args(args);
    cli::run_command(command, None).await
}

/// The most entries that arrived within one second: over the windows [t, t + 1000 ms) that
/// start at an arrival, since any window holds no more than the one starting at its first
/// arrival.
fn busiest_second(arrivals: &[(u128, usize)]) -> usize {
    arrivals
        .iter()
        .map(|&(start, _)| {
            arrivals
                .iter()
                .filter(|(at, _)| (start..start + 1000).contains(at))
                .map(|(_, entries)| entries)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// `--rate N` is a ceiling where Kinesis measures it: no second at the receiving end holds
/// more than N entries, retried ones included, with the default four calls in flight (which
/// used to reach 4 x N: pacing counted answered records only). An upper bound, so it holds on
/// a slow machine too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_is_a_ceiling_on_entries_per_second_where_they_arrive() {
    const RATE: usize = 50;
    // 100 keys, two records each: four calls of 50 records can be in flight at once.
    let w = world_of(200, 100).await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    // Every third call fails its first entry: retries are sends and count against the rate.
    proxy.set_rule(|call| {
        (call.operation() == "PutRecords" && call.nth_of_target % 3 == 1)
            .then(|| Fault::FailEntries(vec![0]))
    });
    let rate = RATE.to_string();
    let args = ["reinject", "orders", "--target", "replay", "--metadata"];
    let run = kinarch_via(&w.moto, &proxy, &[&args[..], &["--rate", &rate]].concat()).await;
    run.ok();
    let arrivals = proxy.put_records_arrivals();
    let entries: usize = arrivals.iter().map(|(_, n)| n).sum();
    assert!(proxy.injected() > 0, "faults were injected");
    assert_eq!(
        entries as u64,
        200 + proxy.injected(),
        "every record and every retry went through the proxy"
    );
    let busiest = busiest_second(&arrivals);
    println!(
        "--rate {RATE}: at most {busiest} entries in one second; {} calls at (ms, entries) {arrivals:?}",
        arrivals.len()
    );
    assert!(
        busiest <= RATE,
        "{busiest} entries arrived within one second at --rate {RATE}: {arrivals:?}"
    );
    let back = kinesis::read_all(&w.kinesis, "replay").await;
    assert_eq!(back.len(), 200, "every record arrives once");
    assert_in_order(&originals_by_key(&w, &back, b'|', true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_and_sends_nothing() {
    let w = world(12).await;
    let run = kinarch(
        &w.moto,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--dry-run",
            "--limit",
            "5",
        ],
    )
    .await;
    run.ok();
    let lines: Vec<String> = run.out().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{}", run.out());
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert!(
            fields[0].starts_with("customer-") && fields[2].ends_with(" bytes"),
            "{line}"
        );
    }
    assert!(run.stderr.contains("would send 5"), "{}", run.stderr);
    assert!(kinesis::read_all(&w.kinesis, "replay").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_records_are_listed_and_fail_the_run() {
    let w = world(6).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&w.moto.sdk_config().await);
    let big = record("customer-9", 5000, vec![1u8; 400 * 1024]);
    let prepared = big.to_item(Utc::now(), None);
    assert!(prepared.oversize);
    dynamodb
        .put_item()
        .table_name("orders-archive-ALL")
        .set_item(Some(prepared.item))
        .send()
        .await
        .unwrap();
    let run = kinarch(&w.moto, &["reinject", "orders", "--target", "replay"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("not sent: customer-9 5000")
            && run.stderr.contains("too large to archive"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("1 record(s) could not be sent to replay"),
        "{}",
        run.stderr
    );
    assert_eq!(
        kinesis::read_all(&w.kinesis, "replay").await.len(),
        6,
        "the others were sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_message() {
    let w = world(1).await;
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["reinject", "orders", "--metadata", "--separator", "||"],
            2,
            "exactly one byte",
        ),
        (
            &["reinject", "orders", "--metadata", "--separator", "é"],
            2,
            "exactly one byte",
        ),
        (&["reinject", "orders", "--separator", "#"], 2, "--metadata"),
        (&["reinject", "orders", "--limit", "0"], 2, "--limit"),
        (&["reinject", "orders", "--rate", "0"], 2, "at least 1"),
        (
            &["reinject", "orders", "--partition-key", "k", "--from", "1x"],
            2,
            "not a digit",
        ),
        (&["reinject", "orders", "--target", "nowhere"], 1, "nowhere"),
        (&["reinject", "unknown"], 1, "unknown"),
    ];
    for (args, code, expected) in cases {
        let run = kinarch(&w.moto, args).await;
        run.expect_code(code);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // A stream without archive tags names the setup command.
    kinesis::create_stream(&w.kinesis, "plain", 1).await;
    let run = kinarch(&w.moto, &["reinject", "plain"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("kinarch setup plain"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinject_refuses_a_table_whose_key_schema_does_not_fit_the_mode() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    kinarch_tests::dynamo::stream_with_hash_only_table(&kinesis_client, &dynamodb, "misfit").await;
    // --yes: a raw replay into the source asks first (issue 11.5); the refusal must come
    // from the table, not from that question.
    for args in [
        &["reinject", "misfit", "--yes"][..],
        &[
            "reinject",
            "misfit",
            "--yes",
            "--partition-key",
            "k",
            "--from",
            "1",
        ],
    ] {
        let run = kinarch(&moto, args).await;
        run.expect_code(1);
        kinarch_tests::dynamo::assert_refused_for_all_mode(
            &run.stderr,
            "misfit-archive-ALL",
            "HASH partitionKey (S)",
        );
    }
    assert!(
        kinesis::read_all(&kinesis_client, "misfit")
            .await
            .is_empty(),
        "nothing sent"
    );
}
