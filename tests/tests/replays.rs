//! Issue 11.5, replays never corrupt the archive: records that `kinarch reinject --metadata`
//! sends back into the stream they were archived from are recognized by `kinarch archive`
//! and by the Lambda function (the real binaries against moto) and not archived again, for
//! ALL and LATEST archives and for any separator; the tables stay item for item as they were
//! and `skipped_replay` counts the records. A replay into another stream is archived there.
//! A raw replay into the source stream (which could not be recognized) is refused without
//! `--yes`, and sends nothing.
//!
//! Streams have one shard: moto's sequence numbers are per-shard counters (see cli_archive).

use std::collections::BTreeMap;

use kinarch_core::domain::frame::ReplayFrame;
use kinarch_tests::cli::{self, kinarch};
use kinarch_tests::dynamo::{self, Item, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{LambdaFunction, failures};
use serde_json::Value;

/// The test world, with this file's steps.
struct World(kinarch_tests::world::World);

impl std::ops::Deref for World {
    type Target = kinarch_tests::world::World;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

async fn world() -> World {
    World(kinarch_tests::world::World::start().await)
}

impl World {
    /// Every item of `table` by (partitionKey, sequenceNumber), every attribute kept.
    async fn table(&self, table: &str) -> BTreeMap<(String, String), Item> {
        dynamo::scan_all(&self.dynamodb, table)
            .await
            .into_iter()
            .map(|item| {
                (
                    (
                        s(&item, "partitionKey").to_owned(),
                        s(&item, "sequenceNumber").to_owned(),
                    ),
                    item,
                )
            })
            .collect()
    }

    /// Panics unless `table` holds exactly the items of `before`, every attribute equal.
    async fn assert_unchanged(&self, table: &str, before: &BTreeMap<(String, String), Item>) {
        assert_eq!(&self.table(table).await, before, "{table} is unchanged");
    }

    /// `kinarch put` of `count` JSON lines over 3 keys (`id` c-0..c-2).
    async fn put(&self, stream: &str, count: usize) {
        let lines: String = (0..count)
            .map(|i| format!("{{\"id\":\"c-{}\",\"n\":{i},\"sep\":\"|#\"}}\n", i % 3))
            .collect();
        let mut command = cli::command(&self.moto);
        command.args(["put", stream, "--key-field", "id"]);
        cli::run_command(command, Some(lines.as_bytes())).await.ok();
    }

    /// `kinarch reinject ARGS` with one PutRecords call in flight (moto numbers records
    /// without a lock); checks that `sent` records were sent.
    async fn reinject(&self, args: &[&str], sent: usize) {
        let mut all = vec!["reinject"];
        all.extend_from_slice(args);
        all.extend(["--concurrency", "1"]);
        let run = kinarch(&self.moto, &all).await;
        run.ok();
        assert!(
            run.stderr
                .contains(&format!("sent {sent}, retried 0, failed 0")),
            "{all:?}: {}",
            run.stderr
        );
    }

    /// `kinarch archive STREAM --output json`, the summary.
    async fn archive_json(&self, stream: &str) -> Value {
        kinarch(&self.moto, &["archive", stream, "--output", "json"])
            .await
            .json()
    }
}

/// `kinarch archive` in ALL and LATEST mode: after a replay of the whole archive into the
/// source stream with --metadata (the default separator, then '#'), archiving again writes
/// nothing, counts every replayed record as skippedReplay, and the table is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinarch_archive_skips_replays_into_the_source_in_all_and_latest_mode() {
    let w = world().await;
    for mode in ["ALL", "LATEST"] {
        let stream = format!("orders-{}", mode.to_lowercase());
        let table = format!("{stream}-archive-{mode}");
        w.set_up(&stream, 1, mode, &[]).await;
        w.put(&stream, 12).await;
        let first = w.archive_json(&stream).await;
        assert_eq!(first["records"], 12, "{mode}");
        assert_eq!(first["skippedReplay"], 0, "{mode}");
        let archived = w.table(&table).await;
        let kept = if mode == "ALL" { 12 } else { 3 };
        assert_eq!(archived.len(), kept, "{mode}");

        // The default separator; the summary as JSON.
        w.reinject(&[&stream, "--metadata"], kept).await;
        let again = w.archive_json(&stream).await;
        assert_eq!(again["records"], kept, "{mode}: {again}");
        assert_eq!(again["skippedReplay"], kept, "{mode}: {again}");
        assert_eq!(again["written"], 0, "{mode}: {again}");
        assert_eq!(again["skippedOlder"], 0, "{mode}: {again}");
        w.assert_unchanged(&table, &archived).await;

        // Another separator; the summary as text.
        w.reinject(&[&stream, "--metadata", "--separator", "#"], kept)
            .await;
        let back = kinesis::read_all(&w.kinesis, &stream).await;
        let last = back.last().unwrap();
        assert_eq!(ReplayFrame::recognize(&last.data).unwrap().separator, b'#');
        let run = kinarch(&w.moto, &["archive", &stream]).await;
        run.ok();
        let expected =
            format!("{kept} replayed into their source stream, archived already, not written");
        assert!(run.out().contains(&expected), "{mode}: {}", run.out());
        w.assert_unchanged(&table, &archived).await;
        assert_eq!(back.len(), 12 + 2 * kept, "{mode}: the replays were sent");
    }
}

/// A replay into another stream is that stream's record: archived there as usual, frame
/// and all. Replaying that archive into its own stream again (frames in frames) changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_another_stream_is_archived_there() {
    let w = world().await;
    w.set_up("orders", 1, "ALL", &[]).await;
    w.set_up("audit", 1, "ALL", &[]).await;
    w.put("orders", 9).await;
    assert_eq!(w.archive_json("orders").await["written"], 9);
    let orders = w.table("orders-archive-ALL").await;

    w.reinject(&["orders", "--target", "audit", "--metadata"], 9)
        .await;
    let summary = w.archive_json("audit").await;
    assert_eq!(summary["written"], 9, "{summary}");
    assert_eq!(summary["skippedReplay"], 0, "{summary}");
    let audit = w.table("audit-archive-ALL").await;
    assert_eq!(audit.len(), 9);
    for item in audit.values() {
        let data = dynamo::archived(std::slice::from_ref(item))
            .pop_first()
            .unwrap()
            .3;
        let frame = ReplayFrame::recognize(&data).expect("framed");
        assert_eq!(
            frame.metadata.original_stream_name.as_deref(),
            Some("orders")
        );
        let original = &orders[&(
            s(item, "partitionKey").to_owned(),
            frame.metadata.original_sequence_number.clone(),
        )];
        assert_eq!(
            dynamo::archived(std::slice::from_ref(original))
                .pop_first()
                .unwrap()
                .3,
            frame.payload
        );
    }

    w.reinject(&["audit", "--metadata", "--separator", "%"], 9)
        .await;
    let summary = w.archive_json("audit").await;
    assert_eq!(summary["skippedReplay"], 9, "{summary}");
    w.assert_unchanged("audit-archive-ALL", &audit).await;
    w.assert_unchanged("orders-archive-ALL", &orders).await;
}

/// Without --metadata a replay into the source cannot be recognized later, so it needs a
/// yes: refused (exit 2, nothing sent) without a terminal and without --yes, cancelled on a
/// terminal answered "n"; --dry-run needs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_replay_into_the_source_needs_yes_and_sends_nothing_without_it() {
    let w = world().await;
    w.set_up("orders", 1, "LATEST", &[]).await;
    w.put("orders", 6).await;
    w.archive_json("orders").await;
    let before = w.table("orders-archive-LATEST").await;

    let run = kinarch(&w.moto, &["reinject", "orders"]).await;
    run.expect_code(2);
    for expected in [
        "will be archived again as new records",
        "--yes",
        "--metadata",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    let run = kinarch_tests::cli::kinarch_on_a_terminal(&w.moto, "reinject orders", "n\n").await;
    run.expect_code(1);
    let shown = run.out();
    assert!(
        shown.contains("archived again as new records") && shown.contains("Send them anyway?"),
        "{shown}"
    );
    assert!(shown.contains("nothing was sent"), "{shown}");
    let run = kinarch(&w.moto, &["reinject", "orders", "--dry-run"]).await;
    run.ok();
    assert!(run.stderr.contains("would send 3"), "{}", run.stderr);
    assert_eq!(
        kinesis::read_all(&w.kinesis, "orders").await.len(),
        6,
        "nothing was sent"
    );

    // With --yes the records go, and are archived as the new records they look like.
    w.reinject(&["orders", "--yes"], 3).await;
    assert_eq!(kinesis::read_all(&w.kinesis, "orders").await.len(), 9);
    let summary = w.archive_json("orders").await;
    assert_eq!(summary["skippedReplay"], 0, "{summary}");
    assert_eq!(summary["written"], 3, "{summary}");
    assert_ne!(w.table("orders-archive-LATEST").await, before);
}

/// A Lambda function with the summary line logged.
async fn function(w: &World) -> LambdaFunction {
    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await
}

/// Invokes the function with `records`; expects no failure and returns the batch's summary
/// line fields.
async fn invoke(function: &mut LambdaFunction, arn: &str, records: &[StreamRecord]) -> Value {
    let response = function
        .invoke(kinesis::event(arn, records))
        .await
        .response();
    assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    function
        .json_logs()
        .into_iter()
        .rev()
        .find(|l| l["fields"]["message"] == "archived batch")
        .expect("a summary line")["fields"]
        .clone()
}

/// The Lambda function in ALL and LATEST mode: the replayed records delivered back (alone,
/// then with a new record in the same batch, another separator) are skipped and counted as
/// skipped_replay, handled without a partial failure; the table changes only by the new
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_function_skips_replays_into_the_source_in_all_and_latest_mode() {
    let w = world().await;
    let mut function = function(&w).await;
    for mode in ["ALL", "LATEST"] {
        let stream = format!("prices-{}", mode.to_lowercase());
        let table = format!("{stream}-archive-{mode}");
        let arn = w.set_up(&stream, 1, mode, &[]).await;
        for i in 0..10 {
            let data = [b"|#".as_slice(), &[0x00, 0xff, i as u8]].concat();
            kinesis::put(&w.kinesis, &stream, &format!("sku-{}", i % 4), &data).await;
        }
        let records = kinesis::read_all(&w.kinesis, &stream).await;
        let first = invoke(&mut function, &arn, &records).await;
        assert_eq!(first["skipped_replay"], 0, "{mode}: {first}");
        let archived = w.table(&table).await;
        let kept = if mode == "ALL" { 10 } else { 4 };
        assert_eq!(archived.len(), kept, "{mode}");

        w.reinject(&[&stream, "--metadata"], kept).await;
        let replays = kinesis::read_all(&w.kinesis, &stream).await.split_off(10);
        assert_eq!(replays.len(), kept);
        let line = invoke(&mut function, &arn, &replays).await;
        assert_eq!(line["records"], kept, "{mode}: {line}");
        assert_eq!(line["skipped_replay"], kept, "{mode}: {line}");
        assert_eq!(line["written"], 0, "{mode}: {line}");
        assert_eq!(line["failed"], 0, "{mode}: {line}");
        w.assert_unchanged(&table, &archived).await;

        // Replays with '#' and a new record after them, in one batch.
        w.reinject(&[&stream, "--metadata", "--separator", "#"], kept)
            .await;
        kinesis::put(&w.kinesis, &stream, "sku-new", b"new").await;
        let batch = kinesis::read_all(&w.kinesis, &stream)
            .await
            .split_off(10 + kept);
        assert_eq!(batch.len(), kept + 1);
        let line = invoke(&mut function, &arn, &batch).await;
        assert_eq!(line["skipped_replay"], kept, "{mode}: {line}");
        assert_eq!(line["written"], 1, "{mode}: {line}");
        let mut after = w.table(&table).await;
        let new = batch.last().unwrap();
        let added = after
            .remove(&(new.partition_key.clone(), new.sequence_number.clone()))
            .expect("the new record is archived");
        assert_eq!(dynamo::archived(&[added]).pop_first().unwrap().3, b"new");
        assert_eq!(after, archived, "{mode}: nothing else changed");
    }
}
