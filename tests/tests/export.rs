//! `kinarch export` (issue 17) against moto's DynamoDB export: refused with the way out
//! while point-in-time recovery is off; then a real export whose data the test reads back
//! (gzipped DynamoDB JSON lines) and checks against the Athena DDL kinarch prints: every
//! attribute of every exported item is a column of the DDL, with its DynamoDB type.
//!
//! moto writes the data under `<prefix>/AWSDynamoDB/<random id>/data/` (not the export ID
//! of the ARN, as DynamoDB does) and no manifest files, so the test checks the manifest and
//! data locations kinarch derives against the documented layout, and reads the data where
//! moto put it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use chrono::{TimeZone, Utc};
use kinarch_core::{ArchiveRecord, ArchiveTtl, SequenceNumber};
use kinarch_tests::cli::kinarch;
use kinarch_tests::moto::Moto;
use kinarch_tests::{kinesis, s3};
use serde_json::Value;

fn gunzip(bytes: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_needs_pitr_then_lands_in_s3_with_a_ddl_that_covers_its_items() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let s3_client = s3::client(&sdk);
    kinesis::create_stream(&kinesis_client, "orders", 1).await;
    kinesis::tag_stream(&kinesis_client, "orders", &[("StreamArchiveMode", "ALL")]).await;
    kinarch_tests::dynamo::create_table(&dynamodb, "orders-archive-ALL", true).await;
    s3::create_bucket(&s3_client, "analytics").await;
    let archived_at = Utc.timestamp_opt(1_777_629_600, 0).unwrap();
    for i in 0..5u64 {
        let mut record = ArchiveRecord::received(
            format!("k{i}"),
            SequenceNumber::parse(&(100 + i).to_string()).unwrap(),
            "shardId-000000000000".into(),
            1_777_629_600.5 + i as f64,
            format!("payload {i}").into_bytes(),
        );
        if i == 4 {
            record.sub_sequence_number = Some(3);
        }
        let ttl = Some(ArchiveTtl::from_seconds(86_400).unwrap());
        dynamodb
            .put_item()
            .table_name("orders-archive-ALL")
            .set_item(Some(record.to_item(archived_at, ttl).item))
            .send()
            .await
            .unwrap();
    }

    let args = ["export", "orders", "--s3", "s3://analytics/kinarch/orders"];
    let off = kinarch(&moto, &args).await;
    off.expect_code(1);
    assert!(
        off.stderr.contains("point-in-time recovery is off"),
        "{}",
        off.stderr
    );
    let dry = kinarch(&moto, &[&args[..], &["--dry-run"]].concat()).await;
    assert!(dry.ok().stderr.contains("OFF"), "{}", dry.stderr);

    // The way out the refusal names, taken as given.
    assert!(
        off.stderr.contains("kinarch setup orders ALL --pitr"),
        "{}",
        off.stderr
    );
    let setup = kinarch(&moto, &["setup", "orders", "ALL", "--pitr", "--yes"]).await;
    let text = setup.ok().out();
    assert!(text.contains("enable point-in-time recovery"), "{text}");
    let again = kinarch(
        &moto,
        &["setup", "orders", "ALL", "--pitr", "--yes", "--dry-run"],
    )
    .await;
    let text = again.ok().out();
    assert!(
        text.contains("point-in-time recovery of table orders-archive-ALL is on"),
        "{text}"
    );
    let dry = kinarch(&moto, &[&args[..], &["--dry-run"]].concat()).await;
    assert!(dry.ok().stderr.contains("recovery is on"), "{}", dry.stderr);
    let run = kinarch(
        &moto,
        &[&args[..], &["-o", "json", "--print-athena-ddl"]].concat(),
    )
    .await;
    let result: Value = serde_json::from_slice(&run.ok().stdout).unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["itemCount"], 5);
    let id = result["exportArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        result["manifest"],
        format!("s3://analytics/kinarch/orders/AWSDynamoDB/{id}/manifest-summary.json")
    );
    assert_eq!(
        result["dataLocation"],
        format!("s3://analytics/kinarch/orders/AWSDynamoDB/{id}/data/")
    );
    let ddl = result["athenaDdl"].as_str().unwrap();
    assert!(ddl.contains(&format!(
        "LOCATION 's3://analytics/kinarch/orders/AWSDynamoDB/{id}/data/'"
    )));

    // The exported items, where moto wrote them.
    let keys = s3::keys(&s3_client, "analytics").await;
    let data: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("kinarch/orders/AWSDynamoDB/") && k.contains("/data/"))
        .collect();
    assert!(!data.is_empty(), "{keys:?}");
    let mut items = 0;
    for key in data {
        let text = gunzip(&s3::get(&s3_client, "analytics", key).await.unwrap());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let item: Value = serde_json::from_str(line).unwrap();
            items += 1;
            for (name, typed) in item["Item"].as_object().expect("an Item object") {
                let (kind, _) = typed.as_object().unwrap().iter().next().unwrap();
                let column = format!("    {name}: struct<{kind}: ");
                assert!(
                    ddl.contains(&column),
                    "{column:?} is not in the DDL:\n{ddl}"
                );
            }
        }
    }
    assert_eq!(items, 5);
}
