//! `kinarch reinject`: read a selection of the archive and send it to a stream.

use std::io::{BufRead, IsTerminal, Write};

use aws_config::SdkConfig;
use futures::StreamExt;
use kinarch_core::StreamName;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::read::locate::Located;
use kinarch_core::read::time_index::arrival_order;
use kinarch_core::read::{ArrivalWindow, QueryOptions, ScanOptions, Selection, TimeIndexUse};
use kinarch_core::replay::estimate::{ReplayEstimate, estimate};
use kinarch_core::replay::journal::{Journal, Position};
use kinarch_core::replay::reinject::{Framing, ReinjectOptions, ReinjectReport, reinject_until};
use serde_json::{Value, json};

use crate::cli::values::thousands;
use crate::cli::values::worker_segment;
use crate::cli::{GlobalArgs, ReinjectArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::{count, decimal, print_json, rate};
use crate::progress::Progress;
use crate::prompt::Prompter;

/// `kinarch reinject`.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ReinjectArgs,
) -> Result<(), Failure> {
    // Ctrl-C or SIGTERM, from the start: while the selection is read (a paced replay or an
    // estimate reads it whole first) nothing was sent; while sending, no new call starts,
    // the calls in flight are answered, then the summary says what was sent and what not.
    let mut signal = crate::signals::listen()?;
    super::read::check_bounds(args.from_seq.as_ref(), args.to_seq.as_ref())?;
    super::read::check_windows(
        args.archived_after,
        args.archived_before,
        args.arrived_after,
        args.arrived_before,
    )?;
    let limit = args.limit.map(usize::from);
    let selection = match args.partition_key {
        Some(partition_key) => Selection::Query(QueryOptions {
            partition_key,
            from: args.from_seq,
            to: args.to_seq,
            limit,
            page_size: None,
            arrived: ArrivalWindow {
                after: args.arrived_after,
                before: args.arrived_before,
            },
        }),
        None => Selection::Scan(ScanOptions {
            from_sequence: args.from_seq,
            to_sequence: args.to_seq,
            archived_after: args.archived_after,
            archived_before: args.archived_before,
            arrived_after: args.arrived_after,
            arrived_before: args.arrived_before,
            limit,
            segments: args.segments.unwrap_or(1),
            page_size: None,
            worker: worker_segment(args.segment, args.segments_total).map_err(Failure::Usage)?,
            time_index: if args.no_time_index {
                TimeIndexUse::Never
            } else {
                TimeIndexUse::WhenPresent
            },
        }),
    };
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
    // What makes two runs the same replay: the table, the selection and the framing.
    let replay = format!(
        "table {}; {selection:?}; metadata {} (separator {})",
        archive.config().table,
        args.metadata,
        args.separator as char
    );
    let journal = match &args.journal {
        Some(path) => Some(Journal::open(path, &replay, target.as_str())?),
        None => None,
    };
    let journal = std::cell::RefCell::new(journal);
    let skipped = std::cell::Cell::new(0u64);
    if args.dry_run {
        // A real run finds a missing stream at its first PutRecords; a dry run sends none,
        // so it asks.
        describe_stream_summary(&kinesis_client(sdk), &target).await?;
    }
    if target == source && !args.metadata && !args.dry_run && !args.yes {
        let prompter = std::io::stdin().is_terminal().then(Prompter::stdio);
        confirm_raw_replay_into_source(prompter, &target)?;
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
    let json = args.output == SummaryFormat::Json;

    if args.estimate {
        let unsent = archive.read(selection).filter(|record| {
            let sent_before = sent_by_an_earlier_run(journal.borrow().as_ref(), record);
            std::future::ready(!sent_before)
        });
        let estimate = tokio::select! {
            estimate = estimate(unsent, &options) => estimate?,
            code = &mut signal => return Err(stopped_while_reading(code)),
        };
        let took = estimate.duration(options.original_pace, args.rate.map(|r| r.get()));
        if json {
            print_json(&estimate_json(&estimate, &target, took))?;
        } else {
            crate::say(&estimate_text(&estimate, &target, took));
        }
        return Ok(());
    }

    // A dry run shows each record as it is read: key, sequence number, payload bytes.
    let mut stdout = std::io::stdout().lock();
    let mut shown: std::io::Result<()> = Ok(());
    // A paced replay goes in arrival order across shards: the selection is read and ordered
    // first (errors first, so that they are reported before anything is sent).
    let source = match args.pace {
        None => archive.read(selection).left_stream(),
        Some(_) => {
            let read = tokio::select! {
                read = archive.read(selection).collect::<Vec<_>>() => read,
                code = &mut signal => return Err(stopped_while_reading(code)),
            };
            let (mut records, errors): (Vec<_>, Vec<_>) = read.into_iter().partition(Result::is_ok);
            // A read through the time index comes in this order already; a Scan does not.
            records.sort_by(|a, b| match (a, b) {
                (Ok(a), Ok(b)) => arrival_order(a, b),
                _ => std::cmp::Ordering::Equal,
            });
            futures::stream::iter(errors.into_iter().chain(records)).right_stream()
        }
    };
    let records = source
        .filter(|record| {
            let sent_before = sent_by_an_earlier_run(journal.borrow().as_ref(), record);
            if sent_before {
                skipped.set(skipped.get() + 1);
            }
            std::future::ready(!sent_before)
        })
        .inspect(|record| {
            if let (true, false, Ok(record), Ok(())) = (args.dry_run, json, record, &shown) {
                shown = writeln!(
                    stdout,
                    "{}\t{}\t{} bytes",
                    record.partition_key,
                    record.sequence_number,
                    record.data.len()
                );
            }
        });
    // A dry run lists records on standard output; a real run writes nothing there, so its
    // progress line shows whenever standard error is a terminal.
    let quiet = global.quiet || json;
    let progress = std::cell::RefCell::new(match args.dry_run {
        true => Progress::start(quiet),
        false => Progress::start_status(quiet),
    });
    let mut counted = 0;
    // A second signal ends the process at once.
    let stopped_by = std::cell::Cell::new(None);
    let stop = async {
        stopped_by.set(Some((&mut signal).await));
        if let Err(failure) = crate::signals::exit_on_second_signal() {
            tracing::warn!("{failure:?}");
        }
    };
    let mut last_save = std::time::Instant::now();
    let mut save_error: Option<kinarch_core::Error> = None;
    let report = reinject_until(
        &kinesis_client(sdk),
        records,
        &options,
        stop,
        |p| {
            let mut bar = progress.borrow_mut();
            while counted < p.sent {
                bar.record();
                counted += 1;
            }
        },
        |accepted| {
            let mut journal = journal.borrow_mut();
            let Some(journal) = journal.as_mut() else {
                return;
            };
            for (key, position) in accepted {
                journal.accepted(&key, position);
            }
            // Rewritten at most once a second (and at the end): a crash in between sends
            // that second's records again on the rerun (at-least-once, as documented).
            if last_save.elapsed() >= std::time::Duration::from_secs(1) {
                last_save = std::time::Instant::now();
                if let Err(e) = journal.save() {
                    save_error.get_or_insert(e);
                }
            }
        },
    )
    .await;
    if let (Some(journal), false) = (journal.borrow_mut().as_mut(), args.dry_run)
        && let Err(e) = journal.save()
    {
        save_error.get_or_insert(e);
    }
    progress.into_inner().clear();
    shown?;
    drop(stdout);
    let report = report?;
    let read = archive.read_stats();
    tracing::info!(
        requests = read.requests,
        items_read = read.items_read,
        "DynamoDB reads"
    );
    if let Some(e) = save_error {
        return Err(e.into());
    }
    if skipped.get() > 0 && !global.quiet {
        crate::say(&format!(
            "journal: {} record(s) were sent by an earlier run and are not sent again",
            thousands(skipped.get())
        ));
    }
    if json {
        print_json(&report_json(&report, &target, args.dry_run))?;
    } else {
        print_summary(&report, &target, args.dry_run, global.quiet);
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

/// Whether the journal (if any) says an earlier run had `record` accepted.
fn sent_by_an_earlier_run(
    journal: Option<&Journal>,
    record: &Result<kinarch_core::ArchiveRecord, kinarch_core::Error>,
) -> bool {
    match (record, journal) {
        (Ok(record), Some(journal)) => journal.already_sent(
            &record.partition_key,
            &Position {
                sequence: record.sequence_number.clone(),
                sub_sequence: record.sub_sequence_number,
            },
        ),
        _ => false,
    }
}

fn rfc3339(seconds: f64) -> String {
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| seconds.to_string())
}

fn estimate_json(e: &ReplayEstimate, target: &StreamName, took: std::time::Duration) -> Value {
    json!({
        "target": target.as_str(),
        "records": e.records,
        "bytes": e.bytes,
        "putRecordsCalls": e.calls,
        "shards": e.shards,
        "keys": e.keys,
        "firstArrival": e.arrivals.map(|(first, _)| rfc3339(first)),
        "lastArrival": e.arrivals.map(|(_, last)| rfc3339(last)),
        "unsendable": e.unsendable,
        "unreadable": e.unreadable,
        "seconds": took.as_secs_f64(),
    })
}

fn estimate_text(e: &ReplayEstimate, target: &StreamName, took: std::time::Duration) -> String {
    let span = match e.arrivals {
        Some((first, last)) => format!("arrived {} to {}", rfc3339(first), rfc3339(last)),
        None => "nothing selected".to_owned(),
    };
    format!(
        "estimate for {target}: {} record(s), {} bytes, at least {} PutRecords call(s), {} shard(s), \
         {} key(s); {span}; takes at least {} s at this pace and rate{}",
        thousands(e.records),
        thousands(e.bytes),
        thousands(e.calls),
        thousands(e.shards),
        thousands(e.keys),
        decimal(took.as_secs_f64(), 1),
        match (e.unsendable, e.unreadable) {
            (0, 0) => String::new(),
            (a, b) => format!("; {a} not sendable (payload not archived), {b} unreadable item(s)"),
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

/// `reinject -o json`.
fn report_json(report: &ReinjectReport, target: &StreamName, dry_run: bool) -> Value {
    json!({
        "target": target.as_str(),
        "dryRun": dry_run,
        "read": report.read,
        "sent": if dry_run { 0 } else { report.sent },
        "wouldSend": if dry_run { Some(report.sent) } else { None },
        "retried": report.retried,
        "failed": report.failed.len(),
        "failures": report.failed.iter().map(|f| json!({
            "partitionKey": f.partition_key,
            "sequenceNumber": f.sequence_number.as_str(),
            "reason": f.reason,
        })).collect::<Vec<_>>(),
        "bytes": report.bytes,
        "requests": report.requests,
        "seconds": report.elapsed.as_secs_f64(),
        "stopped": report.stopped,
        "unsent": report.unsent,
    })
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
