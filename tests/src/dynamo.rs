//! DynamoDB fixtures: archive tables and their contents.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A DynamoDB item, as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// What an archive holds of a record: (partitionKey, sequenceNumber, shardId, data).
pub type ArchivedRecord = (String, String, String, Vec<u8>);

/// Creates a table with the contract's key schema: HASH `partitionKey`, and RANGE
/// `sequenceNumber` when `with_range`.
pub async fn create_table(dynamodb: &Client, name: &str, with_range: bool) {
    let mut call = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("partitionKey"))
        .key_schema(key("partitionKey", KeyType::Hash));
    if with_range {
        call = call
            .attribute_definitions(attr("sequenceNumber"))
            .key_schema(key("sequenceNumber", KeyType::Range));
    }
    call.send().await.expect("CreateTable");
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema element")
}

/// Every item of a table.
pub async fn scan_all(dynamodb: &Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// Reads a string attribute.
pub fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("attribute {name} of type S in {item:?}"))
}

/// Reads a number attribute as text.
pub fn n<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .unwrap_or_else(|| panic!("attribute {name} of type N in {item:?}"))
}

/// The records archived in `items` (ALL or LATEST table), payloads decoded.
pub fn archived(items: &[Item]) -> BTreeSet<ArchivedRecord> {
    items
        .iter()
        .map(|i| {
            (
                s(i, "partitionKey").to_owned(),
                s(i, "sequenceNumber").to_owned(),
                s(i, "shardId").to_owned(),
                STANDARD
                    .decode(s(i, "recordData"))
                    .expect("recordData is base64"),
            )
        })
        .collect()
}

/// The (partition key, sequence number) of each record in `expected` that `actual` lacks,
/// for a failing test's report.
pub fn missing(
    expected: &BTreeSet<ArchivedRecord>,
    actual: &BTreeSet<ArchivedRecord>,
) -> Vec<(String, String)> {
    expected
        .difference(actual)
        .map(|(key, seq, _, _)| (key.clone(), seq.clone()))
        .collect()
}

/// Stream `stream` (one shard) tagged `StreamArchiveMode=ALL` whose `<stream>-archive-ALL`
/// table has a HASH key only: a key schema that does not fit ALL mode.
pub async fn stream_with_hash_only_table(
    kinesis: &aws_sdk_kinesis::Client,
    dynamodb: &Client,
    stream: &str,
) {
    crate::kinesis::create_stream(kinesis, stream, 1).await;
    crate::kinesis::tag_stream(kinesis, stream, &[("StreamArchiveMode", "ALL")]).await;
    create_table(dynamodb, &format!("{stream}-archive-ALL"), false).await;
}

/// `text` refuses table `table` (key schema `found`) for ALL mode, naming both key schemas.
pub fn assert_refused_for_all_mode(text: &str, table: &str, found: &str) {
    assert!(
        text.contains(table)
            && text.contains(&format!("{found} but ALL mode needs"))
            && text.contains("HASH partitionKey (S) + RANGE sequenceNumber (S)"),
        "{text}"
    );
}

/// Writes `records` straight into `table` as the archiver would have, archived at
/// `archived_at` without an expiry: for tests that choose arrival and archive times.
pub async fn put_archived(
    dynamodb: &Client,
    table: &str,
    records: &[kinarch_core::ArchiveRecord],
    archived_at: chrono::DateTime<chrono::Utc>,
) {
    for record in records {
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(record.to_item(archived_at, None).item))
            .send()
            .await
            .expect("PutItem");
    }
}

/// Stream `stream` (`shards` shards) set up for ALL, its tag and its table
/// `<stream>-archive-ALL` holding `records` archived at `archived_at`: where the tests that
/// choose arrival times start.
pub async fn archived_stream(
    sdk: &aws_config::SdkConfig,
    stream: &str,
    shards: i32,
    records: &[kinarch_core::ArchiveRecord],
    archived_at: chrono::DateTime<chrono::Utc>,
) {
    let kinesis_client = aws_sdk_kinesis::Client::new(sdk);
    let dynamodb = Client::new(sdk);
    let table = format!("{stream}-archive-ALL");
    crate::kinesis::create_stream(&kinesis_client, stream, shards).await;
    crate::kinesis::tag_stream(&kinesis_client, stream, &[("StreamArchiveMode", "ALL")]).await;
    create_table(&dynamodb, &table, true).await;
    put_archived(&dynamodb, &table, records, archived_at).await;
}
