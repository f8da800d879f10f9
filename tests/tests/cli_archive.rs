//! `kinarch archive` and `kinarch put`, the real binary against moto: several shards from
//! TRIM_HORIZON with the table contract, a SIGKILL mid-way and a resume from checkpoints,
//! a reshard while following (parents before children), LATEST mode across shards,
//! `--from LATEST`, SIGTERM with a checkpoint file and a JSON summary, failed writes read
//! again (and a run that stops when they keep failing), throttled reads, ListShards paging,
//! a checkpoint scan answered with an empty LastEvaluatedKey, `put` byte for byte, and bad
//! input.
//!
//! moto quirks these tests live with (see /work/shared/LOCAL-AWS.md): sequence numbers are
//! small per-shard counters, so records get unique partition keys wherever two shards could
//! otherwise give one key the same sequence number; and moto keeps routing new records to a
//! closed parent shard, so the reshard test writes its records before resharding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_tests::cli::{self, Run, kinarch};
use kinarch_tests::dynamo::{self, Item, n, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::world::World;
use serde_json::Value;

async fn world() -> World {
    World::start().await
}

/// Puts `count` records with unique keys (`key-<i>`), payloads `record <i>` followed by
/// binary bytes.
async fn put_unique(w: &World, stream: &str, from: usize, count: usize) {
    for i in from..from + count {
        let mut data = format!("record {i} ").into_bytes();
        data.extend_from_slice(&[0x00, 0xff, (i % 256) as u8]);
        kinesis::put(&w.kinesis, stream, &format!("key-{i}"), &data).await;
    }
}

fn json(run: &Run) -> Value {
    run.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_every_shard_from_trim_horizon_following_the_contract() {
    let w = world().await;
    w.set_up("orders", 3, "ALL", &["--ttl-seconds", "3600"])
        .await;
    for i in 0..90 {
        let data: Vec<u8> = if i % 3 == 0 {
            vec![0x00, 0xff, b'\n', (i % 256) as u8]
        } else {
            format!("{{\"order\":{i}}}").into_bytes()
        };
        kinesis::put(&w.kinesis, "orders", &format!("customer-{}", i % 11), &data).await;
    }
    let records = kinesis::read_all(&w.kinesis, "orders").await;
    assert_eq!(records.len(), 90);
    assert_eq!(
        records
            .iter()
            .map(|r| &r.shard_id)
            .collect::<BTreeSet<_>>()
            .len(),
        3,
        "the records are spread over the three shards"
    );

    let before = chrono::Utc::now().timestamp();
    let run = kinarch(
        &w.moto,
        &["archive", "orders", "--batch-size", "7", "--output", "json"],
    )
    .await;
    let after = chrono::Utc::now().timestamp();
    let summary = json(&run);
    assert_eq!(summary["records"], 90);
    assert_eq!(summary["written"], 90);
    assert_eq!(summary["stopped"], "caught-up");
    assert_eq!(summary["from"], "TRIM_HORIZON");
    assert_eq!(
        summary["checkpoints"]["table"],
        "orders-archive-ALL-checkpoints"
    );
    let shards = summary["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    for shard in shards {
        assert_eq!(shard["state"], "caught-up", "{shard}");
        let id = shard["shardId"].as_str().unwrap();
        let in_shard: Vec<&StreamRecord> = records.iter().filter(|r| r.shard_id == id).collect();
        assert_eq!(shard["records"], in_shard.len());
        let highest = in_shard
            .iter()
            .map(|r| r.sequence_number.parse::<u64>().unwrap())
            .max()
            .unwrap();
        assert_eq!(shard["sequenceNumber"], highest.to_string());
    }

    let items = w.items("orders-archive-ALL").await;
    assert_eq!(items.len(), 90, "every record once");
    assert_eq!(dynamo::archived(&items), kinesis::as_archived(&records));
    let by_key: HashMap<(&str, &str), &Item> = items
        .iter()
        .map(|i| ((s(i, "partitionKey"), s(i, "sequenceNumber")), i))
        .collect();
    for r in &records {
        let item = by_key[&(r.partition_key.as_str(), r.sequence_number.as_str())];
        assert_eq!(item.len(), 7, "exactly the contract's attributes: {item:?}");
        assert_eq!(s(item, "shardId"), r.shard_id);
        assert_eq!(
            n(item, "approximateArrivalTimestamp")
                .parse::<f64>()
                .unwrap(),
            r.arrival,
            "arrival kept to the millisecond, as a Lambda event carries it"
        );
        let archived_at =
            chrono::NaiveDateTime::parse_from_str(s(item, "lastUpdate"), "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp();
        assert!((before - 1..=after + 1).contains(&archived_at));
        assert_eq!(
            n(item, "expireAfter").parse::<i64>().unwrap(),
            archived_at + 3600
        );
    }

    let checkpoints = w.items("orders-archive-ALL-checkpoints").await;
    assert_eq!(checkpoints.len(), 3);
    for c in &checkpoints {
        assert_eq!(s(c, "stream"), "orders");
        assert_eq!(s(c, "archiveTable"), "orders-archive-ALL");
        assert!(!s(c, "updatedAt").is_empty());
        assert_eq!(
            c["finished"],
            aws_sdk_dynamodb::types::AttributeValue::Bool(false)
        );
    }

    // Nothing new: a second run reads nothing and says where each shard resumed.
    let again = json(&kinarch(&w.moto, &["archive", "orders", "--output", "json"]).await);
    assert_eq!(again["records"], 0);
    for shard in again["shards"].as_array().unwrap() {
        assert!(
            shard["startedFrom"]
                .as_str()
                .unwrap()
                .starts_with("after checkpoint "),
            "{shard}"
        );
    }

    // The text summary names records, shards and seconds.
    let text = kinarch(&w.moto, &["archive", "orders"]).await;
    text.ok();
    let out = text.out();
    assert!(
        out.contains(
            "archived 0 records of stream orders into table orders-archive-ALL (ALL mode) in "
        ),
        "{out}"
    );
    assert!(out.contains("shardId-000000000002  caught-up"), "{out}");
    assert!(
        out.contains("checkpoints: table orders-archive-ALL-checkpoints"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_archiver_resumes_from_its_checkpoints_with_nothing_missing() {
    let w = world().await;
    w.set_up("clicks", 3, "ALL", &[]).await;
    put_unique(&w, "clicks", 0, 240).await;
    let records = kinesis::read_all(&w.kinesis, "clicks").await;

    // Slow writes, so that the process is surely killed half-way.
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "BatchWriteItem").then(|| Fault::Delay(Duration::from_millis(150)))
    });
    let mut first = cli::Running::start(
        &w.moto.env_via(&proxy.endpoint()),
        &["archive", "clicks", "--follow", "--batch-size", "10"],
    );
    w.wait_for_items("clicks-archive-ALL-checkpoints", 2).await;
    first.child.start_kill().unwrap();
    let killed = first.wait().await;
    assert_eq!(killed.code, -1, "killed by SIGKILL");
    let after_kill = w.items("clicks-archive-ALL").await.len();
    assert!(
        (1..240).contains(&after_kill),
        "killed half-way: {after_kill} of 240 archived"
    );
    let checkpointed: u64 = w
        .items("clicks-archive-ALL-checkpoints")
        .await
        .iter()
        .map(|c| s(c, "sequenceNumber").parse::<u64>().unwrap())
        .sum();
    assert!(checkpointed > 0);

    let resumed = json(&kinarch(&w.moto, &["archive", "clicks", "--output", "json"]).await);
    let read_again = resumed["records"].as_u64().unwrap();
    // moto numbers each shard's records 1, 2, 3...: the checkpoints add up to the records
    // they cover.
    assert_eq!(
        read_again,
        240 - checkpointed,
        "the second run reads exactly what was not checkpointed"
    );
    for shard in resumed["shards"].as_array().unwrap() {
        let from = shard["startedFrom"].as_str().unwrap();
        assert!(
            from.starts_with("after checkpoint ") || from == "TRIM_HORIZON",
            "{shard}"
        );
    }
    let items = w.items("clicks-archive-ALL").await;
    assert_eq!(items.len(), 240, "every record once");
    assert_eq!(
        dynamo::archived(&items),
        kinesis::as_archived(&records),
        "none missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_while_archiving_reads_parents_before_children_and_misses_nothing() {
    let w = world().await;
    w.set_up("events", 2, "ALL", &[]).await;
    put_unique(&w, "events", 0, 80).await;
    let records = kinesis::read_all(&w.kinesis, "events").await;

    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "BatchWriteItem").then(|| Fault::Delay(Duration::from_millis(100)))
    });
    let mut running = cli::Running::start(
        &w.moto.env_via(&proxy.endpoint()),
        &[
            "archive",
            "events",
            "--follow",
            "--batch-size",
            "5",
            "-v",
            "--output",
            "json",
        ],
    );
    running.wait_for_log(&["reading shard"], 2).await;
    w.kinesis
        .update_shard_count()
        .stream_name("events")
        .target_shard_count(4)
        .scaling_type(aws_sdk_kinesis::types::ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount");
    let shards = w
        .kinesis
        .list_shards()
        .stream_name("events")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let children: Vec<(String, String)> = shards
        .iter()
        .filter_map(|s| Some((s.shard_id.clone(), s.parent_shard_id.clone()?)))
        .collect();
    assert_eq!(children.len(), 4, "two parents split in two: {shards:?}");
    for (child, _) in &children {
        running.wait_for_log(&["reading shard", child], 1).await;
    }
    running.signal("TERM");
    let run = running.wait().await;
    let summary = json(&run);
    assert_eq!(summary["stopped"], "shutdown");

    let log: Vec<String> = run.stderr.lines().map(str::to_owned).collect();
    let line_of = |needles: &[&str]| {
        log.iter()
            .position(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no log line {needles:?}:\n{}", run.stderr))
    };
    for (child, parent) in &children {
        assert!(
            line_of(&["shard finished", parent]) < line_of(&["reading shard", child]),
            "{parent} is finished before its child {child} starts:\n{}",
            run.stderr
        );
    }
    let states: BTreeMap<String, (String, Value)> = summary["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shardId"].as_str().unwrap().to_owned(),
                (
                    s["state"].as_str().unwrap().to_owned(),
                    s["parents"].clone(),
                ),
            )
        })
        .collect();
    assert_eq!(states.len(), 6);
    for (_, parent) in &children {
        assert_eq!(states[parent].0, "finished");
    }

    let items = w.items("events-archive-ALL").await;
    assert_eq!(items.len(), 80, "every record once");
    assert_eq!(
        dynamo::archived(&items),
        kinesis::as_archived(&records),
        "none missing"
    );
    let checkpoints: HashMap<String, Item> = w
        .items("events-archive-ALL-checkpoints")
        .await
        .into_iter()
        .map(|c| (s(&c, "shardId").to_owned(), c))
        .collect();
    for (_, parent) in &children {
        assert_eq!(
            checkpoints[parent]["finished"],
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            "a finished parent is checkpointed as finished"
        );
    }

    // A restart does not read the finished parents again.
    let again = json(&kinarch(&w.moto, &["archive", "events", "--output", "json"]).await);
    assert_eq!(again["records"], 0);
    for (_, parent) in &children {
        let shard = again["shards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["shardId"] == parent.as_str())
            .unwrap();
        assert_eq!(shard["state"], "finished");
        assert_eq!(shard["startedFrom"], Value::Null, "not read again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_mode_converges_to_the_numerically_newest_record_per_key_across_shards() {
    let w = world().await;
    w.set_up("prices", 2, "LATEST", &[]).await;
    // Explicit hash keys put records of one partition key into both shards, where moto
    // numbers them with independent counters: "12" in one shard is newer than "9" in the
    // other, though it sorts first as a string.
    let half = (1u128 << 127).to_string();
    let plan: Vec<(&str, &str)> = [
        vec![("a", "0"); 9],
        vec![("a", half.as_str()); 12],
        vec![("b", half.as_str()); 2],
        vec![("b", "0"); 2],
        vec![("c", "0"); 1],
    ]
    .concat();
    let mut newest: HashMap<&str, (u64, String, Vec<u8>)> = HashMap::new();
    for (i, (key, hash)) in plan.iter().enumerate() {
        let data = format!("{key} #{i}").into_bytes();
        let out = w
            .kinesis
            .put_record()
            .stream_name("prices")
            .partition_key(*key)
            .explicit_hash_key(*hash)
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        let seq: u64 = out.sequence_number.parse().unwrap();
        let entry = newest.entry(key).or_insert((0, String::new(), Vec::new()));
        if seq > entry.0 {
            *entry = (seq, out.shard_id, data);
        }
    }
    assert_eq!(newest["a"].0, 12);
    assert_eq!(newest["b"].0, 14, "b's newest is in the second shard");

    // Both shards write key a at once: through the proxy, which makes moto's conditional
    // writes atomic as DynamoDB's are (see kinarch_tests::proxy).
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let mut command = cli::command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args(["archive", "prices", "--batch-size", "4", "--output", "json"]);
    let summary = json(&cli::run_command(command, None).await);
    assert_eq!(summary["records"], plan.len());
    assert_eq!(summary["mode"], "LATEST");
    let items = w.items("prices-archive-LATEST").await;
    assert_eq!(items.len(), 3, "one item per key");
    for item in &items {
        let key = s(item, "partitionKey");
        let (seq, shard, data) = &newest[key];
        assert_eq!(s(item, "sequenceNumber"), seq.to_string(), "key {key}");
        assert_eq!(s(item, "shardId"), shard, "key {key}");
        assert_eq!(&STANDARD.decode(s(item, "recordData")).unwrap(), data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_latest_archives_only_records_that_arrive_after_the_start() {
    let w = world().await;
    w.set_up("ticks", 2, "ALL", &[]).await;
    put_unique(&w, "ticks", 0, 20).await;
    let mut running = cli::Running::start(
        &w.moto.env(),
        &["archive", "ticks", "--from", "LATEST", "--follow", "-v"],
    );
    running
        .wait_for_log(&["reading shard", "from", "LATEST"], 2)
        .await;
    put_unique(&w, "ticks", 100, 10).await;
    w.wait_for_items("ticks-archive-ALL", 10).await;
    running.signal("TERM");
    running.wait().await.ok();
    let keys: BTreeSet<String> = w
        .items("ticks-archive-ALL")
        .await
        .iter()
        .map(|i| s(i, "partitionKey").to_owned())
        .collect();
    let expected: BTreeSet<String> = (100..110).map(|i| format!("key-{i}")).collect();
    assert_eq!(keys, expected, "only the records put after the start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_stops_cleanly_on_sigterm_with_checkpoints_in_a_file() {
    let w = world().await;
    w.set_up("logs", 2, "ALL", &[]).await;
    let dir = std::env::temp_dir().join(format!("kinarch-archive-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("logs-checkpoints.json");
    let _ = std::fs::remove_file(&file);
    let file_arg = file.to_str().unwrap();
    let mut running = cli::Running::start(
        &w.moto.env(),
        &[
            "archive",
            "logs",
            "--follow",
            "--checkpoint-file",
            file_arg,
            "--output",
            "json",
            "-v",
        ],
    );
    running.wait_for_log(&["reading shard"], 2).await;
    put_unique(&w, "logs", 0, 30).await;
    w.wait_for_items("logs-archive-ALL", 30).await;
    running.signal("TERM");
    let run = running.wait().await;
    run.ok();
    let summary = json(&run);
    assert_eq!(summary["stopped"], "shutdown");
    assert_eq!(summary["follow"], true);
    assert_eq!(summary["records"], 30);
    assert_eq!(summary["checkpoints"]["file"], file_arg);

    let records = kinesis::read_all(&w.kinesis, "logs").await;
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["stream"], "logs");
    assert_eq!(saved["archiveTable"], "logs-archive-ALL");
    for (shard, checkpoint) in saved["shards"].as_object().unwrap() {
        let highest = records
            .iter()
            .filter(|r| &r.shard_id == shard)
            .map(|r| r.sequence_number.parse::<u64>().unwrap())
            .max()
            .unwrap();
        assert_eq!(checkpoint["sequenceNumber"], highest.to_string(), "{shard}");
        assert_eq!(checkpoint["finished"], false);
    }
    let tables = w.dynamodb.list_tables().send().await.unwrap();
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|t| t.ends_with("-checkpoints")),
        "no checkpoint table is created with --checkpoint-file: {tables:?}"
    );

    // The next run resumes from the file.
    put_unique(&w, "logs", 30, 5).await;
    let again = json(
        &kinarch(
            &w.moto,
            &[
                "archive",
                "logs",
                "--checkpoint-file",
                file_arg,
                "--output",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(again["records"], 5);
    assert_eq!(w.items("logs-archive-ALL").await.len(), 35);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_are_read_again_from_the_lowest_failed_record() {
    let w = world().await;
    w.set_up("payments", 1, "ALL", &[]).await;
    for i in 0..40 {
        let key = if i == 23 {
            "poison".to_owned()
        } else {
            format!("key-{i}")
        };
        kinesis::put(
            &w.kinesis,
            "payments",
            &key,
            format!("payment {i}").as_bytes(),
        )
        .await;
    }
    let records = kinesis::read_all(&w.kinesis, "payments").await;
    // Requests holding the poison record are refused twice, then accepted.
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let refused = std::sync::atomic::AtomicU32::new(0);
    proxy.set_rule(move |call| {
        (call.operation() == "BatchWriteItem"
            && call.body.contains("\"poison\"")
            && refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2)
            .then(|| Fault::client_error("ValidationException"))
    });
    let mut command = cli::command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args(["archive", "payments", "--output", "json"]);
    let run = cli::run_command(command, None).await;
    let summary = json(&run);
    assert_eq!(proxy.injected(), 2);
    assert_eq!(summary["retriedBatches"], 2);
    assert_eq!(summary["records"], 40, "each record counted once");
    assert!(
        run.stderr.contains("reading them again"),
        "the retry is logged: {}",
        run.stderr
    );
    let items = w.items("payments-archive-ALL").await;
    assert_eq!(
        dynamo::archived(&items),
        kinesis::as_archived(&records),
        "nothing skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_sends_lines_byte_for_byte_with_fixed_or_json_keys() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "inbox", 2).await;
    let mut command = cli::command(&w.moto);
    command.args(["put", "inbox", "--partition-key", "fixed"]);
    let binary = b"text line\n\x00\xff binary \x80\r\n\nlast".to_vec();
    let run = cli::run_command(command, Some(&binary)).await;
    run.ok();
    assert!(
        run.stderr.contains("put 3 records into stream inbox"),
        "{}",
        run.stderr
    );
    let mut command = cli::command(&w.moto);
    command.args(["put", "inbox", "--key-field", "user"]);
    let lines = b"{\"user\":\"ann\",\"n\":1}\n{\"user\":42,\"n\":2}\nnot json\n{\"n\":4}\n";
    let run = cli::run_command(command, Some(lines)).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("line 3: the line is not JSON"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("line 4: the JSON object has no field \"user\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 line(s) were not sent"),
        "{}",
        run.stderr
    );

    let mut got: Vec<(String, Vec<u8>)> = kinesis::read_all(&w.kinesis, "inbox")
        .await
        .into_iter()
        .map(|r| (r.partition_key, r.data))
        .collect();
    got.sort();
    let mut expected = vec![
        ("fixed".to_owned(), b"text line".to_vec()),
        // The line ended in CRLF: both are line end (issue 15).
        ("fixed".to_owned(), b"\x00\xff binary \x80".to_vec()),
        ("fixed".to_owned(), b"last".to_vec()),
        ("ann".to_owned(), b"{\"user\":\"ann\",\"n\":1}".to_vec()),
        ("42".to_owned(), b"{\"user\":42,\"n\":2}".to_vec()),
    ];
    expected.sort();
    assert_eq!(got, expected);

    let run = kinarch(&w.moto, &["put", "nope", "--partition-key", "k"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("stream nope was not found"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_message_and_the_right_exit_code() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "raw", 1).await;
    kinesis::create_stream(&w.kinesis, "tagged", 1).await;
    kinesis::tag_stream(&w.kinesis, "tagged", &[("StreamArchiveMode", "ALL")]).await;
    w.set_up("ready", 1, "ALL", &[]).await;
    // A table with the default checkpoint name but another key.
    dynamo::create_table(&w.dynamodb, "ready-archive-ALL-checkpoints", false).await;

    let cases: &[(&[&str], i32, &[&str])] = &[
        (&["archive", "nope"], 1, &["stream nope was not found"]),
        (
            &["archive", "raw"],
            1,
            &["not set up for archiving", "kinarch setup raw"],
        ),
        (
            &["archive", "tagged"],
            1,
            &[
                "table tagged-archive-ALL",
                "does not exist",
                "kinarch setup tagged ALL",
            ],
        ),
        (
            &["archive", "ready"],
            1,
            &[
                "ready-archive-ALL-checkpoints",
                "HASH partitionKey",
                "--checkpoint-table",
            ],
        ),
        (
            &["archive", "ready", "--batch-size", "0"],
            2,
            &["1 to 10000"],
        ),
        (
            &["archive", "ready", "--from", "yesterday"],
            2,
            &["TRIM_HORIZON, LATEST or a time"],
        ),
        (&["archive", "bad name!"], 2, &["invalid stream name"]),
        (
            &[
                "archive",
                "ready",
                "--checkpoint-file",
                "/nonexistent-dir/c.json",
            ],
            1,
            &["file /nonexistent-dir/c.json", "cannot write it"],
        ),
        (&["put", "ready"], 2, &["--partition-key"]),
    ];
    for (args, code, expected) in cases {
        let run = kinarch(&w.moto, args).await;
        assert_eq!(run.code, *code, "{args:?}: {}", run.stderr);
        for text in *expected {
            assert!(
                run.stderr.contains(text),
                "{args:?}: {text:?} in {}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
}

/// ListShards pages as AWS serves them, answered by the fault proxy (moto insists on the
/// stream name with a page token, which AWS refuses): the first call names the stream, the
/// next ones send only the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_listed_page_by_page_as_aws_pages_them() {
    let w = world().await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let sdk = w.moto.sdk_config_via(&proxy.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let shard = |id: u32, parent: Option<u32>, ending: Option<&str>| {
        let mut range = serde_json::json!({"StartingSequenceNumber": "1"});
        if let Some(ending) = ending {
            range["EndingSequenceNumber"] = ending.into();
        }
        let mut shard = serde_json::json!({
            "ShardId": format!("shardId-{id:012}"),
            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
            "SequenceNumberRange": range,
        });
        if let Some(parent) = parent {
            shard["ParentShardId"] = format!("shardId-{parent:012}").into();
        }
        shard
    };
    let pages = [
        (
            vec![
                shard(
                    0,
                    None,
                    Some("49590338271490256608559692538361571095921575989136588898"),
                ),
                shard(1, None, None),
            ],
            Some("page-2"),
        ),
        (
            vec![shard(2, Some(0), None), shard(3, Some(0), None)],
            Some("page-3"),
        ),
        (vec![shard(4, None, None)], None),
    ];
    proxy.set_rule(move |call| {
        if call.operation() != "ListShards" {
            return None;
        }
        let body: Value = serde_json::from_str(&call.body).unwrap();
        seen.lock().unwrap().push((
            body["StreamName"].as_str().map(str::to_owned),
            body["NextToken"].as_str().map(str::to_owned),
            body["MaxResults"].as_i64(),
        ));
        let page = match body["NextToken"].as_str() {
            None => 0,
            Some("page-2") => 1,
            Some(_) => 2,
        };
        let (shards, token) = &pages[page];
        let mut answer = serde_json::json!({ "Shards": shards });
        if let Some(token) = token {
            answer["NextToken"] = (*token).into();
        }
        Some(Fault::Json {
            status: 200,
            body: answer.to_string(),
        })
    });
    let stream = kinarch_core::StreamName::new("wide").unwrap();
    let shards = kinarch_core::aws::streams::list_shards(&kinesis, &stream, Some(2))
        .await
        .unwrap();
    let ids: Vec<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        (0..5)
            .map(|i| format!("shardId-{i:012}"))
            .collect::<Vec<_>>()
    );
    assert!(shards[0].is_closed() && !shards[1].is_closed());
    assert_eq!(
        shards[2].parents().collect::<Vec<_>>(),
        ["shardId-000000000000"]
    );
    assert_eq!(
        *requests.lock().unwrap(),
        [
            (Some("wide".to_owned()), None, Some(2)),
            (None, Some("page-2".to_owned()), Some(2)),
            (None, Some("page-3".to_owned()), Some(2)),
        ],
        "only the first call names the stream"
    );
}

/// A checkpoint table scan whose answer carries an empty LastEvaluatedKey (`{}`) is at its
/// end, as a read of the archive treats it: the checkpoints load with one Scan instead of the
/// scan starting over forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_last_evaluated_key_ends_the_checkpoint_scan() {
    use kinarch_core::poller::checkpoint::{CheckpointLocation, CheckpointStore};
    let w = world().await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let sdk = w.moto.sdk_config_via(&proxy.endpoint()).await;
    let config = kinarch_core::StreamArchiveConfig::new(
        kinarch_core::StreamName::new("paged").unwrap(),
        kinarch_core::ArchiveMode::All,
        None,
    );
    let location =
        CheckpointLocation::Table(kinarch_core::TableName::new("paged-checkpoints").unwrap());
    let store = CheckpointStore::open(
        &aws_sdk_dynamodb::Client::new(&sdk),
        location,
        &config,
        Default::default(),
    )
    .await
    .unwrap();
    let scans = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&scans);
    proxy.set_rule(move |call| {
        if call.operation() != "Scan" {
            return None;
        }
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let page = serde_json::json!({
            "Items": [{
                "shardId": {"S": "shardId-000000000000"},
                "sequenceNumber": {"S": "5"},
                "finished": {"BOOL": false},
                "updatedAt": {"S": "2024-05-01T12:00:00.000Z"},
            }],
            "Count": 1,
            "ScannedCount": 1,
            "LastEvaluatedKey": {},
        });
        Some(Fault::Json {
            status: 200,
            body: page.to_string(),
        })
    });
    let loaded = tokio::time::timeout(Duration::from_secs(20), store.load())
        .await
        .expect("the scan ends at an empty LastEvaluatedKey")
        .unwrap()
        .current;
    assert_eq!(loaded.len(), 1);
    let checkpoint = &loaded["shardId-000000000000"];
    assert_eq!(checkpoint.sequence_number.as_ref().unwrap().as_str(), "5");
    assert!(!checkpoint.finished);
    assert_eq!(
        scans.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one page"
    );
}

/// Runs `kinarch archive` of `stream` through the library, through `proxy`, with
/// `options`, until it stops with an error (writes that keep failing).
async fn stalled_run(
    w: &World,
    proxy: &FaultProxy,
    stream: &str,
    options: kinarch_core::poller::PollerOptions,
) -> kinarch_core::Error {
    let sdk = w.moto.sdk_config_via(&proxy.endpoint()).await;
    let archiver = kinarch_core::poller::StreamPoller::open(
        &sdk,
        kinarch_core::StreamName::new(stream).unwrap(),
        options,
    )
    .await
    .unwrap();
    archiver
        .run(std::future::pending(), |_| {})
        .await
        .expect_err("the run stops")
}

/// Writes that keep failing stop the run after the allowed attempts, with an error naming
/// the shard and the first record that did not land, and a checkpoint before it. (Through the
/// library, to allow two attempts instead of ten with their backoff.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_keep_failing_stop_the_run_with_the_checkpoint_before_them() {
    use kinarch_core::poller::PollerOptions;
    let w = world().await;
    w.set_up("stuck", 1, "ALL", &[]).await;
    for i in 0..12 {
        let key = if i == 7 {
            "poison".to_owned()
        } else {
            format!("key-{i}")
        };
        kinesis::put(&w.kinesis, "stuck", &key, format!("record {i}").as_bytes()).await;
    }
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "BatchWriteItem" && call.body.contains("\"poison\""))
            .then(|| Fault::client_error("ValidationException"))
    });
    let options = PollerOptions {
        batch_size: 5,
        max_write_attempts: 2,
        ..PollerOptions::default()
    };
    let error = stalled_run(&w, &proxy, "stuck", options).await;
    let text = error.to_string();
    assert!(
        text.contains("shard shardId-000000000000 of stream stuck")
            && text.contains("from sequence number 6")
            && text.contains("after 2 attempts")
            && text.contains("ValidationException"),
        "{text}"
    );
    // The first batch (1..=5) landed and is checkpointed. The second (6..=10) is one
    // BatchWriteItem request holding the poison record (8): refused whole, so its lowest
    // record, 6, is where archiving stopped.
    let checkpoint = &w.items("stuck-archive-ALL-checkpoints").await[0];
    assert_eq!(s(checkpoint, "sequenceNumber"), "5");
    let items = w.items("stuck-archive-ALL").await;
    let mut seqs: Vec<u64> = items
        .iter()
        .map(|i| s(i, "sequenceNumber").parse().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=5).collect::<Vec<_>>());
}

/// The write error that stops a run is kept whole up to where the run reports it: the
/// stalled run's source is the writer's first error, an `Error::Aws` with its operation,
/// kind, code and status, whose own source is the SDK's BatchWriteItem error (issue 23:
/// the write path no longer turns AWS errors into text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_run_keeps_the_write_error_with_its_kind_and_source() {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
    use kinarch_core::Error;
    use kinarch_core::aws::error::AwsErrorKind;
    use kinarch_core::poller::PollerOptions;
    use std::error::Error as _;
    let w = world().await;
    w.set_up("refused", 1, "ALL", &[]).await;
    kinesis::put(&w.kinesis, "refused", "k", b"record").await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "BatchWriteItem").then(|| Fault::client_error("ValidationException"))
    });
    let options = PollerOptions {
        max_write_attempts: 1,
        ..PollerOptions::default()
    };
    let error = stalled_run(&w, &proxy, "refused", options).await;
    assert!(matches!(error, Error::ArchiveStalled { .. }), "{error:?}");
    let cause = error.source().expect("the write error is kept");
    let write_error = cause
        .downcast_ref::<Error>()
        .or_else(|| cause.downcast_ref::<Box<Error>>().map(|b| &**b))
        .expect("a kinarch error");
    let Error::Aws {
        operation,
        kind,
        code,
        status,
        ..
    } = write_error
    else {
        panic!("{write_error:?}")
    };
    assert_eq!(
        (*operation, *kind, code.as_deref(), *status),
        (
            "DynamoDB.BatchWriteItem",
            AwsErrorKind::Validation,
            Some("ValidationException"),
            Some(400)
        )
    );
    let call = write_error.source().expect("the failed call is kept");
    assert!(
        call.downcast_ref::<SdkError<BatchWriteItemError, HttpResponse>>()
            .is_some(),
        "{call:?}"
    );
}

/// GetRecords throttling (ProvisionedThroughputExceededException) is waited out with a
/// backoff, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_reads_back_off_and_archive_everything() {
    let w = world().await;
    w.set_up("busy", 2, "ALL", &[]).await;
    put_unique(&w, "busy", 0, 30).await;
    let records = kinesis::read_all(&w.kinesis, "busy").await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    // Eight refusals over two shards: one shard gets at least four, more than the SDK's own
    // three attempts absorb, so kinarch's backoff is exercised too.
    let throttled = std::sync::atomic::AtomicU32::new(0);
    proxy.set_rule(move |call| {
        (call.operation() == "GetRecords"
            && throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 8)
            .then(|| Fault::client_error("ProvisionedThroughputExceededException"))
    });
    let mut command = cli::command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args(["archive", "busy", "--batch-size", "10", "--output", "json"]);
    let run = cli::run_command(command, None).await;
    let summary = json(&run);
    assert_eq!(proxy.injected(), 8);
    assert_eq!(summary["records"], 30);
    assert!(
        run.stderr
            .contains("ProvisionedThroughputExceededException")
            && run.stderr.contains("backing off"),
        "the throttling is logged: {}",
        run.stderr
    );
    let items = w.items("busy-archive-ALL").await;
    assert_eq!(dynamo::archived(&items), kinesis::as_archived(&records));
}

/// Server errors while the archiver starts (more than the SDK's three attempts absorb) are
/// retried: the run starts and archives everything. An error that is not transient
/// (access denied) stops it at once, with the service's code and message, no raw response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_rides_out_server_errors_and_stops_on_access_denied() {
    let w = world().await;
    w.set_up("boot", 1, "ALL", &[]).await;
    put_unique(&w, "boot", 0, 5).await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let failed = std::sync::atomic::AtomicU32::new(0);
    proxy.set_rule(move |call| {
        (call.operation() == "DescribeTable"
            && failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 5)
            .then(|| Fault::Error {
                status: 500,
                error_type: "InternalServerError".into(),
            })
    });
    let env = w.moto.env_via(&proxy.endpoint());
    let mut command = cli::command_with_env(&env);
    command.args(["archive", "boot", "--output", "json"]);
    let run = cli::run_command(command, None).await;
    assert_eq!(json(&run)["records"], 5);
    assert_eq!(proxy.injected(), 5);
    assert!(
        run.stderr
            .contains("preparing the archiver failed; retrying"),
        "{}",
        run.stderr
    );

    proxy.set_rule(|call| {
        (call.operation() == "ListTagsForStream").then(|| Fault::Error {
            status: 400,
            error_type: "AccessDeniedException".into(),
        })
    });
    let mut command = cli::command_with_env(&env);
    command.args(["archive", "boot"]);
    let run = cli::run_command(command, None).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("AccessDeniedException") && run.stderr.contains("(HTTP 400)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("raw: Response"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("retrying").count(), 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_latest_stopped_before_any_record_loses_nothing_on_restart() {
    let w = world().await;
    w.set_up("quiet", 1, "ALL", &[]).await;
    put_unique(&w, "quiet", 0, 3).await; // before the first start: not archived
    // Longer ago than the margin a restart reads before the first start (5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let args = ["archive", "quiet", "--from", "LATEST", "--follow", "-v"];
    let mut first = cli::Running::start(&w.moto.env(), &args);
    first.wait_for_log(&["reading shard", "LATEST"], 1).await;
    first.signal("INT");
    first.wait().await.ok();
    let checkpoints = w.items("quiet-archive-ALL-checkpoints").await;
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert!(checkpoints[0].contains_key("startedAt"), "{checkpoints:?}");
    assert!(!checkpoints[0].contains_key("sequenceNumber"));

    // Written while no archiver runs: the restart must not skip them.
    put_unique(&w, "quiet", 100, 3).await;
    let mut second = cli::Running::start(&w.moto.env(), &args);
    second
        .wait_for_log(
            &["reading shard", "where an earlier run started at LATEST"],
            1,
        )
        .await;
    put_unique(&w, "quiet", 103, 1).await;
    w.wait_for_items("quiet-archive-ALL", 4).await;
    second.signal("TERM");
    second.wait().await.ok();
    let keys: BTreeSet<String> = w
        .items("quiet-archive-ALL")
        .await
        .iter()
        .map(|i| s(i, "partitionKey").to_owned())
        .collect();
    let expected: BTreeSet<String> = (100..104).map(|i| format!("key-{i}")).collect();
    assert_eq!(
        keys, expected,
        "the 3 records put between the runs and the 1 after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_table_of_another_stream_is_refused() {
    let w = world().await;
    w.set_up("first", 1, "ALL", &[]).await;
    w.set_up("second", 1, "ALL", &[]).await;
    put_unique(&w, "first", 0, 2).await;
    put_unique(&w, "second", 0, 2).await;
    let table = "shared-checkpoints";
    kinarch(&w.moto, &["archive", "first", "--checkpoint-table", table])
        .await
        .ok();
    let run = kinarch(&w.moto, &["archive", "second", "--checkpoint-table", table]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("shared-checkpoints")
            && run.stderr.contains("stream first")
            && run.stderr.contains("not of stream second")
            && run.stderr.contains("--checkpoint-table"),
        "{}",
        run.stderr
    );
    assert!(
        w.items_if_any("second-archive-ALL").await.is_empty(),
        "nothing archived"
    );
    // The stream it belongs to still uses it.
    kinarch(&w.moto, &["archive", "first", "--checkpoint-table", table])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_table_whose_key_schema_does_not_fit_stops_at_once() {
    let w = world().await;
    // HASH only: a LATEST table under the ALL name.
    dynamo::stream_with_hash_only_table(&w.kinesis, &w.dynamodb, "misfit").await;
    put_unique(&w, "misfit", 0, 3).await;
    // The binary is built (if need be) before the clock starts: that build is not the run.
    kinarch_tests::binary("kinarch");
    let started = std::time::Instant::now();
    let run = kinarch(&w.moto, &["archive", "misfit"]).await;
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    dynamo::assert_refused_for_all_mode(&run.stderr, "misfit-archive-ALL", "HASH partitionKey (S)");
    assert_eq!(run.stderr.matches("retrying").count(), 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_endpoint_port_fails_at_start_up_within_seconds() {
    let w = world().await;
    // A port below 1024 that nothing listens on. Not a freed ephemeral port: another
    // test's server may bind that one meanwhile (it did once, under a full parallel run,
    // and the archiver then talked to a live server for 100 s).
    let port = [1u16, 9, 13, 19, 37, 79]
        .into_iter()
        .find(|p| {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], *p)),
                Duration::from_millis(200),
            )
            .is_err()
        })
        .expect("a closed low port on loopback");
    let endpoint = format!("http://127.0.0.1:{port}");
    // The command (and so the binary, built on first use) is ready before the clock starts:
    // on a fresh target directory that build alone can take minutes.
    let mut command = cli::command_with_env(&w.moto.env_via(&endpoint));
    command.args(["archive", "orders", "--endpoint-url", &endpoint]);
    let started = std::time::Instant::now();
    let run = cli::run_command(command, None).await;
    let elapsed = started.elapsed();
    run.expect_code(1);
    // Not a speed test (shared machines are slow at times): the start-up loop would retry a
    // passing fault for 60 s and warn each time; a refused connection must skip it.
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
    assert!(elapsed < Duration::from_secs(50), "took {elapsed:?}");
    assert!(
        run.stderr.contains(&endpoint)
            && run.stderr.contains("refused")
            && run.stderr.contains("network"),
        "{}",
        run.stderr
    );
}

/// A checkpoint belongs to one table, not to a name (issue 28): the archive table deleted
/// and set up again, `kinarch archive` must not resume from the old table's checkpoints,
/// which would leave every record before them out of the new table. Setup says what will
/// happen, status shows the stale checkpoints, the archiver says why it starts afresh, and
/// the new table ends with every record; the same with a checkpoint file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_deleted_and_set_up_again_is_archived_from_the_start() {
    let w = world().await;
    w.set_up("events", 2, "ALL", &[]).await;
    put_unique(&w, "events", 0, 12).await;
    let file = std::env::temp_dir().join(format!(
        "kinarch-recreated-{}-{}.json",
        std::process::id(),
        w.moto.endpoint().rsplit(':').next().unwrap()
    ));
    let _ = std::fs::remove_file(&file);
    let file_arg = file.display().to_string();
    kinarch(&w.moto, &["archive", "events"]).await.ok();
    kinarch(
        &w.moto,
        &["archive", "events", "--checkpoint-file", &file_arg],
    )
    .await
    .ok();
    assert_eq!(w.items("events-archive-ALL").await.len(), 12);

    // The archive command of each round: default checkpoint table, then the file.
    let archive_args = |round: &str| match round {
        "table" => vec!["archive", "events", "-o", "json"],
        _ => vec![
            "archive",
            "events",
            "--checkpoint-file",
            &file_arg,
            "-o",
            "json",
        ],
    };
    for round in ["table", "file"] {
        w.dynamodb
            .delete_table()
            .table_name("events-archive-ALL")
            .send()
            .await
            .unwrap();
        let setup = kinarch(&w.moto, &["setup", "events", "ALL", "--yes"]).await;
        setup.ok();
        if round == "table" {
            for expected in [
                "events-archive-ALL-checkpoints holds 2 checkpoint(s) of an earlier table \
                 events-archive-ALL",
                "ignores them",
                "TRIM_HORIZON",
            ] {
                assert!(
                    setup.out().contains(expected) || setup.stderr.contains(expected),
                    "{expected}: {}{}",
                    setup.out(),
                    setup.stderr
                );
            }
            let status = kinarch(&w.moto, &["status", "events", "-o", "json"]).await;
            let stale = &status.json()["checkpoints"]["stale"];
            assert_eq!(stale.as_array().map(Vec::len), Some(2), "{stale}");
            let text = kinarch(&w.moto, &["status", "events"]).await;
            assert!(text.out().contains("stale checkpoints"), "{}", text.out());
            // A dry run says it too.
            let dry = kinarch(&w.moto, &["archive", "events", "--dry-run"]).await;
            assert!(dry.out().contains("earlier table"), "{}", dry.out());
        }
        let run = w.kinarch(&archive_args(round)).await;
        let summary = json(&run);
        assert_eq!(summary["records"], 12, "{round}: {}", run.stderr);
        assert_eq!(summary["staleCheckpoints"], 2, "{round}");
        assert!(
            run.stderr
                .contains("speak of an earlier table events-archive-ALL")
                && run.stderr.contains("deleted and created again"),
            "{round}: {}",
            run.stderr
        );
        let query = kinarch(&w.moto, &["query", "events", "key-3"]).await;
        assert_eq!(query.ok().stdout, b"record 3 \x00\xff\x03\n", "{round}");
        assert_eq!(w.items("events-archive-ALL").await.len(), 12, "{round}");
        // A rerun resumes from the new table's checkpoints: nothing is read again.
        let again = w.kinarch(&archive_args(round)).await;
        let summary = json(&again);
        assert_eq!(
            (
                summary["records"].as_u64(),
                summary["staleCheckpoints"].as_u64()
            ),
            (Some(0), Some(0))
        );
    }
    let _ = std::fs::remove_file(&file);
}
