//! `reinject --verify` (issue 26): after a replay, the target is read back and each record
//! checked against what PutRecords answered. A clean replay verifies with another producer
//! writing into the target meanwhile; a Kinesis that loses acknowledged entries or alters
//! bytes on the way (the fault proxy) is caught and named; a replay stopped with Ctrl-C and
//! resumed with its journal verifies the records of both runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{Running, command_with_env, run_command};
use kinarch_tests::kinesis;
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::world::World;
use serde_json::Value;

/// 2026-05-01T10:00:00Z.
const BASE: f64 = 1_777_629_600.0;

fn records(count: usize, keys: usize) -> Vec<ArchiveRecord> {
    (0..count)
        .map(|i| {
            ArchiveRecord::received(
                format!("key-{}", i % keys),
                SequenceNumber::parse(&format!("{}", 1000 + i)).unwrap(),
                "shardId-000000000000".into(),
                BASE + i as f64 / 10.0,
                format!("{{\"n\":{i}}}").into_bytes(),
            )
        })
        .collect()
}

fn counts(summary: &Value) -> [u64; 5] {
    let v = &summary["verify"];
    [
        v["verified"].as_u64().unwrap(),
        v["missing"]["count"].as_u64().unwrap(),
        v["altered"]["count"].as_u64().unwrap(),
        v["duplicated"]["count"].as_u64().unwrap(),
        v["outOfOrder"]["count"].as_u64().unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_replay_verifies_while_another_producer_writes_into_the_target() {
    let w = World::start().await;
    w.archived("orders", 1, &records(300, 12), chrono::Utc::now())
        .await;
    w.stream("replay", 2).await;

    // Another producer writes into the target for as long as the replay runs.
    let writing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (kinesis, writing) = (w.kinesis.clone(), writing.clone());
        tokio::spawn(async move {
            let mut written = 0u64;
            while writing.load(Ordering::SeqCst) {
                kinesis::put(&kinesis, "replay", &format!("live-{written}"), b"live").await;
                written += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            written
        })
    };
    let run = w
        .kinarch(&[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--metadata",
            "--rate",
            "150",
            "--verify",
            "-o",
            "json",
        ])
        .await;
    writing.store(false, Ordering::SeqCst);
    let live = producer.await.unwrap();
    let summary = run.ok().json();
    assert_eq!(summary["sent"], 300);
    assert_eq!(counts(&summary), [300, 0, 0, 0, 0], "{summary}");
    let others = summary["verify"]["others"].as_u64().unwrap();
    assert!(
        others > 0 && others <= live,
        "the live producer's records read in the ranges are ignored: {others} of {live}"
    );
    assert_eq!(summary["verify"]["shards"], 2);

    // Text: one line of counts.
    let text = w
        .kinarch(&[
            "reinject", "orders", "--target", "replay", "--verify", "-n", "20",
        ])
        .await;
    assert!(
        text.ok()
            .stderr
            .contains("verify replay: 20 verified, 0 missing, 0 altered"),
        "{}",
        text.stderr
    );

    // Nothing is sent in a dry run or an estimate, so there is nothing to verify.
    for other in ["--dry-run", "--estimate"] {
        let refused = w
            .kinarch(&[
                "reinject", "orders", "--target", "replay", "--verify", other,
            ])
            .await;
        refused.expect_code(2);
        assert!(refused.stderr.contains("--verify"), "{}", refused.stderr);
    }
}

/// `reinject orders --target replay --verify` through the proxy, one call at a time (so
/// that the proxy's call numbers name the same records on every run), and `extra`.
async fn replay_via(w: &World, proxy: &FaultProxy, extra: &[&str]) -> kinarch_tests::cli::Run {
    let mut command = command_with_env(&w.moto.env_via(&proxy.endpoint()));
    command.args([
        "reinject",
        "orders",
        "--target",
        "replay",
        "--concurrency",
        "1",
        "--verify",
    ]);
    command.args(extra);
    run_command(command, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_lost_or_altered_after_an_acknowledgement_are_named_and_fail_the_replay() {
    let w = World::start().await;
    w.archived("orders", 1, &records(60, 10), chrono::Utc::now())
        .await;
    w.stream("replay", 1).await;
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    // The second PutRecords call loses its first and third entries after answering them as
    // stored; the third call stores its second entry with other bytes.
    proxy.set_rule(|call| match (call.operation(), call.nth_of_target) {
        ("PutRecords", 1) => Some(Fault::LoseEntries(vec![0, 2])),
        ("PutRecords", 2) => Some(Fault::AlterEntries(vec![1])),
        _ => None,
    });
    let run = replay_via(&w, &proxy, &["-o", "json"]).await;
    run.expect_code(1);
    let summary: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        summary["sent"], 60,
        "PutRecords answered every record stored"
    );
    assert_eq!(counts(&summary), [57, 2, 1, 0, 0], "{summary}");
    let missing = &summary["verify"]["missing"]["first"];
    assert_eq!(missing.as_array().unwrap().len(), 2);
    assert!(
        missing[0]["detail"]
            .as_str()
            .unwrap()
            .contains("not in the target"),
        "{missing}"
    );
    assert!(
        run.stderr
            .contains("did not verify: 2 missing, 1 altered, 0 duplicated, 0 out of order"),
        "{}",
        run.stderr
    );

    // The text report names each, by key and original sequence number.
    // The first call of this run (the proxy counts the six of the run above).
    proxy.set_rule(|call| {
        (call.operation() == "PutRecords" && call.nth_of_target == 6)
            .then(|| Fault::AlterEntries(vec![0]))
    });
    let text = replay_via(&w, &proxy, &["-n", "30"]).await;
    text.expect_code(1);
    assert!(
        text.stderr
            .contains("verify replay: 29 verified, 0 missing, 1 altered")
            && text.stderr.contains("\naltered: key-")
            && text.stderr.contains(" (sent to shardId-000000000000 "),
        "{}",
        text.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stopped_and_resumed_with_its_journal_verifies_both_runs() {
    let w = World::start().await;
    w.archived("orders", 1, &records(200, 8), chrono::Utc::now())
        .await;
    w.stream("replay", 2).await;
    let dir = std::env::temp_dir().join(format!("kinarch-verify-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("orders.journal");
    let _ = std::fs::remove_file(&journal);
    let journal_arg = journal.to_str().unwrap();
    let args = [
        "reinject",
        "orders",
        "--target",
        "replay",
        "--journal",
        journal_arg,
        "--verify",
    ];
    let running = Running::start(&w.moto.env(), &[&args[..], &["--rate", "20"]].concat());
    w.wait_for_records("replay", 20).await;
    running.signal("INT");
    let first = running.wait().await;
    assert_eq!(first.code, 130, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("not verified: the replay was stopped")
            && first.stderr.contains("--verify to send the rest"),
        "{}",
        first.stderr
    );
    let sent_first = kinesis::read_all(&w.kinesis, "replay").await.len();
    assert!(sent_first < 200, "stopped in the middle: {sent_first}");

    let second = w.kinarch(&[&args[..], &["-o", "json"]].concat()).await;
    let summary = second.ok().json();
    assert_eq!(summary["sent"].as_u64().unwrap(), 200 - sent_first as u64);
    assert_eq!(counts(&summary), [200, 0, 0, 0, 0], "{summary}");
    assert_eq!(summary["verify"]["notVerifiable"], 0);

    // A run that has nothing left to send still verifies everything sent.
    let third = w.kinarch(&[&args[..], &["-o", "json"]].concat()).await;
    let summary = third.ok().json();
    assert_eq!(summary["sent"], 0);
    assert_eq!(counts(&summary), [200, 0, 0, 0, 0], "{summary}");

    // A journal whose earlier run did not verify: what it sent is said, not checked.
    let unverified = dir.join("unverified.journal");
    let _ = std::fs::remove_file(&unverified);
    let plain = [
        "reinject",
        "orders",
        "--target",
        "replay",
        "-n",
        "50",
        "--journal",
        unverified.to_str().unwrap(),
    ];
    w.kinarch(&plain).await.ok();
    let later = w.kinarch(&[&plain[..], &["--verify"]].concat()).await;
    assert!(
        later.ok().stderr.contains(
            "verify: 50 record(s) sent by an earlier run without --verify cannot be checked"
        ),
        "{}",
        later.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
