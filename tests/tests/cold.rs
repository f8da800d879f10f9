//! Cold storage of the Parquet archive (issue 25): `setup --parquet-cold-after` puts a
//! lifecycle rule moving the files to Glacier Instant Retrieval beside the bucket's other
//! rules, read back as S3 stores it, changed only with a note, shown by `status`, removed by
//! `--no-parquet-cold`; a file in a class that needs a restore is named with the
//! `restore-object` command while the other files are read.

use kinarch_tests::kinesis;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::s3;
use kinarch_tests::world::World;

const BUCKET: &str = "history";
const TARGET: &str = "s3://history/kinarch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_moves_the_files_to_glacier_instant_retrieval_beside_other_rules() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    s3::put_lifecycle_rule(&w.s3, BUCKET, "someone-elses", "logs/", 30).await;
    w.set_up("orders", 1, "ALL", &["--parquet", TARGET]).await;
    let cold = |days: &str| {
        let days = days.to_owned();
        let w = &w;
        async move {
            w.kinarch(&[
                "setup",
                "orders",
                "ALL",
                "--parquet-cold-after",
                &days,
                "--yes",
            ])
            .await
        }
    };
    let first = cold("90").await;
    assert!(
        first.ok().out().contains(
            "set lifecycle rule kinarch-parquet-orders of bucket history: files under \
             kinarch/orders/ move to Glacier Instant Retrieval after 90 day(s)"
        ),
        "{}",
        first.out()
    );
    let rule = |days: i32| {
        (
            "kinarch-parquet-orders".to_owned(),
            "kinarch/orders/".to_owned(),
            true,
            days,
            "GLACIER_IR".to_owned(),
        )
    };
    assert_eq!(
        s3::lifecycle_transitions(&w.s3, BUCKET).await,
        vec![rule(90)]
    );
    assert_eq!(
        s3::lifecycle_rules(&w.s3, BUCKET).await[0],
        ("someone-elses".to_owned(), "logs/".to_owned(), 30),
        "the bucket's other rule is kept"
    );

    // The same again changes nothing; other days are applied and said.
    let again = cold("90").await;
    assert!(again.ok().out().contains("unchanged"), "{}", again.out());
    let shorter = cold("30").await;
    assert!(
        shorter.ok().out().contains("after 30 day(s) instead of 90"),
        "{}",
        shorter.out()
    );
    assert_eq!(
        s3::lifecycle_transitions(&w.s3, BUCKET).await,
        vec![rule(30)]
    );

    // status shows it, in text and JSON.
    let status = w.kinarch(&["status", "orders"]).await;
    assert!(
        status
            .out()
            .contains("files move to S3 Glacier Instant Retrieval after 30 day(s)"),
        "{}",
        status.out()
    );
    let json = w.kinarch(&["status", "orders", "-o", "json"]).await.json();
    assert_eq!(json["parquet"]["coldAfterDays"], 30, "{json}");

    // --no-parquet-cold removes it, and only it.
    w.kinarch(&["setup", "orders", "ALL", "--no-parquet-cold", "--yes"])
        .await
        .ok();
    assert!(s3::lifecycle_transitions(&w.s3, BUCKET).await.is_empty());
    assert_eq!(s3::lifecycle_rules(&w.s3, BUCKET).await.len(), 1);

    // Without a Parquet archive there is nothing to move.
    w.set_up("plain", 1, "ALL", &[]).await;
    let refused = w
        .kinarch(&[
            "setup",
            "plain",
            "ALL",
            "--parquet-cold-after",
            "30",
            "--yes",
        ])
        .await;
    refused.expect_code(2);
    assert!(refused.stderr.contains("--parquet"), "{}", refused.stderr);
    let zero = w
        .kinarch(&[
            "setup",
            "orders",
            "ALL",
            "--parquet-cold-after",
            "0",
            "--yes",
        ])
        .await;
    zero.expect_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_needs_a_restore_is_named_with_the_command_and_the_rest_is_read() {
    let w = World::start().await;
    s3::create_bucket(&w.s3, BUCKET).await;
    let arn = w.set_up("orders", 2, "NONE", &["--parquet", TARGET]).await;
    let records: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("key-{i}"), format!("{{\"n\":{i}}}").into_bytes()))
        .collect();
    kinesis::put_many(&w.kinesis, "orders", &records).await;
    let written = kinesis::read_all(&w.kinesis, "orders").await;
    let mut env = w.moto.env();
    env.push(("RUST_LOG".into(), "info".into()));
    let mut function = LambdaFunction::start(&kinarch_tests::binary("bootstrap"), &env).await;
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let of_shard: Vec<_> = written
            .iter()
            .filter(|r| r.shard_id == shard)
            .cloned()
            .collect();
        assert!(!of_shard.is_empty(), "both shards have records");
        function.deliver(&arn, &of_shard).await;
    }
    let files: Vec<String> = s3::keys(&w.s3, BUCKET)
        .await
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let frozen = files
        .iter()
        .find(|k| k.contains("shardId-000000000000"))
        .unwrap();
    s3::set_storage_class(&w.s3, BUCKET, frozen, "GLACIER").await;

    let scan = w.kinarch(&["scan", "orders", "-o", "jsonl"]).await;
    scan.expect_code(1);
    assert!(
        scan.stderr.contains("restore-object")
            && scan.stderr.contains(&format!("--key '{frozen}'"))
            && scan.stderr.contains("GLACIER"),
        "{}",
        scan.stderr
    );
    let other_shard = written
        .iter()
        .filter(|r| r.shard_id == "shardId-000000000001")
        .count();
    assert_eq!(
        scan.out().lines().count(),
        other_shard,
        "the other file is read"
    );
}
