//! A records-per-second progress line on standard error, for people watching a terminal.
//!
//! Commands that print records ([`Progress::start`]) show it only when standard error is a
//! terminal and standard output is not (data going to the terminal shows progress by itself,
//! and a spinner redrawn between records would garble it). Commands whose standard output
//! holds only a summary at the end (`archive`, `put`: [`Progress::start_status`]) show it
//! whenever standard error is a terminal. Never with `--quiet`; when piped, nothing extra is
//! written.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Counts records and, when shown, draws them with their rate.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    records: u64,
}

impl Progress {
    /// Starts a progress line if standard error is a terminal, standard output is not, and
    /// `quiet` is false.
    pub(crate) fn start(quiet: bool) -> Self {
        Self::new(!quiet && std::io::stderr().is_terminal() && !std::io::stdout().is_terminal())
    }

    /// Starts a progress line if standard error is a terminal and `quiet` is false, for
    /// commands that write nothing to standard output while they work.
    pub(crate) fn start_status(quiet: bool) -> Self {
        Self::new(!quiet && std::io::stderr().is_terminal())
    }

    fn new(show: bool) -> Self {
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {records}  {rate}  {elapsed}  {msg}")
                    .expect("valid progress template")
                    // "1 record", "1,200 records".
                    .with_key(
                        "records",
                        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                            let _ = out.write_str(&crate::output::count(state.pos(), "record"));
                        },
                    )
                    // indicatif's own {per_sec} prints every digit it has (1096.7411/s).
                    .with_key(
                        "rate",
                        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                            let seconds = state.elapsed().as_secs_f64();
                            let _ = out.write_str(&crate::output::rate(state.pos(), seconds));
                        },
                    ),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            records: 0,
        }
    }

    /// One more record written.
    pub(crate) fn record(&mut self) {
        self.records += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Sets the count of records done, and the text after it.
    pub(crate) fn set(&mut self, records: u64, message: String) {
        self.records = records;
        if let Some(bar) = &self.bar {
            bar.set_position(records);
            bar.set_message(message);
        }
    }

    /// Clears the progress line, leaving nothing (the command prints its own summary).
    pub(crate) fn clear(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }

    /// Prints a message on standard error without garbling the progress line.
    pub(crate) fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::say(text)),
            None => crate::say(text),
        }
    }

    /// Clears the progress line and, if it was shown, leaves a summary in its place.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            let seconds = self.started.elapsed().as_secs_f64();
            crate::say(&summary(self.records, seconds));
        }
    }
}

/// `1,200 records in 2.0 s (600.0 records/s)`.
pub(crate) fn summary(records: u64, seconds: f64) -> String {
    format!(
        "{} in {} s ({} records/s)",
        crate::output::count(records, "record"),
        crate::output::decimal(seconds, 1),
        crate::output::rate(records, seconds).trim_end_matches("/s")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_shows_count_time_and_rate() {
        assert_eq!(
            summary(1200, 2.0),
            "1,200 records in 2.0 s (600.0 records/s)"
        );
        assert_eq!(summary(0, 0.0), "0 records in 0.0 s (0.0 records/s)");
    }
}
