//! `kinarch list`: the archives of a region (see `kinarch_core::setup::list`).

use std::io::Write;

use aws_config::SdkConfig;
use kinarch_core::setup::list::{ArchiveEntry, list_archives};
use serde_json::{Value, json};

use crate::cli::values::thousands;
use crate::cli::{ListArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::print_json;

/// Lists the archive tables with their streams, modes and item counts.
pub(crate) async fn run(sdk: &SdkConfig, args: ListArgs) -> Result<(), Failure> {
    let archives = list_archives(sdk).await?;
    match args.output {
        SummaryFormat::Json => {
            print_json(&Value::Array(archives.iter().map(entry_json).collect()))?
        }
        SummaryFormat::Text => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(render(&archives).as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

fn entry_json(entry: &ArchiveEntry) -> Value {
    json!({
        "table": entry.table.as_str(),
        "mode": entry.mode.to_string(),
        "stream": entry.stream.as_ref().map(|s| s.as_str()),
        "streamExists": entry.stream_exists,
        "itemCount": entry.item_count,
        "parquet": entry.parquet.as_ref().map(ToString::to_string),
    })
}

/// An aligned table: `table  mode  stream  items  parquet`.
fn render(archives: &[ArchiveEntry]) -> String {
    if archives.is_empty() {
        return "no archive tables in this region\n".to_owned();
    }
    let rows: Vec<[String; 5]> = archives
        .iter()
        .map(|entry| {
            let stream = match (&entry.stream, entry.stream_exists) {
                (None, _) => "(not a default table name)".to_owned(),
                (Some(stream), Some(true)) => stream.to_string(),
                (Some(stream), Some(false)) => format!("{stream} (gone)"),
                (Some(stream), None) => format!("{stream} (cannot be read)"),
            };
            [
                entry.table.to_string(),
                entry.mode.to_string(),
                stream,
                entry
                    .item_count
                    .map(|n| format!("about {}", thousands(n.max(0) as u64)))
                    .unwrap_or_else(|| "unknown".into()),
                entry
                    .parquet
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            ]
        })
        .collect();
    let header = ["table", "mode", "stream", "items", "parquet"].map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::{ArchiveMode, StreamName, TableName};

    #[test]
    fn rows_say_whose_archive_and_whether_the_stream_is_gone() {
        let entry = |table: &str, stream: Option<&str>, exists: Option<bool>| ArchiveEntry {
            table: TableName::new(table).unwrap(),
            mode: ArchiveMode::All,
            stream: stream.map(|s| StreamName::new(s).unwrap()),
            stream_exists: exists,
            item_count: Some(12345),
            parquet: None,
        };
        let text = render(&[
            entry("orders-archive-ALL", Some("orders"), Some(true)),
            entry("old-archive-ALL", Some("old"), Some(false)),
            entry("custom", None, None),
        ]);
        assert!(text.starts_with("table "), "{text}");
        assert!(text.contains("old (gone)"), "{text}");
        assert!(text.contains("(not a default table name)"), "{text}");
        assert!(text.contains("about 12,345"), "{text}");
        assert_eq!(render(&[]), "no archive tables in this region\n");
    }
}
