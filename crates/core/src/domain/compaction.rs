//! Compaction of the Parquet archive, pure: which files of a listing are rewritten into
//! which, and the progress object of the scheduled compaction. The I/O is
//! [`crate::compact`].
//!
//! At low traffic the writer makes one small file per invocation, shard and hour.
//! Compaction rewrites the files of each *finished* shard-hour (its hour ended before the
//! run's `before` time) into one file under the layout's own key
//! ([`FileKey`] with the shard-hour's smallest first and largest last sequence number),
//! rows de-duplicated and in order, then deletes the files it replaced:
//! - **Only shard-hours with two files or more** are rewritten; one file is left alone.
//! - **Memory bound**: one output never takes more than [`MAX_INPUT_BYTES`] of input files
//!   (their listed sizes). A larger shard-hour becomes several outputs, each of consecutive
//!   read runs ([`read_runs`]: files whose sequence ranges overlap); a run never splits, so
//!   the outputs' sequence ranges never overlap. A single run above the bound is left as it
//!   is (and said so): it cannot be split and must not be held.
//! - **A file is never overwritten** (a reader may be reading it by ranges): when the
//!   output's key is one of the inputs' keys, that file is kept and the others are only
//!   deleted if it already holds every row of the union; otherwise the others are compacted
//!   among themselves (see [`crate::compact`]).

use chrono::{DateTime, Duration, Utc};

use crate::domain::names::StreamName;
use crate::domain::parquet::{
    FileKey, ParquetTarget, parse_stream_time, read_runs, stream_prefix, stream_time_json,
};

/// Input bytes (Parquet files, as listed) one output file is made of at most. Decoded rows
/// take several times their compressed size, and the output is encoded while they are
/// held: 64 MiB of input stays well inside a 256 MB Lambda function.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// How far back of its last run the scheduled compaction looks again: a file a late retry
/// wrote into an hour already compacted is compacted by the next run.
pub const LATE_FILES: Duration = Duration::hours(1);

/// Files of a listing, each with what the listing said of it.
type Files<T> = Vec<(FileKey, T)>;

/// The files of one output: consecutive read runs of one shard-hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite<T> {
    /// The layout's key of the output: the shard-hour, the inputs' smallest first and
    /// largest last sequence number.
    pub output: FileKey,
    /// The files rewritten, in read order, each with what the listing said of it.
    pub inputs: Vec<(FileKey, T)>,
}

impl<T> Rewrite<T> {
    /// The rewrite of `inputs` (at least one) under the layout's key of their union.
    pub fn of(inputs: Vec<(FileKey, T)>) -> Self {
        Self {
            output: union_key(inputs.iter().map(|(key, _)| key)),
            inputs,
        }
    }

    /// The input whose key is the output's, if there is one: it is never overwritten.
    pub fn covering(&self) -> Option<usize> {
        self.inputs.iter().position(|(key, _)| *key == self.output)
    }
}

/// The key of a file holding the rows of files `keys` (one shard-hour, at least one).
///
/// # Panics
/// On an empty `keys` (a caller's bug: a rewrite always has inputs).
pub fn union_key<'a>(keys: impl IntoIterator<Item = &'a FileKey>) -> FileKey {
    let mut keys = keys.into_iter();
    let first = keys.next().expect("a rewrite has inputs").clone();
    keys.fold(first, |mut union, key| {
        if key.first < union.first {
            union.first = key.first.clone();
        }
        if key.last > union.last {
            union.last = key.last.clone();
        }
        union
    })
}

/// Whether the shard-hour of `key` is finished by `before`: its hour ended at or before it.
pub fn finished(key: &FileKey, before: DateTime<Utc>) -> bool {
    key.hour + Duration::hours(1) <= before
}

/// What a listing comes to: the rewrites, in (hour, shard) order, and the runs left alone
/// because they alone exceed the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<T> {
    /// The outputs to write, each with its inputs.
    pub rewrites: Vec<Rewrite<T>>,
    /// Runs of files above [`MAX_INPUT_BYTES`] by themselves: left as they are.
    pub too_large: Vec<Vec<(FileKey, T)>>,
    /// Shard-hours looked at (finished ones with at least one file).
    pub shard_hours: usize,
}

/// Plans the compaction of `files` (a listing; any order): the finished shard-hours
/// (see [`finished`]) with two files or more, each as one or more [`Rewrite`]s of at most
/// `max_input_bytes` of input (`size` says a file's bytes), in (hour, shard) order.
pub fn plan<T>(
    files: Vec<(FileKey, T)>,
    size: impl Fn(&T) -> u64,
    before: DateTime<Utc>,
    max_input_bytes: u64,
) -> Plan<T> {
    let mut groups: std::collections::BTreeMap<(DateTime<Utc>, String), Files<T>> =
        Default::default();
    for (key, value) in files {
        if finished(&key, before) {
            groups
                .entry((key.hour, key.shard_id.clone()))
                .or_default()
                .push((key, value));
        }
    }
    let mut plan = Plan {
        rewrites: Vec::new(),
        too_large: Vec::new(),
        shard_hours: groups.len(),
    };
    for (_, group) in groups {
        if group.len() < 2 {
            continue;
        }
        let mut output: Vec<(FileKey, T)> = Vec::new();
        let mut bytes = 0u64;
        let flush = |output: &mut Vec<(FileKey, T)>, plan: &mut Plan<T>| {
            if output.len() >= 2 {
                plan.rewrites.push(Rewrite::of(std::mem::take(output)));
            } else {
                output.clear();
            }
        };
        for run in read_runs(group) {
            let run_bytes: u64 = run.iter().map(|(_, v)| size(v)).sum();
            if run_bytes > max_input_bytes {
                flush(&mut output, &mut plan);
                bytes = 0;
                if run.len() >= 2 {
                    plan.too_large.push(run);
                }
                continue;
            }
            if bytes + run_bytes > max_input_bytes {
                flush(&mut output, &mut plan);
                bytes = 0;
            }
            bytes += run_bytes;
            output.extend(run);
        }
        flush(&mut output, &mut plan);
    }
    plan
}

/// The scheduled compaction's progress object's name under `<PREFIX>/<stream>/` (hidden
/// from Athena, Spark and DuckDB globs, as the marker).
pub const PROGRESS_NAME: &str = "_kinarch-compaction.json";

/// `<PREFIX>/<stream>/_kinarch-compaction.json`.
pub fn progress_key(target: &ParquetTarget, stream: &StreamName) -> String {
    format!("{}{PROGRESS_NAME}", stream_prefix(target, stream))
}

/// How far the scheduled compaction of a stream got: every shard-hour that ended at or
/// before `compacted_before` was compacted. Its JSON:
/// `{"compactedBefore":"2026-05-01T10:00:00Z","stream":"orders"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionProgress {
    /// The stream.
    pub stream: String,
    /// The end of the last hour compacted.
    pub compacted_before: DateTime<Utc>,
}

impl CompactionProgress {
    /// The object's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        stream_time_json(&self.stream, "compactedBefore", self.compacted_before)
    }

    /// Reads the object's JSON; `Err` says what is wrong with it.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let (stream, compacted_before) = parse_stream_time(json, "compactedBefore")?;
        Ok(Self {
            stream,
            compacted_before,
        })
    }
}

/// Where a scheduled run starts listing: [`LATE_FILES`] before the last run's end, else
/// the Parquet archive's start (its marker), else nowhere in particular (`None`: the whole
/// stream is listed once).
pub fn scheduled_start(
    progress: Option<DateTime<Utc>>,
    parquet_since: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (progress, parquet_since) {
        (Some(done), _) => Some(done - LATE_FILES),
        (None, since) => since.map(crate::domain::parquet::hour_of),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sequence::SequenceNumber;
    use crate::domain::timefmt::parse_time;

    fn file(hour: &str, shard: &str, first: &str, last: &str, size: u64) -> (FileKey, u64) {
        (
            FileKey {
                hour: parse_time(hour).unwrap(),
                shard_id: shard.into(),
                first: SequenceNumber::parse(first).unwrap(),
                last: SequenceNumber::parse(last).unwrap(),
            },
            size,
        )
    }

    fn shown(plan: &Plan<u64>) -> Vec<String> {
        plan.rewrites
            .iter()
            .map(|r| {
                let inputs: Vec<String> = r
                    .inputs
                    .iter()
                    .map(|(k, _)| format!("{}-{}", k.first, k.last))
                    .collect();
                format!("{} <- {}", r.output, inputs.join(","))
            })
            .collect()
    }

    const TEN: &str = "2026-05-01T10:00:00Z";
    const ELEVEN: &str = "2026-05-01T11:00:00Z";

    #[test]
    fn finished_shard_hours_of_two_files_or_more_become_one_file_each() {
        let files = vec![
            file(TEN, "s1", "20", "29", 10),
            file(TEN, "s0", "9", "15", 10),
            file(TEN, "s0", "1", "10", 10),
            file(TEN, "s0", "100", "120", 10),
            file(TEN, "s2", "5", "5", 10), // one file: left alone
            file(ELEVEN, "s0", "200", "210", 10),
            file(ELEVEN, "s0", "211", "220", 10), // hour 11 is not finished at 11:59
        ];
        let plan = plan(
            files,
            |s| *s,
            parse_time("2026-05-01T11:59:00Z").unwrap(),
            100,
        );
        assert_eq!(
            shown(&plan),
            ["date=2026-05-01/hour=10/s0-1-120.parquet <- 1-10,9-15,100-120"]
        );
        assert_eq!(plan.shard_hours, 3);
        // At 12:00 hour 11 is finished.
        let plan2 = super::plan(
            vec![
                file(ELEVEN, "s0", "200", "210", 10),
                file(ELEVEN, "s0", "211", "220", 10),
            ],
            |s| *s,
            parse_time("2026-05-01T12:00:00Z").unwrap(),
            100,
        );
        assert_eq!(
            shown(&plan2),
            ["date=2026-05-01/hour=11/s0-200-220.parquet <- 200-210,211-220"]
        );
    }

    #[test]
    fn a_large_shard_hour_splits_between_runs_never_inside_one() {
        let files = vec![
            file(TEN, "s", "1", "10", 40),
            file(TEN, "s", "5", "12", 40), // overlaps 1-10: one run of 80
            file(TEN, "s", "13", "20", 30),
            file(TEN, "s", "21", "30", 30),
            file(TEN, "s", "31", "40", 30),
            file(TEN, "s", "41", "50", 200), // a run above the bound alone: not rewritten
            file(TEN, "s", "51", "60", 10),
        ];
        let plan = plan(files, |s| *s, parse_time(ELEVEN).unwrap(), 100);
        assert_eq!(
            shown(&plan),
            [
                "date=2026-05-01/hour=10/s-1-12.parquet <- 1-10,5-12",
                "date=2026-05-01/hour=10/s-13-40.parquet <- 13-20,21-30,31-40",
            ]
        );
        assert!(plan.too_large.is_empty(), "a single file is no run to skip");
        // Two overlapping files above the bound together: reported, not rewritten.
        let plan = super::plan(
            vec![file(TEN, "s", "1", "10", 60), file(TEN, "s", "2", "9", 60)],
            |s| *s,
            parse_time(ELEVEN).unwrap(),
            100,
        );
        assert!(plan.rewrites.is_empty());
        assert_eq!(plan.too_large.len(), 1);
    }

    #[test]
    fn the_output_key_may_be_an_inputs_and_numeric_order_rules() {
        let plan = plan(
            vec![
                file(TEN, "s", "1", "100", 10),
                file(TEN, "s", "9", "20", 10),
                file(TEN, "s", "30", "40", 10),
            ],
            |s| *s,
            parse_time(ELEVEN).unwrap(),
            1000,
        );
        let rewrite = &plan.rewrites[0];
        assert_eq!(
            rewrite.output.to_string(),
            "date=2026-05-01/hour=10/s-1-100.parquet"
        );
        assert_eq!(rewrite.covering(), Some(0));
        let key = union_key([
            &file(TEN, "s", "9", "9", 0).0,
            &file(TEN, "s", "10", "10", 0).0,
        ]);
        assert_eq!((key.first.as_str(), key.last.as_str()), ("9", "10"));
        assert_eq!(
            Rewrite::of(vec![file(TEN, "s", "9", "9", 0)]).covering(),
            Some(0)
        );
    }

    #[test]
    fn progress_reads_back_and_says_where_the_next_run_starts() {
        let progress = CompactionProgress {
            stream: "orders".into(),
            compacted_before: parse_time(ELEVEN).unwrap(),
        };
        let json = progress.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"compactedBefore":"2026-05-01T11:00:00Z","stream":"orders"}"#
        );
        assert_eq!(CompactionProgress::parse(&json).unwrap(), progress);
        assert!(
            CompactionProgress::parse(b"{\"stream\":\"x\"}")
                .unwrap_err()
                .contains("compactedBefore")
        );
        let target = ParquetTarget::parse("s3://bucket/kinarch").unwrap();
        let stream = StreamName::new("orders").unwrap();
        assert_eq!(
            progress_key(&target, &stream),
            "kinarch/orders/_kinarch-compaction.json"
        );
        let t = |s| parse_time(s).unwrap();
        assert_eq!(
            scheduled_start(Some(t(ELEVEN)), Some(t("2026-01-01T00:00:00Z"))),
            Some(t(TEN))
        );
        assert_eq!(
            scheduled_start(None, Some(t("2026-05-01T10:15:00Z"))),
            Some(t(TEN))
        );
        assert_eq!(scheduled_start(None, None), None);
    }
}
