//! The Parquet archive end to end (issue 24): streams set up with `--parquet` (ALL beside
//! its table, NONE alone) archived by the real `bootstrap` binary through the Runtime API
//! and by `kinarch archive`; the files read back by DuckDB and pyarrow, and by kinarch's
//! `--source parquet` with the same records as the table; duplicate and overlapping
//! deliveries; a failed PutObject failing the whole batch before any item is written.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_tests::dynamo;
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{LambdaFunction, failures};
use kinarch_tests::peers::{self, TempDir};
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::s3;
use kinarch_tests::world::World;
use serde_json::Value;

const BUCKET: &str = "history";
const TARGET: &str = "s3://history/kinarch";

/// (key, sequence number, shard, data) of every record: what both stores must hold.
type Row = dynamo::ArchivedRecord;

fn stream_rows(records: &[StreamRecord]) -> BTreeSet<Row> {
    kinesis::as_archived(records)
}

/// The rows of `kinarch scan/query ... -o jsonl`.
fn jsonl_rows(out: &str) -> Vec<Row> {
    out.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (
                v["partitionKey"].as_str().unwrap().to_owned(),
                v["sequenceNumber"].as_str().unwrap().to_owned(),
                v["shardId"].as_str().unwrap().to_owned(),
                STANDARD.decode(v["recordData"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The rows DuckDB reads from every file of the bucket (hive partitions), each as often as
/// the files hold it.
async fn duckdb_rows(w: &World, name: &str) -> (Vec<Row>, Vec<String>) {
    let dir = TempDir::new(name);
    let keys = peers::download(&w.s3, BUCKET, dir.path()).await;
    let seen = peers::read(dir.path(), &[]);
    let rows = seen["duckdb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["partitionKey"].as_str().unwrap().to_owned(),
                r["sequenceNumber"].as_str().unwrap().to_owned(),
                r["shardId"].as_str().unwrap().to_owned(),
                STANDARD.decode(r["data"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    (rows, keys)
}

/// `count` records over 7 keys; every fifth is binary.
async fn put_records(w: &World, stream: &str, count: usize) -> Vec<StreamRecord> {
    let records: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| {
            let data = if i % 5 == 0 {
                vec![0u8, 0xff, b'\n', i as u8]
            } else {
                format!("{{\"n\":{i}}}").into_bytes()
            };
            (format!("key-{}", i % 7), data)
        })
        .collect();
    kinesis::put_many(&w.kinesis, stream, &records).await;
    kinesis::read_all(&w.kinesis, stream).await
}

fn by_shard(records: &[StreamRecord]) -> Vec<Vec<StreamRecord>> {
    let mut shards: std::collections::BTreeMap<String, Vec<StreamRecord>> = Default::default();
    for r in records {
        shards
            .entry(r.shard_id.clone())
            .or_default()
            .push(r.clone());
    }
    shards.into_values().collect()
}

/// The real `bootstrap` on a loopback Runtime API, with `env` and info-level logs.
async fn bootstrap(mut env: Vec<(String, String)>) -> LambdaFunction {
    env.push(("RUST_LOG".into(), "info".into()));
    LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_function_archives_to_parquet_beside_the_table_and_alone() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let orders = w.set_up("orders", 2, "ALL", &["--parquet", TARGET]).await;
    let clicks = w.set_up("clicks", 1, "NONE", &["--parquet", TARGET]).await;
    let order_records = put_records(&w, "orders", 60).await;
    let click_records = put_records(&w, "clicks", 20).await;
    let mut function = bootstrap(w.moto.env()).await;
    for (arn, records) in [(&orders, &order_records), (&clicks, &click_records)] {
        for shard in by_shard(records) {
            function.deliver(arn, &shard).await;
        }
    }

    // The table of ALL holds every record; NONE has no table.
    assert_eq!(w.items("orders-archive-ALL").await.len(), 60);
    assert!(w.items_if_any("clicks-archive-NONE").await.is_empty());
    let list = w.kinarch(&["list", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&list.ok().out()).unwrap();
    assert_eq!(list[0]["table"], "orders-archive-ALL", "{list}");
    assert_eq!(list[0]["parquet"], TARGET, "{list}");

    // DuckDB reads every record once, from one file per shard and hour under the layout.
    let (rows, keys) = duckdb_rows(&w, "lambda").await;
    let mut expected = stream_rows(&order_records);
    expected.extend(stream_rows(&click_records));
    assert_eq!(rows.len(), 80, "{keys:?}");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), expected);
    for key in &keys {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts[0], "kinarch", "{key}");
        assert!(["orders", "clicks"].contains(&parts[1]), "{key}");
        assert!(
            parts[2].starts_with("date=") && parts[3].starts_with("hour="),
            "{key}"
        );
        assert!(parts[4].starts_with("shardId-"), "{key}");
    }
    let summaries: Vec<Value> = function
        .json_logs()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "archived batch")
        .collect();
    assert_eq!(summaries.len(), 3);
    assert!(
        summaries
            .iter()
            .all(|l| l["fields"]["parquet_files"].as_u64() >= Some(1))
    );
    assert!(
        summaries
            .iter()
            .all(|l| l["fields"]["parquet_bytes"].as_u64() > Some(100))
    );

    // Delivered again, and again from the middle (other batch boundaries): the files
    // overlap, the readers keep each record once.
    let first_shard = &by_shard(&order_records)[0];
    for batch in [&first_shard[..], &first_shard[5..]] {
        function.deliver(&orders, batch).await;
    }
    let (rows, _) = duckdb_rows(&w, "overlap").await;
    assert!(
        rows.len() > 80,
        "an overlapping file was written: {}",
        rows.len()
    );

    // kinarch reads the same records from either store.
    let table = w.kinarch(&["scan", "orders", "-o", "jsonl"]).await;
    let parquet = w
        .kinarch(&["scan", "orders", "--source", "parquet", "-o", "jsonl"])
        .await;
    let from_table = jsonl_rows(&table.ok().out());
    let from_parquet = jsonl_rows(&parquet.ok().out());
    assert_eq!(from_parquet.len(), 60, "each record once");
    assert_eq!(
        from_parquet.iter().cloned().collect::<BTreeSet<_>>(),
        from_table.into_iter().collect::<BTreeSet<_>>()
    );
    // Per shard in sequence order.
    for shard in by_shard(&order_records) {
        let read: Vec<&String> = from_parquet
            .iter()
            .filter(|r| r.2 == shard[0].shard_id)
            .map(|r| &r.1)
            .collect();
        let sent: Vec<&String> = shard.iter().map(|r| &r.sequence_number).collect();
        assert_eq!(read, sent);
    }
    // A key: the same records in the same order as the table's Query.
    let table = w
        .kinarch(&["query", "orders", "key-3", "-o", "jsonl"])
        .await;
    let parquet = w
        .kinarch(&[
            "query", "orders", "key-3", "--source", "parquet", "-o", "jsonl",
        ])
        .await;
    assert_eq!(
        jsonl_rows(&parquet.ok().out()),
        jsonl_rows(&table.ok().out())
    );

    // NONE reads from Parquet by default; its table does not exist and is never asked for.
    let clicks_read = w.kinarch(&["scan", "clicks", "-o", "jsonl"]).await;
    assert_eq!(
        jsonl_rows(&clicks_read.ok().out())
            .into_iter()
            .collect::<BTreeSet<_>>(),
        stream_rows(&click_records)
    );
    let table_of_none = w.kinarch(&["scan", "clicks", "--source", "table"]).await;
    table_of_none.expect_code(2);
    assert!(
        table_of_none.stderr.contains("mode NONE"),
        "{}",
        table_of_none.stderr
    );

    // A replay from Parquet delivers every record of the selection.
    w.stream("copy", 1).await;
    w.kinarch(&[
        "reinject", "orders", "--source", "parquet", "--target", "copy", "--yes",
    ])
    .await
    .ok();
    let copied = kinesis::read_all(&w.kinesis, "copy").await;
    let copied: BTreeSet<(String, Vec<u8>)> = copied
        .into_iter()
        .map(|r| (r.partition_key, r.data))
        .collect();
    let sent: BTreeSet<(String, Vec<u8>)> = order_records
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    assert_eq!(copied, sent);

    // Paced and journaled from Parquet: a rerun with the same journal sends nothing again.
    w.stream("paced", 1).await;
    let journal =
        std::env::temp_dir().join(format!("kinarch-parquet-journal-{}", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let journal_arg = journal.to_str().unwrap();
    let args = [
        "reinject",
        "orders",
        "--source",
        "parquet",
        "--target",
        "paced",
        "--pace",
        "original",
        "--speed",
        "1000",
        "--journal",
        journal_arg,
        "-o",
        "json",
        "--yes",
    ];
    let first: Value = serde_json::from_str(&w.kinarch(&args).await.ok().out()).unwrap();
    assert_eq!(first["sent"], 60, "{first}");
    let again = w.kinarch(&args).await;
    let second: Value = serde_json::from_str(&again.ok().out()).unwrap();
    assert_eq!(second["sent"], 0, "{second}");
    assert!(
        again.stderr.contains("sent by an earlier run"),
        "{}",
        again.stderr
    );
    assert_eq!(kinesis::read_all(&w.kinesis, "paced").await.len(), 60);
    let _ = std::fs::remove_file(&journal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parquet_write_fails_the_whole_batch_before_any_item() {
    let w = World::start().await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let arn = w.set_up("orders", 1, "ALL", &["--parquet", TARGET]).await;
    let records = put_records(&w, "orders", 12).await;
    let mut function = bootstrap(w.moto.env_via(&proxy.endpoint())).await;
    proxy.set_rule(|call| {
        (call.target == "S3.PutObject").then(|| Fault::Error {
            status: 403,
            error_type: "AccessDenied".into(),
        })
    });
    let response = function
        .invoke(kinesis::event(&arn, &records))
        .await
        .response();
    assert_eq!(failures(&response), [records[0].sequence_number.clone()]);
    assert!(w.items_if_any("orders-archive-ALL").await.is_empty());
    let logs = function.logs().join("\n");
    assert!(
        logs.contains("S3.PutObject") && logs.contains("kinarch/orders/"),
        "{logs}"
    );

    // Delivered again once S3 takes the writes: both stores hold every record.
    proxy.heal();
    function.deliver(&arn, &records).await;
    assert_eq!(w.items("orders-archive-ALL").await.len(), 12);
    let (rows, _) = duckdb_rows(&w, "healed").await;
    assert_eq!(
        rows.into_iter().collect::<BTreeSet<_>>(),
        stream_rows(&records)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinarch_archive_writes_parquet_and_a_rerun_adds_no_record_twice() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    w.set_up("events", 2, "NONE", &["--parquet", TARGET]).await;
    put_records(&w, "events", 30).await;
    let run = w.kinarch(&["archive", "events", "-o", "json"]).await;
    let summary: Value = serde_json::from_str(&run.ok().out()).unwrap();
    assert_eq!(summary["written"], 30);
    assert!(summary["parquetFiles"].as_u64() >= Some(2), "{summary}");
    assert_eq!(summary["table"], Value::Null);
    assert_eq!(summary["parquet"], TARGET);

    // More records; the rerun resumes from its checkpoints.
    let mut more: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..10 {
        more.push((format!("late-{i}"), format!("late {i}").into_bytes()));
    }
    kinesis::put_many(&w.kinesis, "events", &more).await;
    let run = w.kinarch(&["archive", "events", "-o", "json"]).await;
    let summary: Value = serde_json::from_str(&run.ok().out()).unwrap();
    assert_eq!(summary["written"], 10, "only the new records");
    let all = kinesis::read_all(&w.kinesis, "events").await;
    assert_eq!(all.len(), 40);
    let (rows, _) = duckdb_rows(&w, "archive").await;
    assert_eq!(rows.len(), 40, "no record twice");
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), stream_rows(&all));

    // status: mode NONE is healthy without a table, and says where the files are.
    let status = w.kinarch(&["status", "events", "-o", "json"]).await;
    let status: Value = serde_json::from_str(&status.ok().out()).unwrap();
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["mode"], "NONE");
    assert_eq!(status["parquet"]["target"], TARGET);
    let newest = status["parquet"]["newestFiles"].as_array().unwrap();
    assert_eq!(newest.len(), 2, "one per shard: {status}");
    assert_eq!(
        status["checkpoints"]["stale"].as_array().map(Vec::len),
        Some(0),
        "mode NONE's checkpoints are current: {status}"
    );
    let text = w.kinarch(&["status", "events"]).await;
    assert!(text.ok().out().contains("newest file"), "{}", text.out());
    assert!(!text.out().contains("stale"), "{}", text.out());

    // Athena: the table over the stream's files, its days projected from a year before
    // the archive began (records of the stream's backlog keep their arrival hour).
    let ddl = w.kinarch(&["athena-ddl", "events"]).await;
    let ddl = ddl.ok().out();
    assert!(
        ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `events_parquet`"),
        "{ddl}"
    );
    assert!(
        ddl.contains("LOCATION 's3://history/kinarch/events/'"),
        "{ddl}"
    );
    let first = (chrono::Utc::now() - chrono::Duration::days(365)).date_naive();
    let day_after = first + chrono::Duration::days(1);
    assert!(
        ddl.contains(&format!("'projection.date.range' = '{first},NOW'"))
            || ddl.contains(&format!("'projection.date.range' = '{day_after},NOW'")),
        "{ddl}"
    );
    let bad = w
        .kinarch(&["athena-ddl", "events", "--table-name", "Bad-Name"])
        .await;
    bad.expect_code(2);
    assert!(bad.stderr.contains("bad_name"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_that_turned_parquet_on_later_is_read_from_both_stores() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let arn = w.set_up("orders", 1, "ALL", &[]).await;
    let mut env = w.moto.env();
    env.push(("KINARCH_CONFIG_REFRESH_SECONDS".into(), "0".into()));
    let mut function = bootstrap(env).await;
    let older = put_records(&w, "orders", 10).await;
    function.deliver(&arn, &older).await;

    // Parquet turned on: setup writes the marker of when it began (15 minutes from now, so
    // that every archiver has seen the tag). The test moves that start to just after the
    // older records instead of waiting.
    let run = w
        .kinarch(&["setup", "orders", "ALL", "--parquet", TARGET, "--yes"])
        .await;
    assert!(run.ok().out().contains("_kinarch.json"), "{}", run.out());
    let marker_key = "kinarch/orders/_kinarch.json";
    let marker: Value =
        serde_json::from_slice(&s3::get(&w.s3, BUCKET, marker_key).await.unwrap()).unwrap();
    assert_eq!(marker["stream"], "orders");
    let since = older.last().unwrap().arrival + 0.001;
    let since_text = chrono::DateTime::from_timestamp_millis((since * 1000.0).round() as i64)
        .unwrap()
        .to_rfc3339();
    s3::put(
        &w.s3,
        BUCKET,
        marker_key,
        serde_json::json!({"stream": "orders", "parquetSince": since_text})
            .to_string()
            .into_bytes(),
    )
    .await;
    // Rerunning setup with the same --parquet leaves the marker alone.
    let again = w
        .kinarch(&[
            "setup",
            "orders",
            "ALL",
            "--parquet",
            TARGET,
            "--yes",
            "-o",
            "json",
        ])
        .await;
    let again: Value = serde_json::from_str(&again.ok().out()).unwrap();
    let marked = again["done"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"].as_str().unwrap().contains("_kinarch.json"))
        .unwrap();
    assert_eq!(marked["status"], "unchanged", "{again}");

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let newer: Vec<StreamRecord> = {
        let more: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| (format!("key-{}", i % 7), format!("newer {i}").into_bytes()))
            .collect();
        kinesis::put_many(&w.kinesis, "orders", &more).await;
        kinesis::read_all(&w.kinesis, "orders").await[10..].to_vec()
    };
    assert!(newer.iter().all(|r| r.arrival >= since));
    function.deliver(&arn, &newer).await;

    // The table loses the newer items (as a TTL would): auto still reads them, from Parquet.
    for r in &newer {
        w.dynamodb
            .delete_item()
            .table_name("orders-archive-ALL")
            .key(
                "partitionKey",
                aws_sdk_dynamodb::types::AttributeValue::S(r.partition_key.clone()),
            )
            .key(
                "sequenceNumber",
                aws_sdk_dynamodb::types::AttributeValue::S(r.sequence_number.clone()),
            )
            .send()
            .await
            .unwrap();
    }
    let auto = w.kinarch(&["scan", "orders", "-o", "jsonl", "-v"]).await;
    let rows = jsonl_rows(&auto.ok().out());
    let mut all = older.clone();
    all.extend(newer.iter().cloned());
    assert_eq!(rows.len(), 20, "{}", auto.stderr);
    assert_eq!(rows.into_iter().collect::<BTreeSet<_>>(), stream_rows(&all));
    assert!(auto.stderr.contains("from_parquet=true"), "{}", auto.stderr);
    let table = w
        .kinarch(&["scan", "orders", "--source", "table", "-o", "jsonl"])
        .await;
    assert_eq!(jsonl_rows(&table.ok().out()).len(), 10);
    let parquet = w
        .kinarch(&["scan", "orders", "--source", "parquet", "-o", "jsonl"])
        .await;
    assert_eq!(
        jsonl_rows(&parquet.ok().out())
            .into_iter()
            .collect::<BTreeSet<_>>(),
        stream_rows(&newer)
    );
    // A window entirely after the start reads Parquet only; a worker's share of a read
    // spanning both stores is refused, naming the way out.
    let window = w
        .kinarch(&[
            "scan",
            "orders",
            "--arrived-after",
            &since_text,
            "-o",
            "jsonl",
        ])
        .await;
    assert_eq!(jsonl_rows(&window.ok().out()).len(), 10);
    let worker = w.kinarch(&["scan", "orders", "--segment", "0/2"]).await;
    worker.expect_code(2);
    assert!(
        worker.stderr.contains("--source parquet"),
        "{}",
        worker.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parquet_archive_outlives_its_stream_splits_among_workers_and_names_a_bad_file() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    w.set_up("events", 2, "NONE", &["--parquet", TARGET]).await;
    let records = put_records(&w, "events", 40).await;
    w.kinarch(&["archive", "events"]).await.ok();

    // A key: the other shard's file is skipped by its bloom filter, which -v reports.
    let key = w
        .kinarch(&["query", "events", "key-3", "-o", "jsonl", "-v"])
        .await;
    let expected: Vec<&StreamRecord> = records
        .iter()
        .filter(|r| r.partition_key == "key-3")
        .collect();
    assert_eq!(jsonl_rows(&key.ok().out()).len(), expected.len());
    assert!(key.stderr.contains("Parquet reads"), "{}", key.stderr);
    assert!(
        key.stderr.contains("skipped_by_bloom_filter=1"),
        "{}",
        key.stderr
    );

    // Four workers read every record once between them, each key whole.
    let mut union = Vec::new();
    for i in 0..4 {
        let segment = format!("{i}/4");
        let run = w
            .kinarch(&["scan", "events", "--segment", &segment, "-o", "jsonl"])
            .await;
        union.extend(jsonl_rows(&run.ok().out()));
    }
    assert_eq!(union.len(), 40);
    assert_eq!(
        union.into_iter().collect::<BTreeSet<_>>(),
        stream_rows(&records)
    );

    // The stream deleted: --parquet names where the archive is.
    w.kinesis
        .delete_stream()
        .stream_name("events")
        .send()
        .await
        .unwrap();
    kinarch_tests::world::eventually(
        "the stream is gone",
        std::time::Duration::from_secs(30),
        || async {
            w.kinesis
                .describe_stream_summary()
                .stream_name("events")
                .send()
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    let gone = w
        .kinarch(&["scan", "events", "--parquet", TARGET, "-o", "jsonl"])
        .await;
    assert!(
        gone.ok()
            .stderr
            .contains("reading its Parquet archive under"),
        "{}",
        gone.stderr
    );
    assert_eq!(
        jsonl_rows(&gone.out()).into_iter().collect::<BTreeSet<_>>(),
        stream_rows(&records)
    );
    let without = w.kinarch(&["scan", "events"]).await;
    assert_ne!(without.code, 0);

    // A corrupt file is named; the other file's records are still printed; exit 1.
    let keys = s3::keys(&w.s3, BUCKET).await;
    let bad = keys
        .iter()
        .find(|k| k.contains("shardId-000000000000"))
        .unwrap()
        .clone();
    s3::put(&w.s3, BUCKET, &bad, b"not a parquet file".to_vec()).await;
    let run = w
        .kinarch(&["scan", "events", "--parquet", TARGET, "-o", "jsonl"])
        .await;
    run.expect_code(1);
    assert!(run.stderr.contains(&bad), "{}", run.stderr);
    let others: Vec<&StreamRecord> = records
        .iter()
        .filter(|r| r.shard_id != "shardId-000000000000")
        .collect();
    assert_eq!(jsonl_rows(&run.out()).len(), others.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_with_parquet_keeps_the_state_in_the_table_and_every_user_record_in_s3() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let arn = w
        .set_up("prices", 1, "LATEST", &["--parquet", TARGET])
        .await;
    let containers = crate::kpl::aggregate(&[
        vec![
            crate::kpl::user("a", None, b"a1"),
            crate::kpl::user("b", Some("170141183460469231731687303715884105728"), b"b1"),
        ],
        vec![
            crate::kpl::user("a", None, b"a2"),
            crate::kpl::user("c", None, b"c1"),
        ],
    ]);
    let record = |key: &str, sequence: &str, data: Vec<u8>| StreamRecord {
        shard_id: "shardId-000000000000".into(),
        partition_key: key.into(),
        sequence_number: sequence.into(),
        data,
        arrival: 1_764_000_000.125,
    };
    // Sequence numbers of AWS's length; a 5 MiB payload, far beyond an item.
    let seq = |n: u32| format!("4960{:052}", n);
    let big: Vec<u8> = (0..5 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let records = vec![
        record(&containers[0].0, &seq(1), containers[0].1.clone()),
        record("b", &seq(2), b"b2".to_vec()),
        record(&containers[1].0, &seq(3), containers[1].1.clone()),
        record("big", &seq(4), big.clone()),
    ];
    let mut function = bootstrap(w.moto.env()).await;
    function.deliver(&arn, &records).await;

    // The table: the newest record of each key (the 5 MiB one as an oversize marker).
    let items = w.items("prices-archive-LATEST").await;
    let newest: BTreeSet<(String, String)> = items
        .iter()
        .map(|i| {
            (
                dynamo::s(i, "partitionKey").to_owned(),
                i.get("recordData")
                    .map_or("-".into(), |_| dynamo::s(i, "sequenceNumber").to_owned()),
            )
        })
        .collect();
    assert_eq!(
        newest,
        BTreeSet::from([
            ("a".into(), seq(3)),
            ("b".into(), seq(2)),
            ("c".into(), seq(3)),
            ("big".into(), "-".into()),
        ])
    );

    // Parquet: every user record and the 5 MiB payload, bytes equal, read by DuckDB.
    let dir = TempDir::new("latest");
    peers::download(&w.s3, BUCKET, dir.path()).await;
    let seen = peers::read(dir.path(), &[]);
    let rows: Vec<(String, String, Option<u64>, Vec<u8>)> = seen["duckdb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["partitionKey"].as_str().unwrap().to_owned(),
                r["sequenceNumber"].as_str().unwrap().to_owned(),
                r["subSequenceNumber"].as_u64(),
                STANDARD.decode(r["data"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("a".into(), seq(1), Some(0), b"a1".to_vec()),
            ("b".into(), seq(1), Some(1), b"b1".to_vec()),
            ("b".into(), seq(2), None, b"b2".to_vec()),
            ("a".into(), seq(3), Some(0), b"a2".to_vec()),
            ("c".into(), seq(3), Some(1), b"c1".to_vec()),
            ("big".into(), seq(4), None, big.clone()),
        ]
    );
    assert_eq!(
        seen["duckdb"][1]["explicitHashKey"],
        "170141183460469231731687303715884105728"
    );

    // The history of a key from Parquet (the table holds only its newest), in order.
    let history = w
        .kinarch(&["query", "prices", "a", "--source", "parquet", "-o", "jsonl"])
        .await;
    let history = jsonl_rows(&history.ok().out());
    assert_eq!(
        history.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
        [b"a1".to_vec(), b"a2".to_vec()]
    );
    let state = w.kinarch(&["query", "prices", "a", "-o", "jsonl"]).await;
    assert_eq!(jsonl_rows(&state.ok().out()).len(), 1);
    let large = w
        .kinarch(&["query", "prices", "big", "--source", "parquet"])
        .await;
    assert_eq!(
        large.ok().stdout.len(),
        big.len() + 1,
        "the payload and a newline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_none_without_its_parquet_tag_archives_nothing_and_says_so() {
    let w = World::start().await;
    let arn = w.stream("lost", 1).await;
    kinesis::tag_stream(&w.kinesis, "lost", &[("StreamArchiveMode", "NONE")]).await;
    let records = put_records(&w, "lost", 3).await;
    let mut function = bootstrap(w.moto.env()).await;
    // A function error: the records stay in the stream, none is reported archived.
    let error = function
        .invoke(kinesis::event(&arn, &records))
        .await
        .error();
    let message = error.to_string();
    assert!(
        message.contains("StreamArchiveMode") && message.contains("ArchiveParquet"),
        "{message}"
    );
    let run = w.kinarch(&["archive", "lost"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("ArchiveParquet"), "{}", run.stderr);
    let status = w.kinarch(&["status", "lost"]).await;
    status.expect_code(1);
    assert!(status.out().contains("ArchiveParquet"), "{}", status.out());
}
