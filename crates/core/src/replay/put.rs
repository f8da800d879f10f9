//! Writing new records into a stream (`kinarch put`).
//!
//! The records go through the [sender](super::sender) that [`reinject`](super::reinject)
//! uses too: the same PutRecords path (at most 500 records and 5 MiB per call, the 1 MiB
//! record limit, per-record retries with backoff, per-key order kept through partial
//! failures), so no Kinesis write is implemented twice. Each input carries a caller-chosen
//! position (a line number, say) that failures are reported by; a key's records go in
//! position order.

use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use futures::{Stream, StreamExt};

use crate::domain::names::StreamName;
use crate::error::Error;
use crate::replay::sender::{Input, Outgoing, SendOptions, SendProgress, send_records};

/// One record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutInput {
    /// Where the record came from (e.g. its line number); failures name it.
    pub position: u64,
    /// The partition key (1 to 256 characters).
    pub partition_key: String,
    /// The record bytes.
    pub data: Vec<u8>,
}

/// A record that could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutFailure {
    /// Its [`PutInput::position`].
    pub position: u64,
    /// Its partition key.
    pub partition_key: String,
    /// Why.
    pub reason: String,
}

/// How [`put_records`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// PutRecords calls in flight at once.
    pub concurrency: usize,
    /// Keep order per partition key (the default); `false` batches freely.
    pub ordered: bool,
    /// Read and check everything, send nothing.
    pub dry_run: bool,
    /// How long a request may wait to fill ([`PUT_LINGER`] by default).
    pub linger: Option<Duration>,
}

/// How long a record of `kinarch put` waits for more to share its call: short enough that
/// `tail -f` output shows in the stream at once, long enough to fill calls from a busy
/// source.
pub const PUT_LINGER: Duration = Duration::from_millis(100);

impl Default for PutOptions {
    /// One call in flight, ordered, sent for real, [`PUT_LINGER`].
    fn default() -> Self {
        Self {
            concurrency: 1,
            ordered: true,
            dry_run: false,
            linger: Some(PUT_LINGER),
        }
    }
}

/// What [`put_records`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutReport {
    /// Records taken from the input.
    pub read: u64,
    /// Records the stream accepted (in a dry run: that would have been sent).
    pub sent: u64,
    /// Bytes of data sent.
    pub bytes: u64,
    /// Records that could not be written.
    pub failed: Vec<PutFailure>,
    /// PutRecords calls made.
    pub requests: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Writes `records` into `stream` as they come, in order per partition key unless
/// `options.ordered` is false, with at most `options.concurrency` PutRecords calls in
/// flight. `progress` is called after each answered call. An error is
/// returned only when nothing can go on (the stream does not exist, the input failed).
///
/// ```no_run
/// # async fn example(kinesis: aws_sdk_kinesis::Client) -> kinarch_core::Result<()> {
/// use kinarch_core::StreamName;
/// use kinarch_core::replay::put::{PutInput, put_records};
///
/// let lines = ["{\"order\":1}", "{\"order\":2}"];
/// let records = lines.iter().enumerate().map(|(i, line)| {
///     Ok(PutInput { position: i as u64 + 1, partition_key: "customer-1".into(), data: line.as_bytes().to_vec() })
/// });
/// let options = Default::default();
/// let report = put_records(&kinesis, &StreamName::new("orders")?, futures::stream::iter(records), &options, |_| {}).await?;
/// println!("{} of {} written", report.sent, report.read);
/// # Ok(()) }
/// ```
pub async fn put_records(
    kinesis: &KinesisClient,
    stream: &StreamName,
    records: impl Stream<Item = Result<PutInput, Error>>,
    options: &PutOptions,
    progress: impl FnMut(&SendProgress),
) -> Result<PutReport, Error> {
    let records = records.map(|input| {
        input.map(|input| {
            Input::Send(Outgoing::new(
                input.position,
                input.partition_key,
                input.data,
            ))
        })
    });
    let options = SendOptions {
        concurrency: options.concurrency.max(1),
        ordered: options.ordered,
        dry_run: options.dry_run,
        linger: options.linger,
        ..SendOptions::default()
    };
    let report = send_records(kinesis, &stream.clone().into(), records, &options, progress).await?;
    Ok(PutReport {
        read: report.read,
        sent: report.sent,
        bytes: report.bytes,
        failed: report
            .failed
            .into_iter()
            .map(|f| PutFailure {
                position: f.id,
                partition_key: f.partition_key,
                reason: f.reason,
            })
            .collect(),
        requests: report.requests,
        elapsed: report.elapsed,
    })
}
