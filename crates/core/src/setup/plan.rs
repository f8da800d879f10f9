//! The setup plan: which steps bring a stream to what `kinarch setup` was asked, decided
//! from what [`Setup::observe`](super::Setup::observe) read. Pure: no I/O, so every branch
//! (mode change, key-schema fit, TTL conflict, tag diff) is tested here without AWS.

use std::fmt;

use crate::aws::item::attr;
use crate::aws::tables::{Billing, KeySchema, TIME_INDEX, TableInfo, TtlState};
use crate::domain::config::{
    ArchiveMode, ArchiveTags, ArchiveTtl, StreamArchiveConfig, TABLE_TAG_STREAM, TAG_MODE,
    TAG_OVERFLOW, TAG_TABLE, TAG_TTL, tagged_table_name,
};
use crate::domain::names::{StreamName, TableName};
use crate::domain::overflow::{
    ExpiryChange, ExpiryRule, OverflowTarget, expiry_change, lifecycle_days,
};
use crate::error::Error;
use crate::read::locate::TableOwner;

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

/// What to do with the stream's overflow bucket (tag `ArchiveOverflow`, see
/// [`crate::domain::overflow`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OverflowChange {
    /// Keep what the stream's tag says (no tag: records too large for an item are archived
    /// as oversize markers).
    #[default]
    Keep,
    /// Payloads too large for an item go to this bucket and prefix; setup checks first that
    /// the bucket exists and takes writes there.
    Set(OverflowTarget),
    /// Remove the tag: such records are archived as oversize markers again.
    Off,
}

/// What `kinarch setup` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRequest {
    /// The stream to archive.
    pub stream: StreamName,
    /// Every record (ALL) or the newest per key (LATEST).
    pub mode: ArchiveMode,
    /// The TTL to set.
    pub ttl: TtlChange,
    /// Billing of the table, if it has to be created.
    pub billing: Billing,
    /// A table to archive into instead of the default one (`--table`): an existing table is
    /// adopted once its key schema fits, and the stream gets the `ArchiveTableName` tag.
    pub table: Option<TableName>,
    /// The overflow bucket to set.
    pub overflow: OverflowChange,
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
            overflow: OverflowChange::Keep,
            pitr: false,
            time_index: false,
        }
    }
}

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
    /// RemoveTagsFromStream `ArchiveTTL`: new items get no expiry.
    RemoveTtlTag {
        /// The stream.
        stream: StreamName,
    },
    /// Write and delete a test object under the overflow prefix: the bucket must take the
    /// archiver's writes before the stream is tagged with it.
    CheckOverflowBucket {
        /// The bucket and prefix.
        target: OverflowTarget,
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
    /// RemoveTagsFromStream `ArchiveOverflow`: records too large for an item are archived as
    /// oversize markers again.
    RemoveOverflowTag {
        /// The stream.
        stream: StreamName,
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
            } => write!(
                f,
                "create table {table} with key {} ({billing} billing)",
                KeySchema::for_mode(*mode)
            ),
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
            SetupAction::RemoveTtlTag { stream } => {
                write!(f, "remove tag {TAG_TTL} from stream {stream}")
            }
            SetupAction::CheckOverflowBucket { target } => {
                write!(
                    f,
                    "check that {target} takes writes (a test object, deleted again)"
                )
            }
            SetupAction::RemoveOverflowTag { stream } => {
                write!(f, "remove tag {TAG_OVERFLOW} from stream {stream}")
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

/// What setup reads before it decides: the stream, its tags, and the table it would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The stream's ARN.
    pub stream_arn: String,
    /// The stream's tags, as ListTagsForStream gives them.
    pub tags: Vec<(String, String)>,
    /// The table named by [`planned_table`], if it exists.
    pub table: Option<TableInfo>,
    /// That table's TTL setting, if it exists.
    pub table_ttl: Option<TtlState>,
    /// Whether the table's point-in-time recovery is on; read only when setup is asked to
    /// switch it on and the table exists.
    pub pitr: Option<bool>,
    /// With an overflow bucket planned: the days of the stream's lifecycle rule there
    /// (`Ok(None)`: no rule), or why the bucket's lifecycle rules could not be read.
    pub overflow_expiry: Option<Result<Option<u64>, String>>,
    /// When the table does not exist: `kinarch archive`'s default checkpoint table and how
    /// many checkpoints it holds (of a table of that name deleted since), if it exists.
    pub orphan_checkpoints: Option<(TableName, usize)>,
    /// Whose archive the existing table's `ArchivedStream` tag says it is.
    pub table_owner: TableOwner,
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

/// The steps that bring the stream to `request`, given what was `observed` in `region`.
pub fn plan(request: &SetupRequest, observed: &Observed, region: &str) -> Result<SetupPlan, Error> {
    let stream = &request.stream;
    check_request(request)?;
    let tags = &observed.tags;
    let current = CurrentTags::read(stream, tags)?;
    let ttl = match request.ttl {
        TtlChange::Keep => current.ttl()?,
        TtlChange::Expire(ttl) => Some(ttl),
        TtlChange::Off => None,
    };
    let overflow = match &request.overflow {
        OverflowChange::Keep => current.overflow()?,
        OverflowChange::Set(target) => Some(target.clone()),
        OverflowChange::Off => None,
    };
    let table = planned_table(request, tags)?;
    let config = StreamArchiveConfig {
        stream: stream.clone(),
        mode: request.mode,
        ttl,
        table: table.clone(),
        deaggregate: true,
        overflow: overflow.clone(),
    };
    let mut steps = Vec::new();
    let mut notes = Vec::new();

    if let Some(previous) = current.mode.filter(|&m| m != request.mode) {
        let previous_table = current.table_for(previous);
        notes.push(format!(
            "the archive mode changes from {previous} to {}: records archived so far stay \
             in table {previous_table}",
            request.mode
        ));
    }

    let existing = &observed.table;
    match existing {
        None => {
            if let Some((checkpoints, count @ 1..)) = &observed.orphan_checkpoints {
                notes.push(format!(
                    "{checkpoints} holds {count} checkpoint(s) of an earlier table {table}, \
                     deleted since: `kinarch archive` ignores them and archives into the new \
                     table from its --start-at (default TRIM_HORIZON, the oldest record the \
                     stream still holds); records the stream no longer holds are not in the \
                     new table"
                ));
            }
            steps.push(to_do(SetupAction::CreateTable {
                table: table.clone(),
                mode: request.mode,
                billing: request.billing,
            }));
            steps.push(to_do(SetupAction::WaitUntilActive {
                table: table.clone(),
            }));
        }
        Some(info) => {
            if !info.key_schema.fits(request.mode) {
                return Err(key_schema_mismatch(
                    info,
                    request.mode,
                    stream,
                    region,
                    current.table.is_some(),
                ));
            }
            steps.push(unchanged(
                SetupAction::CreateTable {
                    table: table.clone(),
                    mode: request.mode,
                    billing: request.billing,
                },
                format!("table {table} exists with key {}", info.key_schema),
            ));
            if info.billing != request.billing {
                notes.push(format!(
                    "table {table} exists: its billing ({}) is left as it is",
                    info.billing
                ));
            }
            let wait = SetupAction::WaitUntilActive {
                table: table.clone(),
            };
            steps.push(if info.is_active() {
                unchanged(wait, format!("table {table} is ACTIVE"))
            } else {
                to_do(wait)
            });
        }
    }

    let table_ttl = &observed.table_ttl;
    if ttl.is_some() {
        let enable = SetupAction::EnableTtl {
            table: table.clone(),
        };
        steps.push(match table_ttl {
            None | Some(TtlState::Disabled) => to_do(enable),
            Some(state) if state.expires_archive_items() => {
                unchanged(enable, format!("TTL of table {table} is {state}"))
            }
            Some(state) => return Err(ttl_conflict(&table, state)),
        });
    } else if table_ttl
        .as_ref()
        .is_some_and(TtlState::expires_archive_items)
    {
        notes.push(format!(
            "table {table} keeps TTL on {}: items archived with an expiry still expire; \
             new items are archived without one and are kept",
            attr::EXPIRE_AFTER
        ));
    }

    if request.pitr {
        let enable = SetupAction::EnablePointInTimeRecovery {
            table: table.clone(),
        };
        steps.push(if observed.pitr == Some(true) {
            unchanged(
                enable,
                format!("point-in-time recovery of table {table} is on"),
            )
        } else {
            to_do(enable)
        });
    }
    if request.time_index {
        steps.extend(time_index_steps(&table, existing.as_ref())?);
    }

    if let OverflowChange::Set(target) = &request.overflow {
        steps.push(to_do(SetupAction::CheckOverflowBucket {
            target: target.clone(),
        }));
    }
    if let Some(target) = &overflow {
        let rule = ExpiryRule::of(target, stream);
        let wanted = ttl.map(|t| lifecycle_days(t.seconds()));
        match &observed.overflow_expiry {
            Some(Ok(current)) => {
                let step = |days| SetupAction::SetOverflowExpiry {
                    target: target.clone(),
                    rule: rule.clone(),
                    days,
                };
                match expiry_change(*current, wanted) {
                    ExpiryChange::Set(days) => steps.push(to_do(step(Some(days)))),
                    ExpiryChange::Remove => steps.push(to_do(step(None))),
                    ExpiryChange::Keep => {
                        if let Some(days) = current {
                            steps.push(unchanged(
                                step(Some(*days)),
                                format!(
                                    "lifecycle rule {} of bucket {} expires objects under {} after \
                                     {days} day(s) (never shortened: items archived earlier may \
                                     live that long)",
                                    rule.id,
                                    target.bucket(),
                                    rule.prefix
                                ),
                            ));
                        }
                    }
                }
            }
            Some(Err(reason)) => notes.push(lifecycle_note(target, &rule, wanted, reason)),
            // Not observed (a caller's own Observed): only an expiry needs saying.
            None if wanted.is_some() => {
                notes.push(lifecycle_note(target, &rule, wanted, "not read"))
            }
            None => {}
        }
    }

    steps.push(table_tag_step(&table, stream, &observed.table_owner)?);

    let mut wanted = vec![(TAG_MODE.to_owned(), current.mode_tag_for(request.mode))];
    if let Some(ttl) = ttl {
        wanted.push((TAG_TTL.to_owned(), ttl.tag_value()));
    }
    if let Some(target) = &overflow {
        wanted.push((TAG_OVERFLOW.to_owned(), target.tag_value()));
    }
    if let Some(adopted) = &request.table {
        wanted.push((TAG_TABLE.to_owned(), adopted.to_string()));
    }
    let tag = SetupAction::TagStream {
        stream: stream.clone(),
        tags: wanted.clone(),
    };
    let tag_list: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let already_tagged = wanted
        .iter()
        .all(|(key, value)| tags.iter().any(|(k, v)| k == key && v == value));
    steps.push(if already_tagged {
        unchanged(
            tag,
            format!("stream {stream} is tagged {}", tag_list.join(" ")),
        )
    } else {
        to_do(tag)
    });
    if ttl.is_none() {
        let remove = SetupAction::RemoveTtlTag {
            stream: stream.clone(),
        };
        steps.push(if current.has_ttl_tag {
            to_do(remove)
        } else {
            unchanged(remove, format!("stream {stream} has no {TAG_TTL} tag"))
        });
    }

    if overflow.is_none() && current.overflow_tag.is_some() {
        steps.push(to_do(SetupAction::RemoveOverflowTag {
            stream: stream.clone(),
        }));
    }

    Ok(SetupPlan {
        stream_arn: observed.stream_arn.clone(),
        region: region.to_owned(),
        config,
        billing: request.billing,
        steps,
        notes,
    })
}

/// Tagging the table with the stream it archives: nothing when it is tagged so already;
/// a table tagged as another stream's archive is refused (two streams' records in one table
/// could never be told apart again).
fn table_tag_step(
    table: &TableName,
    stream: &StreamName,
    owner: &TableOwner,
) -> Result<SetupStep, Error> {
    let tag = SetupAction::TagTable {
        table: table.clone(),
        stream: stream.clone(),
    };
    match owner {
        TableOwner::Stream(archived) if archived == stream.as_str() => Ok(unchanged(
            tag,
            format!("table {table} is tagged {TABLE_TAG_STREAM}={stream}"),
        )),
        TableOwner::Stream(archived) => Err(Error::InvalidInput(format!(
            "table {table} is the archive of stream {archived} (its {TABLE_TAG_STREAM} tag): \
             archiving {stream} into it would mix two streams' records; choose another table \
             with --table, or remove the tag from {table} if it no longer archives {archived}"
        ))),
        TableOwner::Untagged | TableOwner::Unknown => Ok(to_do(tag)),
    }
}

/// Adding the time index: nothing when the table has a usable one that is ACTIVE, the wait
/// when it is still being built, both steps otherwise. An index named like ours that the
/// reader cannot use is refused rather than replaced: deleting an index is the owner's call.
fn time_index_steps(
    table: &TableName,
    existing: Option<&TableInfo>,
) -> Result<Vec<SetupStep>, Error> {
    let create = SetupAction::CreateTimeIndex {
        table: table.clone(),
    };
    let wait = SetupAction::WaitUntilIndexActive {
        table: table.clone(),
    };
    let Some(info) = existing else {
        return Ok(vec![to_do(create), to_do(wait)]);
    };
    if let Some(index) = info.time_index() {
        let has = format!(
            "table {table} has time index {} with key {}",
            index.name, index.key_schema
        );
        return Ok(vec![
            unchanged(create, has),
            if index.is_active() {
                unchanged(
                    wait,
                    format!("index {} of table {table} is ACTIVE", index.name),
                )
            } else {
                to_do(wait)
            },
        ]);
    }
    if let Some(index) = info.misfit_time_index() {
        let projection = if index.projects_all { "ALL" } else { "not ALL" };
        return Err(Error::InvalidInput(format!(
            "table {table} has an index named {TIME_INDEX} with key {} and projection {projection}, \
             which kinarch cannot read time windows from (it needs key {} and projection ALL): \
             delete that index (aws dynamodb update-table --table-name {table} \
             --global-secondary-index-updates '[{{\"Delete\":{{\"IndexName\":\"{TIME_INDEX}\"}}}}]') \
             and run setup again",
            index.key_schema,
            KeySchema::time_index()
        )));
    }
    Ok(vec![to_do(create), to_do(wait)])
}

/// When the bucket's lifecycle rules cannot be read (`reason`; a policy without
/// s3:GetLifecycleConfiguration, say), setup leaves them alone and says which rule keeps the
/// payloads as long as their items.
fn lifecycle_note(
    target: &OverflowTarget,
    rule: &ExpiryRule,
    wanted: Option<u64>,
    reason: &str,
) -> String {
    let bucket = target.bucket();
    match wanted {
        Some(days) => format!(
            "the lifecycle rules of bucket {bucket} could not be read ({reason}), so the \
             payloads in {target} do not expire with their items: add a rule {} expiring \
             objects under {} after {days} day(s) (see the README)",
            rule.id, rule.prefix
        ),
        None => format!(
            "the lifecycle rules of bucket {bucket} could not be read ({reason}): items no \
             longer expire, so remove any rule {} that expires objects under {}",
            rule.id, rule.prefix
        ),
    }
}

fn to_do(action: SetupAction) -> SetupStep {
    SetupStep {
        action,
        status: StepStatus::ToDo,
    }
}

fn unchanged(action: SetupAction, why: String) -> SetupStep {
    SetupStep {
        action,
        status: StepStatus::Unchanged(why),
    }
}

/// The archive tags a stream has now, read leniently: a mode or TTL tag that setup is about
/// to overwrite may be invalid; only the table tag (which setup keeps) must be valid.
struct CurrentTags {
    stream: StreamName,
    mode: Option<ArchiveMode>,
    /// The `StreamArchiveMode` value as written (`all`, `ALL`).
    mode_text: Option<String>,
    ttl_tag: Option<String>,
    has_ttl_tag: bool,
    table: Option<TableName>,
    overflow_tag: Option<String>,
}

impl CurrentTags {
    /// The tags as setup reads them (through [`ArchiveTags`], the one reader): a mode or
    /// TTL tag that setup is about to overwrite may be invalid; the table tag, which setup
    /// keeps, must be valid.
    fn read(stream: &StreamName, tags: &[(String, String)]) -> Result<Self, Error> {
        let tags = ArchiveTags::parse(stream, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let table = match tags.table {
            None => None,
            Some(tag) => Some(tag.parsed?),
        };
        Ok(Self {
            stream: stream.clone(),
            mode: tags.mode.as_ref().and_then(|t| t.parsed.clone().ok()),
            mode_text: tags.mode.as_ref().map(|t| t.text.trim().to_owned()),
            ttl_tag: tags.ttl.as_ref().map(|t| t.text.clone()),
            has_ttl_tag: tags.ttl.is_some(),
            table,
            overflow_tag: tags.overflow.as_ref().map(|t| t.text.clone()),
        })
    }

    /// The table of `mode` (see [`planned_table`]).
    fn table_for(&self, mode: ArchiveMode) -> TableName {
        match (&self.table, self.mode == Some(mode)) {
            (Some(table), _) => table.clone(),
            (None, true) => tagged_table_name(&self.stream, self.mode_text.as_deref()),
            (None, false) => mode.default_table_name(&self.stream),
        }
    }

    /// The `StreamArchiveMode` value to write for `mode`: the current one as written when
    /// it already means `mode` (rewriting `all` as `ALL` would point the archiver at
    /// another table), else the upper-case name.
    fn mode_tag_for(&self, mode: ArchiveMode) -> String {
        match &self.mode_text {
            Some(text) if self.mode == Some(mode) => text.clone(),
            _ => mode.as_str().to_owned(),
        }
    }

    /// The overflow bucket to keep ([`OverflowChange::Keep`]): the tag must then be valid.
    fn overflow(&self) -> Result<Option<OverflowTarget>, Error> {
        self.kept(
            TAG_OVERFLOW,
            self.overflow_tag.as_deref(),
            OverflowTarget::parse,
            "--overflow-bucket BUCKET[/PREFIX] or --no-overflow",
        )
    }

    /// The TTL to keep ([`TtlChange::Keep`]): the tag must then be valid.
    fn ttl(&self) -> Result<Option<ArchiveTtl>, Error> {
        self.kept(
            TAG_TTL,
            self.ttl_tag.as_deref(),
            ArchiveTtl::parse_tag,
            "--ttl-seconds N or --no-ttl",
        )
    }

    /// A tag's value that setup keeps, parsed: an invalid one is an error naming the options
    /// that replace it (`replace`).
    fn kept<T, E: std::fmt::Display>(
        &self,
        tag: &'static str,
        text: Option<&str>,
        parse: impl Fn(&str) -> Result<T, E>,
        replace: &str,
    ) -> Result<Option<T>, Error> {
        text.map(|text| {
            parse(text).map_err(|e| {
                Error::Config(crate::domain::config::ConfigError {
                    stream: self.stream.clone(),
                    tag,
                    reason: format!("{e}; pass {replace} to replace it"),
                })
            })
        })
        .transpose()
    }
}

/// The error for an archive table whose key schema does not fit the stream's mode, as
/// `archive`, `query`, `scan`, `reinject` and the Lambda function report it (a permanent
/// error: no retry can make the table fit).
pub(crate) fn archive_table_mismatch(
    info: &TableInfo,
    config: &StreamArchiveConfig,
    region: &str,
) -> Error {
    let named_by_tag = config.table != config.mode.default_table_name(&config.stream);
    key_schema_mismatch(info, config.mode, &config.stream, region, named_by_tag)
}

pub(super) fn key_schema_mismatch(
    info: &TableInfo,
    mode: ArchiveMode,
    stream: &StreamName,
    region: &str,
    named_by_tag: bool,
) -> Error {
    let other_table = if named_by_tag {
        format!("change the stream's {TAG_TABLE} tag to a new table name")
    } else {
        format!("tag the stream with {TAG_TABLE}=<new table name> to archive elsewhere")
    };
    let advice = match info.key_schema.mode() {
        Some(fitting) => format!(
            "the table was made for {fitting} mode. Keep using it with `kinarch setup {stream} \
             {fitting} {region}`, or {other_table}, or delete the table (its records are lost) \
             and run setup again"
        ),
        None => format!(
            "the table was not made by kinarch. Either {other_table}, or delete the table \
             (its records are lost) and run setup again"
        ),
    };
    Error::KeySchemaMismatch {
        table: info.name.clone(),
        mode,
        found: info.key_schema.to_string(),
        expected: KeySchema::for_mode(mode).to_string(),
        advice,
    }
}

fn ttl_conflict(table: &TableName, state: &TtlState) -> Error {
    let advice = match state {
        TtlState::Disabling(_) => {
            "wait until it is disabled (up to an hour), then run setup again".to_owned()
        }
        _ => format!(
            "switch the table's TTL off (aws dynamodb update-time-to-live --table-name {table} \
             --time-to-live-specification Enabled=false,AttributeName=<attribute>), wait until it \
             is disabled, then run setup again; or set up without a TTL (--no-ttl)"
        ),
    };
    Error::TtlConflict {
        table: table.clone(),
        state: state.to_string(),
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamName {
        StreamName::new("orders").unwrap()
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn table(name: &str, mode: ArchiveMode, status: &str) -> TableInfo {
        TableInfo {
            name: TableName::new(name).unwrap(),
            status: status.into(),
            key_schema: KeySchema::for_mode(mode),
            billing: Billing::OnDemand,
            item_count: Some(0),
            size_bytes: None,
            arn: None,
            indexes: Vec::new(),
            incarnation: Default::default(),
        }
    }

    fn observed(
        tag_pairs: &[(&str, &str)],
        table: Option<TableInfo>,
        ttl: Option<TtlState>,
    ) -> Observed {
        Observed {
            stream_arn: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders".into(),
            tags: tags(tag_pairs),
            table_ttl: ttl,
            overflow_expiry: None,
            pitr: None,
            orphan_checkpoints: None,
            // An existing table was tagged by an earlier setup (see the test of the tag).
            table_owner: match table.is_some() {
                true => TableOwner::Stream("orders".into()),
                false => TableOwner::Untagged,
            },
            table,
        }
    }

    fn request(mode: ArchiveMode, ttl: TtlChange) -> SetupRequest {
        SetupRequest {
            ttl,
            ..SetupRequest::new(stream(), mode)
        }
    }

    fn day() -> ArchiveTtl {
        ArchiveTtl::from_seconds(86_400).unwrap()
    }

    /// The step that tags the stream.
    fn stream_tag_step(plan: &SetupPlan) -> &SetupStep {
        plan.steps
            .iter()
            .find(|s| matches!(s.action, SetupAction::TagStream { .. }))
            .expect("every plan tags the stream")
    }

    /// The action of the step that tags the stream.
    fn stream_tag_action(plan: &SetupPlan) -> &SetupAction {
        &stream_tag_step(plan).action
    }

    /// (action kind, to do?) of each step, for compact assertions; the table's tag step,
    /// which every plan has, is left out (its own test checks it).
    fn shape(plan: &SetupPlan) -> Vec<(&'static str, bool)> {
        plan.steps
            .iter()
            .filter(|s| !matches!(s.action, SetupAction::TagTable { .. }))
            .map(|s| {
                let kind = match s.action {
                    SetupAction::CreateTable { .. } => "create",
                    SetupAction::WaitUntilActive { .. } => "wait",
                    SetupAction::EnableTtl { .. } => "ttl",
                    SetupAction::TagStream { .. } => "tag",
                    SetupAction::RemoveTtlTag { .. } => "untag-ttl",
                    SetupAction::CheckOverflowBucket { .. } => "check-bucket",
                    SetupAction::RemoveOverflowTag { .. } => "untag-overflow",
                    SetupAction::SetOverflowExpiry { days: Some(_), .. } => "expire",
                    SetupAction::SetOverflowExpiry { days: None, .. } => "unexpire",
                    SetupAction::EnablePointInTimeRecovery { .. } => "pitr",
                    SetupAction::CreateTimeIndex { .. } => "index",
                    SetupAction::WaitUntilIndexActive { .. } => "wait-index",
                    SetupAction::TagTable { .. } => "tag-table",
                };
                (kind, s.status == StepStatus::ToDo)
            })
            .collect()
    }

    #[test]
    fn a_new_stream_gets_table_wait_ttl_and_tags_in_that_order() {
        let plan = plan(
            &request(ArchiveMode::All, TtlChange::Expire(day())),
            &observed(&[], None, None),
            "eu-west-1",
        )
        .unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", true),
                ("wait", true),
                ("ttl", true),
                ("tag", true)
            ]
        );
        assert_eq!(plan.config.table.as_str(), "orders-archive-ALL");
        let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
            panic!()
        };
        assert_eq!(
            tags,
            &[
                (TAG_MODE.to_owned(), "ALL".to_owned()),
                (TAG_TTL.to_owned(), "expireSeconds=86400".to_owned())
            ]
        );
        assert!(plan.has_changes());
        assert!(plan.notes.is_empty());
    }

    fn time_index(name: &str, status: &str, projects_all: bool) -> crate::aws::tables::IndexInfo {
        crate::aws::tables::IndexInfo {
            name: name.into(),
            status: status.into(),
            key_schema: KeySchema::time_index(),
            projects_all,
            backfilling: false,
        }
    }

    #[test]
    fn pitr_and_the_time_index_come_after_the_table_and_before_the_tags() {
        let asked = SetupRequest {
            pitr: true,
            time_index: true,
            ..request(ArchiveMode::All, TtlChange::Keep)
        };
        let plan = plan(&asked, &observed(&[], None, None), "r").unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", true),
                ("wait", true),
                ("pitr", true),
                ("index", true),
                ("wait-index", true),
                ("tag", true),
                ("untag-ttl", false)
            ]
        );
    }

    #[test]
    fn pitr_on_and_an_active_time_index_are_left_as_they_are() {
        let mut info = table("orders-archive-ALL", ArchiveMode::All, "ACTIVE");
        info.indexes = vec![time_index(crate::aws::tables::TIME_INDEX, "ACTIVE", true)];
        let mut done = observed(&[(TAG_MODE, "ALL")], Some(info.clone()), None);
        done.pitr = Some(true);
        let asked = SetupRequest {
            pitr: true,
            time_index: true,
            ..request(ArchiveMode::All, TtlChange::Keep)
        };
        let plan = plan_of(&asked, &done);
        assert!(!plan.has_changes(), "{:?}", plan.steps);

        // An index still being filled: only the wait is left.
        info.indexes[0].backfilling = true;
        let filling = Observed {
            table: Some(info),
            ..done.clone()
        };
        let plan = plan_of(&asked, &filling);
        let todo: Vec<_> = shape(&plan).into_iter().filter(|(_, todo)| *todo).collect();
        assert_eq!(todo, [("wait-index", true)]);

        // PITR off: switched on; not asked: not touched, and no index either.
        done.pitr = Some(false);
        let plan = plan_of(&asked, &done);
        assert!(shape(&plan).contains(&("pitr", true)));
        let plan = plan_of(&request(ArchiveMode::All, TtlChange::Keep), &done);
        assert!(
            !shape(&plan)
                .iter()
                .any(|(k, _)| *k == "pitr" || *k == "index")
        );
    }

    fn plan_of(request: &SetupRequest, observed: &Observed) -> SetupPlan {
        plan(request, observed, "r").unwrap()
    }

    #[test]
    fn a_time_index_of_another_name_is_used_and_a_misfit_of_our_name_refused() {
        let asked = SetupRequest {
            time_index: true,
            ..request(ArchiveMode::All, TtlChange::Keep)
        };
        let mut info = table("orders-archive-ALL", ArchiveMode::All, "ACTIVE");
        info.indexes = vec![time_index("by-arrival", "ACTIVE", true)];
        let plan = plan_of(&asked, &observed(&[], Some(info.clone()), None));
        assert!(
            !shape(&plan)
                .iter()
                .any(|(k, todo)| k.contains("index") && *todo),
            "{:?}",
            plan.steps
        );

        // Keys only: not usable, so ours is added beside it.
        info.indexes = vec![time_index("by-arrival", "ACTIVE", false)];
        let plan = plan_of(&asked, &observed(&[], Some(info.clone()), None));
        assert!(shape(&plan).contains(&("index", true)));

        info.indexes = vec![time_index(crate::aws::tables::TIME_INDEX, "ACTIVE", false)];
        let err = super::plan(&asked, &observed(&[], Some(info), None), "r").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("projection not ALL") && text.contains("Delete"),
            "{text}"
        );
    }

    #[test]
    fn a_stream_set_up_as_asked_has_nothing_to_do() {
        let done = observed(
            &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=86400")],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
        );
        let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &done, "r").unwrap();
        assert!(!plan.has_changes(), "{:?}", plan.steps);
        assert_eq!(plan.config.ttl, Some(day()));
    }

    #[test]
    fn a_table_that_is_not_active_yet_is_waited_for() {
        let creating = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::All, "CREATING")),
            Some(TtlState::Disabled),
        );
        let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &creating, "r").unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", false),
                ("wait", true),
                ("tag", true),
                ("untag-ttl", false)
            ]
        );
    }

    #[test]
    fn a_mode_change_is_noted_with_the_table_that_keeps_the_old_records() {
        let latest = observed(&[(TAG_MODE, "LATEST")], None, None);
        let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &latest, "r").unwrap();
        assert_eq!(plan.config.table.as_str(), "orders-archive-ALL");
        assert!(
            plan.notes[0].contains("from LATEST to ALL")
                && plan.notes[0].contains("orders-archive-LATEST"),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn a_table_with_the_other_key_schema_is_refused_with_advice() {
        let misfit = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::Latest, "ACTIVE")),
            Some(TtlState::Disabled),
        );
        let err = plan(
            &request(ArchiveMode::All, TtlChange::Keep),
            &misfit,
            "eu-west-1",
        )
        .unwrap_err();
        let Error::KeySchemaMismatch { advice, found, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            found.contains("HASH partitionKey") && !found.contains("RANGE"),
            "{found}"
        );
        assert!(
            advice.contains("kinarch setup orders LATEST eu-west-1"),
            "{advice}"
        );
    }

    #[test]
    fn the_table_tag_names_the_table_and_is_kept() {
        let tagged = [(TAG_MODE, "ALL"), (TAG_TABLE, "legacy-archive")];
        assert_eq!(
            planned_table(
                &SetupRequest::new(stream(), ArchiveMode::All),
                &tags(&tagged)
            )
            .unwrap()
            .as_str(),
            "legacy-archive"
        );
        let plan = plan(
            &request(ArchiveMode::All, TtlChange::Keep),
            &observed(&tagged, None, None),
            "r",
        )
        .unwrap();
        assert_eq!(plan.config.table.as_str(), "legacy-archive");
        let bad = [(TAG_TABLE, "x")];
        assert!(
            planned_table(&SetupRequest::new(stream(), ArchiveMode::All), &tags(&bad)).is_err()
        );
    }

    #[test]
    fn ttl_on_another_attribute_or_being_disabled_conflicts() {
        for state in [
            TtlState::Enabled("ttl".into()),
            TtlState::Disabling(attr::EXPIRE_AFTER.into()),
        ] {
            let existing = observed(
                &[],
                Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
                Some(state.clone()),
            );
            let err = plan(
                &request(ArchiveMode::All, TtlChange::Expire(day())),
                &existing,
                "r",
            )
            .unwrap_err();
            assert!(
                matches!(err, Error::TtlConflict { .. }),
                "{state:?}: {err:?}"
            );
        }
        // Without a TTL asked for, another attribute's TTL is no business of kinarch's.
        let other = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Enabled("ttl".into())),
        );
        assert!(plan(&request(ArchiveMode::All, TtlChange::Keep), &other, "r").is_ok());
    }

    #[test]
    fn ttl_off_removes_the_tag_and_notes_that_old_items_still_expire() {
        let with_ttl = observed(
            &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=86400")],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
        );
        let plan = plan(&request(ArchiveMode::All, TtlChange::Off), &with_ttl, "r").unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", false),
                ("wait", false),
                ("tag", false),
                ("untag-ttl", true)
            ]
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("still expire")),
            "{:?}",
            plan.notes
        );
        assert_eq!(plan.config.ttl, None);
    }

    #[test]
    fn tags_are_rewritten_only_when_a_value_differs() {
        let old_ttl = observed(
            &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=60")],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
        );
        let plan = plan(
            &request(ArchiveMode::All, TtlChange::Expire(day())),
            &old_ttl,
            "r",
        )
        .unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", false),
                ("wait", false),
                ("ttl", false),
                ("tag", true)
            ]
        );
    }

    #[test]
    fn a_stream_of_the_original_archiver_keeps_its_lower_case_tag_and_table() {
        let original = [(TAG_MODE, "all")];
        assert_eq!(
            planned_table(
                &SetupRequest::new(stream(), ArchiveMode::All),
                &tags(&original)
            )
            .unwrap()
            .as_str(),
            "orders-archive-all"
        );
        let existing = observed(
            &original,
            Some(table("orders-archive-all", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Disabled),
        );
        let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &existing, "r").unwrap();
        assert_eq!(plan.config.table.as_str(), "orders-archive-all");
        assert!(!plan.has_changes(), "{:?}", plan.steps);
        // Another mode is another table, named as kinarch names them.
        let latest = plan_for_latest(&original);
        assert_eq!(latest.config.table.as_str(), "orders-archive-LATEST");
        assert!(
            latest.notes[0].contains("orders-archive-all"),
            "{:?}",
            latest.notes
        );
    }

    fn plan_for_latest(tag_pairs: &[(&str, &str)]) -> SetupPlan {
        plan(
            &request(ArchiveMode::Latest, TtlChange::Keep),
            &observed(tag_pairs, None, None),
            "r",
        )
        .unwrap()
    }

    #[test]
    fn an_adopted_table_is_checked_and_named_by_a_tag() {
        let mut adopt = request(ArchiveMode::All, TtlChange::Keep);
        adopt.table = Some(TableName::new("kept-elsewhere").unwrap());
        let existing = observed(
            &[(TAG_MODE, "ALL")],
            Some(table("kept-elsewhere", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Disabled),
        );
        let plan = plan(&adopt, &existing, "r").unwrap();
        assert_eq!(plan.config.table.as_str(), "kept-elsewhere");
        let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
            panic!("{:?}", plan.steps)
        };
        assert!(
            tags.contains(&(TAG_TABLE.to_owned(), "kept-elsewhere".to_owned())),
            "{tags:?}"
        );
        assert_eq!(stream_tag_step(&plan).status, StepStatus::ToDo);
        let misfit = observed(
            &[],
            Some(table("kept-elsewhere", ArchiveMode::Latest, "ACTIVE")),
            Some(TtlState::Disabled),
        );
        assert!(matches!(
            plan_err(&adopt, &misfit),
            Error::KeySchemaMismatch { .. }
        ));
    }

    fn plan_err(request: &SetupRequest, observed: &Observed) -> Error {
        plan(request, observed, "r").unwrap_err()
    }

    #[test]
    fn an_invalid_ttl_tag_must_be_replaced_not_kept() {
        let broken = observed(&[(TAG_MODE, "ALL"), (TAG_TTL, "soon")], None, None);
        let err = plan(&request(ArchiveMode::All, TtlChange::Keep), &broken, "r").unwrap_err();
        assert!(err.to_string().contains("--ttl-seconds"), "{err}");
        assert!(plan(&request(ArchiveMode::All, TtlChange::Off), &broken, "r").is_ok());
    }

    #[test]
    fn billing_of_an_existing_table_is_left_alone_with_a_note() {
        let existing = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(TtlState::Disabled),
        );
        let mut provisioned = request(ArchiveMode::All, TtlChange::Keep);
        provisioned.billing = Billing::Provisioned {
            read_capacity: 5,
            write_capacity: 5,
        };
        let plan = plan(&provisioned, &existing, "r").unwrap();
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("billing (on-demand) is left")),
            "{:?}",
            plan.notes
        );
        provisioned.billing = Billing::Provisioned {
            read_capacity: 0,
            write_capacity: 5,
        };
        assert!(matches!(
            check_request(&provisioned),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn an_overflow_bucket_is_checked_before_the_stream_is_tagged_with_it() {
        let target = OverflowTarget::parse("big-records/kinarch").unwrap();
        let mut req = request(ArchiveMode::All, TtlChange::Expire(day()));
        req.overflow = OverflowChange::Set(target.clone());
        let plan = plan(&req, &observed(&[], None, None), "eu-west-1").unwrap();
        assert_eq!(
            shape(&plan),
            [
                ("create", true),
                ("wait", true),
                ("ttl", true),
                ("check-bucket", true),
                ("tag", true)
            ]
        );
        let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
            panic!("tag step last")
        };
        assert!(tags.contains(&("ArchiveOverflow".into(), "s3://big-records/kinarch".into())));
        assert_eq!(plan.config.overflow, Some(target));
        // Lifecycle rules not read: a note names the rule that keeps payloads as long as
        // their items.
        let note = plan.notes.iter().find(|n| n.contains("lifecycle")).unwrap();
        assert!(
            note.contains("kinarch-orders")
                && note.contains("kinarch/orders/")
                && note.contains("1 day"),
            "{note}"
        );
    }

    #[test]
    fn the_payloads_expire_with_their_items_never_sooner() {
        let target = OverflowTarget::parse("big-records/kinarch").unwrap();
        let mut req = request(ArchiveMode::All, TtlChange::Expire(day()));
        req.overflow = OverflowChange::Set(target.clone());
        let with_rule = |days: Option<u64>| {
            let mut o = observed(&[], None, None);
            o.overflow_expiry = Some(Ok(days));
            o
        };
        let expiry = |plan: &SetupPlan| {
            plan.steps.iter().find_map(|s| match &s.action {
                SetupAction::SetOverflowExpiry { days, rule, .. } => {
                    assert_eq!(rule.prefix, "kinarch/orders/");
                    Some((*days, s.status == StepStatus::ToDo))
                }
                _ => None,
            })
        };
        let new = plan(&req, &with_rule(None), "eu-west-1").unwrap();
        assert_eq!(expiry(&new), Some((Some(1), true)));
        assert!(new.notes.iter().all(|n| !n.contains("lifecycle")));
        // A longer rule stays: payloads of items archived under a longer TTL need it.
        let longer = plan(&req, &with_rule(Some(7)), "eu-west-1").unwrap();
        assert_eq!(expiry(&longer), Some((Some(7), false)));
        // Without a TTL the rule goes.
        req.ttl = TtlChange::Off;
        let off = plan(&req, &with_rule(Some(1)), "eu-west-1").unwrap();
        assert_eq!(expiry(&off), Some((None, true)));
        let none = plan(&req, &with_rule(None), "eu-west-1").unwrap();
        assert_eq!(expiry(&none), None);
        // Rules that cannot be read: a note, no step.
        let mut o = observed(&[], None, None);
        o.overflow_expiry = Some(Err("AccessDenied".into()));
        req.ttl = TtlChange::Expire(day());
        let unread = plan(&req, &o, "eu-west-1").unwrap();
        assert_eq!(expiry(&unread), None);
        assert!(
            unread.notes.iter().any(|n| n.contains("AccessDenied")),
            "{:?}",
            unread.notes
        );
    }

    #[test]
    fn overflow_is_kept_or_removed_as_asked() {
        let tagged = [
            ("StreamArchiveMode", "ALL"),
            ("ArchiveOverflow", "s3://big-records"),
        ];
        let table = Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE"));
        let kept = plan(
            &request(ArchiveMode::All, TtlChange::Keep),
            &observed(&tagged, table.clone(), Some(TtlState::Disabled)),
            "eu-west-1",
        )
        .unwrap();
        assert!(!kept.has_changes(), "{:?}", kept.steps);
        assert_eq!(
            kept.config.overflow.unwrap().tag_value(),
            "s3://big-records"
        );
        assert!(
            kept.notes.iter().all(|n| !n.contains("lifecycle")),
            "no TTL, no note"
        );

        let mut off = request(ArchiveMode::All, TtlChange::Keep);
        off.overflow = OverflowChange::Off;
        let removed = plan(&off, &observed(&tagged, table.clone(), None), "eu-west-1").unwrap();
        assert_eq!(shape(&removed).last(), Some(&("untag-overflow", true)));
        assert_eq!(removed.config.overflow, None);
        let untagged = [("StreamArchiveMode", "ALL")];
        let nothing = plan(&off, &observed(&untagged, table.clone(), None), "eu-west-1").unwrap();
        assert!(!nothing.has_changes(), "{:?}", nothing.steps);

        let broken = [("StreamArchiveMode", "ALL"), ("ArchiveOverflow", "ftp://x")];
        let err = plan(
            &request(ArchiveMode::All, TtlChange::Keep),
            &observed(&broken, table, None),
            "eu-west-1",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ArchiveOverflow") && err.contains("--no-overflow"),
            "{err}"
        );
    }

    #[test]
    fn the_table_is_tagged_with_its_stream_and_another_streams_table_is_refused() {
        let tag_step = |plan: &SetupPlan| {
            plan.steps
                .iter()
                .find(|s| matches!(s.action, SetupAction::TagTable { .. }))
                .cloned()
                .unwrap()
        };
        let asked = request(ArchiveMode::All, TtlChange::Keep);
        // A new table is tagged after it is ACTIVE, before the stream's tags.
        let new_table = plan_of(&asked, &observed(&[], None, None));
        let kinds: Vec<String> = new_table
            .steps
            .iter()
            .map(|s| s.action.to_string())
            .collect();
        let at = |text: &str| kinds.iter().position(|k| k.starts_with(text)).unwrap();
        assert!(at("wait until table") < at("tag table") && at("tag table") < at("tag stream"));
        assert_eq!(
            tag_step(&new_table).action.to_string(),
            "tag table orders-archive-ALL: ArchivedStream=orders"
        );
        assert_eq!(tag_step(&new_table).status, StepStatus::ToDo);
        // An existing table of the original archiver, untagged: tagged now.
        let mut old = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            None,
        );
        old.table_owner = TableOwner::Untagged;
        assert_eq!(tag_step(&plan_of(&asked, &old)).status, StepStatus::ToDo);
        // Tagged for this stream: nothing to do.
        old.table_owner = TableOwner::Stream("orders".into());
        assert!(matches!(
            tag_step(&plan_of(&asked, &old)).status,
            StepStatus::Unchanged(_)
        ));
        // Another stream's archive: refused, naming both.
        old.table_owner = TableOwner::Stream("prices".into());
        let err = plan(&asked, &old, "eu-west-1").unwrap_err().to_string();
        assert!(
            err.contains("archive of stream prices") && err.contains("archiving orders into it"),
            "{err}"
        );
    }
}
