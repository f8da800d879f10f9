//! `kinarch reinject --target-function`: a replay straight into a consumer function, through
//! the loopback Invoke endpoint ([`kinarch_tests::invoke`]).

use chrono::Utc;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli;
use kinarch_tests::dynamo;
use kinarch_tests::invoke::{Consumer, InvokeEndpoint};
use kinarch_tests::lambda::{Invocation, LambdaFunction};
use kinarch_tests::world::World;
use serde_json::{Value, json};

fn record(i: u64, shards: u64) -> ArchiveRecord {
    ArchiveRecord {
        partition_key: format!("key-{}", i % 5),
        sequence_number: SequenceNumber::parse(&(i + 1).to_string()).unwrap(),
        shard_id: format!("shardId-00000000000{}", i % shards),
        approximate_arrival_timestamp: 1_777_629_600.0 + i as f64 / 1000.0,
        data: format!("{{\"n\":{i}}}").into_bytes(),
        last_update: Some("2026-05-01 10:00:00".into()),
        expire_after: None,
        oversize_bytes: None,
        sub_sequence_number: None,
        explicit_hash_key: None,
        stored: None,
    }
}

/// Runs `kinarch ARGS` against `world`'s moto with the function's endpoint.
async fn kinarch(world: &World, endpoint: &InvokeEndpoint, args: &[&str]) -> cli::Run {
    let mut env = world.moto.env();
    env.push(endpoint.env());
    let mut command = cli::command_with_env(&env);
    command.args(args);
    cli::run_command(command, None).await
}

/// The sequence numbers of an event's records.
fn sequences(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
        .collect()
}

fn script(answer: impl Fn(&Value) -> Invocation + Send + Sync + 'static) -> Consumer {
    Consumer::Script(Box::new(answer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archiver_function_rebuilds_the_archive_item_for_item() {
    let source = World::start().await;
    let records: Vec<ArchiveRecord> = (0..40).map(|i| record(i, 2)).collect();
    source.archived("orders", 2, &records, Utc::now()).await;
    let stream_arn = kinarch_tests::kinesis::create_stream(&source.kinesis, "probe", 1).await;
    // A second account's copy: the same stream name, set up, its table empty.
    let copy = World::start().await;
    copy.set_up("orders", 2, "ALL", &[]).await;
    let archiver =
        LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &copy.moto.env()).await;
    let endpoint = InvokeEndpoint::start(Consumer::Binary(archiver), 0).await;

    let run = kinarch(
        &source,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target-function",
            "archiver",
            "--batch-size",
            "7",
            "-o",
            "json",
        ],
    )
    .await;
    run.ok();
    let summary = run.json();
    assert_eq!(summary["delivered"], 40);
    // 20 records per shard in batches of 7: 3 invocations each.
    assert_eq!(summary["invocations"], 6);

    let table = "orders-archive-ALL";
    let original = dynamo::archived(&source.items(table).await);
    let rebuilt = dynamo::archived(&copy.items(table).await);
    assert_eq!(rebuilt, original);
    // Each event is the mapping's: the source stream's ARN, per shard in sequence order.
    let arn_prefix = stream_arn.trim_end_matches("probe");
    for event in endpoint.events() {
        let first = &event["Records"][0];
        assert_eq!(first["eventSource"], "aws:kinesis");
        assert_eq!(first["eventSourceARN"], format!("{arn_prefix}orders"));
        let shard = first["eventID"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned();
        let numbers: Vec<u64> = sequences(&event)
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        for r in event["Records"].as_array().unwrap() {
            assert!(r["eventID"].as_str().unwrap().starts_with(&shard));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_are_delivered_again_from_the_first_failed_record() {
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..10).map(|i| record(i, 1)).collect();
    world.archived("orders", 1, &records, Utc::now()).await;
    let failed_once = std::sync::Mutex::new(false);
    // The first event: records 4 and 6 fail.
    let endpoint = InvokeEndpoint::start(
        script(move |_event| {
            let mut failed = failed_once.lock().unwrap();
            if *failed {
                return Invocation::Response(json!({"batchItemFailures": []}));
            }
            *failed = true;
            Invocation::Response(json!({"batchItemFailures": [
                {"itemIdentifier": "6"}, {"itemIdentifier": "4"}
            ]}))
        }),
        0,
    )
    .await;
    let run = kinarch(
        &world,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target-function",
            "consumer",
            "-o",
            "json",
        ],
    )
    .await;
    run.ok();
    assert_eq!(run.json()["delivered"], 10);
    assert_eq!(run.json()["retried"], 1);
    let events = endpoint.events();
    assert_eq!(events.len(), 2);
    let all: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    assert_eq!(sequences(&events[0]), all);
    assert_eq!(sequences(&events[1]), all[3..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_always_fails_stops_its_shard_and_lists_the_rest() {
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..6).map(|i| record(i, 2)).collect();
    world.archived("orders", 2, &records, Utc::now()).await;
    let endpoint = InvokeEndpoint::start(
        script(|event| {
            // Shard 1 always fails; shard 0 is taken.
            match event["Records"][0]["eventID"]
                .as_str()
                .unwrap()
                .starts_with("shardId-000000000001")
            {
                true => {
                    Invocation::Error(json!({"errorType": "Boom", "errorMessage": "no database"}))
                }
                false => Invocation::Response(Value::Null),
            }
        }),
        0,
    )
    .await;
    let run = kinarch(
        &world,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target-function",
            "consumer",
            "--function-attempts",
            "2",
            "-o",
            "json",
        ],
    )
    .await;
    run.expect_code(1);
    let summary: Value = serde_json::from_str(&run.out()).unwrap();
    assert_eq!(summary["delivered"], 3);
    assert_eq!(summary["failed"], 3);
    assert_eq!(
        summary["stoppedShards"][0]["shardId"],
        "shardId-000000000001"
    );
    assert!(run.stderr.contains("Boom: no database"), "{}", run.stderr);
    for sequence in ["2", "4", "6"] {
        assert!(
            summary["failures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["sequenceNumber"] == sequence),
            "{summary}"
        );
    }
    // Two attempts of shard 1's batch, one of shard 0's.
    assert_eq!(endpoint.events().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_invocations_are_made_again() {
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..4).map(|i| record(i, 1)).collect();
    world.archived("orders", 1, &records, Utc::now()).await;
    let endpoint = InvokeEndpoint::start(script(|_| Invocation::Response(Value::Null)), 5).await;
    let run = kinarch(
        &world,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target-function",
            "consumer",
            "-o",
            "json",
        ],
    )
    .await;
    run.ok();
    assert_eq!(run.json()["delivered"], 4);
    assert_eq!(endpoint.throttled(), 5);
    assert_eq!(endpoint.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_function_flags_are_usage_errors() {
    let world = World::start().await;
    let endpoint = InvokeEndpoint::start(script(|_| Invocation::Response(Value::Null)), 0).await;
    for args in [
        &[
            "reinject",
            "orders",
            "--target-function",
            "f",
            "--target",
            "other",
        ][..],
        &[
            "reinject",
            "orders",
            "--target-function",
            "f",
            "--batch-size",
            "0",
        ],
        &[
            "reinject",
            "orders",
            "--target-function",
            "f",
            "--batch-size",
            "10001",
        ],
        &["reinject", "orders", "--target-function", "f", "--metadata"],
        &["reinject", "orders", "--batch-size", "5"],
    ] {
        let run = kinarch(&world, &endpoint, args).await;
        run.expect_code(2);
    }
    assert!(endpoint.events().is_empty());
}
