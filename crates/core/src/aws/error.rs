//! Failed AWS calls: whether trying again may help, and a description for people.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::{ErrorKind, ProvideErrorKind};

use crate::error::Error;

/// What kind of failure an AWS call met. Retries follow it ([`AwsErrorKind::is_transient`])
/// and so do the CLI's hints, so neither reads the text of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttled (`ThrottlingException`, `ProvisionedThroughputExceededException`, ...).
    Throttled,
    /// The service answered with a server error (HTTP 5xx, `InternalServerError`).
    Server,
    /// No answer within the attempt timeout.
    Timeout,
    /// The request could not be sent or its answer not read (network, DNS, TLS, a
    /// connection reset).
    Dispatch,
    /// The credentials lack a permission (`AccessDeniedException`).
    AccessDenied,
    /// No usable credentials, or AWS refused them (expired token, unknown key, bad
    /// signature).
    Credentials,
    /// The stream or table does not exist (`ResourceNotFoundException`).
    NotFound,
    /// AWS refused the request as invalid (`ValidationException`, ...): sending it again
    /// cannot help.
    Validation,
    /// Anything else.
    Other,
}

impl AwsErrorKind {
    /// Whether the same call may succeed when tried again: throttling, server errors,
    /// timeouts and dispatch failures.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            AwsErrorKind::Throttled
                | AwsErrorKind::Server
                | AwsErrorKind::Timeout
                | AwsErrorKind::Dispatch
        )
    }

    /// A name for logs and JSON: `throttled`, `access_denied`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::Server => "server",
            AwsErrorKind::Timeout => "timeout",
            AwsErrorKind::Dispatch => "dispatch",
            AwsErrorKind::AccessDenied => "access_denied",
            AwsErrorKind::Credentials => "credentials",
            AwsErrorKind::NotFound => "not_found",
            AwsErrorKind::Validation => "validation",
            AwsErrorKind::Other => "other",
        }
    }
}

/// Error codes of throttling answers across DynamoDB, Kinesis and S3.
const THROTTLING_CODES: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "KMSThrottlingException",
];

/// Error codes of answers that refuse the caller's credentials.
const CREDENTIAL_CODES: [&str; 6] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

/// Error codes of requests refused as invalid.
const VALIDATION_CODES: [&str; 4] = [
    "ValidationException",
    "InvalidArgumentException",
    "SerializationException",
    "InvalidParameterValue",
];

/// Whether a credentials provider failed somewhere in this error's chain of sources (the
/// SDK reports "no credentials" as a dispatch or construction failure).
fn credentials_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(error) = next {
        if error
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// The kind of a failed call (see [`AwsErrorKind`]).
pub fn kind_of<E>(err: &SdkError<E, HttpResponse>) -> AwsErrorKind
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => AwsErrorKind::Timeout,
        _ if credentials_failed(err) => AwsErrorKind::Credentials,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => AwsErrorKind::Dispatch,
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let error = service.err();
            let code = ProvideErrorMetadata::code(error).unwrap_or("");
            if THROTTLING_CODES.contains(&code)
                || error.retryable_error_kind() == Some(ErrorKind::ThrottlingError)
            {
                AwsErrorKind::Throttled
            } else if status >= 500
                || code == "InternalServerError"
                || code == "ServiceUnavailable"
                || error.retryable_error_kind().is_some()
            {
                AwsErrorKind::Server
            } else if code.starts_with("AccessDenied") {
                AwsErrorKind::AccessDenied
            } else if CREDENTIAL_CODES.contains(&code) {
                AwsErrorKind::Credentials
            } else if matches!(
                code,
                "ResourceNotFoundException" | "NoSuchKey" | "NoSuchBucket" | "NotFound"
            ) {
                AwsErrorKind::NotFound
            } else if VALIDATION_CODES.contains(&code) {
                AwsErrorKind::Validation
            } else {
                AwsErrorKind::Other
            }
        }
        _ => AwsErrorKind::Other,
    }
}

/// Whether a failed call may succeed when tried again: throttling, 5xx answers, timeouts
/// and connection failures.
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + 'static,
{
    kind_of(err).is_transient()
}

/// The error code of a service error (`ResourceNotFoundException`), if it is one: to keep
/// in [`Error::Aws`] and to describe. To tell errors apart, use the SDK's typed errors
/// (`err.as_service_error().is_some_and(XError::is_y_exception)`), [`kind_of`], or
/// [`Unmodeled`] for the answers the SDK has no variant for.
fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => ProvideErrorMetadata::code(service.err()),
        _ => None,
    }
}

/// An operation's error type that has a `ResourceNotFoundException` variant, for helpers
/// shared by several operations: they tell a missing stream or table by type.
pub(crate) trait NotFound {
    /// Whether the error is `ResourceNotFoundException`.
    fn is_not_found(&self) -> bool;
}

macro_rules! not_found {
    ($($error:ty),* $(,)?) => {$(
        impl NotFound for $error {
            fn is_not_found(&self) -> bool {
                self.is_resource_not_found_exception()
            }
        }
    )*};
}

not_found!(
    aws_sdk_kinesis::operation::add_tags_to_stream::AddTagsToStreamError,
    aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryError,
    aws_sdk_kinesis::operation::get_records::GetRecordsError,
    aws_sdk_kinesis::operation::get_shard_iterator::GetShardIteratorError,
    aws_sdk_kinesis::operation::list_shards::ListShardsError,
    aws_sdk_kinesis::operation::list_tags_for_stream::ListTagsForStreamError,
    aws_sdk_kinesis::operation::remove_tags_from_stream::RemoveTagsFromStreamError,
);

/// Whether `err` is the service's `ResourceNotFoundException` (see [`NotFound`]).
pub(crate) fn is_not_found<E: NotFound>(err: &SdkError<E, HttpResponse>) -> bool {
    err.as_service_error().is_some_and(NotFound::is_not_found)
}

/// Answers an operation's SDK error type has no variant for, told by their error code (what
/// the SDK calls "a last resort for handling unmodeled service errors"). Codes are compared
/// here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmodeled {
    /// GetBucketLifecycleConfiguration of a bucket without lifecycle configuration.
    NoSuchLifecycleConfiguration,
}

impl Unmodeled {
    fn code(self) -> &'static str {
        match self {
            Unmodeled::NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
        }
    }

    /// Whether `err` is this answer.
    pub(crate) fn is<E: ProvideErrorMetadata>(self, err: &SdkError<E, HttpResponse>) -> bool {
        error_code(err) == Some(self.code())
    }
}

/// Why PutRecords did not store one record of a call that succeeded: the `ErrorCode` of its
/// result entry, parsed once (the SDK gives it as a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PutRecordsEntryError {
    /// What kind of failure the code says.
    pub(crate) kind: PutRecordsEntryErrorKind,
    /// The code as Kinesis sent it.
    code: String,
    /// Kinesis' message, if any.
    message: Option<String>,
}

/// The kinds of [`PutRecordsEntryError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutRecordsEntryErrorKind {
    /// `ProvisionedThroughputExceededException`: the shard's write limit.
    Throttled,
    /// `InternalFailure`.
    Internal,
    /// A `KMS...` code: the stream's encryption key could not be used.
    Kms,
    /// A code Kinesis did not document for entries.
    Other,
}

impl PutRecordsEntryError {
    /// The error of an entry with `code` and `message`.
    pub(crate) fn parse(code: String, message: Option<String>) -> Self {
        let kind = match code.as_str() {
            "ProvisionedThroughputExceededException" => PutRecordsEntryErrorKind::Throttled,
            "InternalFailure" => PutRecordsEntryErrorKind::Internal,
            kms if kms.starts_with("KMS") => PutRecordsEntryErrorKind::Kms,
            _ => PutRecordsEntryErrorKind::Other,
        };
        Self {
            kind,
            code,
            message,
        }
    }

    /// Whether the record is sent again (within the sender's attempts): every entry error
    /// is, since each kind may pass (a shard's throughput, an internal failure, a KMS key
    /// being enabled or throttled), and a record retried in vain only ends as a failure
    /// after its attempts, blocking its key as any failure does.
    pub(crate) fn is_retried(&self) -> bool {
        match self.kind {
            PutRecordsEntryErrorKind::Throttled
            | PutRecordsEntryErrorKind::Internal
            | PutRecordsEntryErrorKind::Kms
            | PutRecordsEntryErrorKind::Other => true,
        }
    }
}

impl std::fmt::Display for PutRecordsEntryError {
    /// `CODE: message`, or the code alone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {message}", self.code),
            None => f.write_str(&self.code),
        }
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

/// [`Error::Aws`] for a failed call: its kind, code and status, a description for people,
/// and the SDK error itself as the [`source`](std::error::Error::source).
pub(crate) fn aws_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    aws_error_with(operation, err, |description| description)
}

/// [`aws_error`] with the description rewritten by `message` (to name a table, say).
pub(crate) fn aws_error_with<E>(
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
    message: impl FnOnce(String) -> String,
) -> Error
where
    E: ProvideErrorKind + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = match &err {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        _ => None,
    };
    Error::Aws {
        operation,
        kind: kind_of(&err),
        code: error_code(&err).map(str::to_owned),
        status,
        message: message(describe(&err)),
        source: Some(Box::new(err)),
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
        let error = aws_error("DynamoDB.DescribeTable", err);
        assert!(error.is_transient());
        assert_eq!(
            error.to_string(),
            "DynamoDB.DescribeTable failed: InternalServerError: try again (HTTP 500)"
        );
    }

    #[test]
    fn a_client_error_is_not_transient_but_throttling_is() {
        let denied = service_error(400, "AccessDeniedException", "not allowed");
        assert!(!aws_error("DynamoDB.DescribeTable", denied).is_transient());
        let throttled = service_error(400, "ThrottlingException", "slow down");
        assert!(aws_error("DynamoDB.DescribeTable", throttled).is_transient());
    }

    #[test]
    fn each_answer_gets_its_kind() {
        let kind = |status, code| kind_of(&service_error(status, code, "m"));
        assert_eq!(
            kind(400, "ProvisionedThroughputExceededException"),
            AwsErrorKind::Throttled
        );
        assert_eq!(kind(400, "ThrottlingException"), AwsErrorKind::Throttled);
        assert_eq!(kind(500, "InternalServerError"), AwsErrorKind::Server);
        assert_eq!(kind(503, "ServiceUnavailable"), AwsErrorKind::Server);
        assert_eq!(
            kind(400, "AccessDeniedException"),
            AwsErrorKind::AccessDenied
        );
        assert_eq!(
            kind(400, "ExpiredTokenException"),
            AwsErrorKind::Credentials
        );
        assert_eq!(
            kind(400, "UnrecognizedClientException"),
            AwsErrorKind::Credentials
        );
        assert_eq!(
            kind(400, "ResourceNotFoundException"),
            AwsErrorKind::NotFound
        );
        assert_eq!(kind(400, "ValidationException"), AwsErrorKind::Validation);
        assert_eq!(kind(400, "SomethingElse"), AwsErrorKind::Other);
        for transient in [
            AwsErrorKind::Throttled,
            AwsErrorKind::Server,
            AwsErrorKind::Timeout,
            AwsErrorKind::Dispatch,
        ] {
            assert!(transient.is_transient());
        }
        for permanent in [
            AwsErrorKind::AccessDenied,
            AwsErrorKind::Credentials,
            AwsErrorKind::NotFound,
            AwsErrorKind::Validation,
            AwsErrorKind::Other,
        ] {
            assert!(!permanent.is_transient());
        }
    }

    #[test]
    fn put_records_entry_errors_are_parsed_once_and_said_as_kinesis_sent_them() {
        let entry = |code: &str, message: Option<&str>| {
            PutRecordsEntryError::parse(code.to_owned(), message.map(str::to_owned))
        };
        let throttled = entry(
            "ProvisionedThroughputExceededException",
            Some("Rate exceeded for shard shardId-000000000001"),
        );
        assert_eq!(throttled.kind, PutRecordsEntryErrorKind::Throttled);
        assert_eq!(
            throttled.to_string(),
            "ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001"
        );
        let internal = entry("InternalFailure", None);
        assert_eq!(internal.kind, PutRecordsEntryErrorKind::Internal);
        assert_eq!(internal.to_string(), "InternalFailure");
        assert_eq!(
            entry("KMSThrottlingException", None).kind,
            PutRecordsEntryErrorKind::Kms
        );
        assert_eq!(
            entry("Throttled", None).kind,
            PutRecordsEntryErrorKind::Other
        );
        // Every entry error is sent again, within the sender's attempts.
        assert!(
            [throttled, internal, entry("KMSDisabledException", None)]
                .iter()
                .all(PutRecordsEntryError::is_retried)
        );
    }

    #[test]
    fn unmodeled_answers_are_told_by_their_code() {
        let missing = service_error(404, "NoSuchLifecycleConfiguration", "none");
        assert!(Unmodeled::NoSuchLifecycleConfiguration.is(&missing));
        let other = service_error(404, "NoSuchBucket", "none");
        assert!(!Unmodeled::NoSuchLifecycleConfiguration.is(&other));
    }

    #[test]
    fn the_sdk_error_is_the_source_and_code_and_status_are_kept() {
        use std::error::Error as _;
        let error = aws_error(
            "DynamoDB.DescribeTable",
            service_error(400, "ValidationException", "bad key"),
        );
        let Error::Aws {
            kind, code, status, ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(
            (*kind, code.as_deref(), *status),
            (
                AwsErrorKind::Validation,
                Some("ValidationException"),
                Some(400)
            )
        );
        let source = error.source().expect("the SDK error is kept");
        assert!(
            source
                .downcast_ref::<SdkError<DescribeTableError, HttpResponse>>()
                .is_some()
        );
    }
}
