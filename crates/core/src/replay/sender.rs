//! The one Kinesis sender: PutRecords for records of any origin (archived records replayed
//! by [`reinject`](super::reinject), lines of input written by [`put`](super::put)), so
//! that the limits, the retries, the pacing and the order guarantee live in one place.
//!
//! Records are sent with PutRecords (at most 500 records and 5 MiB per call) under their
//! partition key. Order per key is kept the way a stream keeps it: a record is never sent
//! while an earlier record of its key is unsent, in flight or failed. So one request holds
//! at most one record per key, and a key waits until its previous record is acknowledged.
//! With many keys this still fills requests; a stream of one key is sent one record per
//! request, which is the price of the order guarantee under partial failures (PutRecords
//! may store record 2 and fail record 1 of the same key).
//!
//! Within a key, records go in the order of their [`Outgoing::id`], whatever order the
//! source yielded them in, for the records read ahead together (up to 10,000): an archive
//! returns a key's sequence numbers in the table's string order, and a line number is in
//! input order already.
//!
//! [`SendOptions::ordered`] `false` (`kinarch put --unordered`) drops the guarantee: records
//! are batched freely, up to 500 of one key per call, and a failed record blocks nothing.
//!
//! [`SendOptions::linger`] (`kinarch put`: 100 ms) holds a request back until it is full or
//! its first record has waited that long, so a slow source (`tail -f`) still fills calls
//! instead of sending one record per call, and records never wait longer than that.
//!
//! A record that still fails after its retries blocks its key: later records of that key
//! are reported as not sent rather than sent ahead of it. A record that can never be sent
//! (refused by the caller, or over 1 MiB) is reported and does not block its key, since
//! nothing can overtake a record that is never sent.
//!
//! One `select!` loop drives everything: the source (read ahead while requests are out),
//! the answers, the retry timers and the pacing timer, so that a slow source never delays
//! handling an answer and a slow answer never stops reading.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::pin::pin;
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::time::Instant;

use crate::aws::error::{PutRecordsEntryError, PutRecordsEntryErrorKind};
use crate::aws::retry::Backoff;
use crate::aws::streams::{ShardInfo, list_shards_at, shard_map};
use crate::aws::{aws_error, describe, is_transient};
use crate::domain::names::StreamAddress;
use crate::domain::shard_load::{Aimd, LoadShare, ShardLoad, ShardMap};
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
const READ_AHEAD: usize = crate::domain::sequence::REORDER_WINDOW;
/// First backoff of a failed record; it doubles (with jitter) up to [`LAST_RETRY_DELAY`],
/// so that throttled keys do not come back in lockstep.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
/// Longest backoff of a failed record before jitter.
const LAST_RETRY_DELAY: Duration = Duration::from_millis(1600);
/// The span a rate is a ceiling over: records per second.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<Id> {
    /// What failures are reported by, and the order of a key's records: the archived
    /// sequence number of a reinjected record, the line number of a put one.
    pub id: Id,
    /// The partition key (1 to 256 characters).
    pub partition_key: String,
    /// A hash key that picks the shard instead of the partition key's hash.
    pub explicit_hash_key: Option<String>,
    /// The bytes to send, as they should arrive.
    pub data: Vec<u8>,
    /// Not to be sent before this long after the send started (a paced replay, see
    /// [`crate::domain::pace`]); `None`: as soon as the rate and the key's order allow.
    pub not_before: Option<Duration>,
}

impl<Id> Outgoing<Id> {
    /// A record sent by its partition key's hash.
    pub fn new(id: Id, partition_key: impl Into<String>, data: Vec<u8>) -> Self {
        Self {
            id,
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data,
            not_before: None,
        }
    }

    /// What the record weighs against the PutRecords limits (data and partition key).
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    /// Why Kinesis would refuse the record whatever happens (larger than
    /// [`MAX_RECORD_BYTES`] with its partition key), if it would.
    pub fn refusal(&self) -> Option<String> {
        (self.size() > MAX_RECORD_BYTES).then(|| {
            format!(
                "the record would be {} bytes with its partition key; Kinesis takes at most {MAX_RECORD_BYTES}",
                self.size()
            )
        })
    }
}

/// A record that was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure<Id> {
    /// Its [`Outgoing::id`].
    pub id: Id,
    /// Its partition key.
    pub partition_key: String,
    /// Why.
    pub reason: String,
}

/// Where Kinesis stored a record: the shard and sequence number PutRecords answered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `shardId-…` of the target stream.
    pub shard_id: String,
    /// The record's sequence number in that shard (empty if Kinesis answered none).
    pub sequence_number: String,
}

/// A record Kinesis accepted, as [`send_records_until`] tells its caller: what a replay
/// journal records and what `--verify` reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted<Id> {
    /// Its [`Outgoing::id`].
    pub id: Id,
    /// Its partition key.
    pub partition_key: String,
    /// Where Kinesis stored it.
    pub placement: Placement,
    /// The bytes sent (moved out of the record once it is accepted, not copied).
    pub data: Vec<u8>,
}

/// What the source of [`send_records`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<Id> {
    /// A record to send.
    Send(Outgoing<Id>),
    /// A record the caller found unsendable (an archived record whose payload is not in
    /// the archive, say): it is counted as read and reported as failed, and does not block
    /// its key.
    Refused(SendFailure<Id>),
}

/// How to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// Ceiling on records sent per second, retries included: no one-second span holds more
    /// PutRecords entries than this, where they arrive.
    pub rate: Option<NonZeroU32>,
    /// PutRecords calls in flight at once.
    pub concurrency: usize,
    /// Attempts per record before it is reported as failed.
    pub max_attempts: u32,
    /// Count, send nothing: every sendable record is reported as sent.
    pub dry_run: bool,
    /// Keep order per partition key (see the [module documentation](self)).
    pub ordered: bool,
    /// Wait up to this long for a request to fill before sending it; `None` sends at once.
    pub linger: Option<Duration>,
    /// Hold each target shard to a share of its write limit, lowered when it throttles
    /// (`--max-shard-load`, see [`crate::domain::shard_load`]).
    pub shard_load: Option<ShardLoad>,
}

impl Default for SendOptions {
    /// No rate limit, 4 calls in flight, 10 attempts, ordered, no linger.
    fn default() -> Self {
        Self {
            rate: None,
            concurrency: 4,
            max_attempts: 10,
            dry_run: false,
            ordered: true,
            linger: None,
            shard_load: None,
        }
    }
}

/// Progress, reported after every answered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendProgress {
    /// Records read from the source so far.
    pub read: u64,
    /// Records sent so far.
    pub sent: u64,
    /// Records failed so far.
    pub failed: u64,
}

/// What [`send_records`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct SendReport<Id> {
    /// Records read from the source.
    pub read: u64,
    /// Records the stream accepted (or, in a dry run, that would have been sent).
    pub sent: u64,
    /// Record sends that were tried again after a failure.
    pub retried: u64,
    /// Records that could not be sent, by id.
    pub failed: Vec<SendFailure<Id>>,
    /// Bytes sent (data only).
    pub bytes: u64,
    /// PutRecords calls made.
    pub requests: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether the run was stopped (see [`send_records_until`]) before its source ended.
    pub stopped: bool,
    /// Records read but not sent because the run was stopped (not in `failed`).
    pub unsent: u64,
    /// Record sends Kinesis throttled, by target shard (with [`SendOptions::shard_load`],
    /// which knows each record's shard).
    pub throttled: BTreeMap<String, u64>,
}

impl<Id> Default for SendReport<Id> {
    fn default() -> Self {
        Self {
            read: 0,
            sent: 0,
            retried: 0,
            failed: Vec::new(),
            bytes: 0,
            requests: 0,
            elapsed: Duration::ZERO,
            stopped: false,
            unsent: 0,
            throttled: BTreeMap::new(),
        }
    }
}

impl<Id> SendReport<Id> {
    fn progress(&self) -> SendProgress {
        SendProgress {
            read: self.read,
            sent: self.sent,
            failed: self.failed.len() as u64,
        }
    }
}

/// Sends the records of `source` into `stream`. `progress` is called after each answered
/// request. Records that cannot be sent are listed in the report; an error is returned only
/// when nothing can go on (the stream is missing, the source failed).
///
/// ```no_run
/// # async fn example(kinesis: aws_sdk_kinesis::Client) -> kinarch_core::Result<()> {
/// use kinarch_core::StreamName;
/// use kinarch_core::replay::sender::{Input, Outgoing, SendOptions, send_records};
///
/// let lines = ["{\"order\":1}", "{\"order\":2}"];
/// let source = futures::stream::iter(lines.iter().enumerate().map(|(i, line)| {
///     Ok(Input::Send(Outgoing::new(i + 1, "customer-1", line.as_bytes().to_vec())))
/// }));
/// let stream = StreamName::new("orders")?.into();
/// let report = send_records(&kinesis, &stream, source, &SendOptions::default(), |_| {}).await?;
/// for failure in &report.failed {
///     println!("line {}: {}", failure.id, failure.reason);
/// }
/// # Ok(()) }
/// ```
pub async fn send_records<Id: Ord>(
    kinesis: &KinesisClient,
    stream: &StreamAddress,
    source: impl Stream<Item = Result<Input<Id>, Error>>,
    options: &SendOptions,
    progress: impl FnMut(&SendProgress),
) -> Result<SendReport<Id>, Error> {
    send_records_until(
        kinesis,
        stream,
        source,
        options,
        std::future::pending(),
        progress,
        |_| {},
    )
    .await
}

/// [`send_records`] that stops gracefully when `stop` completes (Ctrl-C): no request
/// starts after it and nothing more is read, the requests in flight are answered (their
/// records count as sent or failed as usual), and the records read but not sent are
/// counted in [`SendReport::unsent`]. A key's records are still never sent out of order:
/// what was sent of a key is a prefix of its records. `accepted` is told, after each
/// answered request, the records Kinesis accepted in it, in the order of the request (see
/// [`Accepted`]).
pub async fn send_records_until<Id: Ord>(
    kinesis: &KinesisClient,
    stream: &StreamAddress,
    source: impl Stream<Item = Result<Input<Id>, Error>>,
    options: &SendOptions,
    stop: impl std::future::Future<Output = ()>,
    mut progress: impl FnMut(&SendProgress),
    mut accepted: impl FnMut(Vec<Accepted<Id>>),
) -> Result<SendReport<Id>, Error> {
    let mut stop = pin!(stop.fuse());
    let mut stopping = false;
    let started = Instant::now();
    let mut run = Run::new(options);
    let mut source = pin!(source);
    let mut exhausted = false;
    let mut in_flight = FuturesUnordered::new();
    let concurrency = options.concurrency.max(1);
    // Since when queued records wait for a request to fill (with a linger).
    let mut lingering_since: Option<Instant> = None;
    // ListShards again after a reshard (with a shard load).
    let mut refresh: Option<futures::future::BoxFuture<'_, Result<Vec<ShardInfo>, Error>>> = None;
    loop {
        // Take what the source has ready before starting requests, so that they go out as
        // full as the keys allow; while the source waits (a table page on its way), the
        // loop below sends and handles answers.
        while !stopping && !exhausted && run.pending.len < READ_AHEAD {
            match source.next().now_or_never() {
                None => break,
                Some(None) => exhausted = true,
                Some(Some(input)) => run.accept(input?),
            }
        }
        if options.dry_run {
            run.pretend_sent();
            progress(&run.report.progress());
        }
        if run.pending.len == 0 {
            lingering_since = None;
        } else if lingering_since.is_none() {
            lingering_since = Some(Instant::now());
        }
        let linger_until = match (options.linger, lingering_since) {
            (Some(linger), Some(since))
                if !exhausted
                    && run.pending.len < MAX_RECORDS_PER_REQUEST
                    && run.pending.bytes < MAX_BYTES_PER_REQUEST =>
            {
                Some(since + linger).filter(|until| *until > Instant::now())
            }
            _ => None,
        };
        if stopping && in_flight.is_empty() {
            run.report.stopped = true;
            run.report.unsent = run.pending.len as u64;
            break;
        }
        while !stopping
            && !options.dry_run
            && linger_until.is_none()
            && in_flight.len() < concurrency
        {
            let Some(request) = run.start_request(Instant::now()) else {
                break;
            };
            in_flight.push(put_records(kinesis, stream, request));
        }
        if exhausted && run.pending.len == 0 && in_flight.is_empty() {
            break;
        }
        let reading = !stopping && !exhausted && run.pending.len < READ_AHEAD;
        // Timers matter only when a request could start once they ring.
        let could_start = !stopping && in_flight.len() < concurrency && run.pending.len > 0;
        let retry_at = could_start.then(|| run.pending.next_due()).flatten();
        let pace_at = could_start
            .then(|| {
                let shards = run.shards.as_ref().and_then(ShardPacing::next_room);
                run.pacer.next_room().into_iter().chain(shards).min()
            })
            .flatten();
        if refresh.is_none() && run.shards.as_ref().is_some_and(|p| p.stale) {
            refresh = Some(Box::pin(list_shards_at(kinesis, stream, None)));
        }
        let linger_at = could_start.then_some(linger_until).flatten();
        let now = Instant::now();
        let event = tokio::select! {
            input = source.next(), if reading => Event::Read(input),
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => Event::Answered(answer),
            () = tokio::time::sleep_until(retry_at.unwrap_or(now)), if retry_at.is_some() => Event::Due,
            () = tokio::time::sleep_until(pace_at.unwrap_or(now)), if pace_at.is_some() => Event::Due,
            () = tokio::time::sleep_until(linger_at.unwrap_or(now)), if linger_at.is_some() => Event::Due,
            () = &mut stop, if !stopping => Event::Stop,
            listed = async { refresh.as_mut().expect("checked").await }, if refresh.is_some() => {
                refresh = None;
                Event::Resharded(listed)
            }
        };
        match event {
            Event::Read(None) => exhausted = true,
            Event::Read(Some(input)) => run.accept(input?),
            Event::Answered((request, result)) => {
                run.answered(request, result?);
                progress(&run.report.progress());
                if !run.accepted.is_empty() {
                    accepted(std::mem::take(&mut run.accepted));
                }
            }
            Event::Due => {}
            Event::Stop => stopping = true,
            Event::Resharded(listed) => run.resharded(listed),
        }
    }
    run.report.elapsed = started.elapsed();
    Ok(run.report)
}

/// What woke the loop of [`send_records`].
enum Event<R, A> {
    /// The source yielded (`None`: it is exhausted).
    Read(Option<R>),
    /// A request was answered.
    Answered(A),
    /// A record's backoff or the pacing wait ended.
    Due,
    /// The caller asked the run to stop.
    Stop,
    /// The target's shards were listed again after a reshard.
    Resharded(Result<Vec<ShardInfo>, Error>),
}

/// The state of one [`send_records`]: what waits, what the rate allows, what happened.
struct Run<Id> {
    pending: Pending<Id>,
    pacer: Pacer,
    report: SendReport<Id>,
    max_attempts: u32,
    /// `None`: ordered, a key's records share its lane. `Some(n)`: unordered, each record
    /// gets a lane of its own, numbered from `n`.
    next_lane: Option<u64>,
    /// Records accepted since the caller was last told.
    accepted: Vec<Accepted<Id>>,
    /// When sending started: what [`Outgoing::not_before`] counts from.
    started: Instant,
    /// Per-shard budgets, with [`SendOptions::shard_load`].
    shards: Option<ShardPacing>,
}

impl<Id: Ord> Run<Id> {
    fn new(options: &SendOptions) -> Self {
        Self {
            pending: Pending::default(),
            pacer: Pacer::new(options.rate),
            report: SendReport::default(),
            max_attempts: options.max_attempts,
            next_lane: (!options.ordered).then_some(0),
            accepted: Vec::new(),
            started: Instant::now(),
            shards: options.shard_load.clone().map(ShardPacing::new),
        }
    }

    /// The target's shards as listed again: queued records are placed anew.
    fn resharded(&mut self, listed: Result<Vec<ShardInfo>, Error>) {
        let Some(pacing) = self.shards.as_mut() else {
            return;
        };
        pacing.stale = false;
        match listed {
            Ok(shards) => {
                pacing.map = shard_map(&shards);
                for queued in self.pending.queues.values_mut().flatten() {
                    queued.shard = pacing.shard_of(&queued.record);
                }
            }
            // The old map still holds most keys; the next unknown shard asks again.
            Err(error) => {
                tracing::warn!(error = %error, "ListShards after a reshard failed; keeping the shards known")
            }
        }
    }

    /// Takes one input from the source: queued, or reported when it cannot be sent.
    fn accept(&mut self, input: Input<Id>) {
        self.report.read += 1;
        let record = match input {
            Input::Send(record) => record,
            Input::Refused(failure) => return self.report.failed.push(failure),
        };
        if let Some(reason) = record.refusal() {
            // Never sendable, so nothing can overtake it: its key goes on.
            return self.report.failed.push(failure(record, reason));
        }
        let lane = match &mut self.next_lane {
            None => record.partition_key.clone(),
            Some(n) => {
                *n += 1;
                n.to_string()
            }
        };
        let mut queued = Queued::new(record, lane);
        queued.due = queued.record.not_before.map(|offset| self.started + offset);
        queued.shard = self
            .shards
            .as_ref()
            .and_then(|pacing| pacing.shard_of(&queued.record));
        if let Err(record) = self.pending.push(queued) {
            self.report
                .failed
                .push(failure(record.record, BLOCKED.into()));
        }
    }

    /// The records of a request to send now, counted as started: as many as the keys,
    /// the PutRecords limits and the rate allow. `None` when none may go now.
    fn start_request(&mut self, now: Instant) -> Option<Vec<Queued<Id>>> {
        let room = self.pacer.room(now);
        let shards = &mut self.shards;
        let request =
            self.pending
                .next_request_admitted(MAX_RECORDS_PER_REQUEST.min(room), now, |queued| {
                    match (shards.as_mut(), &queued.shard) {
                        (Some(pacing), Some(shard)) => {
                            pacing.admit(shard, queued.record.size(), now)
                        }
                        _ => true,
                    }
                });
        if request.is_empty() {
            return None;
        }
        self.pacer.started(request.len());
        self.report.requests += 1;
        Some(request)
    }

    /// A dry run: every queued record counts as sent, in the order it would go.
    fn pretend_sent(&mut self) {
        loop {
            let request = self
                .pending
                .next_request_admitted(usize::MAX, Instant::now(), |_| true);
            if request.is_empty() {
                break;
            }
            for queued in request {
                self.sent(&queued.record);
                self.pending.settle(&queued.lane, None);
            }
        }
        self.pending.tidy();
    }

    fn sent(&mut self, record: &Outgoing<Id>) {
        self.report.sent += 1;
        self.report.bytes += record.data.len() as u64;
    }

    /// Settles an answered request; a transient failure of the whole call fails each of
    /// its records once.
    fn answered(
        &mut self,
        request: Vec<Queued<Id>>,
        result: Result<Vec<Result<Placement, PutRecordsEntryError>>, String>,
    ) {
        let now = Instant::now();
        self.pacer.answered(request.len(), now);
        match result {
            Err(reason) => {
                for queued in request {
                    self.shard_answered(&queued, now, false, None);
                    self.retry_or_fail(queued, &reason);
                }
            }
            Ok(codes) => {
                for (queued, code) in request.into_iter().zip(codes) {
                    let throttled =
                        matches!(&code, Err(e) if e.kind == PutRecordsEntryErrorKind::Throttled);
                    let stored_in = code.as_ref().ok().map(|p| p.shard_id.as_str());
                    self.shard_answered(&queued, now, throttled, stored_in);
                    match code {
                        Ok(placement) => {
                            self.sent(&queued.record);
                            self.pending.settle(&queued.lane, None);
                            let Outgoing {
                                id,
                                partition_key,
                                data,
                                ..
                            } = queued.record;
                            self.accepted.push(Accepted {
                                id,
                                partition_key,
                                placement,
                                data,
                            });
                        }
                        Err(error) if error.is_retried() => {
                            self.retry_or_fail(queued, &error.to_string());
                        }
                        Err(error) => self.give_up(queued, error.to_string()),
                    }
                }
            }
        }
        self.pending.tidy();
    }

    /// A record's answer, for its shard's budget: throttled or not, and the shard Kinesis
    /// says it stored it in (an unknown one means the stream was resharded).
    fn shard_answered(
        &mut self,
        queued: &Queued<Id>,
        now: Instant,
        throttled: bool,
        stored_in: Option<&str>,
    ) {
        let (Some(pacing), Some(shard)) = (self.shards.as_mut(), &queued.shard) else {
            return;
        };
        pacing.answered(shard, queued.record.size(), now, throttled);
        if throttled {
            *self.report.throttled.entry(shard.clone()).or_default() += 1;
        }
        if let Some(stored_in) = stored_in
            && !pacing.map.contains(stored_in)
        {
            pacing.stale = true;
        }
    }

    /// A failed record goes back in front of its key after its backoff, or, out of
    /// attempts, is reported and blocks its key.
    fn retry_or_fail(&mut self, mut queued: Queued<Id>, reason: &str) {
        queued.attempts += 1;
        let key = queued.lane.clone();
        if queued.attempts < self.max_attempts {
            self.report.retried += 1;
            let delay = queued
                .backoff
                .get_or_insert_with(|| Box::new(Backoff::new(FIRST_RETRY_DELAY, LAST_RETRY_DELAY)))
                .next_delay();
            queued.due = Some(Instant::now() + delay);
            self.pending.settle(&key, Some(queued));
        } else {
            let reason = format!("{reason} (after {} attempts)", self.max_attempts);
            self.give_up(queued, reason);
        }
    }

    /// A record that is not sent again is reported, and blocks its key.
    fn give_up(&mut self, queued: Queued<Id>, reason: String) {
        let key = queued.lane.clone();
        self.report.failed.push(failure(queued.record, reason));
        let dropped = self.pending.abandon(&key);
        self.report.failed.extend(
            dropped
                .into_iter()
                .map(|q| failure(q.record, BLOCKED.into())),
        );
    }
}

fn failure<Id>(record: Outgoing<Id>, reason: String) -> SendFailure<Id> {
    SendFailure {
        id: record.id,
        partition_key: record.partition_key,
        reason,
    }
}

/// A record waiting to be sent, with its retry state.
#[derive(Debug)]
struct Queued<Id> {
    record: Outgoing<Id>,
    /// The records that keep their order among themselves: the partition key's, or (not
    /// ordered) the record's own.
    lane: String,
    attempts: u32,
    /// Not to be sent again before this time (backoff after a failure).
    due: Option<Instant>,
    /// Made at the first failure: most records never need one, and boxed so that the
    /// thousands of records read ahead stay small.
    backoff: Option<Box<Backoff>>,
    /// The target shard it goes to, with a shard load.
    shard: Option<String>,
}

impl<Id> Queued<Id> {
    fn new(record: Outgoing<Id>, lane: String) -> Self {
        Self {
            record,
            lane,
            attempts: 0,
            due: None,
            backoff: None,
            shard: None,
        }
    }
}

/// Records by key, in order, with the keys that have a request in flight.
///
/// Invariant: a key is in `order` exactly when it is in `queues` (its queue may be empty
/// while its last record is in flight); [`Pending::tidy`] drops keys with nothing left.
struct Pending<Id> {
    queues: HashMap<String, VecDeque<Queued<Id>>>,
    /// Keys in order of first appearance.
    order: VecDeque<String>,
    in_flight: HashSet<String>,
    /// Keys whose record failed for good: their later records must not overtake it.
    blocked: HashSet<String>,
    /// Records queued (not in flight).
    len: usize,
    /// Their size against the PutRecords limits.
    bytes: usize,
}

impl<Id> Default for Pending<Id> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            order: VecDeque::new(),
            in_flight: HashSet::new(),
            blocked: HashSet::new(),
            len: 0,
            bytes: 0,
        }
    }
}

impl<Id: Ord> Pending<Id> {
    fn queue(&mut self, key: &str) -> &mut VecDeque<Queued<Id>> {
        if !self.queues.contains_key(key) {
            self.order.push_back(key.to_owned());
        }
        self.queues.entry(key.to_owned()).or_default()
    }

    /// Queues a record; gives it back when its key is blocked.
    // The Err is the refused record handed back (rare: its key is blocked); boxing it would
    // cost an allocation on every push instead.
    #[allow(clippy::result_large_err)]
    fn push(&mut self, queued: Queued<Id>) -> Result<(), Queued<Id>> {
        if self.blocked.contains(&queued.lane) {
            return Err(queued);
        }
        let key = queued.lane.clone();
        self.bytes += queued.record.size();
        insert_in_order(self.queue(&key), queued);
        self.len += 1;
        Ok(())
    }

    /// The next request: the oldest record of each key that has nothing in flight and is
    /// not in backoff, within `max_records` and the PutRecords byte limit.
    #[cfg(test)]
    fn next_request(&mut self, max_records: usize, now: Instant) -> Vec<Queued<Id>> {
        self.next_request_admitted(max_records, now, |_| true)
    }

    /// [`Pending::next_request`] of the records `admit` lets go (and counts: it is asked
    /// once per record taken, last).
    fn next_request_admitted(
        &mut self,
        max_records: usize,
        now: Instant,
        mut admit: impl FnMut(&Queued<Id>) -> bool,
    ) -> Vec<Queued<Id>> {
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
            let size = front.record.size();
            if bytes + size > MAX_BYTES_PER_REQUEST || !admit(front) {
                continue;
            }
            bytes += size;
            request.push(queue.pop_front().expect("queued"));
            self.in_flight.insert(key.clone());
            self.len -= 1;
            self.bytes -= size;
        }
        request
    }

    /// Ends a key's request: a failed record goes back in front of its key.
    fn settle(&mut self, key: &str, retry: Option<Queued<Id>>) {
        self.in_flight.remove(key);
        if let Some(queued) = retry {
            self.bytes += queued.record.size();
            insert_in_order(self.queue(key), queued);
            self.len += 1;
        }
    }

    /// Blocks a key and drops everything queued for it.
    fn abandon(&mut self, key: &str) -> Vec<Queued<Id>> {
        self.in_flight.remove(key);
        self.blocked.insert(key.to_owned());
        let dropped: Vec<Queued<Id>> = self
            .queues
            .get_mut(key)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default();
        self.len -= dropped.len();
        self.bytes -= dropped.iter().map(|q| q.record.size()).sum::<usize>();
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

/// Keeps a key's queue in id order. Archives return a key's records together but in the
/// table's string order ("10" before "9" when lengths differ), so records are put in
/// numeric order here, within the read-ahead window.
fn insert_in_order<Id: Ord>(queue: &mut VecDeque<Queued<Id>>, queued: Queued<Id>) {
    let at = queue.partition_point(|r| r.record.id < queued.record.id);
    queue.insert(at, queued);
}

/// Keeps records started per second under a rate.
///
/// A record counts against the rate from the moment its request is sent until one second
/// after its answer. Kinesis measures a shard's rate where requests arrive, and a request
/// arrives somewhere between being sent and being answered; so if two requests' records
/// together exceed the rate, the later one is sent at least a second after the earlier one
/// was answered, and so arrives at least a second after it, whatever the network delays.
/// Counting from the start (not the answer) is what keeps concurrent requests under the
/// rate: they are all counted before any is answered. The price is the latency: at most
/// `rate` records per (1 s + one round trip).
#[derive(Debug)]
struct Pacer {
    /// `None`: no ceiling.
    rate: Option<usize>,
    /// Records in requests not yet answered.
    in_flight: usize,
    /// Answered requests still counted: (when they stop counting, how many records), in
    /// the order they stop.
    answered: VecDeque<(Instant, usize)>,
    /// Sum of the records in `answered`.
    answered_records: usize,
}

impl Pacer {
    fn new(rate: Option<NonZeroU32>) -> Self {
        Self {
            rate: rate.map(|r| r.get() as usize),
            in_flight: 0,
            answered: VecDeque::new(),
            answered_records: 0,
        }
    }

    /// How many records may start now.
    fn room(&mut self, now: Instant) -> usize {
        let Some(rate) = self.rate else {
            return usize::MAX;
        };
        while let Some(&(until, records)) = self.answered.front()
            && until <= now
        {
            self.answered.pop_front();
            self.answered_records -= records;
        }
        rate.saturating_sub(self.in_flight + self.answered_records)
    }

    /// Changes the ceiling (a shard's budget after throttling or calm).
    fn set_rate(&mut self, rate: usize) {
        self.rate = Some(rate);
    }

    /// Whether nothing is counted: a record larger than the whole budget may go then.
    fn is_idle(&self) -> bool {
        self.in_flight + self.answered_records == 0
    }

    /// A request of `records` was sent.
    fn started(&mut self, records: usize) {
        self.in_flight += records;
    }

    /// A request of `records` was answered at `now`.
    fn answered(&mut self, records: usize, now: Instant) {
        self.in_flight -= records;
        if self.rate.is_some() {
            self.answered.push_back((now + RATE_WINDOW, records));
            self.answered_records += records;
        }
    }

    /// When the rate is used up: the time room next grows without an answer. `None` when
    /// there is room, or when only answers can make some.
    fn next_room(&self) -> Option<Instant> {
        let rate = self.rate?;
        (self.in_flight + self.answered_records >= rate)
            .then(|| self.answered.front().map(|&(until, _)| until))
            .flatten()
    }
}

/// The per-shard budgets of a send with a shard load: each shard's records and bytes per
/// second (counted as [`Pacer`] counts the stream-wide rate) at its share of the cap, scaled
/// by its [`Aimd`] factor.
#[derive(Debug)]
struct ShardPacing {
    share: LoadShare,
    map: ShardMap,
    states: HashMap<String, ShardState>,
    /// A shard unknown to the map stored a record: the stream was resharded.
    stale: bool,
}

#[derive(Debug)]
struct ShardState {
    records: Pacer,
    bytes: Pacer,
    aimd: Aimd,
    /// When the factor was last brought up to date.
    since: Instant,
}

impl ShardPacing {
    fn new(load: ShardLoad) -> Self {
        Self {
            share: load.share,
            map: load.shards,
            states: HashMap::new(),
            stale: false,
        }
    }

    fn shard_of<Id>(&self, record: &Outgoing<Id>) -> Option<String> {
        self.map
            .shard_of(&record.partition_key, record.explicit_hash_key.as_deref())
            .map(str::to_owned)
    }

    /// The shard's state, its budget brought up to `now`.
    fn state(&mut self, shard: &str, now: Instant) -> &mut ShardState {
        let share = self.share;
        let state = self
            .states
            .entry(shard.to_owned())
            .or_insert_with(|| ShardState {
                records: Pacer::new(None),
                bytes: Pacer::new(None),
                aimd: Aimd::default(),
                since: now,
            });
        state.aimd.calm(now.saturating_duration_since(state.since));
        state.since = now;
        state
            .records
            .set_rate(state.aimd.of(share.records_per_second()) as usize);
        state
            .bytes
            .set_rate(state.aimd.of(share.bytes_per_second()) as usize);
        state
    }

    /// Whether a record of `size` bytes may go to `shard` now; counted if so.
    fn admit(&mut self, shard: &str, size: usize, now: Instant) -> bool {
        let state = self.state(shard, now);
        let fits = state.records.room(now) >= 1
            && (state.bytes.room(now) >= size || state.bytes.is_idle());
        if fits {
            state.records.started(1);
            state.bytes.started(size);
        }
        fits
    }

    /// A record sent to `shard` was answered.
    fn answered(&mut self, shard: &str, size: usize, now: Instant, throttled: bool) {
        let state = self.state(shard, now);
        state.records.answered(1, now);
        state.bytes.answered(size, now);
        if throttled {
            state.aimd.throttled();
        }
    }

    /// The soonest a shard's budget grows without an answer.
    fn next_room(&self) -> Option<Instant> {
        self.states
            .values()
            .flat_map(|s| [s.records.next_room(), s.bytes.next_room()])
            .flatten()
            .min()
    }
}

/// One PutRecords call; per record where it was stored, else its error. `Err` holds the
/// reason of a transient failure of the whole call, which is retried.
async fn put_records<Id>(
    kinesis: &KinesisClient,
    stream: &StreamAddress,
    request: Vec<Queued<Id>>,
) -> (
    Vec<Queued<Id>>,
    Result<Result<Vec<Result<Placement, PutRecordsEntryError>>, String>, Error>,
) {
    let entries: Vec<PutRecordsRequestEntry> = request
        .iter()
        .map(|q| {
            PutRecordsRequestEntry::builder()
                .partition_key(&q.record.partition_key)
                .set_explicit_hash_key(q.record.explicit_hash_key.clone())
                .data(Blob::new(q.record.data.clone()))
                .build()
                .expect("data and partition key are set")
        })
        .collect();
    let result = kinesis
        .put_records()
        .set_stream_name(stream.name_param())
        .set_stream_arn(stream.arn_param())
        .set_records(Some(entries))
        .send()
        .await;
    let result = match result {
        Ok(output) => Ok(Ok(output
            .records
            .into_iter()
            .map(|entry| match entry.error_code {
                Some(code) => Err(PutRecordsEntryError::parse(code, entry.error_message)),
                None => Ok(Placement {
                    shard_id: entry.shard_id.unwrap_or_default(),
                    sequence_number: entry.sequence_number.unwrap_or_default(),
                }),
            })
            .collect())),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(PutRecordsError::is_resource_not_found_exception) =>
        {
            Err(Error::StreamNotFound {
                stream: stream.name.clone(),
                region: crate::aws::region_name(kinesis.config().region()),
            })
        }
        Err(err) if is_transient(&err) => {
            Ok(Err(format!("Kinesis.PutRecords: {}", describe(&err))))
        }
        Err(err) => Err(aws_error("Kinesis.PutRecords", err)),
    };
    (request, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, id: u32) -> Queued<u32> {
        Queued::new(Outgoing::new(id, key, vec![0; 10]), key.to_owned())
    }

    #[test]
    fn unordered_requests_carry_many_records_of_one_key() {
        let unordered = SendOptions {
            ordered: false,
            ..SendOptions::default()
        };
        for (options, expected) in [(unordered, 500), (SendOptions::default(), 1)] {
            let mut run = Run::new(&options);
            for id in 0..600u32 {
                run.accept(Input::Send(Outgoing::new(id, "one-key", vec![1; 10])));
            }
            let request = run.start_request(Instant::now()).unwrap();
            assert_eq!(request.len(), expected);
            assert!(request.iter().all(|q| q.record.partition_key == "one-key"));
        }
    }

    fn keys(request: &[Queued<u32>]) -> Vec<(&str, u32)> {
        request
            .iter()
            .map(|q| (q.record.partition_key.as_str(), q.record.id))
            .collect()
    }

    #[test]
    fn one_record_per_key_per_request_in_order() {
        let mut p = Pending::default();
        for (k, s) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)] {
            p.push(out(k, s)).unwrap();
        }
        let first = p.next_request(500, Instant::now());
        assert_eq!(keys(&first), [("a", 1), ("b", 2), ("c", 4)]);
        // Nothing of a, b or c may go while they are in flight.
        assert!(p.next_request(500, Instant::now()).is_empty());
        let mut first = first.into_iter();
        let a1 = first.next().unwrap();
        p.settle("a", Some(a1)); // a's record failed: it goes again, first
        p.tidy();
        assert_eq!(keys(&p.next_request(500, Instant::now())), [("a", 1)]);
        p.settle("a", None);
        p.push(out("b", 6)).unwrap(); // b is still in flight: its new record waits
        assert_eq!(keys(&p.next_request(500, Instant::now())), [("a", 3)]);
        p.settle("b", None);
        assert_eq!(keys(&p.next_request(500, Instant::now())), [("b", 6)]);
    }

    #[test]
    fn a_keys_records_go_in_id_order_whatever_order_they_came_in() {
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
            order.push(r.record.id);
            p.settle("a", None);
        }
        assert_eq!(order, [9, 10, 11, 100]);
    }

    #[test]
    fn a_record_in_backoff_waits_and_its_key_with_it() {
        let mut p = Pending::default();
        let now = Instant::now();
        let mut a1 = out("a", 1);
        a1.due = Some(now + Duration::from_millis(100));
        p.push(a1).unwrap();
        p.push(out("a", 2)).unwrap();
        p.push(out("b", 3)).unwrap();
        assert_eq!(keys(&p.next_request(500, now)), [("b", 3)]);
        p.settle("b", None);
        assert_eq!(p.next_due(), Some(now + Duration::from_millis(100)));
        let later = now + Duration::from_millis(100);
        assert_eq!(keys(&p.next_request(500, later)), [("a", 1)]);
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
        assert_eq!(
            p.next_request(7, Instant::now()).len(),
            7,
            "the pacer's room"
        );
        let mut big = Pending::default();
        for i in 0..8 {
            let mut r = out(&format!("k{i}"), i + 1);
            r.record.data = vec![0; 1000 * 1000];
            big.push(r).unwrap();
        }
        assert_eq!(
            big.next_request(500, Instant::now()).len(),
            5,
            "5 MiB per request"
        );
    }

    #[test]
    fn records_over_one_mib_are_refused_and_do_not_block_their_key() {
        let mut run = Run::new(&SendOptions::default());
        run.accept(Input::Send(Outgoing::new(
            1,
            "k",
            vec![1; MAX_RECORD_BYTES],
        )));
        run.accept(Input::Refused(SendFailure {
            id: 2,
            partition_key: "k".into(),
            reason: "not in the archive".into(),
        }));
        run.accept(Input::Send(Outgoing::new(3, "k", vec![1; 10])));
        assert_eq!(run.report.read, 3);
        let failed: Vec<u32> = run.report.failed.iter().map(|f| f.id).collect();
        assert_eq!(failed, [1, 2]);
        assert!(run.report.failed[0].reason.contains("at most 1048576"));
        assert_eq!(run.pending.len, 1, "the key's next record is queued");
    }

    #[test]
    fn a_record_out_of_attempts_blocks_its_key_and_fails_its_later_records() {
        let mut run = Run::new(&SendOptions {
            max_attempts: 2,
            ..SendOptions::default()
        });
        for (id, key) in [(1, "a"), (2, "a"), (3, "b")] {
            run.accept(Input::Send(Outgoing::new(id, key, vec![0])));
        }
        let request = run.start_request(Instant::now()).unwrap();
        let throttled = PutRecordsEntryError::parse("Throttled".into(), None);
        let stored = Placement {
            shard_id: "shardId-000000000000".into(),
            sequence_number: "7".into(),
        };
        run.answered(request, Ok(vec![Err(throttled), Ok(stored.clone())]));
        assert_eq!(run.accepted.len(), 1);
        assert_eq!(
            (run.accepted[0].id, &run.accepted[0].placement),
            (3, &stored)
        );
        assert_eq!((run.report.sent, run.report.retried), (1, 1));
        assert!(
            run.start_request(Instant::now()).is_none(),
            "a is in backoff"
        );
        let later = Instant::now() + Duration::from_secs(10);
        let retry = run.start_request(later).unwrap();
        assert_eq!(
            keys(&retry),
            [("a", 1)],
            "after its backoff, before a's next"
        );
        run.answered(retry, Err("Kinesis.PutRecords: timeout".into()));
        let failed: Vec<(u32, &str)> = run
            .report
            .failed
            .iter()
            .map(|f| (f.id, f.reason.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                (1, "Kinesis.PutRecords: timeout (after 2 attempts)"),
                (2, BLOCKED)
            ]
        );
        assert_eq!(run.pending.len, 0);
        assert_eq!(run.report.requests, 2);
    }

    fn shard(id: &str, first: u128, last: u128) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            ending_sequence_number: None,
            hash_key_range: (first, last),
        }
    }

    #[test]
    fn each_shard_takes_its_share_and_a_reshard_places_queued_records_anew() {
        let share = LoadShare::new(1).unwrap(); // 10 records a second per shard
        let mut run = Run::new(&SendOptions {
            shard_load: Some(ShardLoad {
                share,
                shards: shard_map(&[shard("shardId-0", 0, u128::MAX)]),
            }),
            ..SendOptions::default()
        });
        for id in 0..30u32 {
            run.accept(Input::Send(Outgoing::new(id, format!("k{id}"), vec![0])));
        }
        let now = Instant::now();
        let first = run.start_request(now).unwrap();
        assert_eq!(first.len(), 10, "the shard's share");
        assert!(run.start_request(now).is_none());
        // Kinesis stored them in shards it did not list: the stream was resharded.
        let stored = |shard_id: &str| {
            Ok(Placement {
                shard_id: shard_id.into(),
                sequence_number: "1".into(),
            })
        };
        run.answered(first, Ok((0..10).map(|_| stored("shardId-1")).collect()));
        assert!(run.shards.as_ref().unwrap().stale);
        run.resharded(Ok(vec![
            shard("shardId-1", 0, u128::MAX / 2),
            shard("shardId-2", u128::MAX / 2 + 1, u128::MAX),
        ]));
        let pacing = run.shards.as_ref().unwrap();
        assert!(!pacing.stale);
        let placed: HashSet<&str> = run
            .pending
            .queues
            .values()
            .flatten()
            .filter_map(|q| q.shard.as_deref())
            .collect();
        assert_eq!(placed, HashSet::from(["shardId-1", "shardId-2"]));
        // Two new shards, each with its own share of 10.
        let later = now + Duration::from_millis(10);
        let request = run.start_request(later).unwrap();
        let mut per_shard: HashMap<&str, usize> = HashMap::new();
        for queued in &request {
            *per_shard
                .entry(queued.shard.as_deref().unwrap())
                .or_default() += 1;
        }
        assert!(per_shard.values().all(|n| *n <= 10), "{per_shard:?}");
        assert!(
            request.len() > 10,
            "more than one shard's share: {per_shard:?}"
        );
    }

    #[test]
    fn a_throttled_shard_gets_half_its_share() {
        let mut run = Run::new(&SendOptions {
            shard_load: Some(ShardLoad {
                share: LoadShare::new(2).unwrap(), // 20 a second
                shards: shard_map(&[shard("shardId-0", 0, u128::MAX)]),
            }),
            ..SendOptions::default()
        });
        for id in 0..100u32 {
            run.accept(Input::Send(Outgoing::new(id, format!("k{id}"), vec![0])));
        }
        let t0 = Instant::now();
        let first = run.start_request(t0).unwrap();
        assert_eq!(first.len(), 20);
        let throttled = || {
            Err(PutRecordsEntryError::parse(
                "ProvisionedThroughputExceededException".into(),
                None,
            ))
        };
        run.answered(first, Ok((0..20).map(|_| throttled()).collect()));
        assert_eq!(run.report.throttled["shardId-0"], 20);
        // The throttled records count for a second after their answer; then the shard takes
        // half its share (10) plus the tenth of it (2) a calm second gives back, not 20.
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(run.start_request(later).unwrap().len(), 12);
    }

    #[test]
    fn a_request_takes_no_more_records_than_the_rate_has_room_for() {
        let mut run = Run::new(&SendOptions {
            rate: NonZeroU32::new(3),
            ..SendOptions::default()
        });
        for id in 0..5 {
            run.accept(Input::Send(Outgoing::new(id, format!("k{id}"), vec![0])));
        }
        let t0 = Instant::now();
        assert_eq!(run.start_request(t0).unwrap().len(), 3);
        assert!(run.start_request(t0).is_none(), "the rate is used up");
        assert_eq!(run.pacer.next_room(), None, "until an answer");
    }

    #[test]
    fn dry_run_counts_every_queued_record_as_sent() {
        let mut run = Run::new(&SendOptions::default());
        for (id, key) in [(1, "a"), (2, "a"), (3, "b")] {
            run.accept(Input::Send(Outgoing::new(id, key, vec![0; 4])));
        }
        run.pretend_sent();
        assert_eq!((run.report.sent, run.report.bytes), (3, 12));
        assert_eq!(run.pending.len, 0);
        assert!(run.pending.order.is_empty());
    }

    #[test]
    fn without_a_rate_there_is_always_room() {
        let mut pacer = Pacer::new(None);
        pacer.started(10_000);
        assert_eq!(pacer.room(Instant::now()), usize::MAX);
        pacer.answered(10_000, Instant::now());
        assert_eq!(pacer.next_room(), None);
    }

    #[test]
    fn records_count_against_the_rate_from_their_start() {
        let mut pacer = Pacer::new(NonZeroU32::new(100));
        let t0 = Instant::now();
        assert_eq!(pacer.room(t0), 100);
        // Concurrent requests: each is counted when it starts, before any answer.
        pacer.started(60);
        assert_eq!(pacer.room(t0), 40);
        pacer.started(40);
        assert_eq!(pacer.room(t0), 0);
        assert_eq!(pacer.next_room(), None, "only an answer can make room");
    }

    #[test]
    fn records_count_until_one_second_after_their_answer() {
        let mut pacer = Pacer::new(NonZeroU32::new(100));
        let t0 = Instant::now();
        pacer.started(60);
        pacer.started(40);
        let first = t0 + Duration::from_millis(30);
        pacer.answered(60, first);
        pacer.answered(40, first + Duration::from_millis(20));
        assert_eq!(pacer.room(first + Duration::from_millis(500)), 0);
        assert_eq!(pacer.next_room(), Some(first + RATE_WINDOW));
        assert_eq!(
            pacer.room(first + RATE_WINDOW - Duration::from_millis(1)),
            0
        );
        assert_eq!(pacer.room(first + RATE_WINDOW), 60);
        assert_eq!(pacer.next_room(), None, "there is room");
        assert_eq!(
            pacer.room(first + RATE_WINDOW + Duration::from_millis(20)),
            100
        );
    }

    #[test]
    fn a_retried_record_counts_again() {
        let mut pacer = Pacer::new(NonZeroU32::new(10));
        let t0 = Instant::now();
        pacer.started(10);
        pacer.answered(10, t0);
        // One of the ten failed and is sent again after its backoff: the rate is used up
        // by the first attempt until a second after its answer.
        assert_eq!(pacer.room(t0 + Duration::from_millis(100)), 0);
        assert_eq!(pacer.room(t0 + RATE_WINDOW), 10);
        pacer.started(1);
        assert_eq!(pacer.room(t0 + RATE_WINDOW), 9);
    }
}
