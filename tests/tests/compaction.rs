//! Compaction of the Parquet archive (issue 25): `kinarch compact` rewriting 200 small files
//! of one shard-hour into one while `kinarch scan` runs in a loop (every scan returns the
//! same records), a scan that listed the small files before they were deleted (it reads the
//! new file instead), the files read by DuckDB and pyarrow afterwards, and the Lambda
//! function compacting on its schedule through the Runtime API.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use kinarch_core::domain::names::StreamName;
use kinarch_core::domain::parquet::{ParquetTarget, files_of, hour_of};
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::peers::{self, TempDir};
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::s3;
use kinarch_tests::world::World;
use serde_json::{Value, json};

const BUCKET: &str = "history";
const TARGET: &str = "s3://history/kinarch";
const SHARD: &str = "shardId-000000000000";

/// When the files of a test were archived: a whole second, so `lastUpdate` and `archivedAt`
/// say the same instant.
fn archived_at(hour: DateTime<Utc>) -> DateTime<Utc> {
    hour + Duration::minutes(70)
}

/// The record of sequence number `n` (arrived `n` half-seconds into `hour`).
fn record(shard: &str, hour: DateTime<Utc>, n: u64) -> ArchiveRecord {
    ArchiveRecord::received(
        format!("key-{}", n % 5),
        SequenceNumber::parse(&n.to_string()).unwrap(),
        shard.to_owned(),
        hour.timestamp() as f64 + n as f64 * 0.5,
        format!("{{\"n\":{n}}}").into_bytes(),
    )
}

/// Writes one Parquet file per list of sequence numbers, as the writer makes a batch's file
/// of one shard and hour.
async fn write_files(
    w: &World,
    stream: &str,
    shard: &str,
    hour: DateTime<Utc>,
    files: &[Vec<u64>],
) {
    let target = ParquetTarget::parse(TARGET).unwrap();
    let name = StreamName::new(stream).unwrap();
    for numbers in files {
        let records: Vec<ArchiveRecord> = numbers.iter().map(|n| record(shard, hour, *n)).collect();
        let [file] = files_of(&records).try_into().expect("one shard and hour");
        let body = kinarch_core::parquet::encode(&file.records, archived_at(hour), &name).unwrap();
        s3::put(&w.s3, BUCKET, &file.key.key(&target, &name), body).await;
    }
}

/// The Parquet keys of one shard-hour of `stream`.
async fn keys_of_hour(w: &World, stream: &str, hour: DateTime<Utc>) -> Vec<String> {
    let prefix = format!("kinarch/{stream}/{}", hour.format("date=%Y-%m-%d/hour=%H/"));
    let mut keys = s3::keys(&w.s3, BUCKET).await;
    keys.retain(|k| k.starts_with(&prefix) && k.ends_with(".parquet"));
    keys
}

/// `kinarch scan STREAM --source parquet` over one hour, as JSON lines.
fn scan_args(stream: &str, hour: DateTime<Utc>) -> Vec<String> {
    let time = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    [
        "scan",
        stream,
        "--source",
        "parquet",
        "--arrived-after",
        &time(hour),
        "--arrived-before",
        &time(hour + Duration::hours(1)),
        "-o",
        "jsonl",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A world with the bucket and stream `orders` archived to Parquet only (mode NONE), and
/// the stream's ARN.
async fn orders_archive() -> (World, String) {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let arn = w.set_up("orders", 1, "NONE", &["--parquet", TARGET]).await;
    (w, arn)
}

/// What `scan_args` prints for `orders`.
async fn scan_hour(w: &World, hour: DateTime<Utc>) -> String {
    let args = scan_args("orders", hour);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.kinarch(&args).await.ok().out()
}

/// 200 batches of 3 records each, then two batches delivered again with other boundaries
/// (files that overlap earlier ones): 202 files, 600 records.
fn two_hundred_files() -> Vec<Vec<u64>> {
    let mut files: Vec<Vec<u64>> = (0..200)
        .map(|i| (i * 3 + 1..=i * 3 + 3).collect())
        .collect();
    files.push((10..=20).collect());
    files.push((595..=600).collect());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacting_200_small_files_while_scans_run_loses_and_repeats_no_record() {
    let (w, _) = orders_archive().await;
    let hour = hour_of(Utc::now() - Duration::hours(3));
    write_files(&w, "orders", SHARD, hour, &two_hundred_files()).await;
    // Left alone: a shard-hour of one file, and the current hour (not finished).
    write_files(&w, "orders", "shardId-000000000001", hour, &[vec![1, 2]]).await;
    let now = hour_of(Utc::now());
    write_files(&w, "orders", SHARD, now, &[vec![1000], vec![1001]]).await;
    assert_eq!(keys_of_hour(&w, "orders", hour).await.len(), 203);

    let args = scan_args("orders", hour);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = w.kinarch(&args).await.ok().out();
    assert_eq!(expected.lines().count(), 602, "600 + 2 of the other shard");

    // The dry run says what would be rewritten and changes nothing.
    let dry = w
        .kinarch(&["compact", "orders", "--dry-run", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(dry["filesBefore"], 202, "{dry}");
    assert_eq!(dry["outputs"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(keys_of_hour(&w, "orders", hour).await.len(), 203);

    // Scans in a loop while the compaction runs, and one after it.
    let done = std::sync::atomic::AtomicBool::new(false);
    let scans = async {
        let mut outputs = Vec::new();
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            outputs.push((finished, w.kinarch(&args).await.ok().out()));
            if finished {
                return outputs;
            }
        }
    };
    let compaction = async {
        tokio::time::sleep(StdDuration::from_millis(300)).await;
        let run = w.kinarch(&["compact", "orders", "-o", "json"]).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        run
    };
    let (outputs, run) = tokio::join!(scans, compaction);
    let report = run.ok().json();
    assert!(outputs.len() >= 2, "{} scans", outputs.len());
    for (i, (after, out)) in outputs.iter().enumerate() {
        assert!(
            *out == expected,
            "scan {i} (after the compaction: {after}) returned {} lines, not the same records",
            out.lines().count()
        );
    }

    assert_eq!(report["filesBefore"], 202, "{report}");
    assert_eq!(report["filesAfter"], 1, "{report}");
    let output = &report["outputs"][0];
    assert_eq!(output["rows"], 600, "{report}");
    assert_eq!(output["written"], true, "{report}");
    assert_eq!(output["deleted"], 202, "{report}");
    assert!(
        report["bytesAfter"].as_u64() < report["bytesBefore"].as_u64(),
        "{report}"
    );
    let mut keys = keys_of_hour(&w, "orders", hour).await;
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys[0].ends_with(&format!("{SHARD}-1-600.parquet")),
        "{keys:?}"
    );
    assert_eq!(
        keys_of_hour(&w, "orders", now).await.len(),
        2,
        "the current hour is left"
    );

    // DuckDB reads each record once, in order; pyarrow sees the contract's file with the
    // rows' own archive time.
    let dir = TempDir::new("compaction");
    peers::download(&w.s3, BUCKET, dir.path()).await;
    let seen = peers::read(dir.path(), &[]);
    let rows: Vec<(String, u64)> = seen["duckdb"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["hour"].as_i64() == Some(i64::from(chrono::Timelike::hour(&hour))))
        .filter(|r| r["shardId"] == SHARD)
        .map(|r| {
            (
                r["partitionKey"].as_str().unwrap().to_owned(),
                r["sequenceNumber"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let wanted: Vec<(String, u64)> = (1..=600).map(|n| (format!("key-{}", n % 5), n)).collect();
    assert_eq!(rows, wanted);
    let relative = keys[0].strip_prefix("kinarch/").unwrap_or(&keys[0]);
    let file = seen["files"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(path, _)| path.ends_with(relative) || relative.ends_with(path.as_str()))
        .map(|(_, f)| f)
        .unwrap_or_else(|| {
            panic!(
                "pyarrow's view of {relative}: {:?}",
                seen["files"].as_object().unwrap().keys()
            )
        });
    assert_eq!(file["metadata"]["kinarch.schema"], "1");
    assert_eq!(file["metadata"]["kinarch.stream"], "orders");
    let rows = file["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 600);
    assert!(
        rows.iter()
            .all(|r| r["archivedAt"] == archived_at(hour).timestamp_millis()),
        "{}",
        rows[0]
    );

    // Compacting again has nothing to do.
    let again = w
        .kinarch(&["compact", "orders", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(again["outputs"], json!([]), "{again}");
    assert_eq!(w.kinarch(&args).await.ok().out(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_that_listed_files_compacted_under_it_reads_the_new_file() {
    let (w, _) = orders_archive().await;
    let hour = hour_of(Utc::now() - Duration::hours(5));
    let files: Vec<Vec<u64>> = (0..6).map(|i| (i * 4 + 1..=i * 4 + 4).collect()).collect();
    write_files(&w, "orders", SHARD, hour, &files).await;
    let args = scan_args("orders", hour);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = w.kinarch(&args).await.ok().out();
    assert_eq!(expected.lines().count(), 24);

    // The scan lists the six files at once; each GET of a file waits 2 s, long enough for
    // the compaction (straight to moto) to replace them all.
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.target == "S3.GetObject").then(|| Fault::Delay(StdDuration::from_secs(2)))
    });
    args.insert(0, "-v");
    let scan = cli::Running::start(&w.moto.env_via(&proxy.endpoint()), &args);
    tokio::time::sleep(StdDuration::from_millis(800)).await;
    let compacted = w
        .kinarch(&["compact", "orders", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(compacted["filesBefore"], 6, "{compacted}");
    assert_eq!(keys_of_hour(&w, "orders", hour).await.len(), 1);
    let run = scan.wait().await;
    run.ok();
    assert_eq!(run.out(), expected, "{}", run.stderr);
    assert!(
        run.stderr.contains("deleted after the listing (compacted)"),
        "the scan never met a deleted file (timing?): {}",
        run.stderr
    );

    // A file deleted with nothing holding its records is an error that names it (and the
    // other records are still read).
    let key = keys_of_hour(&w, "orders", hour).await.remove(0);
    write_files(&w, "orders", SHARD, hour, &[vec![100, 101]]).await;
    let scan = cli::Running::start(&w.moto.env_via(&proxy.endpoint()), &args);
    tokio::time::sleep(StdDuration::from_millis(800)).await;
    let lost = keys_of_hour(&w, "orders", hour)
        .await
        .into_iter()
        .find(|k| *k != key)
        .unwrap();
    s3::delete(&w.s3, BUCKET, &lost).await;
    let run = scan.wait().await;
    assert_eq!(run.out(), expected, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no file of its hour and shard now holds its sequence range")
            && run.stderr.contains(&lost),
        "{}",
        run.stderr
    );
    assert_ne!(run.code, 0);
}

/// A file whose key is the output's (it spans the others) is never overwritten: it is kept
/// and the others deleted when it holds all their rows; otherwise the others are compacted
/// among themselves beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_spanning_the_others_is_kept_never_overwritten() {
    let (w, _) = orders_archive().await;
    let full = hour_of(Utc::now() - Duration::hours(4));
    let gap = hour_of(Utc::now() - Duration::hours(3));
    // A batch retried in parts: the big file holds every record of the small ones.
    write_files(
        &w,
        "orders",
        SHARD,
        full,
        &[(1..=10).collect(), vec![3, 4, 5], vec![8]],
    )
    .await;
    // Batches by key (ParallelizationFactor > 1): the spanning file lacks 5 and 6.
    let without: Vec<u64> = (1..=10).filter(|n| *n != 5 && *n != 6).collect();
    write_files(&w, "orders", SHARD, gap, &[without, vec![5], vec![6]]).await;
    let mut expected = Vec::new();
    for hour in [full, gap] {
        expected.push(scan_hour(&w, hour).await);
    }
    assert_eq!(expected[0].lines().count(), 10);
    assert_eq!(expected[1].lines().count(), 10);
    let report = w.kinarch(&["compact", "orders", "-o", "json"]).await.json();
    let outputs = report["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{report}");
    assert_eq!(outputs[0]["written"], false, "{report}");
    assert_eq!(outputs[0]["deleted"], 2, "{report}");
    assert!(
        outputs[1]["key"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{SHARD}-5-6.parquet")),
        "{report}"
    );
    assert_eq!(outputs[1]["written"], true, "{report}");
    assert_eq!(outputs[1]["rows"], 2, "{report}");
    assert_eq!(
        keys_of_hour(&w, "orders", full).await,
        [format!(
            "kinarch/orders/{}{SHARD}-1-10.parquet",
            full.format("date=%Y-%m-%d/hour=%H/")
        )]
    );
    assert_eq!(keys_of_hour(&w, "orders", gap).await.len(), 2);
    for (hour, expected) in [full, gap].into_iter().zip(&expected) {
        assert_eq!(&scan_hour(&w, hour).await, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_compact_commands_say_what_is_wrong() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    w.set_up("plain", 1, "ALL", &[]).await;
    let run = w.kinarch(&["compact", "plain"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("has no Parquet archive"),
        "{}",
        run.stderr
    );
    let run = w
        .kinarch(&["compact", "plain", "--after", "1h", "--before", "2h"])
        .await;
    run.expect_code(2);
    assert!(run.stderr.contains("--after"), "{}", run.stderr);
    let run = w
        .kinarch(&["compact", "plain", "--before", "yesterday-ish"])
        .await;
    run.expect_code(2);
}

/// The function, invoked as the template's CompactionSchedule invokes it, compacts the hours
/// finished since its last run for the streams with a Parquet archive, skips the others,
/// and keeps its progress next to the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_invocation_compacts_the_finished_hours() {
    let (w, orders) = orders_archive().await;
    let plain = w.set_up("plain", 1, "ALL", &[]).await;
    // The archive began two days ago (setup's marker says now + 15 minutes).
    let since = Utc::now() - Duration::days(2);
    let marker = json!({"stream": "orders", "parquetSince": since.to_rfc3339()});
    s3::put(
        &w.s3,
        BUCKET,
        "kinarch/orders/_kinarch.json",
        marker.to_string().into_bytes(),
    )
    .await;
    let old = hour_of(Utc::now() - Duration::hours(6));
    let recent = hour_of(Utc::now() - Duration::hours(3));
    let files: Vec<Vec<u64>> = (0..30).map(|i| (i * 2 + 1..=i * 2 + 2).collect()).collect();
    write_files(&w, "orders", SHARD, old, &files).await;
    write_files(&w, "orders", SHARD, recent, &files[..5]).await;
    let args = scan_args("orders", old);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = w.kinarch(&args).await.ok().out();

    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    let request = json!({"kinarch": "compact", "streams": [orders, plain]});
    let response = function.invoke(request.clone()).await.response();
    let compacted = response["compacted"].as_array().unwrap();
    assert_eq!(compacted[0]["stream"], "orders", "{response}");
    assert_eq!(compacted[0]["filesBefore"], 35, "{response}");
    assert_eq!(compacted[0]["filesAfter"], 2, "{response}");
    assert_eq!(
        compacted[1],
        json!({"stream": "plain", "parquet": false}),
        "{response}"
    );
    assert_eq!(keys_of_hour(&w, "orders", old).await.len(), 1);
    assert_eq!(keys_of_hour(&w, "orders", recent).await.len(), 1);
    assert_eq!(w.kinarch(&args).await.ok().out(), expected);

    // Its progress: every hour that ended an hour ago or earlier.
    let progress: Value = serde_json::from_slice(
        &s3::get(&w.s3, BUCKET, "kinarch/orders/_kinarch-compaction.json")
            .await
            .expect("the progress object"),
    )
    .unwrap();
    let done = hour_of(Utc::now() - Duration::hours(1));
    assert_eq!(
        progress["compactedBefore"],
        done.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "{progress}"
    );
    let logs = function.json_logs();
    let line = logs
        .iter()
        .find(|l| l["fields"]["message"] == "compacted stream")
        .unwrap_or_else(|| panic!("no summary line: {logs:?}"));
    assert_eq!(line["fields"]["files_before"], 35, "{line}");
    assert!(
        logs.iter().any(
            |l| l["fields"]["message"] == "no ArchiveParquet tag: nothing to compact"
                && l["fields"]["stream"] == "plain"
        ),
        "{logs:?}"
    );
    assert!(
        function
            .logs()
            .iter()
            .any(|l| l.contains("\"FilesCompacted\"")),
        "the EMF line"
    );

    // The next run starts an hour before its last end: a late file there is compacted, the
    // hours before are not listed again.
    let late = hour_of(Utc::now() - Duration::hours(2));
    write_files(&w, "orders", SHARD, late, &[vec![900], vec![901]]).await;
    write_files(&w, "orders", SHARD, old, &[vec![950], vec![951]]).await;
    let response = function.invoke(request).await.response();
    assert_eq!(response["compacted"][0]["filesBefore"], 2, "{response}");
    assert_eq!(keys_of_hour(&w, "orders", late).await.len(), 1);
    assert_eq!(
        keys_of_hour(&w, "orders", old).await.len(),
        3,
        "not listed again"
    );

    // A request that is not a valid one fails the invocation and says what is wrong.
    let error = function
        .invoke(json!({"kinarch": "compact", "streams": "orders"}))
        .await
        .error();
    assert_eq!(error["errorType"], "kinarch.InvalidRequest", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not a list of stream ARNs"),
        "{error}"
    );
}
