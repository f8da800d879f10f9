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

/// `reinject orders --target-function consumer -o json`.
const TO_CONSUMER: [&str; 6] = [
    "reinject",
    "orders",
    "--target-function",
    "consumer",
    "-o",
    "json",
];
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
    let run = kinarch(&world, &endpoint, &TO_CONSUMER).await;
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
    let run = kinarch(&world, &endpoint, &TO_CONSUMER).await;
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

/// `(shard, sequence)` of every record of `events`, in the order delivered.
fn delivered(events: &[Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .flat_map(|event| event["Records"].as_array().unwrap().clone())
        .map(|r| {
            let shard = r["eventID"].as_str().unwrap().split(':').next().unwrap();
            let sequence = r["kinesis"]["sequenceNumber"].as_str().unwrap();
            (shard.to_owned(), sequence.parse().unwrap())
        })
        .collect()
}

/// A journal path of its own for `name`, none there yet.
fn journal_path(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("kinarch-fn-journal-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("replay.journal");
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_answers_the_batches_in_flight_and_a_rerun_delivers_the_rest() {
    const RECORDS: u64 = 60;
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..RECORDS).map(|i| record(i, 2)).collect();
    world.archived("orders", 2, &records, Utc::now()).await;
    // A slow consumer (150 ms an event, one event at a time): 12 events take ~2 s, and the
    // signal comes while one is being handled.
    let endpoint = InvokeEndpoint::start(
        script(|_| {
            std::thread::sleep(std::time::Duration::from_millis(150));
            Invocation::Response(json!({"batchItemFailures": []}))
        }),
        0,
    )
    .await;
    let journal = journal_path("ctrl-c");
    let journal_arg = journal.to_str().unwrap();
    let args = [
        "reinject",
        "orders",
        "--target-function",
        "consumer",
        "--batch-size",
        "5",
        "--journal",
        journal_arg,
        "-o",
        "json",
    ];
    let mut env = world.moto.env();
    env.push(endpoint.env());
    let running = cli::Running::start(&env, &args);
    kinarch_tests::world::eventually("3 events", std::time::Duration::from_secs(60), || {
        std::future::ready((endpoint.events().len() >= 3).then_some(()))
    })
    .await;
    running.signal("INT");
    let first = running.wait().await;
    assert_eq!(first.code, 130, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("each shard's batch in flight answered"),
        "{}",
        first.stderr
    );
    let summary: Value = serde_json::from_str(&first.out()).unwrap();
    assert_eq!(summary["stopped"], true, "{summary}");
    // Every event the function got was answered and counted: none was left unanswered.
    let first_events = endpoint.events();
    let first_records = delivered(&first_events);
    assert_eq!(
        summary["delivered"],
        first_records.len() as u64,
        "{summary}"
    );
    assert_eq!(summary["invocations"], first_events.len() as u64);
    assert!(
        (first_records.len() as u64) < RECORDS,
        "stopped in the middle: {summary}"
    );
    assert_eq!(
        summary["unsent"],
        RECORDS - first_records.len() as u64,
        "{summary}"
    );
    assert!(journal.exists(), "the stop saved the journal");

    let second = kinarch(&world, &endpoint, &args).await;
    second.ok();
    let rerun = second.json();
    assert_eq!(rerun["skippedByJournal"], first_records.len() as u64);
    assert_eq!(
        rerun["delivered"],
        RECORDS - first_records.len() as u64,
        "{rerun}"
    );
    assert!(
        second
            .stderr
            .contains("were delivered by an earlier run and are not delivered again"),
        "{}",
        second.stderr
    );
    // Across both runs: every archived record once, each shard in sequence order.
    let all_events = endpoint.events();
    let second_records = delivered(&all_events[first_events.len()..]);
    let mut by_shard: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for (shard, sequence) in first_records.iter().chain(&second_records) {
        by_shard.entry(shard.clone()).or_default().push(*sequence);
    }
    for (s, shard) in ["shardId-000000000000", "shardId-000000000001"]
        .iter()
        .enumerate()
    {
        let expected: Vec<u64> = (0..RECORDS)
            .filter(|i| i % 2 == s as u64)
            .map(|i| i + 1)
            .collect();
        assert_eq!(
            by_shard[*shard], expected,
            "{shard}: each record once, in order"
        );
    }
    let _ = std::fs::remove_dir_all(journal.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_replays_journal_is_refused_for_a_function_replay() {
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..8).map(|i| record(i, 1)).collect();
    world.archived("orders", 1, &records, Utc::now()).await;
    kinarch_tests::kinesis::create_stream(&world.kinesis, "copy", 1).await;
    let endpoint = InvokeEndpoint::start(script(|_| Invocation::Response(Value::Null)), 0).await;
    let journal = journal_path("stream-then-function");
    let journal_arg = journal.to_str().unwrap();
    let stream = kinarch(
        &world,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target",
            "copy",
            "--journal",
            journal_arg,
        ],
    )
    .await;
    stream.ok();
    assert!(journal.exists());
    let kept = std::fs::read(&journal).unwrap();

    let function = kinarch(
        &world,
        &endpoint,
        &[
            "reinject",
            "orders",
            "--target-function",
            "consumer",
            "--journal",
            journal_arg,
        ],
    )
    .await;
    function.expect_code(2);
    assert!(
        function.stderr.contains("was made for another replay"),
        "{}",
        function.stderr
    );
    // The fields that differ: the stream target then, the function now.
    assert!(
        function
            .stderr
            .contains("--target-function not given in the journal, consumer now"),
        "{}",
        function.stderr
    );
    assert!(
        function.stderr.contains("--target copy in the journal"),
        "{}",
        function.stderr
    );
    assert!(endpoint.events().is_empty());
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        kept,
        "the journal is left as it was"
    );
    let _ = std::fs::remove_dir_all(journal.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_and_dry_run_count_the_events_and_invoke_nothing() {
    let world = World::start().await;
    let records: Vec<ArchiveRecord> = (0..23).map(|i| record(i, 2)).collect();
    world.archived("orders", 2, &records, Utc::now()).await;
    let endpoint = InvokeEndpoint::start(script(|_| Invocation::Response(Value::Null)), 0).await;
    let base = [
        "reinject",
        "orders",
        "--target-function",
        "consumer",
        "--batch-size",
        "5",
    ];

    let estimate = kinarch(
        &world,
        &endpoint,
        &[&base[..], &["--estimate", "-o", "json"]].concat(),
    )
    .await;
    estimate.ok();
    let e = estimate.json();
    assert_eq!(e["targetFunction"], "consumer");
    assert_eq!(e["records"], 23);
    assert_eq!(e["eventRecords"], 23);
    assert_eq!(e["shards"], 2);
    // 12 and 11 records in batches of 5: 3 events each.
    assert_eq!(e["invocations"], 6);
    assert_eq!(e["undeliverable"], 0);
    let estimated_bytes = e["bytes"].as_u64().unwrap();
    assert!(estimated_bytes > 0, "{e}");
    let text = kinarch(&world, &endpoint, &[&base[..], &["--estimate"]].concat()).await;
    text.ok();
    assert!(
        text.stderr
            .contains("estimate for function consumer: 23 record(s)")
            || text
                .out()
                .contains("estimate for function consumer: 23 record(s)"),
        "{}\n{}",
        text.out(),
        text.stderr
    );

    let journal = journal_path("dry-run");
    let journal_arg = journal.to_str().unwrap();
    let dry = kinarch(
        &world,
        &endpoint,
        &[
            &base[..],
            &["--dry-run", "--journal", journal_arg, "-o", "json"],
        ]
        .concat(),
    )
    .await;
    dry.ok();
    let d = dry.json();
    assert_eq!(d["dryRun"], true);
    assert_eq!(d["delivered"], 0);
    assert_eq!(d["wouldDeliver"], 23);
    assert_eq!(d["invocations"], 6);
    // The dry run builds the very events the estimate counted.
    assert_eq!(d["bytes"].as_u64().unwrap(), estimated_bytes);
    assert!(!journal.exists(), "a dry run writes no journal");

    // As text: one line per record that would go, shard by shard in sequence order.
    let listed = kinarch(&world, &endpoint, &[&base[..], &["--dry-run"]].concat()).await;
    listed.ok();
    let lines: Vec<Vec<String>> = listed
        .out()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 23, "{}", listed.out());
    let order: Vec<(String, u64)> = lines
        .iter()
        .map(|l| (l[0].clone(), l[2].parse().unwrap()))
        .collect();
    let mut expected: Vec<(String, u64)> = (0..23)
        .map(|i| (format!("shardId-00000000000{}", i % 2), i + 1))
        .collect();
    expected.sort();
    assert_eq!(order, expected);
    assert!(
        listed.stderr.contains("would deliver 23")
            && listed.stderr.contains("nothing invoked: dry run"),
        "{}",
        listed.stderr
    );

    // At the original pace (records 1 ms apart, slowed 100 times: 100 ms apart), a dry run
    // waits for nothing, as a stream replay's does: full batches, as the estimate counts.
    let paced = kinarch(
        &world,
        &endpoint,
        &[
            &base[..],
            &[
                "--dry-run",
                "--pace",
                "original",
                "--speed",
                "0.01",
                "-o",
                "json",
            ],
        ]
        .concat(),
    )
    .await;
    paced.ok();
    let p = paced.json();
    assert_eq!(p["wouldDeliver"], 23, "{p}");
    assert_eq!(p["invocations"], 6, "{p}");
    assert!(endpoint.events().is_empty(), "nothing was invoked");
    let _ = std::fs::remove_dir_all(journal.parent().unwrap());
}
