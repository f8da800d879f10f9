//! Stopping a replay (issue 13): Ctrl-C (SIGINT) or SIGTERM in the middle of a real
//! `kinarch reinject` against moto stops it gracefully: it says what was sent and what
//! was not, exits 130 or 143, and the target holds exactly what it says it sent, each
//! key's records a prefix of that key's records in order.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::Running;
use kinarch_tests::kinesis;
use kinarch_tests::world::World;

const RECORDS: u64 = 200;
const KEYS: u64 = 4;

/// Stream `orders` (ALL) with 200 records over 4 keys, and an empty stream `replay`.
async fn world() -> World {
    let w = World::start().await;
    let records: Vec<ArchiveRecord> = (0..RECORDS)
        .map(|i| {
            ArchiveRecord::received(
                format!("k{}", i % KEYS),
                SequenceNumber::parse(&(1000 + i).to_string()).unwrap(),
                "shardId-000000000000".into(),
                1_777_629_600.0 + i as f64,
                i.to_string().into_bytes(),
            )
        })
        .collect();
    let archived_at = Utc.timestamp_opt(1_777_629_600, 0).unwrap();
    w.archived("orders", 1, &records, archived_at).await;
    w.stream("replay", 1).await;
    w
}

async fn stopped_by(signal: &str, code: i32) {
    let w = world().await;
    let (moto, kinesis_client) = (&w.moto, &w.kinesis);
    // 20 records per second: 10 s for all of them, so the signal comes in the middle.
    let running = Running::start(
        &moto.env(),
        &["reinject", "orders", "--target", "replay", "--rate", "20"],
    );
    w.wait_for_records("replay", 10).await;
    running.signal(signal);
    let run = running.wait().await;
    assert_eq!(run.code, code, "{}", run.stderr);
    let replayed = kinesis::read_all(kinesis_client, "replay").await;
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("stopped by a signal"))
        .unwrap_or_else(|| panic!("a stop line: {}", run.stderr));
    let said: u64 = line
        .split("signal: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("a count in {line:?}"));
    assert_eq!(replayed.len() as u64, said, "{line}");
    assert!(said < RECORDS, "stopped before the end: {line}");
    // Each key: a prefix of its records, in order.
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &replayed {
        let i: u64 = String::from_utf8(r.data.clone()).unwrap().parse().unwrap();
        by_key.entry(r.partition_key.clone()).or_default().push(i);
    }
    for (key, got) in by_key {
        let k: u64 = key.trim_start_matches('k').parse().unwrap();
        let expected: Vec<u64> = (0..RECORDS)
            .filter(|i| i % KEYS == k)
            .take(got.len())
            .collect();
        assert_eq!(got, expected, "key {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_replay_gracefully_with_exit_130() {
    stopped_by("INT", 130).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_replay_gracefully_with_exit_143() {
    stopped_by("TERM", 143).await;
}

/// `--journal`: a replay stopped by Ctrl-C and run again with the same journal sends every
/// record of the selection exactly once, in order per key; the journal of another selection
/// (or target) is refused and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replay_resumes_from_its_journal_and_sends_each_record_once() {
    let w = world().await;
    let (moto, kinesis_client) = (&w.moto, &w.kinesis);
    let dir = std::env::temp_dir().join(format!("kinarch-journal-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("orders.journal");
    let _ = std::fs::remove_file(&journal);
    let journal_arg = journal.to_str().unwrap();
    let args = [
        "reinject",
        "orders",
        "--target",
        "replay",
        "--rate",
        "20",
        "--arrived-after",
        "1777629610",
        "--journal",
        journal_arg,
    ];
    let running = Running::start(&moto.env(), &args);
    w.wait_for_records("replay", 20).await;
    running.signal("INT");
    let first = running.wait().await;
    assert_eq!(first.code, 130, "{}", first.stderr);
    let after_first = kinesis::read_all(kinesis_client, "replay").await.len();
    assert!(after_first < 190, "stopped in the middle: {after_first}");

    // Another selection, or another target, with this journal: refused, nothing sent.
    for other in [
        vec![
            "reinject",
            "orders",
            "--target",
            "replay",
            "--journal",
            journal_arg,
        ],
        vec![
            "reinject",
            "orders",
            "--target",
            "orders",
            "--arrived-after",
            "1777629610",
            "--journal",
            journal_arg,
            "--yes",
        ],
    ] {
        let run = kinarch_tests::cli::kinarch(moto, &other).await;
        run.expect_code(2);
        assert!(run.stderr.contains("another replay"), "{}", run.stderr);
    }
    assert_eq!(
        kinesis::read_all(kinesis_client, "replay").await.len(),
        after_first
    );

    let mut rerun = args.to_vec();
    rerun.retain(|a| *a != "--rate" && *a != "20");
    let second = kinarch_tests::cli::kinarch(moto, &rerun).await;
    second.ok();
    assert!(
        second.stderr.contains("were sent by an earlier run"),
        "{}",
        second.stderr
    );
    let replayed = kinesis::read_all(kinesis_client, "replay").await;
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &replayed {
        let i: u64 = String::from_utf8(r.data.clone()).unwrap().parse().unwrap();
        by_key.entry(r.partition_key.clone()).or_default().push(i);
    }
    // The window: records 10..200 (arrived at or after BASE + 10), each once, in order.
    for (key, got) in &by_key {
        let k: u64 = key.trim_start_matches('k').parse().unwrap();
        let expected: Vec<u64> = (10..RECORDS).filter(|i| i % KEYS == k).collect();
        assert_eq!(got, &expected, "key {key}: every record once, in order");
    }
    assert_eq!(replayed.len() as u64, RECORDS - 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C while records are still being read (issue 28): `scan` says how many records it
/// printed (all of them on standard output), and a paced `reinject`, which reads its whole
/// selection before sending, says that nothing was sent; both exit 130. Each Scan page is
/// delayed by a fault proxy, so the signal comes in the middle of the reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_reading_says_what_was_printed_or_sent() {
    use kinarch_tests::proxy::{Fault, FaultProxy};
    let w = world().await;
    let (moto, kinesis_client) = (&w.moto, &w.kinesis);
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    proxy.set_rule(|call| {
        (call.operation() == "Scan").then_some(Fault::Delay(std::time::Duration::from_millis(700)))
    });
    let env = moto.env_via(&proxy.endpoint());
    let scan = Running::start(
        &env,
        &["scan", "orders", "--page-size", "10", "--no-time-index"],
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    scan.signal("INT");
    let run = scan.wait().await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    let printed = run.out().lines().count() as u64;
    assert!(
        run.stderr.contains(&format!(
            "stopped by a signal: {printed} record(s) printed; the rest of the selection was not read"
        )),
        "{printed} printed: {}",
        run.stderr
    );
    assert!(printed < RECORDS, "stopped in the middle");

    // The replay reads its selection in one page here: a long delay on it.
    proxy.set_rule(|call| {
        (call.operation() == "Scan").then_some(Fault::Delay(std::time::Duration::from_secs(6)))
    });
    let paced = Running::start(
        &env,
        &[
            "reinject", "orders", "--target", "replay", "--pace", "original",
        ],
    );
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    paced.signal("INT");
    let run = paced.wait().await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("stopped by a signal while reading the selection: nothing was sent"),
        "{}",
        run.stderr
    );
    assert!(kinesis::read_all(kinesis_client, "replay").await.is_empty());
}

/// A journal with a relative time (issue 28, item 3): `--arrived-after 30m` names another
/// instant on every run, so the rerun of a stopped replay, given the same expression, reads
/// the window the first run resolved, says so, and sends every record exactly once; a rerun
/// with another expression, or another target, is refused naming the fields that differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_with_a_relative_time_resumes_the_first_runs_window() {
    let w = World::start().await;
    let (moto, kinesis_client) = (&w.moto, &w.kinesis);
    // 200 records that arrived in the last 20 minutes, 6 s apart.
    let now = Utc::now().timestamp() as f64;
    let records: Vec<ArchiveRecord> = (0..RECORDS)
        .map(|i| {
            ArchiveRecord::received(
                format!("k{}", i % KEYS),
                SequenceNumber::parse(&(1000 + i).to_string()).unwrap(),
                "shardId-000000000000".into(),
                now - 1200.0 + 6.0 * i as f64,
                i.to_string().into_bytes(),
            )
        })
        .collect();
    w.archived("orders", 1, &records, Utc::now()).await;
    w.stream("replay", 1).await;
    let dir = std::env::temp_dir().join(format!(
        "kinarch-relative-journal-{}-{}",
        std::process::id(),
        moto.endpoint().rsplit(':').next().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("orders.journal");
    let journal_arg = journal.to_str().unwrap();
    let args = [
        "reinject",
        "orders",
        "--target",
        "replay",
        "--arrived-after",
        "30m",
        "--journal",
        journal_arg,
    ];
    let running = Running::start(&moto.env(), &[&args[..], &["--rate", "20"]].concat());
    w.wait_for_records("replay", 20).await;
    running.signal("INT");
    assert_eq!(running.wait().await.code, 130);
    let after_first = kinesis::read_all(kinesis_client, "replay").await.len();
    assert!(after_first < 190, "stopped in the middle: {after_first}");
    // A second later "30m" is another instant: the rerun keeps the first run's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Another expression, or another target: refused, each differing field named.
    let forty = kinarch_tests::cli::kinarch(
        moto,
        &[
            "reinject",
            "orders",
            "--target",
            "replay",
            "--arrived-after",
            "40m",
            "--journal",
            journal_arg,
        ],
    )
    .await;
    forty.expect_code(2);
    for expected in [
        "was made for another replay: --arrived-after ",
        " in the journal, ",
        "--arrived-after 30m in the journal's run",
        "--arrived-after 40m in this run",
    ] {
        assert!(
            forty.stderr.contains(expected),
            "{expected}: {}",
            forty.stderr
        );
    }
    let other_target = kinarch_tests::cli::kinarch(
        moto,
        &[
            "reinject",
            "orders",
            "--target",
            "elsewhere",
            "--arrived-after",
            "30m",
            "--journal",
            journal_arg,
        ],
    )
    .await;
    other_target.expect_code(2);
    assert!(
        other_target
            .stderr
            .contains("--target replay in the journal, elsewhere now"),
        "{}",
        other_target.stderr
    );
    assert!(
        other_target.stderr.len() < 600,
        "no debug dump: {}",
        other_target.stderr
    );

    let second = kinarch_tests::cli::kinarch(moto, &args).await;
    second.ok();
    assert!(
        second
            .stderr
            .contains("journal: --arrived-after 30m is read as its first run resolved it, "),
        "{}",
        second.stderr
    );
    let replayed = kinesis::read_all(kinesis_client, "replay").await;
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &replayed {
        let i: u64 = String::from_utf8(r.data.clone()).unwrap().parse().unwrap();
        by_key.entry(r.partition_key.clone()).or_default().push(i);
    }
    for (key, got) in &by_key {
        let k: u64 = key.trim_start_matches('k').parse().unwrap();
        let expected: Vec<u64> = (0..RECORDS).filter(|i| i % KEYS == k).collect();
        assert_eq!(got, &expected, "key {key}: every record once, in order");
    }
    assert_eq!(replayed.len() as u64, RECORDS);
    let _ = std::fs::remove_dir_all(&dir);
}
