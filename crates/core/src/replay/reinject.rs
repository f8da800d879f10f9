//! Replaying archived records into a Kinesis stream: read the archive, frame each record
//! (raw, or with its original metadata), and hand it to the [sender](super::sender), which
//! keeps per-key order through partial failures, retries, paces and reports.
//!
//! A record is named by its original sequence number, which also orders a key's records:
//! within a key, records go in numeric sequence order, whatever order the archive returned
//! them in (user records of a KPL container by sub-sequence number after that), for the records read ahead together (up to 10,000; a table returns a key's
//! records together, so a key is ordered as a whole unless it has more).
//!
//! A record whose payload was too large to archive is reported and does not block its
//! key, since nothing can overtake a record that is never sent.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use futures::{Stream, StreamExt};

use crate::domain::frame::{ReplayFrame, ReplayMetadata};
use crate::domain::names::{StreamAddress, StreamName};
use crate::domain::pace::OriginalPace;
use crate::domain::record::{ArchiveRecord, Payload};
use crate::domain::sequence::SequenceNumber;
use crate::domain::shard_load::{LoadShare, ShardLoad};
use crate::error::{Error, ReplaySide};
use crate::replay::journal::Position;
use crate::replay::sender::{
    Accepted, Input, Outgoing, SendFailure, SendOptions, send_records_until,
};
pub use crate::replay::sender::{
    MAX_BYTES_PER_REQUEST, MAX_RECORD_BYTES, MAX_RECORDS_PER_REQUEST,
    SendProgress as ReinjectProgress,
};

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
#[derive(Debug, Clone, PartialEq)]
pub struct ReinjectOptions {
    /// The stream the records were archived from.
    pub source: StreamName,
    /// The stream to send them to (may be the source).
    pub target: StreamName,
    /// The target's ARN, when given (`--target ARN`): calls name the target by it, in
    /// whatever account and region it is.
    pub target_arn: Option<String>,
    /// Who writes the target, when it is not who reads the source (another account, role or
    /// region, see [`crate::aws::TargetAccess::identity`]): errors then say which side
    /// failed and as whom, and a target of the source's name is another stream.
    pub target_identity: Option<String>,
    /// Raw or framed with the original metadata.
    pub framing: Framing,
    /// Ceiling on records sent per second, retries included (see [`SendOptions::rate`]).
    pub rate: Option<NonZeroU32>,
    /// PutRecords calls in flight at once.
    pub concurrency: usize,
    /// Attempts per record before it is reported as failed.
    pub max_attempts: u32,
    /// Count and show, send nothing.
    pub dry_run: bool,
    /// Reproduce the gaps between the records' arrival times, divided by this speed-up
    /// (`--pace original --speed F`); `None`: as fast as the rate allows. The records
    /// should come in arrival order (see [`crate::domain::pace`]).
    pub original_pace: Option<f64>,
    /// Hold each target shard to a share of its write limit (`--max-shard-load`, see
    /// [`crate::domain::shard_load`]); [`target_shard_load`] makes one.
    pub shard_load: Option<ShardLoad>,
    /// A replay into a consumer function (`--target-function`, see
    /// [`crate::replay::function`]) instead of `target`: the journal's identity names it.
    pub target_function: Option<String>,
}

impl ReinjectOptions {
    /// Defaults: raw records, and the sender's defaults (no rate limit, 4 calls in flight,
    /// 10 attempts).
    pub fn new(source: StreamName, target: StreamName) -> Self {
        let SendOptions {
            rate,
            concurrency,
            max_attempts,
            dry_run,
            ..
        } = SendOptions::default();
        Self {
            source,
            target,
            target_arn: None,
            target_identity: None,
            framing: Framing::Raw,
            rate,
            concurrency,
            max_attempts,
            dry_run,
            original_pace: None,
            shard_load: None,
            target_function: None,
        }
    }

    /// How calls name the target.
    pub fn target_address(&self) -> StreamAddress {
        StreamAddress {
            name: self.target.clone(),
            arn: self.target_arn.clone(),
        }
    }

    /// Whether the target is the source stream itself (same name, same account and region).
    pub fn target_is_source(&self) -> bool {
        self.source == self.target && self.target_identity.is_none()
    }

    /// The source stream's name for the frame, when it is not the target (a replay into
    /// another stream says where its records came from).
    pub(crate) fn frame_source(&self) -> Option<&str> {
        (!self.target_is_source()).then(|| self.source.as_str())
    }

    /// `error` labelled with the side it happened on, when the sides differ.
    pub(crate) fn on_side(&self, error: Error, side: Side) -> Error {
        let Some(target_identity) = &self.target_identity else {
            return error;
        };
        match side {
            Side::Source => error.on_side(
                ReplaySide::Source(self.source.clone()),
                "with the caller's credentials",
            ),
            Side::Target => error.on_side(
                ReplaySide::Target(self.target_address().to_string()),
                target_identity,
            ),
            Side::ReadBack => error.on_side(
                ReplaySide::TargetReadBack(self.target_address().to_string()),
                target_identity,
            ),
        }
    }

    /// How the sender sends.
    fn send_options(&self) -> SendOptions {
        SendOptions {
            rate: self.rate,
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            dry_run: self.dry_run,
            shard_load: self.shard_load.clone(),
            // Archived records are all there at once: nothing to wait for.
            ..SendOptions::default()
        }
    }
}

/// Checks, as a replay's first PutRecords would find out, that its target exists and may be
/// used with the target's credentials (DescribeStreamSummary through `kinesis`, the target's
/// client): what `--dry-run` and `--estimate` do, since they send nothing.
pub async fn check_target(
    kinesis: &KinesisClient,
    options: &ReinjectOptions,
) -> Result<crate::aws::streams::StreamSummary, Error> {
    crate::aws::streams::describe_stream_summary_at(kinesis, &options.target_address())
        .await
        .map_err(|e| options.on_side(e, Side::Target))
}

/// The shard load of `options`' target at `share`: its open shards, listed with the
/// target's client (`kinesis`).
pub async fn target_shard_load(
    kinesis: &KinesisClient,
    options: &ReinjectOptions,
    share: LoadShare,
) -> Result<ShardLoad, Error> {
    let shards = crate::aws::streams::list_shards_at(kinesis, &options.target_address(), None)
        .await
        .map_err(|e| options.on_side(e, Side::Target))?;
    Ok(ShardLoad {
        share,
        shards: crate::aws::streams::shard_map(&shards),
    })
}

/// The side of a replay a call is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Target,
    ReadBack,
}

/// A record that could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// Its partition key.
    pub partition_key: String,
    /// Its original sequence number (a KPL container's, for a user record of one).
    pub sequence_number: SequenceNumber,
    /// A de-aggregated user record's index in its KPL container.
    pub sub_sequence_number: Option<u64>,
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
    /// Whether it was stopped before the selection ended (see [`reinject_until`]).
    pub stopped: bool,
    /// Records read but not sent because it was stopped; records not yet read are not
    /// counted anywhere.
    pub unsent: u64,
    /// Record sends Kinesis throttled, by target shard (with a shard load).
    pub throttled: BTreeMap<String, u64>,
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
    progress: impl FnMut(&ReinjectProgress),
) -> Result<ReinjectReport, Error> {
    reinject_until(
        kinesis,
        records,
        options,
        std::future::pending(),
        progress,
        |_| {},
    )
    .await
}

/// [`reinject`] that stops gracefully when `stop` completes (Ctrl-C, SIGTERM), and tells
/// `accepted` which records Kinesis accepted (by original position, with where they were
/// stored and the bytes sent) after each request: see [`crate::replay::sender::send_records_until`] and
/// [`crate::replay::journal`].
pub async fn reinject_until(
    kinesis: &KinesisClient,
    records: impl Stream<Item = Result<ArchiveRecord, Error>>,
    options: &ReinjectOptions,
    stop: impl std::future::Future<Output = ()>,
    progress: impl FnMut(&ReinjectProgress),
    accepted: impl FnMut(Vec<Accepted<Position>>),
) -> Result<ReinjectReport, Error> {
    let mut pace = match options.original_pace {
        Some(speed) => {
            Some(OriginalPace::new(speed).map_err(|e| Error::InvalidInput(e.to_string()))?)
        }
        None => None,
    };
    let framed = records.map(move |record| {
        let due = match (&record, pace.as_mut()) {
            (Ok(r), Some(pace)) => Some(pace.due(r.approximate_arrival_timestamp)),
            _ => None,
        };
        Ok(
            match to_input(record, options).map_err(|e| options.on_side(e, Side::Source))? {
                Input::Send(mut outgoing) => {
                    outgoing.not_before = due;
                    Input::Send(outgoing)
                }
                refused => refused,
            },
        )
    });
    let report = send_records_until(
        kinesis,
        &options.target_address(),
        framed,
        &options.send_options(),
        stop,
        progress,
        accepted,
    )
    .await
    .map_err(|e| options.on_side(e, Side::Target))?;
    Ok(ReinjectReport {
        read: report.read,
        sent: report.sent,
        retried: report.retried,
        failed: report
            .failed
            .into_iter()
            .map(|f| FailedRecord {
                partition_key: f.partition_key,
                sequence_number: f.id.sequence,
                sub_sequence_number: f.id.sub_sequence,
                reason: f.reason,
            })
            .collect(),
        bytes: report.bytes,
        requests: report.requests,
        elapsed: report.elapsed,
        stopped: report.stopped,
        unsent: report.unsent,
        throttled: report.throttled,
    })
}

/// What names a reinjected record and orders a key's records: its original [`Position`]
/// (sequence number, then sub-sequence number for a user record of a KPL container, whose
/// user records share its sequence number).
pub(crate) type RecordId = Position;

/// What the sender is given for one item read from the archive: the record framed as
/// `options` says, or refused (its payload is not in the archive, or in S3 and unreadable:
/// that record's failure, listed at the end, while the others are sent). Errors that stop
/// the replay stay errors. The one rule for a replay and for its estimate.
pub(crate) fn to_input(
    record: Result<ArchiveRecord, Error>,
    options: &ReinjectOptions,
) -> Result<Input<RecordId>, Error> {
    match record {
        Ok(record) => Ok(frame(record, options.framing, options.frame_source())),
        Err(error) => unavailable(error).map(Input::Refused),
    }
}

/// A record whose payload is in S3 and cannot be read ([`Error::PayloadUnavailable`]) as
/// that record's failure; any other error stays the error.
pub(crate) fn unavailable(error: Error) -> Result<SendFailure<RecordId>, Error> {
    match error {
        Error::PayloadUnavailable {
            partition_key,
            sequence_number,
            sub_sequence_number,
            location,
            reason,
            ..
        } => Ok(SendFailure {
            id: Position {
                sequence: sequence_number,
                sub_sequence: sub_sequence_number,
            },
            partition_key,
            reason: format!("its archived payload {location} cannot be read: {reason}"),
        }),
        other => Err(other),
    }
}

/// The record as sent (`framing` applied), or refused when its payload is not in the
/// archive. `source` is the original stream's name for the frame, when it is not the
/// target.
fn frame(record: ArchiveRecord, framing: Framing, source: Option<&str>) -> Input<RecordId> {
    if let Some(reason) = refusal(&record) {
        return Input::Refused(SendFailure {
            id: Position {
                sequence: record.sequence_number,
                sub_sequence: record.sub_sequence_number,
            },
            partition_key: record.partition_key,
            reason,
        });
    }
    let data = match framing {
        Framing::Raw => record.data,
        Framing::Metadata { separator } => ReplayFrame::encode(
            &ReplayMetadata::of(&record, source),
            &record.data,
            separator,
        ),
    };
    // A user record of a KPL container goes out alone (never re-aggregated), under its own
    // partition key and explicit hash key.
    let mut outgoing = Outgoing::new(
        Position {
            sequence: record.sequence_number,
            sub_sequence: record.sub_sequence_number,
        },
        record.partition_key,
        data,
    );
    outgoing.explicit_hash_key = record.explicit_hash_key;
    Input::Send(outgoing)
}

/// Why `record` cannot be replayed, when its payload is not in the archive (too large to
/// archive, or in S3 and not fetched): the one rule of a replay into a stream and into a
/// function.
pub(crate) fn refusal(record: &ArchiveRecord) -> Option<String> {
    match record.payload() {
        Payload::Bytes(_) => None,
        Payload::Oversize(size) => Some(format!(
            "its payload ({size} bytes) was too large to archive and is not in the archive"
        )),
        Payload::Stored(stored) => Some(format!(
            "its payload is in S3 at {} and was not fetched",
            stored.location
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archived(oversize_bytes: Option<u64>) -> ArchiveRecord {
        ArchiveRecord {
            partition_key: "k".into(),
            sequence_number: SequenceNumber::parse("17").unwrap(),
            shard_id: "shardId-000000000000".into(),
            approximate_arrival_timestamp: 1.0,
            data: b"payload".to_vec(),
            last_update: None,
            expire_after: None,
            oversize_bytes,
            sub_sequence_number: None,
            explicit_hash_key: None,
            stored: None,
        }
    }

    #[test]
    fn oversize_records_are_refused_with_a_reason() {
        let Input::Refused(failure) = frame(archived(Some(500_000)), Framing::Raw, None) else {
            panic!("an oversize record is not sendable");
        };
        assert_eq!(failure.id.sequence.as_str(), "17");
        assert!(failure.reason.contains("too large to archive"));
    }

    #[test]
    fn records_are_named_by_sequence_number_and_framed_as_asked() {
        let record = archived(None);
        let Input::Send(raw) = frame(record.clone(), Framing::Raw, None) else {
            panic!("sendable");
        };
        assert_eq!(
            (
                raw.id.sequence.as_str(),
                raw.partition_key.as_str(),
                &raw.data[..]
            ),
            ("17", "k", &b"payload"[..])
        );
        let Input::Send(framed) = frame(
            record.clone(),
            Framing::Metadata { separator: b'#' },
            Some("orders"),
        ) else {
            panic!("sendable");
        };
        let frame = ReplayFrame::parse(&framed.data, b'#');
        assert_eq!(frame.payload, b"payload");
        let metadata = frame.metadata.unwrap();
        assert_eq!(metadata.original_sequence_number, "17");
        assert_eq!(metadata.original_stream_name.as_deref(), Some("orders"));
    }

    #[test]
    fn options_pass_through_to_the_sender() {
        let mut options =
            ReinjectOptions::new(StreamName::new("a").unwrap(), StreamName::new("b").unwrap());
        options.rate = NonZeroU32::new(7);
        options.concurrency = 2;
        options.dry_run = true;
        assert_eq!(
            options.send_options(),
            SendOptions {
                rate: NonZeroU32::new(7),
                concurrency: 2,
                max_attempts: 10,
                dry_run: true,
                ..SendOptions::default()
            }
        );
    }
}
