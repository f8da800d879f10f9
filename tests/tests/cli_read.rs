//! `kinarch query` and `kinarch scan`, the real binary against moto: paging with a total
//! limit, numeric sequence bounds of different lengths, LATEST tables, all scan filters
//! together, parallel scan, byte-exact output formats, a closed pipe, and bad input.
//!
//! Items are written straight into the tables (through the table contract's
//! `ArchiveRecord::to_item`) so that sequence numbers, arrival and archive times are chosen
//! by the test.

use std::collections::BTreeSet;
use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeZone, Utc};
use kinarch_core::{ArchiveRecord, ArchiveTtl, SequenceNumber};
use kinarch_tests::cli::{self, Run, kinarch, kinarch_on_a_terminal};
use kinarch_tests::dynamo;
use kinarch_tests::kinesis;
use kinarch_tests::moto::Moto;
use kinarch_tests::world::World;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// A moto server with stream `stream` set up for `mode` (tags and table made directly).
async fn world(stream: &str, mode: &str) -> World {
    let w = World::start().await;
    w.stream(stream, 1).await;
    kinesis::tag_stream(&w.kinesis, stream, &[("StreamArchiveMode", mode)]).await;
    dynamo::create_table(
        &w.dynamodb,
        &format!("{stream}-archive-{mode}"),
        mode == "ALL",
    )
    .await;
    w
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

/// Base archive time of the test items: 2024-05-01T12:00:00Z.
const T0: i64 = 1714564800;

#[derive(Clone)]
struct Rec {
    key: &'static str,
    seq: String,
    data: Vec<u8>,
    arrival: f64,
    archived: i64,
}

fn rec(key: &'static str, seq: &str, data: &[u8]) -> Rec {
    Rec {
        key,
        seq: seq.to_owned(),
        data: data.to_vec(),
        arrival: T0 as f64 - 10.5,
        archived: T0,
    }
}

/// Writes `records` straight into `table`.
async fn put(w: &World, table: &str, records: &[Rec]) {
    {
        for r in records {
            let record = ArchiveRecord::received(
                r.key.into(),
                SequenceNumber::parse(&r.seq).unwrap(),
                "shardId-000000000000".into(),
                r.arrival,
                r.data.clone(),
            );
            let item = record
                .to_item(at(r.archived), ArchiveTtl::from_seconds(86400).ok())
                .item;
            w.dynamodb
                .put_item()
                .table_name(table)
                .set_item(Some(item))
                .send()
                .await
                .expect("PutItem");
        }
    }
}

/// The records of a jsonl output as (partitionKey, sequenceNumber).
fn keys(run: &Run) -> Vec<(String, String)> {
    jsonl(run)
        .iter()
        .map(|v| {
            (
                v["partitionKey"].as_str().unwrap().to_owned(),
                v["sequenceNumber"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn jsonl(run: &Run) -> Vec<Value> {
    run.ok();
    run.out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Sequence numbers of a query's jsonl output, sorted numerically.
fn seqs(run: &Run) -> Vec<u64> {
    let mut s: Vec<u64> = keys(run).iter().map(|(_, s)| s.parse().unwrap()).collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_pages_through_the_key_and_the_limit_caps_the_total() {
    let w = world("orders", "ALL").await;
    let mut records: Vec<Rec> = ["1", "2", "3", "4", "5", "6", "7"]
        .into_iter()
        .map(|s| rec("k", s, s.as_bytes()))
        .collect();
    records.push(rec("other", "4", b"not this key"));
    put(&w, "orders-archive-ALL", &records).await;

    // Two items per request: 7 records need 4 pages.
    let all = kinarch(
        &w.moto,
        &[
            "query",
            "orders",
            "k",
            "--page-size",
            "2",
            "--output",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 7]);
    assert!(keys(&all).iter().all(|(k, _)| k == "k"));

    let limited = kinarch(
        &w.moto,
        &[
            "query",
            "orders",
            "k",
            "--page-size",
            "2",
            "--limit",
            "5",
            "--output",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(seqs(&limited), [1, 2, 3, 4, 5], "the limit spans pages");

    // A bounded query pages too (the range is checked in Rust, page by page).
    let bounded = kinarch(
        &w.moto,
        &[
            "query",
            "orders",
            "k",
            "--from",
            "2",
            "--page-size",
            "2",
            "--limit",
            "3",
            "--output",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(seqs(&bounded), [2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_bounds_compare_numerically_whatever_their_length() {
    let w = world("orders", "ALL").await;
    let records: Vec<Rec> = ["9", "10", "11", "100", "1000"]
        .into_iter()
        .map(|s| rec("k", s, s.as_bytes()))
        .collect();
    put(&w, "orders-archive-ALL", &records).await;
    // --endpoint-url given on the command line as well as in the environment.
    let endpoint = w.moto.endpoint();
    let query = |extra: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        let moto = &w.moto;
        async move {
            let mut args = vec![
                "query",
                "orders",
                "k",
                "--output",
                "jsonl",
                "--endpoint-url",
            ];
            args.push(&endpoint);
            args.extend_from_slice(extra);
            seqs(&kinarch(moto, &args).await)
        }
    };
    assert_eq!(query(&["--from", "10"]).await, [10, 11, 100, 1000]);
    assert_eq!(query(&["--to", "11"]).await, [9, 10, 11]);
    assert_eq!(
        query(&["--from", "9", "--to", "100"]).await,
        [9, 10, 11, 100]
    );
    assert_eq!(query(&["--from", "10", "--to", "99"]).await, [10, 11]);
    assert_eq!(query(&["--from", "100", "--to", "999"]).await, [100]);
    assert_eq!(
        query(&["--from", "9", "--to", "9"]).await,
        [9],
        "one record: GetItem"
    );
    assert_eq!(
        query(&["--from", "12", "--to", "12"]).await,
        Vec::<u64>::new()
    );
    assert_eq!(query(&[]).await, [9, 10, 11, 100, 1000]);

    let swapped = kinarch(
        &w.moto,
        &["query", "orders", "k", "--from", "100", "--to", "9"],
    )
    .await;
    swapped.expect_code(2);
    assert!(
        swapped
            .stderr
            .contains("--from-seq 100 is after --to-seq 9"),
        "{}",
        swapped.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_table_returns_its_one_record_only_within_the_bounds() {
    let w = world("prices", "LATEST").await;
    put(&w, "prices-archive-LATEST", &[rec("k", "100", b"newest")]).await;
    let data = |extra: &'static [&'static str]| {
        let moto = &w.moto;
        async move {
            let mut args = vec!["query", "prices", "k"];
            args.extend_from_slice(extra);
            let run = kinarch(moto, &args).await;
            run.ok();
            run.out()
        }
    };
    assert_eq!(data(&[]).await, "newest\n");
    // "99" > "100" as strings; numerically 99 < 100.
    assert_eq!(data(&["--from", "99"]).await, "newest\n");
    assert_eq!(data(&["--to", "99"]).await, "");
    assert_eq!(data(&["--from", "100", "--to", "100"]).await, "newest\n");
    assert_eq!(data(&["--from", "101"]).await, "");
    assert_eq!(data(&["--from", "9", "--to", "1000"]).await, "newest\n");
    assert_eq!(data(&["--from", "99", "--to", "99"]).await, "");
    assert_eq!(
        kinarch(&w.moto, &["query", "prices", "nokey"])
            .await
            .ok()
            .out(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_applies_all_three_filters_together() {
    let w = world("orders", "ALL").await;
    let base = Rec {
        key: "a",
        seq: "100".into(),
        data: b"match".to_vec(),
        arrival: (T0 + 100) as f64 + 0.25,
        archived: T0 + 100,
    };
    let records = vec![
        base.clone(),
        Rec {
            key: "b",
            seq: "1000".into(),
            ..base.clone()
        },
        // Fails only the sequence filter (9 < 10 numerically, "9" > "10" as strings).
        Rec {
            key: "c",
            seq: "9".into(),
            data: b"low seq".to_vec(),
            ..base.clone()
        },
        // Fails only the archive time.
        Rec {
            key: "d",
            seq: "200".into(),
            data: b"archived early".to_vec(),
            archived: T0 - 1,
            ..base.clone()
        },
        // Fails only the arrival time (by a quarter second).
        Rec {
            key: "e",
            seq: "300".into(),
            data: b"arrived early".to_vec(),
            arrival: T0 as f64 - 0.25,
            ..base.clone()
        },
    ];
    put(&w, "orders-archive-ALL", &records).await;
    let run = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--from-seq",
            "10",
            "--archived-after",
            "2024-05-01T12:00:00Z",
            "--arrived-after",
            &T0.to_string(),
            "--output",
            "jsonl",
        ],
    )
    .await;
    let found: BTreeSet<(String, String)> = keys(&run).into_iter().collect();
    assert_eq!(
        found,
        BTreeSet::from([("a".into(), "100".into()), ("b".into(), "1000".into())])
    );

    // Each filter alone lets the others' rejects through.
    let only_seq = kinarch(
        &w.moto,
        &["scan", "orders", "--from-seq", "10", "--output", "jsonl"],
    )
    .await;
    assert_eq!(keys(&only_seq).len(), 4);
    let only_arrival = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--arrived-after",
            "2024-05-01T12:00:00+00:00",
            "--output",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(keys(&only_arrival).len(), 4);
    let only_archive = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--archived-after",
            "1714564800.9",
            "--output",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(
        keys(&only_archive).len(),
        4,
        "whole seconds: .9 rounds down to the second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_scan_returns_every_record_exactly_once() {
    let w = world("orders", "ALL").await;
    let keys_used = ["a", "b", "c", "d", "e", "f"];
    let records: Vec<Rec> = (1..=24usize)
        .map(|i| {
            let seq = i.to_string();
            rec(keys_used[i % keys_used.len()], &seq, seq.as_bytes())
        })
        .collect();
    put(&w, "orders-archive-ALL", &records).await;

    let run = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--segments",
            "3",
            "--page-size",
            "3",
            "--output",
            "jsonl",
        ],
    )
    .await;
    let found = keys(&run);
    let unique: BTreeSet<(String, String)> = found.iter().cloned().collect();
    assert_eq!(found.len(), 24, "no duplicates");
    let expected: BTreeSet<(String, String)> = records
        .iter()
        .map(|r| (r.key.to_owned(), r.seq.clone()))
        .collect();
    assert_eq!(unique, expected);

    let limited = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--segments",
            "3",
            "--page-size",
            "2",
            "--limit",
            "10",
            "--output",
            "jsonl",
        ],
    )
    .await;
    let limited_keys = keys(&limited);
    assert_eq!(limited_keys.len(), 10);
    assert_eq!(limited_keys.iter().collect::<BTreeSet<_>>().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_byte_exact_for_binary_and_text_payloads() {
    let w = world("orders", "ALL").await;
    let binary: Vec<u8> = vec![0, 0xff, 0xfe, b'\n', 0x80, b'|', 0x00];
    let text = "héllo \"world\"\t✓".as_bytes().to_vec();
    let empty = Vec::new();
    put(
        &w,
        "orders-archive-ALL",
        &[
            rec("k", "10", &binary),
            rec("k", "11", &text),
            rec("k", "12", &empty),
        ],
    )
    .await;
    let output = |format: &'static str| {
        let moto = &w.moto;
        async move {
            let run = kinarch(moto, &["query", "orders", "k", "--output", format]).await;
            run.ok();
            assert!(run.stderr.is_empty(), "{}", run.stderr);
            run.stdout
        }
    };

    let mut expected = Vec::new();
    for payload in [&binary, &text, &empty] {
        expected.extend_from_slice(payload);
        expected.push(b'\n');
    }
    assert_eq!(output("data").await, expected);

    let base64 = String::from_utf8(output("base64").await).unwrap();
    let decoded: Vec<Vec<u8>> = base64
        .lines()
        .map(|l| STANDARD.decode(l).unwrap())
        .collect();
    assert_eq!(decoded, [binary.clone(), text.clone(), empty.clone()]);

    let lines: Vec<Value> = String::from_utf8(output("jsonl").await)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        STANDARD
            .decode(lines[0]["recordData"].as_str().unwrap())
            .unwrap(),
        binary
    );
    assert!(lines[0].get("text").is_none(), "not UTF-8: no text");
    assert_eq!(lines[1]["text"], "héllo \"world\"\t✓");
    assert_eq!(lines[2]["text"], "");
    let first = lines[0].as_object().unwrap();
    let attributes: BTreeSet<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        attributes,
        BTreeSet::from([
            "partitionKey",
            "sequenceNumber",
            "shardId",
            "approximateArrivalTimestamp",
            "approximateArrivalTime",
            "lastUpdate",
            "expireAfter",
            "recordData",
        ])
    );
    assert_eq!(first["lastUpdate"], "2024-05-01 12:00:00");
    assert_eq!(first["expireAfter"], T0 + 86400);
    assert_eq!(first["approximateArrivalTimestamp"], T0 as f64 - 10.5);
    assert_eq!(first["shardId"], "shardId-000000000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_output_pipe_ends_quietly_with_success() {
    let w = world("orders", "ALL").await;
    // Well over a pipe's buffer, so kinarch is still writing when the reader leaves.
    let big: Vec<Rec> = ["1", "2", "3", "4", "5", "6", "7", "8"]
        .into_iter()
        .map(|s| rec("k", s, &vec![b'x'; 120 * 1024]))
        .collect();
    put(&w, "orders-archive-ALL", &big).await;
    for args in [
        &["scan", "orders"][..],
        &["query", "orders", "k", "--output", "base64"][..],
    ] {
        let mut command = cli::command(&w.moto);
        command.args(args).stdout(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = Vec::new();
        stdout.read_until(b'\n', &mut line).await.unwrap();
        assert!(line.len() > 1000, "one record read");
        drop(stdout);
        let output = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quiet, got {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_that_break_the_contract_are_reported_and_the_rest_printed() {
    let w = world("orders", "ALL").await;
    put(
        &w,
        "orders-archive-ALL",
        &[rec("k", "1", b"good"), rec("k", "3", b"also good")],
    )
    .await;
    w.dynamodb
        .put_item()
        .table_name("orders-archive-ALL")
        .item("partitionKey", AttributeValue::S("k".into()))
        .item("sequenceNumber", AttributeValue::S("2".into()))
        .item("approximateArrivalTimestamp", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let run = kinarch(&w.moto, &["query", "orders", "k"]).await;
    run.expect_code(1);
    assert_eq!(run.out(), "good\nalso good\n");
    assert!(
        run.stderr.contains("k/2") && run.stderr.contains("recordData is missing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("1 archived item(s) do not follow the table contract"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_read_input_says_what_is_wrong_with_the_right_exit_code() {
    let w = world("orders", "ALL").await;
    kinesis::create_stream(&w.kinesis, "untagged", 1).await;
    kinesis::create_stream(&w.kinesis, "tableless", 1).await;
    kinesis::tag_stream(&w.kinesis, "tableless", &[("StreamArchiveMode", "LATEST")]).await;

    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            vec!["query", "missing", "k"],
            1,
            vec!["stream missing was not found in region us-east-1"],
        ),
        (
            vec!["scan", "missing"],
            1,
            vec!["stream missing was not found"],
        ),
        (
            vec!["query", "untagged", "k"],
            1,
            vec![
                "not set up for archiving",
                "kinarch setup untagged <ALL|LATEST> us-east-1",
            ],
        ),
        (
            vec!["scan", "tableless"],
            1,
            vec![
                "archive table tableless-archive-LATEST of stream tableless does not exist in region us-east-1",
                "kinarch setup tableless LATEST us-east-1",
            ],
        ),
        (
            vec!["query", "orders", "k", "--from", "12x"],
            2,
            vec!["invalid sequence number \"12x\"", "not a digit"],
        ),
        (
            vec!["scan", "orders", "--from-seq", "-1"],
            2,
            vec!["invalid value '-1' for '--from-seq <SEQ>'", "not a digit"],
        ),
        (
            vec!["scan", "orders", "--archived-after", "last tuesday"],
            2,
            vec!["invalid time \"last tuesday\"", "RFC 3339", "epoch seconds"],
        ),
        (
            vec!["scan", "orders", "--limit", "0"],
            2,
            vec!["at least 1"],
        ),
        (
            vec!["query", "orders", "k", "--limit", "0"],
            2,
            vec!["at least 1"],
        ),
        (
            vec!["query", "bad stream!", "k"],
            2,
            vec!["invalid stream name", "[a-zA-Z0-9_.-]+"],
        ),
        (
            vec!["scan", "orders", "--segments", "0"],
            2,
            vec!["1 to 1000"],
        ),
        (
            vec!["scan", "orders", "--output", "csv"],
            2,
            vec!["data", "jsonl", "base64"],
        ),
    ];
    for (args, code, expected) in cases {
        let run = kinarch(&w.moto, &args).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        for text in expected {
            assert!(
                run.stderr.contains(text),
                "{args:?}: {text:?} in {}",
                run.stderr
            );
        }
        assert!(run.stderr.starts_with("error:"), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_rate_show_on_a_terminal_while_the_data_goes_to_a_file() {
    let w = world("orders", "ALL").await;
    let records: Vec<Rec> = ["1", "2", "3", "4", "5"]
        .into_iter()
        .map(|s| rec("k", s, s.as_bytes()))
        .collect();
    put(&w, "orders-archive-ALL", &records).await;
    let file = std::env::temp_dir().join(format!("kinarch-progress-{}.out", std::process::id()));
    let run =
        kinarch_on_a_terminal(&w.moto, &format!("scan orders > '{}'", file.display()), "").await;
    run.ok();
    let screen = run.out();
    assert!(screen.contains("5 records in "), "{screen}");
    assert!(screen.contains("records/s"), "{screen}");
    let data = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(data.iter().filter(|&&b| b == b'\n').count(), 5);

    // --quiet: no progress even on a terminal.
    let quiet = kinarch_on_a_terminal(&w.moto, "scan orders -q > /dev/null", "").await;
    quiet.ok();
    assert!(!quiet.out().contains("records/s"), "{}", quiet.out());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_attempt_timeout_in_the_environment_is_refused_by_name() {
    let w = world("orders", "ALL").await;
    for bad in ["10s", "0", "-1"] {
        let mut env = w.moto.env();
        env.push(("KINARCH_ATTEMPT_TIMEOUT_MS".into(), bad.into()));
        let mut command = cli::command_with_env(&env);
        command.args(["scan", "orders"]);
        let run = cli::run_command(command, None).await;
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("KINARCH_ATTEMPT_TIMEOUT_MS={bad:?}")),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

/// Issue 11.1: an archive outlives its stream. Set up, put, archive, delete the stream: then
/// `status`, `query`, `scan` and `reinject --target` still read every record, byte for
/// byte, from the table found by its name (with a note on standard error), and `--table`
/// names the table when several could be the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_is_read_after_its_stream_is_deleted() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "gone", 1).await;
    kinesis::create_stream(&kinesis_client, "replayed", 1).await;
    kinarch(&moto, &["setup", "gone", "ALL", "--yes"])
        .await
        .ok();
    let lines = b"{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"n\":2}\n{\"id\":\"a\",\"n\":3}\n";
    let mut put = cli::command(&moto);
    put.args(["put", "gone", "--key-field", "id"]);
    cli::run_command(put, Some(lines)).await.ok();
    kinarch(&moto, &["archive", "gone"]).await.ok();
    let in_stream = kinesis::read_all(&kinesis_client, "gone").await;
    assert_eq!(in_stream.len(), 3);
    kinesis_client
        .delete_stream()
        .stream_name("gone")
        .send()
        .await
        .expect("DeleteStream");

    let status = kinarch(&moto, &["status", "gone"]).await;
    status.ok();
    let shown = status.out();
    assert!(
        shown.contains("gone-archive-ALL") && shown.contains("from the table's key schema"),
        "{shown}"
    );

    let query = kinarch(&moto, &["query", "gone", "a"]).await;
    query.ok();
    assert_eq!(
        query.out(),
        "{\"id\":\"a\",\"n\":1}\n{\"id\":\"a\",\"n\":3}\n"
    );
    assert!(
        query.stderr.contains("note: stream gone was not found")
            && query
                .stderr
                .contains("reading its archive table gone-archive-ALL (ALL mode"),
        "{}",
        query.stderr
    );

    let scan = kinarch(&moto, &["scan", "gone", "--output", "jsonl"]).await;
    scan.ok();
    let scanned: BTreeSet<(String, String, String)> = scan
        .out()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["partitionKey"].as_str().unwrap().to_owned(),
                v["sequenceNumber"].as_str().unwrap().to_owned(),
                v["recordData"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = in_stream
        .iter()
        .map(|r| {
            (
                r.partition_key.clone(),
                r.sequence_number.clone(),
                STANDARD.encode(&r.data),
            )
        })
        .collect();
    assert_eq!(scanned, expected);

    kinarch(&moto, &["reinject", "gone", "--target", "replayed"])
        .await
        .ok();
    let replayed = kinesis::read_all(&kinesis_client, "replayed").await;
    let mut got: Vec<(String, Vec<u8>)> = replayed
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    let mut want: Vec<(String, Vec<u8>)> = in_stream
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.clone()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // A second candidate table: the name must be given.
    dynamo::create_table(
        &aws_sdk_dynamodb::Client::new(&sdk),
        "gone-archive-latest",
        false,
    )
    .await;
    let ambiguous = kinarch(&moto, &["query", "gone", "a"]).await;
    ambiguous.expect_code(1);
    assert!(
        ambiguous
            .stderr
            .contains("gone-archive-ALL, gone-archive-latest")
            && ambiguous.stderr.contains("--table"),
        "{}",
        ambiguous.stderr
    );
    let named = kinarch(
        &moto,
        &["query", "gone", "a", "--table", "gone-archive-ALL"],
    )
    .await;
    named.ok();
    assert_eq!(named.out(), query.out());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_scan_refuse_a_table_whose_key_schema_does_not_fit_the_mode() {
    // An ALL-tagged stream whose table was made HASH-only (LATEST's key schema).
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    dynamo::stream_with_hash_only_table(&kinesis_client, &dynamodb, "misfit").await;
    for args in [
        &["query", "misfit", "k"][..],
        &["query", "misfit", "k", "--from", "1", "--to", "20"],
        &["query", "misfit", "k", "--from", "5", "--to", "5"],
        &["scan", "misfit"],
        &["scan", "misfit", "--segments", "2"],
    ] {
        let run = kinarch(&moto, args).await;
        run.expect_code(1);
        assert!(run.stdout.is_empty(), "{args:?}");
        dynamo::assert_refused_for_all_mode(
            &run.stderr,
            "misfit-archive-ALL",
            "HASH partitionKey (S)",
        );
        assert!(
            !run.stderr.contains("ValidationException"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// Issue 17, `--segment I/N`: 4 workers' scans are disjoint and together the whole table;
/// `--segments-total N` takes I from AWS_BATCH_JOB_ARRAY_INDEX; 4 concurrent `reinject
/// --segment` workers send every record once, in order per key; bad segments are usage
/// errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_split_a_scan_and_a_replay_by_segment() {
    let w = world("split", "ALL").await;
    kinesis::create_stream(&w.kinesis, "split-target", 1).await;
    const KEYS: [&str; 12] = [
        "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11",
    ];
    let records: Vec<Rec> = (1..=120)
        .map(|i| {
            let key = KEYS[i % KEYS.len()];
            rec(key, &i.to_string(), format!("{key} {i}").as_bytes())
        })
        .collect();
    put(&w, "split-archive-ALL", &records).await;

    let lines = |run: &Run| -> Vec<String> { run.out().lines().map(str::to_owned).collect() };
    let whole = kinarch(&w.moto, &["scan", "split"]).await;
    whole.ok();
    let mut parts: Vec<String> = Vec::new();
    for i in 0..4 {
        let segment = format!("{i}/4");
        let part = kinarch(&w.moto, &["scan", "split", "--segment", &segment]).await;
        part.ok();
        parts.extend(lines(&part));
    }
    let mut all = lines(&whole);
    all.sort();
    let total = parts.len();
    parts.sort();
    parts.dedup();
    assert_eq!(parts.len(), total, "no record in two segments");
    assert_eq!(parts, all, "the segments together are the whole table");

    let mut env = w.moto.env();
    env.push(("AWS_BATCH_JOB_ARRAY_INDEX".into(), "2".into()));
    let mut batch = cli::command_with_env(&env);
    batch.args(["scan", "split", "--segments-total", "4"]);
    let from_batch = cli::run_command(batch, None).await;
    from_batch.ok();
    let explicit = kinarch(&w.moto, &["scan", "split", "--segment", "2/4"]).await;
    assert_eq!(from_batch.out(), explicit.out());
    let mut no_index = cli::command(&w.moto);
    no_index.args(["scan", "split", "--segments-total", "4"]);
    let no_index = cli::run_command(no_index, None).await;
    no_index.expect_code(2);
    assert!(
        no_index.stderr.contains("AWS_BATCH_JOB_ARRAY_INDEX"),
        "{}",
        no_index.stderr
    );

    for bad in ["4/4", "0/0", "x/2"] {
        let run = kinarch(&w.moto, &["scan", "split", "--segment", bad]).await;
        run.expect_code(2);
        assert!(run.stderr.contains("I/N"), "{bad}: {}", run.stderr);
    }

    let workers = (0..4).map(|i| {
        let segment = format!("{i}/4");
        let moto = &w.moto;
        async move {
            kinarch(
                moto,
                &[
                    "reinject",
                    "split",
                    "--target",
                    "split-target",
                    "--segment",
                    &segment,
                ],
            )
            .await
            .ok();
        }
    });
    futures::future::join_all(workers).await;
    let sent = kinesis::read_all(&w.kinesis, "split-target").await;
    assert_eq!(sent.len(), records.len(), "every record once");
    for key in KEYS {
        let order: Vec<u64> = sent
            .iter()
            .filter(|r| r.partition_key == key)
            .map(|r| {
                let text = String::from_utf8(r.data.clone()).unwrap();
                text.rsplit(' ').next().unwrap().parse().unwrap()
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{key} in order");
        assert_eq!(order.len(), 10);
    }
}

/// `--table` naming another stream's archive (issue 28): setup tags each archive table with
/// its stream (`ArchivedStream`), and reading a table tagged for another stream as this
/// one's is refused unless `--force`, naming both; status reports it; a table without the
/// tag (made by hand or by the original archiver) is read with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_streams_table_is_refused_unless_forced() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for stream in ["orders", "prices"] {
        kinesis::create_stream(&kinesis_client, stream, 1).await;
    }
    kinarch(&moto, &["setup", "orders", "ALL", "--yes"])
        .await
        .ok();
    let setup = kinarch(&moto, &["setup", "prices", "LATEST", "--yes"]).await;
    assert!(
        setup
            .ok()
            .out()
            .contains("tag table prices-archive-LATEST: ArchivedStream=prices"),
        "{}",
        setup.out()
    );
    kinesis::put(&kinesis_client, "prices", "p1", b"42.0").await;
    kinarch(&moto, &["archive", "prices"]).await.ok();
    let status = kinarch(&moto, &["status", "prices"]).await;
    assert!(
        status
            .ok()
            .out()
            .lines()
            .any(|l| l.starts_with("archive of ")
                && l.ends_with(" prices (the table's ArchivedStream tag)")),
        "{}",
        status.out()
    );

    let foreign = ["--table", "prices-archive-LATEST"];
    for args in [
        vec!["reinject", "orders", "--metadata", "--dry-run"],
        vec!["query", "orders", "p1"],
        vec!["scan", "orders"],
    ] {
        let run = kinarch(&moto, &[&args[..], &foreign[..]].concat()).await;
        run.expect_code(2);
        assert!(
            run.stderr.contains(
                "table prices-archive-LATEST is the archive of stream prices (its \
                 ArchivedStream tag), not of stream orders"
            ) && run.stderr.contains("--force"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: nothing read");
    }
    let forced = kinarch(
        &moto,
        &[
            "query",
            "orders",
            "p1",
            "--table",
            "prices-archive-LATEST",
            "--force",
        ],
    )
    .await;
    assert_eq!(forced.ok().out(), "42.0\n");
    let status = kinarch(
        &moto,
        &["status", "orders", "--table", "prices-archive-LATEST"],
    )
    .await;
    status.expect_code(1);
    assert!(
        status.out().contains("is the archive of stream prices"),
        "{}",
        status.out()
    );
    let json = kinarch(
        &moto,
        &[
            "status",
            "orders",
            "--table",
            "prices-archive-LATEST",
            "-o",
            "json",
        ],
    )
    .await;
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["table"]["archivedStream"], "prices");
    assert_eq!(json["healthy"], false);

    // A table made by hand has no tag: read, with a warning that says how to tag it.
    dynamo::create_table(&dynamodb, "hand-made", true).await;
    let run = kinarch(&moto, &["scan", "orders", "--table", "hand-made"]).await;
    assert!(
        run.ok()
            .stderr
            .contains("table hand-made has no ArchivedStream tag")
            && run
                .stderr
                .contains("kinarch setup orders ALL --table hand-made"),
        "{}",
        run.stderr
    );
    // Setting orders up onto prices' table is refused.
    let refused = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "LATEST",
            "--table",
            "prices-archive-LATEST",
            "--yes",
        ],
    )
    .await;
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("archive of stream prices"),
        "{}",
        refused.stderr
    );
}

/// Help and output that did not match what kinarch does (issue 28, item 6): a key's records
/// print in numeric sequence order, the order a replay sends them, also where the table's
/// string order differs (sequence numbers of different lengths, as emulators issue them);
/// `--no-time-index -v` says why it scans; the help lists the exit codes of a signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_prints_in_replay_order_and_help_says_what_happens() {
    let w = world("orders", "ALL").await;
    put(
        &w,
        "orders-archive-ALL",
        &[
            rec("k", "100", b"third"),
            rec("k", "9", b"first"),
            rec("k", "10", b"second"),
            rec("k", "1000", b"fourth"),
        ],
    )
    .await;
    let run = kinarch(&w.moto, &["query", "orders", "k"]).await;
    assert_eq!(run.ok().out(), "first\nsecond\nthird\nfourth\n");
    // -n takes the records a replay of the same selection reads, in the same order.
    kinesis::create_stream(&w.kinesis, "replay", 1).await;
    let two = kinarch(&w.moto, &["query", "orders", "k", "-n", "2"]).await;
    kinarch(
        &w.moto,
        &[
            "reinject", "orders", "-k", "k", "-n", "2", "--target", "replay",
        ],
    )
    .await
    .ok();
    let replayed: Vec<String> = kinesis::read_all(&w.kinesis, "replay")
        .await
        .into_iter()
        .map(|r| format!("{}\n", String::from_utf8(r.data).unwrap()))
        .collect();
    assert_eq!(two.ok().out(), replayed.concat());

    let scan = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--arrived-after",
            "1714564000",
            "--no-time-index",
            "-v",
        ],
    )
    .await;
    assert!(
        scan.ok()
            .stderr
            .contains("--no-time-index: scanning the whole table"),
        "{}",
        scan.stderr
    );
    let help = kinarch(&w.moto, &["--help"]).await;
    assert!(
        help.ok()
            .out()
            .contains("130 or 143 stopped by Ctrl-C (SIGINT) or SIGTERM"),
        "{}",
        help.out()
    );
}
