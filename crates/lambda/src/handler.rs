//! One invocation: decode the event, look up the stream's configuration, write, report; or,
//! invoked by the template's `CompactionSchedule`, compact the Parquet archives of the
//! streams the request names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::streams::KinesisEventResponse;
use kinarch_core::aws::objects::ObjectStore;
use kinarch_core::aws::streams::StreamConfigCache;
use kinarch_core::aws::{AwsOptions, attempt_timeout_from_env, load_sdk_config};
use kinarch_core::compact::Compactor;
use kinarch_core::domain::event::KinesisEventPayload;
use kinarch_core::domain::event::{CompactionRequest, EventError, FunctionEvent};
use kinarch_core::{ArchiveWriter, Error, WriterOptions};
use lambda_runtime::{Diagnostic, LambdaEvent};

use crate::events::{BatchArchived, StreamCompacted};
use crate::metrics::{Metrics, lag_seconds};
use tokio::time::Instant;

/// Seconds a stream's tags are trusted before they are read again.
const ENV_CONFIG_REFRESH: &str = "KINARCH_CONFIG_REFRESH_SECONDS";
/// Milliseconds before the invocation deadline at which writing stops.
const ENV_DEADLINE_MARGIN: &str = "KINARCH_DEADLINE_MARGIN_MS";
const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

/// The warm state of the function: clients and the per-stream configuration cache.
pub(crate) struct Archiver {
    writer: ArchiveWriter,
    compactor: Compactor,
    configs: StreamConfigCache,
    deadline_margin: Duration,
    metrics: Metrics,
}

fn env_number(name: &str) -> Result<Option<u64>, Error> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            Error::InvalidInput(format!(
                "environment variable {name}={v:?} is not a whole number"
            ))
        }),
    }
}

impl Archiver {
    /// Builds the clients from the Lambda environment.
    pub(crate) async fn from_env() -> Result<Self, Error> {
        let refresh = env_number(ENV_CONFIG_REFRESH)?
            .map(Duration::from_secs)
            .unwrap_or(StreamConfigCache::DEFAULT_REFRESH);
        let deadline_margin = env_number(ENV_DEADLINE_MARGIN)?
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_DEADLINE_MARGIN);
        let sdk = load_sdk_config(&AwsOptions {
            attempt_timeout: attempt_timeout_from_env()?,
            ..AwsOptions::default()
        })
        .await;
        Ok(Self {
            writer: ArchiveWriter::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                WriterOptions::default(),
            )
            .with_objects(ObjectStore::new(&sdk)),
            compactor: Compactor::new(&sdk),
            configs: StreamConfigCache::new(aws_sdk_kinesis::Client::new(&sdk), refresh),
            deadline_margin,
            metrics: Metrics::from_env()?,
        })
    }

    /// Handles one invocation of either kind: a Kinesis event ([`Self::handle`]) or a
    /// compaction request ([`Self::compact`]).
    pub(crate) async fn dispatch(
        &self,
        event: LambdaEvent<FunctionEvent>,
    ) -> Result<serde_json::Value, Diagnostic> {
        let LambdaEvent { payload, context } = event;
        match payload {
            FunctionEvent::Kinesis(payload) => {
                let response = self.handle(LambdaEvent { payload, context }).await?;
                serde_json::to_value(response).map_err(|e| {
                    fail(
                        "Response",
                        "-",
                        Error::Internal(format!("the batch response: {e}")),
                    )
                })
            }
            FunctionEvent::Compact(request) => {
                let request_id = context.request_id.clone();
                let request = request
                    .map_err(|e: EventError| fail("InvalidRequest", &request_id, e.into()))?;
                let deadline = self.write_deadline(context.deadline);
                self.compact(request, deadline, &request_id).await
            }
        }
    }

    /// Compacts the Parquet archive of each stream of `request` that has one (the hours
    /// finished since the last run, see `kinarch_core::compact::Compactor::compact_scheduled`),
    /// one after the other, until `deadline`: a stream not reached, or not finished, goes on at
    /// the next run. A stream without an `ArchiveParquet` tag is skipped with a log line. Any
    /// stream that failed makes the invocation fail (after the others were done), so the
    /// function's Errors metric shows it.
    pub(crate) async fn compact(
        &self,
        request: CompactionRequest,
        deadline: Instant,
        request_id: &str,
    ) -> Result<serde_json::Value, Diagnostic> {
        let mut streams = Vec::new();
        let mut first_error: Option<Error> = None;
        for stream in &request.streams {
            if Instant::now() >= deadline {
                tracing::warn!(stream = %stream.name, "the deadline came before this stream: the next run compacts it");
                streams.push(serde_json::json!({"stream": stream.name.as_str(), "reached": false}));
                continue;
            }
            let started = Instant::now();
            let config = match self.configs.get(&stream.name).await {
                Ok(config) => config,
                Err(err) => {
                    tracing::error!(stream = %stream.name, error = %err, "the stream's configuration cannot be read: not compacted");
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            let Some(target) = &config.parquet else {
                tracing::info!(stream = %stream.name, "no ArchiveParquet tag: nothing to compact");
                streams.push(serde_json::json!({"stream": stream.name.as_str(), "parquet": false}));
                continue;
            };
            let report = match self
                .compactor
                .compact_scheduled(target, &stream.name, Some(deadline))
                .await
            {
                Ok(report) => report,
                Err(err) => {
                    tracing::error!(stream = %stream.name, error = %err, "compaction failed");
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            StreamCompacted {
                stream: stream.name.as_str(),
                mode: config.mode.as_str(),
                report: &report,
                duration_ms: started.elapsed().as_millis() as u64,
            }
            .emit(&self.metrics);
            if let Some(failure) = report.failed.first() {
                first_error.get_or_insert(Error::InvalidInput(failure.clone()));
            }
            let (files_before, _, files_after, _) = report.totals();
            streams.push(serde_json::json!({
                "stream": stream.name.as_str(),
                "filesBefore": files_before,
                "filesAfter": files_after,
                "failed": report.failed.len(),
                "doneBefore": report.done_before.map(kinarch_core::domain::selection::rfc3339),
            }));
        }
        match first_error {
            Some(err) => Err(fail("Compaction", request_id, err)),
            None => Ok(serde_json::json!({ "compacted": streams })),
        }
    }

    /// Handles one invocation. Records that did not land are reported through the partial
    /// batch response (the lowest sequence number, from which Lambda delivers again); an
    /// event that cannot be archived at all is a function error, so its records stay in
    /// the stream.
    pub(crate) async fn handle(
        &self,
        event: LambdaEvent<KinesisEventPayload>,
    ) -> Result<KinesisEventResponse, Diagnostic> {
        let started = Instant::now();
        let request_id = event.context.request_id.clone();
        let deadline = self.write_deadline(event.context.deadline);
        // The runtime decoded the records straight from the body it received (and freed
        // it); an event that is JSON but not a usable Kinesis event arrives as its error.
        let batch = event
            .payload
            .0
            .map_err(|e| fail("InvalidEvent", &request_id, e.into()))?;
        let stream = batch.stream.name.clone();
        let oldest_arrival = batch
            .records
            .iter()
            .map(|r| r.approximate_arrival_timestamp)
            .reduce(f64::min);
        let config = self
            .configs
            .get(&stream)
            .await
            .map_err(|e| fail("StreamConfiguration", &request_id, e))?;
        let outcome = self
            .writer
            .write(&config, &batch.records, deadline)
            .await
            .map_err(|e| fail("ArchiveTable", &request_id, e))?;
        BatchArchived {
            stream: stream.as_str(),
            shard: &batch.shard_id,
            mode: config.mode.as_str(),
            table: config.table.as_str(),
            records: outcome.records,
            counts: outcome.counts,
            duration_ms: started.elapsed().as_millis() as u64,
            lag_seconds: lag_seconds(oldest_arrival),
        }
        .emit(&self.metrics);
        let mut response = KinesisEventResponse::default();
        if let Some(lowest) = &outcome.lowest_failed {
            tracing::error!(
                stream = %stream,
                shard = %batch.shard_id,
                failed = outcome.counts.failed,
                retry_from = %lowest,
                error = %FirstError(outcome.first_error.as_ref()),
                "some records were not archived; Lambda will deliver them again"
            );
            response.add_failure(lowest.as_str());
        }
        Ok(response)
    }

    /// The time by which writes must be done: the invocation deadline less a margin, so
    /// the function answers with a partial failure instead of timing out (a timeout makes
    /// Lambda retry the whole batch). A missing deadline (0) leaves 60 s.
    fn write_deadline(&self, deadline_epoch_ms: u64) -> Instant {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let remaining = if deadline_epoch_ms == 0 {
            Duration::from_secs(60)
        } else {
            Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
        };
        Instant::now() + remaining.saturating_sub(self.deadline_margin)
    }
}

/// The first error of a batch for the log, `unknown` when there was none.
struct FirstError<'a>(Option<&'a Error>);

impl std::fmt::Display for FirstError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(error) => error.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

fn fail(kind: &str, request_id: &str, error: Error) -> Diagnostic {
    tracing::error!(request_id, error_type = kind, error = %error, "invocation failed; the batch stays in the stream");
    Diagnostic {
        error_type: format!("kinarch.{kind}"),
        error_message: error.to_string(),
    }
}
