//! Where `kinarch archive` remembers how far it got: one checkpoint per shard.
//!
//! A checkpoint says "every record of this shard up to and including sequence number N is in
//! the archive table", and whether the shard is *finished* (closed by a reshard and read to
//! its end, so its children may be read). It is written only after a batch has fully landed,
//! so a restart, even after a crash, resumes with no gap: at worst the last batch is written
//! again, which changes nothing (archive writes are idempotent).
//!
//! # Where checkpoints live
//! By default in a small DynamoDB table next to the archive, named after the archive table:
//! `<archive table>-checkpoints` (e.g. `orders-archive-ALL-checkpoints`), HASH key `shardId`
//! (S), with attributes `sequenceNumber` (S, absent while nothing was archived), `finished`
//! (BOOL), `updatedAt` (S, RFC 3339), `startedAt` (S, RFC 3339, see below), `stream` and
//! `archiveTable` (S: the stream and archive table the checkpoints speak of; a table holding
//! another's is refused). It is created on first use with on-demand billing. Why a table:
//! - it sits in the same account and region as the archive, survives the machine or
//!   container that runs the archiver, and works the same for a laptop and a fleet;
//! - it is named after the archive *table*, not the stream: a checkpoint is a statement about
//!   what one table holds, so after a mode change (ALL to LATEST, a new table) archiving
//!   starts afresh instead of trusting checkpoints that describe another table;
//! - with the default names it matches the `<stream>-archive-*` pattern the archiver's IAM
//!   policy already grants.
//!
//! A local JSON file ([`CheckpointLocation::File`]) is the alternative where no extra table
//! is wanted; it is rewritten atomically (write, sync, rename) after each batch.
//!
//! # Where a shard started (`startedAt`)
//! A shard read from LATEST has no record to checkpoint until one arrives, yet a run that
//! stops before then must not lose the records written before the next run starts. So when
//! a run first opens a shard at LATEST it writes a checkpoint with no `sequenceNumber` and
//! `startedAt` = the time it opened it; a later run without a sequence number for that shard
//! resumes AT_TIMESTAMP [`STARTED_AT_MARGIN`] before that time (so a local clock slightly
//! ahead of AWS's loses nothing; records of those seconds may be archived as well, which
//! changes nothing in LATEST mode and adds at most a few seconds of older records in ALL
//! mode). Checkpoints without the attribute (older kinarch) load as before.
//!
//! # Which table a checkpoint speaks of (`archiveTableId`, `archiveTableCreatedAt`)
//! A checkpoint is true of one table, not of a name: after the archive table is deleted and
//! created again, the records before the checkpoints are not in the new table. So each
//! checkpoint also records the table's [`TableIncarnation`] (DescribeTable's `TableId`
//! and `CreationDateTime`), and [`CheckpointStore::load`] sets aside, as
//! [`Checkpoints::stale`], those written for another incarnation: a run starts those shards
//! where a new archive starts (the run's start position), and says so. A checkpoint written
//! by an older kinarch, without these attributes, is stale when it was updated before the
//! table was created (it cannot speak of a table that did not exist yet); otherwise it is
//! trusted as before, and the next save adds the attributes.
//!
//! One archiver per checkpoint store is the intended use. A second one on the same store
//! loses nothing: each process checkpoints only what it archived itself, so the worst case is
//! a checkpoint that moves back and records that are archived twice after a restart.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::tables::{
    Billing, KeyElement, KeyRole, KeySchema, TableIncarnation, create_table, describe_table,
    wait_until_active,
};
use crate::aws::{aws_error, describe, send_with_retries};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::names::{StreamName, TableName};
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

/// Attribute names of the checkpoint table.
pub mod attr {
    /// S, HASH key: the shard.
    pub const SHARD_ID: &str = "shardId";
    /// S: the last sequence number archived; absent while nothing was.
    pub const SEQUENCE_NUMBER: &str = "sequenceNumber";
    /// BOOL: the shard is closed and was read to its end.
    pub const FINISHED: &str = "finished";
    /// S: when the checkpoint was written, RFC 3339 UTC.
    pub const UPDATED_AT: &str = "updatedAt";
    /// S: when a run first opened the shard at LATEST, RFC 3339 UTC; absent otherwise.
    pub const STARTED_AT: &str = "startedAt";
    /// S: the stream; a table holding checkpoints of another stream is refused.
    pub const STREAM: &str = "stream";
    /// S: the archive table the checkpoint speaks of; a table holding checkpoints of another
    /// archive table is refused.
    pub const ARCHIVE_TABLE: &str = "archiveTable";
    /// S: the archive table's `TableId` when the checkpoint was written, if DynamoDB gave one.
    pub const ARCHIVE_TABLE_ID: &str = "archiveTableId";
    /// S: the archive table's creation time (RFC 3339 UTC) when the checkpoint was written.
    pub const ARCHIVE_TABLE_CREATED_AT: &str = "archiveTableCreatedAt";
}

/// How far one shard is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every record up to and including this one is archived; `None`: none yet.
    pub sequence_number: Option<SequenceNumber>,
    /// The shard is closed and every record of it is archived.
    pub finished: bool,
    /// When it was written, RFC 3339 UTC.
    pub updated_at: String,
    /// When a run first opened the shard at LATEST (see the [module documentation](self));
    /// `None` for other starts and for checkpoints written by older kinarch.
    pub started_at: Option<DateTime<Utc>>,
    /// The archive table it was written for, as loaded (unknown for checkpoints of older
    /// kinarch); a save always records the store's table.
    pub written_for: TableIncarnation,
}

/// How much earlier than a shard's `startedAt` a later run resumes it (AT_TIMESTAMP).
pub const STARTED_AT_MARGIN: Duration = Duration::from_secs(5);

impl Checkpoint {
    /// A checkpoint written now.
    pub fn now(sequence_number: Option<SequenceNumber>, finished: bool) -> Self {
        Self {
            sequence_number,
            finished,
            updated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            started_at: None,
            written_for: TableIncarnation::default(),
        }
    }

    /// The checkpoint of a shard opened at LATEST at `time`, before any record of it was
    /// archived.
    pub fn started(time: DateTime<Utc>) -> Self {
        Self {
            started_at: Some(time),
            ..Self::now(None, false)
        }
    }

    /// Whether this checkpoint speaks of the archive table `table` (see the
    /// [module documentation](self)): not when it was written for another incarnation of
    /// the table's name, nor, without a record of which, when it was updated before `table`
    /// was created.
    pub fn speaks_of(&self, table: &TableIncarnation) -> bool {
        if self.written_for.differs_from(table) {
            return false;
        }
        let unrecorded = self.written_for == TableIncarnation::default();
        let updated = DateTime::parse_from_rfc3339(&self.updated_at).ok();
        match (unrecorded, updated, table.created_at) {
            (true, Some(updated), Some(created)) => updated >= created,
            _ => true,
        }
    }

    /// Where a run resumes a shard that has this checkpoint but no sequence number: the time
    /// an earlier run opened it at LATEST, less [`STARTED_AT_MARGIN`].
    pub fn resume_time(&self) -> Option<DateTime<Utc>> {
        let margin = chrono::Duration::from_std(STARTED_AT_MARGIN).expect("a small margin");
        self.started_at.map(|time| time - margin)
    }
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Where checkpoints are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointLocation {
    /// A DynamoDB table (HASH `shardId`), created on first use.
    Table(TableName),
    /// A local JSON file, created on first use.
    File(PathBuf),
}

impl CheckpointLocation {
    /// The default: table `<archive table>-checkpoints`. Fails when that name would be longer
    /// than DynamoDB allows (an `ArchiveTableName` tag near 255 characters).
    pub fn default_for(config: &StreamArchiveConfig) -> Result<Self, Error> {
        let name = format!("{}-checkpoints", config.table);
        TableName::new(&name).map(Self::Table).map_err(|_| {
            Error::InvalidInput(format!(
                "the default checkpoint table name {name:?} is longer than DynamoDB's 255 \
                 characters: choose one with --checkpoint-table NAME, or use --checkpoint-file PATH"
            ))
        })
    }
}

impl fmt::Display for CheckpointLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointLocation::Table(table) => write!(f, "table {table}"),
            CheckpointLocation::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// How long a checkpoint write is retried on throttling and 5xx answers before the run
/// stops with an error (the records stay archived; only the checkpoint lags).
const SAVE_RETRY_BUDGET: Duration = Duration::from_secs(60);
/// How long reading the checkpoints is retried on throttling and 5xx answers.
const LOAD_RETRY_BUDGET: Duration = Duration::from_secs(60);
/// How long a new checkpoint table may take to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Reads and writes checkpoints. Shared by all shards of a run.
#[derive(Debug)]
pub struct CheckpointStore {
    location: CheckpointLocation,
    /// The archive table as it is now: what saves record, what loads compare with.
    archive: TableIncarnation,
    inner: Inner,
}

/// The checkpoints of a store, split by whether they speak of the archive table as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// Checkpoints of the archive table as it is, by shard id: where runs resume.
    pub current: HashMap<String, Checkpoint>,
    /// Checkpoints written for an earlier table of the same name (deleted and created
    /// again), by shard id: ignored, since the records before them are not in this table.
    pub stale: BTreeMap<String, Checkpoint>,
}

impl Checkpoints {
    /// Splits `all` by [`Checkpoint::speaks_of`] `archive`.
    pub fn split(all: HashMap<String, Checkpoint>, archive: &TableIncarnation) -> Self {
        let mut checkpoints = Self::default();
        for (shard, checkpoint) in all {
            if checkpoint.speaks_of(archive) {
                checkpoints.current.insert(shard, checkpoint);
            } else {
                checkpoints.stale.insert(shard, checkpoint);
            }
        }
        checkpoints
    }

    /// What a run tells about stale checkpoints, if there are any: how many, of which table,
    /// and that those shards start at `start` instead.
    pub fn stale_note(
        &self,
        archive_table: &TableName,
        start: impl fmt::Display,
    ) -> Option<String> {
        let (_, example) = self.stale.iter().next()?;
        let earlier = match example.written_for == TableIncarnation::default() {
            true => format!("updated {}, before it was created", example.updated_at),
            false => format!("written for the table {}", example.written_for),
        };
        Some(format!(
            "{} checkpoint(s) speak of an earlier table {archive_table} ({earlier}): the table \
             was deleted and created again, and the records before them are not in it, so they \
             are ignored and those shards start at {start}",
            self.stale.len()
        ))
    }
}

#[derive(Debug)]
enum Inner {
    Table {
        dynamodb: DynamoDbClient,
        table: TableName,
        stream: StreamName,
        archive_table: TableName,
    },
    File {
        path: PathBuf,
        state: Mutex<FileState>,
    },
}

/// The checkpoint file's format this kinarch writes: 2 added each checkpoint's
/// `archiveTableId` and `archiveTableCreatedAt`; version 1 files load as checkpoints of
/// unknown incarnation.
const FILE_FORMAT: u32 = 2;

/// The checkpoint file's content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileState {
    /// Format version, 1 or [`FILE_FORMAT`].
    kinarch_checkpoints: u32,
    stream: String,
    archive_table: String,
    shards: BTreeMap<String, FileCheckpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileCheckpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_number: Option<SequenceNumber>,
    finished: bool,
    updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive_table_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive_table_created_at: Option<String>,
}

/// The key schema of the checkpoint table.
fn table_key() -> KeySchema {
    KeySchema(vec![KeyElement {
        role: KeyRole::Hash,
        name: attr::SHARD_ID.to_owned(),
        attribute_type: "S".to_owned(),
    }])
}

impl CheckpointStore {
    /// Opens the checkpoints of `config`'s archive at `location`, creating the table (on
    /// demand billing, waiting until it is ACTIVE) or the file if it does not exist yet.
    /// `archive` is the archive table as DescribeTable shows it now: saves record it, loads
    /// set aside checkpoints of another (see [`Checkpoints`]).
    ///
    /// A table with another key schema, a table holding checkpoints of another stream or
    /// archive table (their `stream` and `archiveTable` attributes), or a file written for
    /// another stream or archive table, is an error: its checkpoints would describe other
    /// records.
    pub async fn open(
        dynamodb: &DynamoDbClient,
        location: CheckpointLocation,
        config: &StreamArchiveConfig,
        archive: TableIncarnation,
    ) -> Result<Self, Error> {
        let inner = match &location {
            CheckpointLocation::Table(table) => {
                open_table(dynamodb, table, &location).await?;
                Inner::Table {
                    dynamodb: dynamodb.clone(),
                    table: table.clone(),
                    stream: config.stream.clone(),
                    archive_table: config.table.clone(),
                }
            }
            CheckpointLocation::File(path) => {
                let state = open_file(path, config, &location)?;
                Inner::File {
                    path: path.clone(),
                    state: Mutex::new(state),
                }
            }
        };
        let store = Self {
            location,
            archive,
            inner,
        };
        if matches!(store.inner, Inner::Table { .. }) {
            // Refuses a table holding checkpoints of another stream or archive table now,
            // before anything is read (the file's header was checked above).
            store.load().await?;
        }
        Ok(store)
    }

    /// Where the checkpoints are.
    pub fn location(&self) -> &CheckpointLocation {
        &self.location
    }

    fn error(&self, message: String) -> Error {
        Error::Checkpoint {
            location: self.location.to_string(),
            message,
            source: None,
        }
    }

    /// A checkpoint error caused by a failed AWS call, which stays its source.
    fn failed_call(&self, message: String, cause: Error) -> Error {
        Error::Checkpoint {
            location: self.location.to_string(),
            message,
            source: Some(Box::new(cause)),
        }
    }

    /// Every checkpoint, split by whether it speaks of the archive table as it is now.
    pub async fn load(&self) -> Result<Checkpoints, Error> {
        Ok(Checkpoints::split(self.load_all().await?, &self.archive))
    }

    /// Every checkpoint, by shard id.
    async fn load_all(&self) -> Result<HashMap<String, Checkpoint>, Error> {
        match &self.inner {
            Inner::File { state, .. } => state
                .lock()
                .expect("checkpoint lock")
                .shards
                .iter()
                .map(|(shard, c)| {
                    Ok((
                        shard.clone(),
                        Checkpoint {
                            sequence_number: c.sequence_number.clone(),
                            finished: c.finished,
                            updated_at: c.updated_at.clone(),
                            started_at: self.started_at(shard, c.started_at.as_deref())?,
                            written_for: TableIncarnation {
                                table_id: c.archive_table_id.clone(),
                                created_at: self
                                    .time(shard, c.archive_table_created_at.as_deref())?,
                            },
                        },
                    ))
                })
                .collect(),
            Inner::Table {
                dynamodb, table, ..
            } => {
                let mut checkpoints = HashMap::new();
                let mut start = None;
                loop {
                    let scan = dynamodb
                        .scan()
                        .table_name(table.as_str())
                        .consistent_read(true)
                        .set_exclusive_start_key(start);
                    let output = send_with_retries(
                        LOAD_RETRY_BUDGET,
                        || scan.clone().send(),
                        |err| {
                            self.failed_call(
                                format!("DynamoDB.Scan failed: {}", describe(&err)),
                                aws_error("DynamoDB.Scan", err),
                            )
                        },
                    )
                    .await?;
                    for item in output.items.unwrap_or_default() {
                        let (shard, checkpoint) = self.checkpoint_of(&item)?;
                        checkpoints.insert(shard, checkpoint);
                    }
                    // An empty LastEvaluatedKey ends the scan as a missing one does (as in
                    // `read`): sent back as ExclusiveStartKey it would start the scan over,
                    // so an endpoint answering `{}` would keep the run from ever starting.
                    start = output.last_evaluated_key.filter(|key| !key.is_empty());
                    if start.is_none() {
                        return Ok(checkpoints);
                    }
                }
            }
        }
    }

    /// A `startedAt` text read back.
    fn started_at(&self, shard: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
        self.time_of(shard, attr::STARTED_AT, text)
    }

    /// An `archiveTableCreatedAt` text read back.
    fn time(&self, shard: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
        self.time_of(shard, attr::ARCHIVE_TABLE_CREATED_AT, text)
    }

    fn time_of(
        &self,
        shard: &str,
        name: &str,
        text: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        text.map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    self.error(format!(
                        "shard {shard}: {name} {text:?} is not an RFC 3339 time ({e})"
                    ))
                })
        })
        .transpose()
    }

    fn checkpoint_of(
        &self,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<(String, Checkpoint), Error> {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
        };
        let shard = text(attr::SHARD_ID)
            .ok_or_else(|| self.error(format!("an item has no {} string", attr::SHARD_ID)))?;
        // A checkpoint of another stream or archive table describes other records: the
        // table is refused, as a checkpoint file of another stream is.
        if let Inner::Table {
            stream,
            archive_table,
            ..
        } = &self.inner
        {
            let (their_stream, their_table) = (text(attr::STREAM), text(attr::ARCHIVE_TABLE));
            if their_stream.is_some_and(|s| s != stream.as_str())
                || their_table.is_some_and(|t| t != archive_table.as_str())
            {
                return Err(self.error(format!(
                    "the table holds checkpoints of stream {} archived into table {} (shard \
                     {shard}), not of stream {stream} archived into table {archive_table}: \
                     choose another with --checkpoint-table NAME",
                    their_stream.unwrap_or("?"),
                    their_table.unwrap_or("?"),
                )));
            }
        }
        let sequence_number = text(attr::SEQUENCE_NUMBER)
            .map(SequenceNumber::parse)
            .transpose()
            .map_err(|e| self.error(format!("shard {shard}: {e}")))?;
        let finished = matches!(item.get(attr::FINISHED), Some(AttributeValue::Bool(true)));
        Ok((
            shard.to_owned(),
            Checkpoint {
                sequence_number,
                finished,
                updated_at: text(attr::UPDATED_AT).unwrap_or_default().to_owned(),
                started_at: self.started_at(shard, text(attr::STARTED_AT))?,
                written_for: TableIncarnation {
                    table_id: text(attr::ARCHIVE_TABLE_ID).map(str::to_owned),
                    created_at: self.time(shard, text(attr::ARCHIVE_TABLE_CREATED_AT))?,
                },
            },
        ))
    }

    /// Writes the checkpoint of `shard`.
    pub async fn save(&self, shard: &str, checkpoint: &Checkpoint) -> Result<(), Error> {
        match &self.inner {
            Inner::File { path, state } => {
                let mut state = state.lock().expect("checkpoint lock");
                state.shards.insert(
                    shard.to_owned(),
                    FileCheckpoint {
                        sequence_number: checkpoint.sequence_number.clone(),
                        finished: checkpoint.finished,
                        updated_at: checkpoint.updated_at.clone(),
                        started_at: checkpoint.started_at.as_ref().map(rfc3339),
                        archive_table_id: self.archive.table_id.clone(),
                        archive_table_created_at: self.archive.created_at.as_ref().map(rfc3339),
                    },
                );
                state.kinarch_checkpoints = FILE_FORMAT;
                // Small and rare (one write per archived batch): written in place of an
                // async file API, under the lock so that writes never interleave.
                write_file(path, &state).map_err(|message| self.error(message))
            }
            Inner::Table {
                dynamodb,
                table,
                stream,
                archive_table,
            } => {
                let s = |v: &str| AttributeValue::S(v.to_owned());
                let mut item = HashMap::from([
                    (attr::SHARD_ID.to_owned(), s(shard)),
                    (
                        attr::FINISHED.to_owned(),
                        AttributeValue::Bool(checkpoint.finished),
                    ),
                    (attr::UPDATED_AT.to_owned(), s(&checkpoint.updated_at)),
                    (attr::STREAM.to_owned(), s(stream.as_str())),
                    (attr::ARCHIVE_TABLE.to_owned(), s(archive_table.as_str())),
                ]);
                if let Some(seq) = &checkpoint.sequence_number {
                    item.insert(attr::SEQUENCE_NUMBER.to_owned(), s(seq.as_str()));
                }
                if let Some(time) = &checkpoint.started_at {
                    item.insert(attr::STARTED_AT.to_owned(), s(&rfc3339(time)));
                }
                if let Some(id) = &self.archive.table_id {
                    item.insert(attr::ARCHIVE_TABLE_ID.to_owned(), s(id));
                }
                if let Some(time) = &self.archive.created_at {
                    item.insert(attr::ARCHIVE_TABLE_CREATED_AT.to_owned(), s(&rfc3339(time)));
                }
                let put = dynamodb
                    .put_item()
                    .table_name(table.as_str())
                    .set_item(Some(item));
                send_with_retries(
                    SAVE_RETRY_BUDGET,
                    || put.clone().send(),
                    |err| {
                        let hint = if err
                            .as_service_error()
                            .is_some_and(PutItemError::is_resource_not_found_exception)
                        {
                            " (the table was deleted while archiving)"
                        } else {
                            ""
                        };
                        self.failed_call(
                            format!(
                                "DynamoDB.PutItem of the checkpoint of {shard} failed{hint}: {}",
                                describe(&err)
                            ),
                            aws_error("DynamoDB.PutItem", err),
                        )
                    },
                )
                .await?;
                Ok(())
            }
        }
    }
}

/// Makes sure the checkpoint table exists with key `shardId` and is ACTIVE.
async fn open_table(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    location: &CheckpointLocation,
) -> Result<(), Error> {
    let error = |message: String| Error::Checkpoint {
        location: location.to_string(),
        message,
        source: None,
    };
    let info = match describe_table(dynamodb, table).await? {
        Some(info) => info,
        None => {
            tracing::info!(table = %table, "creating the checkpoint table (on-demand billing)");
            create_table(dynamodb, table, &table_key(), Billing::OnDemand).await?;
            wait_until_active(
                dynamodb,
                table,
                TABLE_ACTIVE_TIMEOUT,
                Duration::from_millis(500),
            )
            .await?
        }
    };
    if info.key_schema != table_key() {
        return Err(error(format!(
            "the table has key {} but a checkpoint table needs {}: it is not a kinarch \
             checkpoint table; choose another with --checkpoint-table NAME",
            info.key_schema,
            table_key()
        )));
    }
    if !info.is_active() {
        wait_until_active(
            dynamodb,
            table,
            TABLE_ACTIVE_TIMEOUT,
            Duration::from_millis(500),
        )
        .await?;
    }
    Ok(())
}

/// Reads the checkpoint file, or creates it (so that an unwritable path fails now, not
/// after the first batch).
fn open_file(
    path: &Path,
    config: &StreamArchiveConfig,
    location: &CheckpointLocation,
) -> Result<FileState, Error> {
    let error = |message: String| Error::Checkpoint {
        location: location.to_string(),
        message,
        source: None,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let state: FileState = serde_json::from_slice(&bytes).map_err(|e| {
                error(format!(
                    "the file is not a kinarch checkpoint file ({e}); give another path"
                ))
            })?;
            if !(1..=FILE_FORMAT).contains(&state.kinarch_checkpoints) {
                return Err(error(format!(
                    "format version {} is not supported by this kinarch (it reads versions 1 \
                     to {FILE_FORMAT})",
                    state.kinarch_checkpoints
                )));
            }
            if state.stream != config.stream.as_str()
                || state.archive_table != config.table.as_str()
            {
                return Err(error(format!(
                    "the file holds checkpoints of stream {} archived into table {}, not of \
                     stream {} archived into table {}: give another path",
                    state.stream, state.archive_table, config.stream, config.table
                )));
            }
            Ok(state)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let state = FileState {
                kinarch_checkpoints: FILE_FORMAT,
                stream: config.stream.to_string(),
                archive_table: config.table.to_string(),
                shards: BTreeMap::new(),
            };
            write_file(path, &state).map_err(error)?;
            Ok(state)
        }
        Err(err) => Err(error(format!("cannot read it: {err}"))),
    }
}

/// Replaces the file atomically: a crash leaves either the old or the new checkpoints,
/// never a torn file.
fn write_file(path: &Path, state: &FileState) -> Result<(), String> {
    let mut text = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    text.push(b'\n');
    let file_name = path
        .file_name()
        .ok_or_else(|| "the path names no file".to_owned())?;
    let mut temporary = path.to_path_buf();
    temporary.set_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write it: {err}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::ArchiveMode;

    fn config(stream: &str) -> StreamArchiveConfig {
        StreamArchiveConfig::new(StreamName::new(stream).unwrap(), ArchiveMode::All, None)
    }

    /// The archive table the tests' stores speak of.
    fn incarnation() -> TableIncarnation {
        TableIncarnation {
            table_id: Some("4f9b1c2e-0000-4000-8000-000000000001".into()),
            created_at: DateTime::parse_from_rfc3339("2024-05-01T11:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    fn dynamodb() -> DynamoDbClient {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        DynamoDbClient::from_conf(conf)
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kinarch-checkpoint-test-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("checkpoints.json")
    }

    #[test]
    fn default_table_is_named_after_the_archive_table() {
        let location = CheckpointLocation::default_for(&config("orders")).unwrap();
        assert_eq!(
            location,
            CheckpointLocation::Table(TableName::new("orders-archive-ALL-checkpoints").unwrap())
        );
        assert_eq!(location.to_string(), "table orders-archive-ALL-checkpoints");
        let mut long = config("orders");
        long.table = TableName::new(&"t".repeat(250)).unwrap();
        let err = CheckpointLocation::default_for(&long)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--checkpoint-table"), "{err}");
    }

    #[tokio::test]
    async fn file_checkpoints_survive_a_reopen_and_refuse_another_stream() {
        let path = temp_path("reopen");
        let _ = std::fs::remove_file(&path);
        let location = CheckpointLocation::File(path.clone());
        let store = CheckpointStore::open(
            &dynamodb(),
            location.clone(),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap();
        assert!(path.exists(), "created on open");
        assert!(store.load().await.unwrap().current.is_empty());
        let seq = SequenceNumber::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap();
        store
            .save(
                "shardId-000000000001",
                &Checkpoint::now(Some(seq.clone()), false),
            )
            .await
            .unwrap();
        store
            .save("shardId-000000000000", &Checkpoint::now(None, true))
            .await
            .unwrap();

        let again = CheckpointStore::open(
            &dynamodb(),
            location.clone(),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap();
        let loaded = again.load().await.unwrap().current;
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded["shardId-000000000001"].sequence_number, Some(seq));
        assert!(!loaded["shardId-000000000001"].finished);
        assert!(loaded["shardId-000000000000"].finished);
        assert_eq!(loaded["shardId-000000000000"].sequence_number, None);

        let err = CheckpointStore::open(&dynamodb(), location, &config("payments"), incarnation())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stream orders") && err.contains("not of stream payments"),
            "{err}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[tokio::test]
    async fn a_started_at_survives_a_reopen_and_files_without_it_still_load() {
        let path = temp_path("started");
        // Written by a kinarch before `startedAt`.
        std::fs::write(
            &path,
            br#"{"kinarchCheckpoints": 1, "stream": "orders", "archiveTable": "orders-archive-ALL",
                "shards": {"shardId-000000000000": {"sequenceNumber": "7", "finished": false,
                "updatedAt": "2024-05-01T12:00:00.000Z"}}}"#,
        )
        .unwrap();
        let location = CheckpointLocation::File(path.clone());
        let store = CheckpointStore::open(
            &dynamodb(),
            location.clone(),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap();
        let loaded = store.load().await.unwrap().current;
        assert_eq!(loaded["shardId-000000000000"].started_at, None);
        let opened = DateTime::parse_from_rfc3339("2024-05-01T12:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        store
            .save("shardId-000000000001", &Checkpoint::started(opened))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""startedAt": "2024-05-01T12:00:00.250Z""#),
            "{text}"
        );
        let again = CheckpointStore::open(&dynamodb(), location, &config("orders"), incarnation())
            .await
            .unwrap()
            .load()
            .await
            .unwrap()
            .current;
        let started = &again["shardId-000000000001"];
        assert_eq!(
            (started.sequence_number.as_ref(), started.started_at),
            (None, Some(opened))
        );
        assert_eq!(
            started.resume_time(),
            Some(opened - chrono::Duration::seconds(5))
        );
        assert_eq!(
            again["shardId-000000000000"].sequence_number,
            loaded["shardId-000000000000"].sequence_number
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_checkpoint_file_is_refused() {
        let path = temp_path("garbage");
        std::fs::write(&path, b"{\"hello\": 1}").unwrap();
        let err = CheckpointStore::open(
            &dynamodb(),
            CheckpointLocation::File(path.clone()),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a kinarch checkpoint file"), "{err}");
        let unwritable = PathBuf::from("/nonexistent-dir/kinarch/checkpoints.json");
        let err = CheckpointStore::open(
            &dynamodb(),
            CheckpointLocation::File(unwritable),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot write it"), "{err}");
    }

    #[test]
    fn a_checkpoint_speaks_of_the_table_it_was_written_for_only() {
        let table = incarnation();
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let checkpoint = |updated: &str, written_for: TableIncarnation| Checkpoint {
            updated_at: updated.into(),
            written_for,
            ..Checkpoint::now(None, false)
        };
        assert!(checkpoint("2024-05-01T12:00:00Z", table.clone()).speaks_of(&table));
        let recreated = TableIncarnation {
            table_id: Some("another".into()),
            created_at: Some(at("2024-06-01T00:00:00Z")),
        };
        assert!(!checkpoint("2024-05-01T12:00:00Z", table.clone()).speaks_of(&recreated));
        // Written by an older kinarch: before the table existed it cannot speak of it.
        let unrecorded = TableIncarnation::default();
        assert!(!checkpoint("2024-05-01T10:59:59.999Z", unrecorded.clone()).speaks_of(&table));
        assert!(checkpoint("2024-05-01T11:00:00Z", unrecorded.clone()).speaks_of(&table));
        // Nothing to compare with: trusted, as before.
        assert!(checkpoint("not a time", unrecorded).speaks_of(&table));
        assert!(
            checkpoint("2024-05-01T12:00:00Z", table.clone())
                .speaks_of(&TableIncarnation::default())
        );
    }

    #[tokio::test]
    async fn checkpoints_of_a_table_deleted_and_created_again_are_set_aside() {
        let path = temp_path("recreated");
        let _ = std::fs::remove_file(&path);
        let location = CheckpointLocation::File(path.clone());
        let first = CheckpointStore::open(
            &dynamodb(),
            location.clone(),
            &config("orders"),
            incarnation(),
        )
        .await
        .unwrap();
        let seq = SequenceNumber::parse("42").unwrap();
        first
            .save("shardId-000000000000", &Checkpoint::now(Some(seq), false))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for expected in [
            r#""kinarchCheckpoints": 2"#,
            r#""archiveTableId": "4f9b1c2e-0000-4000-8000-000000000001""#,
            r#""archiveTableCreatedAt": "2024-05-01T11:00:00.000Z""#,
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        let recreated = TableIncarnation {
            table_id: Some("4f9b1c2e-0000-4000-8000-000000000002".into()),
            created_at: Some(Utc::now()),
        };
        let second = CheckpointStore::open(&dynamodb(), location, &config("orders"), recreated)
            .await
            .unwrap();
        let loaded = second.load().await.unwrap();
        assert!(loaded.current.is_empty(), "{loaded:?}");
        assert_eq!(
            loaded.stale.keys().collect::<Vec<_>>(),
            ["shardId-000000000000"]
        );
        let note = loaded
            .stale_note(
                &TableName::new("orders-archive-ALL").unwrap(),
                "TRIM_HORIZON",
            )
            .unwrap();
        for expected in [
            "1 checkpoint(s) speak of an earlier table orders-archive-ALL",
            "created 2024-05-01T11:00:00.000Z",
            "deleted and created again",
            "start at TRIM_HORIZON",
        ] {
            assert!(note.contains(expected), "{expected} in {note}");
        }
        // Saving for the new table replaces the stale checkpoint.
        second
            .save("shardId-000000000000", &Checkpoint::now(None, false))
            .await
            .unwrap();
        let loaded = second.load().await.unwrap();
        assert!(loaded.stale.is_empty() && loaded.current.len() == 1);
    }
}
