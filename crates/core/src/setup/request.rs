//! What `kinarch setup` is asked to do, and the checks that need nothing but the request.

use crate::aws::tables::Billing;
use crate::domain::config::{ArchiveMode, ArchiveTtl};
use crate::domain::names::{StreamName, TableName};
use crate::domain::overflow::OverflowTarget;
use crate::error::Error;

use super::plan::CurrentTags;

/// What to do with the stream's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlChange {
    /// Keep what the stream's `ArchiveTTL` tag says (no tag: no expiry). Re-running setup
    /// without mentioning a TTL never drops an expiry policy by accident.
    #[default]
    Keep,
    /// Archived items expire this long after archiving.
    Expire(ArchiveTtl),
    /// Archived items never expire: the `ArchiveTTL` tag is removed.
    Off,
}

/// What to do with a bucket the stream's tags name: the overflow bucket (tag
/// `ArchiveOverflow`, see [`crate::domain::overflow`]) or the Parquet archive (tag
/// `ArchiveParquet`, see [`crate::domain::parquet`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BucketChange {
    /// Keep what the stream's tag says (no overflow tag: records too large for an item are
    /// archived as oversize markers; no Parquet tag: no Parquet files).
    #[default]
    Keep,
    /// Use this bucket and prefix; setup checks first that the bucket exists and takes
    /// writes there.
    Set(OverflowTarget),
    /// Remove the tag.
    Off,
}

/// What to do with the lifecycle rule moving the stream's Parquet files to S3 Glacier Instant
/// Retrieval ([`ColdRule`](crate::domain::parquet::ColdRule)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColdChange {
    /// Leave the rule as it is (or absent).
    #[default]
    Keep,
    /// Files move after this many days (`--parquet-cold-after`).
    After(u64),
    /// Remove the rule (`--no-parquet-cold`): files stay in S3 Standard from now on.
    Off,
}

/// What `kinarch setup` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRequest {
    /// The stream to archive.
    pub stream: StreamName,
    /// Every record (ALL), the newest per key (LATEST), or no table (NONE: Parquet only).
    pub mode: ArchiveMode,
    /// The TTL to set.
    pub ttl: TtlChange,
    /// Billing of the table, if it has to be created.
    pub billing: Billing,
    /// A table to archive into instead of the default one (`--table`): an existing table is
    /// adopted once its key schema fits, and the stream gets the `ArchiveTableName` tag.
    pub table: Option<TableName>,
    /// The overflow bucket to set.
    pub overflow: BucketChange,
    /// The Parquet archive to set (`--parquet`, `--no-parquet`).
    pub parquet: BucketChange,
    /// The Parquet files' cold storage rule (`--parquet-cold-after`, `--no-parquet-cold`).
    pub parquet_cold: ColdChange,
    /// Switch point-in-time recovery on (`--pitr`), which `kinarch export` needs. Setup
    /// never switches it off: that would delete the table's backups.
    pub pitr: bool,
    /// Add the time index (`--time-index`, [`crate::aws::tables::TIME_INDEX`]) so that
    /// time windows are read with a Query per shard. Setup never removes it.
    pub time_index: bool,
}

impl SetupRequest {
    /// A request with the defaults: TTL kept as it is, on-demand billing.
    pub fn new(stream: StreamName, mode: ArchiveMode) -> Self {
        Self {
            stream,
            mode,
            ttl: TtlChange::Keep,
            billing: Billing::OnDemand,
            table: None,
            overflow: BucketChange::Keep,
            parquet: BucketChange::Keep,
            parquet_cold: ColdChange::Keep,
            pitr: false,
            time_index: false,
        }
    }
}

/// Refuses a request that cannot work whatever AWS holds: provisioned billing with 0
/// capacity units.
pub fn check_request(request: &SetupRequest) -> Result<(), Error> {
    if let Billing::Provisioned {
        read_capacity,
        write_capacity,
    } = request.billing
        && (read_capacity == 0 || write_capacity == 0)
    {
        return Err(Error::InvalidInput(format!(
            "provisioned billing needs at least 1 read and 1 write capacity unit \
             (got {read_capacity} read, {write_capacity} write)"
        )));
    }
    Ok(())
}

/// The table setup would use: [`SetupRequest::table`] when given; else the one the
/// `ArchiveTableName` tag names (setup keeps it);
/// else, when the stream is already tagged with this mode, the table that tag points at as
/// written (`all` → `<stream>-archive-all`, a stream set up by the original archiver); else
/// the mode's default name (`<stream>-archive-ALL`).
pub fn planned_table(
    request: &SetupRequest,
    tags: &[(String, String)],
) -> Result<TableName, Error> {
    if let Some(table) = &request.table {
        return Ok(table.clone());
    }
    Ok(CurrentTags::read(&request.stream, tags)?.table_for(request.mode))
}
