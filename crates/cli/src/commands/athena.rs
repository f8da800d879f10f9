//! `kinarch athena-ddl <stream>`: the Athena table over a stream's Parquet archive.

use aws_config::SdkConfig;
use chrono::{Duration, Utc};
use kinarch_core::domain::athena::athena_table_name;
use kinarch_core::domain::parquet::stream_prefix;
use kinarch_core::parquet::athena_ddl;

use crate::cli::{AthenaDdlArgs, GlobalArgs};
use crate::failure::Failure;

/// How far before the Parquet archive's start its oldest files may be: records archived
/// from the stream's backlog keep their arrival hour, and a stream keeps at most 365 days.
const LONGEST_RETENTION_DAYS: i64 = 365;

/// Prints the statement on standard output.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: AthenaDdlArgs,
) -> Result<(), Failure> {
    let stream = args.stream.name.clone();
    let (archive, target) =
        super::parquet_archive(sdk, global, stream.clone(), args.parquet.clone()).await?;
    let first_day = match args.first_day {
        Some(day) => day,
        None => {
            let start = archive.parquet_start().await?.unwrap_or_else(Utc::now);
            (start - Duration::days(LONGEST_RETENTION_DAYS)).date_naive()
        }
    };
    let table = match args.table_name {
        Some(name) if athena_table_name(&name) == name => name,
        Some(name) => {
            return Err(Failure::Usage(format!(
                "--table-name {name:?}: Athena table names are lower-case letters, digits and \
                 '_', not starting with a digit (e.g. {})",
                athena_table_name(&name)
            )));
        }
        None => athena_table_name(&format!("{stream}_parquet")),
    };
    let location = format!(
        "s3://{}/{}",
        target.bucket(),
        stream_prefix(&target, &stream)
    );
    print!("{}", athena_ddl(&table, &location, first_day));
    Ok(())
}
