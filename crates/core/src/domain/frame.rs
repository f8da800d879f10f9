//! The replay frame: original metadata in front of a reinjected record.
//!
//! A reinjected record loses its arrival time, shard and sequence number, since Kinesis gives
//! it new ones. With `--metadata`, kinarch sends `<sep><json><sep><original bytes>` where
//! the JSON object holds the originals, so a consumer can tell replayed records apart and
//! order or deduplicate them. The original bytes follow unchanged (binary safe).

use serde::{Deserialize, Serialize};

use crate::domain::record::ArchiveRecord;

/// The default separator, as in the original archiver.
pub const DEFAULT_SEPARATOR: u8 = b'|';

/// Metadata of the original record, as framed by `kinarch reinject --metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayMetadata {
    /// Arrival time of the original record, epoch seconds.
    pub original_approximate_arrival_timestamp: f64,
    /// The shard the original record was in.
    pub original_shard_id: String,
    /// The original sequence number.
    pub original_sequence_number: String,
    /// The stream the record came from; present only when it was replayed into another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_stream_name: Option<String>,
}

impl ReplayMetadata {
    /// The metadata of `record`; `source_stream` is named only when it differs from the
    /// stream the record is sent to.
    pub fn of(record: &ArchiveRecord, source_stream: Option<&str>) -> Self {
        Self {
            original_approximate_arrival_timestamp: record.approximate_arrival_timestamp,
            original_shard_id: record.shard_id.clone(),
            original_sequence_number: record.sequence_number.as_str().to_owned(),
            original_stream_name: source_stream.map(str::to_owned),
        }
    }
}

/// A record read back from a stream that kinarch replayed into.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFrame<'a> {
    /// The original metadata, when the record was framed.
    pub metadata: Option<ReplayMetadata>,
    /// The original record bytes.
    pub payload: &'a [u8],
}

impl<'a> ReplayFrame<'a> {
    /// Splits a record into metadata and payload.
    ///
    /// A record is framed when it starts with `separator`, a metadata JSON object follows,
    /// and `separator` comes right after the object. Anything else (a record replayed
    /// without `--metadata`, or never replayed) is returned whole as the payload, with no
    /// metadata. The JSON is parsed, not searched for the separator, so any separator byte
    /// works and the payload may contain it.
    ///
    /// ```
    /// use kinarch_core::domain::frame::ReplayFrame;
    ///
    /// let bytes = br#"|{"originalApproximateArrivalTimestamp":1700000000.5,"originalShardId":"shardId-000000000000","originalSequenceNumber":"42"}|hello"#;
    /// let frame = ReplayFrame::parse(bytes, b'|');
    /// let metadata = frame.metadata.expect("framed");
    /// assert_eq!(metadata.original_sequence_number, "42");
    /// assert_eq!(frame.payload, b"hello");
    ///
    /// let plain = ReplayFrame::parse(b"not framed", b'|');
    /// assert!(plain.metadata.is_none());
    /// assert_eq!(plain.payload, b"not framed");
    /// ```
    pub fn parse(bytes: &'a [u8], separator: u8) -> ReplayFrame<'a> {
        let unframed = ReplayFrame {
            metadata: None,
            payload: bytes,
        };
        let Some(rest) = bytes.strip_prefix(&[separator]) else {
            return unframed;
        };
        if rest.first() != Some(&b'{') {
            return unframed;
        }
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<ReplayMetadata>();
        let Some(Ok(metadata)) = values.next() else {
            return unframed;
        };
        let end = values.byte_offset();
        match rest.get(end) {
            Some(&b) if b == separator => ReplayFrame {
                metadata: Some(metadata),
                payload: &rest[end + 1..],
            },
            _ => unframed,
        }
    }

    /// Builds the framed bytes `<separator><json><separator><payload>`.
    pub fn encode(metadata: &ReplayMetadata, payload: &[u8], separator: u8) -> Vec<u8> {
        let json = serde_json::to_vec(metadata).expect("metadata serializes");
        let mut out = Vec::with_capacity(json.len() + payload.len() + 2);
        out.push(separator);
        out.extend_from_slice(&json);
        out.push(separator);
        out.extend_from_slice(payload);
        out
    }
}

/// A separator given as text that is not exactly one byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid separator {0:?}: the separator must be exactly one byte (one ASCII character), e.g. '|'"
)]
pub struct SeparatorError(pub String);

/// Parses a separator given on a command line: exactly one byte.
pub fn parse_separator(text: &str) -> Result<u8, SeparatorError> {
    match text.as_bytes() {
        [byte] => Ok(*byte),
        _ => Err(SeparatorError(text.chars().take(20).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SequenceNumber;
    use proptest::prelude::*;

    fn record() -> ArchiveRecord {
        ArchiveRecord {
            partition_key: "k".into(),
            sequence_number: SequenceNumber::parse(
                "49590338271490256608559692538361571095921575989136588898",
            )
            .unwrap(),
            shard_id: "shardId-000000000002".into(),
            approximate_arrival_timestamp: 1545084650.987,
            data: vec![],
            last_update: None,
            expire_after: None,
            oversize_bytes: None,
        }
    }

    #[test]
    fn frame_has_exactly_the_documented_fields_in_order() {
        let same = ReplayFrame::encode(&ReplayMetadata::of(&record(), None), b"x", b'|');
        assert_eq!(
            String::from_utf8(same).unwrap(),
            r#"|{"originalApproximateArrivalTimestamp":1545084650.987,"originalShardId":"shardId-000000000002","originalSequenceNumber":"49590338271490256608559692538361571095921575989136588898"}|x"#
        );
        let other = ReplayFrame::encode(&ReplayMetadata::of(&record(), Some("orders")), b"", b'#');
        let text = String::from_utf8(other).unwrap();
        assert!(
            text.starts_with('#') && text.ends_with("\"originalStreamName\":\"orders\"}#"),
            "{text}"
        );
    }

    #[test]
    fn payload_may_contain_the_separator_and_any_byte() {
        let payload = b"|{\"a\":1}|\x00\xff|";
        let bytes = ReplayFrame::encode(&ReplayMetadata::of(&record(), None), payload, b'|');
        let frame = ReplayFrame::parse(&bytes, b'|');
        assert_eq!(frame.payload, payload);
        assert_eq!(frame.metadata.unwrap(), ReplayMetadata::of(&record(), None));
    }

    #[test]
    fn unframed_records_are_payload_only() {
        for bytes in [
            &b""[..],
            b"|",
            b"||",
            b"|{}|x",
            b"|{\"originalShardId\":1}|x",
            b"plain|{}|",
        ] {
            let frame = ReplayFrame::parse(bytes, b'|');
            assert!(frame.metadata.is_none(), "{bytes:?}");
            assert_eq!(frame.payload, bytes);
        }
    }

    #[test]
    fn separator_must_be_one_byte() {
        assert_eq!(parse_separator("|"), Ok(b'|'));
        assert_eq!(parse_separator("\t"), Ok(b'\t'));
        for bad in ["", "||", "é", "ab"] {
            let err = parse_separator(bad).unwrap_err().to_string();
            assert!(err.contains("exactly one byte"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300), sep in any::<u8>(),
                      other in proptest::option::of("[a-zA-Z0-9_.-]{1,20}"), millis in 0u64..4_000_000_000_000) {
            let mut r = record();
            r.approximate_arrival_timestamp = millis as f64 / 1000.0;
            let metadata = ReplayMetadata::of(&r, other.as_deref());
            let bytes = ReplayFrame::encode(&metadata, &payload, sep);
            let frame = ReplayFrame::parse(&bytes, sep);
            prop_assert_eq!(frame.metadata, Some(metadata));
            prop_assert_eq!(frame.payload, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), sep in any::<u8>()) {
            let frame = ReplayFrame::parse(&bytes, sep);
            if frame.metadata.is_none() {
                prop_assert_eq!(frame.payload, &bytes[..]);
            }
        }
    }
}
