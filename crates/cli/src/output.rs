//! Printing records: the `--output` formats and `--format` lines, written byte for byte to
//! standard output; and the JSON documents of the summaries (`-o json`).
//!
//! Which stream gets what: records, and summaries or status asked for with `-o json`, go
//! to standard output (so a pipe gets only data); human messages, warnings, errors and
//! progress go to standard error. A text summary of a command that prints no records
//! (`setup`, `status`, `list`, `archive`) is its output, so it goes to standard output too;
//! `put` and `reinject` say what they sent on standard error, keeping standard output for
//! `-o json` (and the `reinject --dry-run` listing).

use std::io::{self, IsTerminal, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat};
use kinarch_core::ArchiveRecord;
use kinarch_core::domain::record::Payload;
use serde_json::{Map, Value, json};

use crate::cli::OutputFormat;
use crate::cli::values::thousands;

/// Writes one JSON document and a newline to standard output (`-o json`).
pub(crate) fn print_json(value: &impl serde::Serialize) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value).map_err(io::Error::other)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// A rate for people: thousands separated, one decimal (`1,096.7/s`).
pub(crate) fn rate(count: u64, seconds: f64) -> String {
    let per_second = if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    };
    decimal(per_second, 1) + "/s"
}

/// `value` with thousands separators and exactly `places` decimals.
pub(crate) fn decimal(value: f64, places: usize) -> String {
    let text = format!("{:.*}", places, value.max(0.0));
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = thousands(whole.parse().unwrap_or(0));
    if fraction.is_empty() {
        whole
    } else {
        format!("{whole}.{fraction}")
    }
}

/// An arrival time (epoch seconds, fraction kept) as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(epoch_seconds: f64) -> String {
    DateTime::from_timestamp_millis((epoch_seconds * 1000.0).round() as i64)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Turns the escapes `\n`, `\t`, `\r`, `\0` and `\\` into their bytes; any other
/// backslash is an error (so a typo does not print silently wrong separators).
pub(crate) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b't') => b'\t',
            Some(b'r') => b'\r',
            Some(b'0') => 0,
            Some(b'\\') => b'\\',
            other => {
                return Err(format!(
                    "unknown escape \\{} in {text:?}: use \\n, \\t, \\r, \\0 or \\\\",
                    other.map(|b| (b as char).to_string()).unwrap_or_default()
                ));
            }
        });
    }
    Ok(out)
}

/// One piece of a `--format` line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    /// `%k`
    Key,
    /// `%s`
    Payload,
    /// `%S`
    Size,
    /// `%o`
    Sequence,
    /// `%T`
    Arrival,
    /// `%h`
    Shard,
    /// `%u`
    LastUpdate,
}

/// A kcat-style `--format`: fields (`%k` key, `%s` payload, `%S` payload size, `%o`
/// sequence number, `%T` arrival time RFC 3339, `%h` shard, `%u` lastUpdate, `%%` a
/// percent sign) and escapes (`\n`, `\t`, `\r`, `\0`, `\\`). As in kcat, nothing is
/// added after a record: end the format with `\n` for one line per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineFormat(Vec<Piece>);

impl LineFormat {
    /// Parses a format; an unknown `%` field is an error listing the fields.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let piece = match chars.next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('k') => Piece::Key,
                Some('s') => Piece::Payload,
                Some('S') => Piece::Size,
                Some('o') => Piece::Sequence,
                Some('T') => Piece::Arrival,
                Some('h') => Piece::Shard,
                Some('u') => Piece::LastUpdate,
                other => {
                    return Err(format!(
                        "unknown field %{} in the format: the fields are %k key, %s payload, \
                         %S size, %o sequence number, %T arrival time, %h shard, %u lastUpdate, \
                         %% a percent sign",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(unescape(&std::mem::take(&mut literal))?));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(unescape(&literal)?));
        }
        Ok(Self(pieces))
    }

    fn uses_payload(&self) -> bool {
        self.0.contains(&Piece::Payload)
    }

    fn write(&self, record: &ArchiveRecord, out: &mut Vec<u8>) {
        for piece in &self.0 {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Key => out.extend_from_slice(record.partition_key.as_bytes()),
                Piece::Payload => out.extend_from_slice(&record.data),
                Piece::Size => {
                    let size = record
                        .oversize_bytes
                        .or(record.stored.as_ref().map(|s| s.size))
                        .unwrap_or(record.data.len() as u64);
                    out.extend_from_slice(size.to_string().as_bytes())
                }
                Piece::Sequence => {
                    out.extend_from_slice(record.sequence_number.as_str().as_bytes())
                }
                Piece::Arrival => {
                    out.extend_from_slice(rfc3339(record.approximate_arrival_timestamp).as_bytes())
                }
                Piece::Shard => out.extend_from_slice(record.shard_id.as_bytes()),
                Piece::LastUpdate => {
                    out.extend_from_slice(record.last_update.as_deref().unwrap_or("").as_bytes())
                }
            }
        }
    }
}

/// How each record is printed: an `--output` format and its delimiter, or a `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordFormat {
    /// `--output data|base64|jsonl`; the delimiter follows data and base64 records (jsonl
    /// lines always end in a newline).
    Output(OutputFormat, Vec<u8>),
    /// `--format`.
    Line(LineFormat),
}

/// `1 record`, `2 records`: a count with its noun, singular or plural.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
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

/// Appends one record in `format` to `out`, its delimiter included.
pub(crate) fn format_record(
    format: &RecordFormat,
    record: &ArchiveRecord,
    out: &mut Vec<u8>,
) -> Result<(), NotPrinted> {
    let (format, delimiter) = match format {
        RecordFormat::Line(line) => {
            if line.uses_payload() {
                not_printable(record)?;
            }
            line.write(record, out);
            return Ok(());
        }
        RecordFormat::Output(format, delimiter) => (*format, delimiter.as_slice()),
    };
    match (format, record.payload()) {
        (OutputFormat::Data | OutputFormat::Base64, Payload::Oversize(_) | Payload::Stored(_)) => {
            return not_printable(record);
        }
        (OutputFormat::Data, Payload::Bytes(data)) => out.extend_from_slice(data),
        (OutputFormat::Base64, Payload::Bytes(data)) => {
            out.extend_from_slice(STANDARD.encode(data).as_bytes())
        }
        (OutputFormat::Jsonl, _) => {
            // serde_json escapes control characters and never writes a raw newline.
            serde_json::to_writer(&mut *out, &record_json(record)).expect("JSON into memory");
            out.push(b'\n');
            return Ok(());
        }
    }
    out.extend_from_slice(delimiter);
    Ok(())
}

/// Why a record's payload cannot be printed: too large to archive, or in S3 and not
/// fetched (`--no-fetch`). `Ok` when its bytes are here.
fn not_printable(record: &ArchiveRecord) -> Result<(), NotPrinted> {
    match record.payload() {
        Payload::Bytes(_) => Ok(()),
        Payload::Oversize(size) => Err(NotPrinted::Oversize(size)),
        Payload::Stored(stored) => Err(NotPrinted::NotFetched(stored.location.to_string())),
    }
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
    // The same instant for people and for tools that parse dates, not epochs.
    object.insert(
        "approximateArrivalTime".into(),
        json!(rfc3339(record.approximate_arrival_timestamp)),
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
    format: RecordFormat,
    out: io::BufWriter<io::StdoutLock<'static>>,
    flush_each: bool,
    /// Whether to warn (once) about a binary payload: `--output data` on a terminal.
    warn_binary: bool,
    scratch: Vec<u8>,
}

impl RecordWriter {
    /// A writer on standard output.
    pub(crate) fn stdout(format: RecordFormat) -> Self {
        let stdout = io::stdout();
        let flush_each = stdout.is_terminal();
        let warn_binary =
            flush_each && matches!(format, RecordFormat::Output(OutputFormat::Data, _));
        Self {
            format,
            out: io::BufWriter::with_capacity(64 * 1024, stdout.lock()),
            flush_each,
            warn_binary,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Writes one record. `Ok(Err(..))`: the record cannot be shown in this format.
    pub(crate) fn write(&mut self, record: &ArchiveRecord) -> io::Result<Result<(), NotPrinted>> {
        self.scratch.clear();
        if let Err(why) = format_record(&self.format, record, &mut self.scratch) {
            return Ok(Err(why));
        }
        if self.warn_binary && is_binary(&record.data) {
            self.warn_binary = false;
            self.out.flush()?;
            crate::say(&crate::logging::labelled(
                tracing::Level::WARN,
                &format!(
                    "record {}/{} is binary, shown as raw bytes; --output base64 or \
                     --output jsonl shows binary records safely",
                    record.partition_key, record.sequence_number
                ),
            ));
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

/// Bytes a terminal cannot show as text: not UTF-8, or control characters other than
/// tab, newline and carriage return.
fn is_binary(data: &[u8]) -> bool {
    match std::str::from_utf8(data) {
        Ok(text) => text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
        Err(_) => true,
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
        format_record(&RecordFormat::Output(format, b"\n".to_vec()), r, &mut out).unwrap();
        out
    }

    fn lined(format: &str, r: &ArchiveRecord) -> Vec<u8> {
        let mut out = Vec::new();
        format_record(
            &RecordFormat::Line(LineFormat::parse(format).unwrap()),
            r,
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn kcat_style_formats() {
        let r = record(b"hello");
        assert_eq!(
            lined("%k\\t%o\\t%S\\t%h\\t%T\\t%u\\t%s 100%%\\n", &r),
            b"customer-1\t100\t5\tshardId-000000000001\t2018-12-17T22:10:50.987Z\t2024-05-01 12:00:00\thello 100%\n"
        );
        assert_eq!(lined("%s", &r), b"hello");
        let error = LineFormat::parse("%k %x").unwrap_err();
        assert!(error.contains("%x") && error.contains("%k key"), "{error}");
        assert!(LineFormat::parse("a\\q").unwrap_err().contains("\\q"));
        let mut big = record(b"");
        big.oversize_bytes = Some(7);
        assert_eq!(lined("%k %S\\n", &big), b"customer-1 7\n");
        let with_payload = RecordFormat::Line(LineFormat::parse("%s").unwrap());
        assert_eq!(
            format_record(&with_payload, &big, &mut Vec::new()),
            Err(NotPrinted::Oversize(7))
        );
    }

    #[test]
    fn delimiters_follow_data_and_base64_records() {
        let nul = RecordFormat::Output(OutputFormat::Data, unescape("\\0").unwrap());
        let mut out = Vec::new();
        format_record(&nul, &record(b"a\nb"), &mut out).unwrap();
        assert_eq!(out, b"a\nb\0");
        let jsonl = RecordFormat::Output(OutputFormat::Jsonl, b"\0".to_vec());
        let mut out = Vec::new();
        format_record(&jsonl, &record(b"a"), &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'), "jsonl lines end in a newline");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(rate(10967411, 10000.0), "1,096.7/s");
        assert_eq!(rate(5, 0.0), "0.0/s");
        assert_eq!(decimal(1234567.891, 2), "1,234,567.89");
        assert_eq!(decimal(0.04, 1), "0.0");
        assert_eq!(rfc3339(1545084650.987), "2018-12-17T22:10:50.987Z");
    }

    #[test]
    fn binary_payloads_are_told_apart_from_text() {
        assert!(!is_binary(b"plain\ttext\r\n"));
        assert!(!is_binary("héllo".as_bytes()));
        assert!(is_binary(&[0xff, 0x00]));
        assert!(is_binary(b"bell\x07"));
    }

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(12, "call"), "12 calls");
        assert_eq!(count(2000, "call"), "2,000 calls");
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
                "approximateArrivalTime": "2018-12-17T22:10:50.987Z",
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
        let location = "s3://big-records/orders/shardId-000000000001/100";
        for format in [OutputFormat::Data, OutputFormat::Base64] {
            let mut out = Vec::new();
            let line = RecordFormat::Output(format, vec![]);
            assert_eq!(
                format_record(&line, &big, &mut out),
                Err(NotPrinted::NotFetched(location.into()))
            );
            assert!(out.is_empty());
        }
        let value: Value = serde_json::from_slice(&formatted(OutputFormat::Jsonl, &big)).unwrap();
        assert_eq!(value["recordLocation"], location);
        assert_eq!(value["recordSize"], 3);
        assert!(value.get("recordData").is_none() && value.get("oversize").is_none());
        // --format: the size is the stored one; the payload itself cannot be printed.
        assert_eq!(lined("%S", &big), b"3");
        let line = RecordFormat::Line(LineFormat::parse("%k %s").unwrap());
        assert!(matches!(
            format_record(&line, &big, &mut Vec::new()),
            Err(NotPrinted::NotFetched(_))
        ));
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
            format_record(
                &RecordFormat::Output(OutputFormat::Data, vec![]),
                &big,
                &mut out
            ),
            Err(NotPrinted::Oversize(500_000))
        );
        assert_eq!(
            format_record(
                &RecordFormat::Output(OutputFormat::Base64, vec![]),
                &big,
                &mut out
            ),
            Err(NotPrinted::Oversize(500_000))
        );
        assert!(out.is_empty());
        let value: Value = serde_json::from_slice(&formatted(OutputFormat::Jsonl, &big)).unwrap();
        assert_eq!(value["oversize"], true);
        assert_eq!(value["recordSize"], 500_000);
        assert!(value.get("recordData").is_none());
    }
}
