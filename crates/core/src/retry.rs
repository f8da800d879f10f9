//! Backoff between retries, bounded by a deadline.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

/// Exponential backoff with jitter (backon), starting at `first` and capped at `max`.
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
