//! `kinarch compact <stream>`: the small Parquet files of each finished shard-hour rewritten
//! into one (see `kinarch_core::compact`).

use aws_config::SdkConfig;
use chrono::Utc;
use kinarch_core::compact::{CompactOptions, CompactionReport, Compactor, SETTLE};
use kinarch_core::domain::selection::rfc3339;
use serde_json::json;

use crate::cli::{CompactArgs, GlobalArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::{count, print_json};

pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: CompactArgs,
) -> Result<(), Failure> {
    let stream = args.stream.name.clone();
    let before = args.before.map_or_else(|| Utc::now() - SETTLE, |t| t.time);
    let after = args.after.map(|t| t.time);
    if let Some(after) = after
        && after >= before
    {
        return Err(Failure::Usage(format!(
            "--after {} is not before --before {}: give an earlier --after or a later --before",
            rfc3339(after),
            rfc3339(before)
        )));
    }
    let (_, target) = super::parquet_archive(sdk, global, stream.clone(), args.parquet).await?;
    let options = CompactOptions {
        after,
        dry_run: args.dry_run,
        ..CompactOptions::before(before)
    };
    let report = Compactor::new(sdk)
        .compact(&target, &stream, &options)
        .await?;
    match args.output {
        SummaryFormat::Json => print_json(&report_json(&report, &target.to_string()))?,
        SummaryFormat::Text if !global.quiet => say_report(&report),
        SummaryFormat::Text => {}
    }
    match report.failed.as_slice() {
        [] => Ok(()),
        [one] => Err(Failure::Runtime(one.clone())),
        [first, ..] => Err(Failure::Runtime(format!(
            "{} were not compacted; the first: {first}",
            count(report.failed.len() as u64, "shard-hour output")
        ))),
    }
}

/// The report on standard error: one line per output, then the totals.
fn say_report(report: &CompactionReport) {
    let (files_before, bytes_before, files_after, bytes_after) = report.totals();
    for output in &report.outputs {
        let line = match (report.dry_run, output.written) {
            (true, _) => format!(
                "would rewrite {} ({}) into {}",
                count(output.inputs.len() as u64, "file"),
                count(output.input_bytes, "byte"),
                output.key
            ),
            (false, true) => format!(
                "rewrote {} ({}) into {} ({}, {})",
                count(output.inputs.len() as u64, "file"),
                count(output.input_bytes, "byte"),
                output.key,
                count(output.rows, "row"),
                count(output.output_bytes, "byte")
            ),
            (false, false) => format!(
                "kept {}, which holds every row of the others; deleted {}",
                output.key,
                count(output.deleted, "file")
            ),
        };
        crate::say(&line);
    }
    for run in &report.too_large {
        crate::say(&format!(
            "left as they are: {} that overlap and exceed 64 MiB together ({})",
            count(run.len() as u64, "file"),
            run.join(", ")
        ));
    }
    let verb = if report.dry_run {
        "would compact"
    } else {
        "compacted"
    };
    let mut summary = format!(
        "{verb} {} of stream {} that ended by {}: {} ({}) into {}",
        count(report.outputs.len() as u64, "shard-hour output"),
        report.stream,
        rfc3339(report.before),
        count(files_before, "file"),
        count(bytes_before, "byte"),
        count(files_after, "file"),
    );
    if !report.dry_run {
        summary.push_str(&format!(" ({})", count(bytes_after, "byte")));
    }
    summary.push_str(&format!(
        "; {} listed, {} finished",
        count(report.listed, "object"),
        count(report.shard_hours, "shard-hour")
    ));
    crate::say(&summary);
}

/// The report as one JSON document.
fn report_json(report: &CompactionReport, target: &str) -> serde_json::Value {
    let (files_before, bytes_before, files_after, bytes_after) = report.totals();
    json!({
        "stream": report.stream,
        "parquet": target,
        "before": rfc3339(report.before),
        "dryRun": report.dry_run,
        "objectsListed": report.listed,
        "shardHours": report.shard_hours,
        "filesBefore": files_before,
        "bytesBefore": bytes_before,
        "filesAfter": files_after,
        "bytesAfter": bytes_after,
        "outputs": report.outputs.iter().map(|o| json!({
            "key": o.key,
            "inputs": o.inputs,
            "inputBytes": o.input_bytes,
            "outputBytes": o.output_bytes,
            "rows": o.rows,
            "written": o.written,
            "deleted": o.deleted,
        })).collect::<Vec<_>>(),
        "tooLarge": report.too_large,
        "failed": report.failed,
    })
}
