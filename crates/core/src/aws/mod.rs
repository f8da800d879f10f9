//! Every AWS call kinarch makes, grouped by resource: the SDK configuration (built here
//! only), error classification ([`error`]), retries (`retry`, crate-internal), stream metadata
//! ([`streams`]), archive tables ([`tables`]), the item codec ([`item`]) and the S3
//! objects of payloads too large for an item ([`objects`]).
//!
//! The SDK crates are used without their default features (which would compile a second
//! HTTP stack), so every configuration must get its HTTP client here: a config built
//! elsewhere fails at run time with "No HTTP client was available".

use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::os_shim_internal::{Env, Fs};

pub(crate) mod batch_write;
pub mod error;
pub mod expression;
pub mod functions;
pub mod item;
mod logged;
pub mod objects;
pub(crate) mod retry;
pub mod streams;
pub mod table_check;
pub mod tables;

pub(crate) use error::{aws_error, aws_error_with, describe, is_transient};
pub(crate) use retry::send_with_retries;

use crate::error::Error;

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
    /// Timeout of one HTTP attempt; a slower answer is abandoned and retried. Default 10 s
    /// ([`DEFAULT_ATTEMPT_TIMEOUT`]); the binaries take [`ENV_ATTEMPT_TIMEOUT_MS`].
    pub attempt_timeout: Option<Duration>,
}

/// Default for [`AwsOptions::attempt_timeout`].
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that sets [`AwsOptions::attempt_timeout`] in milliseconds, for
/// both binaries (the test suite shortens it).
pub const ENV_ATTEMPT_TIMEOUT_MS: &str = "KINARCH_ATTEMPT_TIMEOUT_MS";

/// [`ENV_ATTEMPT_TIMEOUT_MS`] as the binaries read it when they start: `None` when unset,
/// an error naming the variable when it is not a whole number of milliseconds above 0 (a
/// typo must not silently leave the 10 s default in force). The library itself never reads
/// the environment for it: callers pass [`AwsOptions::attempt_timeout`].
pub fn attempt_timeout_from_env() -> Result<Option<Duration>, Error> {
    match std::env::var(ENV_ATTEMPT_TIMEOUT_MS) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::InvalidInput(format!(
            "environment variable {ENV_ATTEMPT_TIMEOUT_MS} is not valid UTF-8"
        ))),
        Ok(text) => parse_attempt_timeout_ms(&text).map(Some),
    }
}

fn parse_attempt_timeout_ms(text: &str) -> Result<Duration, Error> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::InvalidInput(format!(
            "environment variable {ENV_ATTEMPT_TIMEOUT_MS}={text:?} is not a whole number of \
             milliseconds above 0 (e.g. 10000); unset it for the default of 10 s"
        ))),
    }
}

/// Loads the SDK configuration with kinarch's HTTP client, timeouts and retry policy.
///
/// Retries: the SDK's standard mode (exponential backoff with jitter) retries throttling,
/// 5xx answers, timeouts and connection errors up to 3 attempts per call; kinarch's
/// writers retry further within their own time budget.
///
/// Credentials: with [`AwsOptions::profile`], the profile's credentials (keys, SSO, assume
/// role, credential process) and nothing else, as the AWS CLI does with `--profile`: access
/// keys in the environment must not sign the requests of another account's profile. Without
/// one, the SDK's default chain (environment, `AWS_PROFILE` or `default`, web identity,
/// container, instance metadata). Call [`check_profile`] first to refuse a profile that does
/// not exist with a clear message.
pub async fn load_sdk_config(options: &AwsOptions) -> SdkConfig {
    let http_client = logged::LoggedClient::wrap(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https(),
    );
    let attempt = options.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client.clone())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(profile) = &options.profile {
        // The region of the profile's own calls (STS for assume role); SSO uses the
        // profile's sso_region.
        let region = match &options.region {
            Some(region) => Some(Region::new(region.clone())),
            None => {
                ProfileFileRegionProvider::builder()
                    .profile_name(profile)
                    .build()
                    .region()
                    .await
            }
        };
        let provider_config = ProviderConfig::without_region()
            .with_http_client(http_client)
            .with_region(region);
        let credentials = ProfileFileCredentialsProvider::builder()
            .configure(&provider_config)
            .profile_name(profile)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// As whom and where a replay writes its target (`reinject --target ARN --target-role-arn
/// ROLE --target-external-id ID --target-region REGION`), when that is not where and as
/// whom it reads its source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetAccess {
    /// The target's region, when it is not the source's (from its ARN, or
    /// `--target-region`).
    pub region: Option<String>,
    /// A role to assume for the target's calls only.
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks for.
    pub external_id: Option<String>,
}

/// The session name of the role a replay assumes, seen in the target account's CloudTrail.
pub const TARGET_SESSION_NAME: &str = "kinarch-reinject";

impl TargetAccess {
    /// Who the target's calls run as, for messages: the role assumed, or the caller.
    pub fn identity(&self) -> String {
        match &self.role_arn {
            Some(role) => format!(
                "as role {role}, assumed with session name {TARGET_SESSION_NAME}{}",
                if self.external_id.is_some() {
                    " and the external id given"
                } else {
                    ""
                }
            ),
            None => "with the caller's credentials".to_owned(),
        }
    }

    /// The configuration of the target's calls: `base` (its HTTP client, timeouts, retries,
    /// endpoint) in the target's region, with the role's credentials when one is given. The
    /// role is assumed through STS with `base`'s credentials at the first call, and its
    /// credentials are cached and renewed before they expire (the SDK's identity cache), so
    /// a replay of any length keeps going; the source is still read with `base`.
    pub async fn sdk_config(&self, base: &SdkConfig) -> SdkConfig {
        let mut config = base.to_builder();
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        if let Some(role) = &self.role_arn {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name(TARGET_SESSION_NAME)
                .configure(base);
            if let Some(id) = &self.external_id {
                provider = provider.external_id(id.clone());
            }
            config = config.credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    provider.build().await,
                ),
            );
        }
        config.build()
    }
}

/// Refuses a profile that the shared config and credentials files do not define
/// ([`Error::ProfileNotFound`], naming the files looked in); files that cannot be parsed are
/// an error too.
pub async fn check_profile(profile: &str) -> Result<(), Error> {
    let profiles = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        Some(profile.to_owned().into()),
    )
    .await
    .map_err(|e| {
        Error::InvalidInput(format!(
            "cannot read the AWS config files ({}): {e}",
            profile_file_paths().join(", ")
        ))
    })?;
    match profiles.get_profile(profile) {
        Some(_) => Ok(()),
        None => Err(Error::ProfileNotFound {
            profile: profile.to_owned(),
            files: profile_file_paths().join(" and "),
        }),
    }
}

/// The shared config and credentials files, as the SDK finds them.
fn profile_file_paths() -> Vec<String> {
    let home = || std::env::var("HOME").unwrap_or_else(|_| "~".into());
    vec![
        std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| format!("{}/.aws/config", home())),
        std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|_| format!("{}/.aws/credentials", home())),
    ]
}

/// The region of a configuration, for messages.
pub fn region_of(config: &SdkConfig) -> String {
    region_name(config.region())
}

/// A region for messages: its name, or `(no region set)`, so that no message ever says
/// "in region :". Every message naming a region goes through here.
pub fn region_name(region: Option<&Region>) -> String {
    region
        .map(|r| r.to_string())
        .unwrap_or_else(|| "(no region set)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_timeouts_are_whole_milliseconds_above_zero() {
        assert_eq!(
            parse_attempt_timeout_ms(" 1500 ").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in ["0", "-5", "1.5", "10s", ""] {
            let message = parse_attempt_timeout_ms(bad).unwrap_err().to_string();
            assert!(message.contains(ENV_ATTEMPT_TIMEOUT_MS), "{message}");
        }
    }

    #[test]
    fn no_region_is_named_as_such() {
        assert_eq!(region_name(None), "(no region set)");
        assert_eq!(region_name(Some(&Region::new("eu-west-1"))), "eu-west-1");
    }
}
