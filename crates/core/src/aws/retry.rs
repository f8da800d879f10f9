//! Backoff between retries, bounded by a deadline, and calls retried with it.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::ProvideErrorKind;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use super::error::is_transient;
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

    /// Sleeps for the next delay. Returns false without sleeping when the delay would end at
    /// or after `deadline`: the caller has no time left for another attempt.
    pub(crate) async fn wait(&mut self, deadline: Instant) -> bool {
        let delay = self.next_delay();
        let wake = Instant::now() + delay;
        if wake >= deadline {
            return false;
        }
        tokio::time::sleep_until(wake).await;
        true
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
    let deadline = Instant::now() + budget;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match call().await {
            Ok(output) => return Ok(output),
            Err(err) if is_transient(&err) => {
                let error = fail(err);
                tracing::warn!(error = %error, "transient AWS error; retrying");
                if !backoff.wait(deadline).await {
                    return Err(error);
                }
            }
            Err(err) => return Err(fail(err)),
        }
    }
}
