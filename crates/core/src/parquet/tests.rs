//! Round trips through our own reader, pruning and its counters, and files that cannot be
//! read. Other readers (pyarrow, DuckDB) check the files in `tests/tests/parquet_peers.rs`.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use proptest::prelude::*;

use super::encode::encode_in_row_groups;
use super::*;
use crate::domain::names::StreamName;
use crate::domain::record::{ArchiveRecord, format_last_update};
use crate::domain::selection::{Selection, SelectionSpec, TimeWindow};
use crate::domain::sequence::SequenceNumber;
use crate::domain::timefmt::parse_time;
use crate::error::Error;

const NAME: &str = "s3://bucket/kinarch/orders/date=2026-05-01/hour=10/s-1-2.parquet";

fn stream() -> StreamName {
    StreamName::new("orders").unwrap()
}

fn archived_at() -> DateTime<Utc> {
    parse_time("2026-05-01T10:30:00.250Z").unwrap()
}

fn record(key: &str, sequence: &str, arrival: f64, data: &[u8]) -> ArchiveRecord {
    ArchiveRecord::received(
        key.into(),
        SequenceNumber::parse(sequence).unwrap(),
        "shardId-000000000001".into(),
        arrival,
        data.to_vec(),
    )
}

/// `record` as read back: archived at [`archived_at`].
fn archived(mut record: ArchiveRecord) -> ArchiveRecord {
    record.last_update = Some(format_last_update(archived_at()));
    record
}

fn file(records: &[ArchiveRecord], rows_per_group: usize) -> Bytes {
    let refs: Vec<&ArchiveRecord> = records.iter().collect();
    encode_in_row_groups(&refs, archived_at(), &stream(), rows_per_group)
        .unwrap()
        .into()
}

async fn read(
    bytes: Bytes,
    selection: Selection,
) -> (Vec<Result<ArchiveRecord, Error>>, ParquetReadStats) {
    read_source(Arc::new(MemoryFile::new(NAME, bytes)), selection).await
}

async fn read_source(
    source: Arc<dyn ByteSource>,
    selection: Selection,
) -> (Vec<Result<ArchiveRecord, Error>>, ParquetReadStats) {
    let counters = ParquetCounters::default();
    let items = read_file(source, selection, counters.clone())
        .collect()
        .await;
    (items, counters.snapshot())
}

async fn read_ok(bytes: Bytes, selection: Selection) -> (Vec<ArchiveRecord>, ParquetReadStats) {
    let (items, stats) = read(bytes, selection).await;
    let records = items.into_iter().map(|r| r.unwrap()).collect();
    (records, stats)
}

/// Every kind of record the archive holds.
fn every_kind() -> Vec<ArchiveRecord> {
    let plain = record(
        "customer-1",
        "49590338271490256608559692538361571095921575989136588898",
        1_777_629_600.123,
        b"{\"a\":1}",
    );
    let mut user0 = record(
        "user-a",
        "49590338271490256608559692538361571095921575989136588899",
        1_777_629_601.0,
        b"first",
    );
    user0.sub_sequence_number = Some(0);
    let mut user1 = record(
        "user-b",
        "49590338271490256608559692538361571095921575989136588899",
        1_777_629_601.0,
        b"second",
    );
    user1.sub_sequence_number = Some(1);
    user1.explicit_hash_key = Some("340282366920938463463374607431768211455".into());
    let binary = record(
        "bin",
        "49590338271490256608559692538361571095921575989136588900",
        1_777_629_602.999,
        &[0, 0xFF, 0, 0xF3, 0x89, 0x9A, 0xC2, 0xFF],
    );
    let empty = record(
        "empty",
        "49590338271490256608559692538361571095921575989136588901",
        1_777_629_603.5,
        b"",
    );
    let large: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let large = record(
        "large",
        "49590338271490256608559692538361571095921575989136588902",
        1_777_629_604.001,
        &large,
    );
    let mut oversize = record(
        "big",
        "49590338271490256608559692538361571095921575989136588903",
        1_777_629_605.0,
        b"",
    );
    oversize.oversize_bytes = Some(7_340_032);
    vec![plain, user0, user1, binary, empty, large, oversize]
}

/// A record that was archived before (an item tiered from a table, a row rewritten by
/// compaction) keeps its archive time; the others get the writer's.
#[tokio::test]
async fn a_record_archived_before_keeps_its_archive_time() {
    let mut records = every_kind();
    records[0].last_update = Some("2019-03-04 05:06:07".into());
    records[1].last_update = Some("not a time".into());
    let refs: Vec<&ArchiveRecord> = records.iter().collect();
    let bytes = encode(&refs, archived_at(), &stream()).unwrap();
    let (read, _) = read_ok(bytes.into(), Selection::all()).await;
    let times: Vec<&str> = read
        .iter()
        .filter_map(|r| r.last_update.as_deref())
        .collect();
    assert_eq!(times[0], "2019-03-04 05:06:07");
    assert_eq!(
        times[1], "2026-05-01 10:30:00",
        "an unreadable time: the writer's"
    );
    assert!(times[2..].iter().all(|t| *t == "2026-05-01 10:30:00"));
}

#[tokio::test]
async fn every_kind_of_record_reads_back_as_it_was_archived() {
    let records = every_kind();
    let refs: Vec<&ArchiveRecord> = records.iter().collect();
    let bytes = encode(&refs, archived_at(), &stream()).unwrap();
    let (read, stats) = read_ok(bytes.into(), Selection::all()).await;
    let expected: Vec<ArchiveRecord> = records.into_iter().map(archived).collect();
    assert_eq!(read.len(), expected.len());
    for (read, expected) in read.iter().zip(&expected) {
        assert_eq!(read, expected);
    }
    assert_eq!(read[0].last_update.as_deref(), Some("2026-05-01 10:30:00"));
    assert_eq!(
        read[6].payload(),
        crate::domain::record::Payload::Oversize(7_340_032)
    );
    assert_eq!(
        stats,
        ParquetReadStats {
            files: 1,
            row_groups: 1,
            row_groups_read: 1,
            bytes_read: stats.bytes_read,
            rows_read: 7,
            ..ParquetReadStats::default()
        }
    );
}

#[tokio::test]
async fn a_small_file_is_read_with_one_read_and_a_batch_is_one_row_group() {
    let records: Vec<ArchiveRecord> = (0..1000)
        .map(|i| {
            record(
                &format!("k{}", i % 10),
                &(1000 + i).to_string(),
                1_777_629_600.0 + i as f64 / 1000.0,
                b"payload",
            )
        })
        .collect();
    let refs: Vec<&ArchiveRecord> = records.iter().collect();
    let bytes: Bytes = encode(&refs, archived_at(), &stream()).unwrap().into();
    let (read, stats) = read_ok(bytes.clone(), Selection::all()).await;
    assert_eq!(read.len(), 1000);
    assert_eq!(stats.row_groups, 1);
    assert_eq!(stats.bytes_read, bytes.len() as u64, "read once, whole");
}

#[tokio::test]
async fn an_arrival_window_outside_a_row_group_reads_nothing_of_it() {
    // 30 rows, 10 per row group, one second apart.
    let records: Vec<ArchiveRecord> = (0..30)
        .map(|i| {
            record(
                "k",
                &(100 + i).to_string(),
                1_777_629_600.0 + i as f64,
                b"x",
            )
        })
        .collect();
    let bytes = file(&records, 10);
    let window = |after: f64, before: f64| {
        Selection::new(SelectionSpec {
            arrived: TimeWindow::new(
                DateTime::from_timestamp_millis((after * 1000.0) as i64),
                DateTime::from_timestamp_millis((before * 1000.0) as i64),
            ),
            ..SelectionSpec::default()
        })
        .unwrap()
    };
    // Rows 12..=14: the second row group only.
    let (read, stats) = read_ok(bytes.clone(), window(1_777_629_612.0, 1_777_629_615.0)).await;
    let sequences: Vec<String> = read.iter().map(|r| r.sequence_number.to_string()).collect();
    assert_eq!(sequences, ["112", "113", "114"]);
    assert_eq!(stats.row_groups, 3);
    assert_eq!(stats.row_groups_read, 1);
    assert_eq!(stats.skipped_by_statistics, 2);
    assert_eq!(stats.rows_read, 10);
    // A window after every row: no row group read.
    let (read, stats) = read_ok(bytes.clone(), window(1_777_629_630.0, 1_777_629_700.0)).await;
    assert!(read.is_empty());
    assert_eq!((stats.row_groups_read, stats.rows_read), (0, 0));
    // The edges: after is inclusive, before exclusive, to the millisecond.
    let (read, _) = read_ok(bytes, window(1_777_629_629.0, 1_777_629_629.001)).await;
    assert_eq!(read.len(), 1);
}

#[tokio::test]
async fn the_bloom_filter_skips_a_row_group_without_the_key() {
    // Row group 0 holds keys a-0..a-9 and c-0..c-9 (b-5 is inside its min/max, not in it);
    // row group 1 holds b-5.
    let mut records: Vec<ArchiveRecord> = (0..20)
        .map(|i| {
            let key = if i % 2 == 0 {
                format!("a-{}", i / 2)
            } else {
                format!("c-{}", i / 2)
            };
            record(&key, &(100 + i).to_string(), 1_777_629_600.0, b"x")
        })
        .collect();
    records.extend((20..40).map(|i| record("b-5", &(100 + i).to_string(), 1_777_629_600.0, b"y")));
    let bytes = file(&records, 20);
    let (read, stats) = read_ok(bytes.clone(), Selection::key("b-5").unwrap()).await;
    assert_eq!(read.len(), 20);
    assert!(read.iter().all(|r| r.partition_key == "b-5"));
    assert_eq!(stats.skipped_by_bloom_filter, 1, "{stats:?}");
    assert_eq!(stats.row_groups_read, 1);
    assert_eq!(stats.rows_read, 20);
    // A key in the filter and inside min/max is read.
    let (read, stats) = read_ok(bytes.clone(), Selection::key("c-3").unwrap()).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].sequence_number.to_string(), "107");
    assert_eq!((stats.row_groups_read, stats.skipped_by_statistics), (1, 1));
    // A key outside every min/max: nothing read, not even a bloom filter.
    let (read, stats) = read_ok(bytes, Selection::key("z").unwrap()).await;
    assert!(read.is_empty());
    assert_eq!(
        (stats.skipped_by_statistics, stats.skipped_by_bloom_filter),
        (2, 0)
    );
}

fn from_seq(from: &str) -> Selection {
    Selection::new(SelectionSpec {
        from_sequence: Some(SequenceNumber::parse(from).unwrap()),
        ..SelectionSpec::default()
    })
    .unwrap()
}

#[tokio::test]
async fn sequence_statistics_prune_only_when_every_number_has_one_length() {
    // Rows 1, 10, 2 (emulators' counters): string min "1", max "2", one digit each; --from-seq
    // 3 must still find 10.
    let records = vec![
        record("k", "1", 1.0, b"a"),
        record("k", "10", 1.0, b"b"),
        record("k", "2", 1.0, b"c"),
    ];
    let (read, stats) = read_ok(file(&records, 10), from_seq("3")).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].sequence_number.to_string(), "10");
    assert_eq!(stats.skipped_by_statistics, 0);
    // 56 digits each, as AWS issues: the row groups below the bound are skipped.
    let base = "4959033827149025660855969253836157109592157598913658";
    let records: Vec<ArchiveRecord> = (0..40)
        .map(|i| record("k", &format!("{base}{:04}", 1000 + i), 1.0, b"x"))
        .collect();
    let bytes = file(&records, 10);
    let (read, stats) = read_ok(bytes.clone(), from_seq(&format!("{base}1035"))).await;
    assert_eq!(read.len(), 5);
    assert_eq!((stats.skipped_by_statistics, stats.row_groups_read), (3, 1));
    // A bound with more digits is above every row; with fewer, below every row.
    let (read, stats) = read_ok(bytes.clone(), from_seq(&format!("{base}10350"))).await;
    assert!(read.is_empty());
    assert_eq!(stats.row_groups_read, 0);
    let (read, _) = read_ok(bytes, from_seq("9")).await;
    assert_eq!(read.len(), 40);
}

#[tokio::test]
async fn files_that_cannot_be_read_are_one_error_naming_the_file() {
    let records = every_kind();
    let good = file(&records[..4], 10);
    let expect_file_error = |items: Vec<Result<ArchiveRecord, Error>>, what: &str| {
        assert_eq!(items.len(), 1, "{what}: one item");
        let error = items.into_iter().next().unwrap().unwrap_err();
        assert!(error.is_per_record(), "{what}");
        let Error::ParquetFile { location, reason } = &error else {
            panic!("{what}: {error}");
        };
        assert_eq!(location, NAME);
        let message = error.to_string();
        assert!(message.contains(NAME), "{what}: {message}");
        reason.clone()
    };
    // Cut short: the footer's tail is gone.
    let (items, _) = read(good.slice(..good.len() - 100), Selection::all()).await;
    let reason = expect_file_error(items, "truncated");
    assert!(reason.contains("Parquet"), "{reason}");
    // Not Parquet at all.
    let (items, _) = read(
        Bytes::from_static(b"{\"not\": \"parquet\"}\n"),
        Selection::all(),
    )
    .await;
    expect_file_error(items, "garbage");
    let (items, _) = read(Bytes::new(), Selection::all()).await;
    expect_file_error(items, "empty");
    // Parquet of another schema.
    let reason = expect_file_error(
        read(other_schema(), Selection::all()).await.0,
        "other schema",
    );
    assert!(reason.contains("no column partitionKey"), "{reason}");
    // A file shorter than its listed size (cut after listing).
    let short = Arc::new(Shorter(MemoryFile::new(NAME, good.clone())));
    let reason = expect_file_error(read_source(short, Selection::all()).await.0, "shorter");
    assert!(reason.contains("shorter than its listed size"), "{reason}");
    // The source's own error (a missing object) is the reason.
    let reason = expect_file_error(
        read_source(Arc::new(Missing), Selection::all()).await.0,
        "missing",
    );
    assert!(reason.contains("NoSuchKey"), "{reason}");
}

/// Says its file is 10 bytes longer than it is.
struct Shorter(MemoryFile);

impl ByteSource for Shorter {
    fn size(&self) -> u64 {
        self.0.size() + 10
    }
    fn read(
        &self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'static, Result<Bytes, Error>> {
        self.0.read(range.start.min(self.0.size() - 1)..range.end)
    }
    fn name(&self) -> String {
        self.0.name()
    }
}

struct Missing;

impl ByteSource for Missing {
    fn size(&self) -> u64 {
        1000
    }
    fn read(
        &self,
        _: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'static, Result<Bytes, Error>> {
        futures::future::ready(Err(Error::aws(
            "S3.GetObject",
            crate::aws::error::AwsErrorKind::NotFound,
            "NoSuchKey: The specified key does not exist.",
        )))
        .boxed()
    }
    fn name(&self) -> String {
        NAME.into()
    }
}

use futures::FutureExt as _;

fn other_schema() -> Bytes {
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2])) as arrow_array::ArrayRef,
        ),
        (
            "name",
            Arc::new(StringArray::from(vec!["a", "b"])) as arrow_array::ArrayRef,
        ),
    ])
    .unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.into_inner().unwrap().into()
}

#[tokio::test]
async fn a_newer_schema_version_is_refused_with_what_to_do() {
    use arrow_array::RecordBatch;
    let records = every_kind();
    // Our columns, written with kinarch.schema = 2.
    let refs: Vec<&ArchiveRecord> = records[..1].iter().collect();
    let ours: Bytes = encode(&refs, archived_at(), &stream()).unwrap().into();
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(ours, 1024)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "kinarch.schema".into(),
            "2".to_string(),
        )]))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(props)).unwrap();
    writer.write(&batches[0]).unwrap();
    let newer: Bytes = writer.into_inner().unwrap().into();
    let (items, _) = read(newer, Selection::all()).await;
    let message = items[0].as_ref().unwrap_err().to_string();
    assert!(
        message.contains("schema version 2") && message.contains("upgrade kinarch"),
        "{message}"
    );
}

#[test]
fn arrival_times_are_exact_milliseconds() {
    assert_eq!(arrival_millis(1_545_084_650.987), 1_545_084_650_987);
    assert_eq!(arrival_millis(0.0005), 1, "half away from zero");
    assert_eq!(arrival_millis(-0.0005), -1);
    assert_eq!(arrival_millis(1_777_629_599.999_6), 1_777_629_600_000);
    for millis in [
        0i64,
        1,
        999,
        1_545_084_650_987,
        1_777_629_599_999,
        4_102_444_799_999,
    ] {
        let seconds = millis as f64 / 1000.0;
        assert_eq!(arrival_millis(seconds), millis);
    }
}

fn arbitrary_record() -> impl Strategy<Value = ArchiveRecord> {
    (
        "\\PC{1,12}",
        "(0|[1-9][0-9]{0,60})",
        proptest::option::of(0u64..100_000),
        proptest::option::of("[0-9]{1,39}"),
        proptest::collection::vec(any::<u8>(), 0..200),
        0i64..4_102_444_800_000,
        "shardId-[0-9]{12}",
        proptest::option::of(409_601u64..u32::MAX as u64),
    )
        .prop_map(
            |(key, sequence, sub, hash_key, data, millis, shard, oversize)| {
                let mut record = ArchiveRecord::received(
                    key,
                    SequenceNumber::parse(&sequence).unwrap(),
                    shard,
                    millis as f64 / 1000.0,
                    if oversize.is_some() { Vec::new() } else { data },
                );
                record.sub_sequence_number = sub;
                record.explicit_hash_key = hash_key;
                record.oversize_bytes = oversize;
                record
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_records_read_back_in_order(
        records in proptest::collection::vec(arbitrary_record(), 0..60),
        rows_per_group in 1usize..40,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = file(&records, rows_per_group);
        let (read, stats) = runtime.block_on(read_ok(bytes, Selection::all()));
        let expected: Vec<ArchiveRecord> = records.into_iter().map(archived).collect();
        prop_assert_eq!(stats.rows_read, expected.len() as u64);
        prop_assert_eq!(read, expected);
    }
}

/// A rewritten file (compaction) keeps each row's own archive time, to the second.
#[tokio::test]
async fn a_rewritten_file_keeps_each_rows_archive_time() {
    let mut first = record("a", "1", 1_777_629_600.0, b"x");
    first.last_update = Some("2026-05-01 10:00:05".into());
    let mut second = record("b", "2", 1_777_629_601.0, b"y");
    second.last_update = Some("2026-05-01 10:20:00".into());
    let bytes = encode(&[&first, &second], archived_at(), &stream()).unwrap();
    let (rows, _) = read_ok(bytes.into(), Selection::all()).await;
    assert_eq!(rows, [first, second]);
}
