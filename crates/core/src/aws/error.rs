//! Failed AWS calls: whether trying again may help, and a description for people.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::ProvideErrorKind;

use crate::error::Error;

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
