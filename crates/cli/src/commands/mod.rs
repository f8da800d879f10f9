//! The subcommands. Each is a thin layer over `kinarch_core`: parse, call, print.

mod archive;
mod athena;
mod compact;
mod completions;
mod export;
mod list;
mod put;
mod read;
mod reinject;
mod reinject_function;
mod setup;
mod status;
mod tier;

use aws_config::SdkConfig;
use kinarch_core::StreamName;
use kinarch_core::aws::{AwsOptions, attempt_timeout_from_env, check_profile, load_sdk_config};
use kinarch_core::domain::config::TABLE_TAG_STREAM;
use std::collections::BTreeMap;

use kinarch_core::Selection;
use kinarch_core::domain::selection::{SelectionSpec, TimeWindow};
use kinarch_core::read::locate::{Located, TableOwner};
use kinarch_core::read::{ArchiveReader, ArchiveSource, ReadOptions, TimeIndexUse};

use crate::cli::values::StreamArg;
use crate::cli::values::{TimeArg, worker_segment};
use crate::cli::{ArchiveTableArgs, Cli, Command, GlobalArgs, SelectionArgs, SourceArg};
use crate::failure::Failure;

/// Runs the command the command line asks for.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    if let Command::Completions(args) = cli.command {
        return completions::run(args);
    }
    let sdk = connect(&global, &regions_given(&cli.command)).await?;
    match cli.command {
        Command::Setup(args) => setup::run(&sdk, &global, args).await,
        Command::Status(args) => status::run(&sdk, args).await,
        Command::Query(args) => read::query(&sdk, &global, args).await,
        Command::Scan(args) => read::scan(&sdk, &global, args).await,
        Command::Reinject(args) => reinject::run(&sdk, &global, args).await,
        Command::Completions(_) => unreachable!("handled above"),
        Command::Archive(args) => archive::run(&sdk, &global, args).await,
        Command::Put(args) => put::run(&sdk, &global, args).await,
        Command::List(args) => list::run(&sdk, args).await,
        Command::Export(args) => export::run(&sdk, &global, args).await,
        Command::AthenaDdl(args) => athena::run(&sdk, &global, args).await,
        Command::Tier(args) => tier::run(&sdk, &global, args).await,
        Command::Compact(args) => compact::run(&sdk, &global, args).await,
    }
}

/// The regions the command's own arguments name, besides --region: the regions of stream
/// ARNs, and `setup`'s positional region. Each says where the command works.
fn regions_given(command: &Command) -> Vec<(String, String)> {
    let arn = |stream: &StreamArg| {
        stream
            .region
            .clone()
            .map(|region| (format!("the ARN of stream {}", stream.name), region))
    };
    let mut regions = Vec::new();
    match command {
        Command::Setup(args) => {
            regions.extend(arn(&args.stream));
            if let Some(region) = &args.setup_region {
                regions.push(("the region argument".to_owned(), region.clone()));
            }
        }
        Command::Status(args) => regions.extend(arn(&args.stream)),
        Command::Query(args) => regions.extend(arn(&args.stream)),
        Command::Scan(args) => regions.extend(arn(&args.stream)),
        // The target has its own region (see `reinject --target-region`).
        Command::Reinject(args) => regions.extend(arn(&args.source)),
        Command::Archive(args) => regions.extend(arn(&args.stream)),
        Command::Put(args) => regions.extend(arn(&args.stream)),
        Command::Export(args) => regions.extend(arn(&args.stream)),
        Command::AthenaDdl(args) => regions.extend(arn(&args.stream)),
        Command::Tier(args) => regions.extend(arn(&args.stream)),
        Command::Compact(args) => regions.extend(arn(&args.stream)),
        Command::Completions(_) | Command::List(_) => {}
    }
    regions
}

/// The one region of the command: --region and every region the arguments name must agree
/// (the same value given twice is fine); `None` when none is given.
fn one_region(flag: Option<&str>, given: &[(String, String)]) -> Result<Option<String>, Failure> {
    let mut chosen: Option<(&str, &str)> = flag.map(|r| ("--region", r));
    for (what, region) in given {
        match &chosen {
            Some((first, other)) if *other != region.as_str() => {
                return Err(Failure::Usage(format!(
                    "two different regions were given: {other} ({first}) and {region} ({what}); \
                     give one region"
                )));
            }
            Some(_) => {}
            None => chosen = Some((what, region)),
        }
    }
    Ok(chosen.map(|(_, region)| region.to_owned()))
}

/// Opens the archive of `stream` (see `ArchiveReader::locate`), and says on standard error
/// when the stream could not be read and the table was found by its name instead, and when
/// a table named with --table cannot be checked to archive this stream (no ArchivedStream
/// tag: made by the original archiver, by hand, or before kinarch tagged its tables).
async fn open_archive(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    stream: StreamName,
    table: &ArchiveTableArgs,
) -> Result<(ArchiveReader, Located), Failure> {
    if let Some(target) = &table.parquet {
        let (archive, located) = ArchiveReader::locate_parquet(sdk, stream, target.clone()).await?;
        if let Located::WithoutStream { reason } = &located
            && !global.quiet
        {
            crate::say(&format!(
                "note: {reason}; reading its Parquet archive under {target}"
            ));
        }
        return Ok((archive, located));
    }
    let (archive, located) =
        ArchiveReader::locate(sdk, stream, table.table.as_ref(), table.force).await?;
    let config = archive.config();
    if let Located::WithoutStream { reason } = &located
        && !global.quiet
    {
        crate::say(&format!(
            "note: {reason}; reading its archive table {} ({} mode, from the table's key schema)",
            config.table, config.mode
        ));
    }
    if located == Located::Named && *archive.owner() == TableOwner::Untagged {
        tracing::warn!(
            "table {} has no {TABLE_TAG_STREAM} tag, so nothing says it archives stream {}: \
             check that it does (`kinarch setup {} {} --table {}` tags it)",
            config.table,
            config.stream,
            config.stream,
            config.mode,
            config.table
        );
    }
    Ok((archive, located))
}

/// The Parquet archive of `stream`: under `parquet` when given, else where its
/// ArchiveParquet tag says (see [`open_archive`]); a stream without one is
/// `Error::NoParquetArchive`.
async fn parquet_archive(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    stream: StreamName,
    parquet: Option<kinarch_core::domain::overflow::OverflowTarget>,
) -> Result<(ArchiveReader, kinarch_core::domain::parquet::ParquetTarget), Failure> {
    let which = ArchiveTableArgs {
        parquet,
        ..ArchiveTableArgs::default()
    };
    let (archive, _) = open_archive(sdk, global, stream.clone(), &which).await?;
    match archive.config().parquet.clone() {
        Some(target) => Ok((archive, target)),
        None => Err(kinarch_core::Error::NoParquetArchive { stream }.into()),
    }
}

/// What a read cost, at `-v`: DynamoDB requests and items, and with the Parquet archive the
/// objects listed, files, row groups read and skipped, bytes fetched.
fn log_read_costs(
    dynamodb: &kinarch_core::read::ReadStats,
    parquet: &kinarch_core::parquet::ParquetReadStats,
) {
    tracing::info!(
        requests = dynamodb.requests,
        items_read = dynamodb.items_read,
        "DynamoDB reads"
    );
    if parquet.objects_listed > 0 || parquet.files > 0 {
        tracing::info!(
            objects_listed = parquet.objects_listed,
            files = parquet.files,
            row_groups = parquet.row_groups,
            row_groups_read = parquet.row_groups_read,
            skipped_by_statistics = parquet.skipped_by_statistics,
            skipped_by_bloom_filter = parquet.skipped_by_bloom_filter,
            bytes_read = parquet.bytes_read,
            rows_read = parquet.rows_read,
            "Parquet reads"
        );
    }
}

/// After a read with `--where`: says once how many payloads were not JSON (so not
/// selected); `-v` named each as it was read.
fn say_not_json(archive: &ArchiveReader, quiet: bool) {
    let stats = archive.filter_stats();
    if stats.not_json > 0 && !quiet {
        crate::say(&format!(
            "note: {} of {} record(s) read have a payload that is not JSON (or not in the \
             archive) and were not selected by --where (-v names them)",
            crate::cli::values::thousands(stats.not_json),
            crate::cli::values::thousands(stats.read)
        ));
    }
}

/// The partition keys of `--keys-from FILE` (`-`: standard input), one per line (a
/// trailing `\r` dropped, empty lines skipped).
fn keys_from(path: &std::path::Path) -> Result<Vec<String>, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| Failure::Usage(format!("cannot read --keys-from {}: {e}", path.display())))?;
    let keys: Vec<String> = text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err(Failure::Usage(format!(
            "--keys-from {} holds no key: give one partition key per line",
            path.display()
        )));
    }
    Ok(keys)
}

/// A command line's selection, checked: which records, how they are read, and which of its
/// time bounds were given relative to now (flag → as typed).
pub(crate) struct ResolvedSelection {
    pub(crate) selection: Selection,
    pub(crate) read: ReadOptions,
    pub(crate) relative_times: BTreeMap<String, String>,
}

/// Builds the one [`Selection`] of `query`, `scan` and `reinject` from their flags: every
/// rule is checked there (`Selection::new`), none here.
pub(crate) fn selection(args: SelectionArgs) -> Result<ResolvedSelection, Failure> {
    let worker = worker_segment(args.segment, args.segments_total).map_err(Failure::Usage)?;
    let mut relative_times = BTreeMap::new();
    let mut time = |flag: &str, arg: Option<TimeArg>| {
        arg.map(|arg| {
            if let Some(typed) = arg.relative {
                relative_times.insert(flag.to_owned(), typed);
            }
            arg.time
        })
    };
    let arrived = TimeWindow::new(
        time("--arrived-after", args.arrived_after),
        time("--arrived-before", args.arrived_before),
    );
    let archived = TimeWindow::new(
        time("--archived-after", args.archived_after),
        time("--archived-before", args.archived_before),
    );
    let selection = Selection::new(SelectionSpec {
        partition_key: args.key,
        from_sequence: args.from_seq,
        to_sequence: args.to_seq,
        arrived,
        archived,
        segments: args.segments,
        worker,
        limit: args.limit.map(usize::from),
        content: args.content,
        keys: match &args.keys_from {
            Some(path) => keys_from(path)?,
            None => Vec::new(),
        },
    })
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let read = ReadOptions {
        source: match args.read_from {
            SourceArg::Auto => ArchiveSource::Auto,
            SourceArg::Table => ArchiveSource::Table,
            SourceArg::Parquet => ArchiveSource::Parquet,
        },
        page_size: args.page_size,
        time_index: match args.no_time_index {
            true => TimeIndexUse::Never,
            false => TimeIndexUse::WhenPresent,
        },
    };
    Ok(ResolvedSelection {
        selection,
        read,
        relative_times,
    })
}

/// Loads the AWS configuration: the global options first, then the SDK's usual sources
/// (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, the config files). `given` are regions
/// named some other way (stream ARNs, `kinarch setup`'s positional one), with what named
/// them.
async fn connect(global: &GlobalArgs, given: &[(String, String)]) -> Result<SdkConfig, Failure> {
    let region = one_region(global.region.as_deref(), given)?;
    // --read-timeout wins over the environment variable.
    let attempt_timeout = match global.read_timeout {
        Some(timeout) => Some(timeout),
        None => attempt_timeout_from_env()?,
    };
    if let Some(profile) = &global.profile {
        check_profile(profile).await?;
    }
    let sdk = load_sdk_config(&AwsOptions {
        region,
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
        attempt_timeout,
    })
    .await;
    if sdk.region().is_none() {
        return Err(Failure::Usage(
            "no AWS region is set: pass --region REGION, set AWS_REGION, or set a region in \
             your AWS profile"
                .into(),
        ));
    }
    Ok(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_must_agree_wherever_they_are_given() {
        let arn = [("the ARN of stream s".to_owned(), "eu-west-1".to_owned())];
        assert_eq!(one_region(None, &[]).unwrap(), None);
        assert_eq!(
            one_region(None, &arn).unwrap().as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            one_region(Some("eu-west-1"), &arn).unwrap().as_deref(),
            Some("eu-west-1")
        );
        let Err(Failure::Usage(message)) = one_region(Some("us-east-1"), &arn) else {
            panic!("a usage error")
        };
        assert!(
            message.contains("us-east-1 (--region)")
                && message.contains("eu-west-1 (the ARN of stream s)"),
            "{message}"
        );
    }
}
