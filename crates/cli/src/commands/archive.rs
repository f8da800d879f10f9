//! `kinarch archive <stream>`: archive without Lambda, resumably (see
//! `kinarch_core::poller`).

use std::io::Write;

use aws_config::SdkConfig;
use kinarch_core::poller::checkpoint::CheckpointLocation;
use kinarch_core::poller::dry_run::{ArchiveDryRun, ShardStart};
use kinarch_core::poller::{ArchiveSummary, PollerOptions, StreamPoller};
use serde_json::{Value, json};

use crate::cli::{ArchiveArgs, GlobalArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::{count, decimal, print_json, rate};
use crate::progress::Progress;

/// Archives until caught up (or, with --follow, until a signal), then prints the summary.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ArchiveArgs,
) -> Result<(), Failure> {
    // Listen before anything else: a signal that comes while the archiver starts must stop
    // it cleanly too, not kill it.
    let shutdown = crate::signals::listen()?;
    let shutdown = async move {
        shutdown.await;
    };
    let checkpoints = match (args.checkpoint_table, args.checkpoint_file) {
        (Some(table), _) => Some(CheckpointLocation::Table(table)),
        (None, Some(path)) => Some(CheckpointLocation::File(path)),
        (None, None) => None,
    };
    let options = PollerOptions {
        start: args.start_at,
        follow: args.follow,
        batch_size: args.batch_size,
        checkpoints,
        ..PollerOptions::default()
    };
    if args.dry_run {
        let plan = StreamPoller::dry_run(sdk, args.stream.name, options).await?;
        match args.output {
            SummaryFormat::Json => print_json(&dry_run_json(&plan))?,
            SummaryFormat::Text => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(render_dry_run(&plan).as_bytes())?;
                stdout.flush()?;
            }
        }
        return Ok(());
    }
    let archiver = StreamPoller::open(sdk, args.stream.name, options).await?;
    let config = archiver.config();
    tracing::info!(
        stream = %config.stream,
        mode = %config.mode,
        table = %config.table,
        checkpoints = %archiver.checkpoints(),
        "archiving"
    );
    if !global.quiet {
        crate::say(&format!(
            "archiving stream {} ({} mode) into table {}; checkpoints in {}{}",
            config.stream,
            config.mode,
            config.table,
            archiver.checkpoints(),
            if args.follow { "; Ctrl-C stops" } else { "" }
        ));
    }
    let mut progress = Progress::start_status(global.quiet);
    let result = archiver
        .run(shutdown, |p| {
            progress.set(
                p.records,
                format!(
                    "{} shards reading, {} finished",
                    p.shards_reading, p.shards_finished
                ),
            )
        })
        .await;
    progress.clear();
    let summary = result?;
    let mut stdout = std::io::stdout().lock();
    match args.output {
        SummaryFormat::Json => {
            serde_json::to_writer(&mut stdout, &summary_json(&summary))
                .map_err(|e| Failure::Runtime(format!("cannot write the summary: {e}")))?;
            stdout.write_all(b"\n")?;
        }
        SummaryFormat::Text if !global.quiet => stdout.write_all(render(&summary).as_bytes())?,
        SummaryFormat::Text => {}
    }
    stdout.flush()?;
    Ok(())
}

fn seconds(summary: &ArchiveSummary) -> f64 {
    (summary.elapsed.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The summary as one JSON object (camelCase, like the table contract).
pub(crate) fn summary_json(summary: &ArchiveSummary) -> Value {
    let checkpoints = match &summary.checkpoints {
        CheckpointLocation::Table(table) => json!({ "table": table.as_str() }),
        CheckpointLocation::File(path) => json!({ "file": path.display().to_string() }),
    };
    let counts = &summary.counts;
    json!({
        "stream": summary.config.stream.as_str(),
        "table": summary.config.mode.has_table().then(|| summary.config.table.as_str()),
        "parquet": summary.config.parquet.as_ref().map(ToString::to_string),
        "mode": summary.config.mode.as_str(),
        "checkpoints": checkpoints,
        "from": summary.start.to_string(),
        "follow": summary.follow,
        "stopped": summary.stopped.as_str(),
        "seconds": seconds(summary),
        "records": summary.records,
        "written": counts.written,
        "skippedOlder": counts.skipped_older,
        "skippedReplay": counts.skipped_replay,
        "containers": counts.containers,
        "userRecords": counts.user_records,
        "oversize": counts.oversize,
        "overflowed": counts.overflowed,
        "parquetFiles": counts.parquet_files,
        "parquetBytes": counts.parquet_bytes,
        "retriedBatches": summary.retried_batches,
        "staleCheckpoints": summary.stale_checkpoints,
        "shards": summary.shards.iter().map(|shard| json!({
            "shardId": shard.shard_id,
            "parents": shard.parents,
            "state": shard.state.as_str(),
            "records": shard.records,
            "sequenceNumber": shard.sequence_number.as_ref().map(|s| s.as_str()),
            "startedFrom": shard.started_from,
        })).collect::<Vec<_>>(),
    })
}

/// The summary for people: a headline, a table of shards, where the checkpoints are.
pub(crate) fn render(summary: &ArchiveSummary) -> String {
    let config = &summary.config;
    let why = match summary.stopped {
        kinarch_core::poller::StopReason::CaughtUp => "caught up",
        kinarch_core::poller::StopReason::Shutdown => "stopped by signal",
    };
    let mut text = format!(
        "archived {} of stream {} into {} ({} mode) in {} s ({}); {why}\n",
        count(summary.records, "record"),
        config.stream,
        config.destination(),
        config.mode,
        decimal(summary.elapsed.as_secs_f64(), 1),
        rate(summary.records, summary.elapsed.as_secs_f64())
    );
    let mut details = Vec::new();
    let counts = &summary.counts;
    if counts.containers > 0 {
        details.push(format!(
            "{} held {}",
            count(counts.containers, "KPL container"),
            count(counts.user_records, "user record")
        ));
    }
    if counts.skipped_older > 0 {
        details.push(format!(
            "{} older or repeated records not written",
            counts.skipped_older
        ));
    }
    if counts.skipped_replay > 0 {
        details.push(format!(
            "{} replayed into their source stream, archived already, not written again",
            counts.skipped_replay
        ));
    }
    if counts.oversize > 0 {
        details.push(format!(
            "{} too large, archived without payload",
            counts.oversize
        ));
    }
    if counts.overflowed > 0 {
        details.push(format!(
            "{} too large for an item, payload stored in S3",
            counts.overflowed
        ));
    }
    if counts.parquet_files > 0 {
        details.push(format!(
            "{} written ({} bytes)",
            count(counts.parquet_files, "Parquet file"),
            counts.parquet_bytes
        ));
    }
    if summary.retried_batches > 0 {
        details.push(format!(
            "{} batches partly failed and were read again",
            summary.retried_batches
        ));
    }
    if summary.stale_checkpoints > 0 {
        details.push(format!(
            "{} of an earlier table {} ignored: that table was deleted and created again",
            count(summary.stale_checkpoints as u64, "checkpoint"),
            config.table
        ));
    }
    if !details.is_empty() {
        text.push_str(&format!("  ({})\n", details.join("; ")));
    }
    let rows: Vec<[String; 5]> = summary
        .shards
        .iter()
        .map(|shard| {
            [
                shard.shard_id.clone(),
                shard.state.as_str().to_owned(),
                shard.records.to_string(),
                shard
                    .sequence_number
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                match (&shard.started_from, shard.parents.is_empty()) {
                    (Some(from), _) => format!("from {from}"),
                    (None, false) => format!("after {}", shard.parents.join(" + ")),
                    (None, true) => String::new(),
                },
            ]
        })
        .collect();
    let header = ["shard", "state", "records", "checkpoint", ""].map(str::to_owned);
    let width = |column: usize| {
        std::iter::once(&header)
            .chain(&rows)
            .map(|row| row[column].len())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.push_str(&format!("checkpoints: {}\n", summary.checkpoints));
    text
}

/// Where a shard would start, for people and for `-o json`.
fn start_text(start: &ShardStart) -> String {
    match start {
        ShardStart::Finished => "finished: not read again".to_owned(),
        ShardStart::AfterCheckpoint(seq) => format!("after its checkpoint {seq}"),
        ShardStart::ResumeAtTime(time) => format!("at {time} (opened at LATEST by an earlier run)"),
        ShardStart::AtBeginning => "at its beginning (its parent is archived)".to_owned(),
        ShardStart::At(position) => format!("at {position} (--start-at)"),
    }
}

/// `archive --dry-run`: the setup that was checked and where each shard would start.
fn render_dry_run(plan: &ArchiveDryRun) -> String {
    let config = &plan.config;
    let mut text = format!(
        "Dry run, nothing was read or written. Stream {} ({} mode) would be archived into \
         table {}; checkpoints in {}{}.\n",
        config.stream,
        config.mode,
        config.table,
        plan.checkpoints,
        if plan.checkpoints_exist {
            ""
        } else {
            " (created by the first run)"
        }
    );
    if let Some(note) = &plan.stale_note {
        text.push_str(&format!("Note: {note}.\n"));
    }
    for (shard, start) in &plan.shards {
        let closed = if shard.is_closed() { " (closed)" } else { "" };
        text.push_str(&format!(
            "  {}{closed}: {}\n",
            shard.shard_id,
            start_text(start)
        ));
    }
    text
}

fn dry_run_json(plan: &ArchiveDryRun) -> Value {
    json!({
        "dryRun": true,
        "stream": plan.config.stream.as_str(),
        "mode": plan.config.mode.to_string(),
        "table": plan.config.table.as_str(),
        "checkpoints": plan.checkpoints.to_string(),
        "checkpointsExist": plan.checkpoints_exist,
        "staleCheckpoints": plan.stale_note,
        "shards": plan.shards.iter().map(|(shard, start)| json!({
            "shardId": shard.shard_id,
            "closed": shard.is_closed(),
            "start": start_text(start),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::poller::{ShardState, ShardSummary, StartPosition, StopReason};
    use kinarch_core::{
        ArchiveMode, SequenceNumber, StreamArchiveConfig, StreamName, TableName, WriteCounts,
    };
    use std::time::Duration;

    fn summary() -> ArchiveSummary {
        let config =
            StreamArchiveConfig::new(StreamName::new("orders").unwrap(), ArchiveMode::All, None);
        ArchiveSummary {
            checkpoints: CheckpointLocation::Table(
                TableName::new("orders-archive-ALL-checkpoints").unwrap(),
            ),
            config,
            start: StartPosition::TrimHorizon,
            follow: false,
            stopped: StopReason::CaughtUp,
            records: 12,
            counts: WriteCounts {
                written: 12,
                skipped_replay: 3,
                oversize: 1,
                ..WriteCounts::default()
            },
            retried_batches: 0,
            stale_checkpoints: 0,
            elapsed: Duration::from_millis(1234),
            shards: vec![
                ShardSummary {
                    shard_id: "shardId-000000000000".into(),
                    parents: vec![],
                    state: ShardState::Finished,
                    records: 0,
                    sequence_number: Some(SequenceNumber::parse("40").unwrap()),
                    started_from: None,
                },
                ShardSummary {
                    shard_id: "shardId-000000000001".into(),
                    parents: vec!["shardId-000000000000".into()],
                    state: ShardState::CaughtUp,
                    records: 12,
                    sequence_number: Some(SequenceNumber::parse("12").unwrap()),
                    started_from: Some("TRIM_HORIZON (its parents were archived)".into()),
                },
            ],
        }
    }

    #[test]
    fn text_summary_has_records_shards_and_seconds() {
        let text = render(&summary());
        for expected in [
            "archived 12 records of stream orders into table orders-archive-ALL (ALL mode) in 1.2 s (9.7/s); caught up",
            "3 replayed into their source stream, archived already, not written again",
            "1 too large, archived without payload",
            "shardId-000000000000  finished",
            "shardId-000000000001  caught-up",
            "from TRIM_HORIZON (its parents were archived)",
            "checkpoints: table orders-archive-ALL-checkpoints",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }

    #[test]
    fn json_summary_names_every_field() {
        let value = summary_json(&summary());
        assert_eq!(value["records"], 12);
        assert_eq!(value["skippedReplay"], 3);
        assert_eq!(value["seconds"], 1.234);
        assert_eq!(value["stopped"], "caught-up");
        assert_eq!(
            value["checkpoints"]["table"],
            "orders-archive-ALL-checkpoints"
        );
        assert_eq!(value["shards"][1]["parents"][0], "shardId-000000000000");
        assert_eq!(value["shards"][1]["sequenceNumber"], "12");
        assert_eq!(value["shards"][0]["startedFrom"], Value::Null);
    }
}
