//! Time windows (issue 13, bounds and times): `--arrived-after/--arrived-before` and
//! `--archived-after/--archived-before` on `scan`, `query` and `reinject`, the real binary
//! against moto, with records on both edges; every TIME form the issue names, and the
//! refused ones.
//!
//! Items are written straight into the table so that arrival and archive times are chosen
//! by the test.

use chrono::{DateTime, TimeZone, Utc};
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{Run, kinarch};
use kinarch_tests::kinesis;
use kinarch_tests::world::World;

/// 2026-05-01T10:00:00Z.
const BASE: i64 = 1_777_629_600;

/// Stream `orders` (ALL) with 12 records: record i of key `k{i%3}` arrived at BASE + 10·i
/// seconds and was archived at BASE + 100·i seconds; an empty stream `replay`.
async fn world() -> World {
    let w = World::start().await;
    w.archived("orders", 1, &[], Utc::now()).await;
    w.stream("replay", 1).await;
    for i in 0..12i64 {
        let record = ArchiveRecord::received(
            format!("k{}", i % 3),
            SequenceNumber::parse(&(1000 + i).to_string()).unwrap(),
            "shardId-000000000000".into(),
            (BASE + 10 * i) as f64,
            format!("r{i}").into_bytes(),
        );
        let archived_at: DateTime<Utc> = Utc.timestamp_opt(BASE + 100 * i, 0).unwrap();
        kinarch_tests::dynamo::put_archived(
            &w.dynamodb,
            "orders-archive-ALL",
            &[record],
            archived_at,
        )
        .await;
    }
    w
}

/// The record numbers a run printed (payloads `r<i>`, one per line), sorted.
fn numbers(run: &Run) -> Vec<i64> {
    let mut out: Vec<i64> = run
        .ok()
        .out()
        .lines()
        .map(|l| l.trim_start_matches('r').parse().unwrap())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_keep_the_after_edge_and_drop_the_before_edge_in_every_time_form() {
    let w = world().await;
    let scan = |args: Vec<String>| {
        let moto = &w.moto;
        async move {
            let mut all = vec!["scan".to_owned(), "orders".to_owned()];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            kinarch(moto, &refs).await
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Arrival: records 2..=5 arrived at BASE+20 .. BASE+50; BASE+60 (record 6) is the
    // exclusive edge. The same instant in each form.
    let forms_after = [
        "2026-05-01T10:00:20Z".to_owned(),
        "2026-05-01T12:00:20+02:00".to_owned(),
        "2026-05-01 10:00:20".to_owned(),
        (BASE + 20).to_string(),
        format!("{}000", BASE + 20),
        format!("{}.0", BASE + 20),
    ];
    for after in &forms_after {
        let run = scan(args(&[
            "--arrived-after",
            after,
            "--arrived-before",
            "2026-05-01T10:01:00Z",
        ]))
        .await;
        assert_eq!(numbers(&run), [2, 3, 4, 5], "--arrived-after {after}");
    }
    // A date is UTC midnight: everything arrived after 2026-05-01 and before 2026-05-02.
    let run = scan(args(&[
        "--arrived-after",
        "2026-05-01",
        "--arrived-before",
        "2026-05-02",
    ]))
    .await;
    assert_eq!(numbers(&run).len(), 12);
    // Durations and now: all records are long ago.
    let run = scan(args(&["--arrived-before", "1h"])).await;
    assert_eq!(numbers(&run).len(), 12);
    let run = scan(args(&["--arrived-after", "90s"])).await;
    assert!(numbers(&run).is_empty());
    let run = scan(args(&[
        "--arrived-after",
        "3650d",
        "--arrived-before",
        "now",
    ]))
    .await;
    assert_eq!(numbers(&run).len(), 12);

    // Archive time: record i archived at BASE + 100 i; [BASE+200, BASE+500) is 2, 3, 4.
    let run = scan(args(&[
        "--archived-after",
        "2026-05-01T10:03:20Z",
        "--archived-before",
        "2026-05-01T10:08:20Z",
    ]))
    .await;
    assert_eq!(numbers(&run), [2, 3, 4]);

    // query: the arrival window within one key (k1: records 1, 4, 7, 10).
    let run = kinarch(
        &w.moto,
        &[
            "query",
            "orders",
            "k1",
            "--arrived-after",
            &(BASE + 40).to_string(),
            "--arrived-before",
            &(BASE + 100).to_string(),
        ],
    )
    .await;
    assert_eq!(numbers(&run), [4, 7]);

    // reinject: the window, and nothing else, arrives in the target, in order per key.
    let run = kinarch(
        &w.moto,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--arrived-after",
            "2026-05-01T10:00:30Z",
            "--arrived-before",
            "2026-05-01T10:01:30Z",
        ],
    )
    .await;
    run.ok();
    let replayed = kinesis::read_all(&w.kinesis, "replay").await;
    let mut sent: Vec<(String, String)> = replayed
        .iter()
        .map(|r| {
            (
                r.partition_key.clone(),
                String::from_utf8(r.data.clone()).unwrap(),
            )
        })
        .collect();
    let per_key = |key: &str| -> Vec<String> {
        sent.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, d)| d.clone())
            .collect()
    };
    assert_eq!(per_key("k0"), ["r3", "r6"]);
    assert_eq!(per_key("k1"), ["r4", "r7"]);
    assert_eq!(per_key("k2"), ["r5", "r8"]);
    sent.sort();
    assert_eq!(sent.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_without_a_zone_and_empty_windows_are_usage_errors() {
    let w = world().await;
    for (args, expected) in [
        (
            vec!["scan", "orders", "--arrived-after", "2026-05-01T10:00:00"],
            "add Z for UTC",
        ),
        (
            vec![
                "scan",
                "orders",
                "--arrived-after",
                "2h",
                "--arrived-before",
                "3h",
            ],
            "selects nothing",
        ),
        (
            vec![
                "scan",
                "orders",
                "--archived-after",
                "2026-05-02",
                "--archived-before",
                "2026-05-02",
            ],
            "selects nothing",
        ),
        (
            vec![
                "query",
                "orders",
                "k1",
                "--arrived-after",
                "now",
                "--arrived-before",
                "1d",
            ],
            "selects nothing",
        ),
        (
            vec![
                "reinject",
                "orders",
                "--target",
                "replay",
                "--arrived-before",
                "yesterday",
            ],
            "a duration ago",
        ),
    ] {
        let run = kinarch(&w.moto, &args).await;
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert!(kinesis::read_all(&w.kinesis, "replay").await.is_empty());
}

/// `--pace original --speed 20`: the records of a window go in arrival order with their
/// gaps divided by 20: 40 s of arrivals take at least 2 s (a lower bound only: a slow
/// machine may take longer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_pace_keeps_arrival_order_and_the_gaps_divided_by_the_speed() {
    let w = world().await;
    let started = std::time::Instant::now();
    let run = kinarch(
        &w.moto,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--arrived-before",
            &(BASE + 41).to_string(),
            "--pace",
            "original",
            "--speed",
            "20",
        ],
    )
    .await;
    let took = started.elapsed();
    run.ok();
    assert!(
        took >= std::time::Duration::from_millis(1900),
        "40 s of arrivals at speed 20 take at least 2 s, took {took:?}"
    );
    let sent: Vec<String> = kinesis::read_all(&w.kinesis, "replay")
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect();
    assert_eq!(sent, ["r0", "r1", "r2", "r3", "r4"], "arrival order");
    let bad = kinarch(
        &w.moto,
        &[
            "reinject", "orders", "--target", "replay", "--pace", "original", "--speed", "0",
        ],
    )
    .await;
    bad.expect_code(2);
    assert!(bad.stderr.contains("above 0"), "{}", bad.stderr);
}

/// `--estimate` reads a window without sending and says what the real replay then sends:
/// the same records, bytes, keys and arrival span; at most as many calls as it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estimate_of_a_window_is_what_the_replay_then_sends() {
    let w = world().await;
    let window = [
        "--arrived-after",
        "2026-05-01T10:00:20Z",
        "--arrived-before",
        "2026-05-01T10:01:30Z",
    ];
    let mut args = vec!["reinject", "orders", "--target", "replay", "-o", "json"];
    args.extend(window);
    let mut with_estimate = args.clone();
    with_estimate.extend([
        "--estimate",
        "--pace",
        "original",
        "--speed",
        "10",
        "--rate",
        "2",
    ]);
    let run = kinarch(&w.moto, &with_estimate).await;
    let estimate: serde_json::Value = serde_json::from_slice(&run.ok().stdout).unwrap();
    assert!(
        kinesis::read_all(&w.kinesis, "replay").await.is_empty(),
        "an estimate sends nothing"
    );
    // Records 2..=8: 7 records over 3 keys, arrived from 10:00:20 to 10:01:20.
    assert_eq!(estimate["records"], 7);
    assert_eq!(estimate["keys"], 3);
    assert_eq!(estimate["shards"], 1);
    assert_eq!(estimate["firstArrival"], "2026-05-01T10:00:20.000Z");
    assert_eq!(estimate["lastArrival"], "2026-05-01T10:01:20.000Z");
    // 60 s of arrivals at speed 10: 6 s; 7 records at 2/s: 3 s; the longer wins.
    assert_eq!(estimate["seconds"], 6.0);
    let text = kinarch(
        &w.moto,
        &[&with_estimate[..4], &["--estimate"], &window[..]].concat(),
    )
    .await;
    assert!(text.ok().stderr.contains("7 record(s)"), "{}", text.stderr);

    let sent = kinarch(&w.moto, &args).await;
    let report: serde_json::Value = serde_json::from_slice(&sent.ok().stdout).unwrap();
    let replayed = kinesis::read_all(&w.kinesis, "replay").await;
    assert_eq!(replayed.len() as u64, estimate["records"].as_u64().unwrap());
    assert_eq!(report["sent"], estimate["records"]);
    assert_eq!(report["bytes"], estimate["bytes"]);
    let bytes: usize = replayed.iter().map(|r| r.data.len()).sum();
    assert_eq!(bytes as u64, estimate["bytes"].as_u64().unwrap());
    assert!(
        estimate["putRecordsCalls"].as_u64().unwrap() <= report["requests"].as_u64().unwrap(),
        "{estimate} vs {report}"
    );
}

/// The estimate counts the bytes the replay sends, frames included (issue 28): for a raw
/// and a `--metadata` replay of the same window, estimate = dry run = sent (records and
/// bytes), and the framed bytes are those that arrive in the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_dry_run_and_replay_agree_with_and_without_frames() {
    let w = world().await;
    let mut seen_bytes = Vec::new();
    for (framing, target) in [(None, "replay"), (Some("--metadata"), "replay-framed")] {
        if target != "replay" {
            kinesis::create_stream(&w.kinesis, target, 1).await;
        }
        let mut args = vec![
            "reinject",
            "orders",
            "--target",
            target,
            "--arrived-after",
            "2026-05-01T10:00:20Z",
            "-o",
            "json",
        ];
        args.extend(framing);
        let estimate = kinarch(&w.moto, &[&args[..], &["--estimate"]].concat())
            .await
            .json();
        let dry = kinarch(&w.moto, &[&args[..], &["--dry-run"]].concat())
            .await
            .json();
        let sent = kinarch(&w.moto, &args).await.json();
        let arrived: u64 = kinesis::read_all(&w.kinesis, target)
            .await
            .iter()
            .map(|r| r.data.len() as u64)
            .sum();
        assert_eq!(estimate["records"], 10, "{framing:?}: {estimate}");
        assert_eq!(dry["wouldSend"], estimate["records"], "{framing:?}");
        assert_eq!(sent["sent"], estimate["records"], "{framing:?}");
        assert_eq!(dry["bytes"], estimate["bytes"], "{framing:?}: {dry}");
        assert_eq!(sent["bytes"], estimate["bytes"], "{framing:?}: {sent}");
        assert_eq!(Some(arrived), estimate["bytes"].as_u64(), "{framing:?}");
        seen_bytes.push(arrived);
    }
    assert!(
        seen_bytes[1] > seen_bytes[0] + 10 * 100,
        "each frame adds its metadata header: {seen_bytes:?}"
    );
}
