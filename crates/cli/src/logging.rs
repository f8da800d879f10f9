//! Log messages on standard error, as verbose as `-v`/`-q` (or RUST_LOG) ask.

use tracing_subscriber::EnvFilter;

use crate::cli::GlobalArgs;

/// The filter for a verbosity: kinarch's own messages get one level more than the AWS SDK's.
fn directives(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        // The SDK's own warnings (credential providers, instance metadata) are noise at the
        // default level: a failed call ends in one kinarch message anyway.
        (false, 0) => "error,kinarch=warn,kinarch_core=warn",
        (false, 1) => "warn,kinarch=info,kinarch_core=info",
        (false, 2) => "info,kinarch=debug,kinarch_core=debug",
        (false, 3) => "debug,kinarch=trace,kinarch_core=trace",
        (false, _) => "trace",
    }
}

/// Installs the subscriber. RUST_LOG, when set, overrides `-v`/`-q`.
pub(crate) fn init(global: &GlobalArgs) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directives(global.verbose, global.quiet)));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(global.verbose >= 2)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verbosity_gives_a_valid_filter() {
        for verbose in 0..6 {
            for quiet in [false, true] {
                let text = directives(verbose, quiet);
                assert!(EnvFilter::try_new(text).is_ok(), "{text}");
            }
        }
        assert_eq!(directives(0, true), "error");
        assert_eq!(directives(0, false), "error,kinarch=warn,kinarch_core=warn");
    }
}
