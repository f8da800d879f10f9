//! How a stream is archived: its mode, TTL and table, read from the stream's tags.
//!
//! The tags are the configuration so that one Lambda function can serve many streams and
//! each stream's owner decides how it is kept (`kinarch setup` writes them). A tag that is
//! present but wrong is an error: archiving with a silently assumed default could put the
//! records in a table nobody reads, or drop history that LATEST mode throws away.

use std::fmt;
use std::str::FromStr;

use crate::domain::names::{NameError, StreamName, TableName};
use crate::domain::overflow::OverflowTarget;

/// Tag holding the archive mode (`ALL` or `LATEST`).
pub const TAG_MODE: &str = "StreamArchiveMode";
/// Tag holding the TTL (`expireSeconds=N`).
pub const TAG_TTL: &str = "ArchiveTTL";
/// Optional tag naming the table, for archives made by other tools (the original Node
/// archiver created `<stream>-archive-all` / `-latest`).
pub const TAG_TABLE: &str = "ArchiveTableName";
/// Optional tag: `false` archives KPL containers as the Kinesis records they are, for users
/// who want the raw records; `true` or absent de-aggregates them (as KCL does), see
/// [`crate::domain::kpl`].
pub const TAG_DEAGGREGATE: &str = "ArchiveDeaggregate";
/// Optional tag `s3://BUCKET/PREFIX`: payloads too large for a DynamoDB item are archived
/// there, the item pointing at them (see [`crate::domain::overflow`]); without it such a
/// record is archived as an oversize marker, its payload left out.
pub const TAG_OVERFLOW: &str = "ArchiveOverflow";
/// Tag of the archive *table* (not the stream) naming the stream it archives, written by
/// `kinarch setup`: a reader given another stream's table (`--table`, or a stream tag
/// naming it) would read and replay that stream's records as this one's, so it refuses
/// such a table unless forced.
pub const TABLE_TAG_STREAM: &str = "ArchivedStream";

/// Which records of a stream the archive keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveMode {
    /// Every record; the table is keyed by `partitionKey` + `sequenceNumber`.
    All,
    /// Only the newest record (highest sequence number) of each partition key; the table
    /// is keyed by `partitionKey`.
    Latest,
}

impl ArchiveMode {
    /// The mode as written in tags and table names: `ALL` or `LATEST`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveMode::All => "ALL",
            ArchiveMode::Latest => "LATEST",
        }
    }

    /// The table kinarch creates for a stream in this mode: `<stream>-archive-<MODE>`, the
    /// mode in upper case (`orders-archive-ALL`).
    pub fn default_table_name(self, stream: &StreamName) -> TableName {
        table_name_for(stream, self.as_str())
    }
}

/// `<stream>-archive-<mode>`. A stream name is at most 128 characters of the table
/// alphabet and a mode text is ALL or LATEST in some case, so the name is valid.
fn table_name_for(stream: &StreamName, mode_text: &str) -> TableName {
    TableName::new(&format!("{stream}-archive-{mode_text}"))
        .expect("a valid stream name and mode give a valid table name")
}

/// The table a stream's tags point at when no `ArchiveTableName` tag names one:
/// `<stream>-archive-<StreamArchiveMode as written>`, so `all` (as the original Node
/// archiver's setup wrote it) means `orders-archive-all` and `ALL` (as `kinarch setup`
/// writes it) means `orders-archive-ALL`, exactly as the original archiver named them. The
/// mode itself is read case-insensitively. Without a mode tag: `<stream>-archive-LATEST`.
pub fn tagged_table_name(stream: &StreamName, mode_tag: Option<&str>) -> TableName {
    match mode_tag {
        Some(text) => table_name_for(stream, text.trim()),
        None => ArchiveMode::Latest.default_table_name(stream),
    }
}

/// An archive mode that is neither ALL nor LATEST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid archive mode {0:?}: use ALL (every record) or LATEST (newest record per partition key)"
)]
pub struct ArchiveModeError(pub String);

impl FromStr for ArchiveMode {
    type Err = ArchiveModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ALL" => Ok(ArchiveMode::All),
            "LATEST" => Ok(ArchiveMode::Latest),
            _ => Err(ArchiveModeError(s.chars().take(100).collect())),
        }
    }
}

impl fmt::Display for ArchiveMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long archived items live: they get `expireAfter` = archive time + this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArchiveTtl {
    expire_seconds: u64,
}

impl ArchiveTtl {
    /// The longest TTL accepted: 100 years. Larger values are surely typos, and keep
    /// `expireAfter` far from any integer limit.
    pub const MAX_SECONDS: u64 = 100 * 365 * 24 * 3600;

    /// A TTL of `seconds` (1 ..= [`Self::MAX_SECONDS`]).
    pub fn from_seconds(seconds: u64) -> Result<Self, TtlError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self {
                expire_seconds: seconds,
            })
        } else {
            Err(TtlError(seconds.to_string()))
        }
    }

    /// Parses the tag value `expireSeconds=N`.
    pub fn parse_tag(value: &str) -> Result<Self, TtlError> {
        let bad = || TtlError(value.chars().take(100).collect());
        let (key, number) = value.trim().split_once('=').ok_or_else(bad)?;
        if !key.trim().eq_ignore_ascii_case("expireSeconds") {
            return Err(bad());
        }
        let seconds: u64 = number.trim().parse().map_err(|_| bad())?;
        Self::from_seconds(seconds).map_err(|_| bad())
    }

    /// Seconds from archiving to expiry.
    pub fn seconds(self) -> u64 {
        self.expire_seconds
    }

    /// The tag value, `expireSeconds=N`.
    pub fn tag_value(self) -> String {
        format!("expireSeconds={}", self.expire_seconds)
    }
}

/// A TTL value that is not `expireSeconds=N` with N in 1..=100 years.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid TTL {0:?}: expected expireSeconds=N with N a whole number of seconds from 1 to {max}",
    max = ArchiveTtl::MAX_SECONDS
)]
pub struct TtlError(pub String);

/// Everything the archiver needs to know about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamArchiveConfig {
    /// The stream.
    pub stream: StreamName,
    /// Which records are kept.
    pub mode: ArchiveMode,
    /// Expiry of archived items, if any.
    pub ttl: Option<ArchiveTtl>,
    /// The archive table.
    pub table: TableName,
    /// Whether KPL containers are de-aggregated into their user records (tag
    /// [`TAG_DEAGGREGATE`], default on).
    pub deaggregate: bool,
    /// Where payloads too large for an item go (tag [`TAG_OVERFLOW`]); `None`: they are
    /// archived as oversize markers.
    pub overflow: Option<OverflowTarget>,
}

/// A stream tag with a value kinarch cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stream {stream}: tag {tag} has an invalid value: {reason}. Fix the tag, or run `kinarch setup {stream} <ALL|LATEST> <region>` to set it again"
)]
pub struct ConfigError {
    /// The stream whose tags were read.
    pub stream: StreamName,
    /// The tag that is wrong.
    pub tag: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl StreamArchiveConfig {
    /// A configuration with the default table name for `mode`.
    pub fn new(stream: StreamName, mode: ArchiveMode, ttl: Option<ArchiveTtl>) -> Self {
        let table = mode.default_table_name(&stream);
        Self {
            stream,
            mode,
            ttl,
            table,
            deaggregate: true,
            overflow: None,
        }
    }

    /// Reads the configuration from a stream's tags. A missing `StreamArchiveMode` means
    /// LATEST, as in the original archiver; a missing `ArchiveTTL` means no expiry; the
    /// table is `ArchiveTableName`, else [`tagged_table_name`].
    pub fn from_tags<'a>(
        stream: &StreamName,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let (mut mode, mut ttl, mut table, mut deaggregate, mut overflow) =
            (None, None, None, None, None);
        for (key, value) in tags {
            match key {
                TAG_MODE => mode = Some(value),
                TAG_TTL => ttl = Some(value),
                TAG_TABLE => table = Some(value),
                TAG_DEAGGREGATE => deaggregate = Some(value),
                TAG_OVERFLOW => overflow = Some(value),
                _ => {}
            }
        }
        let error = |tag, reason: String| ConfigError {
            stream: stream.clone(),
            tag,
            reason,
        };
        let mode_tag = mode;
        let mode = match mode {
            None => ArchiveMode::Latest,
            Some(value) => value
                .parse::<ArchiveMode>()
                .map_err(|e| error(TAG_MODE, e.to_string()))?,
        };
        let ttl = ttl
            .map(ArchiveTtl::parse_tag)
            .transpose()
            .map_err(|e| error(TAG_TTL, e.to_string()))?;
        let table = match table {
            None => tagged_table_name(stream, mode_tag),
            Some(value) => TableName::new(value.trim())
                .map_err(|e: NameError| error(TAG_TABLE, e.to_string()))?,
        };
        let deaggregate = match deaggregate.map(str::trim) {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(error(
                    TAG_DEAGGREGATE,
                    format!("{v:?} is neither true nor false"),
                ));
            }
        };
        let overflow = overflow
            .map(OverflowTarget::parse)
            .transpose()
            .map_err(|e| error(TAG_OVERFLOW, format!("{e} (expected s3://BUCKET/PREFIX)")))?;
        Ok(Self {
            stream: stream.clone(),
            mode,
            ttl,
            table,
            deaggregate,
            overflow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    #[test]
    fn modes_parse_case_insensitively() {
        assert_eq!("all".parse::<ArchiveMode>(), Ok(ArchiveMode::All));
        assert_eq!("ALL".parse::<ArchiveMode>(), Ok(ArchiveMode::All));
        assert_eq!("Latest".parse::<ArchiveMode>(), Ok(ArchiveMode::Latest));
        let err = "everything".parse::<ArchiveMode>().unwrap_err().to_string();
        assert!(err.contains("\"everything\"") && err.contains("ALL") && err.contains("LATEST"));
    }

    #[test]
    fn default_table_names_use_upper_case_mode() {
        assert_eq!(
            ArchiveMode::All.default_table_name(&stream()).as_str(),
            "orders-archive-ALL"
        );
        assert_eq!(
            ArchiveMode::Latest.default_table_name(&stream()).as_str(),
            "orders-archive-LATEST"
        );
        let longest = StreamName::new(&"s".repeat(128)).unwrap();
        assert!(
            ArchiveMode::Latest
                .default_table_name(&longest)
                .as_str()
                .len()
                <= 255
        );
    }

    #[test]
    fn ttl_tag_values() {
        assert_eq!(
            ArchiveTtl::parse_tag("expireSeconds=3600")
                .unwrap()
                .seconds(),
            3600
        );
        assert_eq!(
            ArchiveTtl::parse_tag(" expireSeconds = 60 ")
                .unwrap()
                .seconds(),
            60
        );
        for bad in [
            "",
            "3600",
            "expireSeconds=",
            "expireSeconds=-1",
            "expireSeconds=0",
            "expireSeconds=1h",
            "ttl=5",
            "expireSeconds=99999999999999",
        ] {
            assert!(ArchiveTtl::parse_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ArchiveTtl::from_seconds(86400).unwrap().tag_value(),
            "expireSeconds=86400"
        );
    }

    #[test]
    fn config_from_tags() {
        let cfg = StreamArchiveConfig::from_tags(
            &stream(),
            [
                ("StreamArchiveMode", "all"),
                ("ArchiveTTL", "expireSeconds=60"),
                ("Team", "x"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.mode, ArchiveMode::All);
        assert_eq!(cfg.ttl.unwrap().seconds(), 60);
        // The mode tag as written names the table, as the original archiver did.
        assert_eq!(cfg.table.as_str(), "orders-archive-all");
        let upper = StreamArchiveConfig::from_tags(&stream(), [("StreamArchiveMode", " ALL ")]);
        assert_eq!(upper.unwrap().table.as_str(), "orders-archive-ALL");
        let latest = StreamArchiveConfig::from_tags(&stream(), [("StreamArchiveMode", "latest")]);
        let latest = latest.unwrap();
        assert_eq!(
            (latest.mode, latest.table.as_str()),
            (ArchiveMode::Latest, "orders-archive-latest")
        );
    }

    #[test]
    fn absent_mode_is_latest_like_the_original() {
        let cfg = StreamArchiveConfig::from_tags(&stream(), []).unwrap();
        assert_eq!(cfg.mode, ArchiveMode::Latest);
        assert_eq!(cfg.ttl, None);
        assert_eq!(cfg.table.as_str(), "orders-archive-LATEST");
    }

    #[test]
    fn table_name_tag_overrides_for_original_archives() {
        let cfg = StreamArchiveConfig::from_tags(
            &stream(),
            [
                ("StreamArchiveMode", "ALL"),
                ("ArchiveTableName", "orders-archive-all"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.table.as_str(), "orders-archive-all");
    }

    #[test]
    fn invalid_tags_are_errors_naming_tag_and_value() {
        let err =
            StreamArchiveConfig::from_tags(&stream(), [("StreamArchiveMode", "SOME")]).unwrap_err();
        assert_eq!(err.tag, TAG_MODE);
        let text = err.to_string();
        assert!(
            text.contains("StreamArchiveMode")
                && text.contains("\"SOME\"")
                && text.contains("kinarch setup"),
            "{text}"
        );

        let err =
            StreamArchiveConfig::from_tags(&stream(), [("ArchiveTTL", "forever")]).unwrap_err();
        assert_eq!(err.tag, TAG_TTL);
        assert!(err.to_string().contains("\"forever\""));

        let err =
            StreamArchiveConfig::from_tags(&stream(), [("ArchiveTableName", "x")]).unwrap_err();
        assert_eq!(err.tag, TAG_TABLE);

        let err = StreamArchiveConfig::from_tags(&stream(), [("ArchiveOverflow", "s3://No_Such")])
            .unwrap_err();
        assert_eq!(err.tag, TAG_OVERFLOW);
        let text = err.to_string();
        assert!(
            text.contains("\"No_Such\"") && text.contains("s3://BUCKET/PREFIX"),
            "{text}"
        );
    }

    #[test]
    fn overflow_tag_names_bucket_and_prefix() {
        let cfg = StreamArchiveConfig::from_tags(&stream(), []).unwrap();
        assert_eq!(cfg.overflow, None);
        let cfg = StreamArchiveConfig::from_tags(
            &stream(),
            [("ArchiveOverflow", " s3://big-records/kinarch ")],
        )
        .unwrap();
        let target = cfg.overflow.unwrap();
        assert_eq!(
            (target.bucket().as_str(), target.prefix()),
            ("big-records", "kinarch")
        );
    }
}
