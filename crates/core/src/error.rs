//! The library's error type.

use crate::aws::error::AwsErrorKind;
use crate::aws::item::ItemError;
use crate::domain::config::{ArchiveMode, ArchiveModeError, ConfigError, TtlError};
use crate::domain::event::EventError;
use crate::domain::names::{NameError, StreamName, TableName};
use crate::domain::sequence::{SequenceNumber, SequenceNumberError};
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
    /// A named profile (`--profile`) is in neither AWS config file.
    #[error(
        "profile {profile} not found in {files}: check the name (`aws configure list-profiles` \
         lists them), or create it with `aws configure --profile {profile}`"
    )]
    ProfileNotFound {
        /// The profile asked for.
        profile: String,
        /// The files looked in.
        files: String,
    },
    /// A replay between accounts or regions failed on one side: which, and as whom.
    #[error("{side} {identity}: {source}")]
    Replay {
        /// Reading the source or writing the target.
        side: ReplaySide,
        /// The credentials used ([`crate::aws::TargetAccess::identity`]).
        identity: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
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
    /// No archive table was found for a stream whose tags could not be read, or the table
    /// named with `--table` does not exist.
    #[error("no archive table {looked_for} exists in region {region} for stream {stream}")]
    NoArchiveTable {
        /// The stream.
        stream: StreamName,
        /// The region looked in.
        region: String,
        /// The table or tables looked for.
        looked_for: String,
    },
    /// Several tables could be the archive of a stream that can no longer be read.
    #[error(
        "stream {stream} cannot be read and several tables in region {region} could hold its \
         archive: {tables}; pass --table NAME to pick one"
    )]
    AmbiguousArchive {
        /// The stream.
        stream: StreamName,
        /// The region.
        region: String,
        /// The tables found, comma-separated.
        tables: String,
    },
    /// The archive table is tagged (`ArchivedStream`) as the archive of another stream:
    /// reading it as this stream's would replay that stream's records as this one's.
    #[error(
        "table {table} is the archive of stream {archived} (its ArchivedStream tag), not of \
         stream {stream}: name {archived}'s archive as {archived}, or pass --force to read it \
         as {stream}'s anyway"
    )]
    ArchiveOfAnotherStream {
        /// The table.
        table: TableName,
        /// The stream it was read for.
        stream: StreamName,
        /// The stream its tag names.
        archived: String,
    },
    /// A table named as an archive has a key schema that fits neither mode.
    #[error("table {table} has key schema {found}, which is not an archive table's: {expected}")]
    NotAnArchiveTable {
        /// The table.
        table: TableName,
        /// Its key schema.
        found: String,
        /// The archive key schemas.
        expected: String,
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
    /// A new time index was still being built when setup stopped waiting. Reads scan
    /// the table until it is ACTIVE, so nothing is wrong, only slower.
    #[error(
        "index {index} of table {table} is still {status} after {waited_seconds} s (DynamoDB \
         fills a new index with the table's items, which takes a while on a large table): \
         until it is ACTIVE, time windows are read with a Scan; `kinarch status` shows when \
         it is ready, and the same `kinarch setup` can be re-run safely"
    )]
    IndexNotActive {
        /// The table.
        table: TableName,
        /// The index.
        index: String,
        /// Its last status (`CREATING`, `CREATING (backfilling)`).
        status: String,
        /// How long we waited.
        waited_seconds: u64,
    },
    /// An export needs point-in-time recovery, which is off for the table.
    #[error(
        "point-in-time recovery is off for table {table}, and a DynamoDB export reads from it: \
         turn it on with `aws dynamodb update-continuous-backups --table-name {table} \
         --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true`, then export \
         again"
    )]
    PointInTimeRecoveryOff {
        /// The table.
        table: TableName,
    },
    /// An export did not finish within the time kinarch waits; it goes on without kinarch.
    #[error(
        "the export {arn} is still running after {waited_seconds} s; it goes on without \
         kinarch: follow it with `aws dynamodb describe-export --export-arn {arn}`"
    )]
    ExportStillRunning {
        /// The export.
        arn: String,
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
    /// Options of a selection that select nothing or contradict each other.
    #[error(transparent)]
    Selection(#[from] crate::domain::selection::SelectionError),
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
        /// What kind of failure it was: retries and hints follow it.
        kind: AwsErrorKind,
        /// The service's error code (`ValidationException`), for an answer from AWS.
        code: Option<String>,
        /// The HTTP status, for an answer from AWS.
        status: Option<u16>,
        /// For people: the code, the service's message and the status, or the chain of
        /// causes when no answer came.
        message: String,
        /// The SDK's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The payload of an overflowed record (archived in S3, see
    /// [`crate::domain::overflow`]) cannot be read. Concerns that record only: a reader's
    /// stream goes on with the next one.
    #[error(
        "record {partition_key}/{sequence_number}: its archived payload {location} cannot be \
         read: {reason}"
    )]
    PayloadUnavailable {
        /// The record's partition key.
        partition_key: String,
        /// The record's sequence number.
        sequence_number: SequenceNumber,
        /// The record's sub-sequence number (user records of a KPL container).
        sub_sequence_number: Option<u64>,
        /// `s3://BUCKET/KEY`.
        location: String,
        /// What went wrong.
        reason: String,
        /// The failed call, when there is one.
        #[source]
        source: Option<Box<Error>>,
    },
    /// A read of the Parquet archive of a stream that has none.
    #[error(
        "stream {stream} has no Parquet archive (no ArchiveParquet tag): read its table \
         (--source table), or name where its files are with --parquet s3://BUCKET[/PREFIX]"
    )]
    NoParquetArchive {
        /// The stream.
        stream: StreamName,
    },
    /// A file of the Parquet archive cannot be read or decoded (missing, cut short, not
    /// Parquet, not the contract's schema: see [`crate::parquet`]). Concerns that file only:
    /// a read goes on with the other files.
    #[error(
        "Parquet file {location} cannot be read: {reason}; its records are left out and the \
         other files are read. Check the object (`aws s3 ls {location}`): restore it from a \
         backup or an earlier version, or move it out of the archive's prefix if it is no \
         archive file"
    )]
    ParquetFile {
        /// The file (`s3://BUCKET/KEY`).
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object in a storage class that must be restored before it can be read (S3
    /// Glacier Flexible Retrieval, Deep Archive: `InvalidObjectState`), put there by a
    /// lifecycle rule of the bucket's owner.
    #[error(
        "{location} is in storage class {storage_class} and must be restored before it can be \
         read: run `aws s3api restore-object --bucket {bucket} --key '{key}' --restore-request \
         '{{\"Days\":7,\"GlacierJobParameters\":{{\"Tier\":\"Standard\"}}}}'` and read again once \
         the restore is done (hours; `aws s3api head-object` shows it)"
    )]
    ObjectNeedsRestore {
        /// `s3://BUCKET/KEY`.
        location: String,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Its storage class, as S3 names it (`GLACIER`, `DEEP_ARCHIVE`).
        storage_class: String,
    },
    /// A bucket given to `kinarch setup` (overflow or Parquet) cannot take the archiver's
    /// writes.
    #[error("{} {target} cannot be used: {reason}; or pass another {}", .role.name(), .role.options())]
    BucketUnusable {
        /// What the bucket is for.
        role: crate::domain::overflow::BucketUse,
        /// `s3://BUCKET/PREFIX`.
        target: String,
        /// What went wrong.
        reason: String,
        /// The failed call.
        #[source]
        source: Option<Box<Error>>,
    },
    /// The checkpoints of `kinarch archive` cannot be read or written.
    #[error("checkpoints in {location}: {message}")]
    Checkpoint {
        /// Where the checkpoints are (`table NAME` or `file PATH`).
        location: String,
        /// What went wrong, and what to do.
        message: String,
        /// The error behind it (a failed AWS call), when there is one.
        #[source]
        source: Option<Box<Error>>,
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
        /// That error, with its kind and the failed call behind it.
        #[source]
        source: Option<Box<Error>>,
    },
    /// `kinarch tier` of an archive whose table holds no history to move (a LATEST table
    /// holds the state; mode NONE has no table).
    #[error("stream {stream}'s archive cannot be tiered: {reason}")]
    NotTierable {
        /// The stream.
        stream: StreamName,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The files of a shard-hour of the Parquet archive were not compacted (see
    /// [`crate::compact`]). Nothing archived is lost: the files it would have replaced are
    /// deleted only after the new file is written and read back, and readers de-duplicate
    /// the files a failure leaves side by side.
    #[error(
        "{output} was not compacted: {reason}; every record is still in the archive (readers \
         keep one row per record of the files left): run `kinarch compact` again"
    )]
    Compaction {
        /// The file compaction would have written (`s3://BUCKET/KEY`).
        output: String,
        /// What went wrong.
        reason: String,
        /// The error behind it (a failed AWS call, an unreadable file), when there is one.
        #[source]
        source: Option<Box<Error>>,
    },
    /// A caller passed options that cannot work together.
    #[error("{0}")]
    InvalidInput(String),
    /// Reading or writing a local file or standard input/output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written, e.g. `reading standard input`.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something that should not happen did (an SDK request could not be built): a bug in
    /// kinarch, not a fault of the input.
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

impl Error {
    /// Whether trying the same thing again later may succeed: AWS throttled the call,
    /// answered with a server error, or did not answer in time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Aws { kind, .. } if kind.is_transient())
    }

    /// Whether a connection was refused somewhere in this error's chain of sources: nothing
    /// listens at the endpoint (a wrong `--endpoint-url` or port, a local emulator that is
    /// not running). Still [transient](Self::is_transient) (an endpoint may come back while
    /// a run goes on), but at start-up it is no passing fault.
    pub fn is_connection_refused(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = next {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
            {
                return true;
            }
            next = error.source();
        }
        false
    }

    /// An [`Error::Aws`] with its message extended by `more` (what it means here, what to
    /// do), kind, code, status and source kept; other errors unchanged.
    pub fn explained(self, more: impl FnOnce() -> String) -> Self {
        match self {
            Error::Aws {
                operation,
                kind,
                code,
                status,
                message,
                source,
            } => Error::Aws {
                operation,
                kind,
                code,
                status,
                message: format!("{message}; {}", more()),
                source,
            },
            other => other,
        }
    }

    /// Whether this error concerns one record or one file only (an item that breaks the
    /// contract, a payload that cannot be fetched, a Parquet file that cannot be read): a
    /// reader's stream goes on after it.
    pub fn is_per_record(&self) -> bool {
        matches!(
            self,
            Error::Item(_) | Error::PayloadUnavailable { .. } | Error::ParquetFile { .. }
        )
    }

    /// The kind of a failed AWS call; `None` for other errors.
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            Error::Aws { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// An [`Error::Aws`] with no SDK error behind it (an answer that lacks a field, say).
    pub fn aws(operation: &'static str, kind: AwsErrorKind, message: impl Into<String>) -> Self {
        Error::Aws {
            operation,
            kind,
            code: None,
            status: None,
            message: message.into(),
            source: None,
        }
    }
}

/// The side of a replay an [`Error::Replay`] happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySide {
    /// Reading the archive of this stream.
    Source(StreamName),
    /// Writing the target, named by ARN or name.
    Target(String),
    /// Reading the target back (`--verify`).
    TargetReadBack(String),
}

impl std::fmt::Display for ReplaySide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplaySide::Source(stream) => write!(f, "reading the archive of {stream}"),
            ReplaySide::Target(target) => write!(f, "writing the target {target}"),
            ReplaySide::TargetReadBack(target) => write!(f, "reading back the target {target}"),
        }
    }
}

impl Error {
    /// This error, labelled with the side of the replay it happened on (unchanged when it
    /// is labelled already).
    pub fn on_side(self, side: ReplaySide, identity: &str) -> Self {
        match self {
            labelled @ Error::Replay { .. } => labelled,
            other => Error::Replay {
                side,
                identity: identity.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
