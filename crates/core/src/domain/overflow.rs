//! The claim check of records too large for a DynamoDB item: where their payload is kept in
//! S3, and how an item points at it.
//!
//! A stream tagged `ArchiveOverflow=s3://BUCKET/PREFIX` ([`OverflowTarget`]) has each such
//! payload written to `s3://BUCKET/<PREFIX>/<stream>/<shardId>/<range key>` ([`object_key`])
//! before its item, which then carries `recordLocation` (that URL) and `recordSize` instead of
//! `recordData`. The key is a function of the record's position only, so a record delivered
//! twice overwrites the same object with the same bytes: nothing to clean up, nothing to
//! deduplicate. The range key (`<sequence>.<20-digit sub-sequence>` for a user record of a KPL
//! container, see [`crate::domain::kpl::range_key`]) keeps user records of one container
//! apart.

use std::fmt;

use crate::domain::names::StreamName;
use crate::domain::record::ArchiveRecord;

/// What a bucket given to `kinarch setup` is for: errors about it name the option that sets
/// it, so one check serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketUse {
    /// Payloads too large for an item (`--overflow-bucket`, tag `ArchiveOverflow`).
    Overflow,
    /// The Parquet archive (`--parquet`, tag `ArchiveParquet`).
    Parquet,
}

impl BucketUse {
    /// The bucket as people call it: `overflow bucket`, `Parquet bucket`.
    pub fn name(self) -> &'static str {
        match self {
            BucketUse::Overflow => "overflow bucket",
            BucketUse::Parquet => "Parquet bucket",
        }
    }

    /// The options that set or remove it.
    pub fn options(self) -> &'static str {
        match self {
            BucketUse::Overflow => "--overflow-bucket (or --no-overflow)",
            BucketUse::Parquet => "--parquet (or --no-parquet)",
        }
    }
}

/// An S3 bucket name, checked against S3's naming rules for new buckets: 3 to 63 characters
/// of lower-case letters, digits, `.` and `-`, starting and ending with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BucketName(String);

impl BucketName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, LocationError> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
        let edge =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if (3..=63).contains(&name.len())
            && name.chars().all(valid_char)
            && edge(name.chars().next())
            && edge(name.chars().last())
            && !name.contains("..")
        {
            Ok(Self(name.to_owned()))
        } else {
            Err(LocationError(format!(
                "{:?} is not a valid S3 bucket name: 3 to 63 characters of lower-case letters, \
                 digits, '.' and '-', starting and ending with a letter or digit",
                name.chars().take(100).collect::<String>()
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An S3 location that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(pub String);

/// Where a stream's overflowed payloads go: a bucket and a key prefix (the value of the tag
/// [`crate::domain::config::TAG_OVERFLOW`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OverflowTarget {
    bucket: BucketName,
    /// Without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
}

impl OverflowTarget {
    /// Parses `s3://BUCKET/PREFIX` (the tag's form) or `BUCKET/PREFIX` (as typed after
    /// `--overflow-bucket`); the prefix is optional, and slashes around it are dropped so
    /// that `s3://b/p/` and `s3://b/p` are one target.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let text = text.trim();
        let rest = text.strip_prefix("s3://").unwrap_or(text);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket = BucketName::new(bucket)?;
        let prefix = prefix.trim_matches('/');
        if prefix.contains("//") || prefix.chars().any(char::is_control) || prefix.len() > 512 {
            return Err(LocationError(format!(
                "prefix {prefix:?} of s3://{bucket}/ is not usable: no empty path segments \
                 (//), no control characters, at most 512 bytes"
            )));
        }
        Ok(Self {
            bucket,
            prefix: prefix.to_owned(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    /// The key prefix, without slashes around it; empty for the bucket's root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tag value and display form, `s3://BUCKET/PREFIX` (`s3://BUCKET` without prefix).
    pub fn tag_value(&self) -> String {
        self.to_string()
    }

    /// The key of `record`'s payload object; see [`object_key`].
    pub fn location(&self, stream: &StreamName, record: &ArchiveRecord) -> ObjectLocation {
        ObjectLocation {
            bucket: self.bucket.clone(),
            key: object_key(&self.prefix, stream, record),
        }
    }

    /// A key under this target's prefix (`<prefix>/<name>`), for the objects setup writes
    /// to check that the bucket is writable.
    pub fn key_for(&self, name: &str) -> String {
        join(&self.prefix, name)
    }
}

impl fmt::Display for OverflowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

impl fmt::Debug for OverflowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match prefix {
        "" => rest.to_owned(),
        prefix => format!("{prefix}/{rest}"),
    }
}

/// `<prefix>/<stream>/<shardId>/<range key>`: one object per archived record, named by its
/// position alone (see the module documentation for why).
pub fn object_key(prefix: &str, stream: &StreamName, record: &ArchiveRecord) -> String {
    join(
        prefix,
        &format!("{stream}/{}/{}", record.shard_id, record.range_key()),
    )
}

/// One object in S3: `s3://BUCKET/KEY`, the `recordLocation` of an overflowed item.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectLocation {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: String,
}

impl ObjectLocation {
    /// Parses `s3://BUCKET/KEY` (an item's `recordLocation`, maybe written by another tool);
    /// the key must not be empty.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let bad = || {
            LocationError(format!(
                "{:?} is not an S3 object location (s3://BUCKET/KEY)",
                text.chars().take(200).collect::<String>()
            ))
        };
        let rest = text.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
        if key.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            bucket: BucketName::new(bucket)?,
            key: key.to_owned(),
        })
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl fmt::Debug for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A payload archived in S3 rather than in its item: where, and how many bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    /// The object (`recordLocation`).
    pub location: ObjectLocation,
    /// The payload's size in bytes (`recordSize`).
    pub size: u64,
}

/// Whole days, rounded up, for an S3 lifecycle rule expiring objects at least `seconds`
/// after they were written (lifecycle rules count days; expiring a payload before its item
/// would leave an item pointing at nothing).
pub fn lifecycle_days(seconds: u64) -> u64 {
    seconds.div_ceil(24 * 3600).max(1)
}

/// The lifecycle rule that expires one stream's payloads with their items: its id in the
/// bucket's lifecycle configuration, and the key prefix it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryRule {
    /// `kinarch-<stream>`: the rule setup owns; every other rule of the bucket is left
    /// as it is.
    pub id: String,
    /// `<prefix>/<stream>/`.
    pub prefix: String,
}

impl ExpiryRule {
    /// The rule of `stream`'s payloads under `target`.
    pub fn of(target: &OverflowTarget, stream: &StreamName) -> Self {
        Self {
            id: format!("kinarch-{stream}"),
            prefix: target.key_for(&format!("{stream}/")),
        }
    }
}

/// What to do with a stream's expiry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryChange {
    /// It is as it should be.
    Keep,
    /// Write it with this many days.
    Set(u64),
    /// Remove it.
    Remove,
}

/// The expiry rule's change, from its days now (`None`: no rule) and the days the TTL asks
/// for (`None`: items never expire). Payloads must outlive their items, never the reverse:
/// an item archived under a longer TTL still points at its object, so the days never
/// shrink (a shorter TTL keeps the longer rule; objects then outlive their items, which
/// costs storage, not data); without a TTL the rule goes, since new items never expire.
pub fn expiry_change(current: Option<u64>, wanted: Option<u64>) -> ExpiryChange {
    match (current, wanted) {
        (None, None) => ExpiryChange::Keep,
        (Some(_), None) => ExpiryChange::Remove,
        (Some(now), Some(days)) if now >= days => ExpiryChange::Keep,
        (_, Some(days)) => ExpiryChange::Set(days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sequence::SequenceNumber;

    fn record(sub: Option<u64>) -> ArchiveRecord {
        let mut r = ArchiveRecord::received(
            "k".into(),
            SequenceNumber::parse("4959").unwrap(),
            "shardId-000000000002".into(),
            1.0,
            vec![],
        );
        r.sub_sequence_number = sub;
        r
    }

    #[test]
    fn targets_parse_from_tag_or_cli_form() {
        let t = OverflowTarget::parse("s3://my-bucket/archive/big/").unwrap();
        assert_eq!(
            (t.bucket().as_str(), t.prefix()),
            ("my-bucket", "archive/big")
        );
        assert_eq!(t.tag_value(), "s3://my-bucket/archive/big");
        assert_eq!(OverflowTarget::parse("my-bucket/archive/big").unwrap(), t);
        let root = OverflowTarget::parse("my-bucket").unwrap();
        assert_eq!(
            (root.prefix(), root.tag_value().as_str()),
            ("", "s3://my-bucket")
        );
        for bad in [
            "",
            "s3://",
            "My_Bucket/x",
            "ab",
            "-bucket",
            "bucket-",
            "a..b",
            "b/x//y",
        ] {
            assert!(OverflowTarget::parse(bad).is_err(), "{bad}");
        }
        let message = OverflowTarget::parse("Bad_Bucket").unwrap_err().to_string();
        assert!(
            message.contains("\"Bad_Bucket\"") && message.contains("3 to 63"),
            "{message}"
        );
    }

    #[test]
    fn object_keys_are_the_records_position_under_the_prefix() {
        let stream = StreamName::new("orders").unwrap();
        let t = OverflowTarget::parse("s3://b-1/p").unwrap();
        assert_eq!(
            t.location(&stream, &record(None)).to_string(),
            "s3://b-1/p/orders/shardId-000000000002/4959"
        );
        assert_eq!(
            t.location(&stream, &record(Some(3))).key,
            "p/orders/shardId-000000000002/4959.00000000000000000003"
        );
        let root = OverflowTarget::parse("b-1").unwrap();
        assert_eq!(
            root.location(&stream, &record(None)).key,
            "orders/shardId-000000000002/4959"
        );
        assert_eq!(t.key_for(".check"), "p/.check");
    }

    #[test]
    fn locations_round_trip_and_bad_ones_are_named() {
        let text = "s3://b-1/p/orders/shardId-000000000002/4959";
        assert_eq!(ObjectLocation::parse(text).unwrap().to_string(), text);
        for bad in ["b-1/p", "s3://b-1", "s3://b-1/", "http://b-1/k"] {
            let err = ObjectLocation::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("s3://BUCKET/KEY") || err.contains("bucket"),
                "{err}"
            );
        }
    }

    #[test]
    fn expiry_rules_never_shrink_and_go_without_a_ttl() {
        assert_eq!(expiry_change(None, Some(3)), ExpiryChange::Set(3));
        assert_eq!(expiry_change(Some(2), Some(3)), ExpiryChange::Set(3));
        assert_eq!(expiry_change(Some(3), Some(3)), ExpiryChange::Keep);
        assert_eq!(expiry_change(Some(5), Some(3)), ExpiryChange::Keep);
        assert_eq!(expiry_change(Some(5), None), ExpiryChange::Remove);
        assert_eq!(expiry_change(None, None), ExpiryChange::Keep);
        let rule = ExpiryRule::of(
            &OverflowTarget::parse("b-1/p").unwrap(),
            &StreamName::new("orders").unwrap(),
        );
        assert_eq!(
            (rule.id.as_str(), rule.prefix.as_str()),
            ("kinarch-orders", "p/orders/")
        );
    }

    #[test]
    fn lifecycle_days_round_up() {
        assert_eq!(lifecycle_days(1), 1);
        assert_eq!(lifecycle_days(86400), 1);
        assert_eq!(lifecycle_days(86401), 2);
    }
}
