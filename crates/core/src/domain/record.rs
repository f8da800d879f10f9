//! A Kinesis record as kinarch archives, reads and replays it, and the text forms of its
//! times in the table contract (the item codec itself is [`crate::aws::item`]).

use chrono::{DateTime, Utc};

use crate::domain::kpl::{RecordPosition, range_key};
use crate::domain::overflow::StoredPayload;
use crate::domain::sequence::SequenceNumber;

/// The `lastUpdate` format of the table contract.
pub(crate) const LAST_UPDATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A Kinesis record, as archived or as it is about to be.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRecord {
    /// The partition key the producer gave.
    pub partition_key: String,
    /// Position in the shard.
    pub sequence_number: SequenceNumber,
    /// The shard the record came from (`shardId-000000000000`).
    pub shard_id: String,
    /// When Kinesis accepted the record, in epoch seconds (milliseconds in the fraction).
    pub approximate_arrival_timestamp: f64,
    /// The record bytes; empty when [`Self::oversize_bytes`] is set, and for a payload
    /// archived in S3 ([`Self::stored`]) until the reader fetched it. [`Self::payload`] tells
    /// these apart.
    pub data: Vec<u8>,
    /// Archive time as stored (`YYYY-MM-DD HH:MM:SS` UTC); `None` before archiving.
    pub last_update: Option<String>,
    /// Expiry time in epoch seconds, when the archive has a TTL.
    pub expire_after: Option<i64>,
    /// `Some(n)`: the payload had `n` bytes, too many for one DynamoDB item, so only the
    /// record's metadata is archived.
    pub oversize_bytes: Option<u64>,
    /// For a user record de-aggregated from a KPL container: its index in the container
    /// (the container's sequence number is [`Self::sequence_number`]). `None` for a plain
    /// record. See [`crate::domain::kpl`].
    pub sub_sequence_number: Option<u64>,
    /// The user record's explicit hash key, when its producer gave one (KPL containers only:
    /// a plain record's explicit hash key is not delivered by Kinesis).
    pub explicit_hash_key: Option<String>,
    /// `Some`: the payload was too large for an item and is archived in S3 there
    /// (`recordLocation`, `recordSize`, see [`crate::domain::overflow`]). Kept after the
    /// reader fetched it into [`Self::data`], so output can still show where it lives.
    pub stored: Option<StoredPayload>,
}

/// What an archived record holds of its payload; see [`ArchiveRecord::payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The bytes (from the item, or fetched from S3).
    Bytes(&'a [u8]),
    /// Archived in S3 and not fetched (read with fetching off): the location to resolve.
    Stored(&'a StoredPayload),
    /// Too large for an item and archived without it (no overflow bucket was set): only its
    /// size is known.
    Oversize(u64),
}

impl ArchiveRecord {
    /// A plain Kinesis record as it arrives from the stream, before archiving: nothing of
    /// the archive's own (`lastUpdate`, expiry, oversize marker) and no KPL container fields.
    pub fn received(
        partition_key: String,
        sequence_number: SequenceNumber,
        shard_id: String,
        approximate_arrival_timestamp: f64,
        data: Vec<u8>,
    ) -> Self {
        Self {
            partition_key,
            sequence_number,
            shard_id,
            approximate_arrival_timestamp,
            data,
            last_update: None,
            expire_after: None,
            oversize_bytes: None,
            sub_sequence_number: None,
            explicit_hash_key: None,
            stored: None,
        }
    }

    /// The payload as bytes, as a location in S3 not fetched yet, or as the size of a
    /// payload that was not archived. A stored payload counts as fetched once [`Self::data`]
    /// holds its `recordSize` bytes (an overflowed payload is never empty: only records
    /// above the item limit overflow).
    pub fn payload(&self) -> Payload<'_> {
        match (&self.stored, self.oversize_bytes) {
            (Some(stored), _) if self.data.len() as u64 != stored.size => Payload::Stored(stored),
            (None, Some(size)) => Payload::Oversize(size),
            _ => Payload::Bytes(&self.data),
        }
    }

    /// Where the record sits in its shard: sequence number, then sub-sequence number.
    pub fn position(&self) -> RecordPosition<'_> {
        RecordPosition {
            sequence: &self.sequence_number,
            sub_sequence: self.sub_sequence_number,
        }
    }

    /// The `sequenceNumber` value of this record in an ALL table (its RANGE key).
    pub fn range_key(&self) -> String {
        range_key(&self.sequence_number, self.sub_sequence_number)
    }
}

/// Formats an archive time as the contract's `lastUpdate`.
pub fn format_last_update(time: DateTime<Utc>) -> String {
    time.format(LAST_UPDATE_FORMAT).to_string()
}

/// Parses a `lastUpdate` value back into a time.
pub fn parse_last_update(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text, LAST_UPDATE_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Formats epoch seconds as a DynamoDB number, fraction kept: Rust prints the shortest
/// text that reads back as the same `f64`, as JavaScript does, so a timestamp from an
/// event (`1545084650.987`) is stored exactly as the original archiver stored it.
pub fn format_epoch_seconds(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{seconds}")
    } else {
        "0".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::overflow::ObjectLocation;

    #[test]
    fn payload_tells_bytes_stored_and_oversize_apart() {
        let mut r = ArchiveRecord::received(
            "k".into(),
            SequenceNumber::parse("1").unwrap(),
            "shardId-000000000000".into(),
            1.0,
            b"abc".to_vec(),
        );
        assert_eq!(r.payload(), Payload::Bytes(b"abc"));
        let stored = StoredPayload {
            location: ObjectLocation::parse("s3://bucket/k/1").unwrap(),
            size: 3,
        };
        r.stored = Some(stored.clone());
        assert_eq!(r.payload(), Payload::Bytes(b"abc"), "fetched");
        r.data.clear();
        assert_eq!(r.payload(), Payload::Stored(&stored), "not fetched");
        r.stored = None;
        r.oversize_bytes = Some(500_000);
        assert_eq!(r.payload(), Payload::Oversize(500_000));
    }
}
