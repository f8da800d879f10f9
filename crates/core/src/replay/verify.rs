//! `reinject --verify`: after a replay, read what was sent back from the target stream and
//! check it against what Kinesis said it stored.
//!
//! While the replay runs, every record Kinesis accepts goes into a [`SentLedger`]: its
//! partition key, its original position, the shard and sequence number PutRecords answered,
//! and the MD5 of the bytes sent (with the frame under `--metadata`). Afterwards
//! [`verify`] reads each target shard that holds a sent record with GetRecords, from the
//! lowest sequence number sent into it up to the highest, and hands what it reads to a
//! [`Verifier`], which decides without I/O:
//!
//! - **verified**: the record at the answered shard and sequence number has the same
//!   partition key and bytes;
//! - **missing**: nothing is at that position (Kinesis answered success and did not keep
//!   it, or the read did not reach it);
//! - **altered**: the record at that position has other bytes or another key;
//! - **duplicated**: the record is in the target more than once (a PutRecords call that
//!   timed out after Kinesis stored its records and was sent again, a replay resumed after
//!   a crash between an accepted call and the journal's save);
//! - **out of order**: a record of a key sits before a record of that key sent earlier, in
//!   the same shard (the order guarantee of the [sender](super::sender)).
//!
//! Records written into the target by others in between are counted and otherwise ignored:
//! they are neither at a sent position nor equal (key and bytes) to a sent record. A record
//! of another producer with the same key and bytes as a replayed one is indistinguishable
//! from a duplicate, and is reported as one.
//!
//! With `--journal PATH`, the ledger is also appended to `PATH.sent` (JSON lines) as the
//! replay goes, before the journal is saved, so that a resumed replay verifies the records
//! of its earlier runs too. Records an earlier run sent without `--verify` have no ledger
//! line; they are counted as not verifiable. A journal that does not exist yet starts a
//! new ledger (an old `PATH.sent` is replaced).
//!
//! Memory: the ledger keeps about 100 bytes per record sent, plus its partition key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::aws::retry::{Budget, retry};
use crate::domain::names::{StreamAddress, StreamName};
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;
use crate::poller::kinesis::{ShardCall, ShardCalls, ShardOperation, call_retries};
use crate::poller::{MAX_BATCH_SIZE, MIN_CALL_INTERVAL, Position as ReadFrom};
use crate::replay::journal::{Position, format_position, parse_position};
use crate::replay::sender::Accepted;

/// How many findings of each kind a report names; the rest are counted.
pub const NAMED_FINDINGS: usize = 10;
/// Shards read back at once.
const SHARDS_AT_ONCE: usize = 4;
/// How long a GetShardIterator or GetRecords call of the read-back is retried.
const CALL_BUDGET: Duration = Duration::from_secs(120);
/// How long to wait before reading again when records were missing: Kinesis makes an
/// accepted record readable within moments, so one more look rules out a read that came
/// too early.
const SECOND_LOOK_AFTER: Duration = Duration::from_secs(2);

/// A record Kinesis accepted, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// Its partition key.
    pub partition_key: String,
    /// Its position in the archive (original sequence and sub-sequence number).
    pub original: Position,
    /// The target shard PutRecords answered.
    pub shard_id: String,
    /// The sequence number PutRecords answered, as answered.
    pub sequence_number: String,
    /// MD5 of the bytes sent.
    pub md5: [u8; 16],
}

impl SentRecord {
    /// The ledger's entry for an accepted record.
    pub fn of(accepted: &Accepted<Position>) -> Self {
        Self {
            partition_key: accepted.partition_key.clone(),
            original: accepted.id.clone(),
            shard_id: accepted.placement.shard_id.clone(),
            sequence_number: accepted.placement.sequence_number.clone(),
            md5: Md5::digest(&accepted.data).into(),
        }
    }
}

/// One line of `PATH.sent`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LedgerLine {
    partition_key: String,
    /// `sequence` or `sequence.sub` (as in the journal).
    position: String,
    shard_id: String,
    sequence_number: String,
    md5: String,
}

/// What a replay sent, in the order Kinesis accepted it (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct SentLedger {
    records: Vec<SentRecord>,
    /// Records loaded from earlier runs' ledger file.
    earlier: usize,
    file: Option<(PathBuf, BufWriter<std::fs::File>)>,
}

impl SentLedger {
    /// A ledger kept in memory only (a replay without a journal).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The ledger kept next to the journal at `journal`: `JOURNAL.sent`, loaded when
    /// `resume` (the journal was there) and appended to; started anew otherwise.
    pub fn beside_journal(journal: &Path, resume: bool) -> Result<Self, Error> {
        let path = ledger_path(journal);
        let mut ledger = Self::default();
        if resume {
            match std::fs::File::open(&path) {
                Ok(file) => {
                    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                        let line =
                            line.map_err(|e| ledger_error(&path, format!("cannot be read: {e}")))?;
                        if line.trim().is_empty() {
                            continue;
                        }
                        let record = parse_line(&line).ok_or_else(|| {
                            ledger_error(
                                &path,
                                format!(
                                    "line {} is not a ledger line; delete the file to verify \
                                     only what this run sends",
                                    n + 1
                                ),
                            )
                        })?;
                        ledger.records.push(record);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ledger_error(&path, format!("cannot be read: {e}"))),
            }
            ledger.earlier = ledger.records.len();
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(&path)
            .map_err(|e| ledger_error(&path, format!("cannot be written: {e}")))?;
        ledger.file = Some((path, BufWriter::new(file)));
        Ok(ledger)
    }

    /// Adds the records of an answered request.
    pub fn add(&mut self, accepted: &[Accepted<Position>]) -> Result<(), Error> {
        for record in accepted {
            let record = SentRecord::of(record);
            if let Some((path, out)) = self.file.as_mut() {
                let line = serde_json::to_string(&LedgerLine {
                    partition_key: record.partition_key.clone(),
                    position: format_position(&record.original),
                    shard_id: record.shard_id.clone(),
                    sequence_number: record.sequence_number.clone(),
                    md5: hex(&record.md5),
                })
                .map_err(|e| ledger_error(path, format!("cannot be encoded: {e}")))?;
                writeln!(out, "{line}")
                    .map_err(|e| ledger_error(path, format!("cannot be written: {e}")))?;
            }
            self.records.push(record);
        }
        Ok(())
    }

    /// Writes what is buffered to the file (before the journal is saved, so that the
    /// journal never names a record the ledger lacks).
    pub fn flush(&mut self) -> Result<(), Error> {
        if let Some((path, out)) = self.file.as_mut() {
            out.flush()
                .and_then(|()| out.get_ref().sync_data())
                .map_err(|e| ledger_error(path, format!("cannot be written: {e}")))?;
        }
        Ok(())
    }

    /// Every record in the ledger, earlier runs' first.
    pub fn records(&self) -> &[SentRecord] {
        &self.records
    }

    /// How many records came from earlier runs' ledger.
    pub fn earlier(&self) -> usize {
        self.earlier
    }
}

/// Where the ledger of the journal at `journal` is kept.
pub fn ledger_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".sent");
    PathBuf::from(name)
}

fn parse_line(line: &str) -> Option<SentRecord> {
    let line: LedgerLine = serde_json::from_str(line).ok()?;
    let md5 = unhex(&line.md5)?;
    Some(SentRecord {
        partition_key: line.partition_key,
        original: parse_position(&line.position)?,
        shard_id: line.shard_id,
        sequence_number: line.sequence_number,
        md5,
    })
}

fn ledger_error(path: &Path, problem: String) -> Error {
    Error::InvalidInput(format!("the verify ledger {} {problem}", path.display()))
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A record that did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Its partition key.
    pub partition_key: String,
    /// Its original position (`sequence` or `sequence.sub`).
    pub original: String,
    /// The target shard PutRecords answered.
    pub shard_id: String,
    /// The sequence number PutRecords answered.
    pub sequence_number: String,
    /// What is wrong.
    pub detail: String,
}

/// The records of one kind of finding: how many, and the first [`NAMED_FINDINGS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// How many.
    pub count: u64,
    /// The first few.
    pub first: Vec<Finding>,
}

impl Findings {
    fn push(&mut self, record: &SentRecord, detail: impl Into<String>) {
        self.count += 1;
        if self.first.len() < NAMED_FINDINGS {
            self.first.push(Finding {
                partition_key: record.partition_key.clone(),
                original: format_position(&record.original),
                shard_id: record.shard_id.clone(),
                sequence_number: record.sequence_number.clone(),
                detail: detail.into(),
            });
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Records found where Kinesis said, with their key and bytes, once and in order.
    pub verified: u64,
    /// Records not found where Kinesis said it stored them.
    pub missing: Findings,
    /// Records found there with other bytes or another key.
    pub altered: Findings,
    /// Records found more than once.
    pub duplicated: Findings,
    /// Records found before a record of their key sent earlier.
    pub out_of_order: Findings,
    /// Records an earlier run sent without `--verify` (no ledger line): not checked.
    pub not_verifiable: u64,
    /// Records of other producers read in the ranges and ignored.
    pub others: u64,
    /// Target shards read back.
    pub shards: u64,
    /// GetRecords calls made.
    pub get_records_calls: u64,
}

impl VerifyReport {
    /// Whether every record verified (records that could not be checked do not fail it;
    /// they are said).
    pub fn passed(&self) -> bool {
        self.missing.count + self.altered.count + self.duplicated.count + self.out_of_order.count
            == 0
    }
}

/// A record read back from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBack {
    /// Its sequence number.
    pub sequence_number: SequenceNumber,
    /// Its partition key.
    pub partition_key: String,
    /// MD5 of its bytes.
    pub md5: [u8; 16],
}

/// The decisions of `--verify`, without I/O: given the ledger, then every record read back
/// from the ranges [`Verifier::ranges`] names, it tells what verified (see the
/// [module documentation](self)).
#[derive(Debug)]
pub struct Verifier<'a> {
    sent: &'a [SentRecord],
    /// (shard, sequence) → index in `sent`; the first record when several claim one.
    at: HashMap<(&'a str, SequenceNumber), usize>,
    /// What was read at a sent record's position: `true` when it matched.
    found: Vec<Option<bool>>,
    /// Sent records by the MD5 of their bytes: what an extra copy would look like.
    contents: HashMap<[u8; 16], Vec<usize>>,
    /// Extra copies read, by the first sent record of that key and bytes.
    extra: HashMap<usize, u64>,
    others: u64,
}

impl<'a> Verifier<'a> {
    /// A verifier of `sent`.
    pub fn new(sent: &'a [SentRecord]) -> Self {
        let mut at = HashMap::with_capacity(sent.len());
        let mut contents: HashMap<[u8; 16], Vec<usize>> = HashMap::with_capacity(sent.len());
        for (i, record) in sent.iter().enumerate() {
            if let Ok(sequence) = SequenceNumber::parse(&record.sequence_number) {
                at.entry((record.shard_id.as_str(), sequence)).or_insert(i);
            }
            contents.entry(record.md5).or_default().push(i);
        }
        Self {
            sent,
            at,
            found: vec![None; sent.len()],
            contents,
            extra: HashMap::new(),
            others: 0,
        }
    }

    /// What to read back: per shard, the lowest and highest sequence number sent into it.
    pub fn ranges(&self) -> BTreeMap<String, (SequenceNumber, SequenceNumber)> {
        let mut ranges: BTreeMap<String, (SequenceNumber, SequenceNumber)> = BTreeMap::new();
        for (shard, sequence) in self.at.keys() {
            match ranges.get_mut(*shard) {
                None => {
                    ranges.insert((*shard).to_owned(), (sequence.clone(), sequence.clone()));
                }
                Some((low, high)) => {
                    if sequence < low {
                        *low = sequence.clone();
                    }
                    if sequence > high {
                        *high = sequence.clone();
                    }
                }
            }
        }
        ranges
    }

    /// A record read back from `shard`.
    pub fn observe(&mut self, shard: &str, record: &ReadBack) {
        if let Some(&i) = self.at.get(&(shard, record.sequence_number.clone())) {
            let sent = &self.sent[i];
            self.found[i] =
                Some(sent.partition_key == record.partition_key && sent.md5 == record.md5);
            return;
        }
        match self.same_content(&record.partition_key, &record.md5) {
            Some(first) => *self.extra.entry(first).or_default() += 1,
            None => self.others += 1,
        }
    }

    /// The first sent record with this key and bytes.
    fn same_content(&self, partition_key: &str, md5: &[u8; 16]) -> Option<usize> {
        self.contents
            .get(md5)?
            .iter()
            .copied()
            .find(|&i| self.sent[i].partition_key == partition_key)
    }

    /// The report: every sent record judged, in ledger order.
    pub fn finish(mut self) -> VerifyReport {
        let mut report = VerifyReport {
            others: self.others,
            ..VerifyReport::default()
        };
        let mut extra = std::mem::take(&mut self.extra);
        // The same original record accepted twice (a resumed replay that sent it again).
        let mut originals: HashSet<(&str, &Position)> = HashSet::new();
        // Per (key, shard): the highest sequence number of the key's records so far.
        let mut last: HashMap<(&str, &str), SequenceNumber> = HashMap::new();
        for (i, record) in self.sent.iter().enumerate() {
            let sequence = SequenceNumber::parse(&record.sequence_number).ok();
            let claimed_before = sequence
                .as_ref()
                .is_some_and(|s| self.at.get(&(record.shard_id.as_str(), s.clone())) != Some(&i));
            match (&sequence, self.found[i]) {
                (None, _) => {
                    report
                        .missing
                        .push(record, "PutRecords answered no valid sequence number");
                    continue;
                }
                (Some(_), _) if claimed_before => {
                    report.duplicated.push(
                        record,
                        "PutRecords answered the position of another record sent",
                    );
                    continue;
                }
                (Some(_), None) => {
                    report.missing.push(
                        record,
                        "not in the target at the shard and sequence number PutRecords answered",
                    );
                    continue;
                }
                (Some(_), Some(false)) => {
                    report.altered.push(
                        record,
                        "the record at that position has other bytes or another partition key",
                    );
                    continue;
                }
                (Some(_), Some(true)) => {}
            }
            let sequence = sequence.expect("checked above");
            if !originals.insert((record.partition_key.as_str(), &record.original)) {
                report.duplicated.push(
                    record,
                    "sent again by a resumed run: the target holds it more than once",
                );
                continue;
            }
            if let Some(copies) = self
                .same_content(&record.partition_key, &record.md5)
                .and_then(|first| extra.get_mut(&first))
                && *copies > 0
            {
                *copies -= 1;
                report.duplicated.push(
                    record,
                    "the target holds another copy (same key and bytes) at another position",
                );
                continue;
            }
            let highest = last.entry((record.partition_key.as_str(), record.shard_id.as_str()));
            if let std::collections::hash_map::Entry::Occupied(highest) = &highest
                && *highest.get() > sequence
            {
                report.out_of_order.push(
                    record,
                    format!(
                        "stored before {}, a record of its key sent earlier",
                        highest.get()
                    ),
                );
                continue;
            }
            highest.insert_entry(sequence);
            report.verified += 1;
        }
        report
    }
}

/// Reads back what `ledger` says was sent into `target` and checks it (see the
/// [module documentation](self)). `None` when `stop` completed first.
pub async fn verify(
    kinesis: &KinesisClient,
    target: &StreamAddress,
    ledger: &SentLedger,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Option<VerifyReport>, Error> {
    let region = crate::aws::region_name(kinesis.config().region());
    let calls = ShardCalls {
        client: kinesis,
        stream: &target.name,
        stream_arn: target.arn.as_deref(),
        region: &region,
        checkpoints: None,
    };
    let check = async {
        let mut report = read_and_judge(&calls, ledger.records()).await?;
        if report.missing.count > 0 {
            tokio::time::sleep(SECOND_LOOK_AFTER).await;
            let calls_before = report.get_records_calls;
            report = read_and_judge(&calls, ledger.records()).await?;
            report.get_records_calls += calls_before;
        }
        Ok::<_, Error>(report)
    };
    tokio::select! {
        report = check => report.map(Some),
        () = stop => Ok(None),
    }
}

async fn read_and_judge(
    calls: &ShardCalls<'_>,
    sent: &[SentRecord],
) -> Result<VerifyReport, Error> {
    let verifier = std::sync::Mutex::new(Verifier::new(sent));
    let ranges = verifier.lock().expect("not poisoned").ranges();
    let shards = ranges.len() as u64;
    let verifier_ref = &verifier;
    let reads: Vec<u64> = futures::stream::iter(ranges)
        .map(|(shard, (low, high))| async move {
            read_range(calls, &shard, &low, &high, |record| {
                verifier_ref
                    .lock()
                    .expect("not poisoned")
                    .observe(&shard, &record);
            })
            .await
        })
        .buffer_unordered(SHARDS_AT_ONCE)
        .try_collect()
        .await?;
    let mut report = verifier.into_inner().expect("not poisoned").finish();
    report.shards = shards;
    report.get_records_calls = reads.iter().sum();
    Ok(report)
}

/// Reads `shard` from `low` until past `high` or caught up, handing each record at or
/// below `high` to `observe`; returns the GetRecords calls made.
async fn read_range(
    calls: &ShardCalls<'_>,
    shard: &str,
    low: &SequenceNumber,
    high: &SequenceNumber,
    mut observe: impl FnMut(ReadBack),
) -> Result<u64, Error> {
    let mut from = ReadFrom::At(low.clone());
    let mut iterator: Option<String> = None;
    let mut made = 0u64;
    let mut last_call: Option<Instant> = None;
    loop {
        let current = match iterator.take() {
            Some(iterator) => iterator,
            None => {
                let policy = ShardCall::new(shard, ShardOperation::GetShardIterator);
                let got = retry(&policy, call_retries(Budget::For(CALL_BUDGET)), (), |_| {
                    let from = from.clone();
                    async move { calls.shard_iterator(shard, &from).await }
                })
                .await
                .map_err(|gave_up| read_back_error(calls.stream, shard, gave_up.error))?;
                match got {
                    Some(Some(iterator)) => iterator,
                    // Nothing left to read in a closed shard.
                    Some(None) => return Ok(made),
                    None => continue,
                }
            }
        };
        if let Some(last) = last_call {
            tokio::time::sleep_until(last + MIN_CALL_INTERVAL).await;
        }
        let policy = ShardCall::new(shard, ShardOperation::GetRecords);
        let page = retry(&policy, call_retries(Budget::For(CALL_BUDGET)), (), |_| {
            let current = current.as_str();
            async move { calls.get_records(current, MAX_BATCH_SIZE).await }
        })
        .await
        .map_err(|gave_up| read_back_error(calls.stream, shard, gave_up.error))?;
        last_call = Some(Instant::now());
        made += 1;
        // The iterator expired: a new one from where the reading is.
        let Some(page) = page else { continue };
        let empty = page.records.is_empty();
        for record in page.records {
            let sequence = SequenceNumber::parse(&record.sequence_number)?;
            if sequence > *high {
                return Ok(made);
            }
            observe(ReadBack {
                md5: Md5::digest(record.data.as_ref()).into(),
                partition_key: record.partition_key,
                sequence_number: sequence.clone(),
            });
            from = ReadFrom::After(sequence);
        }
        match page.next_iterator {
            None => return Ok(made),
            Some(_) if empty && page.millis_behind_latest.unwrap_or(0) == 0 => return Ok(made),
            Some(next) => iterator = Some(next),
        }
    }
}

fn read_back_error(stream: &StreamName, shard: &str, error: Error) -> Error {
    error.explained(|| format!("reading {shard} of {stream} back to verify the replay"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(key: &str, original: &str, shard: &str, sequence: &str, data: &[u8]) -> SentRecord {
        SentRecord {
            partition_key: key.into(),
            original: parse_position(original).unwrap(),
            shard_id: shard.into(),
            sequence_number: sequence.into(),
            md5: Md5::digest(data).into(),
        }
    }

    fn read(key: &str, sequence: &str, data: &[u8]) -> ReadBack {
        ReadBack {
            sequence_number: SequenceNumber::parse(sequence).unwrap(),
            partition_key: key.into(),
            md5: Md5::digest(data).into(),
        }
    }

    const S0: &str = "shardId-000000000000";
    const S1: &str = "shardId-000000000001";

    #[test]
    fn records_found_where_kinesis_put_them_verify_and_others_are_ignored() {
        let ledger = [
            sent("a", "1", S0, "100", b"one"),
            sent("b", "2", S1, "200", b"two"),
            sent("a", "3", S0, "102", b"three"),
        ];
        let mut v = Verifier::new(&ledger);
        let ranges = v.ranges();
        assert_eq!(ranges[S0].0.as_str(), "100");
        assert_eq!(ranges[S0].1.as_str(), "102");
        assert_eq!(ranges[S1].0.as_str(), "200");
        v.observe(S0, &read("a", "100", b"one"));
        v.observe(S0, &read("z", "101", b"someone else's"));
        v.observe(S0, &read("a", "102", b"three"));
        v.observe(S1, &read("b", "200", b"two"));
        let report = v.finish();
        assert_eq!((report.verified, report.others), (3, 1));
        assert!(report.passed());
    }

    #[test]
    fn missing_altered_and_duplicated_records_are_named() {
        let ledger = [
            sent("a", "1", S0, "100", b"one"),
            sent("b", "2", S0, "101", b"two"),
            sent("c", "3", S0, "102", b"three"),
            sent("d", "4", S0, "103", b"four"),
        ];
        let mut v = Verifier::new(&ledger);
        v.observe(S0, &read("a", "100", b"one"));
        // b is not there; c has other bytes; d is there twice.
        v.observe(S0, &read("c", "102", b"THREE"));
        v.observe(S0, &read("d", "103", b"four"));
        v.observe(S0, &read("d", "104", b"four"));
        let report = v.finish();
        assert_eq!(report.verified, 1);
        assert_eq!(report.missing.count, 1);
        assert_eq!(report.missing.first[0].partition_key, "b");
        assert_eq!(report.missing.first[0].sequence_number, "101");
        assert_eq!(report.altered.count, 1);
        assert_eq!(report.altered.first[0].original, "3");
        assert_eq!(report.duplicated.count, 1);
        assert_eq!(report.duplicated.first[0].partition_key, "d");
        assert_eq!(report.others, 0);
        assert!(!report.passed());
    }

    #[test]
    fn a_key_stored_against_its_sending_order_is_out_of_order() {
        // Sent a:1 then a:2, but Kinesis put a:2 before a:1 in the same shard.
        let ledger = [
            sent("a", "1", S0, "105", b"one"),
            sent("a", "2", S0, "104", b"two"),
            // Another shard has its own order.
            sent("a", "3", S1, "7", b"three"),
        ];
        let mut v = Verifier::new(&ledger);
        for (shard, key, seq, data) in [
            (S0, "a", "104", &b"two"[..]),
            (S0, "a", "105", b"one"),
            (S1, "a", "7", b"three"),
        ] {
            v.observe(shard, &read(key, seq, data));
        }
        let report = v.finish();
        assert_eq!(report.out_of_order.count, 1);
        assert_eq!(report.out_of_order.first[0].original, "2");
        assert_eq!(report.verified, 2);
    }

    #[test]
    fn a_record_a_resumed_run_sent_again_is_a_duplicate() {
        let ledger = [
            sent("a", "1", S0, "100", b"one"),
            sent("a", "1", S0, "101", b"one"),
        ];
        let mut v = Verifier::new(&ledger);
        v.observe(S0, &read("a", "100", b"one"));
        v.observe(S0, &read("a", "101", b"one"));
        let report = v.finish();
        assert_eq!((report.verified, report.duplicated.count), (1, 1));
        assert!(report.duplicated.first[0].detail.contains("resumed"));
    }

    #[test]
    fn only_the_first_few_findings_are_named() {
        let ledger: Vec<SentRecord> = (0..25)
            .map(|i| sent("k", &i.to_string(), S0, &(100 + i).to_string(), b"x"))
            .collect();
        let report = Verifier::new(&ledger).finish();
        assert_eq!(report.missing.count, 25);
        assert_eq!(report.missing.first.len(), NAMED_FINDINGS);
    }

    #[test]
    fn ledger_lines_round_trip_and_a_resumed_ledger_appends() {
        let dir = std::env::temp_dir().join(format!("kinarch-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("replay.journal");
        let accepted = |id: &str, seq: &str, data: &[u8]| Accepted {
            id: parse_position(id).unwrap(),
            partition_key: "key\twith tab".to_owned(),
            placement: crate::replay::sender::Placement {
                shard_id: S0.into(),
                sequence_number: seq.into(),
            },
            data: data.to_vec(),
        };
        let mut first = SentLedger::beside_journal(&journal, false).unwrap();
        first.add(&[accepted("5.2", "900", b"payload")]).unwrap();
        first.flush().unwrap();
        drop(first);
        let mut second = SentLedger::beside_journal(&journal, true).unwrap();
        assert_eq!(second.earlier(), 1);
        assert_eq!(
            second.records()[0],
            SentRecord::of(&accepted("5.2", "900", b"payload"))
        );
        second.add(&[accepted("6", "901", b"more")]).unwrap();
        second.flush().unwrap();
        drop(second);
        assert_eq!(
            SentLedger::beside_journal(&journal, true)
                .unwrap()
                .records()
                .len(),
            2
        );
        // A journal started over starts its ledger over.
        assert!(
            SentLedger::beside_journal(&journal, false)
                .unwrap()
                .records()
                .is_empty()
        );
        assert_eq!(std::fs::read_to_string(ledger_path(&journal)).unwrap(), "");
        std::fs::write(ledger_path(&journal), "not json\n").unwrap();
        let err = SentLedger::beside_journal(&journal, true).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
