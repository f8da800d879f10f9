//! Lambda: the consumer function of a replay (`reinject --target-function`). Its
//! configuration (GetFunctionConfiguration: the function exists, its ARN and execution
//! role) and one synchronous Invoke. Retrying is the caller's ([`crate::replay::function`]),
//! which follows the mapping's rules: see [`crate::domain::function_event`].
//!
//! The client is `aws_sdk_lambda::Client::new` over the one [`super::load_sdk_config`]
//! configuration; its endpoint follows the SDK's sources, `AWS_ENDPOINT_URL_LAMBDA` before
//! `AWS_ENDPOINT_URL` (the tests serve Invoke on loopback that way).

use aws_sdk_lambda::Client as LambdaClient;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::error::AwsErrorKind;
use super::{aws_error, aws_error_with};
use crate::error::Error;

/// The function a replay invokes, as GetFunctionConfiguration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// What was given (`--target-function`): a name, a partial or a full ARN, possibly with
    /// a version or alias; every Invoke names the function so.
    pub name: String,
    /// The function's ARN.
    pub arn: String,
    /// Its execution role (the event's `invokeIdentityArn`, as the mapping sends it).
    pub role: String,
}

/// GetFunctionConfiguration of `function`: refuses a function that does not exist (or that
/// the caller may not read) before anything is sent.
pub async fn describe_function(
    client: &LambdaClient,
    function: &str,
) -> Result<FunctionInfo, Error> {
    let answer = client
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|err| {
            let not_found = err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception());
            aws_error_with(
                "Lambda.GetFunctionConfiguration",
                err,
                |description| match not_found {
                    true => format!(
                        "function {function} does not exist in this account and region \
                         ({description})"
                    ),
                    false => format!("function {function}: {description}"),
                },
            )
        })?;
    Ok(FunctionInfo {
        name: function.to_owned(),
        arn: answer.function_arn().unwrap_or(function).to_owned(),
        role: answer.role().unwrap_or_default().to_owned(),
    })
}

/// What a synchronous Invoke answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// Invoke's `FunctionError` (`Unhandled`, `Handled`): the function failed.
    pub function_error: Option<String>,
    /// What the function returned (or its error document).
    pub payload: Vec<u8>,
}

/// One synchronous Invoke of `function` with `event`. Throttling
/// (`TooManyRequestsException`, HTTP 429: the account's or the function's reserved
/// concurrency, `EC2ThrottledException`) and a function not ready yet
/// (`ResourceNotReadyException`, `ResourceConflictException` while it is updated) are
/// [`AwsErrorKind::Throttled`], so that the caller backs off and tries again; the SDK has
/// already tried such a call three times.
pub async fn invoke(
    client: &LambdaClient,
    function: &str,
    event: Vec<u8>,
) -> Result<Invoked, Error> {
    let answer = client
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(event))
        .send()
        .await
        .map_err(|err| {
            let throttled = err.as_service_error().is_some_and(|e| {
                e.is_too_many_requests_exception()
                    || e.is_ec2_throttled_exception()
                    || e.is_resource_not_ready_exception()
                    || e.is_resource_conflict_exception()
            });
            let error = aws_error("Lambda.Invoke", err);
            match (throttled, error) {
                (
                    true,
                    Error::Aws {
                        operation,
                        code,
                        status,
                        message,
                        source,
                        ..
                    },
                ) => Error::Aws {
                    operation,
                    kind: AwsErrorKind::Throttled,
                    code,
                    status,
                    message,
                    source,
                },
                (_, error) => error,
            }
        })?;
    Ok(Invoked {
        function_error: answer.function_error().map(str::to_owned),
        payload: answer
            .payload()
            .map(|p| p.as_ref().to_vec())
            .unwrap_or_default(),
    })
}
