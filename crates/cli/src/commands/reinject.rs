//! `kinarch reinject`: read a selection of the archive and send it to a stream.

use std::io::{BufRead, IsTerminal, Write};

use aws_config::SdkConfig;
use kinarch_core::StreamName;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::read::locate::Located;
use kinarch_core::replay::reinject::{Framing, ReinjectOptions, ReinjectReport};
use kinarch_core::replay::runner::{EstimateSummary, Replay, ReplayRequest, ReplaySummary};

use crate::cli::values::thousands;
use crate::cli::{GlobalArgs, ReinjectArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::{count, decimal, print_json, rate};
use crate::progress::Progress;
use crate::prompt::Prompter;

/// `kinarch reinject`: the CLI's part of a replay (the flags, the question before a raw
/// replay into the source stream, signals, progress and printing); the replay itself is
/// `kinarch_core::replay::runner::Replay`.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ReinjectArgs,
) -> Result<(), Failure> {
    // Ctrl-C or SIGTERM, from the start: while the selection is read (a paced replay or an
    // estimate reads it whole first) nothing was sent; while sending, no new call starts,
    // the calls in flight are answered, then the summary says what was sent and what not.
    if args.target_function.is_some() {
        return super::reinject_function::run(sdk, global, args).await;
    }
    let mut signal = crate::signals::listen()?;
    let resolved = super::selection(args.selection)?;
    let source = args.source.name;
    let target = args.target.map_or_else(|| source.clone(), |t| t.name);
    let (archive, located) =
        super::open_archive(sdk, global, source.clone(), &args.archive).await?;
    if target == source
        && let Located::WithoutStream { .. } = located
        && !args.estimate
    {
        return Err(Failure::Usage(format!(
            "stream {source} cannot be read, so its records cannot be replayed into it: name \
             the stream to replay into with --target STREAM (the archive is read from table {})",
            archive.config().table
        )));
    }
    let mut options = ReinjectOptions::new(source, target.clone());
    options.framing = if args.metadata {
        Framing::Metadata {
            separator: args.separator,
        }
    } else {
        Framing::Raw
    };
    options.rate = args.rate;
    options.original_pace = args.pace.map(|_| args.speed.unwrap_or(1.0));
    options.concurrency = args.concurrency;
    options.dry_run = args.dry_run;
    let filtered = resolved.selection.content().is_some();
    let replay = Replay::prepare(
        archive,
        ReplayRequest {
            selection: resolved.selection,
            read: resolved.read,
            options: options.clone(),
            journal: args.journal.clone(),
            relative_times: resolved.relative_times,
        },
    )?;
    for note in replay.notes() {
        if !global.quiet {
            crate::say(note);
        }
    }
    if args.dry_run {
        // A real run finds a missing stream at its first PutRecords; a dry run sends none,
        // so it asks.
        describe_stream_summary(&kinesis_client(sdk), &target).await?;
    }
    if target == options.source && !args.metadata && !args.dry_run && !args.yes {
        let prompter = std::io::stdin().is_terminal().then(Prompter::stdio);
        confirm_raw_replay_into_source(prompter, &target)?;
    }
    let json = args.output == SummaryFormat::Json;

    if args.estimate {
        let Some(estimate) = replay
            .estimate(async {
                (&mut signal).await;
            })
            .await?
        else {
            return Err(stopped_while_reading(signal_code(&mut signal)));
        };
        let took = estimate.duration(options.original_pace, args.rate.map(|r| r.get()));
        let mut summary = EstimateSummary::new(&estimate, target.as_str(), took);
        if filtered {
            summary = summary.with_filter(replay.archive().filter_stats());
        }
        if json {
            print_json(&summary)?;
        } else {
            crate::say(&estimate_text(&summary));
        }
        return Ok(());
    }

    // A dry run shows each record as it is read: key, sequence number, payload bytes.
    let mut stdout = std::io::stdout().lock();
    let mut shown: std::io::Result<()> = Ok(());
    // A dry run lists records on standard output; a real run writes nothing there, so its
    // progress line shows whenever standard error is a terminal.
    let quiet = global.quiet || json;
    let mut progress = match args.dry_run {
        true => Progress::start(quiet),
        false => Progress::start_status(quiet),
    };
    let mut counted = 0;
    // A second signal ends the process at once.
    let stopped_by = std::cell::Cell::new(None);
    let stop = async {
        stopped_by.set(Some((&mut signal).await));
        if let Err(failure) = crate::signals::exit_on_second_signal() {
            tracing::warn!("{failure:?}");
        }
    };
    // Its counters are shared with the replay's reader (for what --where did).
    let reader = replay.archive().clone();
    let outcome = replay
        .run(
            &kinesis_client(sdk),
            stop,
            |p| {
                while counted < p.sent {
                    progress.record();
                    counted += 1;
                }
            },
            |record| {
                if let (true, false, Ok(())) = (args.dry_run, json, &shown) {
                    shown = writeln!(
                        stdout,
                        "{}\t{}\t{} bytes",
                        record.partition_key,
                        record.sequence_number,
                        record.data.len()
                    );
                }
            },
        )
        .await;
    progress.clear();
    shown?;
    drop(stdout);
    let outcome = outcome?;
    if outcome.stopped_while_reading {
        return Err(stopped_while_reading(stopped_by.get().unwrap_or(130)));
    }
    let report = &outcome.report;
    super::log_read_costs(&outcome.read, &outcome.parquet);
    super::say_not_json(&reader, global.quiet || json);
    if outcome.skipped_by_journal > 0 && !global.quiet {
        crate::say(&format!(
            "journal: {} record(s) were sent by an earlier run and are not sent again",
            thousands(outcome.skipped_by_journal)
        ));
    }
    if json {
        print_json(&ReplaySummary::new(report, target.as_str(), args.dry_run))?;
    } else {
        print_summary(report, &target, args.dry_run, global.quiet);
    }
    if report.stopped {
        crate::say(&format!(
            "stopped by a signal: {} record(s) sent; {} read but not sent, and the rest of the \
             selection not read",
            thousands(report.sent),
            thousands(report.unsent)
        ));
    }
    for failed in &report.failed {
        crate::say(&format!(
            "{}: {} {}: {}",
            if args.dry_run {
                "would not send"
            } else {
                "not sent"
            },
            failed.partition_key,
            failed.sequence_number,
            failed.reason
        ));
    }
    if let (true, Some(code)) = (report.stopped, stopped_by.get()) {
        return Err(Failure::Interrupted(code));
    }
    // A dry run sent nothing, so nothing failed: it succeeds, having said what would.
    if report.failed.is_empty() || args.dry_run {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} record(s) could not be sent to {target} (listed above); the others were sent",
            report.failed.len()
        )))
    }
}

/// The exit code of the signal that already came (the listener completed).
fn signal_code(signal: &mut (impl std::future::Future<Output = u8> + Unpin)) -> u8 {
    use futures::FutureExt;
    signal.now_or_never().unwrap_or(130)
}

/// A replay into the source stream without `--metadata` cannot be recognized by the
/// archiver, so its records are archived again as new ones: asked on a terminal (`prompter`),
/// refused otherwise. `Ok` means go on.
fn confirm_raw_replay_into_source<R: BufRead, W: Write>(
    prompter: Option<Prompter<R, W>>,
    stream: &kinarch_core::StreamName,
) -> Result<(), Failure> {
    let warning = format!(
        "{stream} is the stream these records were archived from, and without --metadata the \
         archiver cannot tell a replay from new records: the replayed records will be archived \
         again as new records (in LATEST mode they replace the newest record of their key)"
    );
    let Some(mut prompter) = prompter else {
        return Err(Failure::Usage(format!(
            "{warning}. Pass --yes to send them anyway, or --metadata to frame them so that \
             the archiver skips them; nothing was sent"
        )));
    };
    prompter.tell(&format!("warning: {warning}."))?;
    if prompter.confirm("Send them anyway?")? {
        Ok(())
    } else {
        Err(Failure::Runtime(
            "reinject cancelled: nothing was sent (--metadata frames the records so that the \
             archiver skips them)"
                .into(),
        ))
    }
}

fn estimate_text(e: &EstimateSummary) -> String {
    let span = match (&e.first_arrival, &e.last_arrival) {
        (Some(first), Some(last)) => format!("arrived {first} to {last}"),
        _ => "nothing selected".to_owned(),
    };
    format!(
        "estimate for {}: {} record(s), {} bytes, at least {} PutRecords call(s), {} shard(s), \
         {} key(s); {span}; takes at least {} s at this pace and rate{}{}",
        e.target,
        thousands(e.records),
        thousands(e.bytes),
        thousands(e.put_records_calls),
        thousands(e.shards),
        thousands(e.keys),
        decimal(e.seconds, 1),
        match (e.unsendable, e.unreadable) {
            (0, 0) => String::new(),
            (a, b) => format!("; {a} not sendable (payload not archived), {b} unreadable item(s)"),
        },
        match (e.records_read, e.not_json) {
            (Some(read), Some(not_json)) => format!(
                "; --where selected {} of {} record(s) read ({} not JSON)",
                thousands(e.records),
                thousands(read),
                thousands(not_json)
            ),
            _ => String::new(),
        }
    )
}

/// A signal that came while the selection was read, before anything was sent.
fn stopped_while_reading(code: u8) -> Failure {
    crate::say("stopped by a signal while reading the selection: nothing was sent");
    Failure::Interrupted(code)
}

fn kinesis_client(sdk: &SdkConfig) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(sdk)
}

fn print_summary(report: &ReinjectReport, target: &StreamName, dry_run: bool, quiet: bool) {
    if quiet && report.failed.is_empty() {
        return;
    }
    crate::say(&summary_line(report, target, dry_run));
}

/// `orders: read 1,200, sent 1,200, ...`; a dry run says "would send" and counts no call.
fn summary_line(report: &ReinjectReport, target: &StreamName, dry_run: bool) -> String {
    let seconds = report.elapsed.as_secs_f64();
    let calls = match dry_run {
        true => "nothing sent: dry run".to_owned(),
        false => count(report.requests, "PutRecords call"),
    };
    format!(
        "{target}: read {}, {} {}, retried {}, failed {}, {} bytes, {} s, {} ({calls})",
        thousands(report.read),
        if dry_run { "would send" } else { "sent" },
        thousands(report.sent),
        thousands(report.retried),
        thousands(report.failed.len() as u64),
        thousands(report.bytes),
        decimal(seconds, 1),
        rate(report.sent, seconds),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn message(failure: Failure) -> String {
        match failure {
            Failure::Usage(m) => format!("usage: {m}"),
            Failure::Runtime(m) => format!("runtime: {m}"),
            Failure::OutputClosed => "closed".into(),
            Failure::Interrupted(code) => format!("interrupted: {code}"),
        }
    }

    #[test]
    fn without_a_terminal_a_raw_replay_into_the_source_is_refused() {
        let refused = confirm_raw_replay_into_source(None::<Prompter<&[u8], Vec<u8>>>, &stream())
            .unwrap_err();
        let text = message(refused);
        for expected in [
            "usage: orders is the stream",
            "archived again as new records",
            "--yes",
            "--metadata",
            "nothing was sent",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
    }

    #[test]
    fn on_a_terminal_it_asks_and_defaults_to_no() {
        let answer = |input: &'static str| {
            confirm_raw_replay_into_source(
                Some(Prompter::new(input.as_bytes(), Vec::new())),
                &stream(),
            )
        };
        assert!(answer("y\n").is_ok());
        assert!(answer("yes\n").is_ok());
        for no in ["\n", "n\n", ""] {
            let text = message(answer(no).unwrap_err());
            assert!(
                text.starts_with("runtime: reinject cancelled: nothing was sent"),
                "{text}"
            );
        }
    }
}
