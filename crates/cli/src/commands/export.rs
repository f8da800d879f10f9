//! `kinarch export`: a DynamoDB export of the archive table to S3 (see
//! `kinarch_core::export`), and the Athena table over it.

use std::time::Duration;

use aws_config::SdkConfig;
use kinarch_core::Error;
use kinarch_core::domain::athena::create_table_ddl;
use kinarch_core::export::{ExportDestination, ExportProgress, ExportState, Exporter};
use kinarch_core::read::locate::Located;
use serde_json::{Value, json};

use crate::cli::{ExportArgs, GlobalArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::print_json;

/// How often a running export is asked about: DynamoDB exports take minutes at least.
const POLL: Duration = Duration::from_secs(5);
/// How long kinarch waits before leaving a running export to itself.
const WAIT_AT_MOST: Duration = Duration::from_secs(6 * 3600);

pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ExportArgs,
) -> Result<(), Failure> {
    let (archive, located) =
        super::open_archive(sdk, global, args.stream.name.clone(), &args.archive).await?;
    let table = archive.config().table.clone();
    let exporter = Exporter::new(sdk);
    let destination = ExportDestination {
        bucket: args.destination.bucket.clone(),
        prefix: args.destination.prefix.clone(),
    };
    let shown = match destination.prefix.as_str() {
        "" => format!("s3://{}", destination.bucket),
        prefix => format!("s3://{}/{prefix}", destination.bucket),
    };
    let quiet = global.quiet || args.output == SummaryFormat::Json;
    // The command that turns point-in-time recovery on for this very table: kinarch setup
    // while the stream exists (setup needs it), else the AWS CLI's.
    let pitr_command = match located {
        Located::WithoutStream { .. } => format!(
            "aws dynamodb update-continuous-backups --table-name {table} \
             --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true"
        ),
        _ => format!(
            "kinarch setup {} {} --pitr{}",
            archive.config().stream,
            archive.config().mode,
            match &args.archive.table {
                Some(table) => format!(" --table {table}"),
                None => String::new(),
            }
        ),
    };
    if args.dry_run {
        let pitr = exporter.point_in_time_recovery(&table).await?;
        let verdict = if pitr {
            "point-in-time recovery is on"
        } else {
            &format!(
                "point-in-time recovery is OFF: the export would be refused (turn it on with `{pitr_command}`)"
            )
        };
        match args.output {
            SummaryFormat::Json => print_json(&json!({
                "dryRun": true,
                "table": table.as_str(),
                "destination": shown,
                "pointInTimeRecovery": pitr,
            }))?,
            SummaryFormat::Text => crate::say(&format!(
                "would export table {table} to {shown}/AWSDynamoDB/; {verdict}"
            )),
        }
        return Ok(());
    }
    let started = exporter
        .start(&table, &destination)
        .await
        .map_err(|err| match err {
            Error::PointInTimeRecoveryOff { .. } => Failure::Runtime(format!(
                "point-in-time recovery is off for table {table}, and a DynamoDB export reads \
                 from it: turn it on with `{pitr_command}`, then export again"
            )),
            other => other.into(),
        })?;
    if !quiet {
        crate::say(&format!(
            "export of table {table} to {shown} started: {}",
            started.arn
        ));
    }
    let state = if args.no_wait {
        started
    } else {
        let mut last_report = std::time::Instant::now();
        exporter
            .wait(started, POLL, WAIT_AT_MOST, |state| {
                if !quiet
                    && state.progress == ExportProgress::InProgress
                    && last_report.elapsed() >= Duration::from_secs(60)
                {
                    last_report = std::time::Instant::now();
                    crate::say(&format!("export {}: still in progress", state.export_id()));
                }
            })
            .await?
    };
    let ddl = args
        .print_athena_ddl
        .then(|| create_table_ddl(table.as_str(), &state.data_location()));
    match args.output {
        SummaryFormat::Json => print_json(&export_json(&state, table.as_str(), ddl.as_deref()))?,
        SummaryFormat::Text => {
            if !global.quiet {
                crate::say(&render(&state));
            }
            if let Some(ddl) = &ddl {
                print!("{ddl}");
            }
        }
    }
    match &state.progress {
        ExportProgress::Failed { code, message } => Err(Failure::Runtime(format!(
            "the export {} failed: {code}: {message}",
            state.arn
        ))),
        _ => Ok(()),
    }
}

fn progress_name(progress: &ExportProgress) -> &'static str {
    match progress {
        ExportProgress::InProgress => "IN_PROGRESS",
        ExportProgress::Completed => "COMPLETED",
        ExportProgress::Failed { .. } => "FAILED",
    }
}

fn export_json(state: &ExportState, table: &str, ddl: Option<&str>) -> Value {
    let mut value = json!({
        "table": table,
        "exportArn": state.arn,
        "status": progress_name(&state.progress),
        "itemCount": state.item_count,
        "billedSizeBytes": state.billed_bytes,
        "exportLocation": state.export_location(),
        "manifest": state.manifest_location(),
        "dataLocation": state.data_location(),
    });
    if let ExportProgress::Failed { code, message } = &state.progress {
        value["failureCode"] = json!(code);
        value["failureMessage"] = json!(message);
    }
    if let Some(ddl) = ddl {
        value["athenaDdl"] = json!(ddl);
    }
    value
}

fn render(state: &ExportState) -> String {
    match &state.progress {
        ExportProgress::Completed => format!(
            "export completed: {} items, {} bytes\nmanifest: {}",
            state
                .item_count
                .map(|n| crate::cli::values::thousands(n.max(0) as u64))
                .unwrap_or_else(|| "?".into()),
            state
                .billed_bytes
                .map(|n| crate::cli::values::thousands(n.max(0) as u64))
                .unwrap_or_else(|| "?".into()),
            state.manifest_location()
        ),
        ExportProgress::InProgress => format!(
            "export in progress (not waited for); follow it with `aws dynamodb describe-export \
             --export-arn {}`\nits manifest will be {}",
            state.arn,
            state.manifest_location()
        ),
        ExportProgress::Failed { code, message } => {
            format!("export failed: {code}: {message}")
        }
    }
}
