//! Whether an archive table can hold a stream's archive: the one check of its key schema
//! against the mode, and the error every part reports when it cannot (`archive`, `query`,
//! `scan`, `reinject`, the Lambda function and `setup`).

use aws_sdk_dynamodb::Client as DynamoDbClient;

use crate::aws::tables::{KeySchema, TableInfo, describe_table};
use crate::domain::config::{ArchiveMode, StreamArchiveConfig, TAG_TABLE};
use crate::domain::names::StreamName;
use crate::error::Error;

/// The archive table of `config`, once it is known to exist with a key schema that fits
/// the mode: [`Error::TableNotFound`] (naming `kinarch setup`) or
/// [`Error::KeySchemaMismatch`] otherwise. Writes into a misfit would fail for good (or,
/// worse, overwrite each other), and its reads would return records of another layout.
pub async fn checked_archive_table(
    dynamodb: &DynamoDbClient,
    config: &StreamArchiveConfig,
    region: &str,
) -> Result<TableInfo, Error> {
    match describe_table(dynamodb, &config.table).await? {
        None => Err(Error::TableNotFound {
            table: config.table.clone(),
            stream: config.stream.clone(),
            mode: config.mode,
            region: region.to_owned(),
        }),
        Some(info) if !info.key_schema.fits(config.mode) => {
            Err(archive_table_mismatch(&info, config, region))
        }
        Some(info) => Ok(info),
    }
}

/// The error for an archive table whose key schema does not fit the stream's mode, as
/// `archive`, `query`, `scan`, `reinject` and the Lambda function report it (a permanent
/// error: no retry can make the table fit).
pub(crate) fn archive_table_mismatch(
    info: &TableInfo,
    config: &StreamArchiveConfig,
    region: &str,
) -> Error {
    let named_by_tag = config.table != config.mode.default_table_name(&config.stream);
    key_schema_mismatch(info, config.mode, &config.stream, region, named_by_tag)
}

pub(crate) fn key_schema_mismatch(
    info: &TableInfo,
    mode: ArchiveMode,
    stream: &StreamName,
    region: &str,
    named_by_tag: bool,
) -> Error {
    let other_table = if named_by_tag {
        format!("change the stream's {TAG_TABLE} tag to a new table name")
    } else {
        format!("tag the stream with {TAG_TABLE}=<new table name> to archive elsewhere")
    };
    let advice = match info.key_schema.mode() {
        Some(fitting) => format!(
            "the table was made for {fitting} mode. Keep using it with `kinarch setup {stream} \
             {fitting} {region}`, or {other_table}, or delete the table (its records are lost) \
             and run setup again"
        ),
        None => format!(
            "the table was not made by kinarch. Either {other_table}, or delete the table \
             (its records are lost) and run setup again"
        ),
    };
    Error::KeySchemaMismatch {
        table: info.name.clone(),
        mode,
        found: info.key_schema.to_string(),
        expected: KeySchema::for_mode(mode).to_string(),
        advice,
    }
}
