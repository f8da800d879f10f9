//! The setup plan: which steps bring a stream to what `kinarch setup` was asked, decided
//! from what [`Setup::observe`](super::Setup::observe) read. Pure: no I/O, so every branch
//! (mode change, key-schema fit, TTL conflict, tag diff) is tested here without AWS.

use crate::aws::item::attr;
use crate::aws::table_check::key_schema_mismatch;
use crate::aws::tables::{KeySchema, TIME_INDEX, TableInfo, TtlState};
use crate::domain::config::{
    ArchiveMode, ArchiveTags, ArchiveTtl, StreamArchiveConfig, TABLE_TAG_STREAM, TAG_MODE,
    TAG_OVERFLOW, TAG_PARQUET, TAG_TABLE, TAG_TTL, tagged_table_name,
};
use crate::domain::names::{StreamName, TableName};
use crate::domain::overflow::{
    BucketUse, ExpiryChange, ExpiryRule, OverflowTarget, expiry_change, lifecycle_days,
};
use crate::domain::parquet::{ColdRule, ParquetTarget};
use crate::error::Error;
use crate::read::locate::TableOwner;

use super::action::{SetupAction, SetupPlan, SetupStep, to_do, unchanged};
use super::request::{
    BucketChange, ColdChange, SetupRequest, TtlChange, check_request, planned_table,
};

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
    /// When the Parquet files' cold storage rule is to change: its days now (`Ok(None)`: no
    /// rule), or why the bucket's lifecycle rules could not be read.
    pub parquet_cold: Option<Result<Option<u64>, String>>,
    /// When the table does not exist: `kinarch archive`'s default checkpoint table and how
    /// many checkpoints it holds (of a table of that name deleted since), if it exists.
    pub orphan_checkpoints: Option<(TableName, usize)>,
    /// Whose archive the existing table's `ArchivedStream` tag says it is.
    pub table_owner: TableOwner,
}

/// The steps that bring the stream to `request`, given what was `observed` in `region`, in
/// the order they are applied: the table (created and ACTIVE, or checked), its TTL, PITR,
/// the time index, the overflow bucket and its lifecycle rule, the table's tag, and last the
/// stream's tags, which switch archiving on. One builder per concern below.
pub fn plan(request: &SetupRequest, observed: &Observed, region: &str) -> Result<SetupPlan, Error> {
    let stream = &request.stream;
    check_request(request)?;
    let current = CurrentTags::read(stream, &observed.tags)?;
    // Mode NONE keeps no table, so neither a TTL nor an overflow bucket (their tags are
    // removed, however they read: see `check_parquet_only`).
    let (ttl, overflow) = if request.mode.has_table() {
        let ttl = match request.ttl {
            TtlChange::Keep => current.ttl()?,
            TtlChange::Expire(ttl) => Some(ttl),
            TtlChange::Off => None,
        };
        let overflow = match &request.overflow {
            BucketChange::Keep => current.overflow()?,
            BucketChange::Set(target) => Some(target.clone()),
            BucketChange::Off => None,
        };
        (ttl, overflow)
    } else {
        (None, None)
    };
    let parquet = match &request.parquet {
        BucketChange::Keep => current.parquet()?,
        BucketChange::Set(target) => Some(target.clone()),
        BucketChange::Off => None,
    };
    let table = planned_table(request, &observed.tags)?;
    let config = StreamArchiveConfig {
        stream: stream.clone(),
        mode: request.mode,
        ttl,
        table: table.clone(),
        deaggregate: true,
        overflow: overflow.clone(),
        parquet: parquet.clone(),
    };
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if let Some(previous) = current.mode.filter(|&m| m != request.mode) {
        notes.push(if previous.has_table() {
            format!(
                "the archive mode changes from {previous} to {}: records archived so far stay \
                 in table {}",
                request.mode,
                current.table_for(previous)
            )
        } else {
            format!(
                "the archive mode changes from {previous} to {}: records archived so far stay \
                 in the Parquet archive only",
                request.mode
            )
        });
    }
    if request.mode.has_table() {
        table_steps(
            request, observed, &current, &table, region, &mut steps, &mut notes,
        )?;
        ttl_steps(ttl, observed, &table, &mut steps, &mut notes)?;
        if request.pitr {
            steps.push(pitr_step(observed, &table));
        }
        if request.time_index {
            steps.extend(time_index_steps(&table, observed.table.as_ref())?);
        }
        overflow_steps(
            request,
            observed,
            overflow.as_ref(),
            ttl,
            &mut steps,
            &mut notes,
        );
    } else {
        let table_tags = current.has_ttl_tag || current.overflow_tag.is_some();
        check_parquet_only(request, parquet.as_ref(), table_tags, &mut notes)?;
    }
    if let BucketChange::Set(target) = &request.parquet {
        steps.push(to_do(SetupAction::CheckBucket {
            target: target.clone(),
            role: BucketUse::Parquet,
        }));
        let mark = SetupAction::MarkParquetStart {
            target: target.clone(),
            stream: stream.clone(),
        };
        steps.push(
            if current.parquet_tag.as_deref() == Some(target.tag_value().as_str()) {
                unchanged(
                    mark,
                    format!("stream {stream} is archived in Parquet under {target} already"),
                )
            } else {
                to_do(mark)
            },
        );
    }
    parquet_cold_steps(request, observed, parquet.as_ref(), &mut steps, &mut notes)?;
    if request.mode.has_table() {
        steps.push(table_tag_step(&table, stream, &observed.table_owner)?);
    }
    stream_tag_steps(
        request,
        observed,
        &current,
        ArchiveTargets {
            ttl,
            overflow: overflow.as_ref(),
            parquet: parquet.as_ref(),
        },
        &mut steps,
    );
    Ok(SetupPlan {
        stream_arn: observed.stream_arn.clone(),
        region: region.to_owned(),
        config,
        billing: request.billing,
        steps,
        notes,
    })
}

/// Mode NONE keeps no table: it needs the Parquet archive, and the options that only
/// concern a table are refused rather than silently ignored. Tags of a table mode that no
/// longer apply (TTL, overflow) are removed, which `notes` says.
fn check_parquet_only(
    request: &SetupRequest,
    parquet: Option<&ParquetTarget>,
    table_tags: bool,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let refuse = |option: &str| {
        Err(Error::InvalidInput(format!(
            "{option} concerns the archive table, and mode NONE has none (every record goes to \
             the Parquet archive only): leave {option} out, or choose mode ALL or LATEST"
        )))
    };
    if parquet.is_none() {
        return Err(Error::InvalidInput(format!(
            "mode NONE archives to Parquet files only, and stream {} has no Parquet archive: \
             pass --parquet s3://BUCKET[/PREFIX]",
            request.stream
        )));
    }
    if let TtlChange::Expire(_) = request.ttl {
        return refuse("--ttl-seconds");
    }
    if let BucketChange::Set(_) = request.overflow {
        return refuse("--overflow-bucket");
    }
    if request.pitr {
        return refuse("--pitr");
    }
    if request.time_index {
        return refuse("--time-index");
    }
    if request.table.is_some() {
        return refuse("--table");
    }
    if table_tags {
        notes.push(
            "mode NONE keeps no table: a TTL or overflow tag of the stream is removed (files \
             in S3 are kept until a lifecycle rule of the bucket expires them)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The table: created and waited for, or an existing one checked (its key schema must fit
/// the mode; its billing is left alone) and waited for when it is not ACTIVE yet.
fn table_steps(
    request: &SetupRequest,
    observed: &Observed,
    current: &CurrentTags,
    table: &TableName,
    region: &str,
    steps: &mut Vec<SetupStep>,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    // A new table gets the time index in its CreateTable: added later it would take
    // minutes even on an empty table.
    let create = SetupAction::CreateTable {
        table: table.clone(),
        mode: request.mode,
        billing: request.billing,
        time_index: request.time_index && observed.table.is_none(),
    };
    let wait = SetupAction::WaitUntilActive {
        table: table.clone(),
    };
    let Some(info) = &observed.table else {
        if let Some((checkpoints, count @ 1..)) = &observed.orphan_checkpoints {
            notes.push(format!(
                "{checkpoints} holds {count} checkpoint(s) of an earlier table {table}, \
                 deleted since: `kinarch archive` ignores them and archives into the new \
                 table from its --start-at (default TRIM_HORIZON, the oldest record the \
                 stream still holds); records the stream no longer holds are not in the \
                 new table"
            ));
        }
        steps.push(to_do(create));
        steps.push(to_do(wait));
        return Ok(());
    };
    if !info.key_schema.fits(request.mode) {
        return Err(key_schema_mismatch(
            info,
            request.mode,
            &request.stream,
            region,
            current.table.is_some(),
        ));
    }
    steps.push(unchanged(
        create,
        format!("table {table} exists with key {}", info.key_schema),
    ));
    if info.billing != request.billing {
        notes.push(format!(
            "table {table} exists: its billing ({}) is left as it is",
            info.billing
        ));
    }
    steps.push(if info.is_active() {
        unchanged(wait, format!("table {table} is ACTIVE"))
    } else {
        to_do(wait)
    });
    Ok(())
}

/// The table's TTL on `expireAfter` when the stream gets a TTL (a TTL on another attribute
/// is a conflict setup does not resolve); without one, a note that items archived with an
/// expiry still expire.
fn ttl_steps(
    ttl: Option<ArchiveTtl>,
    observed: &Observed,
    table: &TableName,
    steps: &mut Vec<SetupStep>,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
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
            Some(state) => return Err(ttl_conflict(table, state)),
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
    Ok(())
}

/// Point-in-time recovery on (never off: that would delete the table's backups).
fn pitr_step(observed: &Observed, table: &TableName) -> SetupStep {
    let enable = SetupAction::EnablePointInTimeRecovery {
        table: table.clone(),
    };
    if observed.pitr == Some(true) {
        unchanged(
            enable,
            format!("point-in-time recovery of table {table} is on"),
        )
    } else {
        to_do(enable)
    }
}

/// The overflow bucket: checked when it is new, and its lifecycle rule made to expire the
/// stream's payloads with their items (never shortened; a note when the rules cannot be
/// read).
fn overflow_steps(
    request: &SetupRequest,
    observed: &Observed,
    overflow: Option<&OverflowTarget>,
    ttl: Option<ArchiveTtl>,
    steps: &mut Vec<SetupStep>,
    notes: &mut Vec<String>,
) {
    if let BucketChange::Set(target) = &request.overflow {
        steps.push(to_do(SetupAction::CheckBucket {
            target: target.clone(),
            role: BucketUse::Overflow,
        }));
    }
    let Some(target) = overflow else {
        return;
    };
    let rule = ExpiryRule::of(target, &request.stream);
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
        None if wanted.is_some() => notes.push(lifecycle_note(target, &rule, wanted, "not read")),
        None => {}
    }
}

/// The Parquet files' cold storage rule (`--parquet-cold-after`, `--no-parquet-cold`): put
/// when missing or of other days (a change of days is said, never silent), removed when asked.
/// The files never expire with the table's TTL: the Parquet archive is the history kept
/// after the table forgets it.
fn parquet_cold_steps(
    request: &SetupRequest,
    observed: &Observed,
    parquet: Option<&ParquetTarget>,
    steps: &mut Vec<SetupStep>,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    if request.parquet_cold == ColdChange::Keep {
        return Ok(());
    }
    let Some(target) = parquet else {
        return Err(Error::InvalidInput(format!(
            "stream {} has no Parquet archive, so there are no files to move to cold storage: \
             pass --parquet s3://BUCKET[/PREFIX] too",
            request.stream
        )));
    };
    let rule = ColdRule::of(target, &request.stream);
    let current = match &observed.parquet_cold {
        Some(Ok(current)) => *current,
        Some(Err(reason)) => {
            notes.push(format!(
                "the lifecycle rules of bucket {} cannot be read ({reason}), so rule {} is not \
                 changed: add it yourself (a transition of {} to GLACIER_IR)",
                target.bucket(),
                rule.id,
                rule.prefix
            ));
            return Ok(());
        }
        None => None,
    };
    let step = |days| SetupAction::SetParquetCold {
        target: target.clone(),
        rule: rule.clone(),
        days,
    };
    match (request.parquet_cold, current) {
        (ColdChange::After(days), Some(now)) if now == days => steps.push(unchanged(
            step(Some(days)),
            format!(
                "lifecycle rule {} of bucket {} moves files to Glacier Instant Retrieval after \
                 {days} day(s)",
                rule.id,
                target.bucket()
            ),
        )),
        (ColdChange::After(days), now) => {
            if let Some(now) = now {
                notes.push(format!(
                    "files under {} move to Glacier Instant Retrieval after {days} day(s) \
                     instead of {now}",
                    rule.prefix
                ));
            }
            steps.push(to_do(step(Some(days))));
        }
        (ColdChange::Off, Some(_)) => steps.push(to_do(step(None))),
        (ColdChange::Off, None) | (ColdChange::Keep, _) => {}
    }
    Ok(())
}

/// Where the stream's records go besides the table's key schema: the values of its tags.
struct ArchiveTargets<'a> {
    ttl: Option<ArchiveTtl>,
    overflow: Option<&'a OverflowTarget>,
    parquet: Option<&'a ParquetTarget>,
}

/// The stream's tags, last: they switch archiving on. Rewritten only when a value differs;
/// a TTL, overflow or Parquet tag no longer wanted is removed.
fn stream_tag_steps(
    request: &SetupRequest,
    observed: &Observed,
    current: &CurrentTags,
    targets: ArchiveTargets<'_>,
    steps: &mut Vec<SetupStep>,
) {
    let ArchiveTargets {
        ttl,
        overflow,
        parquet,
    } = targets;
    let stream = &request.stream;
    let mut wanted = vec![(TAG_MODE.to_owned(), current.mode_tag_for(request.mode))];
    if let Some(ttl) = ttl {
        wanted.push((TAG_TTL.to_owned(), ttl.tag_value()));
    }
    if let Some(target) = overflow {
        wanted.push((TAG_OVERFLOW.to_owned(), target.tag_value()));
    }
    if let Some(target) = parquet {
        wanted.push((TAG_PARQUET.to_owned(), target.tag_value()));
    }
    if let Some(adopted) = &request.table {
        wanted.push((TAG_TABLE.to_owned(), adopted.to_string()));
    }
    let tag_list: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let already_tagged = wanted
        .iter()
        .all(|(key, value)| observed.tags.iter().any(|(k, v)| k == key && v == value));
    let tag = SetupAction::TagStream {
        stream: stream.clone(),
        tags: wanted,
    };
    steps.push(if already_tagged {
        unchanged(
            tag,
            format!("stream {stream} is tagged {}", tag_list.join(" ")),
        )
    } else {
        to_do(tag)
    });
    let remove = |tag| SetupAction::RemoveTag {
        stream: stream.clone(),
        tag,
    };
    if ttl.is_none() {
        steps.push(if current.has_ttl_tag {
            to_do(remove(TAG_TTL))
        } else {
            unchanged(
                remove(TAG_TTL),
                format!("stream {stream} has no {TAG_TTL} tag"),
            )
        });
    }
    if overflow.is_none() && current.overflow_tag.is_some() {
        steps.push(to_do(remove(TAG_OVERFLOW)));
    }
    if parquet.is_none() && current.parquet_tag.is_some() {
        steps.push(to_do(remove(TAG_PARQUET)));
    }
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
    // A new table is created with the index (see `table_steps`): nothing more to do.
    let Some(info) = existing else {
        return Ok(Vec::new());
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

/// The archive tags a stream has now, read leniently: a mode or TTL tag that setup is about
/// to overwrite may be invalid; only the table tag (which setup keeps) must be valid.
pub(super) struct CurrentTags {
    stream: StreamName,
    mode: Option<ArchiveMode>,
    /// The `StreamArchiveMode` value as written (`all`, `ALL`).
    mode_text: Option<String>,
    ttl_tag: Option<String>,
    has_ttl_tag: bool,
    table: Option<TableName>,
    overflow_tag: Option<String>,
    parquet_tag: Option<String>,
}

impl CurrentTags {
    /// The tags as setup reads them (through [`ArchiveTags`], the one reader): a mode or
    /// TTL tag that setup is about to overwrite may be invalid; the table tag, which setup
    /// keeps, must be valid.
    pub(super) fn read(stream: &StreamName, tags: &[(String, String)]) -> Result<Self, Error> {
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
            parquet_tag: tags.parquet.as_ref().map(|t| t.text.clone()),
        })
    }

    /// The table of `mode` (see [`planned_table`]).
    pub(super) fn table_for(&self, mode: ArchiveMode) -> TableName {
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

    /// The overflow bucket to keep ([`BucketChange::Keep`]): the tag must then be valid.
    fn overflow(&self) -> Result<Option<OverflowTarget>, Error> {
        self.kept(
            TAG_OVERFLOW,
            self.overflow_tag.as_deref(),
            OverflowTarget::parse,
            "--overflow-bucket BUCKET[/PREFIX] or --no-overflow",
        )
    }

    /// The Parquet archive to keep ([`BucketChange::Keep`]): the tag must then be valid.
    fn parquet(&self) -> Result<Option<ParquetTarget>, Error> {
        self.kept(
            TAG_PARQUET,
            self.parquet_tag.as_deref(),
            ParquetTarget::parse,
            "--parquet s3://BUCKET[/PREFIX] or --no-parquet",
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
#[path = "plan_tests.rs"]
mod tests;
