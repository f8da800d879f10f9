//! How a command ends when it does not succeed, and the exit code for it.

use std::io;
use std::process::ExitCode;

use kinarch_core::Error;

/// Exit code of a runtime failure (AWS, a missing stream or table, ...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error; clap uses the same for its own.
pub const EXIT_USAGE: u8 = 2;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The command line asks for something that cannot work; exit 2.
    Usage(String),
    /// Something went wrong while running; exit 1.
    Runtime(String),
    /// Whoever read our standard output went away (`kinarch scan x | head -1`): not an
    /// error, so exit 0 and say nothing.
    OutputClosed,
}

impl Failure {
    /// Prints the message (if any) to standard error and returns the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::OutputClosed => ExitCode::SUCCESS,
            Failure::Usage(message) => {
                crate::say(&format!(
                    "error: {message}\n\nFor more information, try '--help'."
                ));
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Runtime(message) => {
                crate::say(&format!("error: {message}"));
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
            Error::Aws {
                ref message,
                transient,
                ..
            } => {
                let advice = aws_advice(message, transient);
                Failure::Runtime(format!("{err}\n{advice}"))
            }
            other => Failure::Runtime(other.to_string()),
        }
    }
}

/// What to do about a failed AWS call, from the error code in its message.
fn aws_advice(message: &str, transient: bool) -> &'static str {
    const CREDENTIALS: [&str; 5] = [
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
    ];
    if message.contains("AccessDenied") {
        "hint: the credentials in use lack a permission for this call; SECURITY.md lists \
         what each kinarch command needs"
    } else if CREDENTIALS.iter().any(|code| message.contains(code)) {
        "hint: AWS did not accept the credentials: check AWS_PROFILE / --profile, the keys, \
         and that a session token has not expired"
    } else if message.contains("dispatch failure") {
        "hint: the request could not be sent: check the network, the region and \
         --endpoint-url"
    } else if transient {
        "hint: AWS throttled the call, answered with a server error, or did not answer in \
         time, also when tried again; try again later"
    } else {
        "hint: the message above is AWS's own; run with -v for the calls that led to it"
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
    fn aws_failures_get_advice_by_error_code() {
        let failure = |message: &str, transient: bool| match Failure::from(Error::Aws {
            operation: "Kinesis.ListTagsForStream",
            message: message.into(),
            transient,
        }) {
            Failure::Runtime(text) => text,
            other => panic!("{other:?}"),
        };
        let denied = failure("on table t: AccessDeniedException: no (HTTP 400)", false);
        assert!(denied.starts_with("Kinesis.ListTagsForStream failed: on table t: AccessDenied"));
        assert!(denied.contains("SECURITY.md"), "{denied}");
        let expired = failure("ExpiredTokenException: old (HTTP 400)", false);
        assert!(expired.contains("session token"), "{expired}");
        let throttled = failure("ThrottlingException: slow down (HTTP 400)", true);
        assert!(throttled.contains("try again later"), "{throttled}");
        let offline = failure("dispatch failure: io error: connection refused", true);
        assert!(offline.contains("--endpoint-url"), "{offline}");
    }
}
