//! The library's error type.

use crate::aws::item::ItemError;
use crate::domain::config::{ArchiveMode, ArchiveModeError, ConfigError, TtlError};
use crate::domain::event::EventError;
use crate::domain::names::{NameError, StreamName, TableName};
use crate::domain::sequence::SequenceNumberError;
use crate::domain::timefmt::TimeError;

/// Everything that can go wrong in kinarch. Each message says what was wrong and, where
/// there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stream or table name, or an ARN, is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A sequence number is not valid.
    #[error(transparent)]
    SequenceNumber(#[from] SequenceNumberError),
    /// An archive mode is not ALL or LATEST.
    #[error(transparent)]
    Mode(#[from] ArchiveModeError),
    /// A TTL is not valid.
    #[error(transparent)]
    Ttl(#[from] TtlError),
    /// A stream's archive tags are not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A Lambda event cannot be archived.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An archived item does not follow the table contract.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// The stream does not exist (or is not visible with these credentials).
    #[error(
        "stream {stream} was not found in region {region}: check the stream name and the region \
         (--region, AWS_REGION or the profile's region)"
    )]
    StreamNotFound {
        /// The stream asked for.
        stream: StreamName,
        /// The region asked in.
        region: String,
    },
    /// The archive table does not exist.
    #[error(
        "archive table {table} of stream {stream} does not exist in region {region}: run \
         `kinarch setup {stream} {mode} {region}` to create it"
    )]
    TableNotFound {
        /// The table looked for.
        table: TableName,
        /// The stream it archives.
        stream: StreamName,
        /// The stream's archive mode.
        mode: ArchiveMode,
        /// The region looked in.
        region: String,
    },
    /// The stream has no `StreamArchiveMode` tag: nobody set it up for archiving, so there
    /// is no archive table to read.
    #[error(
        "stream {stream} is not set up for archiving (it has no StreamArchiveMode tag): run \
         `kinarch setup {stream} <ALL|LATEST> {region}` first"
    )]
    StreamNotConfigured {
        /// The stream.
        stream: StreamName,
        /// The region it is in.
        region: String,
    },
    /// A table did not become ACTIVE within the time allowed.
    #[error(
        "table {table} is still {status} after {waited_seconds} s: check it in the DynamoDB \
         console, then run the same `kinarch setup` again (it is safe to re-run)"
    )]
    TableNotActive {
        /// The table.
        table: TableName,
        /// Its last status.
        status: String,
        /// How long we waited.
        waited_seconds: u64,
    },
    /// The table's TTL is on another attribute or is being switched off, so `expireAfter`
    /// cannot be made to expire items.
    #[error(
        "table {table} has TTL {state}, but kinarch archives the expiry in attribute \
         expireAfter: {advice}"
    )]
    TtlConflict {
        /// The table.
        table: TableName,
        /// What DynamoDB reports, e.g. `ENABLED on attribute ttl`.
        state: String,
        /// What to do.
        advice: String,
    },
    /// A time is neither RFC 3339 nor epoch seconds.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A table exists but its key schema does not fit the archive mode.
    #[error("table {table} has key schema {found} but {mode} mode needs {expected}: {advice}")]
    KeySchemaMismatch {
        /// The table.
        table: TableName,
        /// The mode it was meant for.
        mode: ArchiveMode,
        /// Key schema found.
        found: String,
        /// Key schema needed.
        expected: String,
        /// What to do.
        advice: String,
    },
    /// An AWS call failed for a reason not covered above.
    #[error("{operation} failed: {message}")]
    Aws {
        /// The API operation, e.g. `DynamoDB.BatchWriteItem`.
        operation: &'static str,
        /// The service's message, with the error code.
        message: String,
        /// Throttling, a 5xx answer, a timeout or a broken connection: the same call may
        /// succeed later (see [`Error::is_transient`]).
        transient: bool,
    },
    /// The checkpoints of `kinarch archive` cannot be read or written.
    #[error("checkpoints in {location}: {message}")]
    Checkpoint {
        /// Where the checkpoints are (`table NAME` or `file PATH`).
        location: String,
        /// What went wrong, and what to do.
        message: String,
    },
    /// `kinarch archive` could not archive a shard's records after repeated attempts. The
    /// checkpoint stays before them, so nothing is skipped: a new run tries again.
    #[error(
        "shard {shard} of stream {stream}: the records from sequence number {sequence_number} \
         could not be archived after {attempts} attempts (last error: {reason}); the checkpoint \
         stays before them, so running `kinarch archive {stream}` again retries them"
    )]
    ArchiveStalled {
        /// The stream.
        stream: StreamName,
        /// The shard.
        shard: String,
        /// The lowest sequence number that did not land.
        sequence_number: String,
        /// Attempts made.
        attempts: u32,
        /// The writer's first error of the last attempt.
        reason: String,
    },
    /// A caller passed options that cannot work together.
    #[error("{0}")]
    InvalidInput(String),
}

impl Error {
    /// Whether trying the same thing again later may succeed: AWS throttled the call,
    /// answered with a server error, or did not answer in time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Aws {
                transient: true,
                ..
            }
        )
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
