//! KPL aggregation: finding the user records inside a Kinesis record the Kinesis Producer
//! Library packed, and where each of them goes in an archive table.
//!
//! The KPL's published format: the 4 magic bytes [`MAGIC`], a protobuf [`AggregatedRecord`],
//! then the 16-byte MD5 of the protobuf bytes. A record without the magic is a plain record.
//! A record with the magic whose MD5 does not match or whose protobuf does not decode is a
//! plain record too (KCL does the same): a producer may well send bytes that happen to
//! start with the magic, and refusing them would block the shard.
//!
//! The message structs are written by hand with `prost`'s derive, so no `protoc` is needed
//! at build time; the field numbers are the format's.
//!
//! ## Range key of de-aggregated records (ALL tables)
//!
//! Every user record of a container shares the container's sequence number, so ALL tables
//! (RANGE key `sequenceNumber`) store a user record under
//! `<container sequence number>.<sub-sequence number, 20 digits, zero-padded>`
//! ([`range_key`]). Why this form:
//! - unique per user record, so no user record replaces another;
//! - the part before the `.` is the container's sequence number, unchanged, so a reader of
//!   the original layout still finds and reads the item (and `query --from/--to` keeps
//!   working on container sequence numbers);
//! - the fixed width makes string order match numeric order among the user records of one
//!   container, and `.` sorts before every digit, so a container's user records sort right
//!   after a plain record with the same digits and before any longer number starting with
//!   them (kinarch itself orders by (sequence, sub-sequence), see [`RecordPosition`]).
//!
//! LATEST tables have no RANGE key: `sequenceNumber` holds the container's sequence number
//! as for a plain record, and `subSequenceNumber` N says which user record it was.

use md5::{Digest, Md5};
use prost::Message;

use crate::domain::sequence::SequenceNumber;

/// The 4 bytes every KPL-aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 digest at the end of a container.
const DIGEST_LEN: usize = 16;

/// Width of the zero-padded sub-sequence suffix of an ALL table's range key: a `u64` has at
/// most 20 decimal digits.
pub const SUB_SEQUENCE_WIDTH: usize = 20;

/// The separator between the container's sequence number and the sub-sequence suffix.
pub const SUB_SEQUENCE_SEPARATOR: char = '.';

/// The protobuf body of a container.
#[derive(Clone, PartialEq, Message)]
pub struct AggregatedRecord {
    /// Partition keys, referred to by index.
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    /// Explicit hash keys, referred to by index.
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    /// The user records.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// One user record of a container.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// Index into [`AggregatedRecord::partition_key_table`].
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    /// Index into [`AggregatedRecord::explicit_hash_key_table`], if any.
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    /// The user record's bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    /// KPL tags; kept by the format, not used by kinarch.
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// A KPL tag (unused by kinarch, decoded so a container that has them still decodes).
#[derive(Clone, PartialEq, Message)]
pub struct Tag {
    /// Tag key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Tag value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// A user record found in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its partition key.
    pub partition_key: String,
    /// Its explicit hash key, when the producer gave one.
    pub explicit_hash_key: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Why a record starting with [`MAGIC`] is not a container after all (it is then archived
/// as the plain record it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAContainer {
    /// Too short to hold the magic, a protobuf and the digest.
    #[error("record starts with the KPL magic but is too short for a digest")]
    TooShort,
    /// The MD5 at the end does not match the protobuf bytes.
    #[error("record starts with the KPL magic but its MD5 does not match")]
    BadDigest,
    /// The protobuf does not decode.
    #[error("record starts with the KPL magic but its protobuf does not decode: {0}")]
    Undecodable(String),
    /// A user record refers to a key table index that does not exist.
    #[error("record starts with the KPL magic but a user record's {0} index is out of range")]
    BadIndex(&'static str),
}

/// The user records of `data` when it is a KPL container: `Ok(None)` for a plain record
/// (no magic), `Err` for a record with the magic that is not a valid container. Never
/// panics, whatever the bytes.
pub fn deaggregate(data: &[u8]) -> Result<Option<Vec<UserRecord>>, NotAContainer> {
    let Some(rest) = data.strip_prefix(&MAGIC) else {
        return Ok(None);
    };
    if rest.len() < DIGEST_LEN {
        return Err(NotAContainer::TooShort);
    }
    let (body, digest) = rest.split_at(rest.len() - DIGEST_LEN);
    if Md5::digest(body).as_slice() != digest {
        return Err(NotAContainer::BadDigest);
    }
    let aggregated =
        AggregatedRecord::decode(body).map_err(|e| NotAContainer::Undecodable(e.to_string()))?;
    let AggregatedRecord {
        partition_key_table,
        explicit_hash_key_table,
        records,
    } = aggregated;
    records
        .into_iter()
        .map(|record| {
            let partition_key = usize::try_from(record.partition_key_index)
                .ok()
                .and_then(|i| partition_key_table.get(i))
                .ok_or(NotAContainer::BadIndex("partition key"))?
                .clone();
            let explicit_hash_key = record
                .explicit_hash_key_index
                .map(|index| {
                    usize::try_from(index)
                        .ok()
                        .and_then(|i| explicit_hash_key_table.get(i))
                        .cloned()
                        .ok_or(NotAContainer::BadIndex("explicit hash key"))
                })
                .transpose()?;
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data: record.data,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Encodes user records as a KPL container (tests and tools; kinarch itself never
/// re-aggregates). Keys are put in their tables once each, in order of first use.
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut message = AggregatedRecord::default();
    let index_of = |table: &mut Vec<String>, key: &str| -> u64 {
        match table.iter().position(|k| k == key) {
            Some(i) => i as u64,
            None => {
                table.push(key.to_owned());
                (table.len() - 1) as u64
            }
        }
    };
    for record in records {
        let partition_key_index = index_of(&mut message.partition_key_table, &record.partition_key);
        let explicit_hash_key_index = record
            .explicit_hash_key
            .as_deref()
            .map(|k| index_of(&mut message.explicit_hash_key_table, k));
        message.records.push(Record {
            partition_key_index,
            explicit_hash_key_index,
            data: record.data.clone(),
            tags: Vec::new(),
        });
    }
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

/// Where a record sits in its shard: the Kinesis record's sequence number, then, for a user
/// record of a container, its index in the container. Plain records (`None`) sort before
/// the user records of a container with the same sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordPosition<'a> {
    /// The Kinesis record's sequence number.
    pub sequence: &'a SequenceNumber,
    /// The user record's index in its container.
    pub sub_sequence: Option<u64>,
}

/// The `sequenceNumber` RANGE key of an ALL table (see the module documentation): the
/// sequence number itself for a plain record, with the 20-digit sub-sequence suffix for a
/// user record.
pub fn range_key(sequence: &SequenceNumber, sub_sequence: Option<u64>) -> String {
    match sub_sequence {
        None => sequence.as_str().to_owned(),
        Some(sub) => format!(
            "{}{SUB_SEQUENCE_SEPARATOR}{sub:0width$}",
            sequence.as_str(),
            width = SUB_SEQUENCE_WIDTH
        ),
    }
}

/// Splits a stored `sequenceNumber` into the container's sequence number text and the
/// sub-sequence suffix, if it has one. `None` when the suffix is not 1 to 20 digits.
pub fn split_range_key(stored: &str) -> Option<(&str, Option<u64>)> {
    match stored.split_once(SUB_SEQUENCE_SEPARATOR) {
        None => Some((stored, None)),
        Some((sequence, sub)) => {
            if sub.is_empty()
                || sub.len() > SUB_SEQUENCE_WIDTH
                || !sub.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some((sequence, Some(sub.parse().ok()?)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(key: &str, ehk: Option<&str>, data: &[u8]) -> UserRecord {
        UserRecord {
            partition_key: key.into(),
            explicit_hash_key: ehk.map(str::to_owned),
            data: data.to_vec(),
        }
    }

    #[test]
    fn plain_records_are_not_containers() {
        assert_eq!(deaggregate(b"hello"), Ok(None));
        assert_eq!(deaggregate(b""), Ok(None));
        assert_eq!(deaggregate(&MAGIC[..3]), Ok(None));
    }

    #[test]
    fn round_trip_with_shared_keys_and_explicit_hash_keys() {
        let records = vec![
            user("a", None, b"1"),
            user("b", Some("123"), &[0, 255, 0xF3]),
            user("a", None, b""),
        ];
        let container = aggregate(&records);
        assert!(container.starts_with(&MAGIC));
        assert_eq!(deaggregate(&container), Ok(Some(records)));
    }

    #[test]
    fn bad_digest_and_truncation_are_not_containers() {
        let mut container = aggregate(&[user("a", None, b"payload")]);
        let last = container.len() - 1;
        container[last] ^= 1;
        assert_eq!(deaggregate(&container), Err(NotAContainer::BadDigest));
        assert_eq!(deaggregate(&MAGIC), Err(NotAContainer::TooShort));
        // A truncated protobuf with a matching digest still does not decode.
        let body = [0x1A, 0x05, 0x08];
        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&body);
        truncated.extend_from_slice(&Md5::digest(body));
        assert!(matches!(
            deaggregate(&truncated),
            Err(NotAContainer::Undecodable(_))
        ));
    }

    #[test]
    fn out_of_range_key_index_is_not_a_container() {
        let message = AggregatedRecord {
            partition_key_table: vec!["a".into()],
            explicit_hash_key_table: vec![],
            records: vec![Record {
                partition_key_index: 1,
                explicit_hash_key_index: None,
                data: vec![],
                tags: vec![],
            }],
        };
        let body = message.encode_to_vec();
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(&body));
        assert_eq!(
            deaggregate(&data),
            Err(NotAContainer::BadIndex("partition key"))
        );
    }

    #[test]
    fn range_key_layout() {
        let seq = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap();
        assert_eq!(range_key(&seq, None), seq.as_str());
        let key = range_key(&seq, Some(7));
        assert_eq!(
            key,
            "49590338271490256608559692538361571095921575989136588898.00000000000000000007"
        );
        assert_eq!(split_range_key(&key), Some((seq.as_str(), Some(7))));
        assert_eq!(split_range_key("12"), Some(("12", None)));
        assert_eq!(split_range_key("12."), None);
        assert_eq!(split_range_key("12.x"), None);
        assert_eq!(
            split_range_key(&range_key(&seq, Some(u64::MAX))),
            Some((seq.as_str(), Some(u64::MAX)))
        );
    }

    #[test]
    fn positions_order_sequence_first_then_sub_sequence() {
        let nine = SequenceNumber::parse("9").unwrap();
        let ten = SequenceNumber::parse("10").unwrap();
        let pos = |sequence, sub_sequence| RecordPosition {
            sequence,
            sub_sequence,
        };
        assert!(pos(&nine, Some(99)) < pos(&ten, None));
        assert!(pos(&ten, None) < pos(&ten, Some(0)));
        assert!(pos(&ten, Some(2)) < pos(&ten, Some(10)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_after_the_magic_never_panic(rest in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&rest);
            let _ = deaggregate(&data);
            // With a valid digest the protobuf decoder sees the arbitrary bytes too.
            let mut digested = MAGIC.to_vec();
            digested.extend_from_slice(&rest);
            digested.extend_from_slice(&Md5::digest(&rest));
            let _ = deaggregate(&digested);
        }

        #[test]
        fn containers_round_trip(records in proptest::collection::vec(
            ("[a-c]{1,3}", proptest::option::of("[0-9]{1,10}"), proptest::collection::vec(any::<u8>(), 0..40)),
            0..60,
        )) {
            let records: Vec<UserRecord> = records.into_iter()
                .map(|(k, e, d)| UserRecord { partition_key: k, explicit_hash_key: e, data: d })
                .collect();
            prop_assert_eq!(deaggregate(&aggregate(&records)), Ok(Some(records)));
        }

        #[test]
        fn range_key_string_order_is_position_order_within_a_length(
            a in 1u64..u64::MAX, b in 1u64..u64::MAX, sa in proptest::option::of(any::<u64>()), sb in proptest::option::of(any::<u64>()),
        ) {
            // Same digit count: DynamoDB's string order of the range keys is numeric order.
            let (a, b) = (SequenceNumber::parse(&format!("{}", a | (1 << 63))).unwrap(),
                          SequenceNumber::parse(&format!("{}", b | (1 << 63))).unwrap());
            prop_assume!(a.digits() == b.digits());
            let ka = range_key(&a, sa);
            let kb = range_key(&b, sb);
            let pa = RecordPosition { sequence: &a, sub_sequence: sa };
            let pb = RecordPosition { sequence: &b, sub_sequence: sb };
            prop_assert_eq!(ka.cmp(&kb), pa.cmp(&pb));
        }
    }
}
