//! `bin/demo`, the README's first command, run as a user runs it, so it cannot rot: it
//! must end with status 0 after showing every step, and stop the emulator it started, also
//! when a step fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// Runs bin/demo with the test's environment (tools dir, cargo, target dir) plus `env`.
fn run_demo(env: &[(&str, &str)]) -> Demo {
    let started = Instant::now();
    let mut command = Command::new("bash");
    // The demo builds kinarch with cargo: as a user's shell would, not as this test runs.
    kinarch_tests::without_cargo_test_env(&mut command);
    let output = command
        .arg(kinarch_tests::repo_root().join("bin/demo"))
        .envs(env.iter().copied())
        // The demo sets its own AWS environment; make sure nothing from outside leaks in.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .output()
        .expect("bash runs bin/demo");
    Demo {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The emulator port the demo announced.
fn port(demo: &Demo) -> u16 {
    let marker = "moto server on http://127.0.0.1:";
    let at = demo
        .stdout
        .find(marker)
        .unwrap_or_else(|| panic!("the demo names its emulator:\n{}", demo.stdout));
    demo.stdout[at + marker.len()..]
        .lines()
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("a port number")
}

fn assert_stopped(port: u16) {
    // moto may take a moment to release the port after SIGTERM.
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the emulator on port {port} still answers after the demo ended");
}

#[test]
fn the_demo_runs_every_step_and_stops_its_emulator() {
    // Build first, as the demo's own build step then finds nothing to do.
    kinarch_tests::binary("kinarch");
    let demo = run_demo(&[]);
    println!(
        "bin/demo took {:.1} s\n{}\n{}",
        demo.seconds, demo.stdout, demo.stderr
    );
    assert_eq!(
        demo.code, 0,
        "bin/demo failed:\n{}\n{}",
        demo.stdout, demo.stderr
    );
    for expected in [
        "$ kinarch setup demo-orders ALL us-east-1 --ttl-seconds 86400 --yes",
        "tag stream demo-orders: StreamArchiveMode=ALL ArchiveTTL=expireSeconds=86400",
        "table TTL   enabled on attribute expireAfter",
        "| kinarch put demo-orders --key-field customer",
        "$ kinarch archive demo-orders\n",
        "archived 6 records of stream demo-orders into table demo-orders-archive-ALL (ALL mode)",
        "checkpoints: table demo-orders-archive-ALL-checkpoints",
        // query: the records of one key, byte for byte
        "$ kinarch query demo-orders customer-1\n{\"customer\":\"customer-1\",\"order\":1,\"total\":12.5}\n{\"customer\":\"customer-1\",\"order\":3,\"note\":\"café\"}\n",
        // the binary payloads, as base64 in jsonl
        "\"recordData\":\"cmVhZGluZyAA/xCAIHJhdyBieXRlcw==\"",
        "\"recordData\":\"AAEC/w==\"",
        // the second archive run resumes from the checkpoints
        "\"records\":2",
        "after checkpoint 6",
        "$ kinarch scan demo-orders --arrived-after ",
        "$ kinarch setup demo-prices LATEST --yes",
        "(3 older or repeated records not written)",
        // the Lambda function itself: its summary line, its EMF line, its answer, and what
        // it archived
        "invoking bootstrap with a Kinesis event of 3 records of stream demo-events",
        "\"message\":\"archived batch\"",
        "\"_aws\":{\"",
        "\"RecordsArchived\":3",
        "answer: {\"batchItemFailures\":[]}",
        "$ kinarch query demo-events device-1   # archived by the function\n{\"device\":\"device-1\",\"t\":21.5}\n{\"device\":\"device-1\",\"t\":22}\n",
    ] {
        assert!(
            demo.stdout.contains(expected),
            "{expected:?} in the demo's output:\n{}",
            demo.stdout
        );
    }
    // Long steps say so and show their progress (issue 28): the first run's cost up front,
    // cargo's own lines for the build (here it finds nothing to do, and says that).
    for expected in [
        "the first run installs the emulator (about a minute) and builds kinarch",
        "building kinarch: the CLI and the Lambda function (cargo's progress below)",
        "Finished `dev` profile",
    ] {
        assert!(
            demo.stderr.contains(expected),
            "{expected:?} in the demo's standard error:\n{}",
            demo.stderr
        );
    }
    // The filtered scan shows exactly the two records that arrived after the given time.
    let scan = demo
        .stdout
        .split("$ kinarch scan demo-orders --arrived-after ")
        .nth(1)
        .unwrap();
    let scanned: Vec<&str> = scan
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('{'))
        .collect();
    assert_eq!(scanned.len(), 2, "{scan}");
    assert!(
        scanned
            .iter()
            .any(|l| l.contains("\"partitionKey\":\"customer-4\""))
    );
    // LATEST mode keeps the newest record of each key (a scan has no order).
    let latest = demo
        .stdout
        .split("# one record per key: the newest\n")
        .nth(1)
        .unwrap();
    let mut newest: Vec<&str> = latest.lines().take(3).collect();
    newest.sort();
    assert_eq!(
        newest,
        [
            "{\"sku\":\"apple\",\"price\":1.30}",
            "{\"sku\":\"pear\",\"price\":0.95}",
            "{\"sku\":\"plum\",\"price\":2.00}"
        ]
    );
    // The reinject step shows the framed records.
    assert!(
        demo.stdout
            .contains("$ kinarch reinject demo-orders --target demo-replay --metadata"),
        "{}",
        demo.stdout
    );
    assert!(
        demo.stdout
            .contains("data=|{\"originalApproximateArrivalTimestamp\":"),
        "framed records are read back:\n{}",
        demo.stdout
    );
    assert!(
        demo.stderr.contains("moto server stopped"),
        "{}",
        demo.stderr
    );
    assert_stopped(port(&demo));
}

#[test]
fn a_failing_step_fails_the_demo_and_still_stops_the_emulator() {
    // A "kinarch" that always fails: the first kinarch step fails.
    let demo = run_demo(&[("KINARCH_BIN", "/bin/false")]);
    assert_ne!(demo.code, 0, "{}\n{}", demo.stdout, demo.stderr);
    assert!(
        demo.stderr
            .contains("bin/demo: FAILED (exit 1) at: kinarch setup demo-orders ALL"),
        "the failed step is named:\n{}",
        demo.stderr
    );
    assert!(
        demo.stderr.contains("moto server stopped"),
        "{}",
        demo.stderr
    );
    assert_stopped(port(&demo));
}
