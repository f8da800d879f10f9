//! Replays into another account or region (issue 27): `--target ARN`, `--target-region`,
//! `--target-role-arn` / `--target-external-id` (STS AssumeRole). moto keeps one state per
//! account and tells the account of a request by its access key, so the keys of an assumed
//! role write into the role's account, as AWS does. The fault proxy shows which keys signed
//! which call.

use kinarch_core::aws::TargetAccess;
use kinarch_core::domain::frame::ReplayFrame;
use kinarch_core::{ArchiveRecord, SequenceNumber};
use kinarch_tests::cli::{command_with_env, run_command};
use kinarch_tests::kinesis;
use kinarch_tests::moto::{ACCESS_KEY_ID, REGION};
use kinarch_tests::proxy::{Fault, FaultProxy};
use kinarch_tests::world::World;

/// 2026-05-01T10:00:00Z.
const BASE: f64 = 1_777_629_600.0;
const ACCOUNT_B: &str = "210987654321";
const ROLE_B: &str = "arn:aws:iam::210987654321:role/kinarch-replay";
const OTHER_REGION: &str = "eu-west-1";

fn records(count: usize) -> Vec<ArchiveRecord> {
    (0..count)
        .map(|i| {
            ArchiveRecord::received(
                format!("key-{}", i % 5),
                SequenceNumber::parse(&format!("{}", 500 + i)).unwrap(),
                "shardId-000000000000".into(),
                BASE + i as f64,
                format!("record {i}").into_bytes(),
            )
        })
        .collect()
}

/// A Kinesis client of account B (the role's) or of another region.
async fn client(w: &World, access: TargetAccess) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&access.sdk_config(&w.sdk).await)
}

fn role_b() -> TargetAccess {
    TargetAccess {
        role_arn: Some(ROLE_B.to_owned()),
        ..TargetAccess::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_another_account_writes_as_the_role_and_reads_as_the_caller() {
    let w = World::start().await;
    w.archived("orders", 1, &records(40), chrono::Utc::now())
        .await;
    // Account B has a stream of the same name: the disaster-recovery copy.
    let account_b = client(&w, role_b()).await;
    kinesis::create_stream(&account_b, "orders", 2).await;
    let target = format!("arn:aws:kinesis:{REGION}:{ACCOUNT_B}:stream/orders");
    let proxy = FaultProxy::start(&w.moto.endpoint()).await;
    let via_proxy = |args: &[&str]| {
        let mut command = command_with_env(&w.moto.env_via(&proxy.endpoint()));
        command.args(args);
        run_command(command, None)
    };
    let replay = [
        "reinject",
        "orders",
        "--target",
        &target,
        "--target-role-arn",
        ROLE_B,
        "--target-external-id",
        "dr-2026",
        "--metadata",
        "--verify",
        "-o",
        "json",
    ];

    // The estimate and the dry run check the target as the role; they send nothing.
    let estimate = via_proxy(&[&replay[..8], &["--estimate", "-o", "json"]].concat()).await;
    assert_eq!(estimate.ok().json()["records"], 40);

    let run = via_proxy(&replay).await;
    let summary = run.ok().json();
    assert_eq!(summary["sent"], 40);
    assert_eq!(summary["target"], target);
    assert_eq!(summary["verify"]["verified"], 40, "{summary}");

    // Every record is in account B's stream, framed with the source's name (so B's archiver
    // archives them rather than skip them as replays of its own); account A's stream of the
    // same name got nothing.
    let arrived = kinesis::read_all(&account_b, "orders").await;
    assert_eq!(arrived.len(), 40);
    for record in &arrived {
        let frame = ReplayFrame::recognize(&record.data).expect("framed");
        assert_eq!(
            frame.metadata.original_stream_name.as_deref(),
            Some("orders")
        );
    }
    assert!(kinesis::read_all(&w.kinesis, "orders").await.is_empty());

    // Who signed what: the target's calls with the role's keys (ASIA...), the archive's with
    // the caller's, and STS with the caller's, with the external id.
    let calls = proxy.calls();
    let signed_by = |operation: &str| -> Vec<String> {
        calls
            .iter()
            .filter(|c| c.operation() == operation)
            .map(|c| c.access_key_id.clone())
            .collect()
    };
    for operation in ["PutRecords", "DescribeStreamSummary", "GetShardIterator"] {
        let keys = signed_by(operation);
        assert!(!keys.is_empty(), "{operation} was called");
        assert!(
            keys.iter()
                .all(|k| k.starts_with("ASIA") && k != ACCESS_KEY_ID),
            "{operation} signed by the role: {keys:?}"
        );
    }
    let scans = signed_by("Scan");
    assert!(
        !scans.is_empty() && scans.iter().all(|k| k == ACCESS_KEY_ID),
        "{scans:?}"
    );
    let assumed: Vec<_> = calls
        .iter()
        .filter(|c| c.body.contains("Action=AssumeRole"))
        .collect();
    assert!(!assumed.is_empty(), "STS AssumeRole was called");
    assert!(
        assumed.iter().all(|c| c.access_key_id == ACCESS_KEY_ID
            && c.body.contains("ExternalId=dr-2026")
            && c.body.contains("RoleSessionName=kinarch-reinject")),
        "{:?}",
        assumed.iter().map(|c| &c.body).collect::<Vec<_>>()
    );

    // Access denied on the target names the side and the role assumed.
    proxy.set_rule(|call| {
        (call.operation() == "PutRecords").then(|| Fault::client_error("AccessDeniedException"))
    });
    let denied = via_proxy(&replay[..10]).await;
    denied.expect_code(1);
    assert!(
        denied.stderr.contains(&format!(
            "writing the target {target} as role {ROLE_B}, assumed with session name \
             kinarch-reinject and the external id given"
        )) && denied.stderr.contains("AccessDenied"),
        "{}",
        denied.stderr
    );
    // A failed read of the archive names that side and the caller's credentials.
    proxy.set_rule(|call| {
        (call.operation() == "Scan").then(|| Fault::client_error("AccessDeniedException"))
    });
    let unreadable = via_proxy(&replay[..10]).await;
    unreadable.expect_code(1);
    assert!(
        unreadable
            .stderr
            .contains("reading the archive of orders with the caller's credentials"),
        "{}",
        unreadable.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_another_region_and_the_target_checks() {
    let w = World::start().await;
    w.archived("orders", 1, &records(12), chrono::Utc::now())
        .await;
    let west = client(
        &w,
        TargetAccess {
            region: Some(OTHER_REGION.to_owned()),
            ..TargetAccess::default()
        },
    )
    .await;
    kinesis::create_stream(&west, "orders-west", 1).await;

    let by_region = w
        .kinarch(&[
            "reinject",
            "orders",
            "--target",
            "orders-west",
            "--target-region",
            OTHER_REGION,
            "--verify",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(by_region.ok().json()["verify"]["verified"], 12);
    let arn = format!("arn:aws:kinesis:{OTHER_REGION}:123456789012:stream/orders-west");
    w.kinarch(&["reinject", "orders", "--target", &arn, "-n", "3"])
        .await
        .ok();
    assert_eq!(kinesis::read_all(&west, "orders-west").await.len(), 15);

    // A dry run checks the target as its calls will be made: a stream missing in that
    // account is named with the side and the role.
    let missing = "arn:aws:kinesis:us-east-1:333333333333:stream/nowhere";
    let role = "arn:aws:iam::333333333333:role/replay";
    let dry = w
        .kinarch(&[
            "reinject",
            "orders",
            "--target",
            missing,
            "--target-role-arn",
            role,
            "--dry-run",
        ])
        .await;
    dry.expect_code(1);
    assert!(
        dry.stderr
            .contains(&format!("writing the target {missing} as role {role}"))
            && dry.stderr.contains("not found"),
        "{}",
        dry.stderr
    );

    // Options that cannot work: exit 2 before anything is read.
    for (args, expected) in [
        (
            vec!["--target", "x", "--target-external-id", "id"],
            "--target-role-arn",
        ),
        (
            vec![
                "--target",
                "x",
                "--target-role-arn",
                "arn:aws:iam::12:role/r",
            ],
            "not an IAM role ARN",
        ),
        (
            vec!["--target", &arn, "--target-region", "us-west-2"],
            "--target-region is us-west-2",
        ),
    ] {
        let run = w
            .kinarch(&[&["reinject", "orders"][..], &args].concat())
            .await;
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
}
