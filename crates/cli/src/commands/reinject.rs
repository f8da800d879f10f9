//! `kinarch reinject`: read a selection of the archive and send it to a stream.

use std::io::{BufRead, IsTerminal, Write};

use aws_config::SdkConfig;
use kinarch_core::aws::TargetAccess;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::read::locate::Located;
use kinarch_core::replay::reinject::{
    Framing, ReinjectOptions, ReinjectReport, check_target, target_shard_load,
};
use kinarch_core::replay::runner::{
    EstimateSummary, Replay, ReplayOutcome, ReplayRequest, ReplaySummary,
};
use kinarch_core::replay::verify::VerifyReport;

use crate::cli::values::StreamArg;
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
    let access = target_access(sdk, &args)?;
    let resolved = super::selection(args.selection)?;
    let source = args.source.name.clone();
    let (target, target_arn) = match &args.target {
        Some(t) => (t.name.clone(), t.arn.clone()),
        None => (source.clone(), None),
    };
    let (archive, located) =
        super::open_archive(sdk, global, source.clone(), &args.archive).await?;
    let target_sdk = access.sdk_config(sdk).await;
    let target_elsewhere =
        access != TargetAccess::default() || other_account(sdk, &args.source, &target_arn).await;
    if target == source
        && !target_elsewhere
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
    options.target_arn = target_arn;
    options.target_identity = target_elsewhere.then(|| access.identity());
    let target_label = options.target_address().to_string();
    if let Some(share) = args.max_shard_load {
        options.shard_load =
            Some(target_shard_load(&kinesis_client(&target_sdk), &options, share).await?);
    }
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
            verify: args.verify,
        },
    )?;
    for note in replay.notes() {
        if !global.quiet {
            crate::say(note);
        }
    }
    if args.dry_run || (args.estimate && target_elsewhere) {
        // A real run finds a missing stream (or a role it may not use) at its first
        // PutRecords; these send none, so they ask, as the target's calls will be made. An
        // estimate asks only of a target in another account or region, where credentials
        // are the question; an estimate in place works before its target is made.
        check_target(&kinesis_client(&target_sdk), &options).await?;
    }
    if options.target_is_source() && !args.metadata && !args.dry_run && !args.yes {
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
        let mut summary = EstimateSummary::new(&estimate, &target_label, took);
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
            &kinesis_client(&target_sdk),
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
    // One JSON document holds the replay and its verification; text says each as it ends.
    let verified_first = match (args.verify && !report.stopped, json) {
        (true, true) => Some(verify(&outcome, &target_sdk, &options).await?),
        _ => None,
    };
    if json {
        print_json(
            &ReplaySummary::new(report, &target_label, args.dry_run)
                .with_verify(verified_first.clone()),
        )?;
    } else {
        print_summary(report, &target_label, args.dry_run, global.quiet);
    }
    if !report.throttled.is_empty() && !json {
        let shards: Vec<String> = report
            .throttled
            .iter()
            .map(|(shard, n)| format!("{shard} {}", thousands(*n)))
            .collect();
        crate::say(&format!(
            "throttled by Kinesis (each shard's budget halved, then grown back): {}",
            shards.join(", ")
        ));
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
        if args.verify {
            crate::say(&format!(
                "not verified: the replay was stopped{}",
                match &args.journal {
                    Some(journal) => format!(
                        "; rerun it with --journal {} --verify to send the rest and verify \
                         everything sent",
                        journal.display()
                    ),
                    None => String::new(),
                }
            ));
        }
        return Err(Failure::Interrupted(code));
    }
    if args.verify {
        let verified = match verified_first {
            Some(verified) => verified,
            None => {
                let verified = verify(&outcome, &target_sdk, &options).await?;
                if !global.quiet || !verified.passed() {
                    crate::say(&verify_text(&verified, &target_label));
                }
                verified
            }
        };
        verify_outcome(&verified, &target_label)?;
    }
    // A dry run sent nothing, so nothing failed: it succeeds, having said what would.
    if report.failed.is_empty() || args.dry_run {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} record(s) could not be sent to {target_label} (listed above); the others were sent",
            report.failed.len()
        )))
    }
}

/// `--verify`: reads back what the replay sent and checks it.
async fn verify(
    outcome: &ReplayOutcome,
    target_sdk: &SdkConfig,
    options: &ReinjectOptions,
) -> Result<VerifyReport, Failure> {
    let mut signal = crate::signals::listen()?;
    let stop = async {
        (&mut signal).await;
    };
    match outcome
        .verify(&kinesis_client(target_sdk), options, stop)
        .await?
    {
        Some(report) => Ok(report),
        None => {
            crate::say("verification stopped by a signal: the replay was sent, not checked");
            Err(Failure::Interrupted(signal_code(&mut signal)))
        }
    }
}

/// A verification that found a record wrong fails the command.
fn verify_outcome(report: &VerifyReport, target: &str) -> Result<(), Failure> {
    if report.not_verifiable > 0 {
        crate::say(&format!(
            "verify: {} record(s) sent by an earlier run without --verify cannot be checked",
            thousands(report.not_verifiable)
        ));
    }
    if report.passed() {
        return Ok(());
    }
    Err(Failure::Runtime(format!(
        "the replay into {target} did not verify: {} missing, {} altered, {} duplicated, {} \
         out of order",
        thousands(report.missing.count),
        thousands(report.altered.count),
        thousands(report.duplicated.count),
        thousands(report.out_of_order.count),
    )))
}

fn verify_text(report: &VerifyReport, target: &str) -> String {
    let mut text = format!(
        "verify {target}: {} verified, {} missing, {} altered, {} duplicated, {} out of order \
         ({} shard(s) read back in {} GetRecords call(s); {} record(s) of other producers \
         ignored)",
        thousands(report.verified),
        thousands(report.missing.count),
        thousands(report.altered.count),
        thousands(report.duplicated.count),
        thousands(report.out_of_order.count),
        thousands(report.shards),
        thousands(report.get_records_calls),
        thousands(report.others),
    );
    for (kind, findings) in [
        ("missing", &report.missing),
        ("altered", &report.altered),
        ("duplicated", &report.duplicated),
        ("out of order", &report.out_of_order),
    ] {
        for finding in &findings.first {
            text.push_str(&format!(
                "\n{kind}: {} {} (sent to {} {}): {}",
                finding.partition_key,
                finding.original,
                finding.shard_id,
                finding.sequence_number,
                finding.detail
            ));
        }
        if findings.count > findings.first.len() as u64 {
            text.push_str(&format!(
                "\n{kind}: and {} more",
                thousands(findings.count - findings.first.len() as u64)
            ));
        }
    }
    text
}

/// Where and as whom the target is written: its region when it is not the source's (the
/// ARN's, or --target-region; both given must agree), and the role to assume.
fn target_access(sdk: &SdkConfig, args: &ReinjectArgs) -> Result<TargetAccess, Failure> {
    let arn_region = args.target.as_ref().and_then(|t| t.region.clone());
    let region = match (arn_region, &args.target_region) {
        (Some(arn), Some(flag)) if arn != *flag => {
            return Err(Failure::Usage(format!(
                "the target's ARN is in region {arn} and --target-region is {flag}: give one"
            )));
        }
        (Some(region), _) => Some(region),
        (None, Some(region)) => Some(region.clone()),
        (None, None) => None,
    };
    let source_region = sdk.region().map(|r| r.as_ref().to_owned());
    Ok(TargetAccess {
        region: region.filter(|r| Some(r) != source_region.as_ref()),
        role_arn: args.target_role_arn.clone(),
        external_id: args.target_external_id.clone(),
    })
}

/// Whether a target given by ARN, in the source's region and without a role, is in another
/// account than the source (a stream shared by a resource policy): by the source's ARN, as
/// given or as DescribeStreamSummary answers. When that cannot be known, it is taken as
/// another account: the frame then names the source, so the target's archiver keeps the
/// records rather than skip them as replays of its own.
async fn other_account(sdk: &SdkConfig, source: &StreamArg, target_arn: &Option<String>) -> bool {
    let Some(target_arn) = target_arn else {
        return false;
    };
    let account = |arn: &str| arn.split(':').nth(4).map(str::to_owned);
    let source_arn = match &source.arn {
        Some(arn) => Some(arn.clone()),
        None => describe_stream_summary(&kinesis_client(sdk), &source.name)
            .await
            .ok()
            .map(|summary| summary.arn),
    };
    source_arn.and_then(|arn| account(&arn)) != account(target_arn)
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
         {} key(s); {span}; takes at least {} s at this pace and rate{}{}{}",
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
        },
        match (&e.busiest_target_shard, e.busiest_target_shard_seconds) {
            (Some(shard), Some(seconds)) => format!(
                "; the busiest target shard, {shard}, takes {} s at --max-shard-load",
                decimal(seconds, 1)
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

fn print_summary(report: &ReinjectReport, target: &str, dry_run: bool, quiet: bool) {
    if quiet && report.failed.is_empty() {
        return;
    }
    crate::say(&summary_line(report, target, dry_run));
}

/// `orders: read 1,200, sent 1,200, ...`; a dry run says "would send" and counts no call.
fn summary_line(report: &ReinjectReport, target: &str, dry_run: bool) -> String {
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
    use kinarch_core::StreamName;

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
