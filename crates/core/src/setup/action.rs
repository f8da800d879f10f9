//! The steps of setup and where each stands: what a plan lists and a report tells.

use std::fmt;

use crate::aws::item::attr;
use crate::aws::tables::{Billing, KeySchema, TIME_INDEX};
use crate::domain::config::{ArchiveMode, StreamArchiveConfig, TABLE_TAG_STREAM};
use crate::domain::names::{StreamName, TableName};
use crate::domain::overflow::{BucketUse, ExpiryRule, OverflowTarget};
use crate::domain::parquet::ColdRule;
use crate::domain::parquet::{MARKER_NAME, START_MARGIN};

/// One step of setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupAction {
    /// CreateTable with the contract's key schema for the mode.
    CreateTable {
        /// The table.
        table: TableName,
        /// The mode whose key schema it gets.
        mode: ArchiveMode,
        /// Its billing.
        billing: Billing,
        /// Whether it is created with the time index.
        time_index: bool,
    },
    /// Wait until the table is ACTIVE.
    WaitUntilActive {
        /// The table.
        table: TableName,
    },
    /// Switch the table's TTL on for `expireAfter`.
    EnableTtl {
        /// The table.
        table: TableName,
    },
    /// AddTagsToStream: the archive configuration.
    TagStream {
        /// The stream.
        stream: StreamName,
        /// The tags written, in order.
        tags: Vec<(String, String)>,
    },
    /// RemoveTagsFromStream: a tag no longer wanted (`ArchiveTTL`: new items get no
    /// expiry; `ArchiveOverflow`: records too large for an item are archived as oversize
    /// markers again; `ArchiveParquet`: no more Parquet files).
    RemoveTag {
        /// The stream.
        stream: StreamName,
        /// The tag.
        tag: &'static str,
    },
    /// Write and delete a test object under the prefix: the bucket must take the archiver's
    /// writes before the stream is tagged with it.
    CheckBucket {
        /// The bucket and prefix.
        target: OverflowTarget,
        /// What it is for.
        role: BucketUse,
    },
    /// Write the marker object saying from which arrival time on the stream's records are in
    /// the Parquet archive (see [`ParquetMarker`](crate::domain::parquet::ParquetMarker)):
    /// the Parquet archive is new, or moved.
    MarkParquetStart {
        /// The bucket and prefix.
        target: OverflowTarget,
        /// The stream.
        stream: StreamName,
    },
    /// Put (`days` set) or remove the lifecycle rule that expires the stream's payloads in
    /// the overflow bucket with their items; the bucket's other rules are kept.
    SetOverflowExpiry {
        /// The bucket and prefix.
        target: OverflowTarget,
        /// The rule.
        rule: ExpiryRule,
        /// Days after which the payloads expire; `None`: the rule is removed.
        days: Option<u64>,
    },
    /// Put (`days` set) or remove the lifecycle rule that moves the stream's Parquet files
    /// to S3 Glacier Instant Retrieval; the bucket's other rules are kept.
    SetParquetCold {
        /// The Parquet archive.
        target: OverflowTarget,
        /// The rule.
        rule: ColdRule,
        /// Days after which the files move; `None`: the rule is removed.
        days: Option<u64>,
    },
    /// UpdateContinuousBackups: point-in-time recovery on, so the table can be exported.
    EnablePointInTimeRecovery {
        /// The table.
        table: TableName,
    },
    /// UpdateTable: add the time index.
    CreateTimeIndex {
        /// The table.
        table: TableName,
    },
    /// Wait until the time index is ACTIVE and filled with the table's items.
    WaitUntilIndexActive {
        /// The table.
        table: TableName,
    },
    /// TagResource on the table: `ArchivedStream` = the stream it archives, so that no
    /// reader takes it for another stream's archive.
    TagTable {
        /// The table.
        table: TableName,
        /// The stream it archives.
        stream: StreamName,
    },
}

impl fmt::Display for SetupAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupAction::CreateTable {
                table,
                mode,
                billing,
                time_index,
            } => {
                write!(
                    f,
                    "create table {table} with key {} ({billing} billing)",
                    KeySchema::for_mode(*mode)
                )?;
                if *time_index {
                    write!(
                        f,
                        " and index {TIME_INDEX} with key {} (projection ALL)",
                        KeySchema::time_index()
                    )?;
                }
                Ok(())
            }
            SetupAction::WaitUntilActive { table } => {
                write!(f, "wait until table {table} is ACTIVE")
            }
            SetupAction::EnableTtl { table } => write!(
                f,
                "enable TTL of table {table} on attribute {}",
                attr::EXPIRE_AFTER
            ),
            SetupAction::TagStream { stream, tags } => {
                write!(f, "tag stream {stream}:")?;
                for (key, value) in tags {
                    write!(f, " {key}={value}")?;
                }
                Ok(())
            }
            SetupAction::MarkParquetStart { target, stream } => write!(
                f,
                "write {target}/{stream}/{MARKER_NAME}: records arriving from {} min from now \
                 on are in the Parquet archive",
                START_MARGIN.num_minutes()
            ),
            SetupAction::RemoveTag { stream, tag } => {
                write!(f, "remove tag {tag} from stream {stream}")
            }
            SetupAction::CheckBucket { target, role } => {
                write!(
                    f,
                    "check that {} {target} takes writes (a test object, deleted again)",
                    role.name()
                )
            }
            SetupAction::EnablePointInTimeRecovery { table } => {
                write!(f, "enable point-in-time recovery of table {table}")
            }
            SetupAction::CreateTimeIndex { table } => write!(
                f,
                "add index {TIME_INDEX} to table {table} with key {} (projection ALL)",
                KeySchema::time_index()
            ),
            SetupAction::WaitUntilIndexActive { table } => write!(
                f,
                "wait until index {TIME_INDEX} of table {table} is ACTIVE"
            ),
            SetupAction::TagTable { table, stream } => {
                write!(f, "tag table {table}: {TABLE_TAG_STREAM}={stream}")
            }
            SetupAction::SetOverflowExpiry {
                target,
                rule,
                days: Some(days),
            } => write!(
                f,
                "set lifecycle rule {} of bucket {}: objects under {} expire after {days} day(s)",
                rule.id,
                target.bucket(),
                rule.prefix
            ),
            SetupAction::SetOverflowExpiry {
                target,
                rule,
                days: None,
            } => write!(
                f,
                "remove lifecycle rule {} of bucket {} (items no longer expire, nor may their payloads)",
                rule.id,
                target.bucket()
            ),
            SetupAction::SetParquetCold {
                target,
                rule,
                days: Some(days),
            } => write!(
                f,
                "set lifecycle rule {} of bucket {}: files under {} move to Glacier Instant \
                 Retrieval after {days} day(s)",
                rule.id,
                target.bucket(),
                rule.prefix
            ),
            SetupAction::SetParquetCold {
                target,
                rule,
                days: None,
            } => write!(
                f,
                "remove lifecycle rule {} of bucket {} (files stay in S3 Standard)",
                rule.id,
                target.bucket()
            ),
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    /// The step has to be done (in a plan).
    ToDo,
    /// The step was done (in a report).
    Done,
    /// Nothing to do; the text says why, as a phrase naming the resource
    /// ("table orders-archive-ALL is ACTIVE").
    Unchanged(String),
}

/// A step and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStep {
    /// What the step does.
    pub action: SetupAction,
    /// Whether it is needed, done, or was not needed.
    pub status: StepStatus,
}

/// The steps setup would take, computed without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    /// The stream's ARN.
    pub stream_arn: String,
    /// The region everything is in.
    pub region: String,
    /// The configuration the stream will have.
    pub config: StreamArchiveConfig,
    /// The table billing asked for (used only if the table is created).
    pub billing: Billing,
    /// The steps, in the order they are applied.
    pub steps: Vec<SetupStep>,
    /// Things worth knowing that are not steps (a mode change, billing left as is, ...).
    pub notes: Vec<String>,
}

impl SetupPlan {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.status == StepStatus::ToDo)
    }
}

/// What [`Setup::apply`](super::Setup::apply) did: every step of the plan, each [`StepStatus::Done`] or
/// [`StepStatus::Unchanged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The configuration the stream now has.
    pub config: StreamArchiveConfig,
    /// The region.
    pub region: String,
    /// The steps with their outcome.
    pub steps: Vec<SetupStep>,
    /// Notes carried over from the plan.
    pub notes: Vec<String>,
}

/// A step still to do.
pub(super) fn to_do(action: SetupAction) -> SetupStep {
    SetupStep {
        action,
        status: StepStatus::ToDo,
    }
}

/// A step with nothing to do, and why.
pub(super) fn unchanged(action: SetupAction, why: String) -> SetupStep {
    SetupStep {
        action,
        status: StepStatus::Unchanged(why),
    }
}
