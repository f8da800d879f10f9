//! `kinarch status <stream>`: how a stream is archived, and a health check: exit status 0
//! only when the archive is fully set up and usable (see
//! `kinarch_core::setup::health`), 1 otherwise, after everything known was shown.

use std::io::Write;

use aws_config::SdkConfig;
use kinarch_core::aws::tables::{TableInfo, TtlState};
use kinarch_core::read::locate::{Located, TableOwner};
use kinarch_core::setup::{ArchiveStatus, CheckpointsStatus, Setup};
use serde_json::{Value, json};

use crate::cli::values::thousands;
use crate::cli::{StatusArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::print_json;

/// Prints how the stream is archived; fails (exit 1) when it has problems.
pub(crate) async fn run(sdk: &SdkConfig, args: StatusArgs) -> Result<(), Failure> {
    let status = Setup::new(sdk)
        .status(&args.stream, args.archive.table.as_ref())
        .await?;
    match args.output {
        SummaryFormat::Json => print_json(&status_json(&status))?,
        SummaryFormat::Text => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(render(&status).as_bytes())?;
            stdout.flush()?;
        }
    }
    let problems = status.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "the archive of {} is not fully set up: {}",
            status.config.stream,
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}

/// The time index, or what reading a window costs without one.
fn time_index_line(table: &TableInfo) -> String {
    match table.time_index() {
        Some(index) if index.is_active() => format!(
            "{} (ACTIVE): arrival windows are read with a Query per shard",
            index.name
        ),
        Some(index) => format!(
            "{} ({}{}): arrival windows are read with a Scan until it is ACTIVE",
            index.name,
            index.status,
            if index.backfilling {
                ", backfilling"
            } else {
                ""
            }
        ),
        None => "none: arrival windows are read with a Scan of the table \
                 (add one with `kinarch setup STREAM MODE --time-index`)"
            .to_owned(),
    }
}

/// `status -o json`: everything `render` shows, with `healthy` and the `problems`.
pub(crate) fn status_json(status: &ArchiveStatus) -> Value {
    let config = &status.config;
    let problems: Vec<String> = status.problems().iter().map(ToString::to_string).collect();
    let table = status.table.as_ref().map(|table| {
        json!({
            "name": table.name.as_str(),
            "status": table.status,
            "keySchema": table.key_schema.to_string(),
            "fitsMode": table.key_schema.fits(config.mode),
            "billing": table.billing.to_string(),
            "itemCount": table.item_count,
            "ttl": status.table_ttl.as_ref().map(ToString::to_string),
            "archivedStream": match &status.owner {
                TableOwner::Stream(stream) => Some(stream.as_str()),
                _ => None,
            },
            "timeIndex": table.time_index().map(|index| json!({
                "name": index.name,
                "status": index.status,
                "backfilling": index.backfilling,
                "active": index.is_active(),
            })),
        })
    });
    json!({
        "healthy": problems.is_empty(),
        "streamReadable": status.stream.is_some(),
        "problems": problems,
        "stream": config.stream.as_str(),
        "streamArn": status.stream.as_ref().map(|s| s.arn.clone()),
        "streamStatus": status.stream.as_ref().map(|s| s.status.clone()),
        "openShards": status.stream.as_ref().map(|s| s.open_shards),
        "region": status.region,
        "configured": status.configured,
        "mode": config.mode.to_string(),
        "modeFrom": match status.located {
            Located::Tags => "tags",
            _ => "table key schema",
        },
        "ttlSeconds": config.ttl.map(|ttl| ttl.seconds()),
        "overflow": config.overflow.as_ref().map(|target| target.tag_value()),
        "parquet": config.parquet.as_ref().map(|target| json!({
            "target": target.tag_value(),
            "coldAfterDays": match &status.parquet_cold {
                Some(Ok(days)) => json!(days),
                Some(Err(why)) => json!({ "error": why }),
                None => Value::Null,
            },
            "newestFiles": match &status.parquet_newest {
                Some(Ok(files)) => json!(files.iter().map(|file| json!({
                    "shardId": file.key.shard_id,
                    "hour": file.key.hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "lastSequenceNumber": file.key.last.as_str(),
                    "written": file.written.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                })).collect::<Vec<_>>()),
                Some(Err(why)) => json!({ "error": why }),
                None => Value::Null,
            },
        })),
        "tableName": config.table.as_str(),
        "table": table,
        "checkpoints": status.checkpoints.as_ref().map(checkpoints_json),
    })
}

fn checkpoints_json(checkpoints: &CheckpointsStatus) -> Value {
    let shards = match &checkpoints.shards {
        Ok(shards) => json!(
            shards
                .iter()
                .map(|(shard, c)| json!({
                    "shardId": shard,
                    "sequenceNumber": c.sequence_number.as_ref().map(|s| s.as_str()),
                    "finished": c.finished,
                    "updatedAt": c.updated_at,
                }))
                .collect::<Vec<_>>()
        ),
        Err(_) => Value::Null,
    };
    json!({
        "table": checkpoints.table.as_str(),
        "shards": shards,
        "error": checkpoints.shards.as_ref().err(),
        "newestUpdate": checkpoints.newest_update(),
        "secondsSinceNewestUpdate": checkpoints.newest_update().and_then(seconds_since),
        "stale": checkpoints.stale.iter().map(|(shard, c)| json!({
            "shardId": shard,
            "sequenceNumber": c.sequence_number.as_ref().map(|s| s.as_str()),
            "updatedAt": c.updated_at,
        })).collect::<Vec<_>>(),
    })
}

/// The status as aligned `label  value` lines.
pub(crate) fn render(status: &ArchiveStatus) -> String {
    let config = &status.config;
    let stream = &config.stream;
    let mut lines: Vec<(&str, String)> = match (&status.stream, &status.located) {
        (Some(summary), _) => vec![
            (
                "stream",
                format!(
                    "{stream} ({}, {} open shards)",
                    summary.status, summary.open_shards
                ),
            ),
            ("stream ARN", summary.arn.clone()),
        ],
        (None, Located::WithoutStream { reason }) => vec![(
            "stream",
            format!("{stream}: {reason}; the archive is read from its table"),
        )],
        (None, _) => vec![(
            "stream",
            format!("{stream}: not found, or cannot be read with these credentials"),
        )],
    };
    lines.push(("region", status.region.clone()));
    let what = config.mode.kept();
    if status.located != Located::Tags {
        lines.push((
            "mode",
            format!("{} ({what}; from the table's key schema)", config.mode),
        ));
    } else if status.configured {
        lines.push(("mode", format!("{} ({what})", config.mode)));
    } else {
        lines.push((
            "mode",
            format!(
                "not set up: the stream has no StreamArchiveMode tag (the archiver would \
                 assume LATEST); run `kinarch setup {stream} <ALL|LATEST> {}`",
                status.region
            ),
        ));
    }
    lines.push((
        "TTL",
        match config.ttl {
            None if status.located != Located::Tags => {
                "unknown: it is a tag of the stream (the table's own TTL setting is below)"
                    .to_owned()
            }
            Some(ttl) => format!("items expire {} s after archiving", ttl.seconds()),
            None => "none: items are kept".to_owned(),
        },
    ));
    lines.push((
        "overflow",
        match &config.overflow {
            Some(target) => format!("payloads too large for an item are archived in {target}"),
            None if status.located != Located::Tags => {
                "unknown: it is a tag of the stream".to_owned()
            }
            None => {
                "none: payloads too large for an item are not kept (oversize markers)".to_owned()
            }
        },
    ));
    lines.push((
        "Parquet",
        match &config.parquet {
            Some(target) => format!("every record is archived in Parquet files under {target}"),
            None if status.located != Located::Tags => {
                "unknown: it is a tag of the stream".to_owned()
            }
            None => "none (kinarch setup --parquet s3://BUCKET[/PREFIX] adds it)".to_owned(),
        },
    ));
    match &status.parquet_cold {
        Some(Ok(Some(days))) => lines.push((
            "",
            format!("files move to S3 Glacier Instant Retrieval after {days} day(s)"),
        )),
        Some(Ok(None)) => lines.push((
            "",
            "files stay in S3 Standard (kinarch setup --parquet-cold-after DAYS moves them)"
                .to_owned(),
        )),
        Some(Err(why)) => lines.push(("", format!("its lifecycle rules cannot be read: {why}"))),
        None => {}
    }
    match &status.parquet_newest {
        None => {}
        Some(Err(why)) => lines.push(("", format!("its files cannot be listed: {why}"))),
        Some(Ok(files)) if files.is_empty() => {
            lines.push(("", "no file written in the last two days (UTC)".to_owned()))
        }
        Some(Ok(files)) => {
            for file in files {
                let written = match file.written.and_then(seconds_since_time) {
                    Some(seconds) => format!(", written {} ago", age(seconds)),
                    None => String::new(),
                };
                lines.push((
                    "",
                    format!(
                        "{}  newest file: arrival hour {}, up to {}{written}",
                        file.key.shard_id,
                        file.key.hour.format("%Y-%m-%d %H:00Z"),
                        file.key.last
                    ),
                ));
            }
        }
    }
    match &status.table {
        None if !config.mode.has_table() => lines.push(("table", "none (mode NONE)".to_owned())),
        None => lines.push(("table", format!("{} does not exist", config.table))),
        Some(table) => {
            lines.push(("table", format!("{} ({})", table.name, table.status)));
            let fit = if table.key_schema.fits(config.mode) {
                format!("fits {} mode", config.mode)
            } else {
                format!(
                    "DOES NOT FIT {} mode, which needs {}",
                    config.mode,
                    kinarch_core::aws::tables::KeySchema::for_mode(config.mode)
                )
            };
            lines.push(("key schema", format!("{} ({fit})", table.key_schema)));
            lines.push(("billing", table.billing.to_string()));
            lines.push((
                "archive of",
                match &status.owner {
                    TableOwner::Stream(archived) if *archived == config.stream.as_str() => {
                        format!("{archived} (the table's ArchivedStream tag)")
                    }
                    TableOwner::Stream(archived) => {
                        format!("{archived}, NOT {stream} (the table's ArchivedStream tag)")
                    }
                    TableOwner::Untagged => "unknown: the table has no ArchivedStream tag \
                         (`kinarch setup` adds it)"
                        .to_owned(),
                    TableOwner::Unknown => "unknown: the table's tags cannot be read".to_owned(),
                },
            ));
            if let Some(ttl) = &status.table_ttl {
                let mut text = ttl.to_string();
                if config.ttl.is_some() && !ttl.expires_archive_items() {
                    text.push_str(
                        " (the stream has an ArchiveTTL tag, but items will not expire: run \
                         `kinarch setup` again to enable TTL on expireAfter)",
                    );
                } else if matches!(ttl, TtlState::Enabled(a) if a != "expireAfter") {
                    text.push_str(" (kinarch writes expiry times to expireAfter)");
                }
                lines.push(("table TTL", text));
            }
            lines.push(("time index", time_index_line(table)));
            lines.push((
                "items",
                match table.item_count {
                    Some(count) => format!(
                        "about {} (DynamoDB updates this count about every six hours)",
                        thousands(count.max(0) as u64)
                    ),
                    None => "unknown".to_owned(),
                },
            ));
        }
    }
    if let Some(checkpoints) = &status.checkpoints {
        lines.push(("checkpoints", format!("table {}", checkpoints.table)));
        match &checkpoints.shards {
            Err(why) => lines.push(("", format!("cannot be read: {why}"))),
            Ok(shards) => {
                for (shard, c) in shards {
                    let at = match (&c.sequence_number, c.finished) {
                        (_, true) => "finished".to_owned(),
                        (Some(seq), false) => format!("at {seq}"),
                        (None, false) => "opened, nothing archived yet".to_owned(),
                    };
                    lines.push(("", format!("{shard}  {at}  (updated {})", c.updated_at)));
                }
                if let Some(newest) = checkpoints.newest_update() {
                    let behind = match seconds_since(newest) {
                        Some(seconds) => format!(" ({} ago)", age(seconds)),
                        None => String::new(),
                    };
                    lines.push(("newest checkpoint", format!("{newest}{behind}")));
                }
            }
        }
        if !checkpoints.stale.is_empty() {
            lines.push((
                "stale checkpoints",
                format!(
                    "{} speak of an earlier table {} (deleted and created again, or gone): \
                     kinarch archive ignores them and starts those shards at --start-at",
                    checkpoints.stale.len(),
                    config.table
                ),
            ));
        }
    }
    let problems = status.problems();
    if problems.is_empty() && status.stream.is_none() {
        // Healthy as an archive (exit 0): readable, and with no stream there is nothing left
        // to archive, which is what keeping an archive past its stream is for.
        lines.push((
            "health",
            format!(
                "OK as an archive: stream {} cannot be read (gone, or no permission), so \
                 nothing is being archived; its records stay readable (query, scan, reinject \
                 --target STREAM)",
                config.stream
            ),
        ));
    } else if problems.is_empty() {
        lines.push(("health", "OK: fully set up".to_owned()));
    } else {
        lines.push(("health", format!("{} problem(s):", problems.len())));
        for problem in problems {
            lines.push(("", format!("- {problem}")));
        }
    }
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}\n"))
        .collect()
}

/// Seconds from an RFC 3339 time to now (0 for a time ahead of the local clock).
fn seconds_since(time: &str) -> Option<u64> {
    let then = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    seconds_since_time(then.with_timezone(&chrono::Utc))
}

fn seconds_since_time(then: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    Some((chrono::Utc::now() - then).num_seconds().max(0) as u64)
}

/// `42 s`, `5 min`, `3 h 20 min`, `2 days 4 h`: how far behind, for people.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::ArchiveMode;
    use kinarch_core::aws::streams::StreamSummary;
    use kinarch_core::aws::tables::{Billing, KeySchema, TableInfo};
    use kinarch_core::{ArchiveTtl, StreamArchiveConfig, StreamName};

    fn status(configured: bool, table: bool) -> ArchiveStatus {
        let config = StreamArchiveConfig::new(
            StreamName::new("orders").unwrap(),
            ArchiveMode::All,
            ArchiveTtl::from_seconds(3600).ok(),
        );
        ArchiveStatus {
            region: "us-east-1".into(),
            stream: Some(StreamSummary {
                arn: "arn:aws:kinesis:us-east-1:123456789012:stream/orders".into(),
                status: "ACTIVE".into(),
                open_shards: 2,
            }),
            located: Located::Tags,
            configured,
            invalid_tags: Vec::new(),
            checkpoints: None,
            table: table.then(|| TableInfo {
                name: config.table.clone(),
                status: "ACTIVE".into(),
                key_schema: KeySchema::for_mode(ArchiveMode::Latest),
                billing: Billing::OnDemand,
                item_count: Some(12),
                size_bytes: None,
                arn: None,
                indexes: Vec::new(),
                incarnation: Default::default(),
            }),
            table_ttl: table.then_some(TtlState::Disabled),
            owner: TableOwner::Untagged,
            parquet_newest: None,
            parquet_cold: None,
            config,
        }
    }

    #[test]
    fn shows_every_part_of_the_setup() {
        let text = render(&status(true, true));
        for expected in [
            "stream      orders (ACTIVE, 2 open shards)",
            "mode        ALL (every record)",
            "items expire 3600 s after archiving",
            "table       orders-archive-ALL (ACTIVE)",
            "DOES NOT FIT ALL mode",
            "billing     on-demand",
            "table TTL   disabled (the stream has an ArchiveTTL tag",
            "about 12",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }

    #[test]
    fn ages_for_people() {
        assert_eq!(age(42), "42 s");
        assert_eq!(age(300), "5 min");
        assert_eq!(age(3 * 3600 + 20 * 60), "3 h 20 min");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2 days 4 h");
        assert_eq!(seconds_since("2999-01-01T00:00:00Z"), Some(0));
        assert_eq!(seconds_since("not a time"), None);
    }

    #[test]
    fn unconfigured_stream_and_missing_table_say_what_to_do() {
        let text = render(&status(false, false));
        assert!(
            text.contains("kinarch setup orders <ALL|LATEST> us-east-1"),
            "{text}"
        );
        assert!(text.contains("orders-archive-ALL does not exist"), "{text}");
    }
}
