//! kinarch benchmarks: a null AWS endpoint and process readings, used by the `kinarch-bench`
//! driver that `bin/bench` runs (with the test harness's Lambda Runtime API,
//! `kinarch_tests::lambda`). See BENCHMARKS.md.
//!
//! Everything listens on 127.0.0.1 only.

/// Synthetic records, shared with the library's criterion benches.
pub use kinarch_tests::synthetic as data;
pub mod null_endpoint;
pub mod procfs;
pub mod report;
pub mod stats;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use kinarch_core::aws::{AwsOptions, load_sdk_config};

/// Region used with the null endpoint and the emulator.
pub const REGION: &str = "us-east-1";

/// SDK configuration for calls to `endpoint` with dummy credentials, built by kinarch's own
/// `load_sdk_config` (its HTTP client, timeouts and retries).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let sdk = load_sdk_config(&AwsOptions {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.to_owned()),
        ..Default::default()
    })
    .await;
    sdk.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "bench",
            "bench",
            None,
            None,
            "kinarch-bench",
        )))
        .build()
}

/// Environment for a kinarch process (the Lambda function or the CLI) calling `endpoint`,
/// with dummy credentials and no look-ups of instance metadata or config files.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
