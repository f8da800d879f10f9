//! Messages on standard error, as verbose as `-v`/`-q` (or RUST_LOG) ask, in one style:
//! `error: ...`, `warning: ...`, as kinarch's own messages ([`crate::say`], the failure at
//! the end) are written. Colour only when standard error is a terminal and `NO_COLOR` is
//! unset (<https://no-color.org>). From `-vv` on, lines carry the time and the module, for
//! following AWS calls ("AWS call" lines: operation, table or stream, ms, status).

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
        // "-vvv everything", as the help says: the SDK's own lines too.
        (false, _) => "trace",
    }
}

/// Whether standard error gets colour: a terminal, and `NO_COLOR` unset or empty.
pub(crate) fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR.get_or_init(|| {
        std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
    })
}

/// `error:` or `warning:`, bold and coloured when [`colour`] says so.
pub(crate) fn label(level: Level) -> String {
    let (text, style) = match level {
        Level::ERROR => ("error:", "\x1b[1;31m"),
        Level::WARN => ("warning:", "\x1b[1;33m"),
        Level::INFO => ("info:", "\x1b[1m"),
        Level::DEBUG => ("debug:", "\x1b[2m"),
        Level::TRACE => ("trace:", "\x1b[2m"),
    };
    if colour() {
        format!("{style}{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `text` after its [`label`]: `warning: text`.
pub(crate) fn labelled(level: Level, text: &str) -> String {
    format!("{} {text}", label(level))
}

/// The style of `-v` and below: `warning: message key=value`.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "{} ", label(*event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the subscriber. RUST_LOG, when set, overrides `-v`/`-q`.
pub(crate) fn init(global: &GlobalArgs) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directives(global.verbose, global.quiet)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour());
    if global.verbose >= 2 {
        builder.with_target(true).init();
    } else {
        builder.event_format(Plain).init();
    }
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

    #[test]
    fn labels_are_plain_without_a_terminal() {
        // Tests run with standard error captured, not a terminal.
        assert_eq!(label(Level::WARN), "warning:");
        assert_eq!(label(Level::ERROR), "error:");
    }
}
