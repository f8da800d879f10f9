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
use crate::domain::parquet::ParquetTarget;

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
/// Optional tag `s3://BUCKET/PREFIX`: every record is also archived in Parquet files there
/// (see [`crate::domain::parquet`]); with mode `NONE` only there.
pub const TAG_PARQUET: &str = "ArchiveParquet";
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
    /// No table: every record is archived in Parquet files only (the stream's
    /// [`TAG_PARQUET`] tag says where).
    None,
}

impl ArchiveMode {
    /// The mode as written in tags and table names: `ALL`, `LATEST` or `NONE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveMode::All => "ALL",
            ArchiveMode::Latest => "LATEST",
            ArchiveMode::None => "NONE",
        }
    }

    /// What the mode keeps, for people: `every record`, ...
    pub fn kept(self) -> &'static str {
        match self {
            ArchiveMode::All => "every record",
            ArchiveMode::Latest => "the newest record of each partition key",
            ArchiveMode::None => "no table: every record in Parquet files only",
        }
    }

    /// Whether the mode keeps a DynamoDB table (ALL, LATEST; not NONE).
    pub fn has_table(self) -> bool {
        self != ArchiveMode::None
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
    "invalid archive mode {0:?}: use ALL (every record), LATEST (newest record per partition key) or NONE (Parquet files only)"
)]
pub struct ArchiveModeError(pub String);

impl FromStr for ArchiveMode {
    type Err = ArchiveModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ALL" => Ok(ArchiveMode::All),
            "LATEST" => Ok(ArchiveMode::Latest),
            "NONE" => Ok(ArchiveMode::None),
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
    /// Where every record is also archived as Parquet files (tag [`TAG_PARQUET`], see
    /// [`crate::domain::parquet`]); `None`: the table only.
    pub parquet: Option<ParquetTarget>,
}

/// A stream tag with a value kinarch cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stream {stream}: tag {tag} has an invalid value: {reason}. Fix the tag, or run `kinarch setup {stream} <ALL|LATEST|NONE> <region>` to set it again"
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
            parquet: None,
        }
    }

    /// Reads the configuration from a stream's tags, strictly (see [`ArchiveTags::config`]).
    pub fn from_tags<'a>(
        stream: &StreamName,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        ArchiveTags::parse(stream, tags).config()
    }

    /// Where records are archived, for people: `table orders-archive-ALL`, `table
    /// orders-archive-ALL and Parquet files under s3://b/p`, `Parquet files under s3://b/p`.
    pub fn destination(&self) -> String {
        match (self.mode.has_table(), &self.parquet) {
            (true, None) => format!("table {}", self.table),
            (true, Some(target)) => {
                format!("table {} and Parquet files under {target}", self.table)
            }
            (false, Some(target)) => format!("Parquet files under {target}"),
            (false, None) => "nowhere (mode NONE without a Parquet archive)".to_owned(),
        }
    }
}

/// Every stream tag kinarch reads, in the order their errors are reported.
pub const ARCHIVE_TAGS: [&str; 6] = [
    TAG_MODE,
    TAG_TTL,
    TAG_TABLE,
    TAG_DEAGGREGATE,
    TAG_OVERFLOW,
    TAG_PARQUET,
];

/// One kinarch tag as found: its text and what it means (or why it means nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagValue<T> {
    /// The value as written.
    pub text: String,
    /// The value parsed, or why it cannot be.
    pub parsed: Result<T, ConfigError>,
}

/// A stream's kinarch tags, each parsed on its own: the one reader of the tags. The
/// archiver's view is [`ArchiveTags::config`] (strict: an invalid tag is an error), `status`'s
/// [`ArchiveTags::config_despite_invalid`] (each invalid tag named and left out, the valid
/// ones kept), `setup`'s the tags one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTags {
    stream: StreamName,
    /// [`TAG_MODE`].
    pub mode: Option<TagValue<ArchiveMode>>,
    /// [`TAG_TTL`].
    pub ttl: Option<TagValue<ArchiveTtl>>,
    /// [`TAG_TABLE`].
    pub table: Option<TagValue<TableName>>,
    /// [`TAG_DEAGGREGATE`].
    pub deaggregate: Option<TagValue<bool>>,
    /// [`TAG_OVERFLOW`].
    pub overflow: Option<TagValue<OverflowTarget>>,
    /// [`TAG_PARQUET`].
    pub parquet: Option<TagValue<ParquetTarget>>,
}

impl ArchiveTags {
    /// Parses the kinarch tags among `tags` (others are ignored).
    pub fn parse<'a>(
        stream: &StreamName,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        fn tag_value<T>(
            stream: &StreamName,
            tag: &'static str,
            text: &str,
            parsed: Result<T, String>,
        ) -> Option<TagValue<T>> {
            Some(TagValue {
                text: text.to_owned(),
                parsed: parsed.map_err(|reason| ConfigError {
                    stream: stream.clone(),
                    tag,
                    reason,
                }),
            })
        }
        let mut parsed = Self {
            stream: stream.clone(),
            mode: None,
            ttl: None,
            table: None,
            deaggregate: None,
            overflow: None,
            parquet: None,
        };
        for (key, text) in tags {
            match key {
                TAG_MODE => {
                    parsed.mode = tag_value(
                        stream,
                        TAG_MODE,
                        text,
                        text.parse().map_err(|e: ArchiveModeError| e.to_string()),
                    )
                }
                TAG_TTL => {
                    parsed.ttl = tag_value(
                        stream,
                        TAG_TTL,
                        text,
                        ArchiveTtl::parse_tag(text).map_err(|e| e.to_string()),
                    )
                }
                TAG_TABLE => {
                    parsed.table = tag_value(
                        stream,
                        TAG_TABLE,
                        text,
                        TableName::new(text.trim()).map_err(|e: NameError| e.to_string()),
                    )
                }
                TAG_DEAGGREGATE => {
                    let v = text.trim();
                    let meaning = if v.eq_ignore_ascii_case("true") {
                        Ok(true)
                    } else if v.eq_ignore_ascii_case("false") {
                        Ok(false)
                    } else {
                        Err(format!("{v:?} is neither true nor false"))
                    };
                    parsed.deaggregate = tag_value(stream, TAG_DEAGGREGATE, text, meaning)
                }
                TAG_OVERFLOW => {
                    parsed.overflow = tag_value(
                        stream,
                        TAG_OVERFLOW,
                        text,
                        OverflowTarget::parse(text)
                            .map_err(|e| format!("{e} (expected s3://BUCKET/PREFIX)")),
                    )
                }
                TAG_PARQUET => {
                    parsed.parquet = tag_value(
                        stream,
                        TAG_PARQUET,
                        text,
                        ParquetTarget::parse(text)
                            .map_err(|e| format!("{e} (expected s3://BUCKET/PREFIX)")),
                    )
                }
                _ => {}
            }
        }
        parsed
    }

    /// Whether the stream has a `StreamArchiveMode` tag (was set up).
    pub fn configured(&self) -> bool {
        self.mode.is_some()
    }

    /// The errors of the invalid tags, in [`ARCHIVE_TAGS`] order.
    pub fn errors(&self) -> Vec<&ConfigError> {
        fn error<T>(tag: &Option<TagValue<T>>) -> Option<&ConfigError> {
            tag.as_ref().and_then(|t| t.parsed.as_ref().err())
        }
        [
            error(&self.mode),
            error(&self.ttl),
            error(&self.table),
            error(&self.deaggregate),
            error(&self.overflow),
            error(&self.parquet),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The configuration the archiver uses: a missing `StreamArchiveMode` means LATEST, as
    /// in the original archiver; a missing `ArchiveTTL` means no expiry; the table is
    /// `ArchiveTableName`, else [`tagged_table_name`]. The first invalid tag is the error.
    pub fn config(&self) -> Result<StreamArchiveConfig, ConfigError> {
        if let Some(error) = self.errors().first() {
            return Err((*error).clone());
        }
        let config = self.config_despite_invalid().0;
        // Mode NONE keeps no table: without its Parquet archive nothing would be kept, and
        // a record counted as archived would be lost.
        if !config.mode.has_table() && config.parquet.is_none() {
            return Err(ConfigError {
                stream: self.stream.clone(),
                tag: TAG_MODE,
                reason: format!(
                    "NONE keeps every record in Parquet files only, and the stream has no \
                     {TAG_PARQUET} tag saying where (nothing would be archived); add it with \
                     `kinarch setup {} NONE --parquet s3://BUCKET[/PREFIX]`",
                    self.stream
                ),
            });
        }
        Ok(config)
    }

    /// The configuration as far as the valid tags go, and the message of each invalid one
    /// (left out: the archiver's default takes its place), for `status`, which shows
    /// everything that is known.
    pub fn config_despite_invalid(&self) -> (StreamArchiveConfig, Vec<String>) {
        fn valid<T: Clone>(tag: &Option<TagValue<T>>) -> Option<T> {
            tag.as_ref().and_then(|t| t.parsed.as_ref().ok().cloned())
        }
        let mode = valid(&self.mode);
        // The table is named after the mode tag as written, when it is valid.
        let mode_text = mode.and(self.mode.as_ref().map(|t| t.text.as_str()));
        let config = StreamArchiveConfig {
            stream: self.stream.clone(),
            mode: mode.unwrap_or(ArchiveMode::Latest),
            ttl: valid(&self.ttl),
            table: valid(&self.table).unwrap_or_else(|| tagged_table_name(&self.stream, mode_text)),
            deaggregate: valid(&self.deaggregate).unwrap_or(true),
            overflow: valid(&self.overflow),
            parquet: valid(&self.parquet),
        };
        let invalid = self.errors().into_iter().map(ToString::to_string).collect();
        (config, invalid)
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

    #[test]
    fn mode_none_without_its_parquet_archive_is_refused() {
        let stream = StreamName::new("clicks").unwrap();
        let err = StreamArchiveConfig::from_tags(&stream, [(TAG_MODE, "NONE")]).unwrap_err();
        assert_eq!(err.tag, TAG_MODE);
        assert!(err.to_string().contains("--parquet"), "{err}");
        let config = StreamArchiveConfig::from_tags(
            &stream,
            [(TAG_MODE, "none"), (TAG_PARQUET, "s3://history/kinarch")],
        )
        .unwrap();
        assert_eq!(config.mode, ArchiveMode::None);
        assert_eq!(config.parquet.unwrap().to_string(), "s3://history/kinarch");
    }
}
