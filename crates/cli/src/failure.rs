//! How a command ends when it does not succeed, and the exit code for it.

use std::io;
use std::process::ExitCode;

use kinarch_core::Error;
use kinarch_core::aws::error::AwsErrorKind;

/// Exit code of a runtime failure (AWS, a missing stream or table, ...).
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error; clap uses the same for its own.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line asks for something that cannot work; exit 2.
    Usage(String),
    /// Something went wrong while running; exit 1.
    Runtime(String),
    /// Whoever read our standard output went away (`kinarch scan x | head -1`): not an
    /// error, so exit 0 and say nothing.
    OutputClosed,
    /// Stopped by a signal after saying what was done: exit 128 + the signal's number
    /// (130 for SIGINT, 143 for SIGTERM), as shells report a process a signal ended.
    Interrupted(u8),
}

impl Failure {
    /// Prints the message (if any) to standard error and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::OutputClosed => ExitCode::SUCCESS,
            Failure::Interrupted(code) => ExitCode::from(code),
            Failure::Usage(message) => {
                crate::say(&crate::logging::labelled(
                    tracing::Level::ERROR,
                    &format!("{message}\n\nFor more information, try '--help'."),
                ));
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Runtime(message) => {
                crate::say(&crate::logging::labelled(tracing::Level::ERROR, &message));
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        match err {
            // Options that cannot work together (an empty sequence range, ...).
            Error::InvalidInput(message) => Failure::Usage(message),
            err @ Error::Selection(_) => Failure::Usage(err.to_string()),
            // The command names another stream's archive: --force or another name.
            err @ Error::ArchiveOfAnotherStream { .. } => Failure::Usage(err.to_string()),
            // A LATEST table or mode NONE: nothing to tier; the message says why.
            err @ Error::NotTierable { .. } => Failure::Usage(err.to_string()),
            // Its message says what to do, by what S3 answered; a hint would only repeat it.
            err @ Error::BucketUnusable { .. } => Failure::Runtime(err.to_string()),
            // No answer from AWS: no credentials provider had any. The SDK's chain of
            // provider errors helps nobody; say what to do in one line.
            Error::Aws {
                kind: AwsErrorKind::Credentials,
                status: None,
                ..
            } => Failure::Runtime(NO_CREDENTIALS.to_owned()),
            other => match aws_kind(&other) {
                Some(kind) => Failure::Runtime(format!("{other}\n{}", aws_advice(kind))),
                None => Failure::Runtime(other.to_string()),
            },
        }
    }
}

/// The kind of the failed AWS call behind `err`: its own, or that of an error in its chain
/// of sources (a checkpoint write that failed, say).
fn aws_kind(err: &Error) -> Option<AwsErrorKind> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = next {
        // A boxed cause (`Error::Checkpoint`'s) is seen as the box.
        let kinarch = error
            .downcast_ref::<Error>()
            .or_else(|| error.downcast_ref::<Box<Error>>().map(|b| &**b));
        if let Some(kind) = kinarch.and_then(Error::aws_kind) {
            return Some(kind);
        }
        next = error.source();
    }
    None
}

/// The whole message when no credentials were found anywhere.
const NO_CREDENTIALS: &str = "no AWS credentials found (environment, --profile / AWS_PROFILE, \
     the shared config files, container or instance metadata): set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY, run `aws configure`, or `aws sso login --profile NAME` for an SSO \
     profile";

/// What to do about a failed AWS call of this kind.
fn aws_advice(kind: AwsErrorKind) -> &'static str {
    match kind {
        AwsErrorKind::AccessDenied => {
            "hint: the credentials in use lack a permission for this call; SECURITY.md lists \
             what each kinarch command needs"
        }
        AwsErrorKind::Credentials => {
            "hint: AWS did not accept the credentials, or none were found: check AWS_PROFILE / \
             --profile, the keys, and that a session token has not expired"
        }
        AwsErrorKind::Dispatch => {
            "hint: the request could not be sent: check the network, the region and \
             --endpoint-url"
        }
        AwsErrorKind::Timeout => {
            "hint: AWS did not answer in time, also when tried again; each attempt waits \
             --read-timeout SECONDS (default 10, or KINARCH_ATTEMPT_TIMEOUT_MS): pass a larger \
             --read-timeout for a slow network, or try again later"
        }
        AwsErrorKind::Throttled | AwsErrorKind::Server => {
            "hint: AWS throttled the call or answered with a server error, also when tried \
             again; try again later"
        }
        AwsErrorKind::NotFound | AwsErrorKind::Validation | AwsErrorKind::Other => {
            "hint: the message above is AWS's own; run with -v for the calls that led to it"
        }
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            Failure::OutputClosed
        } else {
            Failure::Runtime(format!("cannot write the output: {err}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_a_quiet_success_other_io_errors_fail() {
        assert!(matches!(
            Failure::from(io::Error::from(io::ErrorKind::BrokenPipe)),
            Failure::OutputClosed
        ));
        let other = Failure::from(io::Error::other("disk full"));
        assert!(matches!(other, Failure::Runtime(m) if m.contains("disk full")));
    }

    #[test]
    fn invalid_input_is_a_usage_error() {
        assert!(matches!(
            Failure::from(Error::InvalidInput("x".into())),
            Failure::Usage(_)
        ));
    }

    #[test]
    fn aws_failures_get_advice_by_kind() {
        let failure = |kind: AwsErrorKind, message: &str| match Failure::from(Error::aws(
            "Kinesis.ListTagsForStream",
            kind,
            message,
        )) {
            Failure::Runtime(text) => text,
            other => panic!("{other:?}"),
        };
        let denied = failure(
            AwsErrorKind::AccessDenied,
            "on table t: AccessDeniedException: no",
        );
        assert!(denied.starts_with("Kinesis.ListTagsForStream failed: on table t: AccessDenied"));
        assert!(denied.contains("SECURITY.md"), "{denied}");
        // The hint follows the kind, not words in the message.
        let expired = match Failure::from(Error::Aws {
            operation: "Kinesis.ListTagsForStream",
            kind: AwsErrorKind::Credentials,
            code: Some("ExpiredTokenException".into()),
            status: Some(400),
            message: "AccessDenied in the text".into(),
            source: None,
        }) {
            Failure::Runtime(text) => text,
            other => panic!("{other:?}"),
        };
        assert!(expired.contains("session token"), "{expired}");
        // No answer at all: no credentials were found, said in one line.
        let none = failure(AwsErrorKind::Credentials, "no providers in chain");
        assert!(
            none.starts_with("no AWS credentials found") && !none.contains('\n'),
            "{none}"
        );
        let throttled = failure(AwsErrorKind::Throttled, "ThrottlingException: slow down");
        assert!(throttled.contains("try again later"), "{throttled}");
        let slow = failure(AwsErrorKind::Timeout, "timed out");
        assert!(slow.contains("--read-timeout"), "{slow}");
        let offline = failure(AwsErrorKind::Dispatch, "io error: connection refused");
        assert!(offline.contains("--endpoint-url"), "{offline}");
    }

    #[test]
    fn a_checkpoint_error_gets_the_hint_of_the_call_behind_it() {
        let failure = Failure::from(Error::Checkpoint {
            location: "table t".into(),
            message: "DynamoDB.PutItem failed".into(),
            source: Some(Box::new(Error::aws(
                "DynamoDB.PutItem",
                AwsErrorKind::AccessDenied,
                "no",
            ))),
        });
        assert!(matches!(failure, Failure::Runtime(m) if m.contains("SECURITY.md")));
    }

    #[test]
    fn io_and_internal_errors_are_runtime_failures_not_usage_errors() {
        let io = Error::Io {
            context: "cannot read standard input".into(),
            source: io::Error::other("gone"),
        };
        assert!(matches!(Failure::from(io), Failure::Runtime(m) if m.contains("standard input")));
        assert!(matches!(
            Failure::from(Error::Internal("x".into())),
            Failure::Runtime(_)
        ));
    }
}
