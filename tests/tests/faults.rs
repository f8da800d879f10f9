//! Nothing is lost under faults: 10,000 records through the real Lambda binary while a
//! seeded fault plan breaks 30% of the AWS requests, with the test playing the event
//! source mapping (deliver again from the reported `itemIdentifier`, retry the whole batch
//! after a function error). The same 10,000 records through `kinarch archive`, killed with
//! SIGKILL twice in the middle and started again. Also LATEST under concurrent, shuffled
//! delivery.

use std::time::Duration;

use kinarch_core::SequenceNumber;
use kinarch_tests::cli;
use kinarch_tests::dynamo::{self, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{Invocation, LambdaFunction};
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{FaultPlan, FaultProxy};

const SHARDS: usize = 4;
const PER_SHARD: usize = 2500;
const BATCH: usize = 500;

/// Records of one shard: keys local to the shard, sequence numbers 1.. (1 to 4 digits).
fn shard_records(shard: usize) -> Vec<StreamRecord> {
    (1..=PER_SHARD)
        .map(|i| StreamRecord {
            shard_id: format!("shardId-00000000000{shard}"),
            partition_key: format!("s{shard}-key-{}", i % 60),
            sequence_number: i.to_string(),
            data: format!("shard {shard} record {i}").into_bytes(),
            arrival: 1_764_000_000.0 + i as f64 / 1000.0,
        })
        .collect()
}

/// Plays the event source mapping for one shard: batches of BATCH from the checkpoint,
/// again from the reported item on a partial failure, again whole on a function error.
async fn deliver_shard(function: &mut LambdaFunction, arn: &str, records: &[StreamRecord]) -> u32 {
    let mut position = 0;
    let mut invocations = 0;
    while position < records.len() {
        invocations += 1;
        assert!(invocations < 400, "the shard does not make progress");
        let batch = &records[position..(position + BATCH).min(records.len())];
        match function
            .invoke_with_deadline(kinesis::event(arn, batch), Duration::from_secs(30))
            .await
        {
            Invocation::Error(_) => continue,
            Invocation::Response(response) => {
                let failures = response["batchItemFailures"].as_array().unwrap();
                match failures.first().and_then(|f| f["itemIdentifier"].as_str()) {
                    None => position += batch.len(),
                    Some(seq) => {
                        position += batch
                            .iter()
                            .position(|r| r.sequence_number == seq)
                            .expect("a sequence number of the batch");
                    }
                }
            }
        }
    }
    invocations
}

async fn stream_with_table(
    kinesis_client: &aws_sdk_kinesis::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    mode: &str,
) -> String {
    let arn = kinesis::create_stream(kinesis_client, name, 1).await;
    kinesis::tag_stream(kinesis_client, name, &[("StreamArchiveMode", mode)]).await;
    dynamo::create_table(dynamodb, &format!("{name}-archive-{mode}"), mode == "ALL").await;
    arn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_through_thirty_percent_faults_lose_nothing() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let all_arn = stream_with_table(&kinesis_client, &dynamodb, "faults-all", "ALL").await;
    let latest_arn = stream_with_table(&kinesis_client, &dynamodb, "faults-latest", "LATEST").await;

    let seed = 0x6b696e61726368;
    let plan = std::sync::Arc::new(FaultPlan::new(seed, 0.30));
    let rule_plan = plan.clone();
    proxy.set_rule(move |call| rule_plan.fault(call));

    let mut env = moto.env_via(&proxy.endpoint());
    env.push(("KINARCH_ATTEMPT_TIMEOUT_MS".into(), "1000".into()));
    env.push(("KINARCH_CONFIG_REFRESH_SECONDS".into(), "0".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;

    let mut invocations = 0;
    let mut delivered = Vec::new();
    for shard in 0..SHARDS {
        let records = shard_records(shard);
        invocations += deliver_shard(&mut function, &all_arn, &records).await;
        invocations += deliver_shard(&mut function, &latest_arn, &records).await;
        delivered.extend(records);
    }
    let expected_latest = kinesis::newest_per_key(&delivered);
    proxy.heal();
    println!("{}; {invocations} invocations", plan.summary());
    assert!(proxy.injected() > 100, "the plan injected faults");

    let all = dynamo::scan_all(&dynamodb, "faults-all-archive-ALL").await;
    let missing = dynamo::missing(&kinesis::as_archived(&delivered), &dynamo::archived(&all));
    assert!(
        missing.is_empty(),
        "the ALL table lacks {} records; the requests that carried them:\n{}",
        missing.len(),
        proxy.calls_carrying(&missing)
    );
    assert_eq!(
        all.len(),
        SHARDS * PER_SHARD,
        "the ALL table holds every record exactly once"
    );
    let mut keys: Vec<(String, String)> = all
        .iter()
        .map(|i| (s(i, "partitionKey").into(), s(i, "sequenceNumber").into()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), SHARDS * PER_SHARD);

    let latest = dynamo::scan_all(&dynamodb, "faults-latest-archive-LATEST").await;
    assert_eq!(latest.len(), expected_latest.len());
    for item in &latest {
        let newest = &expected_latest[s(item, "partitionKey")];
        assert_eq!(
            s(item, "sequenceNumber"),
            newest.sequence_number,
            "{}",
            s(item, "partitionKey")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_converges_under_concurrent_shuffled_delivery() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let arn = stream_with_table(&kinesis_client, &dynamodb, "race", "LATEST").await;
    // Through the proxy, which makes moto's conditional writes atomic as DynamoDB's are.
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let env = moto.env_via(&proxy.endpoint());
    let mut first = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    let mut second = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;

    // 600 records over 20 keys, delivered as overlapping, shuffled batches by two processes.
    let records: Vec<StreamRecord> = (1..=600)
        .map(|i| StreamRecord {
            shard_id: "shardId-000000000000".into(),
            partition_key: format!("key-{}", i % 20),
            sequence_number: i.to_string(),
            data: format!("v{i}").into_bytes(),
            arrival: 1_764_000_000.0,
        })
        .collect();
    let mut state = 0x1234_5678_u64;
    let mut shuffled = |mut batch: Vec<StreamRecord>| {
        for i in (1..batch.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            batch.swap(i, (state >> 33) as usize % (i + 1));
        }
        batch
    };
    let batches_a: Vec<Vec<StreamRecord>> = records
        .chunks(100)
        .rev()
        .map(|c| shuffled(c.to_vec()))
        .collect();
    let batches_b: Vec<Vec<StreamRecord>> = records
        .windows(150)
        .step_by(75)
        .map(|w| shuffled(w.to_vec()))
        .collect();
    let run_a = async {
        for batch in batches_a {
            assert!(
                first.invoke(kinesis::event(&arn, &batch)).await.response()["batchItemFailures"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
        }
    };
    let run_b = async {
        for batch in batches_b {
            assert!(
                second.invoke(kinesis::event(&arn, &batch)).await.response()["batchItemFailures"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
        }
    };
    tokio::join!(run_a, run_b);
    let items = dynamo::scan_all(&dynamodb, "race-archive-LATEST").await;
    assert_eq!(items.len(), 20);
    for item in &items {
        let key = s(item, "partitionKey");
        let newest = records
            .iter()
            .filter(|r| r.partition_key == key)
            .map(|r| SequenceNumber::parse(&r.sequence_number).unwrap())
            .max()
            .unwrap();
        assert_eq!(s(item, "sequenceNumber"), newest.as_str(), "{key}");
    }
}

/// Sum of the checkpointed sequence numbers of a stream's shards: with moto's per-shard
/// counters (1, 2, 3...) that is how many records the checkpoints cover.
async fn checkpointed(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> u64 {
    if dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_err()
    {
        return 0;
    }
    dynamo::scan_all(dynamodb, table)
        .await
        .iter()
        .filter_map(|c| c.get("sequenceNumber")?.as_s().ok()?.parse::<u64>().ok())
        .sum()
}

/// Runs `kinarch archive` on `stream` to the end as a supervisor would: SIGKILL once the
/// checkpoints cover each of `kill_at` records, start again after every kill. Every run that
/// is not killed must end well: the archiver rides out the faults itself.
async fn archive_with_kills(
    env: &[(String, String)],
    dynamodb: &aws_sdk_dynamodb::Client,
    stream: &str,
    mode: &str,
    kill_at: &[u64],
) {
    let checkpoints = format!("{stream}-archive-{mode}-checkpoints");
    let args = ["archive", stream, "--batch-size", "250", "--output", "json"];
    for (run, kill_at) in kill_at.iter().map(Some).chain([None]).enumerate() {
        let mut running = cli::Running::start(env, &args);
        loop {
            if let Some(&at) = kill_at
                && checkpointed(dynamodb, &checkpoints).await >= at
            {
                running.child.start_kill().unwrap();
                let killed = running.wait().await;
                assert_eq!(killed.code, -1, "{stream}: run {run} ended before its kill");
                assert!(
                    !killed
                        .stderr
                        .contains(kinarch_tests::moto::SECRET_ACCESS_KEY),
                    "credentials leaked into the log"
                );
                println!(
                    "{stream}: run {run} killed at {} checkpointed records",
                    checkpointed(dynamodb, &checkpoints).await
                );
                break;
            }
            if let Ok(Some(_)) = running.child.try_wait() {
                let ended = running.wait().await;
                assert!(
                    !ended
                        .stderr
                        .contains(kinarch_tests::moto::SECRET_ACCESS_KEY),
                    "credentials leaked into the log"
                );
                assert!(
                    kill_at.is_none(),
                    "{stream}: run {run} ended before its kill:\n{}",
                    ended.stderr
                );
                ended.ok();
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinarch_archive_killed_twice_under_thirty_percent_faults_loses_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);

    // 10,000 records over 4 shards; 160 keys, each in one shard (moto's sequence numbers
    // repeat across shards, and a key never changes shard without resharding).
    let records: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| {
            let mut data = format!("record {i} ").into_bytes();
            data.extend_from_slice(&[0x00, 0xff, (i % 256) as u8]);
            (format!("key-{}", i % 160), data)
        })
        .collect();
    for (stream, mode) in [("kill-all", "ALL"), ("kill-latest", "LATEST")] {
        kinesis::create_stream(&kinesis_client, stream, 4).await;
        cli::kinarch(&moto, &["setup", stream, mode, "--yes"])
            .await
            .ok();
        kinesis::put_many(&kinesis_client, stream, &records).await;
    }

    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let seed = 0x6172636869766531;
    let plan = std::sync::Arc::new(FaultPlan::new(seed, 0.30));
    let rule_plan = plan.clone();
    proxy.set_rule(move |call| rule_plan.fault(call));
    let mut env = moto.env_via(&proxy.endpoint());
    env.push(("KINARCH_ATTEMPT_TIMEOUT_MS".into(), "1000".into()));

    tokio::join!(
        archive_with_kills(&env, &dynamodb, "kill-all", "ALL", &[2_500, 6_000]),
        archive_with_kills(&env, &dynamodb, "kill-latest", "LATEST", &[2_500, 6_000]),
    );
    proxy.heal();
    println!("{}", plan.summary());
    assert!(plan.injected() > 100, "the plan injected faults");

    let in_stream = kinesis::read_all(&kinesis_client, "kill-all").await;
    assert_eq!(in_stream.len(), 10_000);
    let all = dynamo::scan_all(&dynamodb, "kill-all-archive-ALL").await;
    let missing = dynamo::missing(&kinesis::as_archived(&in_stream), &dynamo::archived(&all));
    assert!(
        missing.is_empty(),
        "the ALL table lacks {} records; the requests that carried them:\n{}",
        missing.len(),
        proxy.calls_carrying(&missing)
    );
    assert_eq!(all.len(), 10_000, "the ALL table holds every record once");
    assert_eq!(
        dynamo::archived(&all),
        kinesis::as_archived(&in_stream),
        "every record with its shard and bytes"
    );

    let newest = kinesis::newest_per_key(&kinesis::read_all(&kinesis_client, "kill-latest").await);
    let latest = dynamo::scan_all(&dynamodb, "kill-latest-archive-LATEST").await;
    assert_eq!(
        dynamo::archived(&latest),
        kinesis::as_archived(&newest.into_values().collect::<Vec<_>>()),
        "the LATEST table holds the newest record of every key"
    );
}
