//! Issue 15, the CLI as AWS CLI and kcat users expect it, end to end against moto: one
//! vocabulary of arguments (old spellings still accepted), stream ARNs and their region,
//! JSON summaries on standard output parsed here, `status` as a health check (exit codes,
//! problems, checkpoints), `list`, `--delimiter` and `--format`, streaming and batching
//! `put`, dry runs of every writing command, `-vv` AWS call lines, `--read-timeout`.

use std::process::Stdio;
use std::time::Duration;

use kinarch_tests::cli::{self, Run, kinarch};
use kinarch_tests::kinesis;
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";

/// Stream `orders` set up in ALL mode with `lines` put under key `k` (payloads `r1`, ...),
/// archived with `kinarch archive`.
async fn archived(lines: usize) -> Moto {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    kinesis::create_stream(&aws_sdk_kinesis::Client::new(&sdk), "orders", 1).await;
    kinarch(&moto, &["setup", "orders", "ALL", "--yes"])
        .await
        .ok();
    let input: String = (1..=lines).map(|i| format!("r{i}\n")).collect();
    put(&moto, &["-k", "k"], input.as_bytes()).await.ok();
    kinarch(&moto, &["archive", "orders"]).await.ok();
    moto
}

async fn put(moto: &Moto, args: &[&str], input: &[u8]) -> Run {
    put_to(moto, "orders", args, input).await
}

async fn put_to(moto: &Moto, stream: &str, args: &[&str], input: &[u8]) -> Run {
    let mut command = cli::command(moto);
    command.args(["put", stream]).args(args);
    cli::run_command(command, Some(input)).await
}

fn lines(run: &Run) -> Vec<String> {
    run.ok().out().lines().map(str::to_owned).collect()
}

/// A run whose standard output is one JSON document, even when it fails (`status`).
fn json_of(run: &Run) -> Value {
    serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: one JSON document:\n{}\n{}", run.out(), run.stderr))
}

#[tokio::test]
async fn one_vocabulary_with_the_old_spellings_still_accepted() {
    let moto = archived(5).await;
    let by = |args: &'static [&'static str]| {
        let moto = &moto;
        async move { lines(&kinarch(moto, args).await) }
    };
    let expected = ["r2", "r3", "r4"];
    assert_eq!(
        by(&["query", "orders", "k", "--from-seq", "2", "--to-seq", "4"]).await,
        expected
    );
    assert_eq!(
        by(&[
            "query",
            "orders",
            "-k",
            "k",
            "--from-seq",
            "2",
            "--to-seq",
            "4"
        ])
        .await,
        expected
    );
    assert_eq!(
        by(&["query", "orders", "k", "--from", "2", "--to", "4"]).await,
        expected,
        "old spellings"
    );
    let mut scanned = by(&["scan", "orders", "--from-seq", "2", "--to-seq", "4"]).await;
    scanned.sort();
    assert_eq!(scanned, expected, "scan takes --to-seq too");
    assert_eq!(by(&["query", "orders", "k", "-n", "2"]).await, ["r1", "r2"]);
    // A key starting with '-' goes after -k; options after it are still options.
    let dash = kinarch(&moto, &["query", "orders", "-k", "-dash", "-o", "jsonl"]).await;
    assert!(dash.ok().out().is_empty());

    // The stream's ARN works wherever its name does; its region is used without --region.
    let mut env = moto.env();
    env.retain(|(k, _)| k != "AWS_REGION");
    let mut command = cli::command_with_env(&env);
    command.args(["query", ARN, "k", "-n", "1"]);
    assert_eq!(lines(&cli::run_command(command, None).await), ["r1"]);
    let other = kinarch(&moto, &["status", ARN, "--region", "eu-west-1"]).await;
    other.expect_code(2);
    assert!(
        other.stderr.contains("eu-west-1 (--region)")
            && other.stderr.contains("us-east-1 (the ARN"),
        "{}",
        other.stderr
    );

    // setup's positional region and --region: the same is fine, different is a usage error.
    kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "us-east-1",
            "--region",
            "us-east-1",
            "--dry-run",
        ],
    )
    .await
    .ok();
    let two = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "us-east-1",
            "--region",
            "eu-west-1",
        ],
    )
    .await;
    two.expect_code(2);
    assert!(
        two.stderr.contains("two different regions"),
        "{}",
        two.stderr
    );

    // Too large is refused as too large, not as "at least 1".
    for args in [
        &["scan", "orders", "-n", "99999999999999999999999"][..],
        &["reinject", "orders", "--rate", "99999999999"],
        &["put", "orders", "-k", "k", "--concurrency", "1000"],
    ] {
        let run = kinarch(&moto, args).await;
        run.expect_code(2);
        assert!(run.stderr.contains("too large"), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("at least 1"),
            "{args:?}: {}",
            run.stderr
        );
    }

    // archive --start-at, and the old --from.
    for flag in ["--start-at", "--from"] {
        let plan = kinarch(
            &moto,
            &[
                "archive",
                "orders",
                flag,
                "LATEST",
                "--dry-run",
                "-o",
                "json",
            ],
        )
        .await;
        assert_eq!(plan.json()["dryRun"], true, "{flag}");
    }
}

#[tokio::test]
async fn records_print_with_delimiters_formats_and_both_arrival_times() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    kinesis::create_stream(&aws_sdk_kinesis::Client::new(&sdk), "orders", 1).await;
    kinarch(&moto, &["setup", "orders", "ALL", "--yes"])
        .await
        .ok();
    // Two records with newlines in them (sent as base64 lines).
    put(&moto, &["-k", "k", "--base64"], b"YQpi\nYwpk\n")
        .await
        .ok();
    kinarch(&moto, &["archive", "orders"]).await.ok();

    let nul = kinarch(&moto, &["query", "orders", "k", "--delimiter", "\\0"]).await;
    assert_eq!(nul.ok().stdout, b"a\nb\0c\nd\0");
    let formatted = kinarch(
        &moto,
        &["query", "orders", "k", "--format", "%k|%o|%S|%h|%s\\n"],
    )
    .await;
    assert_eq!(
        formatted.ok().out(),
        "k|1|3|shardId-000000000000|a\nb\nk|2|3|shardId-000000000000|c\nd\n"
    );
    let jsonl = kinarch(&moto, &["scan", "orders", "-n", "1", "-o", "jsonl"]).await;
    let record: Value = serde_json::from_slice(&jsonl.ok().stdout).unwrap();
    let epoch = record["approximateArrivalTimestamp"].as_f64().unwrap();
    let rfc3339 =
        chrono::DateTime::parse_from_rfc3339(record["approximateArrivalTime"].as_str().unwrap())
            .unwrap();
    assert!(
        (rfc3339.timestamp_millis() as f64 / 1000.0 - epoch).abs() < 0.001,
        "{record}"
    );
    let bad = kinarch(&moto, &["scan", "orders", "--format", "%k %z"]).await;
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("%z") && bad.stderr.contains("%s payload"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn json_summaries_go_to_standard_output_and_parse() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;
    kinesis::create_stream(&kinesis_client, "replay", 1).await;

    let planned = kinarch(
        &moto,
        &["setup", "orders", "ALL", "--dry-run", "-o", "json"],
    )
    .await
    .json();
    assert_eq!(planned["dryRun"], true);
    assert_eq!(planned["done"], Value::Null);
    assert_eq!(planned["plan"][0]["status"], "to do", "{planned}");
    let done = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--ttl-seconds",
            "60",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(done["table"], "orders-archive-ALL");
    assert_eq!(done["ttlSeconds"], 60);
    assert!(
        done["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "done"),
        "{done}"
    );

    let dry = put(&moto, &["-k", "k", "--dry-run", "-o", "json"], b"a\nb\nc\n")
        .await
        .json();
    assert_eq!(
        (
            dry["dryRun"].clone(),
            dry["wouldSend"].clone(),
            dry["sent"].clone()
        ),
        (true.into(), 3.into(), 0.into())
    );
    assert!(
        kinesis::read_all(&kinesis_client, "orders")
            .await
            .is_empty(),
        "a dry run sends nothing"
    );
    let sent = put(&moto, &["-k", "k", "-o", "json"], b"a\nb\nc\n").await;
    let report = sent.json();
    assert_eq!(
        (report["sent"].clone(), report["failed"].clone()),
        (3.into(), 0.into())
    );
    assert!(
        !sent.stderr.contains("put 3 records"),
        "JSON replaces the text summary: {}",
        sent.stderr
    );

    let plan = kinarch(&moto, &["archive", "orders", "--dry-run", "-o", "json"])
        .await
        .json();
    assert_eq!(plan["checkpointsExist"], false);
    assert_eq!(plan["shards"][0]["start"], "at TRIM_HORIZON (--start-at)");
    let summary = kinarch(&moto, &["archive", "orders", "-o", "json"])
        .await
        .json();
    assert_eq!(summary["records"], 3);
    let plan = kinarch(&moto, &["archive", "orders", "--dry-run"]).await;
    assert!(
        plan.ok().out().contains("after its checkpoint 3"),
        "{}",
        plan.out()
    );

    let would = kinarch(
        &moto,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--dry-run",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(
        (would["wouldSend"].clone(), would["sent"].clone()),
        (3.into(), 0.into())
    );
    let replayed = kinarch(
        &moto,
        &["reinject", "orders", "--target", "replay", "-o", "json"],
    )
    .await
    .json();
    assert_eq!(replayed["sent"], 3);
    assert_eq!(kinesis::read_all(&kinesis_client, "replay").await.len(), 3);

    let archives = kinarch(&moto, &["list", "-o", "json"]).await.json();
    assert_eq!(
        archives,
        serde_json::json!([{"table": "orders-archive-ALL", "mode": "ALL", "stream": "orders",
            "streamExists": true, "itemCount": 3, "parquet": null}]),
        "checkpoint tables are not archives"
    );
    let text = kinarch(&moto, &["list"]).await;
    assert!(
        text.ok().out().contains("orders-archive-ALL  ALL   orders"),
        "{}",
        text.out()
    );
}

#[tokio::test]
async fn status_is_a_health_check_that_lists_every_problem() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;

    let fresh = kinarch(&moto, &["status", "orders", "-o", "json"]).await;
    fresh.expect_code(1);
    let status = json_of(&fresh);
    assert_eq!(status["healthy"], false);
    let problems = status["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{status}");
    assert!(
        problems[0].as_str().unwrap().contains("not set up"),
        "{status}"
    );
    assert!(
        problems[1].as_str().unwrap().contains("does not exist"),
        "{status}"
    );

    kinesis::tag_stream(
        &kinesis_client,
        "orders",
        &[("StreamArchiveMode", "EVERYTHING"), ("ArchiveTTL", "1h")],
    )
    .await;
    let invalid = kinarch(&moto, &["status", "orders"]).await;
    invalid.expect_code(1);
    for expected in [
        "EVERYTHING",
        "1h",
        "orders-archive-LATEST does not exist",
        "3 problem(s)",
    ] {
        assert!(
            invalid.out().contains(expected),
            "{expected:?} in\n{}",
            invalid.out()
        );
    }
    assert!(
        invalid.stderr.contains("not fully set up"),
        "{}",
        invalid.stderr
    );

    // --no-ttl replaces the invalid ArchiveTTL tag.
    kinarch(&moto, &["setup", "orders", "ALL", "--no-ttl", "--yes"])
        .await
        .ok();
    put(&moto, &["-k", "k"], b"a\nb\n").await.ok();
    let healthy = kinarch(&moto, &["status", "orders", "-o", "json"])
        .await
        .json();
    assert_eq!(
        (healthy["healthy"].clone(), healthy["problems"].clone()),
        (true.into(), serde_json::json!([]))
    );
    assert_eq!(
        healthy["checkpoints"],
        Value::Null,
        "no checkpoint table yet"
    );

    kinarch(&moto, &["archive", "orders"]).await.ok();
    let archived = kinarch(&moto, &["status", "orders", "-o", "json"])
        .await
        .json();
    let checkpoints = &archived["checkpoints"];
    assert_eq!(checkpoints["table"], "orders-archive-ALL-checkpoints");
    assert_eq!(checkpoints["shards"][0]["shardId"], "shardId-000000000000");
    assert_eq!(checkpoints["shards"][0]["sequenceNumber"], "2");
    assert_eq!(
        checkpoints["newestUpdate"],
        checkpoints["shards"][0]["updatedAt"]
    );
    assert!(checkpoints["secondsSinceNewestUpdate"].as_u64().unwrap() < 3600);
    let text = kinarch(&moto, &["status", "orders"]).await;
    for expected in [
        "checkpoints",
        "shardId-000000000000  at 2",
        "newest checkpoint",
        " s ago)",
        "OK: fully set up",
    ] {
        assert!(
            text.ok().out().contains(expected),
            "{expected:?} in\n{}",
            text.out()
        );
    }
}

#[tokio::test]
async fn put_streams_lines_as_they_arrive_and_batches_one_key_when_unordered() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;

    // Standard input stays open: the first line must reach the stream anyway.
    let mut command = cli::command(&moto);
    command
        .args(["put", "orders", "-k", "app"])
        .stdin(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").await.unwrap();
    stdin.flush().await.unwrap();
    let seen = kinarch_tests::world::eventually(
        "the line is in the stream",
        Duration::from_secs(10),
        || async {
            let seen = kinesis::read_all(&kinesis_client, "orders").await;
            (!seen.is_empty()).then_some(seen)
        },
    )
    .await;
    assert_eq!(
        seen.len(),
        1,
        "the line is in the stream before standard input closes"
    );
    assert_eq!(seen[0].data, b"first");
    stdin.write_all(b"second\n").await.unwrap();
    drop(stdin);
    let done = child.wait_with_output().await.unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(kinesis::read_all(&kinesis_client, "orders").await.len(), 2);

    // 2,000 lines of one key: at most 4 calls unordered; ordered, one call per record.
    let input: String = (0..2000).map(|i| format!("{i}\n")).collect();
    let unordered = put(
        &moto,
        &["-k", "one", "--unordered", "-o", "json"],
        input.as_bytes(),
    )
    .await
    .json();
    assert_eq!(unordered["sent"], 2000);
    assert!(unordered["requests"].as_u64().unwrap() <= 4, "{unordered}");
    let ordered_input: String = (0..20).map(|i| format!("{i}\n")).collect();
    let ordered = put(
        &moto,
        &["-k", "two", "-o", "json"],
        ordered_input.as_bytes(),
    )
    .await
    .json();
    assert_eq!(
        ordered["requests"], 20,
        "order per key costs one call per record: {ordered}"
    );
    let records = kinesis::read_all(&kinesis_client, "orders").await;
    let two: Vec<String> = records
        .iter()
        .filter(|r| r.partition_key == "two")
        .map(|r| String::from_utf8(r.data.clone()).unwrap())
        .collect();
    assert_eq!(two, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    let one = records.iter().filter(|r| r.partition_key == "one").count();
    assert_eq!(one, 2000);
    let concurrent = put(
        &moto,
        &["-k", "three", "--unordered", "--concurrency", "4"],
        b"x\ny\n",
    )
    .await;
    concurrent.ok();
}

#[tokio::test]
async fn put_reads_lines_as_people_write_them() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;
    // A BOM, CRLF line ends, a dotted key path, a number key kept as written, a line over
    // the record limit (refused, the next one still sent).
    let mut input =
        b"\xEF\xBB\xBF{\"user\":{\"id\":\"u-1\"}}\r\n{\"user\":{\"id\":1.5e3}}\r\n".to_vec();
    input.extend_from_slice(b"{\"user\":{\"id\":\"big\"},\"pad\":\"");
    input.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 10));
    input.extend_from_slice(b"\"}\n{\"user\":{\"id\":\"after\"}}\n");
    let run = put(&moto, &["--key-field", "user.id", "-o", "json"], &input).await;
    run.expect_code(1);
    let report = json_of(&run);
    assert_eq!(
        (report["sent"].clone(), report["failed"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(report["failures"][0]["line"], 3, "{report}");
    assert!(
        run.stderr
            .contains("line 3: the line is longer than 1,048,576 bytes"),
        "{}",
        run.stderr
    );
    let records = kinesis::read_all(&kinesis_client, "orders").await;
    let got: Vec<(&str, &[u8])> = records
        .iter()
        .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("u-1", &b"{\"user\":{\"id\":\"u-1\"}}"[..]),
            ("1.5e3", b"{\"user\":{\"id\":1.5e3}}"),
            ("after", b"{\"user\":{\"id\":\"after\"}}"),
        ]
    );
    let wrapped = put(&moto, &["-k", "k", "--base64"], b"not base64!\n").await;
    wrapped.expect_code(1);
    assert!(wrapped.stderr.contains("base64 -w0"), "{}", wrapped.stderr);
}

#[tokio::test]
async fn dry_runs_write_nothing_and_reinject_checks_its_target() {
    let moto = archived(3).await;
    let sdk = moto.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let before = kinarch_tests::dynamo::scan_all(&dynamodb, "orders-archive-ALL")
        .await
        .len();
    let would = kinarch(&moto, &["reinject", "orders", "--yes", "--dry-run"]).await;
    would.ok();
    assert!(would.stderr.contains("would send 3"), "{}", would.stderr);
    assert!(
        would.stderr.contains("nothing sent: dry run"),
        "{}",
        would.stderr
    );
    assert_eq!(
        would.out().lines().count(),
        3,
        "the records it would send: {}",
        would.out()
    );
    let missing = kinarch(
        &moto,
        &["reinject", "orders", "--target", "nope", "--dry-run"],
    )
    .await;
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("stream nope was not found"),
        "{}",
        missing.stderr
    );
    // archive --dry-run creates no checkpoint file.
    let file = std::env::temp_dir().join(format!("kinarch-dry-{}.json", std::process::id()));
    let plan = kinarch(
        &moto,
        &[
            "archive",
            "orders",
            "--dry-run",
            "--checkpoint-file",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        plan.ok().out().contains("created by the first run"),
        "{}",
        plan.out()
    );
    assert!(!file.exists());
    let after = kinarch_tests::dynamo::scan_all(&dynamodb, "orders-archive-ALL")
        .await
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn verbose_shows_each_aws_call_and_read_timeout_is_named_when_calls_time_out() {
    let moto = archived(1).await;
    let calls = kinarch(&moto, &["-vv", "status", "orders"]).await;
    calls.ok();
    for expected in [
        "operation=Kinesis.DescribeStreamSummary resource=stream orders",
        "operation=DynamoDB.DescribeTable resource=table orders-archive-ALL",
        "status=200",
        "ms=",
    ] {
        assert!(
            calls.stderr.contains(expected),
            "{expected:?} in\n{}",
            calls.stderr
        );
    }
    let quiet = kinarch(&moto, &["status", "orders"]).await;
    assert!(!quiet.stderr.contains("AWS call"), "{}", quiet.stderr);
    assert!(
        !calls.stderr.contains('\x1b'),
        "no colour without a terminal"
    );

    let proxy = FaultProxy::start(&moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "DescribeStreamSummary")
            .then_some(Fault::Delay(Duration::from_secs(3)))
    });
    let mut command = cli::command_with_env(&moto.env_via(&proxy.endpoint()));
    command.args(["status", "orders", "--read-timeout", "0.3"]);
    let slow = cli::run_command(command, None).await;
    slow.expect_code(1);
    assert!(slow.stderr.contains("--read-timeout"), "{}", slow.stderr);
    let bad = kinarch(&moto, &["status", "orders", "--read-timeout", "0"]).await;
    bad.expect_code(2);
}

#[tokio::test]
async fn put_refuses_wrapped_base64_without_sending_a_piece_of_it() {
    use base64::Engine as _;
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;
    // What `base64 file` writes for a 200-byte file: lines of 76 characters.
    let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 200]);
    let mut input: Vec<u8> = encoded
        .as_bytes()
        .chunks(76)
        .flat_map(|line| [line, b"\n"].concat())
        .collect();
    input.extend_from_slice(b"QUJD\n");
    let run = put(&moto, &["-k", "k", "--base64"], &input).await;
    run.expect_code(1);
    for line in 1..=3 {
        assert!(
            run.stderr
                .contains(&format!("line {line}: the input looks like wrapped base64")),
            "{line}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("base64 -w0"), "{}", run.stderr);
    let sent: Vec<Vec<u8>> = kinesis::read_all(&kinesis_client, "orders")
        .await
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert_eq!(sent, [b"ABC".to_vec()]);

    // Records of exactly 48 bytes encode to 64 characters, a wrap width: refused as above
    // by default, each sent as one record with --no-wrap-check.
    let fixed: Vec<u8> = (0..3u8)
        .flat_map(|i| {
            let line = base64::engine::general_purpose::STANDARD.encode([i; 48]);
            [line.into_bytes(), b"\n".to_vec()].concat()
        })
        .collect();
    kinesis::create_stream(&kinesis_client, "digests", 1).await;
    let refused = put_to(&moto, "digests", &["-k", "k", "--base64"], &fixed).await;
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("--no-wrap-check"),
        "{}",
        refused.stderr
    );
    let sent = put_to(
        &moto,
        "digests",
        &["-k", "k", "--base64", "--no-wrap-check"],
        &fixed,
    )
    .await;
    sent.ok();
    let digests: Vec<Vec<u8>> = kinesis::read_all(&kinesis_client, "digests")
        .await
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert_eq!(digests, [vec![0u8; 48], vec![1u8; 48], vec![2u8; 48]]);
}

#[tokio::test]
async fn on_a_terminal_put_says_what_it_reads_reinject_shows_progress_and_errors_have_colour() {
    let moto = archived(30).await;
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    kinesis::create_stream(&kinesis_client, "replay", 1).await;

    let typed = cli::kinarch_on_a_terminal(&moto, "put replay -k typed", "hello\n\x04").await;
    assert!(
        typed
            .out()
            .contains("reading records from standard input, one per line, Ctrl-D to end"),
        "{}",
        typed.out()
    );
    // A real reinject draws its progress line (records and rate) on the terminal (one
    // that can redraw a line: indicatif draws nothing on TERM=dumb).
    let screen = cli::kinarch_on_a_terminal_with(
        &moto,
        &[("TERM", "xterm")],
        "reinject orders --target replay --rate 10",
        "",
    )
    .await;
    let text = screen.out();
    assert!(text.contains(" records  ") && text.contains("/s"), "{text}");
    assert!(text.contains("sent 30"), "{text}");

    // Binary payloads printed raw on a terminal: one warning, not one per record.
    put(&moto, &["-k", "bin", "--base64"], b"AP8K\nAP8L\n")
        .await
        .ok();
    kinarch(&moto, &["archive", "orders"]).await.ok();
    let binary = cli::kinarch_on_a_terminal(&moto, "query orders bin", "").await;
    assert_eq!(
        binary
            .out()
            .matches("is binary, shown as raw bytes")
            .count(),
        1,
        "{:?}",
        binary.out()
    );
    let piped = kinarch(&moto, &["query", "orders", "bin"]).await;
    assert!(
        !piped.stderr.contains("binary"),
        "no warning into a pipe: {}",
        piped.stderr
    );

    let red = cli::kinarch_on_a_terminal(&moto, "status nope", "").await;
    assert!(
        red.out().contains("\x1b[1;31merror:\x1b[0m"),
        "{:?}",
        red.out()
    );
    let plain =
        cli::kinarch_on_a_terminal_with(&moto, &[("NO_COLOR", "1")], "status nope", "").await;
    assert!(
        plain.out().contains("error: stream nope"),
        "{:?}",
        plain.out()
    );
    assert!(!plain.out().contains('\x1b'), "{:?}", plain.out());
}

/// Messages that misled a new user (issue 28, item 5), as a user sees them: a key that
/// starts with '-', times in a form that is almost right, and every command on an archive
/// whose stream was deleted.
#[tokio::test]
async fn messages_say_what_was_meant_and_what_to_do() {
    let moto = archived(3).await;
    for key in ["-neg", "-dash2"] {
        let run = kinarch(&moto, &["query", "orders", key]).await;
        run.expect_code(2);
        assert!(
            run.stderr.contains(&format!(
                "the partition key {key} starts with '-', so it was read as options: give it \
                 as `-k {key}`"
            )),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("--limit"), "{}", run.stderr);
    }
    for (time, expected) in [
        ("2026-13-01", "a date is YYYY-MM-DD with a month 01 to 12"),
        (
            "-5m",
            "a duration is how long ago, without a sign: 5m means 5m ago",
        ),
        ("2026-05-01T24:30:00Z", "not a valid date-time"),
    ] {
        let run = kinarch(&moto, &["scan", "orders", "--arrived-after", time]).await;
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{time}: {}", run.stderr);
        assert!(!run.stderr.contains("premature"), "{time}: {}", run.stderr);
    }

    // The stream deleted, its archive kept.
    let sdk = moto.sdk_config().await;
    aws_sdk_kinesis::Client::new(&sdk)
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let replay = kinarch(&moto, &["reinject", "orders", "--metadata", "--dry-run"]).await;
    replay.expect_code(2);
    assert!(
        replay.stderr.contains("cannot be replayed into it")
            && replay.stderr.contains("--target STREAM"),
        "{}",
        replay.stderr
    );
    let export = kinarch(
        &moto,
        &["export", "orders", "--s3", "s3://exports", "--dry-run"],
    )
    .await;
    assert!(
        export.ok().stderr.contains(
            "aws dynamodb update-continuous-backups --table-name orders-archive-ALL \
             --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true"
        ) && !export.stderr.contains("kinarch setup"),
        "{}",
        export.stderr
    );
    let status = kinarch(&moto, &["status", "orders"]).await;
    assert!(
        status
            .ok()
            .out()
            .contains("OK as an archive: stream orders cannot be read")
            && !status.out().contains("fully set up"),
        "{}",
        status.out()
    );
    let json = json_of(&kinarch(&moto, &["status", "orders", "-o", "json"]).await);
    assert_eq!(
        (json["healthy"].as_bool(), json["streamReadable"].as_bool()),
        (Some(true), Some(false))
    );
}

/// Defect 1 of issue 23: one invalid ArchiveOverflow tag made `status` throw away the valid
/// mode and table tags and report the defaults. Now the invalid tag is named, the valid ones
/// are kept and shown, and the exit status is 1.
#[tokio::test]
async fn status_names_an_invalid_overflow_tag_and_keeps_the_valid_ones() {
    let moto = archived(1).await;
    let sdk = moto.sdk_config().await;
    kinesis::tag_stream(
        &aws_sdk_kinesis::Client::new(&sdk),
        "orders",
        &[("ArchiveOverflow", "ftp://not-a-bucket")],
    )
    .await;
    let status = kinarch(&moto, &["status", "orders"]).await;
    status.expect_code(1);
    let text = status.out();
    assert!(text.contains("ALL (every record)"), "{text}");
    assert!(text.contains("orders-archive-ALL (ACTIVE)"), "{text}");
    assert!(
        text.contains("tag ArchiveOverflow has an invalid value"),
        "{text}"
    );
    let json = json_of(&kinarch(&moto, &["status", "orders", "-o", "json"]).await);
    assert_eq!(json["mode"], "ALL");
    assert_eq!(json["tableName"], "orders-archive-ALL");
    assert_eq!(json["healthy"], false);
    assert!(
        json["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("ArchiveOverflow")),
        "{json}"
    );
}
