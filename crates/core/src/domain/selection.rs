//! Which archived records a command reads: the one [`Selection`] of `query`, `scan`,
//! `reinject` (and its `--estimate`), checked once when it is built.
//!
//! A selection is the records of one partition key or of the whole table, narrowed by an
//! inclusive sequence range (numeric order), an arrival window and an archive window (after
//! inclusive, before exclusive, so consecutive windows never share a record), a worker's
//! share of the table (`--segment I/N`), and a total limit. How it is read (page size, the
//! time index, parallel segments within one process) is not part of it: that changes the
//! cost of a read, not the records it returns.
//!
//! [`Selection::fingerprint`] names a selection by its canonical fields, in the words of
//! the command line (`--arrived-after=2026-05-01T10:00:00Z`): a replay journal is the
//! journal of one selection, and must stay so across kinarch releases (see
//! [`FINGERPRINT_VERSION`]).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::filter::ContentFilter;
use crate::domain::record::{ArchiveRecord, format_last_update};
use crate::domain::sequence::SequenceNumber;
use crate::domain::timefmt::epoch_seconds_text;

/// A Kinesis partition key has 1 to 256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Parallel scan segments one process reads at most (`--segments`).
pub const MAX_SEGMENTS: u32 = 1000;
/// DynamoDB's largest `TotalSegments` (`--segment I/N`).
pub const MAX_TOTAL_SEGMENTS: u32 = 1_000_000;

/// The version of [`Selection::fingerprint`]'s form. A change of the form (a field renamed,
/// a value written another way) takes a new version, and readers of journals keep reading
/// the old ones; new fields are added only when they are given (an older fingerprint, which
/// never has them, stays equal to the same selection's new one).
pub const FINGERPRINT_VERSION: u32 = 1;

/// Why a selection cannot be built: options that select nothing or contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectionError(pub String);

/// An inclusive range of sequence numbers, compared numerically; a missing bound is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceRange {
    /// Lowest sequence number included.
    pub from: Option<SequenceNumber>,
    /// Highest sequence number included.
    pub to: Option<SequenceNumber>,
}

impl SequenceRange {
    /// Whether `sequence` lies in the range, comparing numerically.
    pub fn contains(&self, sequence: &SequenceNumber) -> bool {
        self.from.as_ref().is_none_or(|from| sequence >= from)
            && self.to.as_ref().is_none_or(|to| sequence <= to)
    }

    /// The one sequence number the range holds, when `from == to`.
    pub fn single(&self) -> Option<&SequenceNumber> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from == to => Some(from),
            _ => None,
        }
    }

    /// A range with `from` after `to` holds nothing; most likely the bounds were swapped.
    fn check(&self) -> Result<(), SelectionError> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from > to => Err(SelectionError(format!(
                "--from-seq {from} is after --to-seq {to} (sequence numbers compare \
                 numerically), so nothing can match: swap them"
            ))),
            _ => Ok(()),
        }
    }
}

/// A window of time: from `after` (inclusive) to `before` (exclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// At or after this time.
    pub after: Option<DateTime<Utc>>,
    /// Before this time.
    pub before: Option<DateTime<Utc>>,
}

impl TimeWindow {
    /// A window from `after` to `before`, either open.
    pub fn new(after: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>) -> Self {
        Self { after, before }
    }

    /// Whether either bound is given.
    pub fn is_bounded(&self) -> bool {
        self.after.is_some() || self.before.is_some()
    }

    /// A window whose after bound is not before its before bound is empty.
    fn check(&self, flags: &str) -> Result<(), SelectionError> {
        match (self.after, self.before) {
            (Some(after), Some(before)) if after >= before => Err(SelectionError(format!(
                "--{flags}-after {} is not before --{flags}-before {}, so the window selects \
                 nothing (--{flags}-after is inclusive, --{flags}-before exclusive): swap them",
                rfc3339(after),
                rfc3339(before)
            ))),
            _ => Ok(()),
        }
    }

    /// The window's bounds as exact decimals of epoch seconds, for DynamoDB's number
    /// comparisons, each with the same number as `f64` for Rust's.
    pub fn epoch_bounds(&self) -> (Option<ExactTime>, Option<ExactTime>) {
        (self.after.map(exact_epoch), self.before.map(exact_epoch))
    }

    /// The window's bounds as `lastUpdate` texts (whole seconds, fixed width, so they order
    /// like time): after rounded down to its second, before rounded up (a record archived
    /// in the second of a fractional before bound may have been archived before it).
    pub fn last_update_bounds(&self) -> (Option<String>, Option<String>) {
        let after = self.after.map(format_last_update);
        let before = self.before.map(|time| {
            let nanos = time.timestamp_subsec_nanos();
            let second = time - chrono::TimeDelta::nanoseconds(nanos.into());
            format_last_update(match nanos {
                0 => second,
                _ => second + chrono::TimeDelta::seconds(1),
            })
        });
        (after, before)
    }
}

/// A time as the exact decimal DynamoDB compares, and the same number as `f64` for Rust.
pub type ExactTime = (String, f64);

fn exact_epoch(time: DateTime<Utc>) -> ExactTime {
    let text = epoch_seconds_text(time);
    let number = text.parse::<f64>().unwrap_or(f64::INFINITY);
    (text, number)
}

/// Whether `arrival` is within `[after, before)`. Rounding a decimal to `f64` is
/// monotonic, so this never refuses an item that DynamoDB's exact comparison accepted.
pub fn arrived_within(arrival: f64, after: &Option<ExactTime>, before: &Option<ExactTime>) -> bool {
    after.as_ref().is_none_or(|(_, after)| arrival >= *after)
        && before.as_ref().is_none_or(|(_, before)| arrival < *before)
}

/// Segment `index` of `total` of a DynamoDB parallel scan: the share of one worker of
/// many (AWS Batch array jobs, ECS tasks, a Step Functions Map). DynamoDB places each
/// partition key in exactly one segment, so a key's records are all read by one worker, in
/// order, and the workers' segments together are the whole table, each item once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSegment {
    index: u32,
    total: u32,
}

impl WorkerSegment {
    /// Segment `index` of `total`: `0 <= index < total <= 1,000,000`.
    pub fn new(index: u32, total: u32) -> Result<Self, SelectionError> {
        if total == 0 || total > MAX_TOTAL_SEGMENTS || index >= total {
            return Err(SelectionError(format!(
                "segment {index}/{total} does not exist: give I/N with 0 <= I < N <= \
                 {MAX_TOTAL_SEGMENTS} (segments count from 0)"
            )));
        }
        Ok(Self { index, total })
    }

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Self, SelectionError> {
        let invalid = || {
            SelectionError(format!(
                "invalid segment {text:?}: give I/N, e.g. 0/4 for the first of 4 workers"
            ))
        };
        let (index, total) = text.trim().split_once('/').ok_or_else(invalid)?;
        let number = |t: &str| t.trim().parse::<u32>().map_err(|_| invalid());
        Self::new(number(index)?, number(total)?)
    }

    /// Which segment (from 0).
    pub fn index(self) -> u32 {
        self.index
    }

    /// Of how many.
    pub fn total(self) -> u32 {
        self.total
    }

    /// Whether this worker's share holds `partition_key`, for sources without DynamoDB's
    /// segments (the Parquet archive): by a hash of the key (64-bit FNV-1a, fixed across
    /// releases and machines), so each key is read by exactly one worker and keeps its order
    /// there, and the workers together read every record once.
    pub fn owns_key(self, partition_key: &str) -> bool {
        let hash = partition_key
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        hash % u64::from(self.total) == u64::from(self.index)
    }
}

impl fmt::Display for WorkerSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// How a whole-table selection is divided among readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanSplit {
    /// One reader reads it all.
    #[default]
    Whole,
    /// This process reads it in this many parallel segments (2 to [`MAX_SEGMENTS`]); the
    /// records are the same as [`ScanSplit::Whole`]'s.
    Parallel(u32),
    /// This reader reads one worker's share of many.
    Worker(WorkerSegment),
}

/// What a selection is built from: the options as given, unchecked (the command line's
/// flags, or a library caller's). [`Selection::new`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionSpec {
    /// The records of this partition key only; `None`: the whole table.
    pub partition_key: Option<String>,
    /// `--from-seq`.
    pub from_sequence: Option<SequenceNumber>,
    /// `--to-seq`.
    pub to_sequence: Option<SequenceNumber>,
    /// `--arrived-after`, `--arrived-before`: `approximateArrivalTimestamp`.
    pub arrived: TimeWindow,
    /// `--archived-after`, `--archived-before`: `lastUpdate`, whole seconds.
    pub archived: TimeWindow,
    /// `--segments N` (1 or none: one reader).
    pub segments: Option<u32>,
    /// `--segment I/N`.
    pub worker: Option<WorkerSegment>,
    /// `-n`: at most this many records. `Some(0)` reads nothing.
    pub limit: Option<usize>,
    /// `--where`: only records whose JSON payload the expression selects.
    pub content: Option<ContentFilter>,
    /// `--keys-from`: the records of these partition keys only, read key by key in this
    /// order (duplicates are read once); empty: no such bound.
    pub keys: Vec<String>,
}

/// Which records to read, checked: see the [module documentation](self).
///
/// ```
/// use kinarch_core::domain::selection::{Selection, SelectionSpec};
/// use kinarch_core::SequenceNumber;
///
/// let selection = Selection::new(SelectionSpec {
///     partition_key: Some("customer-42".into()),
///     from_sequence: Some(SequenceNumber::parse("100").unwrap()),
///     limit: Some(10),
///     ..SelectionSpec::default()
/// })
/// .unwrap();
/// assert_eq!(
///     selection.fingerprint_text(),
///     "kinarch-selection/1 --partition-key=\"customer-42\" --from-seq=100 --limit=10"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    partition_key: Option<String>,
    sequence: SequenceRange,
    arrived: TimeWindow,
    archived: TimeWindow,
    split: ScanSplit,
    limit: Option<usize>,
    content: Option<ContentFilter>,
    keys: Option<std::sync::Arc<[String]>>,
}

impl Default for Selection {
    /// Every record of the table.
    fn default() -> Self {
        Self::all()
    }
}

impl Selection {
    /// Checks `spec`: a partition key of 1 to 256 characters, `--from-seq` not after
    /// `--to-seq`, windows that are not empty, `--segments` of 1 to 1,000 and not with
    /// `--segment`, and neither with a partition key (a key is read by one Query).
    pub fn new(spec: SelectionSpec) -> Result<Self, SelectionError> {
        if let Some(key) = &spec.partition_key {
            let chars = key.chars().count();
            if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
                return Err(SelectionError(format!(
                    "invalid partition key ({chars} characters): a Kinesis partition key has 1 \
                     to {MAX_PARTITION_KEY_CHARS} characters"
                )));
            }
        }
        let sequence = SequenceRange {
            from: spec.from_sequence,
            to: spec.to_sequence,
        };
        sequence.check()?;
        spec.arrived.check("arrived")?;
        spec.archived.check("archived")?;
        let split = match (spec.segments, spec.worker) {
            (Some(n), _) if n == 0 || n > MAX_SEGMENTS => {
                return Err(SelectionError(format!(
                    "--segments must be 1 to {MAX_SEGMENTS}, not {n}"
                )));
            }
            (Some(n), Some(_)) if n > 1 => {
                return Err(SelectionError(
                    "a worker's segment (--segment I/N) is read as one scan: leave out --segments"
                        .into(),
                ));
            }
            (_, Some(worker)) => ScanSplit::Worker(worker),
            (Some(n), None) if n > 1 => ScanSplit::Parallel(n),
            _ => ScanSplit::Whole,
        };
        let keys = keys_of(spec.keys)?;
        if keys.is_some() && (spec.partition_key.is_some() || split != ScanSplit::Whole) {
            return Err(SelectionError(
                "--keys-from reads its keys one by one: leave out -k, --segment and --segments"
                    .into(),
            ));
        }
        if spec.partition_key.is_some() && split != ScanSplit::Whole {
            return Err(SelectionError(
                "a partition key's records are read with one Query: --segment and --segments \
                 apply to a scan of the whole table only"
                    .into(),
            ));
        }
        Ok(Self {
            partition_key: spec.partition_key,
            sequence,
            arrived: spec.arrived,
            archived: spec.archived,
            split,
            limit: spec.limit,
            content: spec.content,
            keys,
        })
    }

    /// Every record of the table.
    pub fn all() -> Self {
        Self {
            partition_key: None,
            sequence: SequenceRange::default(),
            arrived: TimeWindow::default(),
            archived: TimeWindow::default(),
            split: ScanSplit::Whole,
            limit: None,
            content: None,
            keys: None,
        }
    }

    /// Every record of `partition_key`.
    pub fn key(partition_key: impl Into<String>) -> Result<Self, SelectionError> {
        Self::new(SelectionSpec {
            partition_key: Some(partition_key.into()),
            ..SelectionSpec::default()
        })
    }

    /// The spec this selection was built from (to change a part and build it again).
    pub fn spec(&self) -> SelectionSpec {
        SelectionSpec {
            partition_key: self.partition_key.clone(),
            from_sequence: self.sequence.from.clone(),
            to_sequence: self.sequence.to.clone(),
            arrived: self.arrived,
            archived: self.archived,
            segments: match self.split {
                ScanSplit::Parallel(n) => Some(n),
                _ => None,
            },
            worker: match self.split {
                ScanSplit::Worker(worker) => Some(worker),
                _ => None,
            },
            limit: self.limit,
            content: self.content.clone(),
            keys: self
                .keys
                .as_deref()
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        }
    }

    /// This selection without its `--where` filter and limit: what a filtered read reads
    /// before it filters (the limit counts selected records, so it applies after).
    pub fn unfiltered(&self) -> Selection {
        Selection {
            content: None,
            limit: None,
            ..self.clone()
        }
    }

    /// The keys of `--keys-from`, in order, each once; `None` without it.
    pub fn keys(&self) -> Option<&[String]> {
        self.keys.as_deref()
    }

    /// This selection for one of its `--keys-from` keys: the same bounds, that key only.
    pub fn for_key(&self, key: &str) -> Selection {
        Selection {
            partition_key: Some(key.to_owned()),
            keys: None,
            ..self.clone()
        }
    }

    /// The `--where` filter, when there is one.
    pub fn content(&self) -> Option<&ContentFilter> {
        self.content.as_ref()
    }

    /// The partition key whose records are selected; `None`: the whole table.
    pub fn partition_key(&self) -> Option<&str> {
        self.partition_key.as_deref()
    }

    /// The sequence range.
    pub fn sequence(&self) -> &SequenceRange {
        &self.sequence
    }

    /// The arrival window.
    pub fn arrived(&self) -> TimeWindow {
        self.arrived
    }

    /// The archive window.
    pub fn archived(&self) -> TimeWindow {
        self.archived
    }

    /// How a whole-table selection is divided among readers.
    pub fn split(&self) -> ScanSplit {
        self.split
    }

    /// The worker's share, with `--segment I/N`.
    pub fn worker(&self) -> Option<WorkerSegment> {
        match self.split {
            ScanSplit::Worker(worker) => Some(worker),
            _ => None,
        }
    }

    /// At most this many records.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Whether `record` passes every bound (the Rust side of every read: what DynamoDB
    /// filtered is checked again, so a filter it cannot express is never missed).
    pub fn matches(&self, record: &ArchiveRecord) -> bool {
        let (after, before) = self.arrived.epoch_bounds();
        let (archived_after, archived_before) = self.archived.last_update_bounds();
        let archived_ok = |bound: &Option<String>, keep: fn(&str, &str) -> bool| {
            bound.as_deref().is_none_or(|bound| {
                record
                    .last_update
                    .as_deref()
                    .is_some_and(|at| keep(at, bound))
            })
        };
        self.partition_key
            .as_deref()
            .is_none_or(|key| key == record.partition_key)
            && self
                .keys
                .as_deref()
                .is_none_or(|keys| keys.contains(&record.partition_key))
            && self.sequence.contains(&record.sequence_number)
            && arrived_within(record.approximate_arrival_timestamp, &after, &before)
            && archived_ok(&archived_after, |at, bound| at >= bound)
            && archived_ok(&archived_before, |at, bound| at < bound)
    }

    /// The canonical fields that name this selection, in the words of the command line,
    /// in a fixed order, each only when given: `--partition-key` (JSON-quoted),
    /// `--from-seq`, `--to-seq`, `--arrived-after`, `--arrived-before`,
    /// `--archived-after`, `--archived-before` (RFC 3339 UTC, to the nanosecond when the
    /// time has a fraction), `--segment` (`I/N`), `--where` (JSON-quoted, as typed),
    /// `--keys-from` (`<count> keys md5:<hex>` of the keys in order, one per line), `--limit`. `--segments N` is not among
    /// them: it reads the same records. See [`FINGERPRINT_VERSION`].
    pub fn fingerprint(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(key) = &self.partition_key {
            fields.push(("--partition-key", json_quoted(key)));
        }
        if let Some(from) = &self.sequence.from {
            fields.push(("--from-seq", from.to_string()));
        }
        if let Some(to) = &self.sequence.to {
            fields.push(("--to-seq", to.to_string()));
        }
        let times = [
            ("--arrived-after", self.arrived.after),
            ("--arrived-before", self.arrived.before),
            ("--archived-after", self.archived.after),
            ("--archived-before", self.archived.before),
        ];
        for (flag, time) in times {
            if let Some(time) = time {
                fields.push((flag, rfc3339(time)));
            }
        }
        if let ScanSplit::Worker(worker) = self.split {
            fields.push(("--segment", worker.to_string()));
        }
        if let Some(content) = &self.content {
            fields.push(("--where", json_quoted(content.as_str())));
        }
        if let Some(keys) = &self.keys {
            fields.push(("--keys-from", keys_digest(keys)));
        }
        if let Some(limit) = self.limit {
            fields.push(("--limit", limit.to_string()));
        }
        fields
    }

    /// [`Selection::fingerprint`] as one line: `kinarch-selection/1 --flag=value ...`.
    pub fn fingerprint_text(&self) -> String {
        let mut text = format!("kinarch-selection/{FINGERPRINT_VERSION}");
        for (flag, value) in self.fingerprint() {
            text.push_str(&format!(" {flag}={value}"));
        }
        text
    }
}

/// A time as a fingerprint and messages write it: RFC 3339 UTC, with as many fraction
/// digits as it has (none, milliseconds, microseconds or nanoseconds).
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `--keys-from` keys checked: each a partition key of 1 to 256 characters, each kept
/// once in its first place; `None` when there are none.
fn keys_of(keys: Vec<String>) -> Result<Option<std::sync::Arc<[String]>>, SelectionError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(keys.len());
    for (line, key) in keys.into_iter().enumerate() {
        let chars = key.chars().count();
        if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
            return Err(SelectionError(format!(
                "key {} of --keys-from has {chars} characters: a Kinesis partition key has 1 to \
                 {MAX_PARTITION_KEY_CHARS}",
                line + 1
            )));
        }
        if seen.insert(key.clone()) {
            kept.push(key);
        }
    }
    Ok(Some(kept.into()))
}

/// How the fingerprint names a key list: its length and the MD5 of the keys, one per line.
fn keys_digest(keys: &[String]) -> String {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for key in keys {
        md5.update(key.as_bytes());
        md5.update(b"\n");
    }
    let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{} keys md5:{hex}\"", keys.len())
}

fn json_quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timefmt::parse_time;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    fn time(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    #[test]
    fn contradictions_are_refused_when_the_selection_is_built() {
        let refused = |spec: SelectionSpec| Selection::new(spec).unwrap_err().to_string();
        assert!(
            refused(SelectionSpec {
                from_sequence: Some(seq("10")),
                to_sequence: Some(seq("9")),
                ..SelectionSpec::default()
            })
            .contains("--from-seq 10 is after --to-seq 9")
        );
        assert!(
            refused(SelectionSpec {
                arrived: TimeWindow::new(
                    Some(time("2026-05-01T10:00:00Z")),
                    Some(time("2026-05-01T10:00:00Z"))
                ),
                ..SelectionSpec::default()
            })
            .contains("--arrived-after 2026-05-01T10:00:00Z is not before --arrived-before")
        );
        assert!(
            refused(SelectionSpec {
                segments: Some(0),
                ..SelectionSpec::default()
            })
            .contains("--segments must be 1 to 1000, not 0")
        );
        assert!(
            refused(SelectionSpec {
                segments: Some(2),
                worker: Some(WorkerSegment::new(0, 4).unwrap()),
                ..SelectionSpec::default()
            })
            .contains("leave out --segments")
        );
        assert!(
            refused(SelectionSpec {
                partition_key: Some("k".into()),
                worker: Some(WorkerSegment::new(0, 4).unwrap()),
                ..SelectionSpec::default()
            })
            .contains("one Query")
        );
        assert!(
            refused(SelectionSpec {
                partition_key: Some(String::new()),
                ..SelectionSpec::default()
            })
            .contains("1 to 256")
        );
        // 0 and 1 segments are not two ways of saying "whole": 1 is, 0 is refused.
        let one = Selection::new(SelectionSpec {
            segments: Some(1),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert_eq!(one.split(), ScanSplit::Whole);
        assert_eq!(one, Selection::all());
    }

    /// The exact form of the fingerprint: a journal written by this release is read by the
    /// next, so this form changes only with a new [`FINGERPRINT_VERSION`].
    #[test]
    fn the_fingerprint_has_a_pinned_form() {
        let selection = Selection::new(SelectionSpec {
            partition_key: Some("customer \"42\"".into()),
            from_sequence: Some(seq(
                "49590338271490256608559692538361571095921575989136588898",
            )),
            to_sequence: Some(seq(
                "49590338271490256608559692538361571095921575989136588999",
            )),
            arrived: TimeWindow::new(
                Some(time("2026-05-01T10:00:00Z")),
                Some(time("2026-05-01T12:00:00.250+02:00")),
            ),
            archived: TimeWindow::new(Some(time("1777629600.000001")), None),
            limit: Some(500),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert_eq!(
            selection.fingerprint_text(),
            "kinarch-selection/1 --partition-key=\"customer \\\"42\\\"\" \
             --from-seq=49590338271490256608559692538361571095921575989136588898 \
             --to-seq=49590338271490256608559692538361571095921575989136588999 \
             --arrived-after=2026-05-01T10:00:00Z --arrived-before=2026-05-01T10:00:00.250Z \
             --archived-after=2026-05-01T10:00:00.000001Z --limit=500"
        );
        let worker = Selection::new(SelectionSpec {
            worker: Some(WorkerSegment::new(2, 8).unwrap()),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert_eq!(
            worker.fingerprint_text(),
            "kinarch-selection/1 --segment=2/8"
        );
        // Parallel segments read the same records: the same fingerprint.
        let parallel = Selection::new(SelectionSpec {
            segments: Some(8),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert_eq!(parallel.fingerprint_text(), "kinarch-selection/1");
        assert_eq!(Selection::new(parallel.spec()).unwrap(), parallel);
    }

    #[test]
    fn a_record_matches_every_bound_on_the_rust_side() {
        let selection = Selection::new(SelectionSpec {
            partition_key: Some("k".into()),
            from_sequence: Some(seq("9")),
            to_sequence: Some(seq("100")),
            arrived: TimeWindow::new(Some(time("10")), Some(time("20"))),
            archived: TimeWindow::new(None, Some(time("2024-05-01T12:00:00.5Z"))),
            ..SelectionSpec::default()
        })
        .unwrap();
        let record = |key: &str, sequence: &str, arrival: f64, archived: &str| {
            let mut record = ArchiveRecord::received(
                key.into(),
                seq(sequence),
                "shardId-000000000000".into(),
                arrival,
                b"x".to_vec(),
            );
            record.last_update = Some(archived.into());
            record
        };
        assert!(selection.matches(&record("k", "10", 10.0, "2024-05-01 12:00:00")));
        assert!(!selection.matches(&record("j", "10", 10.0, "2024-05-01 12:00:00")));
        assert!(!selection.matches(&record("k", "8", 10.0, "2024-05-01 12:00:00")));
        assert!(!selection.matches(&record("k", "10", 20.0, "2024-05-01 12:00:00")));
        // The fractional before bound is rounded up to its second: 12:00:00 is kept,
        // 12:00:01 is not.
        assert!(!selection.matches(&record("k", "10", 10.0, "2024-05-01 12:00:01")));
    }

    fn range(from: Option<&str>, to: Option<&str>) -> SequenceRange {
        SequenceRange {
            from: from.map(seq),
            to: to.map(seq),
        }
    }

    fn record(sequence: &str, last_update: &str, arrival: f64) -> ArchiveRecord {
        let mut record = ArchiveRecord::received(
            "k".into(),
            seq(sequence),
            "shardId-000000000000".into(),
            arrival,
            b"x".to_vec(),
        );
        record.last_update = Some(last_update.into());
        record
    }

    #[test]
    fn range_compares_numerically() {
        let r = range(Some("9"), Some("11"));
        let kept: Vec<&str> = ["8", "9", "10", "11", "100", "12"]
            .into_iter()
            .filter(|s| r.contains(&seq(s)))
            .collect();
        assert_eq!(kept, ["9", "10", "11"]);
        assert!(range(Some("10"), None).contains(&seq("100")));
        assert!(!range(Some("10"), None).contains(&seq("9")));
        assert!(range(None, Some("10")).contains(&seq("9")));
        assert!(!range(None, Some("10")).contains(&seq("11")));
        assert!(range(None, None).contains(&seq("0")));
    }

    #[test]
    fn swapped_bounds_are_an_error_numerically() {
        assert!(range(Some("10"), Some("9")).check().is_err());
        // "9" > "10" as strings, but 9 < 10: a valid range.
        assert!(range(Some("9"), Some("10")).check().is_ok());
        assert!(range(Some("5"), Some("5")).check().is_ok());
    }

    #[test]
    fn worker_segments_are_checked() {
        assert_eq!(
            WorkerSegment::parse(" 3/4 ").unwrap(),
            WorkerSegment::new(3, 4).unwrap()
        );
        assert_eq!(
            WorkerSegment::parse("0/1000000").unwrap().to_string(),
            "0/1000000"
        );
        for bad in ["4/4", "0/0", "x/2", "1", "-1/2", "1/1000001", "1/2/3"] {
            let message = WorkerSegment::parse(bad).unwrap_err().to_string();
            assert!(message.contains("I/N"), "{bad}: {message}");
        }
    }

    #[test]
    fn partition_keys_follow_kinesis_rules() {
        assert!(Selection::key("k").is_ok());
        assert!(Selection::key("é".repeat(256)).is_ok());
        assert!(Selection::key("").is_err());
        assert!(Selection::key("k".repeat(257)).is_err());
    }

    #[test]
    fn scan_filters_apply_together() {
        let filter = Selection::new(SelectionSpec {
            from_sequence: Some(seq("10")),
            archived: TimeWindow::new(Some(time("2024-05-01T12:00:00.700Z")), None),
            arrived: TimeWindow::new(Some(time("1714564800.5")), None),
            ..SelectionSpec::default()
        })
        .unwrap();
        let good = record("100", "2024-05-01 12:00:00", 1714564800.5);
        assert!(filter.matches(&good), "at the second and at the instant");
        assert!(!filter.matches(&record("9", "2024-05-01 12:00:00", 1714564801.0)));
        let upto = Selection::new(SelectionSpec {
            from_sequence: Some(seq("9")),
            to_sequence: Some(seq("10")),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert!(upto.matches(&record("10", "2024-05-01 12:00:00", 1.0)));
        assert!(upto.matches(&record("9", "2024-05-01 12:00:00", 1.0)));
        assert!(!upto.matches(&record("11", "2024-05-01 12:00:00", 1.0)));
        assert!(!upto.matches(&record("100", "2024-05-01 12:00:00", 1.0)));
        assert!(!filter.matches(&record("11", "2024-05-01 11:59:59", 1714564801.0)));
        assert!(!filter.matches(&record("11", "2024-05-01 12:00:01", 1714564800.4)));
        let mut no_time = good.clone();
        no_time.last_update = None;
        assert!(!filter.matches(&no_time));
        assert!(Selection::all().matches(&no_time));
    }

    #[test]
    fn windows_are_after_inclusive_and_before_exclusive() {
        let filter = Selection::new(SelectionSpec {
            arrived: TimeWindow::new(Some(time("1714564800")), Some(time("1714564810.5"))),
            archived: TimeWindow::new(None, Some(time("2024-05-01T12:00:00.250Z"))),
            ..SelectionSpec::default()
        })
        .unwrap();
        let at = |arrival: f64, archived: &str| filter.matches(&record("1", archived, arrival));
        assert!(
            at(1714564800.0, "2024-05-01 12:00:00"),
            "the after edge is in"
        );
        assert!(at(1714564810.499, "2024-05-01 11:00:00"));
        assert!(
            !at(1714564810.5, "2024-05-01 11:00:00"),
            "the before edge is out"
        );
        assert!(!at(1714564799.999, "2024-05-01 11:00:00"));
        // lastUpdate 12:00:00 may be 12:00:00.1, before 12:00:00.25: kept; 12:00:01 is not.
        assert!(!at(1714564805.0, "2024-05-01 12:00:01"));
        let whole = Selection::new(SelectionSpec {
            archived: TimeWindow::new(None, Some(time("2024-05-01T12:00:00Z"))),
            ..SelectionSpec::default()
        })
        .unwrap();
        assert!(!whole.matches(&record("1", "2024-05-01 12:00:00", 1.0)));
        assert!(whole.matches(&record("1", "2024-05-01 11:59:59", 1.0)));
        let (after, before) = TimeWindow::new(Some(time("10")), Some(time("20"))).epoch_bounds();
        assert!(arrived_within(10.0, &after, &before) && !arrived_within(20.0, &after, &before));
    }

    #[test]
    fn each_key_belongs_to_exactly_one_worker_by_a_pinned_hash() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c: the split must not change across releases.
        let of_two = |key| WorkerSegment::new(0, 2).unwrap().owns_key(key);
        assert!(of_two("a"), "0xaf63dc4c8601ec8c is even");
        for key in ["a", "b", "customer-42", "", "ü"] {
            let owners = (0..7)
                .filter(|&i| WorkerSegment::new(i, 7).unwrap().owns_key(key))
                .count();
            assert_eq!(owners, 1, "{key:?}");
        }
    }
}
