//! `kinarch tier` (issue 25): an ALL table written by the real `bootstrap` binary (plain,
//! KPL, overflowed and oversize records) moved into Parquet with `--delete`, after which
//! scan and query return what they returned before and DuckDB reads the files; a tier killed
//! with SIGKILL mid-way and rerun (each record once in the files, no item deleted that is not
//! in a checked file); a file that does not read back keeps its items; refusals; dry run.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{self, Running};
use kinarch_tests::dynamo::s;
use kinarch_tests::kinesis::StreamRecord;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::peers::{self, TempDir};
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::s3;
use kinarch_tests::world::{World, eventually};
use serde_json::Value;

use crate::kpl::{aggregate, user};

const BUCKET: &str = "history";
const TARGET: &str = "s3://history/kinarch";
const PAYLOADS: &str = "payloads";

/// 2026-03-01T10:00:00Z, the hour the old records arrived in.
const OLD: f64 = 1_772_359_200.0;

fn record(key: &str, sequence: &str, arrival: f64, data: Vec<u8>) -> StreamRecord {
    StreamRecord {
        shard_id: "shardId-000000000000".into(),
        partition_key: key.into(),
        sequence_number: sequence.into(),
        data,
        arrival,
    }
}

/// What a record is, whichever store printed it (`-o jsonl`): key, sequence, sub-sequence,
/// shard, arrival, bytes (base64), oversize size. Leaves out where a payload lived.
fn essence(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    serde_json::json!([
        v["partitionKey"],
        v["sequenceNumber"],
        v["subSequenceNumber"],
        v["explicitHashKey"],
        v["shardId"],
        v["approximateArrivalTimestamp"],
        v["recordData"],
        v["oversize"],
        if v["oversize"] == true {
            v["recordSize"].clone()
        } else {
            Value::Null
        },
    ])
    .to_string()
}

fn essences(out: &str) -> Vec<String> {
    out.lines().map(essence).collect()
}

async fn bootstrap(w: &World) -> LambdaFunction {
    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await
}

/// `kinarch tier orders --older-than OLDER_THAN --parquet TARGET --delete -o json`, which
/// must succeed: its report.
async fn tier_json(w: &World, older_than: &str) -> Value {
    w.kinarch(&[
        "tier",
        "orders",
        "--older-than",
        older_than,
        "--parquet",
        TARGET,
        "--delete",
        "-o",
        "json",
    ])
    .await
    .ok()
    .json()
}

/// The rows DuckDB reads from every file of the Parquet bucket: (key, sequence,
/// sub-sequence, data as base64 or null, oversize).
async fn duckdb_rows(w: &World, name: &str) -> Vec<Value> {
    let dir = TempDir::new(name);
    peers::download(&w.s3, BUCKET, dir.path()).await;
    let seen = peers::read(dir.path(), &[]);
    seen["duckdb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!([
                r["partitionKey"],
                r["sequenceNumber"],
                r["subSequenceNumber"],
                r["data"],
                r["oversize"]
            ])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_every_kind_of_item_is_tiered_and_reads_back_the_same() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    s3::create_bucket(&w.s3, PAYLOADS).await;
    // An archive from before the Parquet archive: a table, no ArchiveParquet tag.
    let arn = w.set_up("orders", 1, "ALL", &[]).await;
    let containers = aggregate(&[vec![
        user("user-1", None, b"first"),
        user("user-2", Some("1234567890"), b"second"),
    ]]);
    let oversize: Vec<u8> = (0..500 * 1024).map(|i| (i % 251) as u8).collect();
    let mut first = bootstrap(&w).await;
    first
        .deliver(
            &arn,
            &[
                record("key-a", "100", OLD, b"{\"n\":1}".to_vec()),
                record("key-b", "101", OLD + 1.5, vec![0, 0xff, b'\n', 7]),
                record(&containers[0].0, "102", OLD + 2.0, containers[0].1.clone()),
                record("big", "103", OLD + 3600.25, oversize.clone()),
            ],
        )
        .await;
    // Then an overflow bucket: a large payload goes there (a new process reads the tag).
    w.kinarch(&[
        "setup",
        "orders",
        "ALL",
        "--overflow-bucket",
        PAYLOADS,
        "--yes",
    ])
    .await
    .ok();
    let mut second = bootstrap(&w).await;
    let large: Vec<u8> = (0..600 * 1024).map(|i| (i % 241) as u8).collect();
    second
        .deliver(
            &arn,
            &[
                record("huge", "104", OLD + 3601.0, large),
                // Recent: stays in the table.
                record("key-a", "105", 1_794_000_000.0, b"{\"n\":2}".to_vec()),
            ],
        )
        .await;
    let table = "orders-archive-ALL";
    assert_eq!(w.items(table).await.len(), 7);
    let overflowed = s3::keys(&w.s3, PAYLOADS).await;
    assert_eq!(overflowed.len(), 1, "{overflowed:?}");

    let scan_before = w.kinarch(&["scan", "orders", "-o", "jsonl"]).await;
    let key_before = w
        .kinarch(&["query", "orders", "key-a", "-o", "jsonl"])
        .await;
    let user_before = w
        .kinarch(&["query", "orders", "user-2", "-o", "jsonl"])
        .await;
    let mut before = essences(&scan_before.ok().out());
    before.sort();
    assert_eq!(before.len(), 7);
    w.stream("replay", 1).await;
    let replay = [
        "reinject",
        "orders",
        "--target",
        "replay",
        "--estimate",
        "-o",
        "json",
    ];
    let estimate_before = w.kinarch(&replay).await.ok().json();

    // The stream has no ArchiveParquet tag: tier needs --parquet.
    let untagged = w
        .kinarch(&["tier", "orders", "--older-than", "2026-06-01", "--dry-run"])
        .await;
    untagged.expect_code(1);
    assert!(untagged.stderr.contains("--parquet"), "{}", untagged.stderr);

    let dry = w
        .kinarch(&[
            "tier",
            "orders",
            "--older-than",
            "2026-06-01",
            "--parquet",
            TARGET,
            "--dry-run",
        ])
        .await;
    let text = dry.ok().out();
    assert!(text.contains("6 items read"), "{text}");
    assert!(text.contains("would write at least 2 files"), "{text}");
    assert!(
        text.contains("in the table") && text.contains("Glacier"),
        "{text}"
    );
    assert!(
        s3::keys(&w.s3, BUCKET).await.is_empty(),
        "a dry run writes nothing"
    );

    let report = tier_json(&w, "2026-06-01").await;
    assert_eq!(report["itemsRead"], 6, "{report}");
    assert_eq!(report["recordsWritten"], 6, "{report}");
    assert_eq!(report["filesWritten"], 2, "one per hour: {report}");
    assert_eq!(report["itemsDeleted"], 6, "{report}");
    assert_eq!(report["payloadsDeleted"], 1, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");

    // The table keeps the recent record only; the overflow object went with its item.
    let items = w.items(table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "sequenceNumber"), "105");
    assert!(s3::keys(&w.s3, PAYLOADS).await.is_empty());

    // Read with the Parquet archive named: the same records, bytes equal.
    let scan_after = w
        .kinarch(&["scan", "orders", "--parquet", TARGET, "-o", "jsonl"])
        .await;
    let mut after = essences(&scan_after.ok().out());
    after.sort();
    assert_eq!(after, before);
    let estimate_after = w
        .kinarch(&[&replay[..], &["--parquet", TARGET]].concat())
        .await
        .ok()
        .json();
    assert_eq!(
        estimate_after, estimate_before,
        "a replay would send the same"
    );
    // A key's records: old ones (from the files) before new ones (from the table).
    for (key, before) in [("key-a", &key_before), ("user-2", &user_before)] {
        let after = w
            .kinarch(&["query", "orders", key, "--parquet", TARGET, "-o", "jsonl"])
            .await;
        assert_eq!(
            essences(&after.ok().out()),
            essences(&before.ok().out()),
            "{key}"
        );
    }

    // DuckDB reads six rows: the oversize one with null data and the flag.
    let rows = duckdb_rows(&w, "tier-kinds").await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    let big = rows.iter().find(|r| r[0] == "big").unwrap();
    assert_eq!(big[3], Value::Null);
    assert_eq!(big[4], true);
    let huge = rows.iter().find(|r| r[0] == "huge").unwrap();
    assert_eq!(
        STANDARD.decode(huge[3].as_str().unwrap()).unwrap().len(),
        600 * 1024
    );
    let users: Vec<&Value> = rows.iter().filter(|r| r[1] == "102").collect();
    assert_eq!(users.len(), 2, "the container's user records: {rows:?}");

    // Run again: nothing older is left, nothing is written.
    let again = tier_json(&w, "2026-06-01").await;
    assert_eq!(again["itemsRead"], 0, "{again}");
    assert_eq!(duckdb_rows(&w, "tier-kinds-again").await.len(), 6);
}

/// `count` records of 2 KB over 2 shards and 3 hours, archived long ago.
fn old_records(count: usize) -> Vec<ArchiveRecord> {
    (0..count)
        .map(|i| {
            let mut data = format!("{{\"n\":{i}}}").into_bytes();
            data.resize(2048, b' ');
            ArchiveRecord::received(
                format!("key-{}", i % 13),
                SequenceNumber::parse(&format!("{}", 1000 + i)).unwrap(),
                format!("shardId-00000000000{}", i % 2),
                OLD + (i % 3) as f64 * 3600.0 + i as f64 / 1000.0,
                data,
            )
        })
        .collect()
}

/// Stream `orders` (2 shards) whose ALL table holds `count` [`old_records`], and the
/// Parquet bucket.
async fn old_archive(count: usize) -> (World, Vec<ArchiveRecord>) {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let records = old_records(count);
    let archived_at = chrono::DateTime::from_timestamp(OLD as i64 + 4 * 3600, 0).unwrap();
    w.archived("orders", 2, &records, archived_at).await;
    (w, records)
}

/// `kinarch tier orders --older-than now --parquet TARGET --delete` running through a proxy
/// that holds each BatchWriteItem back for `delay`, once `deletes` of them were sent (the
/// proxy must live as long as the process).
async fn tier_with_slow_deletes(w: &World, delay: Duration, deletes: u64) -> (Running, FaultProxy) {
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let sent = Arc::new(AtomicU64::new(0));
    let seen = sent.clone();
    proxy.set_rule(move |call| {
        (call.operation() == "BatchWriteItem").then(|| {
            seen.fetch_add(1, Ordering::SeqCst);
            Fault::Delay(delay)
        })
    });
    let running = Running::start(
        &w.moto.env_via(&proxy.endpoint()),
        &[
            "tier",
            "orders",
            "--older-than",
            "now",
            "--parquet",
            TARGET,
            "--delete",
        ],
    );
    eventually("deletes sent", Duration::from_secs(120), || {
        std::future::ready((sent.load(Ordering::SeqCst) >= deletes).then_some(()))
    })
    .await;
    (running, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_killed_mid_way_and_rerun_writes_each_record_once_and_deletes_only_checked_items() {
    let (w, records) = old_archive(1500).await;
    let table = "orders-archive-ALL";

    // Deletes slowed down, so that the kill lands among them.
    let (running, _proxy) = tier_with_slow_deletes(&w, Duration::from_millis(300), 6).await;
    running.signal("KILL");
    let killed = running.wait().await;
    assert_eq!(killed.code, -1, "killed: {}", killed.stderr);
    // A delete the proxy held back when the process died still lands: let it.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every item gone from the table is in a file that reads back (DuckDB).
    let left: BTreeSet<String> = w
        .items(table)
        .await
        .iter()
        .map(|i| s(i, "sequenceNumber").to_owned())
        .collect();
    assert!(left.len() < records.len(), "some items were deleted");
    assert!(!left.is_empty(), "the kill came before the end");
    let in_files: BTreeSet<String> = duckdb_rows(&w, "tier-killed")
        .await
        .iter()
        .map(|r| r[1].as_str().unwrap().to_owned())
        .collect();
    for record in &records {
        let sequence = record.sequence_number.as_str();
        assert!(
            left.contains(sequence) || in_files.contains(sequence),
            "record {sequence} is neither in the table nor in a file"
        );
    }

    // The rerun goes on: every item deleted, every record exactly once in the files.
    let report = tier_json(&w, "now").await;
    // What the first run had written is found in its files, the rest is written now.
    assert_eq!(report["itemsRead"], left.len() as u64, "{report}");
    assert_eq!(
        report["recordsWritten"].as_u64().unwrap()
            + report["recordsAlreadyArchived"].as_u64().unwrap(),
        left.len() as u64,
        "{report}"
    );
    assert!(
        report["recordsAlreadyArchived"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(report["itemsDeleted"], left.len() as u64, "{report}");
    assert!(w.items(table).await.is_empty());
    let rows = duckdb_rows(&w, "tier-rerun").await;
    assert_eq!(rows.len(), records.len(), "each record once");
    let distinct: BTreeSet<String> = rows.iter().map(|r| r[1].to_string()).collect();
    assert_eq!(distinct.len(), records.len());
    // And the archive reads as it was (auto: the marker says they are in the files).
    let scan = w
        .kinarch(&["scan", "orders", "--parquet", TARGET, "-o", "jsonl"])
        .await;
    assert_eq!(scan.ok().out().lines().count(), records.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_does_not_read_back_keeps_its_items_until_a_rerun_checks_it() {
    let (w, records) = old_archive(40).await;
    let table = "orders-archive-ALL";

    // Every GetObject of a file answers with bytes that are no Parquet file.
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.target == "S3.GetObject" && call.path.ends_with(".parquet")).then(|| Fault::Json {
            status: 200,
            body: "{\"not\":\"parquet\"}".into(),
        })
    });
    let mut command = cli::command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args([
        "tier",
        "orders",
        "--older-than",
        "now",
        "--parquet",
        TARGET,
        "--delete",
    ]);
    let failed = cli::run_command(command, None).await;
    failed.expect_code(1);
    assert!(
        failed.stderr.contains("not readable back") && failed.stderr.contains("items stay"),
        "{}",
        failed.stderr
    );
    assert_eq!(w.items(table).await.len(), records.len(), "no item deleted");

    // Without the fault the files check out: their items go, nothing is written twice.
    let report = tier_json(&w, "now").await;
    assert_eq!(report["recordsAlreadyArchived"], 40, "{report}");
    assert!(w.items(table).await.is_empty());
    assert_eq!(duckdb_rows(&w, "tier-unreadable").await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_none_archives_are_refused_with_the_reason() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    w.set_up("prices", 1, "LATEST", &[]).await;
    w.set_up("clicks", 1, "NONE", &["--parquet", TARGET]).await;
    let latest = w
        .kinarch(&["tier", "prices", "--older-than", "30d", "--parquet", TARGET])
        .await;
    latest.expect_code(2);
    assert!(
        latest.stderr.contains("LATEST table") && latest.stderr.contains("state"),
        "{}",
        latest.stderr
    );
    let none = w.kinarch(&["tier", "clicks", "--older-than", "30d"]).await;
    none.expect_code(2);
    assert!(none.stderr.contains("no table to tier"), "{}", none.stderr);
    let no_time = w.kinarch(&["tier", "prices"]).await;
    no_time.expect_code(2);
    assert!(
        no_time.stderr.contains("--older-than"),
        "{}",
        no_time.stderr
    );
}

/// The original Node archiver's table (`-archive-all`, its attributes as it wrote them) of a
/// stream that is gone: found by its default name, tiered, and read from the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_archiver_table_of_a_deleted_stream_is_tiered() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    kinarch_tests::dynamo::create_table(&w.dynamodb, "legacy-archive-all", true).await;
    for i in 0..5 {
        w.dynamodb
            .put_item()
            .table_name("legacy-archive-all")
            .item("partitionKey", S("customer-1".into()))
            .item("sequenceNumber", S(format!("4959{i}")))
            .item("shardId", S("shardId-000000000000".into()))
            .item(
                "approximateArrivalTimestamp",
                N(format!("{}", OLD + i as f64)),
            )
            .item("recordData", S(STANDARD.encode(format!("order {i}"))))
            .item("lastUpdate", S("2026-03-01 10:05:00".into()))
            .send()
            .await
            .unwrap();
    }
    let tier = w
        .kinarch(&[
            "tier",
            "legacy",
            "--older-than",
            "now",
            "--parquet",
            TARGET,
            "--delete",
            "-o",
            "json",
        ])
        .await;
    let report = tier.ok().json();
    assert_eq!(report["table"], "legacy-archive-all", "{report}");
    assert_eq!(report["itemsDeleted"], 5, "{report}");
    assert!(w.items("legacy-archive-all").await.is_empty());
    let scan = w.kinarch(&["scan", "legacy", "--parquet", TARGET]).await;
    assert_eq!(
        scan.ok().out(),
        "order 0\norder 1\norder 2\norder 3\norder 4\n",
        "{}",
        scan.stderr
    );
    let rows = duckdb_rows(&w, "tier-legacy").await;
    assert_eq!(rows.len(), 5);
}

/// Ctrl-C: the shard-hours in hand are finished, the report says it stopped, exit 130; the
/// same command then goes on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_files_in_hand_and_a_rerun_goes_on() {
    let (w, records) = old_archive(600).await;
    let (running, _proxy) = tier_with_slow_deletes(&w, Duration::from_millis(200), 1).await;
    running.signal("INT");
    let stopped = running.wait().await;
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    let out = String::from_utf8_lossy(&stopped.stdout).into_owned();
    assert!(out.contains("stopped: run the same command again"), "{out}");
    let left = w.items("orders-archive-ALL").await.len();
    assert!(left > 0 && left < records.len(), "{left} items left");
    assert!(
        out.contains(&format!("{} items deleted", records.len() - left)),
        "{out}"
    );

    let rest = tier_json(&w, "now").await;
    assert_eq!(rest["itemsDeleted"], left as u64, "{rest}");
    assert_eq!(duckdb_rows(&w, "tier-ctrl-c").await.len(), records.len());
}
