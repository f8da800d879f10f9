//! The subcommands. Each is a thin layer over `kinarch_core`: parse, call, print.

mod archive;
mod completions;
mod put;
mod read;
mod reinject;
mod setup;
mod status;

use aws_config::SdkConfig;
use kinarch_core::aws::{AwsOptions, attempt_timeout_from_env, check_profile, load_sdk_config};
use kinarch_core::read::ArchiveReader;
use kinarch_core::read::locate::Located;
use kinarch_core::{StreamName, TableName};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::failure::Failure;

/// Runs the command the command line asks for.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let global = cli.global;
    match cli.command {
        Command::Setup(args) => setup::run(&global, args).await,
        Command::Status(args) => status::run(&connect(&global, None).await?, args).await,
        Command::Query(args) => read::query(&connect(&global, None).await?, &global, args).await,
        Command::Scan(args) => read::scan(&connect(&global, None).await?, &global, args).await,
        Command::Reinject(args) => {
            reinject::run(&connect(&global, None).await?, &global, args).await
        }
        Command::Completions(args) => completions::run(args),
        Command::Archive(args) => archive::run(&connect(&global, None).await?, &global, args).await,
        Command::Put(args) => put::run(&connect(&global, None).await?, &global, args).await,
    }
}

/// Opens the archive of `stream` (see `ArchiveReader::locate`), and says on standard error
/// when the stream could not be read and the table was found by its name instead.
async fn open_archive(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    stream: StreamName,
    table: Option<&TableName>,
) -> Result<ArchiveReader, Failure> {
    let (archive, located) = ArchiveReader::locate(sdk, stream, table).await?;
    if let Located::WithoutStream { reason } = located
        && !global.quiet
    {
        let config = archive.config();
        crate::say(&format!(
            "note: {reason}; reading its archive table {} ({} mode, from the table's key schema)",
            config.table, config.mode
        ));
    }
    Ok(archive)
}

/// Loads the AWS configuration: the global options first, then the SDK's usual sources
/// (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, the config files). `region` is a region
/// given some other way (`kinarch setup`'s positional one).
async fn connect(global: &GlobalArgs, region: Option<&str>) -> Result<SdkConfig, Failure> {
    let region = match (region, global.region.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(Failure::Usage(format!(
                "two different regions were given ({a} and --region {b}): give one"
            )));
        }
        (a, b) => a.or(b).map(str::to_owned),
    };
    if let Some(profile) = &global.profile {
        check_profile(profile).await?;
    }
    let sdk = load_sdk_config(&AwsOptions {
        region,
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
        attempt_timeout: attempt_timeout_from_env()?,
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
