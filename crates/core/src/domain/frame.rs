//! The replay frame: original metadata in front of a reinjected record.
//!
//! A reinjected record loses its arrival time, shard and sequence number, since Kinesis gives
//! it new ones. With `--metadata`, kinarch sends `<sep><json><sep><original bytes>` where
//! the JSON object holds the originals, so a consumer can tell replayed records apart and
//! order or deduplicate them. The original bytes follow unchanged (binary safe).
//!
//! The archiver recognizes such records by their shape ([`ReplayFrame::recognize`]) and does
//! not archive again a record replayed into the stream it was archived from.

use serde::{Deserialize, Serialize};

use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;

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
    /// The user record's index in its KPL container (whose sequence number is
    /// `original_sequence_number`); present only for de-aggregated user records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sub_sequence_number: Option<u64>,
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
            original_sub_sequence_number: record.sub_sequence_number,
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

    /// Recognizes a record that kinarch replayed with `--metadata`, whatever separator was
    /// used: the archiver calls this on every record, without knowing the `--separator` of
    /// the replay that may have sent it.
    ///
    /// The rule is the frame's shape, not a separator:
    /// - the first byte is taken as the separator (any byte, `|` or another);
    /// - a JSON object follows at once, holding `originalApproximateArrivalTimestamp` (a
    ///   number), `originalShardId` (a string) and `originalSequenceNumber` (a string of
    ///   digits, a valid sequence number), optionally `originalStreamName`, and no other key;
    /// - the same separator byte follows right after the object; the rest is the payload.
    ///
    /// Why the shape: the archiver cannot know which separator a replay used, and a
    /// separator-free rule needs no setting shared between `reinject` and the archiver. The
    /// three required keys with their types, no unknown key, and the same byte on both sides
    /// of the object make an accidental match by a producer's own record practically
    /// impossible: its first byte would have to be repeated right after a JSON object made
    /// of exactly kinarch's three `original*` keys. A JSON payload (`{"a":1}`) does not
    /// match: its first byte is `{`, followed by `"`, not by an object. What the frame
    /// means (replayed into its own source stream, or from another) is
    /// [`RecognizedFrame::is_replay_into_source`].
    ///
    /// ```
    /// use kinarch_core::domain::frame::ReplayFrame;
    ///
    /// let bytes = br#"#{"originalApproximateArrivalTimestamp":1700000000.5,"originalShardId":"shardId-000000000000","originalSequenceNumber":"42"}#hello"#;
    /// let frame = ReplayFrame::recognize(bytes).expect("a replay frame");
    /// assert_eq!(frame.separator, b'#');
    /// assert!(frame.is_replay_into_source());
    /// assert_eq!(frame.payload, b"hello");
    ///
    /// assert!(ReplayFrame::recognize(br#"{"originalShardId":"x"}"#).is_none());
    /// assert!(ReplayFrame::recognize(b"plain bytes").is_none());
    /// ```
    pub fn recognize(bytes: &'a [u8]) -> Option<RecognizedFrame<'a>> {
        let separator = *bytes.first()?;
        let ReplayFrame { metadata, payload } = Self::parse(bytes, separator);
        let metadata = metadata?;
        SequenceNumber::parse(&metadata.original_sequence_number).ok()?;
        Some(RecognizedFrame {
            separator,
            metadata,
            payload,
        })
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

/// A record recognized as a replay frame by [`ReplayFrame::recognize`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecognizedFrame<'a> {
    /// The separator the replay used (the record's first byte).
    pub separator: u8,
    /// The original metadata.
    pub metadata: ReplayMetadata,
    /// The original record bytes.
    pub payload: &'a [u8],
}

impl RecognizedFrame<'_> {
    /// Whether the record was replayed into the stream it was archived from: its frame has
    /// no `originalStreamName` (kinarch names the original stream only when the target is
    /// another stream). Such a record is already in the stream's archive; a frame that names
    /// another stream is a record of the stream it was sent to.
    pub fn is_replay_into_source(&self) -> bool {
        self.metadata.original_stream_name.is_none()
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
    use proptest::prelude::*;

    fn record() -> ArchiveRecord {
        ArchiveRecord::received(
            "k".into(),
            SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
                .unwrap(),
            "shardId-000000000002".into(),
            1545084650.987,
            vec![],
        )
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
    fn recognizes_frames_of_any_separator_and_tells_their_source() {
        for sep in [b'|', b'#', b'\t', b'{', b'}', b'"', 0x00, 0xff] {
            let own = ReplayFrame::encode(&ReplayMetadata::of(&record(), None), b"p|#", sep);
            let frame = ReplayFrame::recognize(&own).expect("own-source frame");
            assert_eq!(frame.separator, sep);
            assert_eq!(frame.payload, b"p|#");
            assert!(frame.is_replay_into_source(), "{sep}");
            let other =
                ReplayFrame::encode(&ReplayMetadata::of(&record(), Some("orders")), b"", sep);
            let frame = ReplayFrame::recognize(&other).expect("other-stream frame");
            assert!(!frame.is_replay_into_source());
        }
        // A frame inside a frame: the outer one is what counts.
        let inner = ReplayFrame::encode(&ReplayMetadata::of(&record(), Some("a")), b"x", b'|');
        let outer = ReplayFrame::encode(&ReplayMetadata::of(&record(), None), &inner, b'#');
        let frame = ReplayFrame::recognize(&outer).unwrap();
        assert!(frame.is_replay_into_source());
        assert_eq!(frame.payload, &inner[..]);
    }

    #[test]
    fn records_that_only_look_like_frames_are_not_recognized() {
        let fields = r#""originalApproximateArrivalTimestamp":1.5,"originalShardId":"s","originalSequenceNumber":"42""#;
        for bytes in [
            String::new(),
            "|".into(),
            r#"{"a":1}"#.into(),
            format!("{{{fields}}}"),
            // Another byte after the object.
            format!("|{{{fields}}}#x"),
            // Nothing after the object.
            format!("|{{{fields}}}"),
            // Whitespace before the object.
            format!("| {{{fields}}}|x"),
            // A key missing, an unknown key, a wrong type, a sequence number not of digits.
            r#"|{"originalShardId":"s","originalSequenceNumber":"42"}|x"#.into(),
            format!(r#"|{{{fields},"extra":1}}|x"#),
            r#"|{"originalApproximateArrivalTimestamp":"1.5","originalShardId":"s","originalSequenceNumber":"42"}|x"#.into(),
            r#"|{"originalApproximateArrivalTimestamp":1.5,"originalShardId":"s","originalSequenceNumber":"4x2"}|x"#.into(),
            r#"|{"originalApproximateArrivalTimestamp":1.5,"originalShardId":"s","originalSequenceNumber":42}|x"#.into(),
            // A frame that does not start the record.
            format!("x|{{{fields}}}|"),
        ] {
            assert!(ReplayFrame::recognize(bytes.as_bytes()).is_none(), "{bytes}");
        }
        let ok = format!("|{{{fields}}}|");
        assert!(ReplayFrame::recognize(ok.as_bytes()).is_some());
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
        fn every_encoded_frame_is_recognized(payload in proptest::collection::vec(any::<u8>(), 0..300), sep in any::<u8>(),
                      other in proptest::option::of("[a-zA-Z0-9_.-]{1,20}"), seq in "0|[1-9][0-9]{0,59}",
                      shard in "[ -~]{0,40}") {
            let mut r = record();
            r.sequence_number = SequenceNumber::parse(&seq).unwrap();
            r.shard_id = shard;
            let metadata = ReplayMetadata::of(&r, other.as_deref());
            let bytes = ReplayFrame::encode(&metadata, &payload, sep);
            let frame = ReplayFrame::recognize(&bytes).expect("recognized");
            prop_assert_eq!(frame.separator, sep);
            prop_assert_eq!(frame.is_replay_into_source(), other.is_none());
            prop_assert_eq!(frame.metadata, metadata);
            prop_assert_eq!(frame.payload, &payload[..]);
        }

        #[test]
        fn records_not_starting_with_a_byte_then_an_object_are_never_recognized(
            bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if bytes.get(1) != Some(&b'{') {
                prop_assert!(ReplayFrame::recognize(&bytes).is_none());
            }
        }

        #[test]
        fn json_payloads_are_never_recognized(keys in proptest::collection::btree_map("[a-zA-Z]{1,12}", any::<i64>(), 0..6)) {
            let bytes = serde_json::to_vec(&keys).unwrap();
            prop_assert!(ReplayFrame::recognize(&bytes).is_none());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), sep in any::<u8>()) {
            let frame = ReplayFrame::parse(&bytes, sep);
            if frame.metadata.is_none() {
                prop_assert_eq!(frame.payload, &bytes[..]);
            }
            if let Some(frame) = ReplayFrame::recognize(&bytes) {
                prop_assert!(bytes.ends_with(frame.payload));
            }
        }
    }
}
