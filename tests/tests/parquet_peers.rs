//! The Parquet files kinarch writes (issue 24), read by other readers: pyarrow reads every
//! file with the contract's schema, types, nullability, row order, zstd, statistics, a
//! bloom filter on `partitionKey` and the key-value metadata; DuckDB reads the directory
//! with `read_parquet(..., hive_partitioning = true)` and returns exactly the records
//! encoded, with `date`/`hour` partition columns matching each row's arrival hour.
//!
//! Files of several shards and hours are made with `kinarch_core::parquet::encode`, named
//! by `domain::parquet::files_of` and `FileKey::key`, in a directory laid out like the S3
//! prefix; `tests/parquet_peers.py` (the emulator venv's python) reports what pyarrow and
//! DuckDB see.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Timelike, Utc};
use kinarch_core::domain::overflow::OverflowTarget;
use kinarch_core::domain::parquet::{arrival_hour, files_of};
use kinarch_core::domain::timefmt::parse_time;
use kinarch_core::parquet::{SCHEMA_VERSION, arrival_millis, encode};
use kinarch_core::{ArchiveRecord, SequenceNumber, StreamName};
use kinarch_tests::peers::TempDir;
use serde_json::{Value, json};

const STREAM: &str = "orders";

fn archived_at() -> DateTime<Utc> {
    parse_time("2026-05-02T08:15:30.125Z").unwrap()
}

/// Epoch seconds of an RFC 3339 time.
fn at(time: &str) -> f64 {
    parse_time(time).unwrap().timestamp_millis() as f64 / 1000.0
}

fn record(shard: &str, key: &str, sequence: &str, arrival: f64, data: &[u8]) -> ArchiveRecord {
    ArchiveRecord::received(
        key.into(),
        SequenceNumber::parse(sequence).unwrap(),
        shard.into(),
        arrival,
        data.to_vec(),
    )
}

/// Records of two shards over three hours (one past midnight): JSON payloads over 40 keys,
/// the last millisecond of an hour and the first of the next, KPL user records (with and
/// without explicit hash keys), binary payloads with NUL and 0xFF, an empty one, a 1 MiB
/// one, an oversize row; shard 0 has 56-digit sequence numbers, shard 1 emulator-style
/// counters of 1 and 2 digits.
fn records() -> Vec<ArchiveRecord> {
    let s0 = "shardId-000000000000";
    let s1 = "shardId-000000000001";
    let base = "495903382714902566085596925383615710959215759891365";
    let mut out = Vec::new();
    let ten = at("2026-05-01T10:00:00Z");
    for i in 0..2000usize {
        let data = format!(
            "{{\"order\":{i},\"customer\":\"c-{}\",\"amount\":{}.{:02}}}",
            i % 40,
            i * 7 % 500,
            i % 100
        );
        out.push(record(
            s0,
            &format!("key-{}", i % 40),
            &format!("{base}{:05}", 10_000 + i),
            ten + i as f64 * 1.789,
            data.as_bytes(),
        ));
    }
    let seq = |i: usize| format!("{base}{:05}", 20_000 + i);
    out.push(record(
        s0,
        "edge",
        &seq(0),
        at("2026-05-01T10:59:59.999Z"),
        b"last of 10",
    ));
    out.push(record(
        s0,
        "edge",
        &seq(1),
        at("2026-05-01T11:00:00Z"),
        b"first of 11",
    ));
    for sub in 0..3u64 {
        let mut user = record(
            s0,
            &format!("user-{sub}"),
            &seq(2),
            at("2026-05-01T11:30:00.5Z"),
            format!("user record {sub}").as_bytes(),
        );
        user.sub_sequence_number = Some(sub);
        user.explicit_hash_key =
            (sub == 1).then(|| "170141183460469231731687303715884105728".to_owned());
        out.push(user);
    }
    out.push(record(
        s0,
        "binary",
        &seq(3),
        at("2026-05-01T11:31:00Z"),
        &[0, 0xFF, 0, 1, 0xFE, 0xFF, 0],
    ));
    out.push(record(
        s0,
        "empty",
        &seq(4),
        at("2026-05-01T11:32:00Z"),
        b"",
    ));
    let large: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 256) as u8).collect();
    out.push(record(
        s0,
        "large",
        &seq(5),
        at("2026-05-01T11:33:00Z"),
        &large,
    ));
    let mut oversize = record(s0, "oversize", &seq(6), at("2026-05-01T11:34:00Z"), b"");
    oversize.oversize_bytes = Some(2_000_000);
    out.push(oversize);
    for (i, sequence) in ["9", "10", "11", "99"].into_iter().enumerate() {
        out.push(record(
            s1,
            "counter",
            sequence,
            at("2026-05-01T23:59:58Z") + i as f64 * 0.7,
            format!("c{i}").as_bytes(),
        ));
    }
    out.push(record(
        s1,
        "tomorrow",
        "100",
        at("2026-05-02T00:00:00.001Z"),
        b"\x00next day\xFF",
    ));
    out
}

/// A record as the contract says a row holds it (data base64, times in epoch ms).
fn row(record: &ArchiveRecord) -> Value {
    let oversize = record.oversize_bytes;
    json!({
        "partitionKey": record.partition_key,
        "sequenceNumber": record.sequence_number.to_string(),
        "subSequenceNumber": record.sub_sequence_number,
        "explicitHashKey": record.explicit_hash_key,
        "data": if oversize.is_some() { Value::Null } else { json!(STANDARD.encode(&record.data)) },
        "approximateArrivalTimestamp": arrival_millis(record.approximate_arrival_timestamp),
        "shardId": record.shard_id,
        "archivedAt": archived_at().timestamp_millis(),
        "oversize": oversize.map(|_| true),
        "recordSize": oversize,
    })
}

/// The files of [`records`], written where S3 would hold them under `s3://bucket/archive`:
/// the directory, and each file's path relative to it with its rows.
fn archive(name: &str) -> (TempDir, BTreeMap<String, Vec<ArchiveRecord>>) {
    let dir = TempDir::new(name);
    let target = OverflowTarget::parse("s3://bucket/archive").unwrap();
    let stream = StreamName::new(STREAM).unwrap();
    let records = records();
    let mut files = BTreeMap::new();
    for file in files_of(&records) {
        let key = file.key.key(&target, &stream);
        let bytes = encode(&file.records, archived_at(), &stream).unwrap();
        let path = dir.0.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        files.insert(key, file.records.into_iter().cloned().collect());
    }
    (dir, files)
}

/// What pyarrow and DuckDB see in `dir`.
fn peers(dir: &Path, probe: &[(&str, &str)]) -> Value {
    kinarch_tests::peers::read(dir, probe)
}

#[test]
fn pyarrow_reads_every_file_as_the_contract_says() {
    let (dir, files) = archive("pyarrow");
    assert_eq!(files.len(), 4, "{:?}", files.keys().collect::<Vec<_>>());
    let seen = peers(&dir.0, &[]);
    let seen_files = seen["files"].as_object().unwrap();
    assert_eq!(
        seen_files.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    let timestamp = "timestamp[ms, tz=UTC]";
    let schema = json!([
        ["partitionKey", "string", false],
        ["sequenceNumber", "string", false],
        ["subSequenceNumber", "int64", true],
        ["explicitHashKey", "string", true],
        ["data", "binary", true],
        ["approximateArrivalTimestamp", timestamp, false],
        ["shardId", "string", false],
        ["archivedAt", timestamp, false],
        ["oversize", "bool", true],
        ["recordSize", "int64", true],
    ]);
    let physical = [
        "BYTE_ARRAY",
        "BYTE_ARRAY",
        "INT64",
        "BYTE_ARRAY",
        "BYTE_ARRAY",
        "INT64",
        "BYTE_ARRAY",
        "INT64",
        "BOOLEAN",
        "INT64",
    ];
    for (key, records) in &files {
        let file = &seen_files[key];
        assert_eq!(file["schema"], schema, "{key}");
        for (i, column) in file["parquet"].as_array().unwrap().iter().enumerate() {
            assert_eq!(column[1], physical[i], "{key}: {column}");
            let logical = column[2].as_str().unwrap();
            match i {
                0 | 1 | 3 | 6 => assert_eq!(logical, "String", "{column}"),
                5 | 7 => assert!(
                    logical.starts_with("Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds"),
                    "{column}"
                ),
                _ => assert_eq!(logical, "None", "{column}"),
            }
        }
        // The key-value metadata; sequenceDigits only when every number has one length.
        let mut metadata =
            json!({"kinarch.schema": SCHEMA_VERSION.to_string(), "kinarch.stream": STREAM});
        let digits = records[0].sequence_number.digits();
        if records.iter().all(|r| r.sequence_number.digits() == digits) {
            metadata["kinarch.sequenceDigits"] = json!(digits.to_string());
        }
        assert_eq!(file["metadata"], metadata, "{key}");
        // Rows in the order given.
        let expected: Vec<Value> = records.iter().map(row).collect();
        assert_eq!(file["rows"].as_array().unwrap(), &expected, "{key}");
        // One row group (a batch file); every column chunk zstd with statistics.
        assert_eq!(file["row_groups"], 1, "{key}");
        let chunks = file["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), 10);
        for chunk in chunks {
            let column = chunk[1].as_str().unwrap();
            assert_eq!(chunk[2], "ZSTD", "{key}: {chunk}");
            assert_eq!(chunk[3], true, "{key}: statistics on {column}");
            let nulls = chunk[5]
                .as_u64()
                .unwrap_or_else(|| panic!("{key}: null count of {column}"));
            // Min and max wherever the chunk has a value.
            assert_eq!(
                chunk[4],
                nulls < records.len() as u64,
                "{key}: min/max of {column}: {chunk}"
            );
        }
        // A bloom filter on partitionKey, on no other column.
        for bloom in file["bloom"].as_array().unwrap() {
            if bloom[1] == "partitionKey" {
                assert!(
                    bloom[2].as_i64().unwrap_or(0) > 0 && bloom[3].as_i64().unwrap_or(0) > 0,
                    "{key}: {bloom}"
                );
            } else {
                assert!(bloom[2].is_null(), "{key}: {bloom}");
            }
        }
    }
}

#[test]
fn duckdb_reads_the_archive_back_exactly_with_hive_partitions() {
    let (dir, files) = archive("duckdb");
    let big = files
        .iter()
        .find(|(_, records)| records.len() > 1000)
        .map(|(key, _)| key.as_str())
        .unwrap();
    let seen = peers(&dir.0, &[(big, "key-7"), (big, "no-such-key")]);
    // Every record once, in (shard, numeric sequence, sub-sequence) order.
    let mut records: Vec<ArchiveRecord> = files.into_values().flatten().collect();
    records.sort_by(|a, b| {
        (&a.shard_id, &a.sequence_number, a.sub_sequence_number).cmp(&(
            &b.shard_id,
            &b.sequence_number,
            b.sub_sequence_number,
        ))
    });
    let rows = seen["duckdb"].as_array().unwrap();
    assert_eq!(rows.len(), records.len());
    for (seen, record) in rows.iter().zip(&records) {
        let mut expected = row(record);
        let hour = arrival_hour(record);
        expected["date"] = json!(hour.format("%Y-%m-%d").to_string());
        expected["hour"] = json!(hour.hour());
        expected["arrival_type"] = json!("TIMESTAMP WITH TIME ZONE");
        expected["data_type"] = json!("BLOB");
        assert_eq!(seen, &expected);
    }
    // DuckDB's probe of the bloom filter: a key the file holds is not excluded, one it does
    // not hold is.
    assert_eq!(seen["probe"][0], json!([[0, false]]));
    assert_eq!(seen["probe"][1], json!([[0, true]]));
}
