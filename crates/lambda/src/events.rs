//! What the function reports of an archived batch: one [`BatchArchived`] event, whose
//! [`emit`](BatchArchived::emit) writes both the summary log line and the EMF metrics (see
//! [`crate::metrics`]), from one [`WriteCounts`].
//!
//! The log line is `archived batch` with the fields `stream`, `shard`, `mode`, `table`,
//! `records`, `written`, `skipped_older`, `skipped_replay`, `containers`, `user_records`,
//! `oversize`, `overflowed`, `failed`, `parquet_files`, `parquet_bytes` and `ms`. The metrics, with the dimensions `Stream` and
//! `Mode` (and `Stream` alone, for alarms over every mode): `RecordsArchived`,
//! `RecordsFailed`, `RecordsSkippedOlder`, `RecordsSkippedReplay` (replays into the source
//! stream, see the README), `RecordsOversize`, `RecordsOverflowed` (payloads stored in the
//! overflow bucket), `ParquetFiles` (files written to the Parquet archive) (Count),
//! `ParquetBytes` (Bytes), `BatchDurationMs` (Milliseconds) and `ArchiveLagSeconds`
//! (Seconds: now minus the oldest `approximateArrivalTimestamp` of the batch, how far behind
//! the archive is).
//!
//! A scheduled compaction (see `crate::handler`) reports each stream with one
//! [`StreamCompacted`]: the log line `compacted stream` with the fields `stream`, `mode`,
//! `outputs`, `files_before`, `bytes_before`, `files_after`, `bytes_after`, `failed`,
//! `stopped_early`, `done_before` and `ms`, and the metrics `FilesCompacted`,
//! `CompactionOutputs`, `CompactionFailures` (Count) and `CompactionDurationMs`
//! (Milliseconds), with the same dimensions.

use kinarch_core::compact::CompactionReport;
use kinarch_core::write::WriteCounts;
use serde_json::json;

use crate::metrics::{Metric, Metrics};

/// One batch archived (some of its records may have failed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchArchived<'a> {
    pub(crate) stream: &'a str,
    pub(crate) shard: &'a str,
    /// `ALL`, `LATEST` or `NONE`.
    pub(crate) mode: &'a str,
    pub(crate) table: &'a str,
    /// Kinesis records in the event (a KPL container counts once).
    pub(crate) records: usize,
    /// What became of them.
    pub(crate) counts: WriteCounts,
    pub(crate) duration_ms: u64,
    /// Now minus the oldest arrival time of the batch; `None` for an empty batch.
    pub(crate) lag_seconds: Option<f64>,
}

impl BatchArchived<'_> {
    /// Writes the summary log line, and the EMF line unless metrics are off.
    pub(crate) fn emit(&self, metrics: &Metrics) {
        let c = &self.counts;
        tracing::info!(
            stream = self.stream,
            shard = self.shard,
            mode = self.mode,
            table = self.table,
            records = self.records,
            written = c.written,
            skipped_older = c.skipped_older,
            skipped_replay = c.skipped_replay,
            containers = c.containers,
            user_records = c.user_records,
            oversize = c.oversize,
            overflowed = c.overflowed,
            failed = c.failed,
            parquet_files = c.parquet_files,
            parquet_bytes = c.parquet_bytes,
            ms = self.duration_ms,
            "archived batch"
        );
        metrics.emit(self.stream, self.mode, &self.metrics());
    }

    /// The batch's metrics, in the order of the EMF directive.
    pub(crate) fn metrics(&self) -> Vec<Metric> {
        let c = &self.counts;
        let count = |name, value: u64| Metric::new(name, "Count", json!(value));
        let mut metrics = vec![
            count("RecordsArchived", c.written),
            count("RecordsFailed", c.failed),
            count("RecordsSkippedOlder", c.skipped_older),
            count("RecordsSkippedReplay", c.skipped_replay),
            count("RecordsOversize", c.oversize),
            count("RecordsOverflowed", c.overflowed),
            count("ParquetFiles", c.parquet_files),
            Metric::new("ParquetBytes", "Bytes", json!(c.parquet_bytes)),
            Metric::new("BatchDurationMs", "Milliseconds", json!(self.duration_ms)),
        ];
        if let Some(lag) = self.lag_seconds {
            metrics.push(Metric::new(
                "ArchiveLagSeconds",
                "Seconds",
                json!(lag.max(0.0)),
            ));
        }
        metrics
    }
}

/// One stream's scheduled compaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamCompacted<'a> {
    pub(crate) stream: &'a str,
    /// The stream's archive mode (a metric dimension, as for batches).
    pub(crate) mode: &'a str,
    pub(crate) report: &'a CompactionReport,
    pub(crate) duration_ms: u64,
}

impl StreamCompacted<'_> {
    /// Writes the log line, and the EMF line unless metrics are off.
    pub(crate) fn emit(&self, metrics: &Metrics) {
        let (files_before, bytes_before, files_after, bytes_after) = self.report.totals();
        tracing::info!(
            stream = self.stream,
            mode = self.mode,
            outputs = self.report.outputs.len(),
            files_before,
            bytes_before,
            files_after,
            bytes_after,
            failed = self.report.failed.len(),
            stopped_early = self.report.stopped_at.is_some(),
            done_before = ?self.report.done_before,
            ms = self.duration_ms,
            "compacted stream"
        );
        metrics.emit(self.stream, self.mode, &self.metrics());
    }

    /// The metrics, in the order of the EMF directive.
    pub(crate) fn metrics(&self) -> Vec<Metric> {
        let (files_before, _, _, _) = self.report.totals();
        let count = |name, value: u64| Metric::new(name, "Count", json!(value));
        vec![
            count("FilesCompacted", files_before),
            count("CompactionOutputs", self.report.outputs.len() as u64),
            count("CompactionFailures", self.report.failed.len() as u64),
            Metric::new(
                "CompactionDurationMs",
                "Milliseconds",
                json!(self.duration_ms),
            ),
        ]
    }
}
