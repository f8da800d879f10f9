//! `kinarch query` and `kinarch scan`: read records and print them.

use aws_config::SdkConfig;
use futures::StreamExt;
use kinarch_core::{Error, StreamName};

use crate::cli::values::thousands;
use crate::cli::{ArchiveTableArgs, GlobalArgs, OutputArgs, QueryArgs, ScanArgs};
use crate::failure::Failure;
use crate::logging::labelled;
use crate::output::{NotPrinted, RecordFormat, RecordWriter};
use crate::progress::Progress;
use tracing::Level;

/// `kinarch query`.
pub(crate) async fn query(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: QueryArgs,
) -> Result<(), Failure> {
    let mut selection = args.selection;
    selection.key = selection.key.or(args.partition_key);
    let resolved = super::selection(selection)?;
    print_records(
        sdk,
        global,
        args.stream.name,
        &args.archive,
        resolved,
        &args.output,
    )
    .await
}

/// `kinarch scan`.
pub(crate) async fn scan(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: ScanArgs,
) -> Result<(), Failure> {
    let resolved = super::selection(args.selection)?;
    print_records(
        sdk,
        global,
        args.stream.name,
        &args.archive,
        resolved,
        &args.output,
    )
    .await
}

/// Opens the stream's archive, prints the selected records, and reports items that do not
/// follow the table contract (each on standard error; then exit 1 once the rest is
/// printed, so a script notices).
async fn print_records(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    stream: StreamName,
    table: &ArchiveTableArgs,
    resolved: super::ResolvedSelection,
    output: &OutputArgs,
) -> Result<(), Failure> {
    let (mut archive, _) = super::open_archive(sdk, global, stream, table).await?;
    if output.no_fetch {
        archive = archive.without_fetch();
    }
    tracing::info!(table = %archive.config().table, mode = %archive.config().mode, "reading");
    // Ctrl-C or SIGTERM: what was printed stays printed and is said, then exit 130 / 143.
    let mut signal = crate::signals::listen()?;
    let mut records = archive.read(&resolved.selection, resolved.read);
    let format = match &output.format {
        Some(line) => RecordFormat::Line(line.clone()),
        None => RecordFormat::Output(output.output, output.delimiter.0.clone()),
    };
    let mut writer = RecordWriter::stdout(format);
    let mut progress = Progress::start(global.quiet);
    let mut unreadable = 0usize;
    let mut oversize = 0usize;
    let mut unavailable = 0usize;
    let mut unreadable_files = 0usize;
    let mut printed = 0u64;
    loop {
        let result = tokio::select! {
            biased;
            code = &mut signal => {
                progress.finish();
                writer.finish()?;
                crate::say(&format!(
                    "stopped by a signal: {} record(s) printed; the rest of the selection \
                     was not read",
                    thousands(printed)
                ));
                return Err(Failure::Interrupted(code));
            }
            next = records.next() => match next {
                Some(result) => result,
                None => break,
            },
        };
        match result {
            Ok(record) => match writer.write(&record)? {
                Ok(()) => {
                    printed += 1;
                    progress.record()
                }
                Err(NotPrinted::NotFetched(location)) => {
                    if !global.quiet {
                        progress.message(&labelled(
                            Level::WARN,
                            &format!(
                                "record {}/{}: its payload is in {location} and was not \
                                 fetched (--no-fetch); --output jsonl shows it",
                                record.partition_key, record.sequence_number
                            ),
                        ));
                    }
                }
                Err(NotPrinted::Oversize(size)) => {
                    oversize += 1;
                    if !global.quiet {
                        progress.message(&labelled(
                            Level::WARN,
                            &format!(
                                "record {}/{} had {size} bytes, too many for a DynamoDB item, \
                                 so only its metadata is archived; --output jsonl shows it",
                                record.partition_key, record.sequence_number
                            ),
                        ));
                    }
                }
            },
            Err(Error::Item(bad)) => {
                unreadable += 1;
                progress.message(&labelled(
                    Level::ERROR,
                    &format!("table {}: {bad}; skipped", archive.config().table),
                ));
            }
            Err(err @ Error::PayloadUnavailable { .. }) => {
                unavailable += 1;
                progress.message(&labelled(Level::ERROR, &format!("{err}; skipped")));
            }
            Err(err @ Error::ParquetFile { .. }) => {
                unreadable_files += 1;
                progress.message(&labelled(Level::ERROR, &err.to_string()));
            }
            Err(other) => {
                progress.finish();
                writer.finish()?;
                return Err(other.into());
            }
        }
    }
    progress.finish();
    writer.finish()?;
    super::log_read_costs(&archive.read_stats(), &archive.parquet_stats());
    super::say_not_json(&archive, global.quiet);
    if unreadable_files > 0 {
        return Err(Failure::Runtime(format!(
            "{unreadable_files} Parquet file(s) could not be read and were skipped (listed \
             above); every record of the other files was printed"
        )));
    }
    if oversize > 0 {
        tracing::info!(
            oversize,
            "records without archived payload were not printed"
        );
    }
    if unavailable > 0 {
        return Err(Failure::Runtime(format!(
            "{unavailable} archived payload(s) in S3 could not be read and were skipped (listed \
             above){}; every other record was printed",
            if unreadable > 0 {
                format!(", and {unreadable} item(s) do not follow the table contract")
            } else {
                String::new()
            }
        )));
    }
    if unreadable > 0 {
        return Err(Failure::Runtime(format!(
            "{unreadable} archived item(s) do not follow the table contract and were skipped \
             (listed above); every other record was printed"
        )));
    }
    Ok(())
}
