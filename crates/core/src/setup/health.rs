//! Whether an archive is fully set up and usable (`kinarch status` as a health check): the
//! pure rules over what [`Setup::status`](super::Setup::status) observed.
//!
//! A status lists every problem it finds rather than stopping at the first, so that one run
//! shows everything to fix: a stream whose mode tag is invalid still has its table, key
//! schema and TTL reported, as far as the other tags allow.

use std::fmt;

use crate::aws::tables::{KeySchema, TtlState};
use crate::domain::config::{
    ArchiveMode, ArchiveTags, StreamArchiveConfig, TABLE_TAG_STREAM, TAG_MODE, TAG_PARQUET, TAG_TTL,
};
use crate::domain::names::{StreamName, TableName};
use crate::read::locate::{Located, TableOwner};

use super::ArchiveStatus;

/// Something that keeps an archive from being fully set up and usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The stream has no `StreamArchiveMode` tag.
    NotSetUp {
        /// The stream.
        stream: StreamName,
    },
    /// A kinarch tag has a value the archiver refuses (the message names tag and value).
    InvalidTag(String),
    /// Mode NONE (Parquet only) without an `ArchiveParquet` tag: nothing is archived.
    ParquetMissing,
    /// The archive table does not exist.
    TableMissing {
        /// The table the configuration names.
        table: TableName,
    },
    /// The table's key schema does not fit the mode: writes would fail.
    KeySchemaMismatch {
        /// The table.
        table: TableName,
        /// Its key schema.
        found: KeySchema,
        /// The mode's.
        mode: ArchiveMode,
    },
    /// The table exists but is not ACTIVE (being created, updated or deleted).
    TableNotActive {
        /// The table.
        table: TableName,
        /// Its status.
        status: String,
    },
    /// The stream has an `ArchiveTTL` tag but the table's TTL does not expire
    /// `expireAfter`: items are kept for ever.
    TtlNotEnabled {
        /// The table.
        table: TableName,
    },
    /// The table's `ArchivedStream` tag names another stream: it is that stream's archive.
    ArchiveOfAnotherStream {
        /// The table.
        table: TableName,
        /// The stream its tag names.
        archived: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotSetUp { stream } => write!(
                f,
                "stream {stream} is not set up (no {TAG_MODE} tag): run `kinarch setup {stream} <ALL|LATEST>`"
            ),
            Problem::InvalidTag(message) => write!(f, "{message}"),
            Problem::ParquetMissing => write!(
                f,
                "mode NONE archives to Parquet files only, but the stream has no \
                 {TAG_PARQUET} tag: nothing is archived; run `kinarch setup <STREAM> NONE \
                 --parquet s3://BUCKET[/PREFIX]`"
            ),
            Problem::TableMissing { table } => write!(
                f,
                "table {table} does not exist: run `kinarch setup` to create it"
            ),
            Problem::KeySchemaMismatch { table, found, mode } => write!(
                f,
                "table {table} has key schema {found}, which does not fit {mode} mode ({} needed)",
                KeySchema::for_mode(*mode)
            ),
            Problem::TableNotActive { table, status } => {
                write!(f, "table {table} is {status}, not ACTIVE")
            }
            Problem::TtlNotEnabled { table } => write!(
                f,
                "the stream has an {TAG_TTL} tag but table {table} does not expire expireAfter: \
                 run `kinarch setup` again to enable TTL"
            ),
            Problem::ArchiveOfAnotherStream { table, archived } => write!(
                f,
                "table {table} is the archive of stream {archived} (its {TABLE_TAG_STREAM} \
                 tag), not of this stream"
            ),
        }
    }
}

/// The problems of a status, in the order a person would fix them.
pub fn problems(status: &ArchiveStatus) -> Vec<Problem> {
    let config = &status.config;
    let mut found: Vec<Problem> = status
        .invalid_tags
        .iter()
        .cloned()
        .map(Problem::InvalidTag)
        .collect();
    if !status.configured && status.invalid_tags.is_empty() {
        found.insert(
            0,
            Problem::NotSetUp {
                stream: config.stream.clone(),
            },
        );
    }
    if !config.mode.has_table() {
        if config.parquet.is_none() {
            found.push(Problem::ParquetMissing);
        }
        return found;
    }
    match &status.table {
        None => found.push(Problem::TableMissing {
            table: config.table.clone(),
        }),
        Some(table) => {
            if let TableOwner::Stream(archived) = &status.owner
                && archived != config.stream.as_str()
            {
                found.push(Problem::ArchiveOfAnotherStream {
                    table: table.name.clone(),
                    archived: archived.clone(),
                });
            }
            if !table.key_schema.fits(config.mode) {
                found.push(Problem::KeySchemaMismatch {
                    table: table.name.clone(),
                    found: table.key_schema.clone(),
                    mode: config.mode,
                });
            }
            if !table.is_active() {
                found.push(Problem::TableNotActive {
                    table: table.name.clone(),
                    status: table.status.clone(),
                });
            }
            // The TTL is a tag: it is known only when the tags were read.
            let ttl_off = !status
                .table_ttl
                .as_ref()
                .is_some_and(TtlState::expires_archive_items);
            if status.located == Located::Tags && config.ttl.is_some() && ttl_off {
                found.push(Problem::TtlNotEnabled {
                    table: table.name.clone(),
                });
            }
        }
    }
    found
}

/// The configuration of `tags`, as far as the valid ones allow, and the messages of the
/// invalid ones (see [`ArchiveTags::config_despite_invalid`]).
pub fn config_despite_invalid_tags(
    stream: &StreamName,
    tags: &[(String, String)],
) -> (StreamArchiveConfig, Vec<String>) {
    ArchiveTags::parse(stream, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .config_despite_invalid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tables::{Billing, TableInfo};

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn status(tags_: &[(&str, &str)], table: Option<KeySchema>, ttl: TtlState) -> ArchiveStatus {
        let tags_ = tags(tags_);
        let (config, invalid_tags) = config_despite_invalid_tags(&stream(), &tags_);
        ArchiveStatus {
            region: "us-east-1".into(),
            stream: None,
            located: Located::Tags,
            configured: tags_.iter().any(|(k, _)| k == TAG_MODE),
            invalid_tags,
            table: table.map(|key_schema| TableInfo {
                name: config.table.clone(),
                status: "ACTIVE".into(),
                key_schema,
                billing: Billing::OnDemand,
                item_count: Some(1),
                size_bytes: None,
                arn: None,
                indexes: Vec::new(),
                incarnation: Default::default(),
            }),
            table_ttl: Some(ttl),
            checkpoints: None,
            owner: TableOwner::Untagged,
            parquet_newest: None,
            parquet_cold: None,
            config,
        }
    }

    #[test]
    fn a_table_tagged_as_another_streams_archive_is_a_problem() {
        let mut s = status(
            &[(TAG_MODE, "ALL")],
            Some(KeySchema::for_mode(ArchiveMode::All)),
            TtlState::Disabled,
        );
        s.owner = TableOwner::Stream("prices".into());
        let problems: Vec<String> = s.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "table orders-archive-ALL is the archive of stream prices (its ArchivedStream tag), \
              not of this stream"
            ]
        );
        s.owner = TableOwner::Stream("orders".into());
        assert!(s.problems().is_empty());
    }

    #[test]
    fn a_fully_set_up_archive_has_no_problem() {
        let s = status(
            &[
                ("StreamArchiveMode", "ALL"),
                ("ArchiveTTL", "expireSeconds=60"),
            ],
            Some(KeySchema::for_mode(ArchiveMode::All)),
            TtlState::Enabled("expireAfter".into()),
        );
        assert_eq!(problems(&s), []);
    }

    #[test]
    fn every_problem_is_listed_not_only_the_first() {
        let s = status(
            &[("StreamArchiveMode", "EVERYTHING"), ("ArchiveTTL", "1h")],
            None,
            TtlState::Disabled,
        );
        let found = problems(&s);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].to_string().contains("EVERYTHING"), "{}", found[0]);
        assert!(found[1].to_string().contains("1h"), "{}", found[1]);
        assert!(matches!(found[2], Problem::TableMissing { .. }));
        // Without the bad mode tag the archiver's default (LATEST) names the table.
        assert_eq!(s.config.table.as_str(), "orders-archive-LATEST");
    }

    #[test]
    fn not_set_up_wrong_key_schema_and_ttl_off() {
        let s = status(
            &[],
            Some(KeySchema::for_mode(ArchiveMode::All)),
            TtlState::Disabled,
        );
        let found = problems(&s);
        assert!(matches!(found[0], Problem::NotSetUp { .. }), "{found:?}");
        assert!(
            matches!(found[1], Problem::KeySchemaMismatch { .. }),
            "{found:?}"
        );
        assert!(found[0].to_string().contains("kinarch setup orders"));
        let s = status(
            &[
                ("StreamArchiveMode", "ALL"),
                ("ArchiveTTL", "expireSeconds=60"),
            ],
            Some(KeySchema::for_mode(ArchiveMode::All)),
            TtlState::Disabled,
        );
        assert!(matches!(problems(&s)[..], [Problem::TtlNotEnabled { .. }]));
    }

    /// Defect 1 of issue 23: an invalid overflow tag cost `status` the valid mode and table
    /// tags (its own list of kinarch's tags had no ArchiveOverflow).
    #[test]
    fn an_invalid_overflow_tag_keeps_the_valid_mode_and_table() {
        let (config, invalid) = config_despite_invalid_tags(
            &stream(),
            &tags(&[
                ("StreamArchiveMode", "ALL"),
                ("ArchiveTableName", "kept-elsewhere"),
                ("ArchiveOverflow", "ftp://nowhere"),
            ]),
        );
        assert_eq!(config.mode, ArchiveMode::All);
        assert_eq!(config.table.as_str(), "kept-elsewhere");
        assert_eq!(config.overflow, None);
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(invalid[0].contains("tag ArchiveOverflow"), "{invalid:?}");
    }

    #[test]
    fn valid_tags_are_kept_when_another_is_invalid() {
        let (config, invalid) = config_despite_invalid_tags(
            &stream(),
            &tags(&[
                ("StreamArchiveMode", "ALL"),
                ("ArchiveTTL", "1h"),
                ("team", "x"),
            ]),
        );
        assert_eq!(config.mode, ArchiveMode::All);
        assert_eq!(config.ttl, None);
        assert_eq!(invalid.len(), 1);
        assert!(invalid[0].contains("ArchiveTTL"), "{invalid:?}");
    }
}
