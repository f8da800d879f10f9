//! The real `bootstrap` binary, driven through the Lambda Runtime API, archiving records
//! read from a moto Kinesis stream into moto DynamoDB: the table contract, ALL and LATEST,
//! partial failures and deadlines, and bad input (malformed and non-Kinesis events, missing
//! fields, bad base64, non-digit sequence numbers, empty data, an item of exactly the size
//! limit and one byte over, unicode and 256-character keys with binary payloads through
//! `kinarch query` and `reinject`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_core::SequenceNumber;
use kinarch_tests::dynamo::{self, Item, n, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{LambdaFunction, failures};
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};
use serde_json::{Value, json};

/// A payload marker that must never appear in the function's logs.
const SECRET: &str = "PAYLOAD-MARKER-7f3a";

struct Setup {
    moto: Moto,
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    function: LambdaFunction,
}

async fn setup(extra_env: &[(&str, &str)]) -> Setup {
    setup_behind(None, extra_env).await
}

/// Like [`setup`], with the function talking to AWS through a fault proxy.
async fn setup_with_proxy(extra_env: &[(&str, &str)]) -> (Setup, FaultProxy) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    (setup_behind(Some((moto, &proxy)), extra_env).await, proxy)
}

async fn setup_behind(behind: Option<(Moto, &FaultProxy)>, extra_env: &[(&str, &str)]) -> Setup {
    let (moto, endpoint) = match behind {
        Some((moto, proxy)) => (moto, Some(proxy.endpoint())),
        None => (Moto::start(), None),
    };
    let sdk = moto.sdk_config().await;
    let mut env = match endpoint {
        Some(endpoint) => moto.env_via(&endpoint),
        None => moto.env(),
    };
    env.push(("RUST_LOG".into(), "info".into()));
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    Setup {
        kinesis: aws_sdk_kinesis::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        moto,
        function,
    }
}

/// Puts `count` records spread over `keys` keys; every fifth is binary, all carry SECRET.
async fn put_records(t: &Setup, stream: &str, count: usize, keys: usize) {
    for i in 0..count {
        let data: Vec<u8> = if i % 5 == 0 {
            let mut d = vec![0u8, 0xff, 0xfe, b'\n', 0x80];
            d.extend_from_slice(SECRET.as_bytes());
            d
        } else {
            format!("{{\"n\":{i},\"secret\":\"{SECRET}\"}}").into_bytes()
        };
        kinesis::put(&t.kinesis, stream, &format!("key-{}", i % keys), &data).await;
    }
}

fn by_shard(records: &[StreamRecord]) -> BTreeMap<String, Vec<StreamRecord>> {
    let mut shards: BTreeMap<String, Vec<StreamRecord>> = BTreeMap::new();
    for r in records {
        shards
            .entry(r.shard_id.clone())
            .or_default()
            .push(r.clone());
    }
    shards
}

/// Neither the planted payload marker nor the secret key shows in the function's log.
fn assert_no_payload_in_logs(function: &LambdaFunction) {
    for line in function.logs() {
        assert!(
            !line.contains(SECRET),
            "payload leaked into the log: {line}"
        );
        assert!(
            !line.contains(kinarch_tests::moto::SECRET_ACCESS_KEY),
            "credentials leaked into the log: {line}"
        );
    }
}

fn summary_lines(function: &LambdaFunction) -> Vec<Value> {
    function
        .json_logs()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "archived batch")
        .collect()
}

fn strip_archive_time(mut items: Vec<Item>) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = items
        .drain(..)
        .map(|item| {
            item.into_iter()
                .filter(|(k, _)| k != "lastUpdate" && k != "expireAfter")
                .map(|(k, v)| (k, format!("{v:?}")))
                .collect()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_mode_archives_every_record_following_the_contract() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "orders", 2).await;
    kinesis::tag_stream(
        &t.kinesis,
        "orders",
        &[
            ("StreamArchiveMode", "ALL"),
            ("ArchiveTTL", "expireSeconds=3600"),
        ],
    )
    .await;
    dynamo::create_table(&t.dynamodb, "orders-archive-ALL", true).await;
    put_records(&t, "orders", 60, 7).await;
    let records = kinesis::read_all(&t.kinesis, "orders").await;
    assert_eq!(records.len(), 60);

    let before = chrono::Utc::now().timestamp();
    for shard_records in by_shard(&records).values() {
        let response = t
            .function
            .invoke(kinesis::event(&arn, shard_records))
            .await
            .response();
        assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    }
    let after = chrono::Utc::now().timestamp();

    let items = dynamo::scan_all(&t.dynamodb, "orders-archive-ALL").await;
    assert_eq!(items.len(), 60);
    let by_key: HashMap<(String, String), &Item> = items
        .iter()
        .map(|i| {
            (
                (
                    s(i, "partitionKey").to_owned(),
                    s(i, "sequenceNumber").to_owned(),
                ),
                i,
            )
        })
        .collect();
    for r in &records {
        let item = by_key[&(r.partition_key.clone(), r.sequence_number.clone())];
        assert_eq!(item.len(), 7, "exactly the contract's attributes: {item:?}");
        assert_eq!(STANDARD.decode(s(item, "recordData")).unwrap(), r.data);
        assert_eq!(s(item, "shardId"), r.shard_id);
        assert_eq!(
            n(item, "approximateArrivalTimestamp")
                .parse::<f64>()
                .unwrap(),
            r.arrival
        );
        let last_update = s(item, "lastUpdate");
        let archived = chrono::NaiveDateTime::parse_from_str(last_update, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|_| panic!("lastUpdate {last_update:?} is YYYY-MM-DD HH:MM:SS"))
            .and_utc()
            .timestamp();
        assert!(
            (before - 1..=after + 1).contains(&archived),
            "lastUpdate {last_update} is the archive time"
        );
        assert_eq!(
            n(item, "expireAfter").parse::<i64>().unwrap(),
            archived + 3600
        );
    }
    let summaries = summary_lines(&t.function);
    assert_eq!(summaries.len(), 2, "one summary line per invocation");
    let total: u64 = summaries
        .iter()
        .map(|l| l["fields"]["written"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 60);
    for l in &summaries {
        assert_eq!(l["fields"]["stream"], "orders");
        assert_eq!(l["fields"]["failed"], 0);
        assert!(
            l["fields"]["shard"]
                .as_str()
                .unwrap()
                .starts_with("shardId-")
        );
        assert!(l["fields"]["ms"].is_u64());
    }
    assert_no_payload_in_logs(&t.function);
    drop(t.moto);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_delivery_leaves_the_same_table() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "dups", 1).await;
    kinesis::tag_stream(&t.kinesis, "dups", &[("StreamArchiveMode", "all")]).await;
    dynamo::create_table(&t.dynamodb, "dups-archive-all", true).await;
    put_records(&t, "dups", 30, 4).await;
    let records = kinesis::read_all(&t.kinesis, "dups").await;
    let event = kinesis::event(&arn, &records);
    assert!(failures(&t.function.invoke(event.clone()).await.response()).is_empty());
    let first = dynamo::scan_all(&t.dynamodb, "dups-archive-all").await;
    assert!(
        first.iter().all(|i| !i.contains_key("expireAfter")),
        "no TTL tag, no expireAfter"
    );
    // Delivered again, and a batch holding each record twice.
    assert!(failures(&t.function.invoke(event).await.response()).is_empty());
    let doubled: Vec<StreamRecord> = records
        .iter()
        .flat_map(|r| [r.clone(), r.clone()])
        .collect();
    assert!(
        failures(
            &t.function
                .invoke(kinesis::event(&arn, &doubled))
                .await
                .response()
        )
        .is_empty()
    );
    let again = dynamo::scan_all(&t.dynamodb, "dups-archive-all").await;
    assert_eq!(again.len(), 30);
    assert_eq!(strip_archive_time(first), strip_archive_time(again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_mode_keeps_the_numerically_newest_record_per_key() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "prices", 1).await;
    kinesis::tag_stream(
        &t.kinesis,
        "prices",
        &[
            ("StreamArchiveMode", "LATEST"),
            ("ArchiveTTL", "expireSeconds=60"),
        ],
    )
    .await;
    dynamo::create_table(&t.dynamodb, "prices-archive-LATEST", false).await;
    // moto numbers records 1, 2, ... so keys get sequence numbers of one and two digits.
    put_records(&t, "prices", 25, 3).await;
    let records = kinesis::read_all(&t.kinesis, "prices").await;
    assert!(
        records.iter().any(|r| r.sequence_number.len() == 1)
            && records.iter().any(|r| r.sequence_number.len() == 2)
    );

    // Newer records first, then the older batch, then the newer batch shuffled again.
    let (old, new) = records.split_at(9);
    let mut reversed = new.to_vec();
    reversed.reverse();
    for batch in [new.to_vec(), old.to_vec(), reversed] {
        assert!(
            failures(
                &t.function
                    .invoke(kinesis::event(&arn, &batch))
                    .await
                    .response()
            )
            .is_empty()
        );
    }
    let items = dynamo::scan_all(&t.dynamodb, "prices-archive-LATEST").await;
    assert_eq!(items.len(), 3);
    for item in &items {
        let key = s(item, "partitionKey");
        let newest = records
            .iter()
            .filter(|r| r.partition_key == key)
            .max_by_key(|r| SequenceNumber::parse(&r.sequence_number).unwrap())
            .unwrap();
        assert_eq!(
            s(item, "sequenceNumber"),
            newest.sequence_number,
            "key {key}"
        );
        assert_eq!(STANDARD.decode(s(item, "recordData")).unwrap(), newest.data);
        assert!(item.contains_key("expireAfter"));
    }
    let summaries = summary_lines(&t.function);
    // First batch: 16 records over 3 keys; older batch: all 9 skipped as older.
    assert_eq!(summaries[0]["fields"]["written"], 3);
    assert_eq!(summaries[0]["fields"]["skipped_older"], 13);
    assert_eq!(summaries[1]["fields"]["written"], 0);
    assert_eq!(summaries[1]["fields"]["skipped_older"], 9);
    assert_no_payload_in_logs(&t.function);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_mode_compares_long_sequence_numbers_numerically() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "ticks", 1).await;
    kinesis::tag_stream(&t.kinesis, "ticks", &[("StreamArchiveMode", "LATEST")]).await;
    dynamo::create_table(&t.dynamodb, "ticks-archive-LATEST", false).await;
    let record = |seq: &str, data: &str| StreamRecord {
        shard_id: "shardId-000000000000".into(),
        partition_key: "k".into(),
        sequence_number: seq.into(),
        data: data.as_bytes().to_vec(),
        arrival: 1764100000.123,
    };
    // Plain string order would keep "9..." over "10...".
    let long = "49590338271490256608559692538361571095921575989136588898";
    let longer = format!("1{long}");
    for (seq, data) in [
        ("9", "nine"),
        (long, "long"),
        ("10", "ten"),
        (longer.as_str(), "longer"),
        (long, "long again"),
    ] {
        let response = t
            .function
            .invoke(kinesis::event(&arn, &[record(seq, data)]))
            .await
            .response();
        assert!(failures(&response).is_empty());
    }
    let items = dynamo::scan_all(&t.dynamodb, "ticks-archive-LATEST").await;
    assert_eq!(items.len(), 1);
    assert_eq!(s(&items[0], "sequenceNumber"), longer);
    assert_eq!(
        STANDARD.decode(s(&items[0], "recordData")).unwrap(),
        b"longer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_table_fails_the_batch_and_names_the_setup_command() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "nosetup", 1).await;
    kinesis::tag_stream(&t.kinesis, "nosetup", &[("StreamArchiveMode", "ALL")]).await;
    put_records(&t, "nosetup", 3, 1).await;
    let records = kinesis::read_all(&t.kinesis, "nosetup").await;
    let error = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .error();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("kinarch setup nosetup ALL us-east-1"),
        "{message}"
    );
    assert!(message.contains("nosetup-archive-ALL"), "{message}");
    assert_eq!(error["errorType"], "kinarch.ArchiveTable");
    assert!(
        t.function
            .logs()
            .iter()
            .any(|l| l.contains("kinarch setup nosetup ALL us-east-1"))
    );

    // After setup, the same batch (still in the stream) archives fully.
    dynamo::create_table(&t.dynamodb, "nosetup-archive-ALL", true).await;
    assert!(
        failures(
            &t.function
                .invoke(kinesis::event(&arn, &records))
                .await
                .response()
        )
        .is_empty()
    );
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "nosetup-archive-ALL")
            .await
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_key_schema_does_not_fit_fails_the_batch_naming_both_schemas() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "misfit", 1).await;
    kinesis::tag_stream(&t.kinesis, "misfit", &[("StreamArchiveMode", "ALL")]).await;
    // Made by hand with another key: every write is refused (ValidationException: the
    // items lack key `id`).
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    t.dynamodb
        .create_table()
        .table_name("misfit-archive-ALL")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    put_records(&t, "misfit", 3, 3).await;
    let records = kinesis::read_all(&t.kinesis, "misfit").await;
    let error = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .error();
    let message = error["errorMessage"].as_str().unwrap();
    assert_eq!(error["errorType"], "kinarch.ArchiveTable");
    dynamo::assert_refused_for_all_mode(message, "misfit-archive-ALL", "HASH id (S)");
    assert!(
        dynamo::scan_all(&t.dynamodb, "misfit-archive-ALL")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_deadline_it_reports_the_lowest_sequence_number_instead_of_timing_out() {
    // With a 5 s margin and a 4 s deadline, no write may start.
    let mut t = setup(&[("KINARCH_DEADLINE_MARGIN_MS", "5000")]).await;
    let arn = kinesis::create_stream(&t.kinesis, "late", 1).await;
    kinesis::tag_stream(&t.kinesis, "late", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "late-archive-ALL", true).await;
    put_records(&t, "late", 12, 3).await;
    let records = kinesis::read_all(&t.kinesis, "late").await;
    let mut shuffled = records.clone();
    shuffled.swap(0, 7);
    let response = t
        .function
        .invoke_with_deadline(kinesis::event(&arn, &shuffled), Duration::from_secs(4))
        .await
        .response();
    let lowest = records
        .iter()
        .map(|r| SequenceNumber::parse(&r.sequence_number).unwrap())
        .min()
        .unwrap();
    assert_eq!(failures(&response), vec![lowest.to_string()]);
    assert!(
        dynamo::scan_all(&t.dynamodb, "late-archive-ALL")
            .await
            .is_empty()
    );
    let summary = &summary_lines(&t.function)[0];
    assert_eq!(summary["fields"]["failed"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_arn_and_oversize_record() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "big", 1).await;
    kinesis::tag_stream(&t.kinesis, "big", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "big-archive-ALL", true).await;
    kinesis::put(&t.kinesis, "big", "small", b"fits").await;
    let mut huge = vec![b'x'; 350 * 1024];
    huge[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    kinesis::put(&t.kinesis, "big", "large", &huge).await;
    let records = kinesis::read_all(&t.kinesis, "big").await;
    let consumer_arn = format!("{arn}/consumer/archiver:1764100000");
    let response = t
        .function
        .invoke(kinesis::event(&consumer_arn, &records))
        .await
        .response();
    assert!(failures(&response).is_empty());
    let items = dynamo::scan_all(&t.dynamodb, "big-archive-ALL").await;
    assert_eq!(items.len(), 2);
    let large = items
        .iter()
        .find(|i| s(i, "partitionKey") == "large")
        .unwrap();
    assert!(!large.contains_key("recordData"));
    assert_eq!(large["oversize"].as_bool().unwrap(), &true);
    assert_eq!(n(large, "recordSize"), (350 * 1024).to_string());
    let seq = &records
        .iter()
        .find(|r| r.partition_key == "large")
        .unwrap()
        .sequence_number;
    let logged = t
        .function
        .json_logs()
        .into_iter()
        .find(|l| l["level"] == "ERROR" && l["fields"]["sequence_number"] == json!(seq));
    let logged = logged.expect("an error log names the oversize record");
    assert_eq!(logged["fields"]["stream"], "big");
    assert_eq!(logged["fields"]["shard"], "shardId-000000000000");
    assert_eq!(summary_lines(&t.function)[0]["fields"]["oversize"], 1);
    assert_no_payload_in_logs(&t.function);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_function_errors_and_write_nothing() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "bad", 1).await;
    kinesis::tag_stream(&t.kinesis, "bad", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "bad-archive-ALL", true).await;
    kinesis::put(&t.kinesis, "bad", "k", b"ok").await;
    let records = kinesis::read_all(&t.kinesis, "bad").await;
    let good = kinesis::event_record(&arn, &records[0]);
    let with = |path: &[&str], value: Value| {
        let mut r = good.clone();
        let mut target = &mut r;
        for p in &path[..path.len() - 1] {
            target = &mut target[*p];
        }
        target[path[path.len() - 1]] = value;
        json!({"Records": [good.clone(), r]})
    };
    let cases = [
        (json!({"Records": []}), "no records"),
        (json!({"hello": "world"}), "not a Kinesis event"),
        (with(&["eventSource"], json!("aws:sqs")), "\"aws:sqs\""),
        (
            with(&["kinesis", "data"], json!("%%% not base64")),
            "base64",
        ),
        (
            with(&["kinesis", "kinesisSchemaVersion"], json!("2.0")),
            "unknown kinesisSchemaVersion",
        ),
        (
            with(&["kinesis", "sequenceNumber"], json!("12ab")),
            "not a digit",
        ),
        (
            {
                let mut r = good.clone();
                r["kinesis"].as_object_mut().unwrap().remove("partitionKey");
                json!({"Records": [r]})
            },
            "partitionKey",
        ),
    ];
    for (event, expected) in cases {
        let error = t.function.invoke(event).await.error();
        let message = error["errorMessage"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message} should mention {expected}"
        );
        assert_eq!(error["errorType"], "kinarch.InvalidEvent");
    }
    // A body that is not JSON at all fails in lambda_runtime, before the handler: a function
    // error all the same (its type is the runtime's, not kinarch's).
    let error = t.function.invoke_raw("{\"Records\": [").await.error();
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("deserialize"),
        "{error}"
    );
    assert!(
        dynamo::scan_all(&t.dynamodb, "bad-archive-ALL")
            .await
            .is_empty()
    );
    // The process survived every bad event and still archives.
    assert!(
        failures(
            &t.function
                .invoke(json!({"Records": [good]}))
                .await
                .response()
        )
        .is_empty()
    );
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "bad-archive-ALL").await.len(),
        1
    );
    assert!(t.function.logs().iter().all(|l| !l.contains("panicked")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_stream_tag_is_an_error_naming_the_tag() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "typo", 1).await;
    kinesis::tag_stream(&t.kinesis, "typo", &[("StreamArchiveMode", "EVERYTHING")]).await;
    kinesis::put(&t.kinesis, "typo", "k", b"x").await;
    let records = kinesis::read_all(&t.kinesis, "typo").await;
    let error = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .error();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("StreamArchiveMode") && message.contains("\"EVERYTHING\""),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_reports_the_lowest_failed_sequence_number_and_retry_completes() {
    let (mut t, proxy) = setup_with_proxy(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "partial", 1).await;
    kinesis::tag_stream(&t.kinesis, "partial", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "partial-archive-ALL", true).await;
    for i in 0..60 {
        let key = if i == 37 {
            "poison".to_owned()
        } else {
            format!("key-{}", i % 5)
        };
        kinesis::put(
            &t.kinesis,
            "partial",
            &key,
            format!("record {i}").as_bytes(),
        )
        .await;
    }
    let records = kinesis::read_all(&t.kinesis, "partial").await;
    // The first BatchWriteItem is throttled (retried inside the invocation); any request
    // holding the poison record is refused for good.
    let throttled = std::sync::atomic::AtomicBool::new(false);
    proxy.set_rule(move |call| match call.operation() {
        "BatchWriteItem" if call.body.contains("\"poison\"") => {
            Some(Fault::client_error("ValidationException"))
        }
        "BatchWriteItem" if !throttled.swap(true, std::sync::atomic::Ordering::SeqCst) => Some(
            Fault::client_error("ProvisionedThroughputExceededException"),
        ),
        _ => None,
    });
    let response = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .response();
    // Requests hold records 0-24, 25-49 and 50-59; the second one fails.
    assert_eq!(
        failures(&response),
        vec![records[25].sequence_number.clone()]
    );
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "partial-archive-ALL")
            .await
            .len(),
        35
    );
    assert!(proxy.injected() >= 2);
    let summary = &summary_lines(&t.function)[0];
    assert_eq!(summary["fields"]["failed"], 25);
    assert_eq!(summary["fields"]["written"], 35);

    // Lambda delivers again from the reported record; the fault is gone.
    proxy.heal();
    let again: Vec<StreamRecord> = records[25..].to_vec();
    assert!(
        failures(
            &t.function
                .invoke(kinesis::event(&arn, &again))
                .await
                .response()
        )
        .is_empty()
    );
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "partial-archive-ALL")
            .await
            .len(),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_failure_reports_the_lowest_record_of_the_failed_key() {
    let (mut t, proxy) = setup_with_proxy(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "partial-latest", 1).await;
    kinesis::tag_stream(
        &t.kinesis,
        "partial-latest",
        &[("StreamArchiveMode", "LATEST")],
    )
    .await;
    dynamo::create_table(&t.dynamodb, "partial-latest-archive-LATEST", false).await;
    put_records(&t, "partial-latest", 20, 4).await;
    let records = kinesis::read_all(&t.kinesis, "partial-latest").await;
    proxy.set_rule(|call| {
        (call.operation() == "PutItem" && call.body.contains("\"key-2\"")).then(|| Fault::Error {
            status: 500,
            error_type: "InternalServerError".into(),
        })
    });
    // A persistent 5xx is retried until the deadline is near, then reported.
    let response = t
        .function
        .invoke_with_deadline(kinesis::event(&arn, &records), Duration::from_secs(5))
        .await
        .response();
    let first_of_key_2 = records.iter().find(|r| r.partition_key == "key-2").unwrap();
    assert_eq!(
        failures(&response),
        vec![first_of_key_2.sequence_number.clone()]
    );
    let items = dynamo::scan_all(&t.dynamodb, "partial-latest-archive-LATEST").await;
    assert_eq!(items.len(), 3, "the other keys landed");
    assert!(items.iter().all(|i| s(i, "partitionKey") != "key-2"));
    assert!(
        proxy.injected() > 1,
        "a 5xx is retried before it is given up"
    );
    proxy.heal();
    let position = records
        .iter()
        .position(|r| r.sequence_number == first_of_key_2.sequence_number)
        .unwrap();
    let again = records[position..].to_vec();
    assert!(
        failures(
            &t.function
                .invoke(kinesis::event(&arn, &again))
                .await
                .response()
        )
        .is_empty()
    );
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "partial-latest-archive-LATEST")
            .await
            .len(),
        4
    );
}

/// An event record with these fields (synthetic: no stream needed for the item-size cases).
fn synthetic_record(key: &str, sequence: &str, data: &[u8]) -> StreamRecord {
    StreamRecord {
        shard_id: "shardId-000000000000".into(),
        partition_key: key.into(),
        sequence_number: sequence.into(),
        data: data.to_vec(),
        arrival: 1_764_000_000.123,
    }
}

/// The item kinarch would build for `record` of `event`, without `recordData`, and its size.
fn size_without_data(event: &Value) -> usize {
    let batch = kinarch_core::domain::event::decode_event(event).expect("a valid event");
    let mut record = batch.records[0].clone();
    record.data.clear();
    let mut item = record.to_item(chrono::Utc::now(), None).item;
    item.remove("recordData");
    kinarch_core::aws::item::item_size(&item)
}

/// DynamoDB takes items up to 400 KB (409,600 bytes); moto refuses items above 405,000
/// bytes (`LimitedSizeDict` in moto 5.2.5), so the item of exactly the limit cannot be
/// stored in moto. Its BatchWriteItem is taken by the proxy instead, answered as DynamoDB
/// answers a full success, and the request is checked: the whole payload went out. The item
/// one byte over and the empty record go to moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_size_limit_exactly_fits_one_byte_over_is_oversize_and_empty_data_is_kept() {
    let (mut t, proxy) = setup_with_proxy(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "edge", 1).await;
    kinesis::tag_stream(&t.kinesis, "edge", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "edge-archive-ALL", true).await;

    // A payload whose item is exactly the limit by kinarch's count (DynamoDB counts numbers
    // as fewer bytes, never more): payloads of 3n bytes take 4n of base64, and up to three
    // more key characters fill the rest to the byte.
    let limit = kinarch_core::aws::item::ITEM_SIZE_LIMIT;
    let probe = |key: &str| kinesis::event(&arn, &[synthetic_record(key, "10", &[])]);
    let room = limit - size_without_data(&probe("exact")) - "recordData".len();
    let payload_len = room / 4 * 3;
    let key = format!("exact{}", "k".repeat(room % 4));
    let encoded = "recordData".len() + payload_len / 3 * 4;
    assert_eq!(size_without_data(&probe(&key)) + encoded, limit, "{key}");
    let over_key = format!("{key}+");
    let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8).collect();

    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = sent.clone();
    proxy.set_rule(move |call| {
        (call.operation() == "BatchWriteItem" && call.body.contains("\"exact")).then(|| {
            seen.lock().unwrap().push(call.body.clone());
            Fault::Json {
                status: 200,
                body: r#"{"UnprocessedItems":{}}"#.into(),
            }
        })
    });
    let exact = [synthetic_record(&key, "10", &payload)];
    let response = t
        .function
        .invoke(kinesis::event(&arn, &exact))
        .await
        .response();
    assert!(failures(&response).is_empty(), "{response}");
    let bodies = sent.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one BatchWriteItem");
    let request: Value = serde_json::from_str(&bodies[0]).unwrap();
    let item = &request["RequestItems"]["edge-archive-ALL"][0]["PutRequest"]["Item"];
    assert_eq!(item["partitionKey"]["S"], key.as_str());
    assert!(item.get("oversize").is_none(), "{key} is not oversize");
    assert_eq!(
        STANDARD
            .decode(item["recordData"]["S"].as_str().unwrap())
            .unwrap(),
        payload,
        "the item of exactly the limit carries its whole payload"
    );

    proxy.heal();
    let rest = [
        synthetic_record(&over_key, "11", &payload),
        synthetic_record("empty", "12", b""),
    ];
    let response = t
        .function
        .invoke(kinesis::event(&arn, &rest))
        .await
        .response();
    assert!(
        failures(&response).is_empty(),
        "{response}\n{}",
        t.function.logs().join("\n")
    );
    let items = dynamo::scan_all(&t.dynamodb, "edge-archive-ALL").await;
    let item = |k: &str| {
        items
            .iter()
            .find(|i| s(i, "partitionKey") == k)
            .unwrap_or_else(|| panic!("{k} archived"))
    };
    let over = item(&over_key);
    assert!(
        !over.contains_key("recordData"),
        "one byte over: no payload"
    );
    assert_eq!(over["oversize"].as_bool().unwrap(), &true);
    assert_eq!(n(over, "recordSize"), payload_len.to_string());
    let empty = item("empty");
    assert_eq!(
        s(empty, "recordData"),
        "",
        "an empty record is archived as empty"
    );
    assert!(!empty.contains_key("oversize"));
    let summaries = summary_lines(&t.function);
    assert_eq!(summaries[0]["fields"]["oversize"], 0);
    assert_eq!(summaries[1]["fields"]["oversize"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_and_256_character_keys_with_binary_payloads_survive_archive_query_and_reinject() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "intl", 2).await;
    kinesis::tag_stream(&t.kinesis, "intl", &[("StreamArchiveMode", "ALL")]).await;
    dynamo::create_table(&t.dynamodb, "intl-archive-ALL", true).await;
    kinesis::create_stream(&t.kinesis, "intl-copy", 1).await;

    // 256 characters is Kinesis' maximum; four-byte characters make it 1,024 bytes.
    let longest = "🦀".repeat(256);
    let keys = [longest.as_str(), "clé-ünïcødé", "键", "-starts-with-dash"];
    let payloads: [&[u8]; 4] = [
        &[0xff, 0xfe, 0x00, 0xc3, 0x28, b'\n'],
        "naïve café".as_bytes(),
        &[0x80, 0x81, 0x82],
        b"\r\n\t",
    ];
    for (key, data) in keys.iter().zip(payloads) {
        kinesis::put(&t.kinesis, "intl", key, data).await;
    }
    let records = kinesis::read_all(&t.kinesis, "intl").await;
    for (shard, batch) in by_shard(&records) {
        let response = t
            .function
            .invoke(kinesis::event(&arn, &batch))
            .await
            .response();
        assert!(failures(&response).is_empty(), "{shard}: {response}");
    }
    let items = dynamo::scan_all(&t.dynamodb, "intl-archive-ALL").await;
    assert_eq!(dynamo::archived(&items), kinesis::as_archived(&records));

    // `kinarch query` finds each key and prints the bytes as they are.
    for (key, data) in keys.iter().zip(payloads) {
        let run = kinarch_tests::cli::kinarch(&t.moto, &["query", "intl", "--", key]).await;
        run.ok();
        let mut expected = data.to_vec();
        expected.push(b'\n');
        assert_eq!(run.stdout, expected, "{key}");
    }
    // A key over 256 characters is refused before any call.
    let too_long = "🦀".repeat(257);
    let run = kinarch_tests::cli::kinarch(&t.moto, &["query", "intl", &too_long]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("256"), "{}", run.stderr);

    // Replayed into another stream: the same keys and the same bytes.
    kinarch_tests::cli::kinarch(
        &t.moto,
        &[
            "reinject",
            "intl",
            "--target",
            "intl-copy",
            "--concurrency",
            "1",
        ],
    )
    .await
    .ok();
    let copied: std::collections::BTreeSet<(String, Vec<u8>)> =
        kinesis::read_all(&t.kinesis, "intl-copy")
            .await
            .into_iter()
            .map(|r| (r.partition_key, r.data))
            .collect();
    let original: std::collections::BTreeSet<(String, Vec<u8>)> = records
        .into_iter()
        .map(|r| (r.partition_key, r.data))
        .collect();
    assert_eq!(copied, original);
}

/// Issue 11, drop-in for the original archiver: its setup tagged streams `all` / `latest`
/// in lower case and named the table with the tag as written. The function archives into
/// that table and `kinarch query` reads it, with no change by the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_set_up_by_the_original_archiver_is_archived_into_its_lower_case_table() {
    let mut t = setup(&[]).await;
    let arn = kinesis::create_stream(&t.kinesis, "legacy", 1).await;
    kinesis::tag_stream(&t.kinesis, "legacy", &[("StreamArchiveMode", "all")]).await;
    dynamo::create_table(&t.dynamodb, "legacy-archive-all", true).await;
    for i in 0..5 {
        kinesis::put(
            &t.kinesis,
            "legacy",
            "customer-1",
            format!("order {i}").as_bytes(),
        )
        .await;
    }
    let records = kinesis::read_all(&t.kinesis, "legacy").await;
    let response = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .response();
    assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    let items = dynamo::scan_all(&t.dynamodb, "legacy-archive-all").await;
    assert_eq!(dynamo::archived(&items), kinesis::as_archived(&records));

    let run = kinarch_tests::cli::kinarch(&t.moto, &["query", "legacy", "customer-1"]).await;
    run.ok();
    assert_eq!(
        run.out(),
        "order 0\norder 1\norder 2\norder 3\norder 4\n",
        "{}",
        run.stderr
    );
}

/// Issue 16, metrics: each invocation writes one CloudWatch EMF line whose directive names
/// metrics present in the line with valid units, carrying the batch's counts and lag;
/// `KINARCH_METRICS=off` writes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_writes_an_emf_line_with_its_counts() {
    let mut t = setup(&[("KINARCH_METRICS_NAMESPACE", "kinarch-test")]).await;
    let arn = kinesis::create_stream(&t.kinesis, "metered", 1).await;
    kinesis::tag_stream(&t.kinesis, "metered", &[("StreamArchiveMode", "LATEST")]).await;
    dynamo::create_table(&t.dynamodb, "metered-archive-LATEST", false).await;
    for i in 0..6 {
        kinesis::put(&t.kinesis, "metered", &format!("k{}", i % 2), b"x").await;
    }
    let records = kinesis::read_all(&t.kinesis, "metered").await;
    let oldest = records.iter().map(|r| r.arrival).fold(f64::MAX, f64::min);
    let response = t
        .function
        .invoke(kinesis::event(&arn, &records))
        .await
        .response();
    assert_eq!(failures(&response), Vec::<String>::new());
    let emf: Vec<Value> = t
        .function
        .json_logs()
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 1, "one EMF line per invocation: {emf:?}");
    let line = &emf[0];
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "kinarch-test");
    assert!(line["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    const UNITS: [&str; 5] = ["Count", "Milliseconds", "Seconds", "Bytes", "None"];
    for metric in directive["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(line[name].is_number(), "{name} is in the line: {line}");
        assert!(
            UNITS.contains(&metric["Unit"].as_str().unwrap()),
            "{metric}"
        );
    }
    for dimension in directive["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d.as_array().unwrap())
    {
        assert!(line[dimension.as_str().unwrap()].is_string(), "{dimension}");
    }
    assert_eq!(
        (line["Stream"].as_str(), line["Mode"].as_str()),
        (Some("metered"), Some("LATEST"))
    );
    assert_eq!(line["RecordsArchived"], 2, "the newest of each of 2 keys");
    assert_eq!(line["RecordsSkippedOlder"], 4);
    assert_eq!(line["RecordsSkippedReplay"], 0);
    assert_eq!(line["RecordsFailed"], 0);
    assert_eq!(
        (line["ParquetFiles"].as_u64(), line["ParquetBytes"].as_u64()),
        (Some(0), Some(0)),
        "no Parquet archive"
    );
    let now = chrono::Utc::now().timestamp() as f64;
    let lag = line["ArchiveLagSeconds"].as_f64().unwrap();
    assert!(lag >= 0.0 && lag <= now - oldest + 1.0, "{lag}");

    let mut env = t.moto.env();
    env.push(("KINARCH_METRICS".into(), "off".into()));
    let mut quiet = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    let response = quiet
        .invoke(kinesis::event(&arn, &records))
        .await
        .response();
    assert_eq!(failures(&response), Vec::<String>::new());
    assert!(
        quiet.logs().iter().any(|l| l.contains("archived batch")),
        "the batch was archived"
    );
    assert!(
        quiet.json_logs().iter().all(|l| l.get("_aws").is_none()),
        "no EMF line with KINARCH_METRICS=off"
    );
}
