//! Decoding the Kinesis event that Lambda delivers.
//!
//! We read the event JSON ourselves instead of through `aws_lambda_events::KinesisEvent`:
//! a bad record must be reported by its position and event ID (serde would only say
//! "invalid value at line 1 column 803"), and `approximateArrivalTimestamp` must reach the
//! archive as the exact number Lambda sent (the library turns it into a date-time and the
//! fraction would come back rounded).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

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

/// The shape of an event, only for serde's description of one that is not a Kinesis event.
#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "Records")]
    _records: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    event_source: Option<String>,
    event_version: Option<String>,
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    kinesis: Option<RawKinesis>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKinesis {
    kinesis_schema_version: Option<String>,
    partition_key: String,
    sequence_number: String,
    data: String,
    approximate_arrival_timestamp: f64,
}

/// The only event and schema version that exist; another one would mean a format we do not
/// know, and guessing could archive wrong data.
const KNOWN_VERSION: &str = "1.0";

/// Decodes and validates a Lambda Kinesis event.
pub fn decode_event(event: &serde_json::Value) -> Result<KinesisBatch, EventError> {
    // The records are read where they are: deserializing `Records` into an owned list
    // would copy the whole event (for 10,000 records, ~18 MiB more at the Lambda's peak).
    // Serde still describes what is wrong with an event that has no such list.
    let Some(list) = event.get("Records").and_then(serde_json::Value::as_array) else {
        let problem = match RawEvent::deserialize(event) {
            Err(e) => e.to_string(),
            Ok(_) => "Records is not a list".to_owned(),
        };
        return Err(EventError::NotKinesisEvent(problem));
    };
    if list.is_empty() {
        return Err(EventError::Empty);
    }
    let mut stream: Option<StreamRef> = None;
    let mut records = Vec::with_capacity(list.len());
    for (index, value) in list.iter().enumerate() {
        let event_id = value
            .get("eventID")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let error = |problem: String| EventError::Record {
            index,
            event_id: event_id.clone(),
            problem,
        };
        let raw =
            RawRecord::deserialize(value).map_err(|e| error(format!("malformed record: {e}")))?;
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
            .ok_or_else(|| error("eventSourceARN is missing".into()))?;
        let this_stream = StreamRef::from_arn(&arn).map_err(|e| error(e.to_string()))?;
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
        records.push(ArchiveRecord {
            partition_key: kinesis.partition_key,
            sequence_number,
            shard_id,
            approximate_arrival_timestamp: kinesis.approximate_arrival_timestamp,
            data,
            last_update: None,
            expire_after: None,
            oversize_bytes: None,
            sub_sequence_number: None,
            explicit_hash_key: None,
        });
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
