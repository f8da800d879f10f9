//! Nothing is lost under faults: 10,000 records through the real Lambda binary while a
//! seeded fault plan breaks 30% of the AWS requests, with the test playing the event
//! source mapping (deliver again from the reported `itemIdentifier`, retry the whole batch
//! after a function error). Also LATEST under concurrent, shuffled delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use kinarch_core::SequenceNumber;
use kinarch_tests::dynamo::{self, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{Invocation, LambdaFunction};
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Call, Fault, FaultProxy};

const SHARDS: usize = 4;
const PER_SHARD: usize = 2500;
const BATCH: usize = 500;

/// A seeded fault plan: `share` of the requests get one of the faults, chosen at random.
struct Plan {
    state: Mutex<u64>,
    share: f64,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Plan {
    fn new(seed: u64, share: f64) -> Plan {
        Plan {
            state: Mutex::new(seed.max(1)),
            share,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// xorshift64*: a uniform number in [0, 1).
    fn uniform(&self) -> f64 {
        let mut x = self.state.lock().unwrap();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        (x.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&self, call: &Call) -> Option<Fault> {
        if self.uniform() >= self.share {
            return None;
        }
        let batch_write = call.operation() == "BatchWriteItem";
        let kinds = if batch_write { 7.0 } else { 6.0 };
        let (name, fault) = match (self.uniform() * kinds) as u32 {
            0 => (
                "throughput exceeded",
                Fault::client_error("ProvisionedThroughputExceededException"),
            ),
            1 => ("throttling", Fault::client_error("ThrottlingException")),
            2 => (
                "http 500",
                Fault::Error {
                    status: 500,
                    error_type: "InternalServerError".into(),
                },
            ),
            3 => (
                "http 503",
                Fault::Error {
                    status: 503,
                    error_type: "ServiceUnavailable".into(),
                },
            ),
            4 => ("connection reset", Fault::Reset),
            5 => ("slow answer", Fault::Delay(Duration::from_millis(1500))),
            _ => ("unprocessed items", Fault::Unprocessed),
        };
        *self.counts.lock().unwrap().entry(name).or_default() += 1;
        Some(fault)
    }
}

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
    let plan = std::sync::Arc::new(Plan::new(seed, 0.30));
    let rule_plan = plan.clone();
    proxy.set_rule(move |call| rule_plan.fault(call));

    let mut env = moto.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    env.push(("KINARCH_ATTEMPT_TIMEOUT_MS".into(), "1000".into()));
    env.push(("KINARCH_CONFIG_REFRESH_SECONDS".into(), "0".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;

    let mut invocations = 0;
    let mut expected_latest: HashMap<String, StreamRecord> = HashMap::new();
    for shard in 0..SHARDS {
        let records = shard_records(shard);
        invocations += deliver_shard(&mut function, &all_arn, &records).await;
        invocations += deliver_shard(&mut function, &latest_arn, &records).await;
        for r in records {
            let newest = expected_latest
                .entry(r.partition_key.clone())
                .or_insert_with(|| r.clone());
            if SequenceNumber::parse(&r.sequence_number).unwrap()
                > SequenceNumber::parse(&newest.sequence_number).unwrap()
            {
                *newest = r;
            }
        }
    }
    proxy.heal();
    println!(
        "fault plan seed {seed:#x}: {} faults injected into a 30% share of requests: {:?}; {invocations} invocations",
        proxy.injected(),
        plan.counts.lock().unwrap()
    );
    assert!(proxy.injected() > 100, "the plan injected faults");

    let all = dynamo::scan_all(&dynamodb, "faults-all-archive-ALL").await;
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
    let env = moto.env();
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
