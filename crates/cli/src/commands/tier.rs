//! `kinarch tier`: an ALL table's old items moved into the Parquet archive (see
//! `kinarch_core::tier`); this prints its report.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use aws_config::SdkConfig;
use kinarch_core::read::TimeIndexUse;
use kinarch_core::tier::{Tier, TierReport, TierRequest};
use serde_json::{Value, json};

use crate::cli::values::thousands;
use crate::cli::{ArchiveTableArgs, GlobalArgs, SummaryFormat, TierArgs};
use crate::failure::Failure;
use crate::output::{count, print_json};

pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: TierArgs,
) -> Result<(), Failure> {
    // Listen first: Ctrl-C while the table is located must stop as cleanly as later.
    let signal = crate::signals::listen()?;
    let code = Arc::new(AtomicU8::new(0));
    let stop = {
        let code = code.clone();
        async move {
            code.store(signal.await, Ordering::Relaxed);
            // A second signal ends the process at once.
            let _ = crate::signals::exit_on_second_signal();
        }
    };
    let table = ArchiveTableArgs {
        table: args.table.clone(),
        force: args.force,
        parquet: None,
    };
    let (reader, _) = super::open_archive(sdk, global, args.stream.name.clone(), &table).await?;
    let tier = Tier::new(sdk, reader, args.parquet.clone())?;
    let request = TierRequest {
        older_than: args.older_than.time,
        delete: args.delete,
        dry_run: args.dry_run,
        worker: args.segment,
        time_index: if args.no_time_index {
            TimeIndexUse::Never
        } else {
            TimeIndexUse::WhenPresent
        },
    };
    let config = tier.reader().config();
    let quiet = global.quiet || args.output == SummaryFormat::Json;
    if !quiet {
        crate::say(&format!(
            "{} the items of table {} that arrived before {} into {}{}",
            if args.dry_run { "counting" } else { "tiering" },
            config.table,
            args.older_than
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            tier.target(),
            match (args.dry_run, args.delete) {
                (true, _) => " (dry run: nothing is written or deleted)",
                (false, true) => ", deleting each item once its file is checked",
                (false, false) => " (no item is deleted: --delete does)",
            }
        ));
    }
    let report = tier.run(&request, stop).await?;
    match args.output {
        SummaryFormat::Json => print_json(&report_json(&report, &args, &tier))?,
        SummaryFormat::Text if !global.quiet => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", render(&report, &args))?;
            stdout.flush()?;
        }
        SummaryFormat::Text => {}
    }
    if report.stopped {
        return Err(Failure::Interrupted(code.load(Ordering::Relaxed).max(130)));
    }
    if report.has_problems() {
        for problem in &report.problems {
            crate::say(&crate::logging::labelled(tracing::Level::ERROR, problem));
        }
        return Err(Failure::Runtime(
            "some items were not tiered (named above); they are still in the table: \
             see to them and run tier again"
                .into(),
        ));
    }
    Ok(())
}

/// Dollars with cents.
fn dollars(amount: f64) -> String {
    format!("${amount:.2}")
}

/// The report in a few lines.
fn render(report: &TierReport, args: &TierArgs) -> String {
    let cost = report.monthly_storage();
    let mut lines = vec![format!(
        "{} read ({} of payloads, {} in the table)",
        count(report.items_read, "item"),
        bytes(report.payload_bytes),
        bytes(report.table_bytes),
    )];
    if args.dry_run {
        lines.push(format!(
            "would write at least {} (one per shard and arrival hour){}",
            count(report.groups, "file"),
            if args.delete {
                format!(" and delete {}", count(report.items_read, "item"))
            } else {
                String::new()
            }
        ));
    } else {
        lines.push(format!(
            "{} written and checked ({}), {}; {} already in the Parquet archive",
            count(report.files_written, "file"),
            bytes(report.file_bytes),
            count(report.records_written, "record"),
            count(report.records_already_archived, "record"),
        ));
        if args.delete {
            lines.push(format!(
                "{} deleted from the table, {} from the overflow bucket",
                count(report.items_deleted, "item"),
                count(report.payloads_deleted, "payload"),
            ));
        }
    }
    lines.push(format!(
        "storage per month at list prices: {} in the table; {} in S3 Standard, {} in \
         Glacier Instant Retrieval{}",
        dollars(cost.table),
        dollars(cost.s3_standard),
        dollars(cost.glacier_instant_retrieval),
        if report.file_bytes > 0 {
            ""
        } else {
            " (at most: the files are compressed)"
        }
    ));
    if report.stopped {
        lines.push("stopped: run the same command again to go on".into());
    }
    lines.join("\n")
}

/// `1.5 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} bytes", thousands(n))
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The report as one JSON object (camelCase, like the table contract).
fn report_json(report: &TierReport, args: &TierArgs, tier: &Tier) -> Value {
    let cost = report.monthly_storage();
    let config = tier.reader().config();
    json!({
        "stream": config.stream.as_str(),
        "table": config.table.as_str(),
        "parquet": tier.target().to_string(),
        "olderThan": args.older_than.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "dryRun": args.dry_run,
        "delete": args.delete,
        "itemsRead": report.items_read,
        "payloadBytes": report.payload_bytes,
        "tableBytes": report.table_bytes,
        "shardHours": report.groups,
        "recordsWritten": report.records_written,
        "recordsAlreadyArchived": report.records_already_archived,
        "filesWritten": report.files_written,
        "fileBytes": report.file_bytes,
        "filesFailed": report.files_failed,
        "conflicting": report.conflicting,
        "unreadable": report.unreadable,
        "itemsDeleted": report.items_deleted,
        "itemsNotDeleted": report.items_not_deleted,
        "payloadsDeleted": report.payloads_deleted,
        "stopped": report.stopped,
        "problems": report.problems,
        "monthlyStorageUsd": {
            "table": cost.table,
            "s3Standard": cost.s3_standard,
            "glacierInstantRetrieval": cost.glacier_instant_retrieval,
            "saving": cost.saving(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1023), "1,023 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }
}
