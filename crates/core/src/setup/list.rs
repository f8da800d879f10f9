//! `kinarch list`: the archives of a region. A table is an archive when its key schema is
//! the archive layout (HASH `partitionKey` S, and for ALL mode RANGE `sequenceNumber` S);
//! its stream is known from its name when it is `<stream>-archive-<MODE>`, the default
//! name (a table named by an `ArchiveTableName` tag does not say whose it is). Checkpoint
//! tables (`...-checkpoints`, HASH `shardId`) do not have the layout, so they are left out.
//! For a table whose stream exists, the stream's tags say whether it also has a Parquet
//! archive. A stream in mode NONE has no table, so it is not listed: finding it would take
//! a ListTagsForStream of every stream of the region (5 calls a second), which `status`
//! does for one stream instead.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;

use crate::aws::streams::{describe_stream_summary, list_stream_tags};
use crate::aws::tables::{describe_table, list_tables};
use crate::domain::config::{ArchiveMode, ArchiveTags};
use crate::domain::names::{StreamName, TableName};
use crate::domain::parquet::ParquetTarget;
use crate::error::Error;
use crate::read::locate::stream_unreadable;

/// One archive table of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The table.
    pub table: TableName,
    /// Its mode, from its key schema.
    pub mode: ArchiveMode,
    /// The stream its name says it archives, if it has a default name.
    pub stream: Option<StreamName>,
    /// Whether that stream exists (`None` when there is no such name, or it could not be
    /// read).
    pub stream_exists: Option<bool>,
    /// DynamoDB's approximate item count.
    pub item_count: Option<i64>,
    /// The stream's Parquet archive (its `ArchiveParquet` tag), when the stream exists and
    /// has one.
    pub parquet: Option<ParquetTarget>,
}

/// The stream of a table named `<stream>-archive-<MODE>` (`ALL`, `LATEST`, or the original
/// tool's `all`, `latest`).
pub fn stream_of_table(table: &TableName) -> Option<StreamName> {
    [
        "-archive-ALL",
        "-archive-LATEST",
        "-archive-all",
        "-archive-latest",
    ]
    .iter()
    .find_map(|suffix| table.as_str().strip_suffix(suffix))
    .and_then(|stream| StreamName::new(stream).ok())
}

/// Every archive table of the region of `sdk`, by table name.
pub async fn list_archives(sdk: &SdkConfig) -> Result<Vec<ArchiveEntry>, Error> {
    let dynamodb = DynamoDbClient::new(sdk);
    let kinesis = KinesisClient::new(sdk);
    let mut archives = Vec::new();
    for table in list_tables(&dynamodb).await? {
        let Some(info) = describe_table(&dynamodb, &table).await? else {
            continue; // deleted since it was listed
        };
        let Some(mode) = info.key_schema.mode() else {
            continue;
        };
        let stream = stream_of_table(&table);
        let stream_exists = match &stream {
            None => None,
            Some(stream) => match describe_stream_summary(&kinesis, stream).await {
                Ok(_) => Some(true),
                Err(Error::StreamNotFound { .. }) => Some(false),
                Err(error) if stream_unreadable(&error) => None,
                Err(error) => return Err(error),
            },
        };
        // Only what the tags say for sure: an unreadable or invalid tag shows nothing here
        // (`status` names it).
        let parquet =
            match (&stream, stream_exists) {
                (Some(stream), Some(true)) => list_stream_tags(&kinesis, stream)
                    .await
                    .ok()
                    .and_then(|tags| {
                        let tags = ArchiveTags::parse(
                            stream,
                            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        );
                        tags.parquet.and_then(|tag| tag.parsed.ok())
                    }),
                _ => None,
            };
        archives.push(ArchiveEntry {
            table,
            mode,
            stream,
            stream_exists,
            item_count: info.item_count,
            parquet,
        });
    }
    archives.sort_by(|a, b| a.table.as_str().cmp(b.table.as_str()));
    Ok(archives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_names_name_their_stream() {
        let stream = |name: &str| stream_of_table(&TableName::new(name).unwrap());
        assert_eq!(stream("orders-archive-ALL").unwrap().as_str(), "orders");
        assert_eq!(stream("a.b-archive-latest").unwrap().as_str(), "a.b");
        assert_eq!(stream("orders-archive-ALL-checkpoints"), None);
        assert_eq!(stream("custom"), None);
        assert_eq!(
            stream("-archive-ALL"),
            None,
            "no stream name before the suffix"
        );
    }
}
