//! The time index (issue 13): `kinarch setup --time-index` on a table that already holds
//! records, `status` showing it, and arrival windows read through it (a Query per shard,
//! merged by arrival) by `scan`, `reinject` and `--segment` workers: the same records as a
//! Scan, in arrival order, with the edges right; a Scan again once the stream is gone.
//!
//! Items are written straight into the table so that arrival times are chosen by the test:
//! record i (key `k{i % 8}`, in shard `key % 4`, sequence number 1000 + i) arrived at
//! BASE + i / 8 seconds, so every shard holds two records of each second (a tie that
//! DynamoDB returns in any order, broken by sequence number), and payload `r{i}`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{Run, kinarch};
use kinarch_tests::kinesis;
use kinarch_tests::moto::Moto;
use kinarch_tests::world::World;
use serde_json::Value;

/// 2026-05-01T10:00:00Z.
const BASE: i64 = 1_777_629_600;
const RECORDS: i64 = 200;
/// The window of the tests: seconds 5 (inclusive) to 20 (exclusive), records 40..160.
const AFTER: i64 = BASE + 5;
const BEFORE: i64 = BASE + 20;

/// Stream `orders` (4 shards, ALL) with its 200 archived records and the time index; an
/// empty stream `replay` with 4 shards.
async fn world() -> World {
    let w = World::start().await;
    let records: Vec<ArchiveRecord> = (0..RECORDS)
        .map(|i| {
            let key = i % 8;
            ArchiveRecord::received(
                format!("k{key}"),
                SequenceNumber::parse(&(1000 + i).to_string()).unwrap(),
                format!("shardId-{:012}", key % 4),
                (BASE + i / 8) as f64,
                format!("r{i}").into_bytes(),
            )
        })
        .collect();
    let archived_at = Utc.timestamp_opt(BASE + 3600, 0).unwrap();
    w.archived("orders", 4, &records, archived_at).await;
    w.stream("replay", 4).await;
    w
}

/// The record numbers a run printed (payloads `r<i>`, one per line), in printed order.
fn printed(run: &Run) -> Vec<i64> {
    run.ok()
        .out()
        .lines()
        .map(|l| l.trim_start_matches('r').parse().unwrap())
        .collect()
}

fn window_args() -> Vec<String> {
    vec![
        "--arrived-after".into(),
        AFTER.to_string(),
        "--arrived-before".into(),
        BEFORE.to_string(),
    ]
}

async fn scan(w: &World, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["scan".into(), "orders".into()];
    args.extend(window_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    kinarch(&w.moto, &refs).await
}

async fn add_index(w: &World) {
    let setup = kinarch(
        &w.moto,
        &["setup", "orders", "ALL", "--time-index", "--yes"],
    )
    .await;
    let text = setup.ok().out();
    assert!(
        text.contains("add index kinarch-arrival-time to table orders-archive-ALL"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_through_the_index_is_the_scan_s_window_in_arrival_order() {
    let w = world().await;
    let window: Vec<i64> = (40..160).collect();

    // Before the index: a Scan, and -v says why.
    let before = scan(&w, &["-v"]).await;
    assert!(before.stderr.contains("no time index"), "{}", before.stderr);
    let mut scanned = printed(&before);
    scanned.sort();
    assert_eq!(scanned, window);
    let status = kinarch(&w.moto, &["status", "orders"]).await;
    assert!(
        status.out().contains("time index") && status.out().contains("none"),
        "{}",
        status.out()
    );

    add_index(&w).await;
    let again = kinarch(
        &w.moto,
        &["setup", "orders", "ALL", "--time-index", "--yes"],
    )
    .await;
    assert!(
        again
            .ok()
            .out()
            .contains("table orders-archive-ALL has time index kinarch-arrival-time"),
        "a second setup finds it: {}",
        again.out()
    );
    let status = kinarch(&w.moto, &["status", "orders", "-o", "json"]).await;
    let status: Value = serde_json::from_slice(&status.ok().stdout).unwrap();
    assert_eq!(status["table"]["timeIndex"]["name"], "kinarch-arrival-time");
    assert_eq!(status["table"]["timeIndex"]["active"], true);

    // Through the index, with pages of 3 items so that the ties of a second straddle pages:
    // exactly the window, in arrival order (then sequence order), which here is i's order.
    let indexed = scan(&w, &["-v", "--page-size", "3"]).await;
    assert!(
        indexed.stderr.contains("through the time index") && indexed.stderr.contains("shards=4"),
        "{}",
        indexed.stderr
    );
    assert_eq!(printed(&indexed), window);
    // It read the window, not the table: its 120 records and the 8 at its exclusive end,
    // which the key condition's BETWEEN includes and kinarch drops.
    let reads = indexed
        .stderr
        .lines()
        .find(|l| l.contains("DynamoDB reads"))
        .unwrap_or_else(|| panic!("{}", indexed.stderr));
    assert!(reads.contains("items_read=128"), "{reads}");

    // One-sided windows, other filters on top, and the Scan on request: the same records.
    let upto = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--arrived-before",
            &(BASE + 2).to_string(),
        ],
    )
    .await;
    assert_eq!(printed(&upto), (0..16).collect::<Vec<_>>());
    let from = kinarch(
        &w.moto,
        &[
            "scan",
            "orders",
            "--arrived-after",
            &(BASE + 24).to_string(),
            "--from-seq",
            "1195",
        ],
    )
    .await;
    assert_eq!(printed(&from), (195..200).collect::<Vec<_>>());
    let forced = scan(&w, &["--no-time-index", "-v"]).await;
    assert!(!forced.stderr.contains("through the time index"));
    let mut forced = printed(&forced);
    forced.sort();
    assert_eq!(forced, window);

    // The stream is gone: its shards are unknown, so the window is scanned, and -v says so.
    w.kinesis
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let gone = kinarch(
        &w.moto,
        &[
            &["scan", "orders", "-v"][..],
            &window_args().iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    )
    .await;
    assert!(
        gone.stderr.contains("shards cannot be listed"),
        "{}",
        gone.stderr
    );
    let mut gone = printed(&gone);
    gone.sort();
    assert_eq!(gone, window);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_through_the_index_keeps_arrival_order_per_shard_and_key_and_workers_split_by_shard()
 {
    let w = world().await;
    add_index(&w).await;

    let mut args: Vec<String> = vec![
        "reinject".into(),
        "orders".into(),
        "--target".into(),
        "replay".into(),
        "-v".into(),
    ];
    args.extend(window_args());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let replay = kinarch(&w.moto, &refs).await;
    assert!(
        replay.ok().stderr.contains("through the time index"),
        "{}",
        replay.stderr
    );
    let sent = kinesis::read_all(&w.kinesis, "replay").await;
    let number = |r: &kinesis::StreamRecord| -> i64 {
        String::from_utf8_lossy(&r.data)
            .trim_start_matches('r')
            .parse()
            .unwrap()
    };
    let all: BTreeSet<i64> = sent.iter().map(number).collect();
    assert_eq!(sent.len(), 120, "each record once");
    assert_eq!(all, (40..160).collect());
    // In the target, each shard's records (read in its order) and each key's are in the
    // order they arrived at the source: i's order.
    let mut by_shard: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut by_key: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for record in &sent {
        by_shard
            .entry(&record.shard_id)
            .or_default()
            .push(number(record));
        by_key
            .entry(&record.partition_key)
            .or_default()
            .push(number(record));
    }
    assert_eq!(by_key.len(), 8);
    for (what, lists) in [("shard", &by_shard), ("key", &by_key)] {
        for (name, list) in lists {
            assert!(
                list.windows(2).all(|p| p[0] < p[1]),
                "{what} {name} out of order: {list:?}"
            );
        }
    }

    // Four workers: with the index each takes a share of the shards, and says so; together
    // they are the window, each record once, each worker's in arrival order.
    let mut union = Vec::new();
    for i in 0..4 {
        let worker = scan(&w, &["-v", "--segment", &format!("{i}/4")]).await;
        assert!(
            worker.stderr.contains("splits by shard"),
            "{}",
            worker.stderr
        );
        let mine = printed(&worker);
        assert!(mine.windows(2).all(|p| p[0] < p[1]), "{mine:?}");
        // One shard each: keys s and s + 4.
        assert_eq!(mine.len(), 30, "{mine:?}");
        union.extend(mine);
    }
    union.sort();
    assert_eq!(union, (40..160).collect::<Vec<_>>());
}

/// Defect 4 of issue 23: `setup --time-index` on a new table creates the table with the
/// index (one CreateTable, no UpdateTable and no backfill to wait for), and a window is then
/// read through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_table_is_created_with_its_time_index() {
    use kinarch_tests::proxy::FaultProxy;
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    kinesis::create_stream(&aws_sdk_kinesis::Client::new(&sdk), "fresh", 2).await;
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let operations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&operations);
    proxy.set_rule(move |call| {
        seen.lock().unwrap().push(call.operation().to_owned());
        None
    });
    let env = moto.env_via(&proxy.endpoint());
    let mut command = kinarch_tests::cli::command_with_env(&env);
    command.args(["setup", "fresh", "ALL", "--time-index", "--yes"]);
    let setup = kinarch_tests::cli::run_command(command, None).await;
    assert!(
        setup.ok().out().contains(
            "create table fresh-archive-ALL with key HASH partitionKey (S) + RANGE \
             sequenceNumber (S) (on-demand billing) and index kinarch-arrival-time"
        ),
        "{}",
        setup.out()
    );
    let calls = operations.lock().unwrap().clone();
    assert_eq!(
        calls.iter().filter(|c| *c == "CreateTable").count(),
        1,
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c == "UpdateTable"), "{calls:?}");
    let status = kinarch(&moto, &["status", "fresh", "-o", "json"])
        .await
        .json();
    assert_eq!(status["table"]["timeIndex"]["name"], "kinarch-arrival-time");
    assert_eq!(status["table"]["timeIndex"]["active"], true);
    kinesis::put(&aws_sdk_kinesis::Client::new(&sdk), "fresh", "k", b"one").await;
    kinarch(&moto, &["archive", "fresh"]).await.ok();
    let window = kinarch(&moto, &["scan", "fresh", "--arrived-after", "1h", "-v"]).await;
    assert_eq!(window.ok().out(), "one\n");
    assert!(
        window.stderr.contains("through the time index"),
        "{}",
        window.stderr
    );
}
