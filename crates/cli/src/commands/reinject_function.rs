//! `kinarch reinject STREAM --target-function NAME|ARN`: the CLI's part of a replay into a
//! consumer function (flags, signals, progress, printing); the replay itself is
//! `kinarch_core::replay::function`.

use std::io::Write;

use aws_config::SdkConfig;
use kinarch_core::aws::functions::describe_function;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::domain::function_event::EventSource;
use kinarch_core::replay::function::{
    FunctionEstimate, FunctionOptions, FunctionReport, FunctionSummary, FunctionTarget,
};
use kinarch_core::replay::reinject::ReinjectOptions;
use kinarch_core::replay::runner::{Replay, ReplayRequest};

use crate::cli::values::thousands;
use crate::cli::{GlobalArgs, ReinjectArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::{decimal, print_json, rate};
use crate::progress::Progress;

pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ReinjectArgs,
) -> Result<(), Failure> {
    let Some(function) = args.target_function.clone() else {
        return Err(Failure::Usage("--target-function is missing".into()));
    };
    let mut signal = crate::signals::listen()?;
    let resolved = super::selection(args.selection)?;
    let source = args.source.name;
    let (archive, _) = super::open_archive(sdk, global, source.clone(), &args.archive).await?;
    let mut reinject = ReinjectOptions::new(source.clone(), source.clone());
    reinject.target_function = Some(function.clone());
    let options = FunctionOptions {
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        max_attempts: args.function_attempts,
        dry_run: args.dry_run,
        original_pace: args.pace.map(|_| args.speed.unwrap_or(1.0)),
        ..FunctionOptions::default()
    };
    options.check()?;
    let lambda = aws_sdk_lambda::Client::new(sdk);
    // The function is looked up first, in every mode (a dry run and an estimate check it too):
    // its ARN and execution role (the events' invokeIdentityArn).
    let info = describe_function(&lambda, &function).await?;
    let stream_arn =
        match describe_stream_summary(&aws_sdk_kinesis::Client::new(sdk), &source).await {
            Ok(summary) => summary.arn,
            // The stream is gone (its archive outlives it): its ARN in the function's account and
            // the region of this run.
            Err(e) if e.aws_kind() == Some(kinarch_core::aws::error::AwsErrorKind::NotFound) => {
                let account = info.arn.split(':').nth(4).unwrap_or_default();
                let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
                format!("arn:aws:kinesis:{region}:{account}:stream/{source}")
            }
            Err(e) => {
                return Err(e
                    .explained(|| "reading the source stream failed".into())
                    .into());
            }
        };
    let target = FunctionTarget {
        source: EventSource {
            region: stream_arn.split(':').nth(3).unwrap_or_default().to_owned(),
            stream_arn,
            invoke_identity_arn: info.role.clone(),
        },
        function: info,
    };
    let replay = Replay::prepare(
        archive,
        ReplayRequest {
            selection: resolved.selection,
            read: resolved.read,
            options: reinject,
            journal: args.journal.clone(),
            relative_times: resolved.relative_times,
            // Refused with --target-function by the flags: verify reads a stream back.
            verify: false,
        },
    )?;
    for note in replay.notes() {
        if !global.quiet {
            crate::say(note);
        }
    }
    let json = args.output == SummaryFormat::Json;
    if args.estimate {
        let estimate = replay
            .estimate_function(&target, &options, async {
                (&mut signal).await;
            })
            .await?;
        let Some(estimate) = estimate else {
            crate::say("stopped by a signal while reading the selection: nothing was invoked");
            return Err(Failure::Interrupted(130));
        };
        if json {
            print_json(&estimate)?;
        } else {
            crate::say(&estimate_text(&estimate));
        }
        return Ok(());
    }
    let stopped_by = std::cell::Cell::new(None);
    let stop = async {
        stopped_by.set(Some((&mut signal).await));
        if let Err(failure) = crate::signals::exit_on_second_signal() {
            tracing::warn!("{failure:?}");
        }
    };
    let quiet = global.quiet || json;
    let mut progress = match args.dry_run {
        true => Progress::start(quiet),
        false => Progress::start_status(quiet),
    };
    let mut counted = 0;
    let mut stdout = std::io::stdout().lock();
    let mut shown: std::io::Result<()> = Ok(());
    let report = replay
        .deliver_to_function(
            &lambda,
            &target,
            &options,
            stop,
            |delivered| {
                while counted < delivered {
                    progress.record();
                    counted += 1;
                }
            },
            |record| {
                if let (true, false, Ok(())) = (args.dry_run, json, &shown) {
                    shown = writeln!(
                        stdout,
                        "{}\t{}\t{}\t{} bytes",
                        record.shard_id,
                        record.partition_key,
                        record.sequence_number,
                        record.data.len()
                    );
                }
            },
        )
        .await;
    progress.clear();
    shown?;
    drop(stdout);
    let report = report?;
    if report.stopped_while_reading {
        crate::say("stopped by a signal while reading the selection: nothing was invoked");
        return Err(Failure::Interrupted(stopped_by.get().unwrap_or(130)));
    }
    if report.skipped_by_journal > 0 && !global.quiet {
        crate::say(&format!(
            "journal: {} record(s) were delivered by an earlier run and are not delivered again",
            thousands(report.skipped_by_journal)
        ));
    }
    if json {
        print_json(&FunctionSummary::new(&report, &function, args.dry_run))?;
    } else if !(global.quiet && report.failed.is_empty()) {
        crate::say(&summary_line(&report, &function, args.dry_run));
    }
    if report.stopped {
        crate::say(&format!(
            "stopped by a signal: {} record(s) delivered, each shard's batch in flight \
             answered; {} read but not delivered",
            thousands(report.delivered),
            thousands(report.unsent)
        ));
    }
    for shard in &report.stopped_shards {
        crate::say(&format!(
            "shard {} stopped: {} ({} record(s) not delivered)",
            shard.shard_id,
            shard.reason,
            thousands(shard.undelivered)
        ));
    }
    for failed in &report.failed {
        crate::say(&format!(
            "not delivered: {} {}{}: {}",
            failed.partition_key,
            failed.sequence_number,
            failed
                .sub_sequence_number
                .map_or(String::new(), |s| format!(".{s}")),
            failed.reason
        ));
    }
    if let (true, Some(code)) = (report.stopped, stopped_by.get()) {
        return Err(Failure::Interrupted(code));
    }
    if report.failed.is_empty() || args.dry_run {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} record(s) could not be delivered to function {function} (listed above)",
            report.failed.len()
        )))
    }
}

/// `function orders-consumer: read 1,200, delivered 1,200, ...`.
fn summary_line(report: &FunctionReport, function: &str, dry_run: bool) -> String {
    let seconds = report.elapsed.as_secs_f64();
    format!(
        "function {function}: read {}, {} {}, {} invocation(s){}, retried {}, throttled {}, \
         failed {}, {} event bytes, {} s, {}",
        thousands(report.read),
        if dry_run {
            "would deliver"
        } else {
            "delivered"
        },
        thousands(report.delivered),
        thousands(report.invocations),
        if dry_run {
            " (nothing invoked: dry run)"
        } else {
            ""
        },
        thousands(report.retried),
        thousands(report.throttled),
        thousands(report.failed.len() as u64),
        thousands(report.bytes),
        decimal(seconds, 1),
        rate(report.delivered, seconds),
    )
}

fn estimate_text(e: &FunctionEstimate) -> String {
    format!(
        "estimate for function {}: {} record(s) in {} event record(s), at least {} \
         invocation(s), {} event bytes, {} shard(s){}",
        e.target_function,
        thousands(e.records),
        thousands(e.event_records),
        thousands(e.invocations),
        thousands(e.bytes),
        thousands(e.shards),
        match e.undeliverable {
            0 => String::new(),
            n => format!("; {n} record(s) cannot be delivered"),
        }
    )
}
