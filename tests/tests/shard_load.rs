//! `reinject --max-shard-load PCT` (issue 27): each target shard held to its share of the
//! write limit, by each record's hash key, with one hot key; throttling halves a shard's
//! budget; `--estimate` reports the busiest target shard. Rates are checked where Kinesis
//! measures them, at the receiving end (the proxy), as upper bounds over 1 s windows.

use std::collections::BTreeMap;

use kinarch_core::domain::shard_load::ShardMap;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{command_with_env, run_command};
use kinarch_tests::kinesis;
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::world::World;

/// 2026-05-01T10:00:00Z.
const BASE: f64 = 1_777_629_600.0;

/// `count` records: every other one of the key `hot`, the rest over 39 keys.
fn records(count: usize) -> Vec<ArchiveRecord> {
    (0..count)
        .map(|i| {
            let key = match i % 2 {
                0 => "hot".to_owned(),
                _ => format!("key-{}", i % 39),
            };
            ArchiveRecord::received(
                key,
                SequenceNumber::parse(&format!("{}", 100 + i)).unwrap(),
                "shardId-000000000000".into(),
                BASE + i as f64 / 100.0,
                format!("record {i}").into_bytes(),
            )
        })
        .collect()
}

/// The target's shards as the test sees them (ListShards through the harness's client).
async fn shard_map(w: &World, stream: &str) -> ShardMap {
    let shards = kinarch_core::aws::streams::list_shards(
        &w.kinesis,
        &kinarch_core::StreamName::new(stream).unwrap(),
        None,
    )
    .await
    .unwrap();
    kinarch_core::aws::streams::shard_map(&shards)
}

/// The most records any target shard received in a 1 s window starting in `starts`
/// (milliseconds since the proxy started), per shard.
fn busiest_windows(
    arrivals: &[(u128, Vec<String>)],
    map: &ShardMap,
    starts: std::ops::RangeInclusive<u128>,
) -> BTreeMap<String, usize> {
    let mut per_shard: BTreeMap<String, Vec<u128>> = BTreeMap::new();
    for (at, keys) in arrivals {
        for key in keys {
            let shard = map.shard_of(key, None).unwrap().to_owned();
            per_shard.entry(shard).or_default().push(*at);
        }
    }
    per_shard
        .into_iter()
        .map(|(shard, times)| {
            let most = times
                .iter()
                .filter(|start| starts.contains(start))
                .map(|start| {
                    times
                        .iter()
                        .filter(|t| **t >= *start && **t < start + 1000)
                        .count()
                })
                .max()
                .unwrap_or(0);
            (shard, most)
        })
        .collect()
}

/// `reinject orders --target replay --max-shard-load 10 -o json` through `proxy`, with
/// `extra`; its summary.
async fn replay_at_10_percent(w: &World, proxy: &FaultProxy, extra: &[&str]) -> serde_json::Value {
    let mut command = command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args([
        "reinject",
        "orders",
        "--target",
        "replay",
        "--max-shard-load",
        "10",
        "-o",
        "json",
    ]);
    command.args(extra);
    run_command(command, None).await.ok().json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_shard_gets_more_than_its_share_in_any_second() {
    let w = World::start().await;
    w.archived("orders", 1, &records(400), chrono::Utc::now())
        .await;
    w.stream("replay", 4).await;
    let map = shard_map(&w, "replay").await;
    let hot_shard = map.shard_of("hot", None).unwrap().to_owned();

    // The estimate names the hot key's shard: 200 records at 100 a second.
    let estimate = w
        .kinarch(&[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--max-shard-load",
            "10",
            "--estimate",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(estimate["busiestTargetShard"], hot_shard.as_str());
    let busiest = estimate["busiestTargetShardSeconds"].as_f64().unwrap();
    assert!((2.0..2.5).contains(&busiest), "{estimate}");
    assert!(estimate["seconds"].as_f64().unwrap() >= busiest);

    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let summary = replay_at_10_percent(&w, &proxy, &[]).await;
    assert_eq!(summary["sent"], 400);
    assert_eq!(kinesis::read_all(&w.kinesis, "replay").await.len(), 400);
    let windows = busiest_windows(&proxy.put_records_keys(), &map, 0..=u128::MAX);
    assert!(
        windows.values().all(|most| *most <= 100),
        "10% of 1,000 records a second per shard: {windows:?}"
    );
    assert!(
        windows[&hot_shard] > 50,
        "the hot shard was used up to its share: {windows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_halves_the_shards_budget_and_is_reported_per_shard() {
    let w = World::start().await;
    w.archived("orders", 1, &records(400), chrono::Utc::now())
        .await;
    w.stream("replay", 4).await;
    let map = shard_map(&w, "replay").await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    // The first call is throttled whole, as Kinesis does when live producers fill the
    // shards.
    proxy.set_rule(|call| {
        if call.operation() != "PutRecords" || call.nth_of_target > 0 {
            return None;
        }
        let entries = serde_json::from_str::<serde_json::Value>(&call.body).ok()?["Records"]
            .as_array()?
            .len();
        Some(Fault::FailEntries((0..entries).collect()))
    });
    let summary = replay_at_10_percent(&w, &proxy, &["--concurrency", "1"]).await;
    assert_eq!(summary["sent"], 400);
    let throttled: u64 = summary["throttledByShard"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(throttled, proxy.injected(), "{summary}");
    // After the throttled call, each shard throttled in it gets half its share: at most 50
    // records in a second, and a tenth of the cap more once a calm second has passed. So no
    // window that ends within 2 s of the throttling holds more than 60 (the share is 100).
    let arrivals = proxy.put_records_keys();
    let throttled_at = arrivals[0].0;
    let windows = busiest_windows(&arrivals[1..], &map, throttled_at..=throttled_at + 1000);
    assert!(
        windows.values().all(|most| *most <= 60),
        "halved from 100 a second: {windows:?}"
    );
}
