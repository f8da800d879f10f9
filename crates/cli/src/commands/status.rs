//! `kinarch status <stream>`.

use std::io::Write;

use aws_config::SdkConfig;
use kinarch_core::ArchiveMode;
use kinarch_core::aws::tables::TtlState;
use kinarch_core::read::locate::Located;
use kinarch_core::setup::{ArchiveStatus, Setup};

use crate::cli::StatusArgs;
use crate::failure::Failure;

/// Prints how the stream is archived.
pub(crate) async fn run(sdk: &SdkConfig, args: StatusArgs) -> Result<(), Failure> {
    let status = Setup::new(sdk)
        .status(&args.stream, args.table.as_ref())
        .await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(render(&status).as_bytes())?;
    stdout.flush()?;
    Ok(())
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
    let what = match config.mode {
        ArchiveMode::All => "every record",
        ArchiveMode::Latest => "the newest record of each partition key",
    };
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
    match &status.table {
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
            lines.push((
                "items",
                match table.item_count {
                    Some(count) => {
                        format!("about {count} (DynamoDB updates this count about every six hours)")
                    }
                    None => "unknown".to_owned(),
                },
            ));
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

#[cfg(test)]
mod tests {
    use super::*;
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
            table: table.then(|| TableInfo {
                name: config.table.clone(),
                status: "ACTIVE".into(),
                key_schema: KeySchema::for_mode(ArchiveMode::Latest),
                billing: Billing::OnDemand,
                item_count: Some(12),
                size_bytes: None,
                arn: None,
            }),
            table_ttl: table.then_some(TtlState::Disabled),
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
    fn unconfigured_stream_and_missing_table_say_what_to_do() {
        let text = render(&status(false, false));
        assert!(
            text.contains("kinarch setup orders <ALL|LATEST> us-east-1"),
            "{text}"
        );
        assert!(text.contains("orders-archive-ALL does not exist"), "{text}");
    }
}
