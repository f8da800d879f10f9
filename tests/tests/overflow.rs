//! Records too large for a DynamoDB item, archived with their payload in S3 (issue 14):
//! 500 KB, 1 MiB and 5 MiB binary payloads through the real `bootstrap` (events built
//! directly: moto's Kinesis takes at most 1 MiB per record) and through `kinarch archive`;
//! the objects hold the records' exact bytes, a duplicate delivery writes the same objects,
//! failed PutObjects give a partial batch failure and then, delivered again, a complete
//! archive; `query`, `scan` and `reinject` return the exact bytes, `--no-fetch` leaves them
//! in S3, a deleted object is an error naming it while the other records go on; `setup
//! --overflow-bucket` checks the bucket, `status` shows it, `--no-overflow` removes it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_tests::cli::kinarch;
use kinarch_tests::dynamo::{self, Item, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{LambdaFunction, failures};
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::s3;
use kinarch_tests::world::World;
use serde_json::Value;

/// A marker planted in every payload: it must never reach a log.
const SECRET: &str = "OVERFLOW-PAYLOAD-MARKER-91c2";
const BUCKET: &str = "kinarch-overflow";
const PREFIX: &str = "big";
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// `len` bytes of binary payload, different for each `seed`: every byte value occurs,
/// zeros and newlines included, with [`SECRET`] at the start.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data: Vec<u8> = SECRET.bytes().collect();
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.push((state >> 24) as u8);
    }
    data.truncate(len);
    data
}

/// moto with the overflow bucket, and `stream` (one shard) set up in `mode` with it.
async fn world(stream: &str, mode: &str) -> (World, String) {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let target = format!("{BUCKET}/{PREFIX}");
    let arn = w
        .set_up(stream, 1, mode, &["--overflow-bucket", &target])
        .await;
    (w, arn)
}

fn record(key: &str, sequence: &str, data: Vec<u8>) -> StreamRecord {
    StreamRecord {
        shard_id: "shardId-000000000000".into(),
        partition_key: key.into(),
        sequence_number: sequence.into(),
        data,
        arrival: 1_764_000_000.25,
    }
}

fn object_key(stream: &str, sequence: &str) -> String {
    format!("{PREFIX}/{stream}/shardId-000000000000/{sequence}")
}

fn item<'a>(items: &'a [Item], key: &str) -> &'a Item {
    items
        .iter()
        .find(|i| s(i, "partitionKey") == key)
        .unwrap_or_else(|| panic!("no item of key {key}"))
}

fn assert_no_payload_in_logs(function: &LambdaFunction) {
    for line in function.logs() {
        assert!(
            !line.contains(SECRET),
            "payload leaked into the log: {line}"
        );
    }
}

fn jsonl(stdout: &[u8]) -> Vec<Value> {
    stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_function_stores_large_payloads_in_s3_and_kinarch_reads_them_back() {
    let stream = "big-records";
    let (w, arn) = world(stream, "ALL").await;
    let records = vec![
        record("small", "10", payload(100, 1)),
        record("kb500", "11", payload(500 * KIB, 2)),
        record("mib1", "12", payload(MIB, 3)),
        record("mib5", "13", payload(5 * MIB, 4)),
    ];
    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    let event = kinesis::event(&arn, &records);
    let response = function.invoke(event.clone()).await.response();
    assert!(failures(&response).is_empty(), "{response}");

    let table = format!("{stream}-archive-ALL");
    let items = dynamo::scan_all(&w.dynamodb, &table).await;
    assert_eq!(items.len(), 4);
    assert_eq!(
        STANDARD
            .decode(s(item(&items, "small"), "recordData"))
            .unwrap(),
        records[0].data
    );
    for r in &records[1..] {
        let it = item(&items, &r.partition_key);
        let key = object_key(stream, &r.sequence_number);
        assert_eq!(s(it, "recordLocation"), format!("s3://{BUCKET}/{key}"));
        assert_eq!(dynamo::n(it, "recordSize"), r.data.len().to_string());
        assert!(!it.contains_key("recordData") && !it.contains_key("oversize"));
        // The rest of the contract is there as for any record.
        assert_eq!(s(it, "sequenceNumber"), r.sequence_number);
        assert_eq!(s(it, "shardId"), "shardId-000000000000");
        let stored = s3::get(&w.s3, BUCKET, &key).await.expect("object stored");
        assert!(stored == r.data, "object {key} holds the record's bytes");
    }
    let keys = s3::keys(&w.s3, BUCKET).await;
    assert_eq!(keys.len(), 3, "{keys:?}");

    // Delivered again: the same objects, overwritten with the same bytes.
    let response = function.invoke(event).await.response();
    assert!(failures(&response).is_empty(), "{response}");
    assert_eq!(s3::keys(&w.s3, BUCKET).await, keys);
    for r in &records[1..] {
        let stored = s3::get(&w.s3, BUCKET, &object_key(stream, &r.sequence_number)).await;
        assert!(stored.as_ref() == Some(&r.data));
    }
    let summaries: Vec<Value> = function
        .json_logs()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "archived batch")
        .collect();
    assert_eq!(
        summaries[0]["fields"]["overflowed"], 3,
        "{:?}",
        summaries[0]
    );
    assert_eq!(summaries[0]["fields"]["oversize"], 0);
    let emf = function
        .json_logs()
        .into_iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF metrics line");
    assert_eq!(emf["RecordsOverflowed"], 3, "{emf}");
    assert_eq!(emf["RecordsOversize"], 0, "{emf}");
    assert_no_payload_in_logs(&function);

    // query and scan fetch the payloads: the exact bytes.
    for r in &records {
        let run = kinarch(&w.moto, &["query", stream, &r.partition_key]).await;
        run.ok();
        let mut expected = r.data.clone();
        expected.push(b'\n');
        assert!(
            run.stdout == expected,
            "query {} returns the bytes",
            r.partition_key
        );
    }
    let run = kinarch(&w.moto, &["scan", stream, "--output", "jsonl"]).await;
    run.ok();
    let lines = jsonl(&run.stdout);
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let r = records
            .iter()
            .find(|r| line["partitionKey"] == r.partition_key.as_str())
            .unwrap();
        assert_eq!(
            STANDARD
                .decode(line["recordData"].as_str().unwrap())
                .unwrap(),
            r.data
        );
        if r.data.len() > 400 * KIB {
            assert_eq!(
                line["recordLocation"],
                format!("s3://{BUCKET}/{}", object_key(stream, &r.sequence_number))
            );
            assert_eq!(line["recordSize"], r.data.len());
        } else {
            assert!(line.get("recordLocation").is_none());
        }
    }
    // --no-fetch: the items as they are, locations and sizes, no payload.
    let run = kinarch(
        &w.moto,
        &["scan", stream, "--output", "jsonl", "--no-fetch"],
    )
    .await;
    run.ok();
    for line in jsonl(&run.stdout) {
        if line.get("recordLocation").is_some() {
            assert!(line.get("recordData").is_none(), "{line}");
            assert!(line["recordSize"].as_u64().unwrap() >= 500 * KIB as u64);
        }
    }

    // reinject sends fetched payloads like any other; the 1 MiB record (with its partition
    // key) and the 5 MiB one exceed Kinesis's record limit and are listed as not sent.
    kinesis::create_stream(&w.kinesis, "copy", 1).await;
    let run = kinarch(&w.moto, &["reinject", stream, "--target", "copy", "--yes"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("not sent: mib1 12") && run.stderr.contains("not sent: mib5 13"),
        "{}",
        run.stderr
    );
    let copied = kinesis::read_all(&w.kinesis, "copy").await;
    let mut sent: Vec<(String, usize)> = copied
        .iter()
        .map(|r| (r.partition_key.clone(), r.data.len()))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [("kb500".to_owned(), 500 * KIB), ("small".to_owned(), 100)]
    );
    for c in &copied {
        let original = records.iter().find(|r| r.partition_key == c.partition_key);
        assert!(
            original.is_some_and(|r| r.data == c.data),
            "exact bytes sent"
        );
    }

    // A payload whose object is gone: an error naming it, the others printed, exit 1.
    let lost = object_key(stream, "11");
    s3::delete(&w.s3, BUCKET, &lost).await;
    let run = kinarch(&w.moto, &["scan", stream, "--output", "base64"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("s3://{BUCKET}/{lost}"))
            && run.stderr.contains("does not exist")
            && run.stderr.contains("kb500/11"),
        "{}",
        run.stderr
    );
    let printed: Vec<Vec<u8>> = run
        .out()
        .lines()
        .map(|l| STANDARD.decode(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 3, "every other record is printed");
    for r in records.iter().filter(|r| r.partition_key != "kb500") {
        assert!(printed.contains(&r.data), "{} printed", r.partition_key);
    }
    let run = kinarch(
        &w.moto,
        &[
            "reinject",
            stream,
            "--target",
            "copy",
            "--partition-key",
            "kb500",
            "--yes",
        ],
    )
    .await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("not sent: kb500 11") && run.stderr.contains(&lost),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_put_objects_fail_their_records_until_delivered_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let sdk = moto.sdk_config().await;
    let s3c = s3::client(&sdk);
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    s3::create_bucket(&s3c, BUCKET).await;
    let mut arns = Vec::new();
    for (stream, mode) in [("faulty-all", "ALL"), ("faulty-latest", "LATEST")] {
        arns.push(kinesis::create_stream(&kinesis_client, stream, 1).await);
        kinarch(
            &moto,
            &[
                "setup",
                stream,
                mode,
                "--overflow-bucket",
                &format!("{BUCKET}/{PREFIX}"),
                "--yes",
            ],
        )
        .await
        .ok();
    }
    let mut env = moto.env_via(&proxy.endpoint());
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;

    // A passing fault (503 SlowDown twice) is retried within the invocation.
    proxy.set_rule(|call| {
        (call.target == "S3.PutObject" && call.nth_of_target < 2).then(|| Fault::Error {
            status: 503,
            error_type: "SlowDown".into(),
        })
    });
    let arn = kinesis::create_stream(&kinesis_client, "retried", 1).await;
    kinarch(
        &moto,
        &[
            "setup",
            "retried",
            "ALL",
            "--overflow-bucket",
            BUCKET,
            "--yes",
        ],
    )
    .await
    .ok();
    let big = record("b", "5", payload(700 * KIB, 9));
    let response = function
        .invoke(kinesis::event(&arn, std::slice::from_ref(&big)))
        .await
        .response();
    assert!(failures(&response).is_empty(), "{response}");
    assert!(proxy.injected() >= 2);
    let stored = s3::get(&s3c, BUCKET, "retried/shardId-000000000000/5").await;
    assert!(stored.as_ref() == Some(&big.data));

    // A refused PutObject fails its record: the partial batch response names it, and its
    // item is not written (never archived without its payload).
    proxy.set_rule(|call| {
        (call.target == "S3.PutObject").then(|| Fault::Error {
            status: 403,
            error_type: "AccessDenied".into(),
        })
    });
    for ((stream, mode_table), arn) in [("faulty-all", "ALL"), ("faulty-latest", "LATEST")]
        .into_iter()
        .zip(&arns)
    {
        let records = vec![
            record("a", "20", payload(50, 10)),
            record("b", "21", payload(600 * KIB, 11)),
            record("c", "22", payload(50, 12)),
        ];
        let response = function
            .invoke(kinesis::event(arn, &records))
            .await
            .response();
        assert_eq!(failures(&response), ["21"], "{stream}: {response}");
        let table = format!("{stream}-archive-{mode_table}");
        let items = dynamo::scan_all(&dynamodb, &table).await;
        let mut keys: Vec<&str> = items.iter().map(|i| s(i, "partitionKey")).collect();
        keys.sort();
        assert_eq!(keys, ["a", "c"], "{stream}");

        // Lambda delivers again from the failed record: the archive is complete.
        proxy.heal();
        let response = function
            .invoke(kinesis::event(arn, &records[1..]))
            .await
            .response();
        assert!(failures(&response).is_empty(), "{stream}: {response}");
        let items = dynamo::scan_all(&dynamodb, &table).await;
        assert_eq!(items.len(), 3, "{stream}");
        let key = object_key(stream, "21");
        assert_eq!(
            s(item(&items, "b"), "recordLocation"),
            format!("s3://{BUCKET}/{key}")
        );
        assert!(s3::get(&s3c, BUCKET, &key).await.as_ref() == Some(&records[1].data));
        proxy.set_rule(|call| {
            (call.target == "S3.PutObject").then(|| Fault::Error {
                status: 403,
                error_type: "AccessDenied".into(),
            })
        });
    }
    assert_no_payload_in_logs(&function);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinarch_archive_stores_large_payloads_in_s3() {
    let stream = "polled";
    let (w, _arn) = world(stream, "ALL").await;
    // moto's Kinesis takes records up to 1 MiB with their partition key.
    let sizes = [(1usize, 200), (2, 500 * KIB), (3, MIB - 16)];
    for (i, size) in sizes {
        kinesis::put(
            &w.kinesis,
            stream,
            &format!("k{i}"),
            &payload(size, i as u64),
        )
        .await;
    }
    let put = kinesis::read_all(&w.kinesis, stream).await;
    assert_eq!(put.len(), 3);
    let run = kinarch(&w.moto, &["archive", stream, "--output", "json"]).await;
    let summary = run.json();
    assert_eq!(summary["records"], 3, "{summary}");
    assert_eq!(summary["overflowed"], 2, "{summary}");
    assert_eq!(summary["oversize"], 0, "{summary}");
    let items = dynamo::scan_all(&w.dynamodb, &format!("{stream}-archive-ALL")).await;
    assert_eq!(items.len(), 3);
    for r in &put {
        let it = item(&items, &r.partition_key);
        if r.data.len() > 400 * KIB {
            let key = format!("{PREFIX}/{stream}/{}/{}", r.shard_id, r.sequence_number);
            assert_eq!(s(it, "recordLocation"), format!("s3://{BUCKET}/{key}"));
            assert!(s3::get(&w.s3, BUCKET, &key).await.as_ref() == Some(&r.data));
        } else {
            assert!(!it.contains_key("recordLocation"));
        }
        let run = kinarch(&w.moto, &["query", stream, &r.partition_key]).await;
        run.ok();
        assert!(
            run.stdout[..run.stdout.len() - 1] == r.data[..],
            "exact bytes"
        );
    }
    let _ = &w.sdk;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_checks_the_overflow_bucket_and_status_shows_it() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let s3c = s3::client(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;

    // A bucket that does not exist: refused before anything changes, dry run included.
    for extra in [None, Some("--dry-run")] {
        let mut args = vec![
            "setup",
            "orders",
            "ALL",
            "--overflow-bucket",
            "no-such-bucket/x",
            "--yes",
        ];
        args.extend(extra);
        let run = kinarch(&moto, &args).await;
        run.expect_code(1);
        assert!(
            run.stderr.contains("s3://no-such-bucket/x")
                && run.stderr.contains("does not exist")
                && run.stderr.contains("--overflow-bucket")
                && run.stderr.contains("aws s3 mb s3://no-such-bucket")
                && !run.stderr.contains("hint:"),
            "{}",
            run.stderr
        );
    }
    let tags = kinesis_client
        .list_tags_for_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap()
        .tags;
    assert!(tags.is_empty(), "nothing was tagged: {tags:?}");
    // A bucket name that S3 would refuse is a usage error.
    let run = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--overflow-bucket",
            "Bad_Bucket",
            "--yes",
        ],
    )
    .await;
    run.expect_code(2);
    assert!(run.stderr.contains("Bad_Bucket"), "{}", run.stderr);

    s3::create_bucket(&s3c, BUCKET).await;
    s3::put_lifecycle_rule(&s3c, BUCKET, "someone-elses", "logs/", 30).await;
    let theirs = ("someone-elses".to_owned(), "logs/".to_owned(), 30);
    let run = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--ttl-seconds",
            "172800",
            "--overflow-bucket",
            &format!("{BUCKET}/{PREFIX}/"),
            "--yes",
        ],
    )
    .await;
    run.ok();
    let out = run.out();
    assert!(
        out.contains(&format!(
            "check that overflow bucket s3://{BUCKET}/{PREFIX} takes writes"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("ArchiveOverflow=s3://{BUCKET}/{PREFIX}")),
        "{out}"
    );
    // With a TTL the payloads expire with their items: a lifecycle rule of 2 days (172,800
    // s rounded up to whole days), beside the bucket's other rules.
    assert!(out.contains("set lifecycle rule kinarch-orders"), "{out}");
    assert!(
        s3::keys(&s3c, BUCKET).await.is_empty(),
        "the test object is deleted"
    );
    let rule = ("kinarch-orders".to_owned(), format!("{PREFIX}/orders/"), 2);
    assert_eq!(
        s3::lifecycle_rules(&s3c, BUCKET).await,
        [theirs.clone(), rule.clone()]
    );
    // A shorter TTL keeps the longer rule (items archived so far still point at payloads).
    kinarch(
        &moto,
        &["setup", "orders", "ALL", "--ttl-seconds", "60", "--yes"],
    )
    .await
    .ok();
    assert_eq!(
        s3::lifecycle_rules(&s3c, BUCKET).await,
        [theirs.clone(), rule]
    );
    let status = kinarch(&moto, &["status", "orders"]).await;
    status.ok();
    assert!(
        status
            .out()
            .lines()
            .any(|l| l.starts_with("overflow") && l.contains(&format!("s3://{BUCKET}/{PREFIX}"))),
        "{}",
        status.out()
    );

    // Without a TTL new items never expire, nor may their payloads: the rule goes.
    kinarch(&moto, &["setup", "orders", "ALL", "--no-ttl", "--yes"])
        .await
        .ok();
    assert_eq!(s3::lifecycle_rules(&s3c, BUCKET).await, [theirs]);
    let json = kinarch(&moto, &["status", "orders", "-o", "json"])
        .await
        .json();
    assert_eq!(
        json["overflow"],
        format!("s3://{BUCKET}/{PREFIX}"),
        "{json}"
    );
    kinarch(&moto, &["setup", "orders", "ALL", "--no-overflow", "--yes"])
        .await
        .ok();
    let status = kinarch(&moto, &["status", "orders"]).await;
    assert!(
        status
            .out()
            .lines()
            .any(|l| l.starts_with("overflow") && l.contains("none")),
        "{}",
        status.out()
    );
    // Both at once cannot be meant.
    let run = kinarch(
        &moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--no-overflow",
            "--overflow-bucket",
            BUCKET,
        ],
    )
    .await;
    run.expect_code(2);
}
