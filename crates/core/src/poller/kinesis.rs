//! The Kinesis calls of a shard reader (GetShardIterator, GetRecords), what their errors
//! mean for it ([`CallError`]), their retry policy ([`ShardCall`]), and the conversion of
//! the records they return into [`ArchiveRecord`]s for the writer. `reinject --verify`
//! reads its target back through the same calls.

use aws_sdk_kinesis::Client as KinesisClient;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::get_records::GetRecordsError;
use aws_sdk_kinesis::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_smithy_types::retry::ProvideErrorKind;

use std::marker::PhantomData;
use std::time::Duration;

use crate::aws::aws_error;
use crate::aws::error::{NotFound, is_not_found};
use crate::aws::retry::{Budget, Retries, RetryPolicy, Verdict};
use crate::domain::names::StreamName;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;
use crate::poller::checkpoint::CheckpointLocation;
use crate::poller::{MAX_BATCH_SIZE, MIN_CALL_INTERVAL, Position, StartPosition};

/// One GetRecords answer.
pub(crate) struct Page {
    pub(crate) records: Vec<aws_sdk_kinesis::types::Record>,
    pub(crate) next_iterator: Option<String>,
    pub(crate) millis_behind_latest: Option<i64>,
}

/// Why a Kinesis call did not answer.
pub(crate) enum CallError {
    /// Throttled, 5xx, timeout: try again after a backoff.
    Transient(Error),
    /// The shard iterator is older than 5 minutes: get a new one.
    Expired,
    /// Cannot go on.
    Fatal(Error),
}

/// The shard reads of one stream.
pub(crate) struct ShardCalls<'a> {
    pub(crate) client: &'a KinesisClient,
    pub(crate) stream: &'a StreamName,
    /// The stream's ARN, when calls name it by ARN (a replay's target in another account).
    pub(crate) stream_arn: Option<&'a str>,
    pub(crate) region: &'a str,
    /// Named when a checkpoint does not fit the stream (the archiver's reads; `None` for
    /// reads that start from no checkpoint).
    pub(crate) checkpoints: Option<&'a CheckpointLocation>,
}

impl ShardCalls<'_> {
    /// GetShardIterator for `position`. `Ok(None)`: the shard has nothing left to read.
    pub(crate) async fn shard_iterator(
        &self,
        shard: &str,
        position: &Position,
    ) -> Result<Option<String>, CallError> {
        let mut call = self
            .client
            .get_shard_iterator()
            .set_stream_name(
                self.stream_arn
                    .is_none()
                    .then(|| self.stream.as_str().to_owned()),
            )
            .set_stream_arn(self.stream_arn.map(str::to_owned))
            .shard_id(shard);
        call = match position {
            Position::Start(StartPosition::TrimHorizon) => {
                call.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Position::Start(StartPosition::Latest) => {
                call.shard_iterator_type(ShardIteratorType::Latest)
            }
            Position::Start(StartPosition::AtTimestamp(time)) => call
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_smithy_types::DateTime::from_secs_and_nanos(
                    time.timestamp(),
                    time.timestamp_subsec_nanos(),
                )),
            Position::After(seq) => call
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq.as_str()),
            Position::At(seq) => call
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq.as_str()),
        };
        match call.send().await {
            Ok(output) => Ok(output.shard_iterator),
            Err(err) => {
                let checkpoint_misfits = err
                    .as_service_error()
                    .is_some_and(GetShardIteratorError::is_invalid_argument_exception)
                    && matches!(position, Position::After(_));
                Err(
                    match self.classify(err, false, "Kinesis.GetShardIterator") {
                        // A checkpoint Kinesis refuses most likely comes from an older stream of
                        // the same name: say which checkpoint to remove.
                        CallError::Fatal(error) if checkpoint_misfits => match self.checkpoints {
                            Some(checkpoints) => CallError::Fatal(error.explained(|| {
                                format!(
                                    "the checkpoint of shard {shard} in {checkpoints} does \
                                         not fit the stream (was the stream deleted and created \
                                         again?): remove that checkpoint to archive the shard \
                                         from the start"
                                )
                            })),
                            None => CallError::Fatal(error),
                        },
                        other => other,
                    },
                )
            }
        }
    }

    /// GetRecords of at most `batch_size` records.
    pub(crate) async fn get_records(
        &self,
        iterator: &str,
        batch_size: usize,
    ) -> Result<Page, CallError> {
        let limit = i32::try_from(batch_size).unwrap_or(MAX_BATCH_SIZE as i32);
        match self
            .client
            .get_records()
            .shard_iterator(iterator)
            // A stream of another account shared by a resource policy is read by its ARN.
            .set_stream_arn(self.stream_arn.map(str::to_owned))
            .limit(limit)
            .send()
            .await
        {
            Ok(output) => Ok(Page {
                records: output.records,
                next_iterator: output.next_shard_iterator,
                millis_behind_latest: output.millis_behind_latest,
            }),
            Err(err) => {
                let expired = err
                    .as_service_error()
                    .is_some_and(GetRecordsError::is_expired_iterator_exception);
                Err(self.classify(err, expired, "Kinesis.GetRecords"))
            }
        }
    }

    /// What a failed call means for the reader; `expired`: the error says the shard
    /// iterator expired.
    fn classify<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        expired: bool,
        operation: &'static str,
    ) -> CallError
    where
        E: NotFound
            + ProvideErrorKind
            + ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        if expired {
            return CallError::Expired;
        }
        if is_not_found(&err) {
            return CallError::Fatal(Error::StreamNotFound {
                stream: self.stream.clone(),
                region: self.region.to_owned(),
            });
        }
        let error = aws_error(operation, err);
        if error.is_transient() {
            CallError::Transient(error)
        } else {
            CallError::Fatal(error)
        }
    }
}

/// The retries of a GetShardIterator or GetRecords call: throttling and other transient
/// answers are retried after an exponential backoff with jitter, from the least interval
/// between calls, within `budget` (a shard reader: [`Budget::Unbounded`], as long as it
/// runs).
pub(crate) fn call_retries(budget: Budget) -> Retries {
    Retries::new(MIN_CALL_INTERVAL, Duration::from_secs(5), budget)
}

/// A shard reader's Kinesis call: transient errors are retried until the reader stops
/// (`Output` `None`: the shard iterator expired, get a new one).
pub(crate) struct ShardCall<'a, T> {
    shard: &'a str,
    operation: ShardOperation,
    answer: PhantomData<fn() -> T>,
}

#[derive(Clone, Copy)]
pub(crate) enum ShardOperation {
    GetShardIterator,
    GetRecords,
}

impl<'a, T> ShardCall<'a, T> {
    pub(crate) fn new(shard: &'a str, operation: ShardOperation) -> Self {
        Self {
            shard,
            operation,
            answer: PhantomData,
        }
    }
}

impl<T> RetryPolicy for ShardCall<'_, T> {
    type Request = ();
    type Answer = Result<T, CallError>;
    type Output = Option<T>;

    fn operation(&self) -> &'static str {
        match self.operation {
            ShardOperation::GetShardIterator => "Kinesis.GetShardIterator",
            ShardOperation::GetRecords => "Kinesis.GetRecords",
        }
    }

    fn log_retry(&self, error: &Error, _attempt: u32, _partial: bool) {
        let shard = self.shard;
        match self.operation {
            ShardOperation::GetShardIterator => {
                tracing::warn!(shard, error = %error, "GetShardIterator failed; retrying");
            }
            ShardOperation::GetRecords => {
                tracing::warn!(shard, error = %error, "GetRecords throttled or failed; backing off");
            }
        }
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<Option<T>, ()> {
        match answer {
            Ok(output) => Verdict::Done(Some(output)),
            Err(CallError::Expired) => Verdict::Done(None),
            Err(CallError::Transient(error)) => Verdict::Retry(error),
            Err(CallError::Fatal(error)) => Verdict::Fail(error),
        }
    }
}

/// A Kinesis record as the writer takes it. The arrival time keeps Kinesis' millisecond
/// precision the way a Lambda event carries it (epoch seconds with three decimals), so both
/// archivers store the same `approximateArrivalTimestamp`.
pub(super) fn to_archive_record(
    shard: &str,
    record: aws_sdk_kinesis::types::Record,
) -> Result<ArchiveRecord, Error> {
    let sequence_number = SequenceNumber::parse(&record.sequence_number)?;
    // Rounded to the nearest millisecond: AWS sends milliseconds; an emulator may send
    // microseconds, which the Lambda event path would round the same way.
    let arrival = record
        .approximate_arrival_timestamp
        .map(|t| {
            let millis = t.secs() * 1000 + (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000;
            millis as f64 / 1000.0
        })
        .unwrap_or(0.0);
    Ok(ArchiveRecord::received(
        record.partition_key,
        sequence_number,
        shard.to_owned(),
        arrival,
        record.data.into_inner(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::primitives::Blob;

    #[test]
    fn kinesis_records_keep_millisecond_arrival_like_lambda_events() {
        let record = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("49590338271490256608559692538361571095921575989136588898")
            .approximate_arrival_timestamp(aws_smithy_types::DateTime::from_millis(
                1_545_084_650_987,
            ))
            .data(Blob::new(vec![0u8, 0xff]))
            .partition_key("k")
            .build()
            .unwrap();
        let archived = to_archive_record("shardId-000000000003", record).unwrap();
        assert_eq!(archived.approximate_arrival_timestamp, 1545084650.987);
        assert_eq!(
            crate::domain::record::format_epoch_seconds(archived.approximate_arrival_timestamp),
            "1545084650.987"
        );
        assert_eq!(archived.data, vec![0u8, 0xff]);
        let micro = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("1")
            .approximate_arrival_timestamp(aws_smithy_types::DateTime::from_secs_and_nanos(
                1_795_646_227,
                259_600_000,
            ))
            .data(Blob::new(vec![]))
            .partition_key("k")
            .build()
            .unwrap();
        assert_eq!(
            to_archive_record("s", micro)
                .unwrap()
                .approximate_arrival_timestamp,
            1795646227.26,
            "rounded to the nearest millisecond"
        );
        assert_eq!(archived.shard_id, "shardId-000000000003");
        let bad = aws_sdk_kinesis::types::Record::builder()
            .sequence_number("12x")
            .data(Blob::new(vec![]))
            .partition_key("k")
            .build()
            .unwrap();
        assert!(to_archive_record("s", bad).is_err());
    }
}
