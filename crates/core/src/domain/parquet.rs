//! Where the Parquet archive keeps its files: the object layout (a public contract, written
//! in the README), pure.
//!
//! ```text
//! <PREFIX>/<stream>/date=YYYY-MM-DD/hour=HH/<shardId>-<firstSequence>-<lastSequence>.parquet
//! ```
//!
//! One file holds the records of one shard that arrived in one UTC hour (by
//! `approximateArrivalTimestamp`), from one batch. The `date=` and `hour=` levels are Hive
//! partitions, so Athena, Spark and DuckDB prune by them without a crawler, and kinarch lists
//! only the hours a time window covers. The key depends only on the records (the shard, the
//! hour, the first and last sequence number of the batch's records of that shard and hour),
//! so a batch delivered again writes the same object with the same rows. A batch delivered
//! with other boundaries (Lambda's bisect, a partial failure) writes files that overlap
//! earlier ones: readers keep one row per (shard, sequence number, sub-sequence number).
//!
//! A KPL container is one Kinesis record, never split across batches, so its user records
//! are always in one file; the key names the containers' sequence numbers.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

use crate::domain::names::StreamName;
use crate::domain::overflow::OverflowTarget;
use crate::domain::record::ArchiveRecord;
use crate::domain::selection::{SequenceRange, TimeWindow};
use crate::domain::sequence::SequenceNumber;

/// Where a stream's Parquet files go: `s3://BUCKET/PREFIX` (the value of the stream tag
/// [`crate::domain::config::TAG_PARQUET`]). S3 locations follow one set of rules, those of
/// [`OverflowTarget`].
pub type ParquetTarget = OverflowTarget;

/// The file name's suffix.
pub const FILE_SUFFIX: &str = ".parquet";

/// The start of the UTC hour `time` is in.
pub fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(time.year(), time.month(), time.day(), time.hour(), 0, 0)
        .single()
        .expect("the start of an hour exists in UTC")
}

/// The UTC hour a record arrived in.
pub fn arrival_hour(record: &ArchiveRecord) -> DateTime<Utc> {
    let millis = (record.approximate_arrival_timestamp * 1000.0).floor() as i64;
    hour_of(DateTime::from_timestamp_millis(millis).unwrap_or_default())
}

/// `<PREFIX>/<stream>/`: everything of one stream.
pub fn stream_prefix(target: &ParquetTarget, stream: &StreamName) -> String {
    format!("{}/", target.key_for(stream.as_str()))
}

/// `<PREFIX>/<stream>/date=YYYY-MM-DD/`: one UTC day.
pub fn date_prefix(target: &ParquetTarget, stream: &StreamName, day: DateTime<Utc>) -> String {
    format!(
        "{}date={}/",
        stream_prefix(target, stream),
        day.format("%Y-%m-%d")
    )
}

/// `<PREFIX>/<stream>/date=YYYY-MM-DD/hour=HH/`: one UTC hour.
pub fn hour_prefix(target: &ParquetTarget, stream: &StreamName, hour: DateTime<Utc>) -> String {
    format!(
        "{}hour={:02}/",
        date_prefix(target, stream, hour),
        hour.hour()
    )
}

/// The marker object's name under `<PREFIX>/<stream>/`: a name starting with `_` is a
/// hidden file to Athena, Spark and Hive, and DuckDB's `*.parquet` globs skip it.
pub const MARKER_NAME: &str = "_kinarch.json";

/// How long after `kinarch setup --parquet` every archiver writes Parquet for sure: a record
/// arriving then is archived by an invocation that started later still, with tags read at
/// most `KINARCH_CONFIG_REFRESH_SECONDS` (3 minutes by default; keep it under 15) before it
/// started, so after setup. (`kinarch archive` reads the tags when it starts: restart it.)
pub const START_MARGIN: Duration = Duration::minutes(15);

/// `<PREFIX>/<stream>/_kinarch.json`: when the stream's Parquet archive began (see
/// [`ParquetMarker`]).
pub fn marker_key(target: &ParquetTarget, stream: &StreamName) -> String {
    format!("{}{MARKER_NAME}", stream_prefix(target, stream))
}

/// The marker object `kinarch setup` writes when it turns the Parquet archive on for a
/// stream: records that arrived from `parquet_since` on are in the Parquet archive; those
/// before only in the table (if it still holds them). `--source auto` splits a read there.
/// Its JSON: `{"stream": "orders", "parquetSince": "2026-05-01T12:15:00.000Z"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetMarker {
    /// The stream.
    pub stream: String,
    /// The first arrival time whose records are all in the Parquet archive: setup's time
    /// plus [`START_MARGIN`].
    pub parquet_since: DateTime<Utc>,
}

impl ParquetMarker {
    /// The marker's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        stream_time_json(&self.stream, "parquetSince", self.parquet_since)
    }

    /// Reads a marker's JSON; `Err` says what is wrong with it.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let (stream, parquet_since) = parse_stream_time(json, "parquetSince")?;
        Ok(Self {
            stream,
            parquet_since,
        })
    }
}

/// The JSON of the archive's small objects beside its files (the marker, compaction's
/// progress): `{"<field>": "<RFC 3339 time>", "stream": "<stream>"}`.
pub(crate) fn stream_time_json(stream: &str, field: &str, time: DateTime<Utc>) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    object.insert("stream".into(), stream.into());
    object.insert(field.into(), crate::domain::selection::rfc3339(time).into());
    serde_json::Value::Object(object).to_string().into_bytes()
}

/// Reads what [`stream_time_json`] writes: (stream, time); `Err` says what is wrong.
pub(crate) fn parse_stream_time(
    json: &[u8],
    field: &str,
) -> Result<(String, DateTime<Utc>), String> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let text = |name: &str| {
        value[name]
            .as_str()
            .ok_or_else(|| format!("no {name:?} string"))
    };
    let stream = text("stream")?.to_owned();
    let time =
        crate::domain::timefmt::parse_time(text(field)?).map_err(|e| format!("{field}: {e}"))?;
    Ok((stream, time))
}

/// Where a read of `window` goes when the archive has a table and a Parquet archive that
/// began at `since` (`--source auto`): the part that arrived before `since` from the table,
/// the rest from the Parquet files; a part the window leaves empty is left out. Without a
/// known start (no marker: the tag was set by hand), all from the table, which holds what
/// was archived since setup.
pub fn split_at_start(
    window: &TimeWindow,
    since: Option<DateTime<Utc>>,
) -> (Option<TimeWindow>, Option<TimeWindow>) {
    let Some(since) = since else {
        return (Some(*window), None);
    };
    let table_before = window.before.map_or(since, |before| before.min(since));
    let table = TimeWindow::new(window.after, Some(table_before));
    let parquet_after = window.after.map_or(since, |after| after.max(since));
    let parquet = TimeWindow::new(Some(parquet_after), window.before);
    let non_empty = |w: TimeWindow| match (w.after, w.before) {
        (Some(after), Some(before)) if after >= before => None,
        _ => Some(w),
    };
    (non_empty(table), non_empty(parquet))
}

/// What a file's key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKey {
    /// The UTC hour its records arrived in.
    pub hour: DateTime<Utc>,
    /// The shard they came from.
    pub shard_id: String,
    /// The first (container) sequence number it holds.
    pub first: SequenceNumber,
    /// The last.
    pub last: SequenceNumber,
}

impl FileKey {
    /// The key of this file under `target` for `stream`.
    pub fn key(&self, target: &ParquetTarget, stream: &StreamName) -> String {
        format!(
            "{}{}-{}-{}{FILE_SUFFIX}",
            hour_prefix(target, stream, self.hour),
            self.shard_id,
            self.first,
            self.last
        )
    }

    /// Reads a key written by [`FileKey::key`] (any prefix); `None` for another object.
    pub fn parse(key: &str) -> Option<Self> {
        let name = key.strip_suffix(FILE_SUFFIX)?;
        let mut parts = name.rsplit('/');
        let file = parts.next()?;
        let hour = parts.next()?.strip_prefix("hour=")?;
        let date = parts.next()?.strip_prefix("date=")?;
        let (rest, last) = file.rsplit_once('-')?;
        let (shard_id, first) = rest.rsplit_once('-')?;
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let hour: u32 = hour.parse().ok().filter(|h| *h < 24)?;
        if shard_id.is_empty() {
            return None;
        }
        Some(Self {
            hour: day.and_hms_opt(hour, 0, 0)?.and_utc(),
            shard_id: shard_id.to_owned(),
            first: SequenceNumber::parse(first).ok()?,
            last: SequenceNumber::parse(last).ok()?,
        })
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "date={}/hour={:02}/{}-{}-{}{FILE_SUFFIX}",
            self.hour.format("%Y-%m-%d"),
            self.hour.hour(),
            self.shard_id,
            self.first,
            self.last
        )
    }
}

/// The records of one file to write: one shard, one arrival hour, in (sequence,
/// sub-sequence) order.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecords<'a> {
    /// Its key.
    pub key: FileKey,
    /// Its rows, in order.
    pub records: Vec<&'a ArchiveRecord>,
}

/// The files a batch is written as: its records grouped by (shard, arrival hour), each group
/// in (sequence, sub-sequence) order, the groups in (shard, hour) order.
pub fn files_of<'a>(records: impl IntoIterator<Item = &'a ArchiveRecord>) -> Vec<FileRecords<'a>> {
    let mut groups: std::collections::BTreeMap<(&str, DateTime<Utc>), Vec<&ArchiveRecord>> =
        std::collections::BTreeMap::new();
    for record in records {
        groups
            .entry((record.shard_id.as_str(), arrival_hour(record)))
            .or_default()
            .push(record);
    }
    groups
        .into_iter()
        .map(|((shard, hour), mut records)| {
            records.sort_by(|a, b| {
                (&a.sequence_number, a.sub_sequence_number)
                    .cmp(&(&b.sequence_number, b.sub_sequence_number))
            });
            let first = records[0].sequence_number.clone();
            let last = records[records.len() - 1].sequence_number.clone();
            FileRecords {
                key: FileKey {
                    hour,
                    shard_id: shard.to_owned(),
                    first,
                    last,
                },
                records,
            }
        })
        .collect()
}

/// How many hours a window may span before it is listed day by day instead of hour by hour.
const HOURS_LISTED_ONE_BY_ONE: i64 = 48;

/// The key prefixes to list for the files that may hold records arriving in `window`:
/// one per hour it covers, or per day for a long window, or the whole stream without an
/// after bound. `now` bounds a window without a before bound (no record arrives later).
pub fn listing_prefixes(
    target: &ParquetTarget,
    stream: &StreamName,
    window: &TimeWindow,
    now: DateTime<Utc>,
) -> Vec<String> {
    let Some(after) = window.after else {
        return vec![stream_prefix(target, stream)];
    };
    let first = hour_of(after);
    // The last hour with a record before `before` (exclusive), or the current hour.
    let end = match window.before {
        Some(before) => hour_of(before - Duration::nanoseconds(1)),
        None => hour_of(now),
    };
    if end < first {
        return Vec::new();
    }
    let hours = (end - first).num_hours() + 1;
    if hours <= HOURS_LISTED_ONE_BY_ONE {
        return (0..hours)
            .map(|h| hour_prefix(target, stream, first + Duration::hours(h)))
            .collect();
    }
    let first_day = first.date_naive();
    let days = (end.date_naive() - first_day).num_days() + 1;
    (0..days)
        .map(|d| {
            let day = (first_day + Duration::days(d))
                .and_hms_opt(0, 0, 0)
                .expect("midnight");
            date_prefix(target, stream, day.and_utc())
        })
        .collect()
}

/// Whether a file of `key` may hold records arriving in `window` (by its hour).
pub fn may_hold(key: &FileKey, window: &TimeWindow) -> bool {
    let end = key.hour + Duration::hours(1);
    window.after.is_none_or(|after| end > after)
        && window.before.is_none_or(|before| key.hour < before)
}

/// Whether a file of `key` may hold records of the sequence `range` (its first and last
/// container sequence numbers bound every row's).
pub fn may_hold_sequence(key: &FileKey, range: &SequenceRange) -> bool {
    range.from.as_ref().is_none_or(|from| key.last >= *from)
        && range.to.as_ref().is_none_or(|to| key.first <= *to)
}

/// The files to read, in the order their rows are returned: by shard (in shard-id order,
/// so a parent shard comes before the children of a reshard), and within a shard in
/// sequence order, grouped into runs of files whose sequence ranges overlap (a batch
/// delivered again with other boundaries). A run is read whole, its rows ordered by
/// (sequence, sub-sequence) and each kept once; runs of one file are the rule.
pub fn read_runs<T>(mut files: Vec<(FileKey, T)>) -> Vec<Vec<(FileKey, T)>> {
    files.sort_by(|(a, _), (b, _)| {
        (&a.shard_id, &a.first, &a.last).cmp(&(&b.shard_id, &b.first, &b.last))
    });
    let mut runs: Vec<Vec<(FileKey, T)>> = Vec::new();
    let mut reach: Option<(String, SequenceNumber)> = None;
    for (key, value) in files {
        let overlaps = reach
            .as_ref()
            .is_some_and(|(shard, last)| *shard == key.shard_id && key.first <= *last);
        let last = key.last.clone();
        let shard = key.shard_id.clone();
        match runs.last_mut() {
            Some(run) if overlaps => run.push((key, value)),
            _ => runs.push(vec![(key, value)]),
        }
        reach = match reach {
            Some((s, l)) if overlaps && l > last => Some((s, l)),
            _ => Some((shard, last)),
        };
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timefmt::parse_time;

    fn target() -> ParquetTarget {
        OverflowTarget::parse("s3://archive-bucket/kinarch").unwrap()
    }

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn record(shard: &str, sequence: &str, sub: Option<u64>, arrival: f64) -> ArchiveRecord {
        let mut record = ArchiveRecord::received(
            "k".into(),
            SequenceNumber::parse(sequence).unwrap(),
            shard.into(),
            arrival,
            b"x".to_vec(),
        );
        record.sub_sequence_number = sub;
        record
    }

    #[test]
    fn a_file_key_follows_the_layout_and_reads_back() {
        let key = FileKey {
            hour: parse_time("2026-05-01T10:00:00Z").unwrap(),
            shard_id: "shardId-000000000003".into(),
            first: SequenceNumber::parse(
                "49590338271490256608559692538361571095921575989136588898",
            )
            .unwrap(),
            last: SequenceNumber::parse("49590338271490256608559692538361571095921575989136588999")
                .unwrap(),
        };
        let text = key.key(&target(), &stream());
        assert_eq!(
            text,
            "kinarch/orders/date=2026-05-01/hour=10/shardId-000000000003-\
             49590338271490256608559692538361571095921575989136588898-\
             49590338271490256608559692538361571095921575989136588999.parquet"
        );
        assert_eq!(FileKey::parse(&text), Some(key));
        assert_eq!(
            FileKey::parse("kinarch/orders/date=2026-05-01/hour=10/x.json"),
            None
        );
        assert_eq!(
            FileKey::parse("kinarch/orders/date=2026-05-01/hour=24/s-1-2.parquet"),
            None
        );
        let root = OverflowTarget::parse("s3://archive-bucket").unwrap();
        assert!(
            hour_prefix(
                &root,
                &stream(),
                parse_time("2026-05-01T09:59:59Z").unwrap()
            ) == "orders/date=2026-05-01/hour=09/"
        );
    }

    #[test]
    fn a_batch_is_one_file_per_shard_and_hour_in_sequence_order() {
        let ten = 1_777_629_600.0; // 2026-05-01T10:00:00Z
        let records = vec![
            record("s1", "10", None, ten + 5.0),
            record("s1", "9", None, ten + 1.0),
            record("s0", "7", Some(1), ten + 3599.999),
            record("s0", "7", Some(0), ten + 3599.999),
            record("s0", "8", None, ten + 3600.0),
        ];
        let files = files_of(&records);
        let shown: Vec<String> = files
            .iter()
            .map(|f| {
                let rows: Vec<String> = f
                    .records
                    .iter()
                    .map(|r| format!("{}.{:?}", r.sequence_number, r.sub_sequence_number))
                    .collect();
                format!("{} {}", f.key, rows.join(","))
            })
            .collect();
        assert_eq!(
            shown,
            [
                "date=2026-05-01/hour=10/s0-7-7.parquet 7.Some(0),7.Some(1)",
                "date=2026-05-01/hour=11/s0-8-8.parquet 8.None",
                "date=2026-05-01/hour=10/s1-9-10.parquet 9.None,10.None",
            ]
        );
    }

    #[test]
    fn a_window_lists_the_hours_it_covers() {
        let window = TimeWindow::new(
            Some(parse_time("2026-05-01T10:30:00Z").unwrap()),
            Some(parse_time("2026-05-01T12:00:00Z").unwrap()),
        );
        let now = parse_time("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(
            listing_prefixes(&target(), &stream(), &window, now),
            [
                "kinarch/orders/date=2026-05-01/hour=10/",
                "kinarch/orders/date=2026-05-01/hour=11/"
            ]
        );
        // A long window: day by day.
        let long = TimeWindow::new(Some(parse_time("2026-05-01T10:30:00Z").unwrap()), None);
        let prefixes = listing_prefixes(
            &target(),
            &stream(),
            &long,
            parse_time("2026-05-04T01:00:00Z").unwrap(),
        );
        assert_eq!(prefixes.len(), 4);
        assert_eq!(prefixes[0], "kinarch/orders/date=2026-05-01/");
        // No after bound: the whole stream.
        assert_eq!(
            listing_prefixes(&target(), &stream(), &TimeWindow::default(), now),
            ["kinarch/orders/"]
        );
        let key = |hour: &str| FileKey {
            hour: parse_time(hour).unwrap(),
            shard_id: "s".into(),
            first: SequenceNumber::parse("1").unwrap(),
            last: SequenceNumber::parse("1").unwrap(),
        };
        assert!(may_hold(&key("2026-05-01T10:00:00Z"), &window));
        assert!(may_hold(&key("2026-05-01T11:00:00Z"), &window));
        assert!(!may_hold(&key("2026-05-01T12:00:00Z"), &window));
        assert!(!may_hold(&key("2026-05-01T09:00:00Z"), &window));
    }

    fn file(shard: &str, first: &str, last: &str) -> (FileKey, &'static str) {
        (
            FileKey {
                hour: parse_time("2026-05-01T10:00:00Z").unwrap(),
                shard_id: shard.into(),
                first: SequenceNumber::parse(first).unwrap(),
                last: SequenceNumber::parse(last).unwrap(),
            },
            "",
        )
    }

    #[test]
    fn overlapping_files_of_a_shard_are_read_as_one_run_in_order() {
        let runs = read_runs(vec![
            file("shardId-1", "20", "29"),
            file("shardId-0", "9", "15"),
            file("shardId-0", "1", "10"),
            file("shardId-0", "100", "120"),
            file("shardId-0", "16", "90"),
            file("shardId-1", "1", "19"),
        ]);
        let shape: Vec<Vec<String>> = runs
            .iter()
            .map(|run| {
                run.iter()
                    .map(|(k, _)| format!("{}:{}-{}", k.shard_id, k.first, k.last))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            [
                vec!["shardId-0:1-10", "shardId-0:9-15"],
                vec!["shardId-0:16-90"],
                vec!["shardId-0:100-120"],
                vec!["shardId-1:1-19"],
                vec!["shardId-1:20-29"],
            ]
        );
        // Numeric order, not string order: 9 < 10.
        let runs = read_runs(vec![file("s", "10", "11"), file("s", "9", "9")]);
        assert_eq!(runs[0][0].0.first.as_str(), "9");
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn a_file_is_skipped_when_its_sequence_range_misses_the_selection() {
        let (key, _) = file("s", "10", "20");
        let range = |from: Option<&str>, to: Option<&str>| SequenceRange {
            from: from.map(|s| SequenceNumber::parse(s).unwrap()),
            to: to.map(|s| SequenceNumber::parse(s).unwrap()),
        };
        assert!(may_hold_sequence(&key, &range(None, None)));
        assert!(may_hold_sequence(&key, &range(Some("20"), None)));
        assert!(!may_hold_sequence(&key, &range(Some("21"), None)));
        assert!(may_hold_sequence(&key, &range(None, Some("10"))));
        assert!(!may_hold_sequence(&key, &range(None, Some("9"))));
    }

    #[test]
    fn an_auto_read_splits_at_the_parquet_start() {
        let t = |s: &str| parse_time(s).unwrap();
        let since = Some(t("2026-05-01T12:00:00Z"));
        let whole = TimeWindow::default();
        assert_eq!(
            split_at_start(&whole, since),
            (
                Some(TimeWindow::new(None, since)),
                Some(TimeWindow::new(since, None))
            )
        );
        let before = TimeWindow::new(
            Some(t("2026-05-01T10:00:00Z")),
            Some(t("2026-05-01T11:00:00Z")),
        );
        assert_eq!(split_at_start(&before, since), (Some(before), None));
        let after = TimeWindow::new(Some(t("2026-05-01T13:00:00Z")), None);
        assert_eq!(split_at_start(&after, since), (None, Some(after)));
        let across = TimeWindow::new(
            Some(t("2026-05-01T11:00:00Z")),
            Some(t("2026-05-01T13:00:00Z")),
        );
        assert_eq!(
            split_at_start(&across, since),
            (
                Some(TimeWindow::new(across.after, since)),
                Some(TimeWindow::new(since, across.before))
            )
        );
        assert_eq!(split_at_start(&across, None), (Some(across), None));
    }

    #[test]
    fn the_marker_reads_back_and_bad_ones_say_why() {
        let marker = ParquetMarker {
            stream: "orders".into(),
            parquet_since: parse_time("2026-05-01T12:15:00.5Z").unwrap(),
        };
        assert_eq!(
            String::from_utf8(marker.to_json()).unwrap(),
            r#"{"parquetSince":"2026-05-01T12:15:00.500Z","stream":"orders"}"#
        );
        assert_eq!(ParquetMarker::parse(&marker.to_json()).unwrap(), marker);
        assert!(ParquetMarker::parse(b"{}").unwrap_err().contains("stream"));
        assert!(ParquetMarker::parse(b"not json").is_err());
        assert_eq!(
            marker_key(&target(), &stream()),
            "kinarch/orders/_kinarch.json"
        );
    }
}
