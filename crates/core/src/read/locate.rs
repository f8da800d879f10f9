//! Finding a stream's archive table, also after the stream is gone.
//!
//! An archive is kept to outlive its stream, so reading it must not depend on the stream:
//! the tags say where the archive is while the stream exists, and when it does not (or its
//! tags cannot be read: no Kinesis permission), the table is found by name instead, and its
//! mode is read from its key schema (HASH + RANGE = ALL, HASH only = LATEST, see
//! [`KeySchema::mode`]).
//!
//! The names tried, in order: `--table NAME` when given (it wins over the tags too), else
//! `<stream>-archive-ALL`, `<stream>-archive-LATEST` (kinarch's) and `<stream>-archive-all`,
//! `<stream>-archive-latest` (the original archiver's). One existing table is read; more
//! than one is an error listing them and asking for `--table`.

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;

use crate::aws::error::AwsErrorKind;
use crate::aws::streams::read_configured_stream_config;
use crate::aws::tables::{KeySchema, TableInfo, describe_table, table_tags};
use crate::domain::config::{ArchiveMode, StreamArchiveConfig, TABLE_TAG_STREAM};
use crate::domain::names::{StreamName, TableName};
use crate::error::Error;

/// How the archive table was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// From the stream's tags, as usual.
    Tags,
    /// Named by the caller (`--table`); the mode comes from its key schema.
    Named,
    /// The stream could not be read (`reason`): the table was found by its default name and
    /// its mode comes from its key schema.
    WithoutStream {
        /// Why the tags were not used, e.g. `stream orders was not found in region ...`.
        reason: String,
    },
}

/// The archive tables a stream may have, by name, in the order they are tried.
pub fn candidate_tables(stream: &StreamName) -> Vec<TableName> {
    let mut names: Vec<TableName> = ["ALL", "LATEST", "all", "latest"]
        .into_iter()
        .map(|mode| TableName::new(&format!("{stream}-archive-{mode}")).expect("valid name"))
        .collect();
    names.dedup();
    names
}

/// The configuration of an archive read from `table` alone: its mode from its key schema.
/// A table whose key schema fits neither mode is not an archive table.
pub fn config_from_table(
    stream: &StreamName,
    table: &TableInfo,
) -> Result<StreamArchiveConfig, Error> {
    let mode = table
        .key_schema
        .mode()
        .ok_or_else(|| Error::NotAnArchiveTable {
            table: table.name.clone(),
            found: table.key_schema.to_string(),
            expected: format!(
                "{} (ALL) or {} (LATEST)",
                KeySchema::for_mode(ArchiveMode::All),
                KeySchema::for_mode(ArchiveMode::Latest)
            ),
        })?;
    Ok(StreamArchiveConfig {
        stream: stream.clone(),
        mode,
        ttl: None,
        table: table.name.clone(),
        deaggregate: true,
        overflow: None,
        parquet: None,
    })
}

/// The one table among those that exist, for a stream whose tags could not be read.
pub fn choose_table(
    stream: &StreamName,
    region: &str,
    existing: Vec<TableInfo>,
    why: Error,
) -> Result<TableInfo, Error> {
    let mut existing = existing;
    match existing.len() {
        0 => Err(why),
        1 => Ok(existing.remove(0)),
        _ => Err(Error::AmbiguousArchive {
            stream: stream.clone(),
            region: region.to_owned(),
            tables: existing
                .iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether an error reading the stream's tags means "read the archive without the stream":
/// the stream is gone, or its tags may not be read with these credentials.
pub(crate) fn stream_unreadable(err: &Error) -> bool {
    matches!(err, Error::StreamNotFound { .. })
        || err.aws_kind() == Some(AwsErrorKind::AccessDenied)
}

/// Which stream an archive table says it archives (its [`TABLE_TAG_STREAM`] tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOwner {
    /// The tag names this stream.
    Stream(String),
    /// The table has no such tag: made by the original archiver, by hand, or by a kinarch
    /// before the tag.
    Untagged,
    /// The table does not exist, or its tags could not be read (no permission): unknown.
    Unknown,
}

impl TableOwner {
    /// Whose archive `tags` (a table's) say the table is.
    pub fn from_tags(tags: &[(String, String)]) -> Self {
        match tags.iter().find(|(key, _)| key == TABLE_TAG_STREAM) {
            Some((_, stream)) => TableOwner::Stream(stream.clone()),
            None => TableOwner::Untagged,
        }
    }

    /// Refuses a table tagged as another stream's archive, unless `force`.
    pub fn check(&self, table: &TableName, stream: &StreamName, force: bool) -> Result<(), Error> {
        match self {
            TableOwner::Stream(archived) if archived != stream.as_str() && !force => {
                Err(Error::ArchiveOfAnotherStream {
                    table: table.clone(),
                    stream: stream.clone(),
                    archived: archived.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// The owner of `table` by its tags; [`TableOwner::Unknown`] when there is no such table or
/// its tags may not be read with these credentials (the check is a safeguard, not a
/// permission every reader must have).
pub async fn table_owner(
    dynamodb: &DynamoDbClient,
    table: Option<&TableInfo>,
) -> Result<TableOwner, Error> {
    let Some(arn) = table.and_then(|t| t.arn.as_deref()) else {
        return Ok(TableOwner::Unknown);
    };
    match table_tags(dynamodb, arn).await {
        Ok(tags) => Ok(TableOwner::from_tags(&tags)),
        Err(err) if err.aws_kind() == Some(AwsErrorKind::AccessDenied) => {
            tracing::debug!(error = %err, "the archive table's tags cannot be read; its owner is not checked");
            Ok(TableOwner::Unknown)
        }
        Err(err) => Err(err),
    }
}

/// An archive found by [`locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundArchive {
    /// Its configuration (the stream's, or read from the table).
    pub config: StreamArchiveConfig,
    /// How it was found.
    pub located: Located,
    /// The stream its table's tag names.
    pub owner: TableOwner,
}

/// Finds the archive of `stream`: `table` when given, else from the stream's tags, else (the
/// stream is gone or unreadable) by the default names; then refuses a table tagged as the
/// archive of another stream, unless `force` (see [`TableOwner::check`]). See the module
/// documentation.
pub async fn locate(
    kinesis: &KinesisClient,
    dynamodb: &DynamoDbClient,
    region: &str,
    stream: &StreamName,
    table: Option<&TableName>,
    force: bool,
) -> Result<FoundArchive, Error> {
    let (config, located, info) = find(kinesis, dynamodb, region, stream, table).await?;
    let info = match info {
        Some(info) => Some(info),
        None => describe_table(dynamodb, &config.table).await?,
    };
    let owner = table_owner(dynamodb, info.as_ref()).await?;
    owner.check(&config.table, stream, force)?;
    Ok(FoundArchive {
        config,
        located,
        owner,
    })
}

/// [`locate`] without the owner check; the table's description when it was read.
async fn find(
    kinesis: &KinesisClient,
    dynamodb: &DynamoDbClient,
    region: &str,
    stream: &StreamName,
    table: Option<&TableName>,
) -> Result<(StreamArchiveConfig, Located, Option<TableInfo>), Error> {
    if let Some(table) = table {
        let info = describe_table(dynamodb, table)
            .await?
            .ok_or_else(|| Error::NoArchiveTable {
                stream: stream.clone(),
                region: region.to_owned(),
                looked_for: table.to_string(),
            })?;
        return Ok((
            config_from_table(stream, &info)?,
            Located::Named,
            Some(info),
        ));
    }
    let why = match read_configured_stream_config(kinesis, stream).await {
        Ok(config) => return Ok((config, Located::Tags, None)),
        Err(err) if stream_unreadable(&err) => err,
        Err(err) => return Err(err),
    };
    let mut existing = Vec::new();
    for name in candidate_tables(stream) {
        if let Some(info) = describe_table(dynamodb, &name).await? {
            existing.push(info);
        }
    }
    let reason = why.to_string();
    let info = choose_table(stream, region, existing, why)?;
    Ok((
        config_from_table(stream, &info)?,
        Located::WithoutStream { reason },
        Some(info),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tables::Billing;

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn table(name: &str, schema: KeySchema) -> TableInfo {
        TableInfo {
            name: TableName::new(name).unwrap(),
            status: "ACTIVE".into(),
            key_schema: schema,
            billing: Billing::OnDemand,
            item_count: None,
            size_bytes: None,
            arn: None,
            indexes: Vec::new(),
            incarnation: Default::default(),
        }
    }

    fn gone() -> Error {
        Error::StreamNotFound {
            stream: stream(),
            region: "r".into(),
        }
    }

    #[test]
    fn kinarch_names_come_before_the_original_archivers() {
        let names: Vec<String> = candidate_tables(&stream())
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "orders-archive-ALL",
                "orders-archive-LATEST",
                "orders-archive-all",
                "orders-archive-latest"
            ]
        );
    }

    #[test]
    fn the_mode_comes_from_the_key_schema() {
        let all = table("orders-archive-all", KeySchema::for_mode(ArchiveMode::All));
        let config = config_from_table(&stream(), &all).unwrap();
        assert_eq!(
            (config.mode, config.table.as_str()),
            (ArchiveMode::All, "orders-archive-all")
        );
        let latest = table("t-x", KeySchema::for_mode(ArchiveMode::Latest));
        assert_eq!(
            config_from_table(&stream(), &latest).unwrap().mode,
            ArchiveMode::Latest
        );
        let other = table("t-y", KeySchema(Vec::new()));
        assert!(matches!(
            config_from_table(&stream(), &other),
            Err(Error::NotAnArchiveTable { .. })
        ));
    }

    #[test]
    fn one_table_is_read_none_keeps_the_reason_several_ask_for_a_name() {
        let all = table("orders-archive-ALL", KeySchema::for_mode(ArchiveMode::All));
        let old = table(
            "orders-archive-latest",
            KeySchema::for_mode(ArchiveMode::Latest),
        );
        assert_eq!(
            choose_table(&stream(), "r", vec![all.clone()], gone()).unwrap(),
            all
        );
        assert!(matches!(
            choose_table(&stream(), "r", vec![], gone()),
            Err(Error::StreamNotFound { .. })
        ));
        let err = choose_table(&stream(), "r", vec![all, old], gone()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("orders-archive-ALL, orders-archive-latest") && text.contains("--table"),
            "{text}"
        );
    }

    #[test]
    fn only_a_missing_or_unreadable_stream_falls_back_to_table_names() {
        assert!(stream_unreadable(&gone()));
        assert!(stream_unreadable(&Error::aws(
            "Kinesis.ListTagsForStream",
            AwsErrorKind::AccessDenied,
            "no"
        )));
        assert!(!stream_unreadable(&Error::aws(
            "Kinesis.ListTagsForStream",
            AwsErrorKind::Throttled,
            "slow"
        )));
        assert!(!stream_unreadable(&Error::StreamNotConfigured {
            stream: stream(),
            region: "r".into()
        }));
    }
}
