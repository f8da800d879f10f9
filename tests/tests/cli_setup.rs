//! `kinarch setup` and `kinarch status`, the real binary against moto: what they create,
//! re-running, TTL on and off, dry runs, a table with the wrong key schema, the interactive
//! prompts (through a pseudo-terminal), and bad input.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ScalarAttributeType, TableDescription, TimeToLiveStatus,
};
use kinarch_tests::cli::{self, Run, kinarch, kinarch_on_a_terminal};
use kinarch_tests::dynamo;
use kinarch_tests::kinesis;
use kinarch_tests::moto::REGION;

/// The test world, with this file's reads of what setup made.
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
    async fn tags(&self, stream: &str) -> BTreeMap<String, String> {
        self.kinesis
            .list_tags_for_stream()
            .stream_name(stream)
            .send()
            .await
            .expect("ListTagsForStream")
            .tags
            .into_iter()
            .map(|t| (t.key, t.value.unwrap_or_default()))
            .collect()
    }

    async fn describe(&self, table: &str) -> TableDescription {
        self.dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTable")
            .table
            .expect("table description")
    }

    /// Provisioned (read, write) capacity units.
    async fn throughput(&self, table: &str) -> (Option<i64>, Option<i64>) {
        let table = self.describe(table).await;
        let throughput = table
            .provisioned_throughput()
            .expect("provisioned throughput");
        (
            throughput.read_capacity_units(),
            throughput.write_capacity_units(),
        )
    }

    /// Key schema as `["HASH partitionKey S", ...]`.
    async fn key_schema(&self, table: &str) -> Vec<String> {
        let table = self.describe(table).await;
        table
            .key_schema()
            .iter()
            .map(|k| {
                let kind = table
                    .attribute_definitions()
                    .iter()
                    .find(|d| d.attribute_name() == k.attribute_name())
                    .map(|d| d.attribute_type().clone())
                    .expect("key attribute is defined");
                assert_eq!(kind, ScalarAttributeType::S);
                let role = if *k.key_type() == KeyType::Hash {
                    "HASH"
                } else {
                    "RANGE"
                };
                format!("{role} {}", k.attribute_name())
            })
            .collect()
    }

    async fn table_names(&self) -> Vec<String> {
        self.dynamodb
            .list_tables()
            .send()
            .await
            .expect("ListTables")
            .table_names
            .unwrap_or_default()
    }

    async fn ttl(&self, table: &str) -> (Option<TimeToLiveStatus>, Option<String>) {
        let description = self
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTimeToLive")
            .time_to_live_description
            .expect("TTL description");
        (description.time_to_live_status, description.attribute_name)
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn step_lines(run: &Run) -> Vec<String> {
    run.out()
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_all_creates_the_table_enables_ttl_tags_the_stream_and_is_safe_to_rerun() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    // The endpoint from --endpoint-url only: the environment does not name one.
    let mut env = w.moto.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    let endpoint = w.moto.endpoint();
    let run_setup = || {
        let mut command = cli::command_with_env(&env);
        command.args([
            "setup",
            "orders",
            "ALL",
            REGION,
            "--ttl-seconds",
            "3600",
            "--endpoint-url",
            &endpoint,
        ]);
        cli::run_command(command, None)
    };

    let first = run_setup().await;
    first.ok();
    let steps = step_lines(&first);
    // Table, wait, TTL, the table's ArchivedStream tag (issue 28), the stream's tags.
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(steps.iter().all(|s| s.starts_with("done")), "{steps:?}");
    assert!(first.out().contains("items expire 3600 s after archiving"));
    assert!(first.stderr.is_empty(), "{}", first.stderr);

    assert_eq!(
        w.key_schema("orders-archive-ALL").await,
        ["HASH partitionKey", "RANGE sequenceNumber"]
    );
    let description = w.describe("orders-archive-ALL").await;
    assert_eq!(
        description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    assert_eq!(
        w.ttl("orders-archive-ALL").await,
        (Some(TimeToLiveStatus::Enabled), Some("expireAfter".into()))
    );
    let tags = map(&[
        ("StreamArchiveMode", "ALL"),
        ("ArchiveTTL", "expireSeconds=3600"),
    ]);
    assert_eq!(w.tags("orders").await, tags);

    let again = run_setup().await;
    again.ok();
    let steps = step_lines(&again);
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(
        steps.iter().all(|s| s.starts_with("unchanged")),
        "a re-run changes nothing: {steps:?}"
    );
    assert_eq!(w.tags("orders").await, tags);
    assert_eq!(w.table_names().await, ["orders-archive-ALL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_latest_with_provisioned_capacity_and_region_from_the_environment() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "prices", 1).await;
    kinarch(
        &w.moto,
        &[
            "setup",
            "prices",
            "latest",
            "--read-capacity",
            "3",
            "--write-capacity",
            "4",
            "-q",
        ],
    )
    .await
    .ok();
    assert_eq!(
        w.key_schema("prices-archive-LATEST").await,
        ["HASH partitionKey"]
    );
    assert_eq!(
        w.throughput("prices-archive-LATEST").await,
        (Some(3), Some(4))
    );
    // No TTL asked: TTL stays off and no ArchiveTTL tag.
    assert_eq!(
        w.ttl("prices-archive-LATEST").await.0,
        Some(TimeToLiveStatus::Disabled)
    );
    assert_eq!(
        w.tags("prices").await,
        map(&[("StreamArchiveMode", "LATEST")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_on_then_off_removes_the_tag_and_keeps_the_table_setting() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "events", 1).await;
    kinarch(&w.moto, &["setup", "events", "ALL", "--ttl-seconds", "60"])
        .await
        .ok();
    assert_eq!(
        w.tags("events").await.get("ArchiveTTL").map(String::as_str),
        Some("expireSeconds=60")
    );

    // Without a TTL option, the current TTL is kept.
    let kept = kinarch(&w.moto, &["setup", "events", "ALL"]).await;
    kept.ok();
    assert!(kept.out().contains("items expire 60 s"), "{}", kept.out());
    assert_eq!(
        w.tags("events").await.get("ArchiveTTL").map(String::as_str),
        Some("expireSeconds=60")
    );

    let off = kinarch(&w.moto, &["setup", "events", "ALL", "--no-ttl"]).await;
    off.ok();
    assert_eq!(
        w.tags("events").await,
        map(&[("StreamArchiveMode", "ALL")]),
        "ArchiveTTL removed"
    );
    let out = off.out();
    assert!(
        out.contains("done       remove tag ArchiveTTL from stream events"),
        "{out}"
    );
    assert!(out.contains("items never expire"), "{out}");
    assert!(
        out.contains("note: table events-archive-ALL keeps TTL on expireAfter"),
        "the kept table setting is explained: {out}"
    );
    assert_eq!(
        w.ttl("events-archive-ALL").await.0,
        Some(TimeToLiveStatus::Enabled)
    );

    let off_again = kinarch(&w.moto, &["setup", "events", "ALL", "--no-ttl"]).await;
    off_again.ok();
    assert!(
        step_lines(&off_again)
            .iter()
            .all(|s| s.starts_with("unchanged")),
        "{}",
        off_again.out()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_plan_and_changes_nothing() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    let run = kinarch(
        &w.moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--ttl-seconds",
            "86400",
            "--dry-run",
        ],
    )
    .await;
    run.ok();
    let out = run.out();
    assert!(out.contains("Dry run, nothing was changed"), "{out}");
    let steps = step_lines(&run);
    assert_eq!(
        steps,
        [
            "to do      create table orders-archive-ALL with key HASH partitionKey (S) + RANGE sequenceNumber (S) (on-demand billing)",
            "to do      wait until table orders-archive-ALL is ACTIVE",
            "to do      enable TTL of table orders-archive-ALL on attribute expireAfter",
            "to do      tag table orders-archive-ALL: ArchivedStream=orders",
            "to do      tag stream orders: StreamArchiveMode=ALL ArchiveTTL=expireSeconds=86400",
        ]
    );
    assert!(w.table_names().await.is_empty());
    assert!(w.tags("orders").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_table_with_the_wrong_key_schema_is_refused_with_advice() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    // A LATEST-shaped table where ALL mode needs partitionKey + sequenceNumber.
    dynamo::create_table(&w.dynamodb, "orders-archive-ALL", false).await;
    let run = kinarch(&w.moto, &["setup", "orders", "ALL"]).await;
    run.expect_code(1);
    let err = &run.stderr;
    assert!(err.starts_with("error: table orders-archive-ALL has key schema HASH partitionKey (S) but ALL mode needs HASH partitionKey (S) + RANGE sequenceNumber (S)"), "{err}");
    assert!(err.contains("made for LATEST mode"), "{err}");
    assert!(
        err.contains("kinarch setup orders LATEST us-east-1"),
        "{err}"
    );
    assert!(err.contains("ArchiveTableName"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(run.stdout.is_empty());
    assert!(w.tags("orders").await.is_empty(), "nothing was tagged");

    // The dry run reports the same problem.
    kinarch(&w.moto, &["setup", "orders", "ALL", "--dry-run"])
        .await
        .expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_tags_table_key_schema_ttl_and_item_count() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 2).await;

    // Not set up: a health check fails (exit 1) after showing everything it knows.
    let before = kinarch(&w.moto, &["status", "orders"]).await;
    before.expect_code(1);
    let out = before.out();
    assert!(out.contains("not set up"), "{out}");
    assert!(
        out.contains("kinarch setup orders <ALL|LATEST> us-east-1"),
        "{out}"
    );
    assert!(out.contains("does not exist"), "{out}");

    kinarch(&w.moto, &["setup", "orders", "ALL", "--ttl-seconds", "120"])
        .await
        .ok();
    for i in 0..3 {
        w.dynamodb
            .put_item()
            .table_name("orders-archive-ALL")
            .item(
                "partitionKey",
                aws_sdk_dynamodb::types::AttributeValue::S("k".into()),
            )
            .item(
                "sequenceNumber",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("{}", i + 1)),
            )
            .send()
            .await
            .unwrap();
    }
    let after = kinarch(&w.moto, &["status", "orders"]).await;
    after.ok();
    let out = after.out();
    let lines: BTreeMap<&str, &str> = out
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    assert_eq!(lines["stream"], "orders (ACTIVE, 2 open shards)", "{out}");
    assert_eq!(lines["region"], "us-east-1");
    assert_eq!(lines["mode"], "ALL (every record)");
    assert_eq!(lines["TTL"], "items expire 120 s after archiving");
    assert_eq!(lines["table"], "orders-archive-ALL (ACTIVE)");
    assert_eq!(
        lines["key schema"],
        "HASH partitionKey (S) + RANGE sequenceNumber (S) (fits ALL mode)"
    );
    assert_eq!(lines["billing"], "on-demand");
    assert_eq!(lines["table TTL"], "enabled on attribute expireAfter");
    assert!(lines["items"].starts_with("about 3 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_setup_asks_for_ttl_billing_capacity_and_confirmation() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    // TTL, billing, read capacity, write capacity (Enter: default 5), confirmation.
    let run =
        kinarch_on_a_terminal(&w.moto, "setup orders ALL", "3600\nprovisioned\n7\n\ny\n").await;
    run.ok();
    let screen = run.out();
    for question in [
        "Expire archived records after how many seconds?",
        "current setting: never",
        "Billing of the new table, on-demand or provisioned?",
        "Read capacity units? [5]",
        "Write capacity units? [5]",
        "Setup will:",
        "Apply these changes? [y/N]",
        "done       tag stream orders: StreamArchiveMode=ALL ArchiveTTL=expireSeconds=3600",
    ] {
        assert!(
            screen.contains(question),
            "{question:?} on screen:\n{screen}"
        );
    }
    assert_eq!(w.throughput("orders-archive-ALL").await, (Some(7), Some(5)));
    assert_eq!(
        w.ttl("orders-archive-ALL").await.0,
        Some(TimeToLiveStatus::Enabled)
    );

    // A re-run on a terminal asks only the TTL (the table exists), showing the current one;
    // Enter keeps it, and with nothing to change there is nothing to confirm.
    let again = kinarch_on_a_terminal(&w.moto, "setup orders ALL", "\n").await;
    again.ok();
    let screen = again.out();
    assert!(screen.contains("current setting: 3600 s"), "{screen}");
    assert!(!screen.contains("Billing"), "{screen}");
    assert!(!screen.contains("Apply these changes"), "{screen}");
    assert_eq!(
        w.tags("orders").await,
        map(&[
            ("StreamArchiveMode", "ALL"),
            ("ArchiveTTL", "expireSeconds=3600")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_setup_answered_no_changes_nothing() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    let run = kinarch_on_a_terminal(&w.moto, "setup orders LATEST", "never\n\nn\n").await;
    run.expect_code(1);
    assert!(
        run.out().contains("setup cancelled: nothing was changed"),
        "{}",
        run.out()
    );
    assert!(w.table_names().await.is_empty());
    assert!(w.tags("orders").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_setup_input_says_what_is_wrong_with_the_right_exit_code() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;

    let unknown = kinarch(&w.moto, &["setup", "missing", "ALL"]).await;
    unknown.expect_code(1);
    assert!(
        unknown
            .stderr
            .contains("stream missing was not found in region us-east-1"),
        "{}",
        unknown.stderr
    );

    let mode = kinarch(&w.moto, &["setup", "orders", "EVERYTHING"]).await;
    mode.expect_code(2);
    assert!(
        mode.stderr.contains("invalid archive mode \"EVERYTHING\"")
            && mode.stderr.contains("ALL")
            && mode.stderr.contains("LATEST"),
        "{}",
        mode.stderr
    );

    let name = kinarch(&w.moto, &["setup", "orders/x", "ALL"]).await;
    name.expect_code(2);
    assert!(name.stderr.contains("[a-zA-Z0-9_.-]+"), "{}", name.stderr);

    let ttl = kinarch(
        &w.moto,
        &["setup", "orders", "ALL", "--ttl-seconds", "soon"],
    )
    .await;
    ttl.expect_code(2);
    assert!(
        ttl.stderr.contains("whole number of seconds"),
        "{}",
        ttl.stderr
    );

    let regions = kinarch(
        &w.moto,
        &[
            "setup",
            "orders",
            "ALL",
            "eu-west-1",
            "--region",
            "us-east-1",
        ],
    )
    .await;
    regions.expect_code(2);
    assert!(
        regions.stderr.contains("two different regions"),
        "{}",
        regions.stderr
    );

    let mut env = w.moto.env();
    env.retain(|(k, _)| k != "AWS_REGION");
    let mut command = cli::command_with_env(&env);
    command.args(["status", "orders"]);
    let no_region = cli::run_command(command, None).await;
    no_region.expect_code(2);
    assert!(
        no_region.stderr.contains("no AWS region"),
        "{}",
        no_region.stderr
    );

    for run in [unknown, mode, name, ttl, regions, no_region] {
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert!(w.table_names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help_need_no_aws() {
    let w = world().await;
    let bash = kinarch(&w.moto, &["completions", "bash"]).await;
    bash.ok();
    assert!(bash.out().contains("_kinarch()"), "{}", bash.out());
    for sub in ["setup", "status", "query", "scan", "completions"] {
        let help = kinarch(&w.moto, &[sub, "--help"]).await;
        help.ok();
        assert!(
            help.out().contains("Usage: kinarch"),
            "{sub}: {}",
            help.out()
        );
        assert!(help.out().contains("Example"), "{sub} help has examples");
    }
}

/// Environment for kinarch through `endpoint` with the given config and credentials files
/// (and the test's dummy keys in the environment, as a developer's shell often has).
fn env_with_profile_files(
    w: &World,
    endpoint: &str,
    config: &std::path::Path,
    credentials: &std::path::Path,
) -> Vec<(String, String)> {
    let mut env = w.moto.env_via(endpoint);
    for (key, value) in &mut env {
        match key.as_str() {
            "AWS_CONFIG_FILE" => *value = config.display().to_string(),
            "AWS_SHARED_CREDENTIALS_FILE" => *value = credentials.display().to_string(),
            _ => {}
        }
    }
    env
}

/// Issue 11.3: `--profile` wins over access keys in the environment, as with the AWS CLI
/// (the proxy reads the access key id of each request's SigV4 signature); a profile that
/// does not exist and no credentials at all end in one clear line with exit status 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_given_signs_the_requests_and_missing_credentials_are_one_clear_line() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    let dir = std::env::temp_dir().join(format!("kinarch-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(&config, "[profile other]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[other]\naws_access_key_id = AKIAPROFILEOTHER0001\naws_secret_access_key = other-secret\n",
    )
    .unwrap();

    let proxy = kinarch_tests::proxy::FaultProxy::start(&w.moto.endpoint()).await;
    let signers = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = signers.clone();
    proxy.set_rule(move |call| {
        seen.lock().unwrap().push(call.access_key_id.clone());
        None
    });
    let env = env_with_profile_files(&w, &proxy.endpoint(), &config, &credentials);
    let status_as = |profile: Option<&str>| {
        let mut command = cli::command_with_env(&env);
        command.args(["status", "orders"]);
        if let Some(profile) = profile {
            command.args(["--profile", profile]);
        }
        cli::run_command(command, None)
    };

    // The stream is not set up, so status exits 1; what matters is who signed.
    status_as(Some("other")).await.expect_code(1);
    let with_profile = std::mem::take(&mut *signers.lock().unwrap());
    assert!(!with_profile.is_empty());
    assert!(
        with_profile.iter().all(|k| k == "AKIAPROFILEOTHER0001"),
        "{with_profile:?}"
    );
    // Without --profile the environment's keys sign, as before.
    status_as(None).await.expect_code(1);
    let without = std::mem::take(&mut *signers.lock().unwrap());
    assert!(
        !without.is_empty()
            && without
                .iter()
                .all(|k| k == kinarch_tests::moto::ACCESS_KEY_ID),
        "{without:?}"
    );

    let missing = status_as(Some("nope")).await;
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("profile nope not found in")
            && missing.stderr.contains(&config.display().to_string()),
        "{}",
        missing.stderr
    );
    assert!(signers.lock().unwrap().is_empty(), "no request was sent");

    let mut bare: Vec<(String, String)> = w.moto.env();
    bare.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"));
    let mut command = cli::command_with_env(&bare);
    command.args(["status", "orders"]);
    let none = cli::run_command(command, None).await;
    none.expect_code(1);
    let lines: Vec<&str> = none.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", none.stderr);
    assert!(
        lines[0].starts_with("error: no AWS credentials found")
            && lines[0].contains("aws configure"),
        "{}",
        none.stderr
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 11.1: `setup --table NAME` adopts an existing table once its key schema fits, and
/// names it in the ArchiveTableName tag; a table of the other mode is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_adopts_an_existing_table_named_with_table() {
    let w = world().await;
    kinesis::create_stream(&w.kinesis, "orders", 1).await;
    dynamo::create_table(&w.dynamodb, "kept-elsewhere", true).await;
    dynamo::create_table(&w.dynamodb, "latest-shaped", false).await;
    kinarch(
        &w.moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--table",
            "kept-elsewhere",
            "--yes",
        ],
    )
    .await
    .ok();
    let tags = w.tags("orders").await;
    assert_eq!(tags["ArchiveTableName"], "kept-elsewhere");
    assert_eq!(tags["StreamArchiveMode"], "ALL");
    assert_eq!(w.table_names().await, ["kept-elsewhere", "latest-shaped"]);

    let misfit = kinarch(
        &w.moto,
        &[
            "setup",
            "orders",
            "ALL",
            "--table",
            "latest-shaped",
            "--yes",
        ],
    )
    .await;
    misfit.expect_code(1);
    assert!(
        misfit.stderr.contains("latest-shaped") && misfit.stderr.contains("LATEST mode"),
        "{}",
        misfit.stderr
    );
}
