//! KPL-aggregated records (issue 12): containers made by awslabs' own Python aggregator
//! (`tests/kpl_agg.py`), archived through the Lambda binary and `kinarch archive`, one item
//! per user record; ALL and LATEST; duplicate delivery; a failed write reports the
//! container's sequence number; corrupted containers are archived as plain records; the tag
//! `ArchiveDeaggregate=false` archives containers as they are; `query` by a user key.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_tests::cli::kinarch;
use kinarch_tests::dynamo::{self, Item, n, s};
use kinarch_tests::kinesis::{self, StreamRecord};
use kinarch_tests::lambda::{LambdaFunction, failures};
use kinarch_tests::moto::Moto;
use kinarch_tests::proxy::{Fault, FaultProxy};
use serde_json::{Value, json};

const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// A user record to aggregate: partition key, explicit hash key, data.
pub(crate) type User = (String, Option<String>, Vec<u8>);

pub(crate) fn user(key: &str, ehk: Option<&str>, data: &[u8]) -> User {
    (key.to_owned(), ehk.map(str::to_owned), data.to_vec())
}

fn python() -> std::path::PathBuf {
    kinarch_tests::tools_dir().join("venv-emu/bin/python")
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kpl_agg.py")
}

fn run_script(args: &[&str], input: &Value) -> Value {
    let mut child = Command::new(python())
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test venv's python (bin/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kpl_agg.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One container per list of user records, made by the Python aggregator: (the partition
/// key it gives the container, the container's bytes).
pub(crate) fn aggregate(containers: &[Vec<User>]) -> Vec<(String, Vec<u8>)> {
    let request = json!({
        "containers": containers.iter().map(|users| users.iter()
            .map(|(k, e, d)| json!([k, e, STANDARD.encode(d)]))
            .collect::<Vec<_>>()).collect::<Vec<_>>()
    });
    run_script(&[], &request)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let data = STANDARD.decode(c["data"].as_str().unwrap()).unwrap();
            assert!(
                data.starts_with(&MAGIC),
                "a container starts with F3 89 9A C2"
            );
            (c["partitionKey"].as_str().unwrap().to_owned(), data)
        })
        .collect()
}

/// The containers of the ALL tests: 1, 2 (shared key), 50 (distinct keys, explicit hash
/// keys on every other one, binary data) and 3000 (7 keys) user records.
fn containers() -> Vec<Vec<User>> {
    vec![
        vec![user("solo", None, b"one")],
        vec![
            user("shared", None, b"first"),
            user("shared", None, b"second"),
        ],
        (0..50)
            .map(|i| {
                let ehk = (i % 2 == 0).then(|| format!("{}", 1000 + i));
                user(
                    &format!("distinct-{i}"),
                    ehk.as_deref(),
                    &[0x00, 0xff, 0xF3, i as u8],
                )
            })
            .collect(),
        (0..3000)
            .map(|i| user(&format!("many-{}", i % 7), None, format!("m{i}").as_bytes()))
            .collect(),
    ]
}

/// The range key of a user record in an ALL table.
fn range_key(sequence: &str, sub: usize) -> String {
    format!("{sequence}.{sub:020}")
}

/// A copy of `container` whose MD5 no longer matches, and one whose protobuf is cut short
/// (with an MD5 that matches what is left, so only the protobuf is wrong).
fn corrupted(container: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut bad_md5 = container.to_vec();
    let last = bad_md5.len() - 1;
    bad_md5[last] ^= 0x55;
    let body = &container[4..container.len() - 16];
    let cut = &body[..body.len() - 1];
    let mut truncated = MAGIC.to_vec();
    truncated.extend_from_slice(cut);
    truncated.extend_from_slice(&md5_of(cut));
    (bad_md5, truncated)
}

fn md5_of(bytes: &[u8]) -> Vec<u8> {
    use md5::Digest as _;
    md5::Md5::digest(bytes).to_vec()
}

/// The records as they went into the stream, in stream order.
async fn put_and_read(
    kinesis_client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[(String, Vec<u8>)],
) -> Vec<StreamRecord> {
    kinesis::put_many(kinesis_client, stream, records).await;
    let read = kinesis::read_all(kinesis_client, stream).await;
    assert_eq!(read.len(), records.len());
    read
}

fn by_range_key(items: &[Item]) -> BTreeMap<(String, String), &Item> {
    items
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
        .collect()
}

fn data(item: &Item) -> Vec<u8> {
    STANDARD.decode(s(item, "recordData")).unwrap()
}

/// Checks that every user record of `containers` (read back as `read[..containers.len()]`)
/// is in `items` under its own key, container sequence number and sub-sequence number.
fn assert_user_records_archived(items: &[Item], containers: &[Vec<User>], read: &[StreamRecord]) {
    let by_key = by_range_key(items);
    for (users, container) in containers.iter().zip(read) {
        for (i, (key, ehk, bytes)) in users.iter().enumerate() {
            let item = by_key
                .get(&(key.clone(), range_key(&container.sequence_number, i)))
                .unwrap_or_else(|| panic!("user record {key} #{i} is archived"));
            assert_eq!(&data(item), bytes);
            assert_eq!(n(item, "subSequenceNumber"), i.to_string());
            assert_eq!(s(item, "shardId"), container.shard_id);
            let arrival: f64 = n(item, "approximateArrivalTimestamp").parse().unwrap();
            assert!((arrival - container.arrival).abs() < 0.001);
            match ehk {
                Some(ehk) => assert_eq!(s(item, "explicitHashKey"), ehk),
                None => assert!(!item.contains_key("explicitHashKey")),
            }
        }
    }
}

struct Setup {
    moto: Moto,
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

async fn setup() -> Setup {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    Setup {
        kinesis: aws_sdk_kinesis::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        moto,
    }
}

impl Setup {
    /// A stream of `shards` shards tagged with `tags` (mode first) and its archive table
    /// `<stream>-archive-<mode>`. Returns the stream's ARN.
    async fn stream(&self, name: &str, shards: i32, tags: &[(&str, &str)]) -> String {
        let arn = kinesis::create_stream(&self.kinesis, name, shards).await;
        kinesis::tag_stream(&self.kinesis, name, tags).await;
        let mode = tags[0].1;
        dynamo::create_table(
            &self.dynamodb,
            &format!("{name}-archive-{mode}"),
            mode == "ALL",
        )
        .await;
        arn
    }
}

async fn function(moto: &Moto, via: Option<&FaultProxy>) -> LambdaFunction {
    let mut env = match via {
        Some(proxy) => moto.env_via(&proxy.endpoint()),
        None => moto.env(),
    };
    env.push(("RUST_LOG".into(), "info".into()));
    LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_archives_every_user_record_of_containers_mixed_with_plain_records() {
    let t = setup().await;
    let mut f = function(&t.moto, None).await;
    let arn = t.stream("kpl", 1, &[("StreamArchiveMode", "ALL")]).await;

    let containers = containers();
    let mut records = aggregate(&containers);
    let (bad_md5, truncated) = corrupted(&records[2].1);
    records.push(("plain-1".into(), b"plain one".to_vec()));
    records.push(("bad-md5".into(), bad_md5.clone()));
    records.push(("truncated".into(), truncated.clone()));
    records.push(("plain-2".into(), vec![0xF3, 0x89]));
    let read = put_and_read(&t.kinesis, "kpl", &records).await;

    let response = f.invoke(kinesis::event(&arn, &read)).await.response();
    assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    let items = dynamo::scan_all(&t.dynamodb, "kpl-archive-ALL").await;
    let users: usize = containers.iter().map(Vec::len).sum();
    assert_eq!(users, 3053);
    assert_eq!(items.len(), users + 4);
    assert_user_records_archived(&items, &containers, &read);

    // Plain records, and records with the magic that are not valid containers, are archived
    // exactly as before: their own key and sequence number, no new attribute.
    let by_key = by_range_key(&items);
    for (record, bytes) in
        read[4..]
            .iter()
            .zip([b"plain one".to_vec(), bad_md5, truncated, vec![0xF3, 0x89]])
    {
        let item = by_key[&(record.partition_key.clone(), record.sequence_number.clone())];
        assert_eq!(data(item), bytes);
        assert_eq!(item.len(), 6, "the original layout: {item:?}");
    }
    let logs = f.logs();
    for broken in &read[5..7] {
        assert!(
            logs.iter().any(|l| l.contains("not a valid KPL container")
                && l.contains(&broken.sequence_number)
                && l.contains("kpl")
                && l.contains(&broken.shard_id)),
            "a warning names stream, shard and sequence number of {}",
            broken.sequence_number
        );
    }
    let summary: Vec<Value> = f
        .json_logs()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "archived batch")
        .collect();
    assert_eq!(summary[0]["fields"]["records"], 8);
    assert_eq!(summary[0]["fields"]["containers"], 4);
    assert_eq!(summary[0]["fields"]["user_records"], 3053);

    // Delivered again: nothing changes.
    let response = f.invoke(kinesis::event(&arn, &read)).await.response();
    assert_eq!(failures(&response), Vec::<String>::new());
    let again = dynamo::scan_all(&t.dynamodb, "kpl-archive-ALL").await;
    assert_eq!(dynamo::archived(&again), dynamo::archived(&items));

    // `kinarch query` by a user key finds its user records, in order, with jsonl showing
    // the sub-sequence number and the container's sequence number.
    let run = kinarch(&t.moto, &["query", "kpl", "many-3", "--output", "jsonl"]).await;
    run.ok();
    let lines: Vec<Value> = run
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<usize> = (0..3000).filter(|i| i % 7 == 3).collect();
    assert_eq!(lines.len(), expected.len());
    for (line, i) in lines.iter().zip(&expected) {
        assert_eq!(line["sequenceNumber"], read[3].sequence_number.as_str());
        assert_eq!(line["subSequenceNumber"], *i);
        assert_eq!(line["partitionKey"], "many-3");
    }
    // --from/--to bounds are container sequence numbers.
    let run = kinarch(
        &t.moto,
        &[
            "query",
            "kpl",
            "distinct-4",
            "--from",
            &read[2].sequence_number,
            "--to",
            &read[2].sequence_number,
            "--output",
            "jsonl",
        ],
    )
    .await;
    run.ok();
    let line: Value = serde_json::from_str(run.out().trim()).unwrap();
    assert_eq!(line["subSequenceNumber"], 4);
    assert_eq!(line["explicitHashKey"], "1004");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_latest_keeps_the_highest_sequence_then_sub_sequence_per_user_key() {
    let t = setup().await;
    let mut f = function(&t.moto, None).await;
    let arn = t
        .stream("kpl-latest", 1, &[("StreamArchiveMode", "LATEST")])
        .await;
    let first = vec![
        user("a", None, b"a0"),
        user("b", Some("77"), b"b1"),
        user("a", None, b"a2"),
        user("c", None, b"c3"),
        user("c", None, b"c4"),
    ];
    let second = vec![user("a", None, b"a-new"), user("d", None, b"d1")];
    let mut records = aggregate(&[first, second]);
    records.push(("c".into(), b"c-plain-newest".to_vec()));
    let read = put_and_read(&t.kinesis, "kpl-latest", &records).await;

    // The first container alone, twice: per key its highest sub-sequence number.
    for _ in 0..2 {
        let response = f.invoke(kinesis::event(&arn, &read[..1])).await.response();
        assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    }
    let items = dynamo::scan_all(&t.dynamodb, "kpl-latest-archive-LATEST").await;
    let by_key: BTreeMap<&str, &Item> = items.iter().map(|i| (s(i, "partitionKey"), i)).collect();
    assert_eq!(data(by_key["a"]), b"a2");
    assert_eq!(n(by_key["a"], "subSequenceNumber"), "2");
    assert_eq!(data(by_key["c"]), b"c4");
    // Then everything.
    let response = f.invoke(kinesis::event(&arn, &read)).await.response();
    assert_eq!(failures(&response), Vec::<String>::new(), "{response}");
    let items = dynamo::scan_all(&t.dynamodb, "kpl-latest-archive-LATEST").await;
    let by_key: BTreeMap<&str, &Item> = items.iter().map(|i| (s(i, "partitionKey"), i)).collect();
    assert_eq!(by_key.len(), 4);
    assert_eq!(data(by_key["a"]), b"a-new");
    assert_eq!(s(by_key["a"], "sequenceNumber"), read[1].sequence_number);
    assert_eq!(n(by_key["a"], "subSequenceNumber"), "0");
    assert_eq!(data(by_key["b"]), b"b1");
    assert_eq!(s(by_key["b"], "explicitHashKey"), "77");
    assert_eq!(s(by_key["b"], "sequenceNumber"), read[0].sequence_number);
    assert_eq!(data(by_key["c"]), b"c-plain-newest");
    assert!(!by_key["c"].contains_key("subSequenceNumber"));
    assert_eq!(data(by_key["d"]), b"d1");

    // The first container delivered once more changes nothing (the conditional write
    // compares sequence, then sub-sequence numbers).
    let response = f.invoke(kinesis::event(&arn, &read[..1])).await.response();
    assert_eq!(failures(&response), Vec::<String>::new());
    let again = dynamo::scan_all(&t.dynamodb, "kpl-latest-archive-LATEST").await;
    assert_eq!(dynamo::archived(&again), dynamo::archived(&items));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_reports_the_containers_sequence_number() {
    let t = setup().await;
    let proxy = FaultProxy::start(&t.moto.endpoint()).await;
    let mut f = function(&t.moto, Some(&proxy)).await;
    let arn = t
        .stream("kpl-fail", 1, &[("StreamArchiveMode", "ALL")])
        .await;
    // Request 1: the plain record and the 24 user records of the first container; request
    // 2: the second container (with the poison key) and the last plain record.
    let first: Vec<User> = (0..24)
        .map(|i| user(&format!("k{i}"), None, b"x"))
        .collect();
    let second = vec![user("ok", None, b"y"), user("poison", None, b"z")];
    let containers = aggregate(&[first, second]);
    let mut records = vec![("plain-0".to_owned(), b"p0".to_vec())];
    records.extend(containers);
    records.push(("plain-1".into(), b"p1".to_vec()));
    let read = put_and_read(&t.kinesis, "kpl-fail", &records).await;
    proxy.set_rule(|call| {
        (call.operation() == "BatchWriteItem" && call.body.contains("\"poison\""))
            .then(|| Fault::client_error("ValidationException"))
    });
    let response = f.invoke(kinesis::event(&arn, &read)).await.response();
    assert_eq!(failures(&response), vec![read[2].sequence_number.clone()]);
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "kpl-fail-archive-ALL")
            .await
            .len(),
        25
    );
    // Lambda delivers again from the container: the whole container lands once.
    proxy.heal();
    let response = f.invoke(kinesis::event(&arn, &read[2..])).await.response();
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        dynamo::scan_all(&t.dynamodb, "kpl-fail-archive-ALL")
            .await
            .len(),
        28
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinarch_archive_de_aggregates_and_the_tag_can_turn_it_off() {
    let t = setup().await;
    for (stream, tags) in [
        ("kpl-cli", vec![("StreamArchiveMode", "ALL")]),
        (
            "kpl-raw",
            vec![
                ("StreamArchiveMode", "ALL"),
                ("ArchiveDeaggregate", "false"),
            ],
        ),
    ] {
        t.stream(stream, 2, &tags).await;
    }
    let containers = containers();
    let mut records = aggregate(&containers);
    records.push(("plain".into(), b"plain".to_vec()));

    let read = put_and_read(&t.kinesis, "kpl-cli", &records).await;
    let run = kinarch(&t.moto, &["archive", "kpl-cli", "--output", "json"]).await;
    run.ok();
    let summary = run.json();
    assert_eq!(summary["records"], 5);
    assert_eq!(summary["containers"], 4);
    assert_eq!(summary["userRecords"], 3053);
    assert_eq!(summary["written"], 3054);
    let items = dynamo::scan_all(&t.dynamodb, "kpl-cli-archive-ALL").await;
    assert_eq!(items.len(), 3054);
    // read_all groups by shard; match containers by their bytes.
    let ordered: Vec<StreamRecord> = records[..4]
        .iter()
        .map(|(_, bytes)| read.iter().find(|r| &r.data == bytes).unwrap().clone())
        .collect();
    assert_user_records_archived(&items, &containers, &ordered);
    let text = kinarch(&t.moto, &["archive", "kpl-cli"]).await;
    text.ok();

    let read_raw = put_and_read(&t.kinesis, "kpl-raw", &records).await;
    let run = kinarch(&t.moto, &["archive", "kpl-raw", "--output", "json"]).await;
    run.ok();
    assert_eq!(run.json()["containers"], 0);
    let raw = dynamo::scan_all(&t.dynamodb, "kpl-raw-archive-ALL").await;
    assert_eq!(dynamo::archived(&raw), kinesis::as_archived(&read_raw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinject_sends_user_records_one_by_one_under_their_own_keys() {
    let t = setup().await;
    t.stream("kpl-src", 1, &[("StreamArchiveMode", "ALL")])
        .await;
    kinesis::create_stream(&t.kinesis, "kpl-target", 1).await;
    kinesis::create_stream(&t.kinesis, "kpl-target-meta", 1).await;
    let users: Vec<User> = (0..40)
        .map(|i| {
            let ehk = (i % 4 == 0).then(|| format!("{}", 100 + i));
            user(
                &format!("u{}", i % 5),
                ehk.as_deref(),
                format!("d{i}").as_bytes(),
            )
        })
        .collect();
    let records = aggregate(std::slice::from_ref(&users));
    let read = put_and_read(&t.kinesis, "kpl-src", &records).await;
    kinarch(&t.moto, &["archive", "kpl-src"]).await.ok();

    let run = kinarch(&t.moto, &["reinject", "kpl-src", "--target", "kpl-target"]).await;
    run.ok();
    assert!(run.stderr.contains("read 40, sent 40"), "{}", run.stderr);
    let replayed = kinesis::read_all(&t.kinesis, "kpl-target").await;
    assert_eq!(
        replayed.len(),
        40,
        "not re-aggregated: one Kinesis record each"
    );
    // Per key, the order of the user records is kept.
    for key in 0..5 {
        let key = format!("u{key}");
        let sent: Vec<&Vec<u8>> = replayed
            .iter()
            .filter(|r| r.partition_key == key)
            .map(|r| &r.data)
            .collect();
        let original: Vec<&Vec<u8>> = users.iter().filter(|u| u.0 == key).map(|u| &u.2).collect();
        assert_eq!(sent, original, "order of {key}");
    }
    // The Python deaggregator sees plain records there: the same user records.
    let plain = run_script(
        &["deaggregate"],
        &json!(
            replayed
                .iter()
                .map(|r| json!({
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": STANDARD.encode(&r.data),
                }))
                .collect::<Vec<_>>()
        ),
    );
    assert_eq!(plain.as_array().unwrap().len(), 40);

    // --metadata names the container's sequence number and the sub-sequence number.
    let run = kinarch(
        &t.moto,
        &[
            "reinject",
            "kpl-src",
            "--target",
            "kpl-target-meta",
            "--partition-key",
            "u3",
            "--metadata",
        ],
    )
    .await;
    run.ok();
    let framed = kinesis::read_all(&t.kinesis, "kpl-target-meta").await;
    assert_eq!(framed.len(), 8);
    for (n, record) in framed.iter().enumerate() {
        let text = String::from_utf8_lossy(&record.data);
        assert!(
            text.contains(&format!(
                "\"originalSequenceNumber\":\"{}\"",
                read[0].sequence_number
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("\"originalSubSequenceNumber\":{}", 3 + 5 * n)),
            "{text}"
        );
    }
}
