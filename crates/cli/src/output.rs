//! Printing records: the `--output` formats, written byte for byte to standard output.

use std::io::{self, IsTerminal, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kinarch_core::ArchiveRecord;
use kinarch_core::domain::record::Payload;
use serde_json::{Map, Value, json};

use crate::cli::OutputFormat;

/// `1 record`, `2 records`: a count with its noun, singular or plural.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Why a record was not printed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotPrinted {
    /// The record was too large for an item, so its bytes are not in the archive; only
    /// `--output jsonl` can show it (with `oversize` and `recordSize`).
    Oversize(u64),
    /// The payload is in S3 and was not fetched (`--no-fetch`); only `--output jsonl`
    /// shows it (with `recordLocation` and `recordSize`).
    NotFetched(String),
}

/// Appends one record in `format` to `out`, newline included.
pub(crate) fn format_record(
    format: OutputFormat,
    record: &ArchiveRecord,
    out: &mut Vec<u8>,
) -> Result<(), NotPrinted> {
    match (format, record.payload()) {
        (OutputFormat::Data | OutputFormat::Base64, Payload::Oversize(size)) => {
            return Err(NotPrinted::Oversize(size));
        }
        (OutputFormat::Data | OutputFormat::Base64, Payload::Stored(stored)) => {
            return Err(NotPrinted::NotFetched(stored.location.to_string()));
        }
        (OutputFormat::Data, Payload::Bytes(data)) => out.extend_from_slice(data),
        (OutputFormat::Base64, Payload::Bytes(data)) => {
            out.extend_from_slice(STANDARD.encode(data).as_bytes())
        }
        (OutputFormat::Jsonl, _) => {
            // serde_json escapes control characters and never writes a raw newline.
            serde_json::to_writer(&mut *out, &record_json(record)).expect("JSON into memory");
        }
    }
    out.push(b'\n');
    Ok(())
}

/// A record as a JSON object with the table contract's attribute names.
pub(crate) fn record_json(record: &ArchiveRecord) -> Value {
    let mut object = Map::new();
    object.insert("partitionKey".into(), json!(record.partition_key));
    object.insert(
        "sequenceNumber".into(),
        json!(record.sequence_number.as_str()),
    );
    // User records of a KPL container: the container's sequence number above, their
    // index in it here (the table's range key joins both, see kinarch_core::domain::kpl).
    if let Some(sub) = record.sub_sequence_number {
        object.insert("subSequenceNumber".into(), json!(sub));
    }
    if let Some(key) = &record.explicit_hash_key {
        object.insert("explicitHashKey".into(), json!(key));
    }
    object.insert("shardId".into(), json!(record.shard_id));
    object.insert(
        "approximateArrivalTimestamp".into(),
        json!(record.approximate_arrival_timestamp),
    );
    if let Some(last_update) = &record.last_update {
        object.insert("lastUpdate".into(), json!(last_update));
    }
    if let Some(expire_after) = record.expire_after {
        object.insert("expireAfter".into(), json!(expire_after));
    }
    // A payload archived in S3 shows where it is, fetched or not.
    if let Some(stored) = &record.stored {
        object.insert("recordLocation".into(), json!(stored.location.to_string()));
        object.insert("recordSize".into(), json!(stored.size));
    }
    match record.payload() {
        Payload::Oversize(size) => {
            object.insert("oversize".into(), json!(true));
            object.insert("recordSize".into(), json!(size));
        }
        Payload::Stored(_) => {}
        Payload::Bytes(data) => {
            object.insert("recordData".into(), json!(STANDARD.encode(data)));
            if let Ok(text) = std::str::from_utf8(data) {
                object.insert("text".into(), json!(text));
            }
        }
    }
    Value::Object(object)
}

/// Writes records to standard output through one lock and one buffer. On a terminal every
/// record is flushed at once, so records show as they come; into a pipe or file they are
/// buffered. A closed pipe comes back as an `io::ErrorKind::BrokenPipe` error.
pub(crate) struct RecordWriter {
    format: OutputFormat,
    out: io::BufWriter<io::StdoutLock<'static>>,
    flush_each: bool,
    scratch: Vec<u8>,
}

impl RecordWriter {
    /// A writer on standard output.
    pub(crate) fn stdout(format: OutputFormat) -> Self {
        let stdout = io::stdout();
        let flush_each = stdout.is_terminal();
        Self {
            format,
            out: io::BufWriter::with_capacity(64 * 1024, stdout.lock()),
            flush_each,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Writes one record. `Ok(Err(..))`: the record cannot be shown in this format.
    pub(crate) fn write(&mut self, record: &ArchiveRecord) -> io::Result<Result<(), NotPrinted>> {
        self.scratch.clear();
        if let Err(why) = format_record(self.format, record, &mut self.scratch) {
            return Ok(Err(why));
        }
        self.out.write_all(&self.scratch)?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(Ok(()))
    }

    /// Flushes what is buffered.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::SequenceNumber;

    fn record(data: &[u8]) -> ArchiveRecord {
        ArchiveRecord {
            partition_key: "customer-1".into(),
            sequence_number: SequenceNumber::parse("100").unwrap(),
            shard_id: "shardId-000000000001".into(),
            approximate_arrival_timestamp: 1545084650.987,
            data: data.to_vec(),
            last_update: Some("2024-05-01 12:00:00".into()),
            expire_after: Some(1714568400),
            oversize_bytes: None,
            sub_sequence_number: None,
            explicit_hash_key: None,
            stored: None,
        }
    }

    fn formatted(format: OutputFormat, r: &ArchiveRecord) -> Vec<u8> {
        let mut out = Vec::new();
        format_record(format, r, &mut out).unwrap();
        out
    }

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(12, "call"), "12 calls");
    }

    #[test]
    fn data_is_the_bytes_unchanged_then_a_newline() {
        let binary = [0u8, 0xff, b'\n', 0x80, b'x'];
        let mut expected = binary.to_vec();
        expected.push(b'\n');
        assert_eq!(formatted(OutputFormat::Data, &record(&binary)), expected);
        assert_eq!(formatted(OutputFormat::Data, &record(b"")), b"\n");
    }

    #[test]
    fn base64_is_one_standard_line() {
        assert_eq!(
            formatted(OutputFormat::Base64, &record(&[0, 0xff, b'\n'])),
            b"AP8K\n"
        );
    }

    #[test]
    fn jsonl_has_every_attribute_and_text_only_for_utf8() {
        let line = formatted(OutputFormat::Jsonl, &record("héllo\n\"q\"".as_bytes()));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            value,
            json!({
                "partitionKey": "customer-1",
                "sequenceNumber": "100",
                "shardId": "shardId-000000000001",
                "approximateArrivalTimestamp": 1545084650.987,
                "lastUpdate": "2024-05-01 12:00:00",
                "expireAfter": 1714568400,
                "recordData": STANDARD.encode("héllo\n\"q\""),
                "text": "héllo\n\"q\"",
            })
        );
        let binary: Value =
            serde_json::from_slice(&formatted(OutputFormat::Jsonl, &record(&[0xff, 0]))).unwrap();
        assert_eq!(binary["recordData"], "/wA=");
        assert!(binary.get("text").is_none());
    }

    #[test]
    fn payloads_in_s3_show_their_location_fetched_or_not() {
        use kinarch_core::domain::overflow::{ObjectLocation, StoredPayload};
        let mut big = record(b"");
        big.stored = Some(StoredPayload {
            location: ObjectLocation::parse("s3://big-records/orders/shardId-000000000001/100")
                .unwrap(),
            size: 3,
        });
        let mut out = Vec::new();
        assert_eq!(
            format_record(OutputFormat::Data, &big, &mut out),
            Err(NotPrinted::NotFetched(
                "s3://big-records/orders/shardId-000000000001/100".into()
            ))
        );
        let value: Value = serde_json::from_slice(&formatted(OutputFormat::Jsonl, &big)).unwrap();
        assert_eq!(
            value["recordLocation"],
            "s3://big-records/orders/shardId-000000000001/100"
        );
        assert_eq!(value["recordSize"], 3);
        assert!(value.get("recordData").is_none() && value.get("oversize").is_none());
        big.data = vec![0, 1, 2];
        assert_eq!(formatted(OutputFormat::Data, &big), [0, 1, 2, b'\n']);
        let value: Value = serde_json::from_slice(&formatted(OutputFormat::Jsonl, &big)).unwrap();
        assert_eq!(value["recordData"], "AAEC");
        assert_eq!(value["recordSize"], 3);
        assert!(value["recordLocation"].is_string());
    }

    #[test]
    fn oversize_records_show_only_in_jsonl() {
        let mut big = record(b"");
        big.oversize_bytes = Some(500_000);
        let mut out = Vec::new();
        assert_eq!(
            format_record(OutputFormat::Data, &big, &mut out),
            Err(NotPrinted::Oversize(500_000))
        );
        assert_eq!(
            format_record(OutputFormat::Base64, &big, &mut out),
            Err(NotPrinted::Oversize(500_000))
        );
        assert!(out.is_empty());
        let value: Value = serde_json::from_slice(&formatted(OutputFormat::Jsonl, &big)).unwrap();
        assert_eq!(value["oversize"], true);
        assert_eq!(value["recordSize"], 500_000);
        assert!(value.get("recordData").is_none());
    }
}
