//! `kinarch reinject`: read a selection of the archive and send it to a stream.

use std::io::{BufRead, IsTerminal, Write};

use aws_config::SdkConfig;
use futures::StreamExt;
use kinarch_core::read::{QueryOptions, ScanOptions, Selection};
use kinarch_core::replay::reinject::{Framing, ReinjectOptions, ReinjectReport, reinject};

use crate::cli::values::worker_segment;
use crate::cli::{GlobalArgs, ReinjectArgs};
use crate::failure::Failure;
use crate::progress::Progress;
use crate::prompt::Prompter;

/// `kinarch reinject`.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ReinjectArgs,
) -> Result<(), Failure> {
    if let (Some(from), Some(to)) = (&args.from, &args.to)
        && from > to
    {
        return Err(Failure::Usage(format!(
            "--from {from} is after --to {to} (sequence numbers compare numerically), so \
             nothing can match: swap them"
        )));
    }
    let limit = args.limit.map(usize::from);
    let selection = match args.partition_key {
        Some(partition_key) => Selection::Query(QueryOptions {
            partition_key,
            from: args.from,
            to: args.to,
            limit,
            page_size: None,
        }),
        None => Selection::Scan(ScanOptions {
            from_sequence: args.from_seq,
            archived_after: args.archived_after,
            arrived_after: args.arrived_after,
            limit,
            segments: args.segments.unwrap_or(1),
            page_size: None,
            worker: worker_segment(args.segment, args.segments_total).map_err(Failure::Usage)?,
        }),
    };
    let target = args.target.unwrap_or_else(|| args.source.clone());
    let archive =
        super::open_archive(sdk, global, args.source.clone(), args.table.as_ref()).await?;
    if target == args.source && !args.metadata && !args.dry_run && !args.yes {
        let prompter = std::io::stdin().is_terminal().then(Prompter::stdio);
        confirm_raw_replay_into_source(prompter, &target)?;
    }
    let mut options = ReinjectOptions::new(args.source, target.clone());
    options.framing = if args.metadata {
        Framing::Metadata {
            separator: args.separator,
        }
    } else {
        Framing::Raw
    };
    options.rate = args.rate;
    options.concurrency = args.concurrency;
    options.dry_run = args.dry_run;

    // A dry run shows each record as it is read: key, sequence number, payload bytes.
    let mut stdout = std::io::stdout().lock();
    let mut shown: std::io::Result<()> = Ok(());
    let records = archive.read(selection).inspect(|record| {
        if let (true, Ok(record), Ok(())) = (args.dry_run, record, &shown) {
            shown = writeln!(
                stdout,
                "{}\t{}\t{} bytes",
                record.partition_key,
                record.sequence_number,
                record.data.len()
            );
        }
    });
    let progress = std::cell::RefCell::new(Progress::start(global.quiet));
    let mut counted = 0;
    let report = reinject(&kinesis_client(sdk), records, &options, |p| {
        let mut bar = progress.borrow_mut();
        while counted < p.sent {
            bar.record();
            counted += 1;
        }
    })
    .await;
    progress.into_inner().finish();
    shown?;
    let report = report?;
    print_summary(&report, &target, args.dry_run, global.quiet);
    if report.failed.is_empty() {
        Ok(())
    } else {
        for failed in &report.failed {
            crate::say(&format!(
                "not sent: {} {}: {}",
                failed.partition_key, failed.sequence_number, failed.reason
            ));
        }
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

fn kinesis_client(sdk: &SdkConfig) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(sdk)
}

fn print_summary(
    report: &ReinjectReport,
    target: &kinarch_core::StreamName,
    dry_run: bool,
    quiet: bool,
) {
    if quiet && report.failed.is_empty() {
        return;
    }
    let verb = if dry_run { "would send" } else { "sent" };
    crate::say(&format!(
        "{target}: read {}, {verb} {}, retried {}, failed {}, {} bytes, {:.1} s ({} PutRecords calls)",
        report.read,
        report.sent,
        report.retried,
        report.failed.len(),
        report.bytes,
        report.elapsed.as_secs_f64(),
        report.requests
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::StreamName;

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn message(failure: Failure) -> String {
        match failure {
            Failure::Usage(m) => format!("usage: {m}"),
            Failure::Runtime(m) => format!("runtime: {m}"),
            Failure::OutputClosed => "closed".into(),
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
