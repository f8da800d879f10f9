//! Every retry kinarch makes itself, on top of the SDK's own attempts: one loop
//! ([`retry`]) and one retry state ([`Retries`]: budget, backoff with jitter, attempts).
//!
//! A [`RetryPolicy`] says what one answer means ([`Verdict`]: done, retry, retry the part
//! left, fail); the loop owns the rest: the deadline or budget, the backoff, the log line of
//! each retry, and the error when it gives up. Calls retried this way: BatchWriteItem and its
//! UnprocessedItems and LATEST's conditional PutItem (`write`), the overflow PutObject
//! ([`super::objects`]), GetShardIterator and GetRecords (`poller::reader`), the archiver's
//! start-up (`poller`), and every call made through [`send_with_retries`] (checkpoints,
//! reads, setup). The one retry that is not such a call, a shard reader reading its records
//! again after a write that partly failed, keeps its own loop (it spans reading and
//! writing) but takes its budget and backoff from a [`Retries`].
//!
//! Not here: the replay sender's per-record retries inside a partition key's lane
//! (`replay::sender`), which its one `select!` loop schedules; which PutRecords error codes
//! it retries is [`super::error::PutRecordsEntryError::is_retried`].

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::ProvideErrorKind;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use super::error::{AwsErrorKind, is_transient};
use crate::error::Error;

/// Exponential backoff with jitter (backon), starting at `first` and capped at `max`.
#[derive(Debug)]
pub(crate) struct Backoff(ExponentialBackoff);

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self(
            ExponentialBuilder::default()
                .with_min_delay(first)
                .with_max_delay(max)
                .with_jitter()
                .without_max_times()
                .build(),
        )
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.0.next().unwrap_or(Duration::from_secs(1))
    }
}

/// How long, or how often, an operation may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Until this instant: no attempt starts at or after it, no backoff ends after it, and
    /// an attempt still in flight then is abandoned (the writer's deadline).
    Deadline(Instant),
    /// Retries for this long from the start; an attempt in flight is not cut short.
    For(Duration),
    /// At most this many attempts.
    Attempts(u32),
    /// As long as it takes: the caller stops it (a shard reader, on its stop flag).
    Unbounded,
}

/// The retry state of one operation: its budget, its backoff (exponential, with jitter) and
/// the attempts that failed so far.
#[derive(Debug)]
pub(crate) struct Retries {
    backoff: Backoff,
    budget: Budget,
    /// When no backoff may end any more ([`Budget::Deadline`], [`Budget::For`]).
    until: Option<Instant>,
    failed: u32,
}

impl Retries {
    /// Delays from `first`, doubling with jitter up to `max`, within `budget`.
    pub(crate) fn new(first: Duration, max: Duration, budget: Budget) -> Self {
        let until = match budget {
            Budget::Deadline(deadline) => Some(deadline),
            Budget::For(span) => Some(Instant::now() + span),
            Budget::Attempts(_) | Budget::Unbounded => None,
        };
        Self {
            backoff: Backoff::new(first, max),
            budget,
            until,
            failed: 0,
        }
    }

    /// Failed attempts so far.
    pub(crate) fn failed(&self) -> u32 {
        self.failed
    }

    /// The deadline attempts are cut at ([`Budget::Deadline`]).
    fn cut_at(&self) -> Option<Instant> {
        match self.budget {
            Budget::Deadline(deadline) => Some(deadline),
            _ => None,
        }
    }

    /// After a failed attempt: the delay before the next one, or `None` when the budget has
    /// no room for another (the attempts are used up, or the delay would end at or after
    /// the deadline).
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        self.failed += 1;
        if let Budget::Attempts(most) = self.budget
            && self.failed >= most
        {
            return None;
        }
        let delay = self.backoff.next_delay();
        match self.until {
            Some(until) if Instant::now() + delay >= until => None,
            _ => Some(delay),
        }
    }
}

/// What one answer means to [`retry`].
#[derive(Debug)]
pub(crate) enum Verdict<T, R> {
    /// The operation is done; its result.
    Done(T),
    /// A passing failure: the same request again after a backoff. The error says why; it is
    /// the operation's error if the budget runs out.
    Retry(Error),
    /// Part of the request was done: this rest of it again after a backoff (BatchWriteItem's
    /// UnprocessedItems).
    RetryPart(R, Error),
    /// Retrying cannot help.
    Fail(Error),
}

impl<T, R> Verdict<T, R> {
    /// [`Verdict::Retry`] for a [transient](Error::is_transient) error, else
    /// [`Verdict::Fail`].
    pub(crate) fn after(error: Error) -> Self {
        if error.is_transient() {
            Verdict::Retry(error)
        } else {
            Verdict::Fail(error)
        }
    }
}

/// What [`retry`] needs to know about one operation.
pub(crate) trait RetryPolicy {
    /// What an attempt sends; a partial retry replaces it with the part left (`()` when
    /// every attempt sends the same).
    type Request;
    /// What an attempt returns.
    type Answer;
    /// What the operation gives when done.
    type Output;

    /// The operation, for the error of a deadline reached (`DynamoDB.BatchWriteItem`).
    fn operation(&self) -> &'static str;

    /// The log line of a retry, which [`retry`] writes before each backoff: a warning, or
    /// a debug line for a `partial` retry (a throttled part of a request is routine).
    /// Policies with something to name (a shard, a stream) write their own line.
    fn log_retry(&self, error: &Error, attempt: u32, partial: bool) {
        if partial {
            tracing::debug!(error = %error, attempt, "part of the request was not done; retrying the rest");
        } else {
            tracing::warn!(error = %error, attempt, "transient AWS error; retrying");
        }
    }

    /// What an answer means.
    fn judge(&self, answer: Self::Answer) -> Verdict<Self::Output, Self::Request>;
}

/// Why [`retry`] gave up: the error, and the part of the request that was not done.
#[derive(Debug)]
pub(crate) struct GaveUp<R> {
    pub(crate) error: Error,
    pub(crate) left: R,
}

/// Tries `request` with `attempt` until `policy` judges an answer done or failed, or
/// `retries` has no room for another attempt. Each retry waits its backoff and is logged
/// (a partial retry at debug level, others as warnings).
pub(crate) async fn retry<P, F, Fut>(
    policy: &P,
    mut retries: Retries,
    mut request: P::Request,
    mut attempt: F,
) -> Result<P::Output, GaveUp<P::Request>>
where
    P: RetryPolicy,
    F: FnMut(&P::Request) -> Fut,
    Fut: Future<Output = P::Answer>,
{
    let operation = policy.operation();
    let cut_at = retries.cut_at();
    loop {
        let verdict = match cut_at {
            Some(deadline) if Instant::now() >= deadline => {
                let error = deadline_reached(operation, "before the call was made");
                return Err(GaveUp {
                    error,
                    left: request,
                });
            }
            Some(deadline) => match tokio::time::timeout_at(deadline, attempt(&request)).await {
                Ok(answer) => policy.judge(answer),
                Err(_) => Verdict::Retry(deadline_reached(operation, "while a call was in flight")),
            },
            None => policy.judge(attempt(&request).await),
        };
        let (error, partial) = match verdict {
            Verdict::Done(output) => return Ok(output),
            Verdict::Fail(error) => {
                return Err(GaveUp {
                    error,
                    left: request,
                });
            }
            Verdict::Retry(error) => (error, false),
            Verdict::RetryPart(rest, error) => {
                request = rest;
                (error, true)
            }
        };
        let Some(delay) = retries.next_delay() else {
            return Err(GaveUp {
                error,
                left: request,
            });
        };
        policy.log_retry(&error, retries.failed(), partial);
        tokio::time::sleep(delay).await;
    }
}

/// The error of an operation its deadline ended.
fn deadline_reached(operation: &'static str, when: &str) -> Error {
    Error::aws(
        operation,
        AwsErrorKind::Timeout,
        format!("deadline reached {when}"),
    )
}

/// [`send_with_retries`]' policy: an SDK call, retried when its error is transient.
struct Transient<T, E, Fail> {
    fail: Fail,
    answer: PhantomData<fn() -> (T, E)>,
}

impl<T, E, Fail> RetryPolicy for Transient<T, E, Fail>
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + 'static,
    Fail: Fn(SdkError<E, HttpResponse>) -> Error,
{
    type Request = ();
    type Answer = Result<T, SdkError<E, HttpResponse>>;
    type Output = T;

    /// Unused: no deadline cuts these calls ([`Budget::For`]); `fail` names the operation.
    fn operation(&self) -> &'static str {
        "AWS call"
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<T, ()> {
        match answer {
            Ok(output) => Verdict::Done(output),
            // Told by the SDK's error: `fail` may wrap it in an error that is not transient
            // itself (a checkpoint's).
            Err(err) if is_transient(&err) => Verdict::Retry((self.fail)(err)),
            Err(err) => Verdict::Fail((self.fail)(err)),
        }
    }
}

/// Sends a call, retrying throttling, 5xx answers and timeouts with backoff for up to
/// `budget` (on top of the SDK's own attempts): a long scan of a provisioned table is
/// throttled now and then and should not die of it. `fail` makes the error of a call that
/// failed for good or ran out of budget.
pub(crate) async fn send_with_retries<T, E, F, Fut>(
    budget: Duration,
    mut call: F,
    fail: impl Fn(SdkError<E, HttpResponse>) -> Error,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + 'static,
{
    let retries = Retries::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
        Budget::For(budget),
    );
    let policy = Transient {
        fail,
        answer: PhantomData,
    };
    retry(&policy, retries, (), |_| call())
        .await
        .map_err(|gave_up| gave_up.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A policy over scripted answers: `Ok(n)` done with n, `Err(kind)` an error of that
    /// kind, and a request of how many items are left (a partial answer leaves fewer).
    struct Scripted;

    enum Answer {
        Done,
        Partly(u32),
        Error(AwsErrorKind),
    }

    impl RetryPolicy for Scripted {
        type Request = u32;
        type Answer = Answer;
        type Output = &'static str;

        fn operation(&self) -> &'static str {
            "Test.Call"
        }

        fn judge(&self, answer: Answer) -> Verdict<&'static str, u32> {
            match answer {
                Answer::Done => Verdict::Done("done"),
                Answer::Partly(left) => Verdict::RetryPart(
                    left,
                    Error::aws("Test.Call", AwsErrorKind::Throttled, "partly"),
                ),
                Answer::Error(kind) => Verdict::after(Error::aws("Test.Call", kind, "failed")),
            }
        }
    }

    fn quick(budget: Budget) -> Retries {
        Retries::new(Duration::from_millis(1), Duration::from_millis(2), budget)
    }

    #[tokio::test]
    async fn a_partial_answer_is_retried_with_what_is_left_until_done() {
        let sent = std::cell::RefCell::new(Vec::new());
        let mut answers = vec![Answer::Done, Answer::Partly(1), Answer::Partly(3)];
        let result = retry(&Scripted, quick(Budget::Attempts(5)), 5, |left: &u32| {
            sent.borrow_mut().push(*left);
            std::future::ready(answers.pop().unwrap())
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(*sent.borrow(), [5, 3, 1]);
    }

    #[tokio::test]
    async fn a_permanent_error_fails_at_once_with_the_request_left() {
        let calls = Cell::new(0);
        let result = retry(&Scripted, quick(Budget::Unbounded), 7, |_: &u32| {
            calls.set(calls.get() + 1);
            std::future::ready(Answer::Error(AwsErrorKind::Validation))
        })
        .await;
        let gave_up = result.unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(gave_up.left, 7);
        assert_eq!(gave_up.error.aws_kind(), Some(AwsErrorKind::Validation));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_within_the_attempt_budget() {
        let calls = Cell::new(0);
        let result = retry(&Scripted, quick(Budget::Attempts(3)), 2, |_: &u32| {
            calls.set(calls.get() + 1);
            std::future::ready(Answer::Error(AwsErrorKind::Throttled))
        })
        .await;
        assert_eq!(calls.get(), 3);
        assert_eq!(
            result.unwrap_err().error.aws_kind(),
            Some(AwsErrorKind::Throttled)
        );
    }

    #[tokio::test]
    async fn the_deadline_cuts_an_attempt_in_flight_and_starts_none_after_it() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let result = retry(
            &Scripted,
            quick(Budget::Deadline(deadline)),
            1,
            |_: &u32| std::future::pending::<Answer>(),
        )
        .await;
        let error = result.unwrap_err().error;
        assert_eq!(error.aws_kind(), Some(AwsErrorKind::Timeout));
        assert!(error.to_string().contains("in flight"), "{error}");
        assert!(Instant::now() < deadline + Duration::from_millis(40));

        let calls = Cell::new(0);
        let past = Instant::now();
        let result = retry(&Scripted, quick(Budget::Deadline(past)), 1, |_: &u32| {
            calls.set(calls.get() + 1);
            std::future::ready(Answer::Done)
        })
        .await;
        assert_eq!(calls.get(), 0);
        assert_eq!(
            result.unwrap_err().error.aws_kind(),
            Some(AwsErrorKind::Timeout)
        );
    }

    #[test]
    fn retries_count_failures_and_stop_at_their_budget() {
        let mut attempts = quick(Budget::Attempts(2));
        assert!(attempts.next_delay().is_some());
        assert!(attempts.next_delay().is_none());
        assert_eq!(attempts.failed(), 2);
        let mut timed = Retries::new(
            Duration::from_secs(10),
            Duration::from_secs(10),
            Budget::For(Duration::from_secs(5)),
        );
        assert!(
            timed.next_delay().is_none(),
            "the delay would end after the budget"
        );
        let mut forever = quick(Budget::Unbounded);
        assert!((0..100).all(|_| forever.next_delay().is_some()));
    }
}
