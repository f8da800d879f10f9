//! Every AWS call kinarch makes, grouped by resource: the SDK configuration (built here
//! only), error classification ([`error`]), retries (`retry`, crate-internal), stream metadata
//! ([`streams`]), archive tables ([`tables`]) and the item codec ([`item`]).
//!
//! The SDK crates are used without their default features (which would compile a second
//! HTTP stack), so every configuration must get its HTTP client here: a config built
//! elsewhere fails at run time with "No HTTP client was available".

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub mod error;
pub mod item;
pub(crate) mod retry;
pub mod streams;
pub mod tables;

pub(crate) use error::{aws_error, describe, error_code, is_transient};
pub(crate) use retry::send_with_retries;

/// Where and as whom to call AWS. Unset fields fall back to the SDK's usual sources
/// (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, the shared config files, ...).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// Named profile of the shared config files.
    pub profile: Option<String>,
    /// Endpoint for every service (a local emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Timeout of one HTTP attempt; a slower answer is abandoned and retried. Default 10 s,
    /// or `KINARCH_ATTEMPT_TIMEOUT_MS`.
    pub attempt_timeout: Option<Duration>,
}

/// Default for [`AwsOptions::attempt_timeout`].
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

fn attempt_timeout_from_env() -> Option<Duration> {
    std::env::var("KINARCH_ATTEMPT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Loads the SDK configuration with kinarch's HTTP client, timeouts and retry policy.
///
/// Retries: the SDK's standard mode (exponential backoff with jitter) retries throttling,
/// 5xx answers, timeouts and connection errors up to 3 attempts per call; kinarch's
/// writers retry further within their own time budget.
pub async fn load_sdk_config(options: &AwsOptions) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let attempt = options
        .attempt_timeout
        .or_else(attempt_timeout_from_env)
        .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The region of a configuration, for messages.
pub fn region_of(config: &SdkConfig) -> String {
    config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "(no region set)".into())
}
