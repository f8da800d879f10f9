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

/// The marker object of a stream's Parquet archive: what a `--source auto` read needs to
/// know to find each record in the table or in the files.
/// - `parquetSince`, written by `kinarch setup` when it turns the Parquet archive on: records
///   that arrived from then on are in the Parquet archive; those before only in the table
///   (if it still holds them).
/// - `tieredBefore`, written by `kinarch tier --delete` before it deletes items: records that
///   arrived before it are in the Parquet archive and may be gone from the table.
///
/// Its JSON: `{"parquetSince":"2026-05-01T12:15:00.000Z","stream":"orders","tieredBefore":
/// "2026-01-01T00:00:00.000Z"}`; either time may be absent (a stream tiered into files
/// without the archiver ever writing Parquet has no `parquetSince`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetMarker {
    /// The stream.
    pub stream: String,
    /// The first arrival time whose records are all in the Parquet archive: setup's time
    /// plus [`START_MARGIN`].
    pub parquet_since: Option<DateTime<Utc>>,
    /// Records that arrived before this were moved into the Parquet archive by `kinarch
    /// tier --delete`.
    pub tiered_before: Option<DateTime<Utc>>,
}

impl ParquetMarker {
    /// The marker's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut value = serde_json::json!({ "stream": self.stream });
        if let Some(since) = self.parquet_since {
            value["parquetSince"] = crate::domain::selection::rfc3339(since).into();
        }
        if let Some(before) = self.tiered_before {
            value["tieredBefore"] = crate::domain::selection::rfc3339(before).into();
        }
        value.to_string().into_bytes()
    }

    /// Reads a marker's JSON; `Err` says what is wrong with it.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let stream = value["stream"]
            .as_str()
            .ok_or_else(|| "no \"stream\" string".to_owned())?;
        let time = |name: &str| match &value[name] {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(text) => crate::domain::timefmt::parse_time(text)
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
            _ => Err(format!("{name:?} is not a string")),
        };
        Ok(Self {
            stream: stream.to_owned(),
            parquet_since: time("parquetSince")?,
            tiered_before: time("tieredBefore")?,
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

/// The store a part of an `auto` read goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The DynamoDB table.
    Table,
    /// The Parquet files.
    Parquet,
}

/// Where a read of `window` goes when the archive has a table and a Parquet archive
/// (`--source auto`), in the order its parts are read (older arrivals first): what arrived
/// before the marker's `tieredBefore` from the files, then the table up to `parquetSince`,
/// then the files again. A read of one key (`by_key`) takes the table from `tieredBefore`
/// on (one Query: the table holds the key's newer records too). Without a marker (the tag was
/// set by hand), all from the table. Parts the window leaves empty are left out.
pub fn read_parts(
    window: &TimeWindow,
    by_key: bool,
    marker: Option<&ParquetMarker>,
) -> Vec<(Store, TimeWindow)> {
    let tiered = marker.and_then(|m| m.tiered_before);
    let since = marker
        .and_then(|m| m.parquet_since)
        .filter(|_| !by_key)
        .map(|since| tiered.map_or(since, |tiered| since.max(tiered)));
    let clip = |after: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>| {
        let after = match (window.after, after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let before = match (window.before, before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (after, before) {
            (Some(after), Some(before)) if after >= before => None,
            _ => Some(TimeWindow::new(after, before)),
        }
    };
    let candidates = [
        tiered.map(|tiered| (Store::Parquet, clip(None, Some(tiered)))),
        Some((Store::Table, clip(tiered, since))),
        since.map(|since| (Store::Parquet, clip(Some(since), None))),
    ];
    let mut parts: Vec<(Store, TimeWindow)> = Vec::new();
    for (store, part) in candidates.into_iter().flatten() {
        let Some(part) = part else { continue };
        match parts.last_mut() {
            // Adjacent parts of one store are one read.
            Some((last, window)) if *last == store => window.before = part.before,
            _ => parts.push((store, part)),
        }
    }
    parts
}

/// The lifecycle rule that moves one stream's Parquet files to S3 Glacier Instant
/// Retrieval (`setup --parquet-cold-after DAYS`): its id in the bucket's lifecycle
/// configuration (`kinarch-parquet-<stream>`, apart from the overflow bucket's
/// `kinarch-<stream>`, which may share the bucket), and the key prefix it covers
/// (`<PREFIX>/<stream>/`, files and marker). Glacier Instant Retrieval reads in milliseconds,
/// so every read keeps working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdRule {
    /// `kinarch-parquet-<stream>`: the rule setup owns.
    pub id: String,
    /// `<PREFIX>/<stream>/`.
    pub prefix: String,
}

impl ColdRule {
    /// The rule of `stream`'s files under `target`.
    pub fn of(target: &ParquetTarget, stream: &StreamName) -> Self {
        Self {
            id: format!("kinarch-parquet-{stream}"),
            prefix: stream_prefix(target, stream),
        }
    }
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
    fn an_auto_read_splits_at_the_marker_s_times() {
        let t = |s: &str| parse_time(s).unwrap();
        let marker = |since: Option<&str>, tiered: Option<&str>| ParquetMarker {
            stream: "orders".into(),
            parquet_since: since.map(t),
            tiered_before: tiered.map(t),
        };
        let w = |a: Option<&str>, b: Option<&str>| TimeWindow::new(a.map(t), b.map(t));
        let whole = TimeWindow::default();
        let since = marker(Some("2026-05-01T12:00:00Z"), None);
        assert_eq!(
            read_parts(&whole, false, Some(&since)),
            vec![
                (Store::Table, w(None, Some("2026-05-01T12:00:00Z"))),
                (Store::Parquet, w(Some("2026-05-01T12:00:00Z"), None)),
            ]
        );
        let before = w(Some("2026-05-01T10:00:00Z"), Some("2026-05-01T11:00:00Z"));
        assert_eq!(
            read_parts(&before, false, Some(&since)),
            vec![(Store::Table, before)]
        );
        let after = w(Some("2026-05-01T13:00:00Z"), None);
        assert_eq!(
            read_parts(&after, false, Some(&since)),
            vec![(Store::Parquet, after)]
        );
        assert_eq!(read_parts(&whole, false, None), vec![(Store::Table, whole)]);
        // A key reads the table (one Query) without a tier.
        assert_eq!(
            read_parts(&whole, true, Some(&since)),
            vec![(Store::Table, whole)]
        );

        // Tiered before the Parquet archive began: files, table, files.
        let both = marker(Some("2026-05-01T12:00:00Z"), Some("2026-03-01T00:00:00Z"));
        assert_eq!(
            read_parts(&whole, false, Some(&both)),
            vec![
                (Store::Parquet, w(None, Some("2026-03-01T00:00:00Z"))),
                (
                    Store::Table,
                    w(Some("2026-03-01T00:00:00Z"), Some("2026-05-01T12:00:00Z"))
                ),
                (Store::Parquet, w(Some("2026-05-01T12:00:00Z"), None)),
            ]
        );
        assert_eq!(
            read_parts(&whole, true, Some(&both)),
            vec![
                (Store::Parquet, w(None, Some("2026-03-01T00:00:00Z"))),
                (Store::Table, w(Some("2026-03-01T00:00:00Z"), None)),
            ]
        );
        // Tiered past the Parquet archive's start: the files alone, one read.
        let past = marker(Some("2026-05-01T12:00:00Z"), Some("2026-06-01T00:00:00Z"));
        assert_eq!(
            read_parts(&whole, false, Some(&past)),
            vec![(Store::Parquet, whole)]
        );
        // Tiered without the archiver writing Parquet: files, then the table.
        let tier_only = marker(None, Some("2026-03-01T00:00:00Z"));
        let window = w(Some("2026-02-01T00:00:00Z"), Some("2026-04-01T00:00:00Z"));
        assert_eq!(
            read_parts(&window, false, Some(&tier_only)),
            vec![
                (
                    Store::Parquet,
                    w(Some("2026-02-01T00:00:00Z"), Some("2026-03-01T00:00:00Z"))
                ),
                (
                    Store::Table,
                    w(Some("2026-03-01T00:00:00Z"), Some("2026-04-01T00:00:00Z"))
                ),
            ]
        );
    }

    #[test]
    fn the_marker_reads_back_and_bad_ones_say_why() {
        let mut marker = ParquetMarker {
            stream: "orders".into(),
            parquet_since: Some(parse_time("2026-05-01T12:15:00.5Z").unwrap()),
            tiered_before: None,
        };
        assert_eq!(
            String::from_utf8(marker.to_json()).unwrap(),
            r#"{"parquetSince":"2026-05-01T12:15:00.500Z","stream":"orders"}"#
        );
        assert_eq!(ParquetMarker::parse(&marker.to_json()).unwrap(), marker);
        marker.tiered_before = Some(parse_time("2026-01-01T00:00:00Z").unwrap());
        marker.parquet_since = None;
        assert_eq!(
            String::from_utf8(marker.to_json()).unwrap(),
            r#"{"stream":"orders","tieredBefore":"2026-01-01T00:00:00Z"}"#
        );
        assert_eq!(ParquetMarker::parse(&marker.to_json()).unwrap(), marker);
        assert!(ParquetMarker::parse(br#"{"stream":"s","parquetSince":1}"#).is_err());
        assert!(ParquetMarker::parse(b"{}").unwrap_err().contains("stream"));
        assert!(ParquetMarker::parse(b"not json").is_err());
        assert_eq!(
            marker_key(&target(), &stream()),
            "kinarch/orders/_kinarch.json"
        );
    }
}
