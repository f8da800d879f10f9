//! `kinarch-bench`: runs kinarch's benchmark scenarios and prints a table (see BENCHMARKS.md).
//!
//! ```text
//! kinarch-bench [--bin-dir target/release] [--out target/bench] [--criterion-dir DIR]
//!               [--quick] [--no-moto]
//! ```
//!
//! The scenarios drive the release binaries (`bootstrap` through a loopback Lambda Runtime
//! API, `kinarch` as a command) against the null endpoint, which counts requests, and
//! against moto for end-to-end figures. The library is also called in-process for figures
//! without process start-up. Writes `results.md` and `results.json` to `--out`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kinarch_bench::data::{self, PAYLOAD_BYTES};
use kinarch_bench::null_endpoint::{Dataset, LAMBDA_INVOKE, NullEndpoint, OpCount};
use kinarch_bench::procfs::{self, Finished};
use kinarch_bench::report::{Report, Verdict};
use kinarch_bench::stats::Summary;
use kinarch_bench::{aws_env, sdk_config};
use kinarch_core::Selection;
use kinarch_core::aws::tables::{Billing, create_archive_table};
use kinarch_core::domain::event::decode_event;
use kinarch_core::read::{ArchiveReader, ReadOptions, SelectionSpec, TimeIndexUse, TimeWindow};
use kinarch_core::replay::reinject::{ReinjectOptions, reinject};
use kinarch_core::{
    ArchiveMode, ArchiveRecord, ArchiveWriter, SequenceNumber, StreamArchiveConfig, StreamName,
    WriterOptions,
};
use kinarch_tests::kinesis;
use kinarch_tests::lambda::LambdaFunction;
use kinarch_tests::moto::Moto;
use serde_json::Value;
use tokio::runtime::Handle;

const NULL: &str = "null endpoint";
const MOTO: &str = "moto";
const BINARY: &str = "release binary";
const IN_PROCESS: &str = "in process";

/// How many times each scenario runs.
#[derive(Debug, Clone, Copy)]
struct Runs {
    /// Process starts for the init time.
    init: usize,
    /// `bootstrap` processes for the 10,000-record batches.
    processes: usize,
    /// Warm 10,000-record invocations per process, after the first.
    warm_invocations: usize,
    /// Repetitions of in-process and CLI throughput runs.
    throughput: usize,
    /// End-to-end runs against moto.
    moto: usize,
}

struct Options {
    bin_dir: PathBuf,
    out_dir: PathBuf,
    criterion_dir: Option<PathBuf>,
    runs: Runs,
    moto: bool,
    /// Only the scenarios with these names (all when empty).
    only: Vec<String>,
    /// Extra environment of every `bootstrap` process (`KEY=VALUE`), for experiments.
    bootstrap_env: Vec<(String, String)>,
    /// A command in front of every `bootstrap` (a profiler), split on spaces.
    bootstrap_wrap: Vec<String>,
}

/// Scenario names for `--only`.
const SCENARIOS: &[&str] = &[
    "sizes",
    "init",
    "requests",
    "big-batches",
    "kpl",
    "reinject",
    "replay-targets",
    "scan",
    "moto",
    "overflow",
    "time-index",
    "parquet",
    "compact",
    "cost",
    "tier",
];

fn parse_args() -> Options {
    let mut options = Options {
        bin_dir: PathBuf::from("target/release"),
        out_dir: PathBuf::from("target/bench"),
        criterion_dir: None,
        runs: Runs {
            init: 30,
            processes: 3,
            warm_invocations: 5,
            throughput: 5,
            moto: 3,
        },
        moto: true,
        only: Vec::new(),
        bootstrap_env: Vec::new(),
        bootstrap_wrap: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--bin-dir" => options.bin_dir = value().into(),
            "--out" => options.out_dir = value().into(),
            "--criterion-dir" => options.criterion_dir = Some(value().into()),
            "--no-moto" => options.moto = false,
            "--only" => {
                let name = value();
                if !SCENARIOS.contains(&name.as_str()) {
                    usage(&format!("unknown scenario {name}; one of {SCENARIOS:?}"));
                }
                options.only.push(name);
            }
            "--bootstrap-env" => {
                let pair = value();
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| usage("--bootstrap-env takes KEY=VALUE"));
                options.bootstrap_env.push((k.to_owned(), v.to_owned()));
            }
            "--bootstrap-wrap" => {
                options.bootstrap_wrap = value().split_whitespace().map(str::to_owned).collect();
            }
            "--quick" => {
                options.runs = Runs {
                    init: 20,
                    processes: 1,
                    warm_invocations: 3,
                    throughput: 3,
                    moto: 1,
                }
            }
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    options
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "kinarch-bench: {problem}\nusage: kinarch-bench [--bin-dir DIR] [--out DIR] [--criterion-dir DIR] [--quick] [--no-moto] [--only SCENARIO]... [--bootstrap-env KEY=VALUE]... [--bootstrap-wrap 'valgrind --tool=callgrind']\nscenarios: {}",
        SCENARIOS.join(", ")
    );
    std::process::exit(2)
}

/// What every scenario needs.
struct Ctx {
    /// The runtime the servers (null endpoint, Runtime API) run on: its own thread, so the
    /// driver's in-process measurements do not delay the answers.
    servers: Handle,
    null: NullEndpoint,
    bootstrap: PathBuf,
    kinarch: PathBuf,
    runs: Runs,
    bootstrap_env: Vec<(String, String)>,
    bootstrap_wrap: Vec<String>,
}

fn main() {
    let options = parse_args();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-servers")
        .enable_all()
        .build()
        .expect("server runtime");
    let driver = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("driver runtime");
    let started = Instant::now();
    let mut report = Report {
        machine: machine_facts("load at start"),
        ..Report::default()
    };
    driver.block_on(async {
        let ctx = Ctx {
            null: NullEndpoint::start(servers.handle()).await,
            servers: servers.handle().clone(),
            bootstrap: existing(&options.bin_dir.join("bootstrap")),
            kinarch: existing(&options.bin_dir.join("kinarch")),
            runs: options.runs,
            bootstrap_env: options.bootstrap_env.clone(),
            bootstrap_wrap: options.bootstrap_wrap.clone(),
        };
        let run = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
        if run("sizes") {
            binary_sizes(&ctx, &mut report);
        }
        if run("init") {
            init_time(&ctx, &mut report).await;
        }
        if run("requests") {
            lambda_requests(&ctx, &mut report).await;
            writer_requests(&ctx, &mut report).await;
        }
        if run("big-batches") {
            big_batches(&ctx, &mut report, "bench-all", 10_000).await;
            big_batches(&ctx, &mut report, "bench-latest", 1_000).await;
        }
        if run("kpl") {
            kpl_batches(&ctx, &mut report, "bench-kpl", 400).await;
            kpl_batches(&ctx, &mut report, "bench-kpl-latest", 500).await;
        }
        if run("reinject") {
            reinject_library(&ctx, &mut report).await;
            reinject_binary(&ctx, &mut report).await;
        }
        if run("replay-targets") {
            replay_targets(&ctx, &mut report).await;
        }
        if run("scan") {
            scan_library(&ctx, &mut report).await;
            scan_binary(&ctx, &mut report).await;
        }
        if run("parquet") {
            big_batches(&ctx, &mut report, "bench-parquet", 10_000).await;
        }
        if run("cost") {
            archive_cost(&mut report);
        }
        if options.moto && run("parquet") {
            parquet_reads_scenario(&mut report).await;
        }
        if options.moto && run("compact") {
            compaction_scenario(&mut report).await;
        }
        if options.moto && run("moto") {
            moto_scenarios(&ctx, &mut report).await;
        }
        if options.moto && run("overflow") {
            overflow_scenarios(&ctx, &mut report).await;
        }
        if options.moto && run("time-index") {
            time_index_scenario(&mut report).await;
        }
        if options.moto && run("tier") {
            tier_scenario(&ctx, &mut report).await;
        }
    });
    if let Some(dir) = &options.criterion_dir {
        criterion_results(dir, &mut report);
    }
    report
        .machine
        .extend(machine_facts("load at end").into_iter().skip(3));
    report.machine.push((
        "driver run time".into(),
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    ));
    let markdown = report.markdown();
    println!("{markdown}");
    std::fs::create_dir_all(&options.out_dir).expect("create the output directory");
    std::fs::write(options.out_dir.join("results.md"), &markdown).expect("write results.md");
    std::fs::write(
        options.out_dir.join("results.json"),
        serde_json::to_string_pretty(&report.json()).unwrap(),
    )
    .expect("write results.json");
    eprintln!(
        "kinarch-bench: {} figures, {} targets missed; results in {}",
        report.rows.len(),
        report.missed(),
        options.out_dir.display()
    );
}

fn existing(path: &Path) -> PathBuf {
    if !path.exists() {
        usage(&format!(
            "{} is missing: build with `cargo build --release -p kinarch-lambda -p kinarch-cli`",
            path.display()
        ));
    }
    path.to_owned()
}

/// nproc, CPU model, memory, load average.
fn machine_facts(load_label: &str) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or("unknown".into(), |kib| format!("{} MiB", kib / 1024));
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        (
            "nproc".into(),
            std::thread::available_parallelism()
                .map_or(0, |n| n.get())
                .to_string(),
        ),
        ("CPU".into(), model),
        ("memory".into(), mem),
        (load_label.into(), format!("{load} (1, 5, 15 min)")),
    ]
}

fn kib_to_mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn op_summary(counts: &std::collections::BTreeMap<String, OpCount>) -> String {
    counts
        .iter()
        .map(|(op, c)| {
            if c.entries > 0 {
                format!(
                    "{op} {} (≤{} entries each, {} in all)",
                    c.requests, c.max_entries, c.entries
                )
            } else {
                format!("{op} {}", c.requests)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn service_requests(counts: &std::collections::BTreeMap<String, OpCount>, service: &str) -> u64 {
    counts
        .iter()
        .filter(|(op, _)| op.starts_with(service))
        .map(|(_, c)| c.requests)
        .sum()
}

/// Whether a Lambda invocation answered with an empty `batchItemFailures`.
fn all_archived(outcome: &Result<Value, Value>) -> Result<(), String> {
    match outcome {
        Ok(v) if v["batchItemFailures"].as_array().is_some_and(Vec::is_empty) => Ok(()),
        Ok(v) => Err(format!("partial failure: {v}")),
        Err(e) => Err(format!("function error: {e}")),
    }
}

/// Invokes `function` with `event` and a 60 s deadline: `Ok` with its response, `Err` with
/// its error or with why no answer came.
async fn invoke(function: &mut LambdaFunction, event: &Bytes) -> Result<Value, Value> {
    match function.try_invoke_shared(event.clone()).await {
        Ok(invocation) => invocation.into_result(),
        Err(lost) => Err(Value::String(lost)),
    }
}

fn binary_sizes(ctx: &Ctx, report: &mut Report) {
    for path in [&ctx.bootstrap, &ctx.kinarch] {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        report.add(
            BINARY,
            format!(
                "size of {}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            "",
            format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0),
            Verdict::Info,
            "release profile: lto fat, codegen-units 1, strip, panic unwind",
        );
    }
}

async fn start_function(ctx: &Ctx, endpoint: &str) -> (LambdaFunction, Duration) {
    let mut env = aws_env(endpoint);
    env.extend(ctx.bootstrap_env.iter().cloned());
    let function = LambdaFunction::builder(&ctx.bootstrap)
        .env(&env)
        .wrapper(&ctx.bootstrap_wrap)
        .discard_output()
        .server_runtime(ctx.servers.clone())
        .start()
        .await;
    let init = function
        .init_time(Duration::from_secs(60))
        .await
        .expect("bootstrap asks for its first invocation");
    (function, init)
}

async fn init_time(ctx: &Ctx, report: &mut Report) {
    let mut times = Vec::new();
    let mut hwm = Vec::new();
    for _ in 0..ctx.runs.init {
        let (function, init) = start_function(ctx, &ctx.null.endpoint()).await;
        times.push(ms(init));
        if let Some(kib) = procfs::status_kib(function.pid(), "VmHWM") {
            hwm.push(kib_to_mib(kib as f64));
        }
    }
    let s = Summary::of(&times).expect("init runs");
    report.add(
        BINARY,
        "bootstrap: process start to first /invocation/next (ms)",
        "≤ 30 ms median",
        s.show(1),
        Verdict::check(s.median <= 30.0),
        "spawn to the request arriving at the loopback Runtime API",
    );
    if let Some(h) = Summary::of(&hwm) {
        report.add(
            BINARY,
            "bootstrap: peak RSS at init (MiB)",
            "",
            h.show(1),
            Verdict::Info,
            "VmHWM when waiting for the first invocation",
        );
    }
}

/// The request counts of the two 1,000-record batches, through the real binary.
async fn lambda_requests(ctx: &Ctx, report: &mut Report) {
    let (mut function, _) = start_function(ctx, &ctx.null.endpoint()).await;
    let cases = [
        ("bench-all", 1000, "ALL, 1,000 records", 40),
        (
            "bench-latest",
            100,
            "LATEST, 1,000 records over 100 keys",
            100,
        ),
    ];
    for (stream, keys, label, target) in cases {
        let event = Bytes::from(data::event(stream, 1000, keys, PAYLOAD_BYTES).to_string());
        ctx.null.reset_counts();
        let outcome = invoke(&mut function, &event).await;
        let counts = ctx.null.counts();
        let dynamodb = service_requests(&counts, "DynamoDB.");
        let note = match all_archived(&outcome) {
            Ok(()) => op_summary(&counts),
            Err(e) => format!("FAILED: {e}"),
        };
        report.add(
            NULL,
            format!("DynamoDB requests, one {label} batch (bootstrap)"),
            target.to_string(),
            dynamodb.to_string(),
            Verdict::check(dynamodb <= target && outcome.is_ok()),
            note,
        );
    }
}

fn records_of(event: &Value) -> Vec<ArchiveRecord> {
    decode_event(event).expect("a valid event").records
}

/// The same counts through `ArchiveWriter::write` in-process.
async fn writer_requests(ctx: &Ctx, report: &mut Report) {
    let sdk = sdk_config(&ctx.null.endpoint()).await;
    let writer = ArchiveWriter::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        WriterOptions::default(),
    );
    for (mode, keys, label) in [
        (ArchiveMode::All, 1000, "ALL, 1,000 records"),
        (
            ArchiveMode::Latest,
            100,
            "LATEST, 1,000 records over 100 keys",
        ),
    ] {
        let records = records_of(&data::event("bench", 1000, keys, PAYLOAD_BYTES));
        let config = StreamArchiveConfig::new(StreamName::new("bench").unwrap(), mode, None);
        ctx.null.reset_counts();
        let outcome = writer
            .write(
                &config,
                &records,
                tokio::time::Instant::now() + Duration::from_secs(60),
            )
            .await
            .expect("write");
        let counts = ctx.null.counts();
        report.add(
            NULL,
            format!("DynamoDB requests, one {label} batch (ArchiveWriter::write)"),
            "",
            service_requests(&counts, "DynamoDB.").to_string(),
            Verdict::Info,
            format!(
                "{}; written {}, failed {}",
                op_summary(&counts),
                outcome.counts.written,
                outcome.counts.failed
            ),
        );
    }
}

/// 10,000-record batches through the binary: peak RSS and CPU per record.
async fn big_batches(ctx: &Ctx, report: &mut Report, stream: &str, keys: usize) {
    const RECORDS: usize = 10_000;
    let event_text = data::event(stream, RECORDS, keys, PAYLOAD_BYTES).to_string();
    let event_mib = event_text.len() as f64 / 1024.0 / 1024.0;
    let event = Bytes::from(event_text);
    // Issue 16's targets are for the ALL batch, issue 24's for Parquet only; LATEST is
    // reported beside them.
    let (label, targets) = if stream.ends_with("-latest") {
        (format!("LATEST over {keys} keys"), None)
    } else if stream.ends_with("-parquet") {
        ("NONE + Parquet".to_owned(), Some((40.0, 40.0, 15.0)))
    } else {
        ("ALL".to_owned(), Some((24.0, 26.0, 10.0)))
    };
    let target =
        |value: Option<f64>, unit: &str| value.map_or(String::new(), |v| format!("≤ {v} {unit}"));
    let (mut hwm_first, mut hwm_last, mut cold_ms, mut warm_ms, mut warm_cpu_us) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut faults = Vec::new();
    let mut failures = Vec::new();
    let mut requests = String::new();
    for _ in 0..ctx.runs.processes {
        let (mut function, _) = start_function(ctx, &ctx.null.endpoint()).await;
        let pid = function.pid();
        ctx.null.reset_counts();
        let started = Instant::now();
        let outcome = invoke(&mut function, &event).await;
        cold_ms.push(ms(started.elapsed()));
        if let Err(e) = all_archived(&outcome) {
            failures.push(e);
        }
        requests = op_summary(&ctx.null.counts());
        hwm_first.push(kib_to_mib(
            procfs::status_kib(pid, "VmHWM").unwrap_or(0) as f64
        ));
        for _ in 0..ctx.runs.warm_invocations {
            let cpu_before = procfs::cpu_time(pid).unwrap_or_default();
            let started = Instant::now();
            let outcome = invoke(&mut function, &event).await;
            warm_ms.push(ms(started.elapsed()));
            let cpu = procfs::cpu_time(pid).unwrap_or_default() - cpu_before;
            warm_cpu_us.push(cpu.as_secs_f64() * 1e6 / RECORDS as f64);
            if let Err(e) = all_archived(&outcome) {
                failures.push(e);
            }
        }
        hwm_last.push(kib_to_mib(
            procfs::status_kib(pid, "VmHWM").unwrap_or(0) as f64
        ));
        if let Some(n) = procfs::minor_faults(pid) {
            faults.push(n as f64);
        }
    }
    let failed = if failures.is_empty() {
        String::new()
    } else {
        format!("; FAILED: {}", failures.join("; "))
    };
    let hwm = Summary::of(&hwm_first).unwrap();
    let verdict = |limit: Option<f64>, value: f64| match limit {
        Some(limit) => Verdict::check(value <= limit && failures.is_empty()),
        None => Verdict::Info,
    };
    report.add(
        NULL,
        format!("bootstrap: peak RSS, one 10,000-record {label} batch (MiB)"),
        target(targets.map(|t| t.0), "MiB"),
        hwm.show(1),
        verdict(targets.map(|t| t.0), hwm.median),
        format!("VmHWM after the first invocation of a process; event {event_mib:.1} MiB{failed}"),
    );
    let hwm_warm = Summary::of(&hwm_last).unwrap();
    report.add(
        NULL,
        format!(
            "bootstrap: peak RSS after {} more {label} batches (MiB)",
            ctx.runs.warm_invocations
        ),
        target(targets.map(|t| t.1), "MiB"),
        hwm_warm.show(1),
        verdict(targets.map(|t| t.1), hwm_warm.median),
        "VmHWM of the same process after the warm invocations",
    );
    let cpu = Summary::of(&warm_cpu_us).unwrap();
    report.add(
        NULL,
        format!("bootstrap: CPU per record, 10,000-record {label} batch (µs)"),
        target(targets.map(|t| t.2), "µs"),
        cpu.show(1),
        verdict(targets.map(|t| t.2), cpu.median),
        "utime+stime of the process over a warm invocation (10 ms ticks) / 10,000; shared \
         machines move this median by ±2 µs from run to run (BENCHMARKS.md, run I)",
    );
    if let Some(faults) = Summary::of(&faults) {
        report.add(
            NULL,
            format!(
                "bootstrap: minor page faults, one process of 1 + {} {label} batches",
                ctx.runs.warm_invocations
            ),
            "report; lower is better",
            faults.show(0),
            Verdict::Info,
            "minflt of /proc/<pid>/stat: exact where CPU time is not (33,500–35,300 for ALL \
             in run I; 55,700 with the regression it found)",
        );
    }
    let warm = Summary::of(&warm_ms).unwrap();
    report.add(
        NULL,
        format!("bootstrap: wall time, 10,000-record {label} batch (ms)"),
        "",
        warm.show(0),
        Verdict::Info,
        format!(
            "warm; first invocation of a process: {} ms; requests per batch: {requests}",
            Summary::of(&cold_ms).unwrap().show(0)
        ),
    );
}

/// KPL containers (issue 12): 100 containers of 100 user records over 500 user keys,
/// against the same 10,000 user records sent as plain records, interleaved in one process
/// so that both see the same machine load. DynamoDB requests of the first invocation, and
/// CPU per user record of the warm ones.
async fn kpl_batches(ctx: &Ctx, report: &mut Report, stream: &str, target_requests: u64) {
    const CONTAINERS: usize = 100;
    const PER_CONTAINER: usize = 100;
    const KEYS: usize = 500;
    const USER_RECORDS: usize = CONTAINERS * PER_CONTAINER;
    let kpl = Bytes::from(
        data::kpl_event(stream, CONTAINERS, PER_CONTAINER, KEYS, PAYLOAD_BYTES).to_string(),
    );
    let plain = Bytes::from(data::event(stream, USER_RECORDS, KEYS, PAYLOAD_BYTES).to_string());
    let sizes_mib = (
        kpl.len() as f64 / 1024.0 / 1024.0,
        plain.len() as f64 / 1024.0 / 1024.0,
    );
    let label = if stream.ends_with("-latest") {
        format!("LATEST over {KEYS} user keys")
    } else {
        "ALL".to_owned()
    };
    let (mut kpl_cpu, mut plain_cpu, mut requests) = (vec![], vec![], vec![]);
    let mut failures = Vec::new();
    let mut summary = String::new();
    for _ in 0..ctx.runs.processes {
        let (mut function, _) = start_function(ctx, &ctx.null.endpoint()).await;
        let pid = function.pid();
        ctx.null.reset_counts();
        let outcome = invoke(&mut function, &kpl).await;
        let counts = ctx.null.counts();
        requests.push(service_requests(&counts, "DynamoDB.") as f64);
        summary = op_summary(&counts);
        if let Err(e) = all_archived(&outcome) {
            failures.push(e);
        }
        invoke(&mut function, &plain).await.ok();
        for _ in 0..ctx.runs.warm_invocations {
            for (event, figures) in [(&kpl, &mut kpl_cpu), (&plain, &mut plain_cpu)] {
                let before = procfs::cpu_time(pid).unwrap_or_default();
                let outcome = invoke(&mut function, event).await;
                let cpu = procfs::cpu_time(pid).unwrap_or_default() - before;
                figures.push(cpu.as_secs_f64() * 1e6 / USER_RECORDS as f64);
                if let Err(e) = all_archived(&outcome) {
                    failures.push(e);
                }
            }
        }
    }
    let failed = if failures.is_empty() {
        String::new()
    } else {
        format!("; FAILED: {}", failures.join("; "))
    };
    let requests = Summary::of(&requests).unwrap();
    report.add(
        NULL,
        format!(
            "DynamoDB requests, {CONTAINERS} KPL containers x {PER_CONTAINER} user records, {label} (bootstrap)"
        ),
        target_requests.to_string(),
        requests.show(0),
        Verdict::check(requests.max <= target_requests as f64 && failures.is_empty()),
        format!("{summary}{failed}"),
    );
    let (kpl_cpu, plain_cpu) = (
        Summary::of(&kpl_cpu).unwrap(),
        Summary::of(&plain_cpu).unwrap(),
    );
    let ratio = kpl_cpu.median / plain_cpu.median.max(f64::MIN_POSITIVE);
    report.add(
        NULL,
        format!("bootstrap: CPU per user record, KPL containers vs plain records, {label} (µs)"),
        "≤ 1.5x plain",
        format!(
            "{} vs {} plain: {ratio:.2}x",
            kpl_cpu.show(1),
            plain_cpu.show(1)
        ),
        Verdict::check(ratio <= 1.5 && failures.is_empty()),
        format!(
            "warm invocations interleaved in one process; {USER_RECORDS} user records either way; event {:.1} MiB (KPL) / {:.1} MiB (plain)",
            sizes_mib.0, sizes_mib.1
        ),
    );
}

fn records(n: usize, keys: usize) -> Vec<ArchiveRecord> {
    records_of(&data::event("bench", n, keys, PAYLOAD_BYTES))
}

/// `kinarch_core::replay::reinject::reinject` in-process: requests and records/s.
async fn reinject_library(ctx: &Ctx, report: &mut Report) {
    const RECORDS: usize = 10_000;
    let sdk = sdk_config(&ctx.null.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    for keys in [10_000, 100] {
        let input = records(RECORDS, keys);
        let options = ReinjectOptions::new(
            StreamName::new("bench-src").unwrap(),
            StreamName::new("bench-dst").unwrap(),
        );
        let mut rates = Vec::new();
        let mut requests = 0;
        let mut problems = Vec::new();
        for _ in 0..ctx.runs.throughput {
            ctx.null.reset_counts();
            let source = futures::stream::iter(input.clone().into_iter().map(Ok));
            let started = Instant::now();
            let result = reinject(&kinesis, source, &options, |_| {}).await;
            let elapsed = started.elapsed();
            match result {
                Ok(r) if r.sent == RECORDS as u64 && r.failed.is_empty() => {
                    rates.push(RECORDS as f64 / elapsed.as_secs_f64());
                    requests = ctx.null.count("Kinesis.PutRecords").requests;
                }
                Ok(r) => problems.push(format!("sent {} failed {}", r.sent, r.failed.len())),
                Err(e) => problems.push(e.to_string()),
            }
        }
        let target = if keys == RECORDS { "20" } else { "" };
        let explain = if keys == RECORDS {
            "500 records per PutRecords".to_owned()
        } else {
            format!(
                "at most one record per key per request (per-key order): {keys} keys -> ≤{keys} records per request"
            )
        };
        report.add(
            NULL,
            format!("reinject: PutRecords requests for 10,000 records over {keys} keys (library)"),
            target,
            requests.to_string(),
            if keys == RECORDS {
                Verdict::check(requests == 20 && problems.is_empty())
            } else {
                Verdict::Info
            },
            if problems.is_empty() {
                explain
            } else {
                format!("{explain}; FAILED: {}", problems.join("; "))
            },
        );
        if let Some(rate) = Summary::of(&rates) {
            report.add(
                NULL,
                format!("reinject: records/s, 10,000 records over {keys} keys (library)"),
                "report",
                rate.show(0),
                Verdict::Info,
                "in-process, 4 PutRecords in flight (the default)",
            );
        }
    }
}

/// Runs the `kinarch` CLI to its end, output discarded.
async fn run_kinarch(ctx: &Ctx, endpoint: &str, args: &[&str]) -> Finished {
    let mut command = Command::new(&ctx.kinarch);
    command
        .env_clear()
        .envs(aws_env(endpoint))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    tokio::task::spawn_blocking(move || procfs::run_to_end(&mut command))
        .await
        .expect("task runs")
        .expect("kinarch runs")
}

/// `kinarch reinject` (scan of the null endpoint's table, then PutRecords).
async fn reinject_binary(ctx: &Ctx, report: &mut Report) {
    const RECORDS: usize = 10_000;
    for keys in [10_000, 100] {
        ctx.null.set_dataset(Dataset {
            items: RECORDS,
            keys,
            payload_bytes: PAYLOAD_BYTES,
        });
        let (mut rates, mut cpu, mut rss) = (vec![], vec![], vec![]);
        let mut counts = String::new();
        let mut puts = OpCount::default();
        let mut failed = 0;
        for _ in 0..ctx.runs.throughput {
            ctx.null.reset_counts();
            let run = run_kinarch(
                ctx,
                &ctx.null.endpoint(),
                &["-q", "reinject", "bench-src", "--target", "bench-dst"],
            )
            .await;
            puts = ctx.null.count("Kinesis.PutRecords");
            if !run.success || puts.entries != RECORDS as u64 {
                failed += 1;
                continue;
            }
            counts = op_summary(&ctx.null.counts());
            rates.push(RECORDS as f64 / run.wall.as_secs_f64());
            cpu.push(run.cpu().as_secs_f64() * 1e6 / RECORDS as f64);
            rss.push(kib_to_mib(run.max_rss_kib as f64));
        }
        let failed = if failed > 0 {
            format!("; {failed} run(s) FAILED")
        } else {
            String::new()
        };
        report.add(
            NULL,
            format!("kinarch reinject: PutRecords requests, 10,000 records over {keys} keys"),
            if keys == RECORDS { "20" } else { "" },
            puts.requests.to_string(),
            if keys == RECORDS {
                Verdict::check(puts.requests == 20 && failed.is_empty())
            } else {
                Verdict::Info
            },
            format!("{counts}{failed}"),
        );
        if let (Some(rate), Some(cpu), Some(rss)) =
            (Summary::of(&rates), Summary::of(&cpu), Summary::of(&rss))
        {
            report.add(
                NULL,
                format!("kinarch reinject: records/s, 10,000 records over {keys} keys"),
                "report",
                rate.show(0),
                Verdict::Info,
                format!(
                    "whole process incl. start and scan; CPU {} µs/record; peak RSS {} MiB",
                    cpu.show(1),
                    rss.show(1)
                ),
            );
        }
    }
}

/// `kinarch reinject` of one archive into the null endpoint, through PutRecords (`--target`)
/// and through function invocations (`--target-function`, the event source mapping's
/// batches, one in flight per source shard): records/s and CPU per record of the whole
/// process, the archive's scan included.
async fn replay_targets(ctx: &Ctx, report: &mut Report) {
    const RECORDS: usize = 20_000;
    const KEYS: usize = 100;
    ctx.null.set_dataset(Dataset {
        items: RECORDS,
        keys: KEYS,
        payload_bytes: PAYLOAD_BYTES,
    });
    let through: [(&str, &str, &[&str]); 3] = [
        (
            "PutRecords",
            "Kinesis.PutRecords",
            &["-q", "reinject", "bench-src", "--target", "bench-dst"],
        ),
        (
            "function invocations, 100 records per event",
            LAMBDA_INVOKE,
            &[
                "-q",
                "reinject",
                "bench-src",
                "--target-function",
                "bench-consumer",
            ],
        ),
        (
            "function invocations, 1,000 records per event",
            LAMBDA_INVOKE,
            &[
                "-q",
                "reinject",
                "bench-src",
                "--target-function",
                "bench-consumer",
                "--batch-size",
                "1000",
            ],
        ),
    ];
    for (name, operation, args) in through {
        let (mut rates, mut cpu, mut rss) = (vec![], vec![], vec![]);
        let mut counts = String::new();
        let mut failed = 0;
        for _ in 0..ctx.runs.throughput {
            ctx.null.reset_counts();
            let run = run_kinarch(ctx, &ctx.null.endpoint(), args).await;
            if !run.success || ctx.null.count(operation).entries != RECORDS as u64 {
                failed += 1;
                continue;
            }
            counts = op_summary(&ctx.null.counts());
            rates.push(RECORDS as f64 / run.wall.as_secs_f64());
            cpu.push(run.cpu().as_secs_f64() * 1e6 / RECORDS as f64);
            rss.push(kib_to_mib(run.max_rss_kib as f64));
        }
        let failed = match failed {
            0 => String::new(),
            n => format!("; {n} run(s) FAILED"),
        };
        let (Some(rate), Some(cpu), Some(rss)) =
            (Summary::of(&rates), Summary::of(&cpu), Summary::of(&rss))
        else {
            report.add(
                NULL,
                format!("replay 20,000 records through {name}: records/s"),
                "report",
                "-",
                Verdict::Info,
                format!("no run delivered every record{failed}"),
            );
            continue;
        };
        report.add(
            NULL,
            format!("replay 20,000 records through {name}: records/s"),
            "report",
            rate.show(0),
            Verdict::Info,
            format!(
                "kinarch reinject, whole process incl. start and scan; CPU {} µs/record; \
                 peak RSS {} MiB; {counts}{failed}",
                cpu.show(1),
                rss.show(1)
            ),
        );
    }
}

/// `ArchiveReader::scan` in-process over 100,000 items: records/s.
async fn scan_library(ctx: &Ctx, report: &mut Report) {
    const ITEMS: usize = 100_000;
    ctx.null.set_dataset(Dataset {
        items: ITEMS,
        keys: 10_000,
        payload_bytes: PAYLOAD_BYTES,
    });
    let sdk = sdk_config(&ctx.null.endpoint()).await;
    let config = StreamArchiveConfig::new(
        StreamName::new("bench-scan").unwrap(),
        ArchiveMode::All,
        None,
    );
    let archive = ArchiveReader::with_config(&sdk, config);
    let mut rates = Vec::new();
    let mut pages = 0;
    let mut bad = 0;
    for _ in 0..ctx.runs.throughput {
        ctx.null.reset_counts();
        let started = Instant::now();
        let mut n = 0usize;
        let mut records = archive.read(&Selection::all(), ReadOptions::default());
        while let Some(record) = records.next().await {
            match record {
                Ok(_) => n += 1,
                Err(_) => bad += 1,
            }
        }
        if n == ITEMS {
            rates.push(n as f64 / started.elapsed().as_secs_f64());
        } else {
            bad += 1;
        }
        pages = ctx.null.count("DynamoDB.Scan").requests;
    }
    if let Some(rate) = Summary::of(&rates) {
        report.add(
            NULL,
            "scan: records/s, 100,000 items (library ArchiveReader::scan)",
            "report",
            rate.show(0),
            Verdict::Info,
            format!(
                "{pages} Scan pages of ~1 MB{}",
                if bad > 0 { "; errors" } else { "" }
            ),
        );
    }
}

/// `kinarch scan --output jsonl` over 10,000 / 50,000 / 100,000 items: peak RSS and rate.
async fn scan_binary(ctx: &Ctx, report: &mut Report) {
    let mut medians = Vec::new();
    for items in [10_000, 50_000, 100_000] {
        ctx.null.set_dataset(Dataset {
            items,
            keys: 10_000,
            payload_bytes: PAYLOAD_BYTES,
        });
        let (mut rss, mut rates, mut cpu) = (vec![], vec![], vec![]);
        let mut failed = 0;
        for _ in 0..ctx.runs.throughput {
            ctx.null.reset_counts();
            let run = run_kinarch(
                ctx,
                &ctx.null.endpoint(),
                &["-q", "scan", "bench-scan", "--output", "jsonl"],
            )
            .await;
            if !run.success || ctx.null.count("DynamoDB.Scan").entries != items as u64 {
                failed += 1;
                continue;
            }
            rss.push(kib_to_mib(run.max_rss_kib as f64));
            rates.push(items as f64 / run.wall.as_secs_f64());
            cpu.push(run.cpu().as_secs_f64() * 1e6 / items as f64);
        }
        let Some(r) = Summary::of(&rss) else {
            report.add(
                NULL,
                format!("kinarch scan: peak RSS, {items} items"),
                "",
                "-",
                Verdict::Missed,
                "every run failed",
            );
            continue;
        };
        medians.push(r.median);
        report.add(
            NULL,
            format!("kinarch scan: peak RSS, {items} items (MiB)"),
            "flat",
            r.show(1),
            Verdict::Info,
            format!(
                "{} records/s, CPU {} µs/record, output jsonl to /dev/null{}",
                Summary::of(&rates).unwrap().show(0),
                Summary::of(&cpu).unwrap().show(2),
                if failed > 0 { "; some runs FAILED" } else { "" }
            ),
        );
    }
    if let (Some(first), Some(last)) = (medians.first(), medians.last()) {
        let growth = last - first;
        let per_record = growth * 1024.0 * 1024.0 / 90_000.0;
        report.add(
            NULL,
            "kinarch scan: peak RSS growth from 10,000 to 100,000 items (MiB)",
            "flat",
            format!("{growth:+.1}"),
            // A scan that kept its records would grow by at least their size, ~300 bytes
            // each in memory (26 MiB here); heap growth as the allocator settles is far
            // less and stops (see BENCHMARKS.md).
            Verdict::check(medians.len() == 3 && per_record < 64.0),
            format!(
                "difference of the medians: {per_record:.0} bytes per extra record (flat: < 64; keeping the records would be ≥ 300)"
            ),
        );
    }
}

/// A one-shard stream, tagged with `mode` when given.
async fn create_stream(kinesis: &aws_sdk_kinesis::Client, name: &str, mode: Option<&str>) {
    kinesis::create_stream(kinesis, name, 1).await;
    if let Some(mode) = mode {
        kinesis::tag_stream(kinesis, name, &[("StreamArchiveMode", mode)]).await;
    }
}

/// The same scenarios end to end against moto, counted by a forwarding null endpoint.
/// moto for a scenario, or `None` with the scenario reported as skipped.
fn start_moto(report: &mut Report, scenario: &str) -> Option<Moto> {
    let moto = Moto::try_start();
    if moto.is_none() {
        report.add(
            MOTO,
            scenario,
            "",
            "skipped",
            Verdict::Info,
            "moto server is not installed (bin/test installs it)",
        );
    }
    moto
}

async fn moto_scenarios(ctx: &Ctx, report: &mut Report) {
    let Some(moto) = start_moto(report, "moto scenarios") else {
        return;
    };
    let counter = NullEndpoint::forward(&ctx.servers, &moto.endpoint()).await;
    let sdk = sdk_config(&moto.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let (mut function, _) = start_function(ctx, &counter.endpoint()).await;
    let mut results: Vec<(&str, Vec<f64>, String)> = vec![
        ("ALL, 1,000 records (bootstrap)", vec![], String::new()),
        (
            "LATEST, 1,000 records over 100 keys (bootstrap)",
            vec![],
            String::new(),
        ),
        (
            "kinarch reinject, 1,000 records over 1,000 keys, --concurrency 1",
            vec![],
            String::new(),
        ),
    ];
    for run in 0..ctx.runs.moto {
        let all = format!("bench-{run}-all");
        let latest = format!("bench-{run}-latest");
        let replay = format!("bench-{run}-replay");
        create_stream(&kinesis, &all, Some("ALL")).await;
        create_stream(&kinesis, &latest, Some("LATEST")).await;
        create_stream(&kinesis, &replay, None).await;
        for (stream, mode) in [(&all, ArchiveMode::All), (&latest, ArchiveMode::Latest)] {
            let table = mode.default_table_name(&StreamName::new(stream).unwrap());
            create_archive_table(&dynamodb, &table, mode, Billing::OnDemand, false)
                .await
                .expect("CreateTable");
        }
        for (index, (stream, keys)) in [(&all, 1000), (&latest, 100)].into_iter().enumerate() {
            let event = Bytes::from(data::event(stream, 1000, keys, PAYLOAD_BYTES).to_string());
            counter.reset_counts();
            let started = Instant::now();
            let outcome = invoke(&mut function, &event).await;
            let elapsed = ms(started.elapsed());
            let counts = counter.counts();
            results[index].2 = match all_archived(&outcome) {
                Ok(()) => op_summary(&counts),
                Err(e) => format!("FAILED: {e}"),
            };
            results[index].1.push(elapsed);
        }
        counter.reset_counts();
        // moto mishandles concurrent PutRecords (see tests): one call in flight.
        let run = run_kinarch(
            ctx,
            &counter.endpoint(),
            &[
                "-q",
                "reinject",
                &all,
                "--target",
                &replay,
                "--concurrency",
                "1",
            ],
        )
        .await;
        let puts = counter.count("Kinesis.PutRecords");
        results[2].2 = if run.success && puts.entries == 1000 {
            op_summary(&counter.counts())
        } else {
            format!(
                "FAILED: exit ok {}, {} records put",
                run.success, puts.entries
            )
        };
        results[2].1.push(ms(run.wall));
    }
    for (label, times, counts) in results {
        let s = Summary::of(&times).unwrap();
        report.add(
            MOTO,
            format!("{label}: wall time (ms)"),
            "",
            s.show(0),
            Verdict::Info,
            format!(
                "{:.0} records/s; requests: {counts}",
                1000.0 / (s.median / 1000.0)
            ),
        );
    }
}

/// Records too large for an item, with their payloads in moto's S3 (issue 14): peak RSS of
/// a fresh `bootstrap` archiving one batch of 5 records of 1 MiB, and of `kinarch scan`
/// fetching 50 such payloads (bounded prefetch: target < 64 MiB).
async fn overflow_scenarios(ctx: &Ctx, report: &mut Report) {
    const BUCKET: &str = "bench-overflow";
    const MIB: usize = 1024 * 1024;
    let Some(moto) = start_moto(report, "overflow scenarios") else {
        return;
    };
    let sdk = sdk_config(&moto.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    kinarch_tests::s3::create_bucket(&kinarch_tests::s3::client(&sdk), BUCKET).await;
    let (mut lambda_rss, mut scan_rss, mut notes) = (vec![], vec![], Vec::new());
    for run in 0..ctx.runs.moto {
        let stream = format!("bench-{run}-overflow");
        create_stream(&kinesis, &stream, None).await;
        let overflow = format!("s3://{BUCKET}/p");
        kinesis::tag_stream(
            &kinesis,
            &stream,
            &[("StreamArchiveMode", "ALL"), ("ArchiveOverflow", &overflow)],
        )
        .await;
        let table = ArchiveMode::All.default_table_name(&StreamName::new(&stream).unwrap());
        create_archive_table(
            &dynamodb,
            &table,
            ArchiveMode::All,
            Billing::OnDemand,
            false,
        )
        .await
        .expect("CreateTable");
        let arn = data::stream_arn(&stream);
        let batch = |first: usize| {
            let records: Vec<Value> = (first..first + 5)
                .map(|i| data::event_record(&arn, i, 50, MIB))
                .collect();
            Bytes::from(serde_json::json!({ "Records": records }).to_string())
        };
        // A fresh process per batch of 5: its VmHWM is that batch's.
        for first in (0..50).step_by(5) {
            let (mut function, _) = start_function(ctx, &moto.endpoint()).await;
            let outcome = invoke(&mut function, &batch(first)).await;
            if let Err(e) = all_archived(&outcome) {
                notes.push(format!("batch {first}: FAILED: {e}"));
            }
            if first == 0
                && let Some(kib) = procfs::status_kib(function.pid(), "VmHWM")
            {
                lambda_rss.push(kib_to_mib(kib as f64));
            }
        }
        let scan = run_kinarch(
            ctx,
            &moto.endpoint(),
            &["-q", "scan", &stream, "--output", "data"],
        )
        .await;
        if scan.success {
            scan_rss.push(kib_to_mib(scan.max_rss_kib as f64));
        } else {
            notes.push("kinarch scan FAILED".into());
        }
    }
    let failed = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    match Summary::of(&lambda_rss) {
        Some(r) => report.add(
            MOTO,
            "bootstrap: peak RSS, one batch of 5 records of 1 MiB to S3 (MiB)",
            "",
            r.show(1),
            Verdict::Info,
            format!(
                "fresh process, VmHWM after the invocation; ALL mode, ArchiveOverflow set{failed}"
            ),
        ),
        None => report.add(
            MOTO,
            "bootstrap: peak RSS, 5 × 1 MiB to S3",
            "",
            "-",
            Verdict::Missed,
            format!("no reading{failed}"),
        ),
    }
    match Summary::of(&scan_rss) {
        Some(r) => report.add(
            MOTO,
            "kinarch scan: peak RSS, 50 records of 1 MiB fetched from S3 (MiB)",
            "< 64 MiB",
            r.show(1),
            Verdict::check(r.median < 64.0 && notes.is_empty()),
            format!(
                "--output data to /dev/null; at most {} payloads fetched ahead{failed}",
                kinarch_core::read::FETCH_AHEAD
            ),
        ),
        None => report.add(
            MOTO,
            "kinarch scan: peak RSS, 50 × 1 MiB from S3",
            "< 64 MiB",
            "-",
            Verdict::Missed,
            format!("every run failed{failed}"),
        ),
    }
}

/// Issue 13's time index: a 100,000-item ALL table over 4 shards, one record a second
/// (25,000 seconds per shard), and a window of 1% (1,000 s): the items read and requests
/// of the window through the index against a Scan. Counted by the reader
/// ([`ArchiveReader::read_stats`], DynamoDB's `ScannedCount`), on moto.
async fn time_index_scenario(report: &mut Report) {
    const ITEMS: i64 = 100_000;
    const SHARDS: i64 = 4;
    const BASE: i64 = 1_777_629_600;
    let Some(moto) = start_moto(report, "time index") else {
        return;
    };
    let sdk = sdk_config(&moto.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let stream = StreamName::new("bench-time-index").unwrap();
    kinesis::create_stream(&kinesis, stream.as_str(), SHARDS as i32).await;
    let table = ArchiveMode::All.default_table_name(&stream);
    create_archive_table(
        &dynamodb,
        &table,
        ArchiveMode::All,
        Billing::OnDemand,
        false,
    )
    .await
    .expect("CreateTable");
    let archived_at = chrono::Utc::now();
    let written = Instant::now();
    let batches: Vec<Vec<i64>> = (0..ITEMS)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[i64]>::to_vec)
        .collect();
    futures::stream::iter(batches)
        .for_each_concurrent(8, |batch| {
            let (dynamodb, table) = (dynamodb.clone(), table.clone());
            async move {
                let requests: Vec<_> = batch
                    .iter()
                    .map(|&i| {
                        let record = ArchiveRecord::received(
                            format!("key-{}", i % 1000),
                            SequenceNumber::parse(&(1_000_000 + i).to_string()).unwrap(),
                            format!("shardId-{:012}", (i % 1000) % SHARDS),
                            (BASE + i) as f64,
                            vec![b'x'; 100],
                        );
                        aws_sdk_dynamodb::types::WriteRequest::builder()
                            .put_request(
                                aws_sdk_dynamodb::types::PutRequest::builder()
                                    .set_item(Some(record.to_item(archived_at, None).item))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                    })
                    .collect();
                let mut pending = requests;
                while !pending.is_empty() {
                    let out = dynamodb
                        .batch_write_item()
                        .request_items(table.as_str(), pending)
                        .send()
                        .await
                        .expect("BatchWriteItem");
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(table.as_str()))
                        .unwrap_or_default();
                }
            }
        })
        .await;
    let write_seconds = written.elapsed().as_secs_f64();
    let info = kinarch_core::aws::tables::describe_table(&dynamodb, &table)
        .await
        .expect("DescribeTable")
        .expect("the table");
    kinarch_core::aws::tables::create_time_index(&dynamodb, &info)
        .await
        .expect("UpdateTable");
    kinarch_core::aws::tables::wait_until_index_active(
        &dynamodb,
        &table,
        Duration::from_secs(60),
        Duration::from_millis(200),
    )
    .await
    .expect("the index becomes ACTIVE");

    let config = StreamArchiveConfig::new(stream.clone(), ArchiveMode::All, None);
    // The window: 1,000 of the 100,000 seconds, in the middle.
    let after = chrono::DateTime::from_timestamp(BASE + 50_000, 0).unwrap();
    let before = chrono::DateTime::from_timestamp(BASE + 51_000, 0).unwrap();
    let mut figures = Vec::new();
    for use_index in [TimeIndexUse::WhenPresent, TimeIndexUse::Never] {
        let archive = ArchiveReader::with_config(&sdk, config.clone());
        let started = Instant::now();
        let window = Selection::new(SelectionSpec {
            arrived: TimeWindow::new(Some(after), Some(before)),
            ..SelectionSpec::default()
        })
        .expect("a window");
        let read = ReadOptions {
            time_index: use_index,
            ..ReadOptions::default()
        };
        let records: Vec<_> = archive.read(&window, read).collect().await;
        let ok = records.iter().filter(|r| r.is_ok()).count();
        figures.push((archive.read_stats(), ok, started.elapsed().as_secs_f64()));
    }
    let [
        (indexed, indexed_records, indexed_s),
        (scanned, scanned_records, scanned_s),
    ] = figures[..]
    else {
        unreachable!()
    };
    let share = indexed.items_read as f64 / scanned.items_read.max(1) as f64 * 100.0;
    let same = indexed_records == 1000 && scanned_records == 1000;
    report.add(
        MOTO,
        "time index: items read for a 1% window of 100,000 items, index vs Scan (%)",
        "≤ 2%",
        format!("{share:.2}"),
        Verdict::check(share <= 2.0 && same),
        format!(
            "index: {} items in {} Query requests over {SHARDS} shards ({indexed_s:.1} s on \
             moto); Scan: {} items in {} requests ({scanned_s:.1} s); records returned {} / \
             {} (want 1,000 each); items written in {write_seconds:.0} s",
            indexed.items_read,
            indexed.requests,
            scanned.items_read,
            scanned.requests,
            indexed_records,
            scanned_records
        ),
    );
}

/// Reads `selection` whole: the records read (errors left out) and the seconds it took.
async fn timed_read(
    archive: &ArchiveReader,
    selection: &Selection,
    options: ReadOptions,
) -> (usize, f64) {
    let started = Instant::now();
    let read = archive
        .read(selection, options)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    (read, started.elapsed().as_secs_f64())
}

/// Compaction (issue 25): 1,000 small files in one shard-hour (one per invocation of a
/// low-traffic stream: 10 records of 100 bytes each), compacted into one by
/// `kinarch_core::compact`; the files and bytes before and after, and a one-hour read with
/// `--source parquet` before and after, side by side: requests (counted by a proxy in front
/// of moto) and wall time.
async fn compaction_scenario(report: &mut Report) {
    use kinarch_core::compact::{CompactOptions, Compactor};
    use kinarch_core::domain::parquet::{ParquetTarget, files_of};
    const FILES: usize = 1_000;
    const PER_FILE: usize = 10;
    const HOUR: f64 = 1_777_629_600.0; // 2026-05-01T10:00:00Z
    let Some(moto) = start_moto(report, "compaction") else {
        return;
    };
    let proxy = kinarch_tests::proxy::FaultProxy::start(&moto.endpoint()).await;
    let sdk = sdk_config(&proxy.endpoint()).await;
    let s3 = kinarch_tests::s3::client(&sdk);
    kinarch_tests::s3::create_bucket(&s3, "bench-compact").await;
    let target = ParquetTarget::parse("s3://bench-compact/kinarch").unwrap();
    let stream = StreamName::new("bench-compact").unwrap();
    let archived_at = chrono::DateTime::from_timestamp(HOUR as i64 + 3_700, 0).unwrap();
    let (mut files_before, mut bytes_before) = (0u64, 0u64);
    for f in 0..FILES {
        let batch: Vec<ArchiveRecord> = (f * PER_FILE..(f + 1) * PER_FILE)
            .map(|i| {
                ArchiveRecord::received(
                    format!("key-{:03}", i % 100),
                    SequenceNumber::parse(&data::sequence_number(i)).unwrap(),
                    "shardId-000000000000".to_owned(),
                    HOUR + i as f64 * 0.3,
                    vec![b'x'; 100],
                )
            })
            .collect();
        for file in files_of(&batch) {
            let body = kinarch_core::parquet::encode(&file.records, archived_at, &stream).unwrap();
            files_before += 1;
            bytes_before += body.len() as u64;
            kinarch_tests::s3::put(&s3, "bench-compact", &file.key.key(&target, &stream), body)
                .await;
        }
    }
    let mut config = StreamArchiveConfig::new(stream.clone(), ArchiveMode::None, None);
    config.parquet = Some(target.clone());
    let after = chrono::DateTime::from_timestamp(HOUR as i64, 0).unwrap();
    let window = Selection::new(SelectionSpec {
        arrived: TimeWindow::new(Some(after), Some(after + chrono::Duration::hours(1))),
        ..SelectionSpec::default()
    })
    .unwrap();
    let options = ReadOptions {
        source: kinarch_core::read::ArchiveSource::Parquet,
        ..ReadOptions::default()
    };
    // (records, requests, seconds, files opened, bytes read) of one read of the hour.
    let read_hour = || async {
        let archive = ArchiveReader::with_config(&sdk, config.clone());
        let requests = proxy.requests();
        let (read, seconds) = timed_read(&archive, &window, options).await;
        let stats = archive.parquet_stats();
        (
            read,
            proxy.requests() - requests,
            seconds,
            stats.files,
            stats.bytes_read,
        )
    };
    let before = read_hour().await;
    let started = Instant::now();
    let compacted = Compactor::new(&sdk)
        .compact(
            &target,
            &stream,
            &CompactOptions::before(after + chrono::Duration::hours(1)),
        )
        .await
        .unwrap();
    let compact_seconds = started.elapsed().as_secs_f64();
    let (files, bytes, files_after, bytes_after) = compacted.totals();
    let after_read = read_hour().await;
    let records = FILES * PER_FILE;
    report.add(
        MOTO,
        "compaction: 1,000 small files of one shard-hour, files and bytes",
        "1 file after, every record kept",
        format!("{files_before} files, {bytes_before} bytes → {files_after} file, {bytes_after} bytes"),
        Verdict::check(
            files == files_before && files_after == 1 && after_read.0 == records && before.0 == records,
        ),
        format!(
            "{records} records of 100 bytes; {bytes} bytes rewritten; compaction took {compact_seconds:.1} s on moto ({} failed)",
            compacted.failed.len()
        ),
    );
    report.add(
        MOTO,
        "compaction: a one-hour scan --source parquet before → after",
        "fewer requests, faster",
        format!(
            "{} → {} requests, {:.2} → {:.2} s ({:.0}× faster)",
            before.1,
            after_read.1,
            before.2,
            after_read.2,
            before.2 / after_read.2.max(1e-9)
        ),
        Verdict::check(after_read.1 < before.1 && after_read.2 < before.2),
        format!(
            "{} → {} files opened, {} → {} bytes read; {} records each time",
            before.3, after_read.3, before.4, after_read.4, after_read.0
        ),
    );
}

/// Issue 24's reads of the Parquet archive, on moto: 1,000,000 records of 100 bytes over 2
/// shards and 100 hours, written as the Lambda function writes them (10,000-record batches,
/// one file per shard and hour of a batch), each key holding 1,000 consecutive records. A
/// one-hour window read with `--source parquet` (bytes fetched against the window's share
/// of the files), and one key's records (row groups the statistics and bloom filters skip).
async fn parquet_reads_scenario(report: &mut Report) {
    const RECORDS: usize = 1_000_000;
    const BATCH: usize = 10_000;
    const BASE: f64 = 1_777_629_600.0;
    const SPACING: f64 = 0.36; // 100 hours
    let Some(moto) = start_moto(report, "parquet reads") else {
        return;
    };
    let sdk = sdk_config(&moto.endpoint()).await;
    let s3 = kinarch_tests::s3::client(&sdk);
    kinarch_tests::s3::create_bucket(&s3, "bench-parquet").await;
    let target =
        kinarch_core::domain::parquet::ParquetTarget::parse("s3://bench-parquet/kinarch").unwrap();
    let stream = StreamName::new("bench-parquet-reads").unwrap();
    let record = |i: usize| {
        ArchiveRecord::received(
            format!("key-{:04}", i / 1000),
            SequenceNumber::parse(&data::sequence_number(i)).unwrap(),
            format!("shardId-{:012}", i % 2),
            BASE + i as f64 * SPACING,
            vec![b'x'; 100],
        )
    };
    let archived_at = chrono::Utc::now();
    let mut total_bytes = 0u64;
    let mut files = 0u64;
    for first in (0..RECORDS).step_by(BATCH) {
        let batch: Vec<ArchiveRecord> = (first..first + BATCH).map(record).collect();
        for file in kinarch_core::domain::parquet::files_of(&batch) {
            let body = kinarch_core::parquet::encode(&file.records, archived_at, &stream).unwrap();
            total_bytes += body.len() as u64;
            files += 1;
            kinarch_tests::s3::put(&s3, "bench-parquet", &file.key.key(&target, &stream), body)
                .await;
        }
    }
    let mut config = StreamArchiveConfig::new(stream.clone(), ArchiveMode::None, None);
    config.parquet = Some(target);
    let options = ReadOptions {
        source: kinarch_core::read::ArchiveSource::Parquet,
        ..ReadOptions::default()
    };
    // Hour 10 of the 100.
    let after = chrono::DateTime::from_timestamp((BASE + 36_000.0) as i64, 0).unwrap();
    let before = after + chrono::Duration::hours(1);
    let window = Selection::new(SelectionSpec {
        arrived: TimeWindow::new(Some(after), Some(before)),
        ..SelectionSpec::default()
    })
    .unwrap();
    let archive = ArchiveReader::with_config(&sdk, config.clone());
    let (read, seconds) = timed_read(&archive, &window, options).await;
    let stats = archive.parquet_stats();
    let share = total_bytes as f64 * read as f64 / RECORDS as f64;
    report.add(
        MOTO,
        "parquet: bytes read for a one-hour window of a 1,000,000-record archive",
        "≤ 2× the window's share of the files",
        format!(
            "{} bytes ({:.2}×)",
            stats.bytes_read,
            stats.bytes_read as f64 / share
        ),
        Verdict::check(stats.bytes_read as f64 <= 2.0 * share),
        format!(
            "{read} records in the window; {files} files, {total_bytes} bytes in all; {} \
             objects listed, {} files opened, {} row groups read; {:.1} s on moto",
            stats.objects_listed, stats.files, stats.row_groups_read, seconds
        ),
    );
    let key = Selection::key("key-0420").unwrap();
    let archive = ArchiveReader::with_config(&sdk, config);
    let read: usize = archive
        .read(&key, options)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let stats = archive.parquet_stats();
    report.add(
        MOTO,
        "parquet: a key query over the whole archive, row groups skipped",
        "report",
        format!(
            "{} of {} skipped ({} by statistics, {} by bloom filter)",
            stats.skipped_by_statistics + stats.skipped_by_bloom_filter,
            stats.row_groups,
            stats.skipped_by_statistics,
            stats.skipped_by_bloom_filter
        ),
        Verdict::Info,
        format!(
            "{read} records of the key (1,000 expected); {} bytes read of {total_bytes}; \
             every footer is read (no window: every file is listed)",
            stats.bytes_read
        ),
    );
}

/// List prices in us-east-1 (USD, December 2026, the figures of issue 24; check
/// aws.amazon.com/pricing before deciding on them).
mod prices {
    /// DynamoDB on-demand: one write request unit (an item write of up to 1 KB).
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// Storage per GB-month: the prices `kinarch tier --dry-run` reports with, one home.
    pub use kinarch_core::domain::tier::prices::{
        DYNAMODB_STANDARD as DYNAMODB_GB_MONTH, S3_GLACIER_IR as GLACIER_IR_GB_MONTH,
        S3_STANDARD as S3_GB_MONTH,
    };
    /// S3 PUT, per request.
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    /// Data Firehose Direct PUT ingestion, per GB (first 500 TB a month), each record
    /// rounded up to a multiple of 5 KB.
    pub const FIREHOSE_GB: f64 = 0.029;
}

/// What keeping records costs per record in each store, measured on the records themselves.
#[derive(Default)]
struct StoreCost {
    /// DynamoDB item bytes as billed for storage (the item plus 100 bytes of overhead).
    item_bytes: f64,
    /// Write request units per record (ALL: one item per record, 1 KB per unit).
    write_units: f64,
    /// Parquet file bytes per record.
    parquet_bytes: f64,
    /// PutObject requests per record (one file per 10,000-record batch).
    parquet_puts: f64,
    /// Firehose's billed ingestion bytes per record (rounded up to 5 KB).
    firehose_billed: f64,
    /// Firehose's GZIP output bytes per record.
    gzip_bytes: f64,
    /// Payload bytes per record.
    payload: f64,
}

/// The cost of archiving (issue 24): 1,000,000 records of ~1 KB JSON events ([`json_event`])
/// and of the 64-byte synthetic records, as an ALL table item, as Parquet files of
/// 10,000-record batches (what the Lambda function writes with `BatchSize=10000`), and as
/// Firehose → S3 with GZIP (the same records, newline-delimited, through `gzip -6`); then
/// the monthly cost of 1 TB of payload a month kept 12 months at [`prices`].
fn archive_cost(report: &mut Report) {
    const RECORDS: usize = 1_000_000;
    const FILE_RECORDS: usize = 10_000;
    let stream = StreamName::new("bench-cost").unwrap();
    let json = |i: usize| {
        let mut record = data::record(i, 2_000, 1);
        record.data = json_event(i);
        record
    };
    let small = |i: usize| data::record(i, 10_000, PAYLOAD_BYTES);
    let kinds: [(&str, &dyn Fn(usize) -> ArchiveRecord); 2] = [
        ("~1 KB JSON events", &json),
        ("64-byte synthetic records", &small),
    ];
    for (label, make) in kinds {
        let started = Instant::now();
        let mut cost = StoreCost::default();
        let mut gzip = Command::new("gzip")
            .args(["-6", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip (the bench's measure of Firehose's GZIP output)");
        let mut gzip_in = gzip.stdin.take().unwrap();
        let counter = std::thread::spawn({
            let mut out = gzip.stdout.take().unwrap();
            move || std::io::copy(&mut out, &mut std::io::sink()).unwrap_or(0)
        });
        let archived_at = chrono::Utc::now();
        for first in (0..RECORDS).step_by(FILE_RECORDS) {
            let batch: Vec<ArchiveRecord> = (first..first + FILE_RECORDS).map(make).collect();
            for record in &batch {
                use std::io::Write as _;
                let item = record.to_item(archived_at, None).item;
                let size = kinarch_core::aws::item::item_size(&item) as f64;
                cost.item_bytes += size + kinarch_core::domain::tier::ITEM_OVERHEAD_BYTES as f64;
                cost.write_units += (size / 1024.0).ceil().max(1.0);
                cost.payload += record.data.len() as f64;
                cost.firehose_billed +=
                    (record.data.len() as f64 / 5120.0).ceil().max(1.0) * 5120.0;
                gzip_in.write_all(&record.data).unwrap();
                gzip_in.write_all(b"\n").unwrap();
            }
            let refs: Vec<&ArchiveRecord> = batch.iter().collect();
            let file = kinarch_core::parquet::encode(&refs, archived_at, &stream).unwrap();
            cost.parquet_bytes += file.len() as f64;
            cost.parquet_puts += 1.0;
        }
        drop(gzip_in);
        cost.gzip_bytes = counter.join().unwrap() as f64;
        let _ = gzip.wait();
        let n = RECORDS as f64;
        for value in [
            &mut cost.item_bytes,
            &mut cost.write_units,
            &mut cost.parquet_bytes,
            &mut cost.parquet_puts,
            &mut cost.firehose_billed,
            &mut cost.gzip_bytes,
            &mut cost.payload,
        ] {
            *value /= n;
        }
        let measured = format!("{:.0} s", started.elapsed().as_secs_f64());
        report.add(
            IN_PROCESS,
            format!("cost: bytes stored per record, {label}"),
            "report",
            format!(
                "table {:.0} / Parquet {:.1} / Firehose gzip {:.1}",
                cost.item_bytes, cost.parquet_bytes, cost.gzip_bytes
            ),
            Verdict::Info,
            format!(
                "payload {:.0} bytes; ALL item as DynamoDB bills storage (item + 100 bytes); \
                 Parquet files of 10,000 records; gzip -6 of the records, newline-delimited \
                 ({RECORDS} records, {measured})",
                cost.payload
            ),
        );
        report.add(
            IN_PROCESS,
            format!("cost: requests per 1,000 records, {label}"),
            "report",
            format!(
                "table {:.0} write units / Parquet {:.2} PUTs",
                cost.write_units * 1000.0,
                cost.parquet_puts * 1000.0
            ),
            Verdict::Info,
            format!(
                "Firehose bills {:.0} bytes per record (5 KB increments)",
                cost.firehose_billed
            ),
        );
        // 1 TB of payload a month, kept 12 months: at steady state 12 months are stored.
        let records_month = 1e12 / cost.payload;
        let gb = |bytes_per_record: f64| records_month * bytes_per_record / 1e9;
        let puts = records_month * cost.parquet_puts * prices::S3_PUT;
        let table = records_month * cost.write_units * prices::DYNAMODB_WRITE_UNIT
            + 12.0 * gb(cost.item_bytes) * prices::DYNAMODB_GB_MONTH;
        let parquet = puts + 12.0 * gb(cost.parquet_bytes) * prices::S3_GB_MONTH;
        let parquet_cold = puts + 12.0 * gb(cost.parquet_bytes) * prices::GLACIER_IR_GB_MONTH;
        let firehose = gb(cost.firehose_billed) * prices::FIREHOSE_GB
            + 12.0 * gb(cost.gzip_bytes) * prices::S3_GB_MONTH;
        report.add(
            IN_PROCESS,
            format!("cost: USD a month, 1 TB/month kept 12 months, {label}"),
            "Parquet ≤ 1/50 of the table's, < Firehose",
            format!(
                "table {table:.0} / Parquet {parquet:.0} (Glacier IR {parquet_cold:.0}) / \
                 Firehose {firehose:.0}"
            ),
            Verdict::check(parquet * 50.0 <= table && parquet < firehose),
            format!(
                "{records_month:.2e} records a month; table: on-demand writes + Standard \
                 storage; Parquet: PUTs + S3 Standard; Firehose: ingestion + S3 Standard of \
                 its gzip output; list prices us-east-1, December 2026 (BENCHMARKS.md); \
                 Lambda compute and reads left out (alike or small beside these)"
            ),
        );
    }
}

/// A ~1 KB JSON clickstream event, as web and app analytics send to Kinesis: fixed field
/// names, a few enumerated values (event types, pages, user agents, countries), and
/// random identifiers (event, session, user, product ids, IP), which compress poorly.
/// Deterministic in `i` (a small LCG), so every run encodes the same bytes.
fn json_event(i: usize) -> Vec<u8> {
    let mut state = (i as u64) ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit((next() % 16) as u32, 16).expect("a hex digit"))
            .collect()
    };
    let (event_id, session, device) = (hex(32), hex(24), hex(16));
    const TYPES: [&str; 5] = [
        "page_view",
        "add_to_cart",
        "search",
        "checkout",
        "product_view",
    ];
    const PAGES: [&str; 6] = [
        "/",
        "/search",
        "/product",
        "/cart",
        "/checkout",
        "/account/orders",
    ];
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    ];
    const PLACES: [(&str, &str); 4] = [
        ("US", "Seattle"),
        ("DE", "Berlin"),
        ("JP", "Tokyo"),
        ("BR", "São Paulo"),
    ];
    let pick = |n: u64, len: usize| (n % len as u64) as usize;
    let (country, city) = PLACES[pick(next(), PLACES.len())];
    let items: Vec<String> = (0..1 + next() % 3)
        .map(|_| {
            format!(
                "{{\"sku\":\"SKU-{:08}\",\"quantity\":{},\"price\":{}.{:02},\"currency\":\"USD\"}}",
                next() % 100_000_000,
                1 + next() % 4,
                next() % 500,
                next() % 100
            )
        })
        .collect();
    format!(
        "{{\"eventId\":\"{event_id}\",\"eventType\":\"{}\",\"eventTime\":\"2026-05-01T10:{:02}:{:02}.{:03}Z\",\"userId\":\"user-{:07}\",\"sessionId\":\"{session}\",\"page\":{{\"path\":\"{}\",\"referrer\":\"https://www.example.com{}?q={}\",\"title\":\"Example Store\"}},\"device\":{{\"id\":\"{device}\",\"userAgent\":\"{}\",\"screen\":\"{}x{}\",\"language\":\"en-US\"}},\"geo\":{{\"ip\":\"{}.{}.{}.{}\",\"country\":\"{country}\",\"city\":\"{city}\"}},\"cart\":{{\"items\":[{}],\"total\":{}.{:02}}},\"experiment\":{{\"id\":\"exp-{}\",\"variant\":\"{}\"}},\"appVersion\":\"4.{}.{}\"}}",
        TYPES[pick(next(), TYPES.len())],
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000,
        next() % 10_000_000,
        PAGES[pick(next(), PAGES.len())],
        PAGES[pick(next(), PAGES.len())],
        next() % 100_000,
        AGENTS[pick(next(), AGENTS.len())],
        [1920, 1440, 390][pick(next(), 3)],
        [1080, 900, 844][pick(next(), 3)],
        next() % 223 + 1,
        next() % 256,
        next() % 256,
        next() % 254 + 1,
        items.join(","),
        next() % 2000,
        next() % 100,
        next() % 40,
        ["control", "treatment"][pick(next(), 2)],
        next() % 20,
        next() % 10
    )
    .into_bytes()
}

/// Criterion's estimates (median and its 95% interval) from `target/criterion`.
fn criterion_results(dir: &Path, report: &mut Report) {
    let mut found = Vec::new();
    collect_estimates(dir, &mut found);
    found.sort();
    if found.is_empty() {
        report.add(
            "criterion",
            "criterion results",
            "",
            "none found",
            Verdict::Info,
            dir.display().to_string(),
        );
    }
    for new_dir in found {
        let read = |name: &str| -> Option<Value> {
            serde_json::from_slice(&std::fs::read(new_dir.join(name)).ok()?).ok()
        };
        let (Some(benchmark), Some(estimates)) = (read("benchmark.json"), read("estimates.json"))
        else {
            continue;
        };
        let median = &estimates["median"];
        let ns = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let (point, low, high) = (
            ns(&median["point_estimate"]),
            ns(&median["confidence_interval"]["lower_bound"]),
            ns(&median["confidence_interval"]["upper_bound"]),
        );
        let (scale, unit) = if point >= 1e6 {
            (1e6, "ms")
        } else if point >= 1e3 {
            (1e3, "µs")
        } else {
            (1.0, "ns")
        };
        let per_element = benchmark["throughput"]["Elements"]
            .as_u64()
            .filter(|&n| n > 1)
            .map(|n| format!("{:.0} ns per element", point / n as f64))
            .unwrap_or_default();
        report.add(
            "criterion",
            benchmark["full_id"].as_str().unwrap_or("?"),
            "",
            format!(
                "{:.2} {unit} ({:.2}–{:.2}, 95% CI of the median)",
                point / scale,
                low / scale,
                high / scale
            ),
            Verdict::Info,
            per_element,
        );
    }
}

/// Every `new` directory (criterion's latest run) under `dir`.
fn collect_estimates(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if path.join("estimates.json").exists() {
                found.push(path);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            collect_estimates(&path, found);
        }
    }
}

/// `kinarch tier --delete` (issue 25) of an ALL table of [`TIER_ITEMS`] items of 1 KiB
/// payloads against moto, run by the release binary through a counting forwarder: items/s,
/// the requests of each operation, the bytes of Parquet written and the process's peak RSS.
async fn tier_scenario(ctx: &Ctx, report: &mut Report) {
    const TIER_ITEMS: usize = 100_000;
    const PAYLOAD: usize = 1024;
    let Some(moto) = start_moto(report, "tier") else {
        return;
    };
    let counter = NullEndpoint::forward(&ctx.servers, &moto.endpoint()).await;
    let sdk = sdk_config(&moto.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = kinarch_tests::s3::client(&sdk);
    let stream = StreamName::new("bench-tier").unwrap();
    create_stream(&kinesis, stream.as_str(), Some("ALL")).await;
    let config = StreamArchiveConfig::new(stream.clone(), ArchiveMode::All, None);
    create_archive_table(
        &dynamodb,
        &config.table,
        ArchiveMode::All,
        Billing::OnDemand,
        false,
    )
    .await
    .expect("CreateTable");
    kinarch_tests::s3::create_bucket(&s3, "bench-tier").await;
    let writer = ArchiveWriter::new(dynamodb.clone(), WriterOptions::default());
    for first in (0..TIER_ITEMS).step_by(1000) {
        let batch: Vec<ArchiveRecord> = (first..first + 1000)
            .map(|i| data::record(i, 1000, PAYLOAD))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let outcome = writer
            .write(&config, &batch, deadline)
            .await
            .expect("write");
        assert!(outcome.first_error.is_none(), "the items are written");
    }
    counter.reset_counts();
    let run = run_kinarch(
        ctx,
        &counter.endpoint(),
        &[
            "-q",
            "tier",
            stream.as_str(),
            "--older-than",
            "now",
            "--parquet",
            "s3://bench-tier/kinarch",
            "--delete",
        ],
    )
    .await;
    let counts = counter.counts();
    let listed = s3
        .list_objects_v2()
        .bucket("bench-tier")
        .send()
        .await
        .expect("ListObjectsV2");
    let files: Vec<i64> = listed
        .contents()
        .iter()
        .filter(|o| o.key().is_some_and(|k| k.ends_with(".parquet")))
        .map(|o| o.size().unwrap_or(0))
        .collect();
    let file_bytes: i64 = files.iter().sum();
    let deleted = counts
        .get("DynamoDB.BatchWriteItem")
        .map_or(0, |c| c.entries);
    let seconds = run.wall.as_secs_f64();
    report.add(
        MOTO,
        "kinarch tier --delete of 100,000 items of 1 KiB (release binary)",
        "report",
        if run.success && deleted == TIER_ITEMS as u64 {
            format!("{:.0} items/s", TIER_ITEMS as f64 / seconds)
        } else {
            format!("FAILED: exit ok {}, {deleted} items deleted", run.success)
        },
        Verdict::Info,
        format!(
            "{seconds:.1} s (kinarch's own CPU {:.0} µs an item); requests: {}; {} files, {} \
             bytes of Parquet for {} payload bytes ({:.1}%); peak RSS {:.1} MiB",
            (run.user + run.system).as_secs_f64() * 1e6 / TIER_ITEMS as f64,
            op_summary(&counts),
            files.len(),
            file_bytes,
            TIER_ITEMS * PAYLOAD,
            100.0 * file_bytes as f64 / (TIER_ITEMS * PAYLOAD) as f64,
            kib_to_mib(run.max_rss_kib as f64)
        ),
    );
}
