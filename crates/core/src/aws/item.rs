//! The item codec: an [`ArchiveRecord`] as a DynamoDB item of the table contract, and back.
//!
//! The item layout is a public contract shared with the original Node archiver and with
//! anyone who reads the tables directly, so names and types are fixed:
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `partitionKey` | S | the record's partition key (table HASH key) |
//! | `sequenceNumber` | S | the record's sequence number (RANGE key of ALL tables) |
//! | `lastUpdate` | S | archive time, UTC, `YYYY-MM-DD HH:MM:SS` |
//! | `recordData` | S | standard base64 of the record bytes |
//! | `approximateArrivalTimestamp` | N | epoch seconds, fraction kept |
//! | `shardId` | S | the shard the record was read from |
//! | `expireAfter` | N | archive time + TTL seconds (only with a TTL) |
//!
//! User records de-aggregated from a KPL container (see [`crate::domain::kpl`]) add
//! `subSequenceNumber` N (their index in the container) and, when they have one,
//! `explicitHashKey` S; in ALL tables their `sequenceNumber` is
//! `<container sequence number>.<sub-sequence number, 20 digits>`
//! ([`crate::domain::kpl::range_key`]), in LATEST tables the container's sequence number.
//! Plain records have neither attribute and their items are exactly as before.
//!
//! kinarch adds attributes only for records too large for an item (see
//! [`ITEM_SIZE_LIMIT`]), with `recordData` left out: when the stream has an overflow bucket
//! ([`crate::domain::overflow`]), `recordLocation` S (`s3://BUCKET/KEY`, where the payload
//! is) and `recordSize` N (payload bytes); otherwise the oversize marker, `oversize` BOOL
//! true and `recordSize` N.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use chrono::{DateTime, Utc};

use crate::domain::config::ArchiveTtl;
use crate::domain::kpl::split_range_key;
use crate::domain::overflow::{ObjectLocation, StoredPayload};
use crate::domain::record::{ArchiveRecord, format_epoch_seconds, format_last_update};
use crate::domain::sequence::SequenceNumber;

/// Attribute names of the table contract.
pub mod attr {
    /// S, HASH key.
    pub const PARTITION_KEY: &str = "partitionKey";
    /// S, RANGE key of ALL tables.
    pub const SEQUENCE_NUMBER: &str = "sequenceNumber";
    /// S, archive time `YYYY-MM-DD HH:MM:SS` UTC.
    pub const LAST_UPDATE: &str = "lastUpdate";
    /// S, base64 payload.
    pub const RECORD_DATA: &str = "recordData";
    /// N, epoch seconds.
    pub const APPROXIMATE_ARRIVAL_TIMESTAMP: &str = "approximateArrivalTimestamp";
    /// S, shard id.
    pub const SHARD_ID: &str = "shardId";
    /// N, epoch seconds at which DynamoDB TTL may delete the item.
    pub const EXPIRE_AFTER: &str = "expireAfter";
    /// BOOL, kinarch only: the payload was too large and is not stored.
    pub const OVERSIZE: &str = "oversize";
    /// N, kinarch only: payload size in bytes of an oversize or overflowed record.
    pub const RECORD_SIZE: &str = "recordSize";
    /// S, kinarch only: `s3://BUCKET/KEY` of an overflowed record's payload.
    pub const RECORD_LOCATION: &str = "recordLocation";
    /// N, de-aggregated user records only: index in their KPL container.
    pub const SUB_SEQUENCE_NUMBER: &str = "subSequenceNumber";
    /// S, de-aggregated user records only, when they have one: the explicit hash key.
    pub const EXPLICIT_HASH_KEY: &str = "explicitHashKey";
}

/// DynamoDB's maximum item size, 400 KB, counted as DynamoDB counts it.
pub const ITEM_SIZE_LIMIT: usize = 400 * 1024;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// An item built for writing, and whether its payload had to be left out.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedItem {
    /// The item to write.
    pub item: Item,
    /// True when the payload did not fit and `recordData` was replaced by `recordSize`.
    pub oversize: bool,
}

/// An item that does not follow the table contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("archived item {key} does not follow the table contract: {problem}")]
pub struct ItemError {
    /// `partitionKey`/`sequenceNumber` of the item, as far as they could be read.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// Size DynamoDB charges for a number: never more than its text plus one byte (DynamoDB
/// counts one byte per two significant digits plus one). We count the upper bound so an
/// item we consider small enough is never refused.
fn number_size(text: &str) -> usize {
    text.len() + 1
}

/// The size DynamoDB charges an item against its 400 KB limit, counted as kinarch counts it:
/// attribute names plus values in UTF-8 bytes, numbers at their upper bound (so an item
/// kinarch considers small enough is never refused).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => number_size(n),
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    AttributeValue::B(b) => b.as_ref().len(),
                    // Not produced by kinarch; count generously.
                    _ => ITEM_SIZE_LIMIT,
                }
        })
        .sum()
}

/// Turns the oversize marker of [`ArchiveRecord::to_item`] into the claim check: the payload is
/// stored at `stored.location` (`recordLocation`), `recordSize` stays.
pub fn claim_check(item: &mut Item, stored: &StoredPayload) {
    item.remove(attr::OVERSIZE);
    item.insert(
        attr::RECORD_LOCATION.into(),
        AttributeValue::S(stored.location.to_string()),
    );
    item.insert(
        attr::RECORD_SIZE.into(),
        AttributeValue::N(stored.size.to_string()),
    );
}

/// Whether `data_len` payload bytes, as base64 `recordData`, fit beside `metadata`.
fn fits(metadata: &Item, data_len: usize) -> bool {
    let data_size = attr::RECORD_DATA.len() + data_len.div_ceil(3) * 4;
    item_size(metadata) + data_size <= ITEM_SIZE_LIMIT
}

/// Lenient base64 for reading: items written by other tools may lack padding.
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The attributes every item of one batch shares: when it was archived (`lastUpdate`) and
/// when it expires (`expireAfter`), formatted once per batch rather than once per item
/// (the date format was ~3% of the Lambda function's CPU per record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveStamp {
    last_update: String,
    expire_after: Option<String>,
}

impl ArchiveStamp {
    /// The stamp of records archived at `archived_at`, expiring `ttl` later.
    pub fn new(archived_at: DateTime<Utc>, ttl: Option<ArchiveTtl>) -> Self {
        Self {
            last_update: format_last_update(archived_at),
            expire_after: ttl
                .map(|ttl| (archived_at.timestamp() + ttl.seconds() as i64).to_string()),
        }
    }
}

impl ArchiveRecord {
    /// Builds the item for this record, archived at `archived_at`, expiring after `ttl`.
    /// A record whose item would exceed [`ITEM_SIZE_LIMIT`] ([`Self::payload_fits`] says
    /// no) gets an item without `recordData`, marked `oversize` with its `recordSize`, so
    /// that the shard is not blocked and the record's existence is still on file.
    pub fn to_item(&self, archived_at: DateTime<Utc>, ttl: Option<ArchiveTtl>) -> PreparedItem {
        self.to_stamped_item(&ArchiveStamp::new(archived_at, ttl))
    }

    /// [`to_item`](Self::to_item) with the batch's shared attributes formatted already.
    pub fn to_stamped_item(&self, stamp: &ArchiveStamp) -> PreparedItem {
        let mut item = self.metadata_item(stamp);
        if fits(&item, self.data.len()) {
            item.insert(
                attr::RECORD_DATA.into(),
                AttributeValue::S(STANDARD.encode(&self.data)),
            );
            PreparedItem {
                item,
                oversize: false,
            }
        } else {
            item.insert(attr::OVERSIZE.into(), AttributeValue::Bool(true));
            item.insert(
                attr::RECORD_SIZE.into(),
                AttributeValue::N(self.data.len().to_string()),
            );
            PreparedItem {
                item,
                oversize: true,
            }
        }
    }

    /// Whether this record's payload fits in its item (as base64, beside the other
    /// attributes), the rule [`Self::to_item`] applies. Records that do not fit go to the
    /// overflow bucket when the stream has one.
    pub fn payload_fits(&self, stamp: &ArchiveStamp) -> bool {
        fits(&self.metadata_item(stamp), self.data.len())
    }

    /// Every attribute of the record's item but its payload.
    fn metadata_item(&self, stamp: &ArchiveStamp) -> Item {
        let mut item = Item::with_capacity(8);
        let s = |v: &str| AttributeValue::S(v.to_owned());
        item.insert(attr::PARTITION_KEY.into(), s(&self.partition_key));
        item.insert(
            attr::SEQUENCE_NUMBER.into(),
            AttributeValue::S(self.range_key()),
        );
        if let Some(sub) = self.sub_sequence_number {
            item.insert(
                attr::SUB_SEQUENCE_NUMBER.into(),
                AttributeValue::N(sub.to_string()),
            );
        }
        if let Some(key) = &self.explicit_hash_key {
            item.insert(attr::EXPLICIT_HASH_KEY.into(), s(key));
        }
        item.insert(
            attr::LAST_UPDATE.into(),
            AttributeValue::S(stamp.last_update.clone()),
        );
        item.insert(
            attr::APPROXIMATE_ARRIVAL_TIMESTAMP.into(),
            AttributeValue::N(format_epoch_seconds(self.approximate_arrival_timestamp)),
        );
        item.insert(attr::SHARD_ID.into(), s(&self.shard_id));
        if let Some(expire) = &stamp.expire_after {
            item.insert(attr::EXPIRE_AFTER.into(), AttributeValue::N(expire.clone()));
        }
        item
    }

    /// Reads a record back from an archive item, written by kinarch or by the original
    /// archiver.
    pub fn from_item(item: &Item) -> Result<Self, ItemError> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
            None => Ok(None),
            Some(_) => Err(format!("attribute {name} is not of type S")),
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => Ok(Some(v.as_str())),
            None => Ok(None),
            Some(_) => Err(format!("attribute {name} is not of type N")),
        };
        let key = format!(
            "{}/{}",
            text(attr::PARTITION_KEY).ok().flatten().unwrap_or("?"),
            text(attr::SEQUENCE_NUMBER).ok().flatten().unwrap_or("?")
        );
        let read = || -> Result<Self, String> {
            let required = |name: &str, value: Option<&str>| {
                value
                    .map(str::to_owned)
                    .ok_or_else(|| format!("attribute {name} is missing"))
            };
            let partition_key = required(attr::PARTITION_KEY, text(attr::PARTITION_KEY)?)?;
            let stored = required(attr::SEQUENCE_NUMBER, text(attr::SEQUENCE_NUMBER)?)?;
            let (sequence, suffix) = split_range_key(&stored).ok_or_else(|| {
                format!("sequenceNumber {stored:?} has an invalid sub-sequence suffix")
            })?;
            let sequence_number = SequenceNumber::parse(sequence).map_err(|e| e.to_string())?;
            let sub_sequence_number = match number(attr::SUB_SEQUENCE_NUMBER)? {
                Some(n) => Some(
                    n.parse::<u64>()
                        .map_err(|_| format!("subSequenceNumber {n:?} is not a whole number"))?,
                ),
                None => suffix,
            };
            let explicit_hash_key = text(attr::EXPLICIT_HASH_KEY)?.map(str::to_owned);
            let shard_id = text(attr::SHARD_ID)?.unwrap_or_default().to_owned();
            let approximate_arrival_timestamp = match number(attr::APPROXIMATE_ARRIVAL_TIMESTAMP)? {
                Some(n) => n
                    .parse::<f64>()
                    .map_err(|_| format!("approximateArrivalTimestamp {n:?} is not a number"))?,
                None => return Err("attribute approximateArrivalTimestamp is missing".into()),
            };
            let last_update = text(attr::LAST_UPDATE)?.map(str::to_owned);
            let expire_after = number(attr::EXPIRE_AFTER)?
                .map(|n| {
                    // Other writers may have stored a fraction; TTL works on whole seconds.
                    n.parse::<f64>()
                        .map(|v| v as i64)
                        .map_err(|_| format!("expireAfter {n:?} is not a number"))
                })
                .transpose()?;
            let oversize = matches!(item.get(attr::OVERSIZE), Some(AttributeValue::Bool(true)));
            let record_size = || {
                number(attr::RECORD_SIZE)?
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| {
                        "attribute recordSize is missing or not a whole number".to_owned()
                    })
            };
            let mut stored = None;
            let (data, oversize_bytes) =
                match (text(attr::RECORD_DATA)?, text(attr::RECORD_LOCATION)?) {
                    (Some(b64), _) => (
                        BASE64_READ
                            .decode(b64)
                            .map_err(|e| format!("recordData is not base64: {e}"))?,
                        None,
                    ),
                    (None, Some(location)) => {
                        let location = ObjectLocation::parse(location)
                            .map_err(|e| format!("recordLocation: {e}"))?;
                        stored = Some(StoredPayload {
                            location,
                            size: record_size()?,
                        });
                        (Vec::new(), None)
                    }
                    (None, None) if oversize => (Vec::new(), Some(record_size()?)),
                    (None, None) => return Err("attribute recordData is missing".into()),
                };
            Ok(Self {
                partition_key,
                sequence_number,
                shard_id,
                approximate_arrival_timestamp,
                data,
                last_update,
                expire_after,
                oversize_bytes,
                sub_sequence_number,
                explicit_hash_key,
                stored,
            })
        };
        read().map_err(|problem| ItemError { key, problem })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::parse_last_update;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn record(data: Vec<u8>) -> ArchiveRecord {
        ArchiveRecord::received(
            "customer-1".into(),
            SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
                .unwrap(),
            "shardId-000000000003".into(),
            1545084650.987,
            data,
        )
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 21, 7, 3).unwrap()
    }

    #[test]
    fn item_follows_the_contract_attribute_by_attribute() {
        let ttl = ArchiveTtl::from_seconds(3600).ok();
        let prepared = record(b"hello".to_vec()).to_item(at(), ttl);
        assert!(!prepared.oversize);
        let item = prepared.item;
        let s = |n: &str| item[n].as_s().unwrap().clone();
        let n = |n: &str| item[n].as_n().unwrap().clone();
        assert_eq!(s("partitionKey"), "customer-1");
        assert_eq!(
            s("sequenceNumber"),
            "49590338271490256608559692538361571095921575989136588898"
        );
        assert_eq!(s("lastUpdate"), "2026-11-25 21:07:03");
        assert_eq!(s("recordData"), "aGVsbG8=");
        assert_eq!(n("approximateArrivalTimestamp"), "1545084650.987");
        assert_eq!(s("shardId"), "shardId-000000000003");
        assert_eq!(n("expireAfter"), (at().timestamp() + 3600).to_string());
        assert_eq!(item.len(), 7);
    }

    #[test]
    fn no_ttl_no_expire_after() {
        let item = record(vec![1]).to_item(at(), None).item;
        assert!(!item.contains_key("expireAfter"));
        assert_eq!(item.len(), 6);
    }

    #[test]
    fn whole_second_arrival_is_stored_without_fraction() {
        let mut r = record(vec![]);
        r.approximate_arrival_timestamp = 1700000000.0;
        let item = r.to_item(at(), None).item;
        assert_eq!(
            item["approximateArrivalTimestamp"].as_n().unwrap(),
            "1700000000"
        );
    }

    #[test]
    fn oversize_record_keeps_metadata_and_size() {
        let big = record(vec![7u8; 320 * 1024]);
        let prepared = big.to_item(at(), None);
        assert!(prepared.oversize);
        assert!(!prepared.item.contains_key("recordData"));
        assert_eq!(prepared.item["oversize"], AttributeValue::Bool(true));
        assert_eq!(
            prepared.item["recordSize"].as_n().unwrap(),
            &(320 * 1024).to_string()
        );
        assert!(item_size(&prepared.item) < 1024);
        let back = ArchiveRecord::from_item(&prepared.item).unwrap();
        assert_eq!(back.oversize_bytes, Some(320 * 1024));
        assert!(back.data.is_empty());
    }

    #[test]
    fn overflowed_item_points_at_its_payload_and_reads_back() {
        let big = record(vec![7u8; 600 * 1024]);
        assert!(!big.payload_fits(&ArchiveStamp::new(at(), None)));
        assert!(record(vec![7u8; 1000]).payload_fits(&ArchiveStamp::new(at(), None)));
        let mut prepared = big.to_item(at(), None);
        assert!(prepared.oversize);
        let stored = StoredPayload {
            location: ObjectLocation::parse("s3://big-records/p/orders/shardId-000000000003/4959")
                .unwrap(),
            size: 600 * 1024,
        };
        claim_check(&mut prepared.item, &stored);
        let item = &prepared.item;
        assert!(!item.contains_key("recordData") && !item.contains_key("oversize"));
        assert_eq!(
            item["recordLocation"].as_s().unwrap(),
            "s3://big-records/p/orders/shardId-000000000003/4959"
        );
        assert_eq!(item["recordSize"].as_n().unwrap(), "614400");
        let back = ArchiveRecord::from_item(item).unwrap();
        assert_eq!(back.stored, Some(stored));
        assert_eq!(back.oversize_bytes, None);
        assert!(back.data.is_empty());
        let mut broken = item.clone();
        broken.insert(
            "recordLocation".into(),
            AttributeValue::S("big-records/x".into()),
        );
        let err = ArchiveRecord::from_item(&broken).unwrap_err().to_string();
        assert!(
            err.contains("recordLocation") && err.contains("s3://BUCKET/KEY"),
            "{err}"
        );
        broken.remove("recordLocation");
        broken.remove("recordSize");
        let err = ArchiveRecord::from_item(&broken).unwrap_err().to_string();
        assert!(err.contains("recordData is missing"), "{err}");
    }

    #[test]
    fn largest_payload_that_fits_is_kept_and_one_more_byte_is_not() {
        let base = record(vec![]);
        let overhead = item_size(&base.to_item(at(), None).item) - attr::RECORD_DATA.len();
        // Largest payload whose base64 fits the remaining space exactly.
        let room = ITEM_SIZE_LIMIT - overhead - attr::RECORD_DATA.len();
        let fits = room / 4 * 3;
        let ok = record(vec![0u8; fits]).to_item(at(), None);
        assert!(!ok.oversize);
        assert!(item_size(&ok.item) <= ITEM_SIZE_LIMIT);
        let over = record(vec![0u8; fits + 1]).to_item(at(), None);
        assert!(over.oversize);
        assert!(record(vec![0u8; fits]).payload_fits(&ArchiveStamp::new(at(), None)));
        assert!(!record(vec![0u8; fits + 1]).payload_fits(&ArchiveStamp::new(at(), None)));
    }

    #[test]
    fn reads_items_of_the_original_archiver() {
        let mut item = Item::new();
        item.insert("partitionKey".into(), AttributeValue::S("k".into()));
        item.insert("sequenceNumber".into(), AttributeValue::S("12".into()));
        item.insert(
            "lastUpdate".into(),
            AttributeValue::S("2019-01-02 03:04:05".into()),
        );
        item.insert("recordData".into(), AttributeValue::S("eyJhIjoxfQ".into())); // no padding
        item.insert(
            "approximateArrivalTimestamp".into(),
            AttributeValue::N("1546398245.5".into()),
        );
        item.insert(
            "shardId".into(),
            AttributeValue::S("shardId-000000000000".into()),
        );
        item.insert("expireAfter".into(), AttributeValue::N("1600000000".into()));
        let r = ArchiveRecord::from_item(&item).unwrap();
        assert_eq!(r.data, br#"{"a":1}"#);
        assert_eq!(r.approximate_arrival_timestamp, 1546398245.5);
        assert_eq!(r.expire_after, Some(1600000000));
        assert_eq!(r.last_update.as_deref(), Some("2019-01-02 03:04:05"));
        assert_eq!(
            parse_last_update("2019-01-02 03:04:05")
                .unwrap()
                .timestamp(),
            1546398245
        );
    }

    #[test]
    fn broken_items_name_the_problem() {
        let mut item = Item::new();
        item.insert("partitionKey".into(), AttributeValue::S("k".into()));
        item.insert("sequenceNumber".into(), AttributeValue::S("1x".into()));
        let err = ArchiveRecord::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("k/1x") && err.contains("not a digit"), "{err}");
        item.insert("sequenceNumber".into(), AttributeValue::S("1".into()));
        item.insert(
            "approximateArrivalTimestamp".into(),
            AttributeValue::N("1".into()),
        );
        let err = ArchiveRecord::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("recordData is missing"), "{err}");
        item.insert("recordData".into(), AttributeValue::N("1".into()));
        let err = ArchiveRecord::from_item(&item).unwrap_err().to_string();
        assert!(err.contains("recordData is not of type S"), "{err}");
    }

    proptest! {
        #[test]
        fn item_round_trips_binary_payloads(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            key in "\\PC{1,64}",
            seq in "[1-9][0-9]{0,60}",
            millis in 0u64..4_000_000_000_000,
            ttl in proptest::option::of(1u64..100_000_000),
        ) {
            let rec = ArchiveRecord::received(
                key,
                SequenceNumber::parse(&seq).unwrap(),
                "shardId-000000000001".into(),
                millis as f64 / 1000.0,
                data,
            );
            let ttl = ttl.map(|s| ArchiveTtl::from_seconds(s).unwrap());
            let back = ArchiveRecord::from_item(&rec.to_item(at(), ttl).item).unwrap();
            prop_assert_eq!(&back.data, &rec.data);
            prop_assert_eq!(&back.partition_key, &rec.partition_key);
            prop_assert_eq!(&back.sequence_number, &rec.sequence_number);
            prop_assert_eq!(back.approximate_arrival_timestamp, rec.approximate_arrival_timestamp);
            prop_assert_eq!(back.last_update.as_deref(), Some("2026-11-25 21:07:03"));
            prop_assert_eq!(back.expire_after, ttl.map(|t| at().timestamp() + t.seconds() as i64));
        }
    }
}
