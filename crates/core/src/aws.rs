//! The one place where AWS SDK configuration is built, and where failed calls are
//! classified (transient or not), described for people and retried.
//!
//! The SDK crates are used without their default features (which would compile a second
//! HTTP stack), so every configuration must get its HTTP client here: a config built
//! elsewhere fails at run time with "No HTTP client was available".

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_types::retry::ProvideErrorKind;
use tokio::time::Instant;

use crate::error::Error;
use crate::retry::Backoff;

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

/// Whether a failed call may succeed when tried again: throttling, 5xx answers, timeouts
/// and connection failures.
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorKind + ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() >= 500
                || service.err().retryable_error_kind().is_some()
                || matches!(
                    ProvideErrorMetadata::code(service.err()),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "LimitExceededException"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                            | "KMSThrottlingException"
                    )
                )
        }
        _ => false,
    }
}

/// The error code of a service error (`ResourceNotFoundException`), if it is one.
pub(crate) fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => ProvideErrorMetadata::code(service.err()),
        _ => None,
    }
}

/// A one-line description of an SDK error for people: the error code and the service's
/// message for an answer from AWS, else the chain of causes (the SDK's own `Display` says
/// only "service error", and its debug form carries the whole HTTP response).
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let error = service.err();
            match (
                ProvideErrorMetadata::code(error),
                ProvideErrorMetadata::message(error),
            ) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status}: {}", causes(error)),
            }
        }
        SdkError::TimeoutError(_) => {
            format!("no answer within the attempt timeout ({})", causes(err))
        }
        _ => causes(err),
    }
}

/// An error and its sources, joined with ": ", each said once.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(error) = next {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// [`Error::Aws`] for a failed call, marked transient when trying again may succeed.
pub(crate) fn aws_error<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Aws {
        operation,
        message: describe(err),
        transient: is_transient(err),
    }
}

/// Sends a call, retrying throttling, 5xx answers and timeouts with backoff for up to
/// `budget` (on top of the SDK's own attempts): a long scan of a provisioned table is
/// throttled now and then and should not die of it. `fail` makes the error of a call that
/// failed for good or ran out of budget.
pub(crate) async fn send_with_retries<T, E, F, Fut>(
    budget: Duration,
    mut call: F,
    fail: impl Fn(&SdkError<E, HttpResponse>) -> Error,
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
                let error = fail(&err);
                tracing::warn!(error = %error, "transient AWS error; retrying");
                if !backoff.wait(deadline).await {
                    return Err(error);
                }
            }
            Err(err) => return Err(fail(&err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(
        status: u16,
        code: &str,
        message: &str,
    ) -> SdkError<DescribeTableError, HttpResponse> {
        let error = DescribeTableError::generic(
            ErrorMetadata::builder().code(code).message(message).build(),
        );
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from("{}"));
        SdkError::service_error(error, raw)
    }

    #[test]
    fn a_service_error_is_described_by_code_message_and_status_only() {
        let err = service_error(500, "InternalServerError", "try again");
        assert_eq!(describe(&err), "InternalServerError: try again (HTTP 500)");
        let error = aws_error("DynamoDB.DescribeTable", &err);
        assert!(error.is_transient());
        assert_eq!(
            error.to_string(),
            "DynamoDB.DescribeTable failed: InternalServerError: try again (HTTP 500)"
        );
    }

    #[test]
    fn a_client_error_is_not_transient_but_throttling_is() {
        let denied = service_error(400, "AccessDeniedException", "not allowed");
        assert!(!aws_error("DynamoDB.DescribeTable", &denied).is_transient());
        let throttled = service_error(400, "ThrottlingException", "slow down");
        assert!(aws_error("DynamoDB.DescribeTable", &throttled).is_transient());
    }
}
