//! Decoding the Kinesis event that Lambda delivers.
//!
//! We read the event JSON ourselves instead of through `aws_lambda_events::KinesisEvent`:
//! a bad record must be reported by its position and event ID (serde would only say
//! "invalid value at line 1 column 803"), and `approximateArrivalTimestamp` must reach the
//! archive as the exact number Lambda sent (the library turns it into a date-time and the
//! fraction would come back rounded).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::names::StreamRef;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;

/// The records of one invocation, all from one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisBatch {
    /// The stream the event source mapping reads.
    pub stream: StreamRef,
    /// The shard of the first record (a Lambda batch comes from one shard).
    pub shard_id: String,
    /// The records, in delivery order.
    pub records: Vec<ArchiveRecord>,
}

/// Why an event cannot be archived.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// The event does not have the shape of a Kinesis event.
    #[error("the event is not a Kinesis event ({0}); attach kinarch to Kinesis streams only")]
    NotKinesisEvent(String),
    /// A request to the function itself (a `kinarch` field) that is not a valid one.
    #[error(
        "the request to kinarch is not valid: {0}; the template's CompactionSchedule sends \
         {{\"kinarch\": \"compact\", \"streams\": [\"arn:aws:kinesis:REGION:ACCOUNT:stream/NAME\"]}}"
    )]
    BadRequest(String),
    /// `Records` is empty.
    #[error("the event holds no records; a Kinesis event from Lambda always holds at least one")]
    Empty,
    /// One record is unusable.
    #[error("record {index} (eventID {event_id}): {problem}")]
    Record {
        /// Position in `Records`.
        index: usize,
        /// The record's `eventID`, or `?`.
        event_id: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// What the event's top level turned out to be: the list of records, each left as its JSON
/// text (a record that does not decode is then reported by its position and event ID, and
/// the others are not copied), or why it is not a Kinesis event.
enum RawRecords<'a> {
    List(Vec<&'a RawValue>),
    NotKinesis(String),
    /// No `Records`, a `kinarch` field: a request to the function itself (see
    /// [`FunctionEvent`]), with its `kinarch` and `streams` values.
    Request(serde_json::Value, serde_json::Value),
}

impl<'de> Deserialize<'de> for RawRecords<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopLevel)
    }
}

/// Visits the event's top level without failing on a shape that is valid JSON but not a
/// Kinesis event, so that such an event is reported as kinarch's `InvalidEvent` and not as a
/// deserialization error of the runtime.
struct TopLevel;

impl<'de> serde::de::Visitor<'de> for TopLevel {
    type Value = RawRecords<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kinesis event (an object with a Records list)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut request = None;
        let mut streams = serde_json::Value::Null;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "Records" && found.is_none() {
                found = Some(map.next_value::<RecordsField<'de>>()?.0);
            } else if key == REQUEST_FIELD && request.is_none() {
                request = Some(map.next_value::<serde_json::Value>()?);
            } else if key == "streams" && streams.is_null() {
                streams = map.next_value::<serde_json::Value>()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(match (found, request) {
            (Some(Some(list)), _) => RawRecords::List(list),
            (Some(None), _) => RawRecords::NotKinesis("Records is not a list".to_owned()),
            (None, Some(request)) => RawRecords::Request(request, streams),
            (None, None) => RawRecords::NotKinesis("it has no Records field".to_owned()),
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(RawRecords::NotKinesis(
            "it is a JSON list, not an object".to_owned(),
        ))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is a JSON string, not an object".to_owned(),
        ))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is a JSON boolean, not an object".to_owned(),
        ))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is a JSON number, not an object".to_owned(),
        ))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is a JSON number, not an object".to_owned(),
        ))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is a JSON number, not an object".to_owned(),
        ))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawRecords::NotKinesis(
            "it is JSON null, not an object".to_owned(),
        ))
    }
}

/// The value of `Records`: the list of records' texts, or `None` when it is not a list.
struct RecordsField<'a>(Option<Vec<&'a RawValue>>);

impl<'de> Deserialize<'de> for RecordsField<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> serde::de::Visitor<'de> for Field {
            type Value = RecordsField<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of records")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(record) = seq.next_element::<&'de RawValue>()? {
                    list.push(record);
                }
                Ok(RecordsField(Some(list)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(RecordsField(None))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(RecordsField(None))
            }
        }
        deserializer.deserialize_any(Field)
    }
}

/// The invocation payload as the Lambda function receives it: the event decoded while the
/// runtime deserializes its body, so the records come straight from the body's bytes (no
/// copy of the event's text, which is most of the function's peak memory). A valid JSON
/// value that is not a usable Kinesis event is kept as its [`EventError`], so the handler
/// reports it by record index and event ID; only text that is not JSON at all fails in the
/// runtime.
#[derive(Debug)]
pub struct KinesisEventPayload(pub Result<KinesisBatch, EventError>);

impl<'de> Deserialize<'de> for KinesisEventPayload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(KinesisEventPayload(
            match RawRecords::deserialize(deserializer)? {
                RawRecords::List(list) => decode_records(&list),
                RawRecords::NotKinesis(problem) => Err(EventError::NotKinesisEvent(problem)),
                RawRecords::Request(..) => Err(EventError::NotKinesisEvent(format!(
                    "it is a request to kinarch (a {REQUEST_FIELD:?} field)"
                ))),
            },
        ))
    }
}

/// The field that makes an event a request to the function itself rather than a Kinesis
/// event: `{"kinarch": "compact", "streams": [...]}`.
pub const REQUEST_FIELD: &str = "kinarch";

/// A request to compact the Parquet archives of `streams` (the input of the template's
/// `CompactionSchedule` rule): `{"kinarch": "compact", "streams": ["arn:aws:kinesis:...",
/// ...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionRequest {
    /// The streams whose archives to compact, by ARN.
    pub streams: Vec<StreamRef>,
}

/// Any event the Lambda function takes, told apart by its shape while the runtime
/// deserializes the body (the Kinesis event's records still come straight from its bytes):
/// an object with `Records` is a Kinesis event, one with a `kinarch` field (and no
/// `Records`) a request to the function itself; anything else is a Kinesis event that
/// cannot be archived, reported as such.
#[derive(Debug)]
pub enum FunctionEvent {
    /// A batch of records to archive (or why the event is not one).
    Kinesis(KinesisEventPayload),
    /// A scheduled compaction (or why the request is not a valid one).
    Compact(Result<CompactionRequest, EventError>),
}

impl<'de> Deserialize<'de> for FunctionEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match RawRecords::deserialize(deserializer)? {
            RawRecords::List(list) => {
                FunctionEvent::Kinesis(KinesisEventPayload(decode_records(&list)))
            }
            RawRecords::NotKinesis(problem) => FunctionEvent::Kinesis(KinesisEventPayload(Err(
                EventError::NotKinesisEvent(problem),
            ))),
            RawRecords::Request(request, streams) => {
                FunctionEvent::Compact(compaction_request(&request, &streams))
            }
        })
    }
}

/// Checks a request's `kinarch` and `streams` values.
fn compaction_request(
    request: &serde_json::Value,
    streams: &serde_json::Value,
) -> Result<CompactionRequest, EventError> {
    let bad = |problem: String| EventError::BadRequest(problem);
    if request.as_str() != Some("compact") {
        return Err(bad(format!(
            "{REQUEST_FIELD:?} is {request}, and \"compact\" is the only request kinarch knows"
        )));
    }
    let list = streams.as_array().ok_or_else(|| {
        bad(format!(
            "\"streams\" is {streams}, not a list of stream ARNs"
        ))
    })?;
    if list.is_empty() {
        return Err(bad(
            "\"streams\" is empty: name the streams to compact".to_owned()
        ));
    }
    let streams = list
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let arn = value
                .as_str()
                .ok_or_else(|| bad(format!("stream {i} is {value}, not an ARN string")))?;
            StreamRef::from_arn(arn).map_err(|e| bad(format!("stream {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CompactionRequest { streams })
}

/// Only a record's `eventID`, to name a record that does not decode otherwise.
#[derive(Deserialize)]
struct RawEventId<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
}

// Strings borrow from the event's text (`Cow`): the partition key, ARN and base64 data are
// not copied before they become the record's own (the base64 is decoded once, straight
// from the event's bytes).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_version: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "eventSourceARN", borrow)]
    event_source_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kinesis: Option<RawKinesis<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKinesis<'a> {
    #[serde(borrow)]
    kinesis_schema_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partition_key: Cow<'a, str>,
    #[serde(borrow)]
    sequence_number: Cow<'a, str>,
    #[serde(borrow)]
    data: Cow<'a, str>,
    approximate_arrival_timestamp: f64,
}

/// The only event and schema version that exist; another one would mean a format we do not
/// know, and guessing could archive wrong data.
const KNOWN_VERSION: &str = "1.0";

/// Decodes and validates a Lambda Kinesis event given as a JSON value.
pub fn decode_event(event: &serde_json::Value) -> Result<KinesisBatch, EventError> {
    let text = serde_json::to_vec(event).map_err(|e| EventError::NotKinesisEvent(e.to_string()))?;
    decode_event_json(&text)
}

/// Decodes and validates a Lambda Kinesis event from its JSON text, the way the function
/// receives it. Records are decoded from the text into typed, borrowing structs: no
/// `serde_json::Value` tree (about three times the event's size) is ever built, so the
/// function's peak memory is about the event's text plus the records' bytes.
pub fn decode_event_json(event: &[u8]) -> Result<KinesisBatch, EventError> {
    serde_json::from_slice::<KinesisEventPayload>(event)
        .map_err(|e| EventError::NotKinesisEvent(e.to_string()))?
        .0
}

/// Decodes the records of an event, each from its JSON text.
fn decode_records(list: &[&RawValue]) -> Result<KinesisBatch, EventError> {
    if list.is_empty() {
        return Err(EventError::Empty);
    }
    let mut stream: Option<StreamRef> = None;
    let mut records = Vec::with_capacity(list.len());
    for (index, value) in list.iter().enumerate() {
        let raw = match serde_json::from_str::<RawRecord>(value.get()) {
            Ok(raw) => raw,
            Err(e) => {
                let event_id = serde_json::from_str::<RawEventId>(value.get())
                    .ok()
                    .and_then(|r| r.event_id)
                    .map(Cow::into_owned)
                    .unwrap_or_else(|| "?".to_owned());
                return Err(EventError::Record {
                    index,
                    event_id,
                    problem: format!("malformed record: {e}"),
                });
            }
        };
        let event_id = raw.event_id.as_deref().unwrap_or("?");
        let error = |problem: String| EventError::Record {
            index,
            event_id: event_id.to_owned(),
            problem,
        };
        match raw.event_source.as_deref() {
            Some("aws:kinesis") => {}
            other => {
                return Err(error(format!(
                    "eventSource is {other:?}, not \"aws:kinesis\"; kinarch archives Kinesis records only"
                )));
            }
        }
        if let Some(version) = raw.event_version.as_deref().filter(|v| *v != KNOWN_VERSION) {
            return Err(error(format!(
                "unknown eventVersion {version:?} (kinarch knows {KNOWN_VERSION})"
            )));
        }
        let kinesis = raw
            .kinesis
            .as_ref()
            .ok_or_else(|| error("the kinesis field is missing".into()))?;
        match kinesis.kinesis_schema_version.as_deref() {
            Some(KNOWN_VERSION) => {}
            other => {
                return Err(error(format!(
                    "unknown kinesisSchemaVersion {other:?} (kinarch knows {KNOWN_VERSION:?})"
                )));
            }
        }
        let arn = raw
            .event_source_arn
            .as_deref()
            .ok_or_else(|| error("eventSourceARN is missing".into()))?;
        let this_stream = StreamRef::from_arn(arn).map_err(|e| error(e.to_string()))?;
        match &stream {
            None => stream = Some(this_stream),
            Some(first) if first.arn != this_stream.arn => {
                return Err(error(format!(
                    "comes from {} but the batch started with {}; one batch must hold one stream",
                    this_stream.arn, first.arn
                )));
            }
            Some(_) => {}
        }
        let shard_id = raw
            .event_id
            .as_deref()
            .and_then(|id| id.split_once(':'))
            .map(|(shard, _)| shard.to_owned())
            .filter(|shard| !shard.is_empty())
            .ok_or_else(|| error("eventID is not <shardId>:<sequenceNumber>".into()))?;
        if kinesis.partition_key.is_empty() {
            return Err(error("the partition key is empty".into()));
        }
        let sequence_number =
            SequenceNumber::parse(&kinesis.sequence_number).map_err(|e| error(e.to_string()))?;
        let data = STANDARD
            .decode(kinesis.data.as_bytes())
            .map_err(|e| error(format!("data is not valid base64: {e}")))?;
        if !kinesis.approximate_arrival_timestamp.is_finite()
            || kinesis.approximate_arrival_timestamp < 0.0
        {
            return Err(error("approximateArrivalTimestamp is not a time".into()));
        }
        records.push(ArchiveRecord::received(
            kinesis.partition_key.clone().into_owned(),
            sequence_number,
            shard_id,
            kinesis.approximate_arrival_timestamp,
            data,
        ));
    }
    let shard_id = records[0].shard_id.clone();
    Ok(KinesisBatch {
        stream: stream.expect("at least one record"),
        shard_id,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream";

    #[test]
    fn the_function_tells_a_compaction_request_from_a_kinesis_event() {
        let event = |value: serde_json::Value| {
            serde_json::from_slice::<FunctionEvent>(&serde_json::to_vec(&value).unwrap()).unwrap()
        };
        let FunctionEvent::Compact(Ok(request)) =
            event(json!({"kinarch": "compact", "streams": [ARN]}))
        else {
            panic!("a compaction request")
        };
        assert_eq!(request.streams[0].name.as_str(), "lambda-stream");
        let FunctionEvent::Kinesis(KinesisEventPayload(Ok(batch))) =
            event(json!({"Records": [record("1", "YQ==")], "kinarch": "compact"}))
        else {
            panic!("Records make a Kinesis event")
        };
        assert_eq!(batch.records.len(), 1);
        let problems = [
            (
                json!({"kinarch": "tier", "streams": [ARN]}),
                "the only request",
            ),
            (json!({"kinarch": "compact"}), "not a list"),
            (json!({"kinarch": "compact", "streams": []}), "empty"),
            (
                json!({"kinarch": "compact", "streams": [7]}),
                "stream 0 is 7",
            ),
            (
                json!({"kinarch": "compact", "streams": ["orders"]}),
                "stream 0",
            ),
        ];
        for (value, expected) in problems {
            let FunctionEvent::Compact(Err(err)) = event(value.clone()) else {
                panic!("a bad request: {value}")
            };
            let message = err.to_string();
            assert!(message.contains(expected), "{value}: {message}");
            assert!(message.contains("CompactionSchedule"), "{message}");
        }
        // Neither: a Kinesis event that cannot be archived, as before.
        let FunctionEvent::Kinesis(KinesisEventPayload(Err(EventError::NotKinesisEvent(_)))) =
            event(json!({"source": "aws.events"}))
        else {
            panic!("not a Kinesis event")
        };
        assert!(matches!(
            decode_event(&json!({"kinarch": "compact", "streams": [ARN]})),
            Err(EventError::NotKinesisEvent(_))
        ));
    }

    fn record(seq: &str, data: &str) -> serde_json::Value {
        json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "1",
                "sequenceNumber": seq,
                "data": data,
                "approximateArrivalTimestamp": 1545084650.987
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000006:{seq}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion": "us-east-2",
            "eventSourceARN": ARN
        })
    }

    #[test]
    fn decodes_the_documented_sample_event() {
        let event = json!({"Records": [record("49590338271490256608559692538361571095921575989136588898", "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg=="), record("49590338271490256608559692540925702759324208523137515618", "VGhpcyBpcyBvbmx5IGEgdGVzdC4=")]});
        let batch = decode_event(&event).unwrap();
        assert_eq!(batch.stream.name.as_str(), "lambda-stream");
        assert_eq!(batch.shard_id, "shardId-000000000006");
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[0].data, b"Hello, this is a test.");
        assert_eq!(
            batch.records[0].approximate_arrival_timestamp,
            1545084650.987
        );
        assert_eq!(batch.records[1].shard_id, "shardId-000000000006");
    }

    fn problem(event: serde_json::Value) -> String {
        decode_event(&event).unwrap_err().to_string()
    }

    #[test]
    fn bad_events_are_named() {
        assert!(problem(json!({})).contains("not a Kinesis event"));
        assert!(problem(json!("text")).contains("not a Kinesis event"));
        assert!(problem(json!({"Records": []})).contains("no records"));
        assert!(problem(json!({"Records": 5})).contains("not a list"));
        assert!(problem(json!({"records": []})).contains("no Records field"));

        let mut sqs = record("1", "AA==");
        sqs["eventSource"] = json!("aws:sqs");
        assert!(problem(json!({"Records": [sqs]})).contains("\"aws:sqs\""));

        let err = problem(json!({"Records": [record("1", "AA=="), record("2", "not base64!")]}));
        assert!(
            err.contains("record 1")
                && err.contains("shardId-000000000006:2")
                && err.contains("base64"),
            "{err}"
        );

        let mut v2 = record("1", "AA==");
        v2["kinesis"]["kinesisSchemaVersion"] = json!("2.0");
        assert!(problem(json!({"Records": [v2]})).contains("unknown kinesisSchemaVersion"));

        let mut ev2 = record("1", "AA==");
        ev2["eventVersion"] = json!("9.9");
        assert!(problem(json!({"Records": [ev2]})).contains("unknown eventVersion"));

        let mut missing = record("1", "AA==");
        missing["kinesis"]
            .as_object_mut()
            .unwrap()
            .remove("partitionKey");
        assert!(problem(json!({"Records": [missing]})).contains("partitionKey"));

        assert!(problem(json!({"Records": [record("12a", "AA==")]})).contains("not a digit"));

        let mut other = record("2", "AA==");
        other["eventSourceARN"] = json!("arn:aws:kinesis:us-east-2:123456789012:stream/other");
        assert!(problem(json!({"Records": [record("1", "AA=="), other]})).contains("one stream"));
    }

    #[test]
    fn escaped_text_and_consumer_arns_decode_from_the_raw_event() {
        // JSON may escape '/' in base64 and use \u escapes in keys: such strings cannot be
        // borrowed from the text and are decoded into owned ones.
        let text = br#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"k\u00e9","sequenceNumber":"7","data":"AAEC\/w==","approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:7","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream/consumer/c:1"}]}"#;
        let batch = decode_event_json(text).unwrap();
        let record = &batch.records[0];
        assert_eq!(record.partition_key, "k\u{e9}");
        assert_eq!(record.data, [0, 1, 2, 0xff]);
        assert_eq!(record.approximate_arrival_timestamp, 1545084650.987);
        assert_eq!(batch.stream.name.as_str(), "lambda-stream");
        assert!(matches!(
            decode_event_json(b"[1, 2]"),
            Err(EventError::NotKinesisEvent(_))
        ));
    }

    #[test]
    fn empty_payload_is_a_record() {
        let batch = decode_event(&json!({"Records": [record("1", "")]})).unwrap();
        assert!(batch.records[0].data.is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(s in "\\PC{0,200}") {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&s) {
                let _ = decode_event(&value);
            }
        }

        #[test]
        fn arbitrary_field_values_never_panic(data in "\\PC{0,40}", seq in "\\PC{0,20}", key in "\\PC{0,10}") {
            let mut r = record("1", "AA==");
            r["kinesis"]["data"] = json!(data);
            r["kinesis"]["sequenceNumber"] = json!(seq);
            r["kinesis"]["partitionKey"] = json!(key);
            let _ = decode_event(&json!({"Records": [r]}));
        }
    }
}
