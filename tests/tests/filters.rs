//! `--where` (issue 26): JMESPath over each payload, in query, scan, reinject and
//! `--estimate`, from the table and from the Parquet archive; nested fields, numbers, missing
//! fields and payloads that are not JSON; with windows and limits; a usage error naming the
//! column; a journal made with another filter refused.

use std::collections::BTreeSet;

use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::kinesis;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::s3;
use kinarch_tests::world::World;
use serde_json::Value;

/// 2026-05-01T10:00:00Z.
const BASE: f64 = 1_777_629_600.0;

/// Record `i`: a refund of `i * 10` on even `i`, an order on odd `i`, nested customer tiers,
/// and every seventh payload not JSON; one second apart, over 4 keys.
fn payload(i: usize) -> Vec<u8> {
    if i % 7 == 6 {
        return format!("plain text {i}").into_bytes();
    }
    let kind = if i.is_multiple_of(2) {
        "refund"
    } else {
        "order"
    };
    let tier = if i.is_multiple_of(3) { "gold" } else { "basic" };
    let amount = if i == 4 {
        // A missing amount: null, not selected by a comparison.
        String::new()
    } else {
        format!(",\"amount\":{}", i * 10)
    };
    format!("{{\"type\":\"{kind}\"{amount},\"customer\":{{\"tier\":\"{tier}\"}},\"n\":{i}}}")
        .into_bytes()
}

fn records(count: usize) -> Vec<ArchiveRecord> {
    (0..count)
        .map(|i| {
            ArchiveRecord::received(
                format!("key-{}", i % 4),
                SequenceNumber::parse(&format!("{}", 100 + i)).unwrap(),
                "shardId-000000000000".into(),
                BASE + i as f64,
                payload(i),
            )
        })
        .collect()
}

/// The `n` of every JSON record printed with `-o jsonl`.
fn ns(out: &str) -> BTreeSet<u64> {
    use base64::Engine as _;
    out.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let data = base64::engine::general_purpose::STANDARD
                .decode(v["recordData"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<Value>(&data).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn expected(count: usize, keep: impl Fn(usize) -> bool) -> BTreeSet<u64> {
    (0..count)
        .filter(|&i| i % 7 != 6 && keep(i))
        .map(|i| i as u64)
        .collect()
}

const REFUNDS_OVER_100: &str = "type == 'refund' && amount > `100`";

/// A replay of `orders` into `replay`; the test adds the rest.
const REPLAY: [&str; 4] = ["reinject", "orders", "--target", "replay"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_selects_by_content_in_every_read_and_says_what_is_not_json() {
    let w = World::start().await;
    let all = records(40);
    w.archived("orders", 1, &all, chrono::Utc::now()).await;
    let refunds = |i: usize| i.is_multiple_of(2) && i != 4 && i * 10 > 100;

    let scan = w
        .kinarch(&["scan", "orders", "--where", REFUNDS_OVER_100, "-o", "jsonl"])
        .await;
    assert_eq!(ns(&scan.ok().out()), expected(40, refunds));
    assert!(
        scan.stderr
            .contains("5 of 40 record(s) read have a payload that is not JSON"),
        "{}",
        scan.stderr
    );
    // -v names them.
    let verbose = w
        .kinarch(&["scan", "orders", "--where", "n", "-o", "jsonl", "-v"])
        .await;
    assert!(
        verbose.ok().stderr.contains("sequence_number=106") && verbose.stderr.contains("not JSON"),
        "{}",
        verbose.stderr
    );

    // Nested fields, with a window and a limit (which counts selected records).
    let gold = w
        .kinarch(&[
            "scan",
            "orders",
            "--where",
            "customer.tier == 'gold'",
            "--arrived-after",
            "2026-05-01T10:00:10Z",
            "-n",
            "3",
            "-o",
            "jsonl",
        ])
        .await;
    let gold_all = expected(40, |i| i.is_multiple_of(3) && i >= 10);
    let three = ns(&gold.ok().out());
    assert_eq!(three.len(), 3, "the limit counts selected records");
    assert!(three.is_subset(&gold_all), "{three:?}");

    // A key's records.
    let key = w
        .kinarch(&[
            "query",
            "orders",
            "key-0",
            "--where",
            "type == 'refund'",
            "-o",
            "jsonl",
        ])
        .await;
    assert_eq!(ns(&key.ok().out()), expected(40, |i| i.is_multiple_of(4)));

    // An invalid expression: a usage error naming the column, before any read.
    let bad = w
        .kinarch(&["scan", "orders", "--where", "type == 'refund' &&"])
        .await;
    bad.expect_code(2);
    assert!(bad.stderr.contains("at column 20"), "{}", bad.stderr);

    // The estimate counts what the filtered replay sends, and what it read.
    w.stream("replay", 1).await;
    let filter = ["--where", REFUNDS_OVER_100];
    let estimate = w
        .kinarch(&[&REPLAY[..], &["--estimate", "-o", "json"], &filter].concat())
        .await
        .ok()
        .json();
    let selected = expected(40, refunds).len() as u64;
    assert_eq!(estimate["records"], selected, "{estimate}");
    assert_eq!(estimate["recordsRead"], 40, "{estimate}");
    assert_eq!(estimate["notJson"], 5, "{estimate}");
    let dir = std::env::temp_dir().join(format!("kinarch-filters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("refunds.journal");
    let journal = journal.to_str().unwrap();
    w.kinarch(&[&REPLAY[..], &["--journal", journal], &filter].concat())
        .await
        .ok();
    let sent = kinesis::read_all(&w.kinesis, "replay").await;
    assert_eq!(sent.len() as u64, selected);
    // The journal is of that filter: another one is refused, nothing sent.
    let other = w
        .kinarch(
            &[
                &REPLAY[..],
                &["--journal", journal, "--where", "type == 'order'"],
            ]
            .concat(),
        )
        .await;
    assert_ne!(other.code, 0);
    assert!(other.stderr.contains("--where"), "{}", other.stderr);
    assert_eq!(
        kinesis::read_all(&w.kinesis, "replay").await.len(),
        sent.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_filters_the_parquet_archive_too() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, "history").await;
    let arn = w
        .set_up("clicks", 1, "NONE", &["--parquet", "s3://history/kinarch"])
        .await;
    let put: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| (format!("key-{}", i % 4), payload(i)))
        .collect();
    kinesis::put_many(&w.kinesis, "clicks", &put).await;
    let written = kinesis::read_all(&w.kinesis, "clicks").await;
    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    function.deliver(&arn, &written).await;
    let scan = w
        .kinarch(&["scan", "clicks", "--where", REFUNDS_OVER_100, "-o", "jsonl"])
        .await;
    assert_eq!(
        ns(&scan.ok().out()),
        expected(30, |i| i.is_multiple_of(2) && i != 4 && i * 10 > 100)
    );
    assert!(scan.stderr.contains("not JSON"), "{}", scan.stderr);
}

/// `--keys-from`: one Query per key (the proxy sees no Scan), the keys' records in the
/// file's order, with a window and `--where`; standard input as `-`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_file_read_one_query_per_key_in_the_file_s_order() {
    use std::sync::{Arc, Mutex};
    let w = World::start().await;
    let all = records(40);
    w.archived("orders", 1, &all, chrono::Utc::now()).await;
    let proxy = kinarch_tests::proxy::FaultProxy::start(&w.moto.endpoint()).await;
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    proxy.set_rule(move |call| {
        seen.lock().unwrap().push(call.operation().to_owned());
        None
    });
    let env = w.moto.env_via(&proxy.endpoint());
    let run = |args: &[&str], input: Option<&str>| {
        let mut command = kinarch_tests::cli::command_with_env(&env);
        command.args(args);
        let input = input.map(|i| i.as_bytes().to_vec());
        async move { kinarch_tests::cli::run_command(command, input.as_deref()).await }
    };
    let dir = std::env::temp_dir().join(format!("kinarch-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.txt");
    std::fs::write(&file, "key-2\r\nkey-0\n\nkey-2\nkey-9\n").unwrap();
    let file = file.to_str().unwrap();

    let scan = run(
        &[
            "scan",
            "orders",
            "--keys-from",
            file,
            "--arrived-after",
            "2026-05-01T10:00:10Z",
            "-o",
            "jsonl",
        ],
        None,
    )
    .await;
    let order: Vec<u64> = scan
        .ok()
        .out()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["sequenceNumber"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                - 100
        })
        .collect();
    let mut want: Vec<u64> = (10..40).filter(|i| i % 4 == 2).collect();
    want.extend((10..40).filter(|i| i % 4 == 0));
    assert_eq!(
        order, want,
        "key-2's records, then key-0's, each in sequence order"
    );
    let seen = std::mem::take(&mut *calls.lock().unwrap());
    assert_eq!(
        seen.iter().filter(|op| op.as_str() == "Query").count(),
        3,
        "one Query per distinct key: {seen:?}"
    );
    assert!(!seen.iter().any(|op| op == "Scan"), "{seen:?}");

    // From standard input, with --where.
    let refunds = run(
        &[
            "scan",
            "orders",
            "--keys-from",
            "-",
            "--where",
            "type == 'refund'",
            "-o",
            "jsonl",
        ],
        Some("key-1\nkey-2\n"),
    )
    .await;
    assert_eq!(ns(&refunds.ok().out()), expected(40, |i| i % 4 == 2));

    // No key at all, or a missing file: usage errors.
    let empty = run(&["scan", "orders", "--keys-from", "-"], Some("\n")).await;
    empty.expect_code(2);
    assert!(empty.stderr.contains("holds no key"), "{}", empty.stderr);
    let missing = run(
        &["scan", "orders", "--keys-from", "/nonexistent/keys"],
        None,
    )
    .await;
    missing.expect_code(2);
    let _ = std::fs::remove_dir_all(&dir);
}
