//! A replay from its selection to its report, as `kinarch reinject` runs it: the journal
//! opened and checked, the selection read (whole and in arrival order first for the
//! original pace), records an earlier run had accepted skipped, the rest sent, the journal
//! saved as it goes, and a stop (Ctrl-C) honoured while reading and while sending. The CLI
//! only asks, prints and maps signals; a library user gets the same replay.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client as KinesisClient;
use futures::{FutureExt, StreamExt};
use serde::Serialize;

use crate::domain::record::ArchiveRecord;
use crate::domain::selection::{Selection, rfc3339};
use crate::error::Error;
use crate::parquet::ParquetReadStats;
use crate::read::time_index::arrival_order;
use crate::read::{ArchiveReader, ReadOptions, ReadStats};
use crate::replay::estimate::{ReplayEstimate, estimate};
use crate::replay::journal::{Journal, Position, ReplayIdentity};
use crate::replay::reinject::{
    Framing, ReinjectOptions, ReinjectProgress, ReinjectReport, Side, reinject_until,
};
use crate::replay::verify::{SentLedger, VerifyReport, verify};

/// How often the journal is rewritten while a replay runs (and once at its end): a crash
/// in between sends that second's records again on the rerun (at-least-once).
pub(crate) const JOURNAL_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Everything a replay is asked to do.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// Which records.
    pub selection: Selection,
    /// How they are read.
    pub read: ReadOptions,
    /// Where and how they are sent.
    pub options: ReinjectOptions,
    /// The journal (`--journal PATH`), if any.
    pub journal: Option<PathBuf>,
    /// Time bounds of the selection given as relative expressions: flag (`--arrived-after`)
    /// → the expression as typed (`30m`). With a journal, a rerun given the same expression
    /// reads the window the first run resolved (see [`Journal::open`]).
    pub relative_times: BTreeMap<String, String>,
    /// Keep what Kinesis accepted, to read it back afterwards (`--verify`, see
    /// [`crate::replay::verify`]).
    pub verify: bool,
}

/// A replay, ready to estimate or run.
#[derive(Debug)]
pub struct Replay {
    archive: ArchiveReader,
    selection: Selection,
    read: ReadOptions,
    options: ReinjectOptions,
    journal: Option<Journal>,
    ledger: Option<SentLedger>,
    notes: Vec<String>,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    /// What the sender did (nothing when stopped while reading).
    pub report: ReinjectReport,
    /// Records an earlier run with the journal had sent, not sent again.
    pub skipped_by_journal: u64,
    /// Stopped before anything was sent, while the selection was being read.
    pub stopped_while_reading: bool,
    /// What reading the archive cost.
    pub read: ReadStats,
    /// What reading the Parquet archive cost (nothing when the table was read).
    pub parquet: ParquetReadStats,
    /// What Kinesis accepted, this run's and (with a journal) earlier runs', when the
    /// replay was asked to verify.
    pub sent: Option<SentLedger>,
}

impl ReplayOutcome {
    /// Reads back what was sent into `options`' target and checks it (`--verify`, see
    /// [`crate::replay::verify`]); `Ok(None)` when the replay was not asked to verify or
    /// `stop` completed first. Records an earlier run sent without a ledger are counted as
    /// not verifiable. `kinesis` is the target's client.
    pub async fn verify(
        &self,
        kinesis: &KinesisClient,
        options: &ReinjectOptions,
        stop: impl Future<Output = ()>,
    ) -> Result<Option<VerifyReport>, Error> {
        let Some(ledger) = &self.sent else {
            return Ok(None);
        };
        let report = verify(kinesis, &options.target_address(), ledger, stop)
            .await
            .map_err(|e| options.on_side(e, Side::ReadBack))?;
        Ok(report.map(|mut report| {
            report.not_verifiable = self
                .skipped_by_journal
                .saturating_sub(ledger.earlier() as u64);
            report
        }))
    }
}

/// The identity of a replay of `selection` from `archive` with `options`: what a journal is
/// the journal of (see [`ReplayIdentity`]).
pub fn replay_identity(
    archive: &ArchiveReader,
    selection: &Selection,
    options: &ReinjectOptions,
    relative_times: &BTreeMap<String, String>,
) -> ReplayIdentity {
    let mut fields = vec![
        ("--table".to_owned(), archive.config().table.to_string()),
        ("stream".to_owned(), options.source.to_string()),
    ];
    fields.extend(
        selection
            .fingerprint()
            .into_iter()
            .map(|(flag, value)| (flag.to_owned(), value)),
    );
    match &options.target_function {
        // A function replay's journal names the function: a stream replay's is refused.
        Some(function) => fields.push(("--target-function".to_owned(), function.clone())),
        None => fields.push(("--target".to_owned(), options.target_address().to_string())),
    }
    if let Framing::Metadata { separator } = options.framing {
        fields.push(("--metadata".to_owned(), "true".to_owned()));
        fields.push((
            "--separator".to_owned(),
            String::from_utf8_lossy(&[separator]).into_owned(),
        ));
    }
    ReplayIdentity {
        fields,
        relative: relative_times.clone(),
    }
}

impl Replay {
    /// Prepares the replay: opens its journal, if any, and checks that it is this replay's;
    /// a relative time given as in the journal's first run takes that run's instant, and
    /// [`Replay::notes`] says so.
    pub fn prepare(archive: ArchiveReader, request: ReplayRequest) -> Result<Self, Error> {
        let ReplayRequest {
            mut selection,
            read,
            options,
            journal,
            relative_times,
            verify,
        } = request;
        if verify && options.dry_run {
            return Err(Error::InvalidInput(
                "--verify reads back what a replay sent, and a dry run sends nothing: drop one \
                 of --verify and --dry-run"
                    .into(),
            ));
        }
        let mut notes = Vec::new();
        let journal = match journal {
            None => None,
            Some(path) => {
                let identity = replay_identity(&archive, &selection, &options, &relative_times);
                let (journal, adopted) = Journal::open(&path, identity)?;
                if !adopted.is_empty() {
                    let mut spec = selection.spec();
                    for (field, typed, instant) in &adopted {
                        let time = chrono::DateTime::parse_from_rfc3339(instant)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|e| {
                                Error::InvalidInput(format!(
                                    "the journal {} holds {field} {instant:?}, which is not a \
                                     time ({e})",
                                    path.display()
                                ))
                            })?;
                        match field.as_str() {
                            "--arrived-after" => spec.arrived.after = Some(time),
                            "--arrived-before" => spec.arrived.before = Some(time),
                            "--archived-after" => spec.archived.after = Some(time),
                            "--archived-before" => spec.archived.before = Some(time),
                            _ => continue,
                        }
                        notes.push(format!(
                            "journal: {field} {typed} is read as its first run resolved it, \
                             {} (a relative time names the instant of a journal's first run)",
                            rfc3339(time)
                        ));
                    }
                    selection = Selection::new(spec)?;
                }
                Some(journal)
            }
        };
        let ledger = match (verify, &journal) {
            (false, _) => None,
            (true, None) => Some(SentLedger::in_memory()),
            (true, Some(journal)) => Some(SentLedger::beside_journal(
                journal.path(),
                journal.existed(),
            )?),
        };
        Ok(Self {
            archive,
            selection,
            read,
            options,
            journal,
            ledger,
            notes,
        })
    }

    /// What people should be told before the replay starts.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The selection read (with a journal's instants, see [`Replay::prepare`]).
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The archive read.
    pub fn archive(&self) -> &ArchiveReader {
        &self.archive
    }

    /// What the replay would send, reading the selection and sending nothing (records an
    /// earlier run with the journal sent are left out). `None` when `stop` completed first.
    pub async fn estimate(
        &self,
        stop: impl Future<Output = ()>,
    ) -> Result<Option<ReplayEstimate>, Error> {
        let unsent = self
            .archive
            .read(&self.selection, self.read)
            .filter(|record| std::future::ready(!self.sent_before(record)));
        tokio::select! {
            estimate = estimate(unsent, &self.options) => estimate.map(Some),
            () = stop => Ok(None),
        }
    }

    /// Sends the selection: see the [module documentation](self). `progress` is called after
    /// each answered request; `listed` with each record as it goes to the sender (a dry run
    /// lists them). A failed journal write is the error, after the replay.
    pub async fn run(
        mut self,
        kinesis: &KinesisClient,
        stop: impl Future<Output = ()>,
        progress: impl FnMut(&ReinjectProgress),
        mut listed: impl FnMut(&ArchiveRecord),
    ) -> Result<ReplayOutcome, Error> {
        let mut stop = std::pin::pin!(stop.fuse());
        let source = match self.options.original_pace {
            None => self.archive.read(&self.selection, self.read).left_stream(),
            // A paced replay goes in arrival order across shards: the selection is read and
            // ordered first (errors first, so that they are reported before anything is
            // sent). A read through the time index comes in this order already; a Scan
            // does not.
            Some(_) => {
                let reading = self
                    .archive
                    .read(&self.selection, self.read)
                    .collect::<Vec<_>>();
                let read = tokio::select! {
                    read = reading => read,
                    () = stop.as_mut() => {
                        return Ok(ReplayOutcome {
                            stopped_while_reading: true,
                            read: self.archive.read_stats(),
                            parquet: self.archive.parquet_stats(),
                            sent: self.ledger.take(),
                            ..ReplayOutcome::default()
                        });
                    }
                };
                let (mut records, errors): (Vec<_>, Vec<_>) =
                    read.into_iter().partition(Result::is_ok);
                records.sort_by(|a, b| match (a, b) {
                    (Ok(a), Ok(b)) => arrival_order(a, b),
                    _ => std::cmp::Ordering::Equal,
                });
                futures::stream::iter(errors.into_iter().chain(records)).right_stream()
            }
        };
        let journal = std::cell::RefCell::new(self.journal.take());
        let mut ledger = self.ledger.take();
        let skipped = std::cell::Cell::new(0u64);
        let records = source
            .filter(|record| {
                let sent_before = sent_by(journal.borrow().as_ref(), record);
                if sent_before {
                    skipped.set(skipped.get() + 1);
                }
                std::future::ready(!sent_before)
            })
            .inspect(|record| {
                if let Ok(record) = record {
                    listed(record);
                }
            });
        let mut last_save = Instant::now();
        let mut save_error: Option<Error> = None;
        let report = reinject_until(
            kinesis,
            records,
            &self.options,
            stop,
            progress,
            |accepted| {
                if let Some(ledger) = ledger.as_mut()
                    && let Err(e) = ledger.add(&accepted)
                {
                    save_error.get_or_insert(e);
                }
                let mut journal = journal.borrow_mut();
                let Some(journal) = journal.as_mut() else {
                    return;
                };
                for record in accepted {
                    journal.accepted(&record.partition_key, record.id);
                }
                if last_save.elapsed() >= JOURNAL_SAVE_INTERVAL {
                    last_save = Instant::now();
                    // The ledger first: the journal must never skip a record whose
                    // placement the ledger lacks.
                    let saved = match ledger.as_mut() {
                        Some(ledger) => ledger.flush().and_then(|()| journal.save()),
                        None => journal.save(),
                    };
                    if let Err(e) = saved {
                        save_error.get_or_insert(e);
                    }
                }
            },
        )
        .await;
        if let Some(ledger) = ledger.as_mut()
            && let Err(e) = ledger.flush()
        {
            save_error.get_or_insert(e);
        }
        if let (Some(journal), false) = (journal.borrow_mut().as_mut(), self.options.dry_run)
            && save_error.is_none()
            && let Err(e) = journal.save()
        {
            save_error.get_or_insert(e);
        }
        let report = report?;
        if let Some(e) = save_error {
            return Err(e);
        }
        Ok(ReplayOutcome {
            report,
            skipped_by_journal: skipped.get(),
            stopped_while_reading: false,
            read: self.archive.read_stats(),
            parquet: self.archive.parquet_stats(),
            sent: ledger,
        })
    }

    fn sent_before(&self, record: &Result<ArchiveRecord, Error>) -> bool {
        sent_by(self.journal.as_ref(), record)
    }

    /// The prepared replay's parts, for a replay into a function
    /// ([`crate::replay::function`]): archive, selection, read options and journal.
    pub(crate) fn into_parts(self) -> (ArchiveReader, Selection, ReadOptions, Option<Journal>) {
        (self.archive, self.selection, self.read, self.journal)
    }
}

/// Whether the journal (if any) says an earlier run had `record` accepted.
fn sent_by(journal: Option<&Journal>, record: &Result<ArchiveRecord, Error>) -> bool {
    match (record, journal) {
        (Ok(record), Some(journal)) => journal.already_sent(
            &record.partition_key,
            &Position {
                sequence: record.sequence_number.clone(),
                sub_sequence: record.sub_sequence_number,
            },
        ),
        _ => false,
    }
}

/// A replay's report as `reinject -o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    /// The target stream.
    pub target: String,
    /// Whether nothing was sent on purpose.
    pub dry_run: bool,
    /// Records read from the archive.
    pub read: u64,
    /// Records the target accepted (0 in a dry run).
    pub sent: u64,
    /// In a dry run, the records that would have been sent; `null` otherwise.
    pub would_send: Option<u64>,
    /// Record sends tried again.
    pub retried: u64,
    /// Records that could not be sent.
    pub failed: usize,
    /// Those records, with why.
    pub failures: Vec<FailureSummary>,
    /// Bytes sent (data as framed).
    pub bytes: u64,
    /// PutRecords calls.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// Stopped by a signal before the end.
    pub stopped: bool,
    /// Records read but not sent because it stopped.
    pub unsent: u64,
    /// With `--max-shard-load`: record sends Kinesis throttled, by target shard.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub throttled_by_shard: BTreeMap<String, u64>,
    /// What `--verify` found (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

/// One record that could not be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureSummary {
    /// Its partition key.
    pub partition_key: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Why.
    pub reason: String,
}

impl ReplaySummary {
    /// The summary of `report`, sent to `target`.
    pub fn new(report: &ReinjectReport, target: &str, dry_run: bool) -> Self {
        Self {
            target: target.to_owned(),
            dry_run,
            read: report.read,
            sent: if dry_run { 0 } else { report.sent },
            would_send: dry_run.then_some(report.sent),
            retried: report.retried,
            failed: report.failed.len(),
            failures: report
                .failed
                .iter()
                .map(|f| FailureSummary {
                    partition_key: f.partition_key.clone(),
                    sequence_number: f.sequence_number.to_string(),
                    reason: f.reason.clone(),
                })
                .collect(),
            bytes: report.bytes,
            requests: report.requests,
            seconds: report.elapsed.as_secs_f64(),
            stopped: report.stopped,
            unsent: report.unsent,
            throttled_by_shard: report.throttled.clone(),
            verify: None,
        }
    }

    /// The summary with what `--verify` found.
    pub fn with_verify(self, verify: Option<VerifyReport>) -> Self {
        Self { verify, ..self }
    }
}

/// An estimate as `reinject --estimate -o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateSummary {
    /// The target stream.
    pub target: String,
    /// Records that would be sent.
    pub records: u64,
    /// Bytes that would be sent (as framed).
    pub bytes: u64,
    /// The least PutRecords calls.
    pub put_records_calls: u64,
    /// Shards the records came from.
    pub shards: u64,
    /// Partition keys.
    pub keys: u64,
    /// The first arrival, RFC 3339 with milliseconds.
    pub first_arrival: Option<String>,
    /// The last arrival.
    pub last_arrival: Option<String>,
    /// Records the replay would refuse.
    pub unsendable: u64,
    /// Items that do not follow the table contract.
    pub unreadable: u64,
    /// The least time the replay takes at its pace and rate.
    pub seconds: f64,
    /// With `--where`: records read before the filter (`records` are those it selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_read: Option<u64>,
    /// With `--where`: records whose payload is not JSON (not selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_json: Option<u64>,
    /// With `--max-shard-load`: the target shard the replay takes longest into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busiest_target_shard: Option<String>,
    /// And how long, at its share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busiest_target_shard_seconds: Option<f64>,
}

impl EstimateSummary {
    /// The summary of `estimate` for `target`, taking `took` at least.
    pub fn new(estimate: &ReplayEstimate, target: &str, took: Duration) -> Self {
        Self {
            target: target.to_owned(),
            records: estimate.records,
            bytes: estimate.bytes,
            put_records_calls: estimate.calls,
            shards: estimate.shards,
            keys: estimate.keys,
            first_arrival: estimate.arrivals.map(|(first, _)| arrival_text(first)),
            last_arrival: estimate.arrivals.map(|(_, last)| arrival_text(last)),
            unsendable: estimate.unsendable,
            unreadable: estimate.unreadable,
            seconds: took.as_secs_f64(),
            records_read: None,
            not_json: None,
            busiest_target_shard: estimate
                .busiest_target_shard
                .as_ref()
                .map(|(s, _)| s.clone()),
            busiest_target_shard_seconds: estimate
                .busiest_target_shard
                .as_ref()
                .map(|(_, d)| d.as_secs_f64()),
        }
    }

    /// With what a `--where` filter did: records read before it, and not JSON.
    pub fn with_filter(self, stats: crate::read::FilterStats) -> Self {
        Self {
            records_read: Some(stats.read),
            not_json: Some(stats.not_json),
            ..self
        }
    }
}

/// Epoch seconds as RFC 3339 with milliseconds.
pub fn arrival_text(seconds: f64) -> String {
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::selection::{SelectionSpec, TimeWindow};
    use crate::domain::timefmt::parse_time;
    use crate::{ArchiveMode, StreamArchiveConfig, StreamName};

    fn archive() -> ArchiveReader {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        ArchiveReader::with_config(
            &sdk,
            StreamArchiveConfig::new(StreamName::new("orders").unwrap(), ArchiveMode::All, None),
        )
    }

    /// The replay's identity in its exact form: journals written by this release are read by
    /// the next, so this changes only with a new journal version.
    #[test]
    fn a_replays_identity_has_a_pinned_form() {
        let selection = Selection::new(SelectionSpec {
            partition_key: Some("customer-42".into()),
            arrived: TimeWindow::new(Some(parse_time("2026-05-01T10:00:00Z").unwrap()), None),
            ..SelectionSpec::default()
        })
        .unwrap();
        let mut options = ReinjectOptions::new(
            StreamName::new("orders").unwrap(),
            StreamName::new("orders-replay").unwrap(),
        );
        options.framing = Framing::Metadata { separator: b'|' };
        // Pace and rate do not change what is sent.
        options.rate = std::num::NonZeroU32::new(5);
        let identity = replay_identity(&archive(), &selection, &options, &BTreeMap::new());
        assert_eq!(
            identity.text(),
            "kinarch-replay/2 --table=orders-archive-ALL stream=orders \
             --partition-key=\"customer-42\" --arrived-after=2026-05-01T10:00:00Z \
             --target=orders-replay --metadata=true --separator=|"
        );
    }

    #[test]
    fn summaries_serialize_as_the_cli_prints_them() {
        let report = ReinjectReport {
            read: 3,
            sent: 3,
            bytes: 12,
            requests: 1,
            ..ReinjectReport::default()
        };
        let dry = serde_json::to_value(ReplaySummary::new(&report, "t", true)).unwrap();
        assert_eq!(
            (
                dry["sent"].as_u64(),
                dry["wouldSend"].as_u64(),
                dry["dryRun"].as_bool()
            ),
            (Some(0), Some(3), Some(true))
        );
        let sent = serde_json::to_value(ReplaySummary::new(&report, "t", false)).unwrap();
        assert!(sent["wouldSend"].is_null() && sent["sent"] == 3);
        let estimate = ReplayEstimate {
            records: 2,
            arrivals: Some((1777629600.0, 1777629601.5)),
            ..ReplayEstimate::default()
        };
        let e = serde_json::to_value(EstimateSummary::new(&estimate, "t", Duration::from_secs(2)))
            .unwrap();
        assert_eq!(e["firstArrival"], "2026-05-01T10:00:00.000Z");
        assert_eq!(e["lastArrival"], "2026-05-01T10:00:01.500Z");
        assert_eq!(e["putRecordsCalls"], 0);
        assert_eq!(e["seconds"], 2.0);
    }
}
