//! `bin/demo`: the archiver end to end on local emulators, step by step.
//!
//! Starts moto server on a free loopback port, creates a stream and its archive table,
//! writes sample records, and delivers them to the real `bootstrap` binary through a local
//! Lambda Runtime API, exactly as the Lambda service would. Then prints the archive.

use std::collections::BTreeMap;

use kinarch_core::ArchiveRecord;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::moto::Moto;
use kinarch_tests::{dynamo, kinesis};

fn step(text: &str) {
    println!("\n==> {text}");
}

#[tokio::main]
async fn main() {
    step("starting moto server (DynamoDB + Kinesis) on a free loopback port");
    let moto = Moto::start();
    println!("    endpoint {}", moto.endpoint());
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);

    step(
        "creating stream demo-orders (2 shards), tagged StreamArchiveMode=ALL, ArchiveTTL=expireSeconds=86400",
    );
    let arn = kinesis::create_stream(&kinesis_client, "demo-orders", 2).await;
    kinesis::tag_stream(
        &kinesis_client,
        "demo-orders",
        &[
            ("StreamArchiveMode", "ALL"),
            ("ArchiveTTL", "expireSeconds=86400"),
        ],
    )
    .await;
    dynamo::create_table(&dynamodb, "demo-orders-archive-ALL", true).await;
    println!("    table demo-orders-archive-ALL (HASH partitionKey, RANGE sequenceNumber)");

    step("writing sample records (text and binary) to the stream");
    let samples: [(&str, &[u8]); 6] = [
        ("customer-1", br#"{"order":1,"total":12.5}"#),
        ("customer-2", br#"{"order":2,"total":99}"#),
        ("customer-1", br#"{"order":3,"total":7}"#),
        ("sensor-9", &[0x00, 0xff, 0x10, 0x80]),
        (
            "customer-3",
            "{\"order\":4,\"note\":\"caf\u{e9}\"}".as_bytes(),
        ),
        ("customer-2", br#"{"order":5,"total":1}"#),
    ];
    for (key, data) in samples {
        kinesis::put(&kinesis_client, "demo-orders", key, data).await;
    }
    let records = kinesis::read_all(&kinesis_client, "demo-orders").await;
    println!("    {} records in the stream", records.len());

    step("starting the Lambda binary `bootstrap` against a local Runtime API");
    let mut env = moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    let mut by_shard: BTreeMap<String, Vec<kinesis::StreamRecord>> = BTreeMap::new();
    for r in records {
        by_shard.entry(r.shard_id.clone()).or_default().push(r);
    }
    for (shard, batch) in &by_shard {
        let response = function
            .invoke(kinesis::event(&arn, batch))
            .await
            .response();
        println!(
            "    invoked with {} records of {shard}: response {response}",
            batch.len()
        );
    }
    step("the function's log (JSON, one summary line per invocation)");
    for line in function.logs() {
        println!("    {line}");
    }

    step("the archive table demo-orders-archive-ALL");
    let mut items = dynamo::scan_all(&dynamodb, "demo-orders-archive-ALL").await;
    items.sort_by(|a, b| dynamo::s(a, "partitionKey").cmp(dynamo::s(b, "partitionKey")));
    for item in &items {
        let record = ArchiveRecord::from_item(item).expect("items follow the contract");
        let payload = match std::str::from_utf8(&record.data) {
            Ok(text) => text.to_owned(),
            Err(_) => format!("<{} binary bytes>", record.data.len()),
        };
        println!(
            "    {:<11} seq {:<3} {} lastUpdate {} expireAfter {} data {}",
            record.partition_key,
            record.sequence_number,
            record.shard_id,
            record.last_update.as_deref().unwrap_or("-"),
            record
                .expire_after
                .map(|e| e.to_string())
                .unwrap_or_default(),
            payload
        );
    }
    assert_eq!(items.len(), samples.len(), "every record is archived");
    step(&format!(
        "done: {} of {} records archived; moto server stopped",
        items.len(),
        samples.len()
    ));
}
