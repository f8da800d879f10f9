//! Replaying archived records into a Kinesis stream.
//!
//! Records are sent with PutRecords (at most 500 records and 5 MiB per call) under their
//! original partition key. Order per key is kept the way a stream keeps it: a record is
//! never sent while an earlier record of its key is unsent, in flight or failed. So one
//! request holds at most one record per key, and a key waits until its previous record is
//! acknowledged. With many keys this still fills requests; a stream of one key is replayed
//! one record per request, which is the price of the order guarantee under partial
//! failures (PutRecords may store record 2 and fail record 1 of the same key).
//!
//! Within a key, records go in numeric sequence order, whatever order the archive returned
//! them in, for the records read ahead together (up to 10,000; a table returns a key's
//! records together, so a key is ordered as a whole unless it has more).
//!
//! A record that still fails after its retries blocks its key: later records of that key
//! are reported as not sent rather than sent ahead of it. A record that can never be sent
//! (its payload was too large to archive, or would exceed 1 MiB framed) is reported and
//! does not block its key, since nothing can overtake a record that is never sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::pin::pin;
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::time::Instant;

use crate::aws::{aws_error, describe, error_code, is_transient};
use crate::domain::frame::{ReplayFrame, ReplayMetadata};
use crate::domain::names::StreamName;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

/// PutRecords takes at most 500 records per call.
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// PutRecords takes at most 5 MiB per call (data and partition keys).
pub const MAX_BYTES_PER_REQUEST: usize = 5 * 1024 * 1024;
/// One record's data plus partition key may be at most 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Why a record was not sent after an earlier record of its key failed for good.
const BLOCKED: &str = "not sent: an earlier record of its partition key could not be sent, and it must not be overtaken";
/// How many records are read ahead of sending; bounds memory.
const READ_AHEAD: usize = 10_000;

/// How reinjected records are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The original bytes, unchanged.
    Raw,
    /// `<separator><metadata json><separator><original bytes>` (see [`ReplayFrame`]).
    Metadata {
        /// One byte, `|` by default.
        separator: u8,
    },
}

/// How to reinject.
#[derive(Debug, Clone)]
pub struct ReinjectOptions {
    /// The stream the records were archived from.
    pub source: StreamName,
    /// The stream to send them to (may be the source).
    pub target: StreamName,
    /// Raw or framed with the original metadata.
    pub framing: Framing,
    /// Ceiling on records sent per second.
    pub rate: Option<NonZeroU32>,
    /// PutRecords calls in flight at once.
    pub concurrency: usize,
    /// Attempts per record before it is reported as failed.
    pub max_attempts: u32,
    /// Count and show, send nothing.
    pub dry_run: bool,
}

impl ReinjectOptions {
    /// Defaults: raw records, no rate limit, 4 calls in flight, 10 attempts.
    pub fn new(source: StreamName, target: StreamName) -> Self {
        Self {
            source,
            target,
            framing: Framing::Raw,
            rate: None,
            concurrency: 4,
            max_attempts: 10,
            dry_run: false,
        }
    }
}

/// A record that could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// Its partition key.
    pub partition_key: String,
    /// Its original sequence number.
    pub sequence_number: SequenceNumber,
    /// Why.
    pub reason: String,
}

/// What a reinjection did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReinjectReport {
    /// Records read from the archive.
    pub read: u64,
    /// Records the target stream accepted (or, in a dry run, would have been sent).
    pub sent: u64,
    /// Record sends that were tried again after a failure.
    pub retried: u64,
    /// Records that could not be sent.
    pub failed: Vec<FailedRecord>,
    /// Bytes sent (data as framed).
    pub bytes: u64,
    /// PutRecords calls made.
    pub requests: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Progress, reported after every answered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReinjectProgress {
    /// Records read so far.
    pub read: u64,
    /// Records sent so far.
    pub sent: u64,
    /// Records failed so far.
    pub failed: u64,
}

/// A record waiting to be sent, already framed.
#[derive(Debug)]
struct Outgoing {
    partition_key: String,
    sequence_number: SequenceNumber,
    data: Vec<u8>,
    attempts: u32,
    /// Not to be sent again before this time (backoff after a failure).
    due: Option<Instant>,
}

/// Records by key, in order, with the keys that have a request in flight.
///
/// Invariant: a key is in `order` exactly when it is in `queues` (its queue may be empty
/// while its last record is in flight); [`Pending::tidy`] drops keys with nothing left.
#[derive(Default)]
struct Pending {
    queues: HashMap<String, VecDeque<Outgoing>>,
    /// Keys in order of first appearance.
    order: VecDeque<String>,
    in_flight: HashSet<String>,
    /// Keys whose record failed for good: their later records must not overtake it.
    blocked: HashSet<String>,
    /// Records queued (not in flight).
    len: usize,
}

impl Pending {
    fn queue(&mut self, key: &str) -> &mut VecDeque<Outgoing> {
        if !self.queues.contains_key(key) {
            self.order.push_back(key.to_owned());
        }
        self.queues.entry(key.to_owned()).or_default()
    }

    /// Queues a record; gives it back when its key is blocked.
    fn push(&mut self, record: Outgoing) -> Result<(), Outgoing> {
        if self.blocked.contains(&record.partition_key) {
            return Err(record);
        }
        let key = record.partition_key.clone();
        insert_in_order(self.queue(&key), record);
        self.len += 1;
        Ok(())
    }

    /// The next request: the oldest record of each key that has nothing in flight, within
    /// `max_records` and the PutRecords byte limit.
    fn next_request(&mut self, max_records: usize, now: Instant) -> Vec<Outgoing> {
        let mut request = Vec::new();
        let mut bytes = 0;
        for key in &self.order {
            if request.len() >= max_records {
                break;
            }
            if self.in_flight.contains(key) {
                continue;
            }
            let queue = self.queues.get_mut(key).expect("ordered keys have queues");
            let Some(front) = queue.front() else {
                continue;
            };
            if front.due.is_some_and(|due| due > now) {
                continue;
            }
            let size = front.data.len() + front.partition_key.len();
            if bytes + size > MAX_BYTES_PER_REQUEST {
                continue;
            }
            bytes += size;
            request.push(queue.pop_front().expect("queued"));
            self.in_flight.insert(key.clone());
            self.len -= 1;
        }
        request
    }

    /// Ends a key's request: a failed record goes back in front of its key.
    fn settle(&mut self, key: &str, retry: Option<Outgoing>) {
        self.in_flight.remove(key);
        if let Some(record) = retry {
            insert_in_order(self.queue(key), record);
            self.len += 1;
        }
    }

    /// Blocks a key and drops everything queued for it.
    fn abandon(&mut self, key: &str) -> Vec<Outgoing> {
        self.in_flight.remove(key);
        self.blocked.insert(key.to_owned());
        let dropped: Vec<Outgoing> = self
            .queues
            .get_mut(key)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default();
        self.len -= dropped.len();
        dropped
    }

    /// The earliest time a waiting record becomes due, if any waits.
    fn next_due(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter(|(key, _)| !self.in_flight.contains(*key))
            .filter_map(|(_, q)| q.front().and_then(|r| r.due))
            .min()
    }

    /// Forgets keys with nothing queued or in flight.
    fn tidy(&mut self) {
        let (queues, in_flight) = (&mut self.queues, &self.in_flight);
        self.order.retain(|k| {
            let keep = in_flight.contains(k) || queues.get(k).is_some_and(|q| !q.is_empty());
            if !keep {
                queues.remove(k);
            }
            keep
        });
    }
}

/// Keeps a key's queue in sequence order. Archives return a key's records together but in
/// the table's string order ("10" before "9" when lengths differ), so records are put in
/// numeric order here, within the read-ahead window.
fn insert_in_order(queue: &mut VecDeque<Outgoing>, record: Outgoing) {
    let at = queue.partition_point(|r| r.sequence_number < record.sequence_number);
    queue.insert(at, record);
}

/// Sends `records` into `options.target`. `progress` is called after each answered
/// request. Records that cannot be sent are listed in the report; an error is returned only
/// when nothing can go on (the target stream is missing, the archive cannot be read).
///
/// ```no_run
/// # async fn example(sdk: aws_config::SdkConfig, records: Vec<kinarch_core::ArchiveRecord>) -> kinarch_core::Result<()> {
/// use kinarch_core::StreamName;
/// use kinarch_core::replay::reinject::{Framing, ReinjectOptions, reinject};
///
/// let kinesis = aws_sdk_kinesis::Client::new(&sdk);
/// let mut options = ReinjectOptions::new(StreamName::new("orders")?, StreamName::new("orders-replay")?);
/// options.framing = Framing::Metadata { separator: b'|' };
/// let source = futures::stream::iter(records.into_iter().map(Ok));
/// let report = reinject(&kinesis, source, &options, |_| {}).await?;
/// println!("sent {} of {}, {} failed", report.sent, report.read, report.failed.len());
/// # Ok(()) }
/// ```
pub async fn reinject(
    kinesis: &KinesisClient,
    records: impl Stream<Item = Result<ArchiveRecord, Error>>,
    options: &ReinjectOptions,
    mut progress: impl FnMut(&ReinjectProgress),
) -> Result<ReinjectReport, Error> {
    let started = Instant::now();
    let mut report = ReinjectReport::default();
    let mut records = pin!(records);
    let mut pending = Pending::default();
    let mut exhausted = false;
    let mut in_flight = FuturesUnordered::new();
    let source_name = (options.source != options.target).then(|| options.source.as_str());
    let concurrency = options.concurrency.max(1);

    loop {
        // Read ahead, up to the bound.
        while !exhausted && pending.len < READ_AHEAD {
            match records.next().await {
                None => exhausted = true,
                Some(record) => {
                    let record = record?;
                    report.read += 1;
                    match outgoing(&record, options.framing, source_name) {
                        Ok(out) => {
                            if let Err(out) = pending.push(out) {
                                report.failed.extend(abandoned(vec![out], BLOCKED));
                            }
                        }
                        // Never sendable, so nothing can overtake it: its key goes on.
                        Err(reason) => report.failed.push(FailedRecord {
                            partition_key: record.partition_key.clone(),
                            sequence_number: record.sequence_number.clone(),
                            reason,
                        }),
                    }
                }
            }
        }
        if options.dry_run {
            for r in pending.next_request(usize::MAX, Instant::now()) {
                report.sent += 1;
                report.bytes += r.data.len() as u64;
                pending.settle(&r.partition_key, None);
            }
            pending.tidy();
            progress(&snapshot(&report));
            if exhausted && pending.len == 0 {
                break;
            }
            continue;
        }
        // Start requests while there is room.
        while in_flight.len() < concurrency {
            let max = match options.rate {
                Some(rate) => MAX_RECORDS_PER_REQUEST.min(rate.get() as usize),
                None => MAX_RECORDS_PER_REQUEST,
            };
            let request = pending.next_request(max, Instant::now());
            if request.is_empty() {
                break;
            }
            if let Some(rate) = options.rate {
                // Pace: the n-th record may start n / rate seconds after the start.
                let started_records = report.sent + report.failed.len() as u64 + report.retried;
                tokio::time::sleep_until(
                    started + Duration::from_secs_f64(started_records as f64 / rate.get() as f64),
                )
                .await;
            }
            report.requests += 1;
            in_flight.push(send(kinesis, &options.target, request));
        }
        if in_flight.is_empty() {
            if exhausted && pending.len == 0 {
                break;
            }
            // Everything waiting is in backoff: sleep until the first record is due.
            if let Some(due) = pending.next_due() {
                tokio::time::sleep_until(due).await;
            }
            continue;
        }
        let answered = match pending.next_due() {
            Some(due) if in_flight.len() < concurrency => tokio::select! {
                answered = in_flight.next() => answered,
                _ = tokio::time::sleep_until(due) => None,
            },
            _ => in_flight.next().await,
        };
        let Some((request, result)) = answered else {
            continue;
        };
        match result {
            Err(SendError::Fatal(error)) => return Err(error),
            Err(SendError::Transient(message)) => {
                for record in request {
                    retry_or_fail(
                        &mut pending,
                        &mut report,
                        record,
                        &message,
                        options.max_attempts,
                    );
                }
            }
            Ok(codes) => {
                for (record, code) in request.into_iter().zip(codes) {
                    match code {
                        None => {
                            report.sent += 1;
                            report.bytes += record.data.len() as u64;
                            pending.settle(&record.partition_key, None);
                        }
                        Some(code) => retry_or_fail(
                            &mut pending,
                            &mut report,
                            record,
                            &code,
                            options.max_attempts,
                        ),
                    }
                }
            }
        }
        pending.tidy();
        progress(&snapshot(&report));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn abandoned(records: Vec<Outgoing>, reason: &str) -> impl Iterator<Item = FailedRecord> + '_ {
    records.into_iter().map(move |r| FailedRecord {
        partition_key: r.partition_key,
        sequence_number: r.sequence_number,
        reason: reason.to_owned(),
    })
}

fn snapshot(report: &ReinjectReport) -> ReinjectProgress {
    ReinjectProgress {
        read: report.read,
        sent: report.sent,
        failed: report.failed.len() as u64,
    }
}

/// Backoff of a record after `attempts` failures: 50 ms doubling up to 3.2 s, with full
/// jitter so that throttled keys do not come back in lockstep.
fn retry_delay(attempts: u32) -> Duration {
    let ceiling = 50u64 << attempts.min(6);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

fn retry_or_fail(
    pending: &mut Pending,
    report: &mut ReinjectReport,
    mut record: Outgoing,
    reason: &str,
    max_attempts: u32,
) {
    record.attempts += 1;
    if record.attempts < max_attempts {
        report.retried += 1;
        record.due = Some(Instant::now() + retry_delay(record.attempts));
        let key = record.partition_key.clone();
        pending.settle(&key, Some(record));
    } else {
        let key = record.partition_key.clone();
        report.failed.push(FailedRecord {
            partition_key: record.partition_key,
            sequence_number: record.sequence_number,
            reason: format!("{reason} (after {max_attempts} attempts)"),
        });
        report
            .failed
            .extend(abandoned(pending.abandon(&key), BLOCKED));
    }
}

/// The bytes to send for `record`, or why it cannot be sent.
fn outgoing(
    record: &ArchiveRecord,
    framing: Framing,
    source: Option<&str>,
) -> Result<Outgoing, String> {
    if let Some(size) = record.oversize_bytes {
        return Err(format!(
            "its payload ({size} bytes) was too large to archive and is not in the archive"
        ));
    }
    let data = match framing {
        Framing::Raw => record.data.clone(),
        Framing::Metadata { separator } => {
            ReplayFrame::encode(&ReplayMetadata::of(record, source), &record.data, separator)
        }
    };
    if data.len() + record.partition_key.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "the record would be {} bytes with its partition key; Kinesis takes at most {MAX_RECORD_BYTES}",
            data.len() + record.partition_key.len()
        ));
    }
    Ok(Outgoing {
        partition_key: record.partition_key.clone(),
        sequence_number: record.sequence_number.clone(),
        data,
        attempts: 0,
        due: None,
    })
}

enum SendError {
    Fatal(Error),
    Transient(String),
}

/// One PutRecords call; per record `None` when stored, else the error code.
async fn send(
    kinesis: &KinesisClient,
    target: &StreamName,
    request: Vec<Outgoing>,
) -> (Vec<Outgoing>, Result<Vec<Option<String>>, SendError>) {
    let entries: Vec<PutRecordsRequestEntry> = request
        .iter()
        .map(|r| {
            PutRecordsRequestEntry::builder()
                .partition_key(&r.partition_key)
                .data(Blob::new(r.data.clone()))
                .build()
                .expect("data and partition key are set")
        })
        .collect();
    let result = kinesis
        .put_records()
        .stream_name(target.as_str())
        .set_records(Some(entries))
        .send()
        .await;
    let result = match result {
        Ok(output) => Ok(output
            .records
            .into_iter()
            .map(|entry| {
                entry.error_code.map(|code| match entry.error_message {
                    Some(message) => format!("{code}: {message}"),
                    None => code,
                })
            })
            .collect()),
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => {
            Err(SendError::Fatal(Error::StreamNotFound {
                stream: target.clone(),
                region: crate::aws::region_name(kinesis.config().region()),
            }))
        }
        Err(err) if is_transient(&err) => Err(SendError::Transient(format!(
            "Kinesis.PutRecords: {}",
            describe(&err)
        ))),
        Err(err) => Err(SendError::Fatal(aws_error("Kinesis.PutRecords", err))),
    };
    (request, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, seq: u32) -> Outgoing {
        Outgoing {
            partition_key: key.into(),
            sequence_number: SequenceNumber::parse(&seq.to_string()).unwrap(),
            data: vec![0; 10],
            attempts: 0,
            due: None,
        }
    }

    fn keys(request: &[Outgoing]) -> Vec<(String, String)> {
        request
            .iter()
            .map(|r| (r.partition_key.clone(), r.sequence_number.to_string()))
            .collect()
    }

    #[test]
    fn one_record_per_key_per_request_in_order() {
        let mut p = Pending::default();
        for (k, s) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)] {
            p.push(out(k, s)).unwrap();
        }
        let first = p.next_request(500, Instant::now());
        assert_eq!(
            keys(&first),
            [
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "4".into())
            ]
        );
        // Nothing of a, b or c may go while they are in flight.
        assert!(p.next_request(500, Instant::now()).is_empty());
        let mut first = first.into_iter();
        let a1 = first.next().unwrap();
        p.settle("a", Some(a1)); // a's record failed: it goes again, first
        p.tidy();
        assert_eq!(
            keys(&p.next_request(500, Instant::now())),
            [("a".into(), "1".into())]
        );
        p.settle("a", None);
        p.push(out("b", 6)).unwrap(); // b is still in flight: its new record waits
        assert_eq!(
            keys(&p.next_request(500, Instant::now())),
            [("a".into(), "3".into())]
        );
        p.settle("b", None);
        assert_eq!(
            keys(&p.next_request(500, Instant::now())),
            [("b".into(), "6".into())]
        );
    }

    #[test]
    fn a_keys_records_go_in_numeric_order_whatever_order_they_came_in() {
        let mut p = Pending::default();
        for s in [10, 9, 100, 11] {
            p.push(out("a", s)).unwrap();
        }
        let mut order = Vec::new();
        loop {
            let request = p.next_request(500, Instant::now());
            let Some(r) = request.into_iter().next() else {
                break;
            };
            order.push(r.sequence_number.to_string());
            p.settle("a", None);
        }
        assert_eq!(order, ["9", "10", "11", "100"]);
    }

    #[test]
    fn abandoning_a_key_drops_its_later_records() {
        let mut p = Pending::default();
        for (k, s) in [("a", 1), ("a", 2), ("b", 3)] {
            p.push(out(k, s)).unwrap();
        }
        let request = p.next_request(500, Instant::now());
        assert_eq!(request.len(), 2);
        let dropped = p.abandon("a");
        assert_eq!(dropped.len(), 1);
        p.settle("b", None);
        p.tidy();
        assert!(p.order.is_empty() && p.queues.is_empty());
        assert!(
            p.push(out("a", 9)).is_err(),
            "a blocked key takes no more records"
        );
        assert_eq!(p.len, 0);
        assert!(p.next_request(500, Instant::now()).is_empty());
    }

    #[test]
    fn requests_respect_count_and_size_limits() {
        let mut p = Pending::default();
        for i in 0..1200 {
            p.push(out(&format!("k{i}"), i + 1)).unwrap();
        }
        assert_eq!(
            p.next_request(MAX_RECORDS_PER_REQUEST, Instant::now())
                .len(),
            500
        );
        let mut big = Pending::default();
        for i in 0..8 {
            let mut r = out(&format!("k{i}"), i + 1);
            r.data = vec![0; 1000 * 1000];
            big.push(r).unwrap();
        }
        assert_eq!(
            big.next_request(500, Instant::now()).len(),
            5,
            "5 MiB per request"
        );
    }

    #[test]
    fn oversize_and_too_large_records_are_refused_with_reasons() {
        let mut record = ArchiveRecord {
            partition_key: "k".into(),
            sequence_number: SequenceNumber::parse("1").unwrap(),
            shard_id: "shardId-000000000000".into(),
            approximate_arrival_timestamp: 1.0,
            data: vec![],
            last_update: None,
            expire_after: None,
            oversize_bytes: Some(500_000),
        };
        assert!(
            outgoing(&record, Framing::Raw, None)
                .unwrap_err()
                .contains("too large to archive")
        );
        record.oversize_bytes = None;
        record.data = vec![1; MAX_RECORD_BYTES];
        assert!(
            outgoing(&record, Framing::Raw, None)
                .unwrap_err()
                .contains("at most")
        );
    }
}
