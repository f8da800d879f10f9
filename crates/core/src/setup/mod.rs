//! Setting a stream up for archiving (`kinarch setup`) and reporting how it is set up
//! (`kinarch status`).
//!
//! Setup is split into a read-only [`Setup::plan`] and [`Setup::apply`], so a dry run shows
//! exactly the steps a real run would take, and a re-run finds every step already done.
//!
//! Order of the steps: the table is created, made ACTIVE and given its TTL *before* the
//! stream is tagged. The tags are what the archiver reads, so they are the switch: once a
//! stream carries them, its records can be written at once.
//!
//! Turning TTL off removes the stream's `ArchiveTTL` tag, so new items get no `expireAfter`
//! and are kept; the table's TTL setting is left alone, so items archived earlier with an
//! expiry still expire as they were promised to (switch the table's TTL off yourself to keep
//! them too). Billing of an existing table is never changed.

use std::fmt;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;

use crate::aws::item::attr;
use crate::aws::region_of;
use crate::aws::streams::{
    StreamSummary, describe_stream_summary, list_stream_tags, tag_stream, untag_stream,
};
use crate::aws::tables::{
    Billing, Created, KeySchema, TableInfo, TtlEnabled, TtlState, create_archive_table,
    describe_table, describe_ttl, enable_ttl, wait_until_active,
};
use crate::domain::config::{
    ArchiveMode, ArchiveTtl, StreamArchiveConfig, TAG_MODE, TAG_TABLE, TAG_TTL,
};
use crate::domain::names::{StreamName, TableName};
use crate::error::Error;

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
}

impl SetupRequest {
    /// A request with the defaults: TTL kept as it is, on-demand billing.
    pub fn new(stream: StreamName, mode: ArchiveMode) -> Self {
        Self {
            stream,
            mode,
            ttl: TtlChange::Keep,
            billing: Billing::OnDemand,
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

/// What [`Setup::apply`] did: every step of the plan, each [`StepStatus::Done`] or
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

/// How a stream is set up for archiving, as `kinarch status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveStatus {
    /// The region.
    pub region: String,
    /// The stream as Kinesis describes it.
    pub stream: StreamSummary,
    /// Whether the stream has a `StreamArchiveMode` tag (was set up).
    pub configured: bool,
    /// The configuration read from the tags (without a mode tag: the archiver's default,
    /// LATEST).
    pub config: StreamArchiveConfig,
    /// The archive table, if it exists.
    pub table: Option<TableInfo>,
    /// The table's TTL setting, if the table exists.
    pub table_ttl: Option<TtlState>,
}

/// Sets streams up for archiving and reports their setup. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Setup {
    kinesis: KinesisClient,
    dynamodb: DynamoDbClient,
    region: String,
    wait_timeout: Duration,
    poll_interval: Duration,
}

impl Setup {
    /// Default bound on waiting for a new table to become ACTIVE. Tables usually take
    /// seconds; five minutes leaves room for a busy account.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

    /// Setup using the clients of `sdk`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::aws::{AwsOptions, load_sdk_config};
    /// use kinarch_core::setup::{Setup, SetupRequest, TtlChange};
    /// use kinarch_core::{ArchiveMode, ArchiveTtl, StreamName};
    ///
    /// let sdk = load_sdk_config(&AwsOptions::default()).await;
    /// let setup = Setup::new(&sdk);
    /// let mut request = SetupRequest::new(StreamName::new("orders")?, ArchiveMode::All);
    /// request.ttl = TtlChange::Expire(ArchiveTtl::from_seconds(30 * 24 * 3600)?);
    /// let plan = setup.plan(&request).await?;
    /// for step in &plan.steps {
    ///     println!("{:?}: {}", step.status, step.action);
    /// }
    /// let report = setup.apply(&plan).await?;
    /// println!("archiving into {}", report.config.table);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            kinesis: KinesisClient::new(sdk),
            dynamodb: DynamoDbClient::new(sdk),
            region: region_of(sdk),
            wait_timeout: Self::DEFAULT_WAIT_TIMEOUT,
            poll_interval: Duration::from_secs(2),
        }
    }

    /// Changes how long [`Setup::apply`] waits for a table to become ACTIVE.
    pub fn with_wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self.poll_interval = self
            .poll_interval
            .min(timeout / 4)
            .max(Duration::from_millis(50));
        self
    }

    /// Reads how `stream` is set up: its tags, table, key schema, TTL and item count.
    /// An unknown stream is [`Error::StreamNotFound`]; a stream that was never set up is
    /// reported (with `configured == false`), not an error.
    ///
    /// ```no_run
    /// # async fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::StreamName;
    /// use kinarch_core::setup::Setup;
    ///
    /// let status = Setup::new(&sdk).status(&StreamName::new("orders")?).await?;
    /// match &status.table {
    ///     Some(table) => println!("{}: about {:?} items", table.name, table.item_count),
    ///     None => println!("table {} does not exist", status.config.table),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn status(&self, stream: &StreamName) -> Result<ArchiveStatus, Error> {
        let summary = describe_stream_summary(&self.kinesis, stream).await?;
        let tags = list_stream_tags(&self.kinesis, stream).await?;
        let configured = tags.iter().any(|(key, _)| key == TAG_MODE);
        let config = StreamArchiveConfig::from_tags(
            stream,
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let table = describe_table(&self.dynamodb, &config.table).await?;
        let table_ttl = match &table {
            Some(_) => Some(describe_ttl(&self.dynamodb, &config.table).await?),
            None => None,
        };
        Ok(ArchiveStatus {
            region: self.region.clone(),
            stream: summary,
            configured,
            config,
            table,
            table_ttl,
        })
    }

    /// Works out the steps that bring the stream to `request`, changing nothing (the
    /// `--dry-run` of `kinarch setup`). See [`Setup::new`] for an example.
    ///
    /// Fails when the stream does not exist ([`Error::StreamNotFound`]), when the table
    /// exists with a key schema that does not fit the mode ([`Error::KeySchemaMismatch`]),
    /// or when the table's TTL is on another attribute ([`Error::TtlConflict`]).
    pub async fn plan(&self, request: &SetupRequest) -> Result<SetupPlan, Error> {
        let stream = &request.stream;
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
        let summary = describe_stream_summary(&self.kinesis, stream).await?;
        let tags = list_stream_tags(&self.kinesis, stream).await?;
        let current = CurrentTags::read(stream, &tags)?;
        let ttl = match request.ttl {
            TtlChange::Keep => current.ttl()?,
            TtlChange::Expire(ttl) => Some(ttl),
            TtlChange::Off => None,
        };
        let table = current
            .table
            .clone()
            .unwrap_or_else(|| request.mode.default_table_name(stream));
        let config = StreamArchiveConfig {
            stream: stream.clone(),
            mode: request.mode,
            ttl,
            table: table.clone(),
        };
        let mut steps = Vec::new();
        let mut notes = Vec::new();

        if let Some(previous) = current.mode.filter(|&m| m != request.mode) {
            let previous_table = current
                .table
                .clone()
                .unwrap_or_else(|| previous.default_table_name(stream));
            notes.push(format!(
                "the archive mode changes from {previous} to {}: records archived so far stay \
                 in table {previous_table}",
                request.mode
            ));
        }

        let existing = describe_table(&self.dynamodb, &table).await?;
        match &existing {
            None => {
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
                        &self.region,
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

        let table_ttl = match &existing {
            Some(_) => Some(describe_ttl(&self.dynamodb, &table).await?),
            None => None,
        };
        if ttl.is_some() {
            let enable = SetupAction::EnableTtl {
                table: table.clone(),
            };
            steps.push(match &table_ttl {
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

        let mut wanted = vec![(TAG_MODE.to_owned(), request.mode.as_str().to_owned())];
        if let Some(ttl) = ttl {
            wanted.push((TAG_TTL.to_owned(), ttl.tag_value()));
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

        Ok(SetupPlan {
            stream_arn: summary.arn,
            region: self.region.clone(),
            config,
            billing: request.billing,
            steps,
            notes,
        })
    }

    /// Takes the steps of `plan` that are to do, in order, and reports every step (see
    /// [`Setup::new`] for an example).
    /// Safe to repeat: a table created meanwhile by someone else is accepted if its key
    /// schema fits, TTL already on is accepted, tags are written with the same values.
    pub async fn apply(&self, plan: &SetupPlan) -> Result<SetupReport, Error> {
        let mut steps = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            if step.status != StepStatus::ToDo {
                steps.push(step.clone());
                continue;
            }
            tracing::info!(step = %step.action, "setup");
            let status = self.take(&step.action, plan).await?;
            steps.push(SetupStep {
                action: step.action.clone(),
                status,
            });
        }
        Ok(SetupReport {
            config: plan.config.clone(),
            region: plan.region.clone(),
            steps,
            notes: plan.notes.clone(),
        })
    }

    async fn take(&self, action: &SetupAction, plan: &SetupPlan) -> Result<StepStatus, Error> {
        match action {
            SetupAction::CreateTable {
                table,
                mode,
                billing,
            } => match create_archive_table(&self.dynamodb, table, *mode, *billing).await? {
                Created::Created => Ok(StepStatus::Done),
                Created::AlreadyExisted => {
                    // Created meanwhile by someone else: accept it only if it fits.
                    match describe_table(&self.dynamodb, table).await? {
                        Some(info) if !info.key_schema.fits(*mode) => Err(key_schema_mismatch(
                            &info,
                            *mode,
                            &plan.config.stream,
                            &plan.region,
                            false,
                        )),
                        _ => Ok(StepStatus::Unchanged(format!(
                            "table {table} was created meanwhile by someone else"
                        ))),
                    }
                }
            },
            SetupAction::WaitUntilActive { table } => {
                wait_until_active(&self.dynamodb, table, self.wait_timeout, self.poll_interval)
                    .await?;
                Ok(StepStatus::Done)
            }
            SetupAction::EnableTtl { table } => match enable_ttl(&self.dynamodb, table).await? {
                TtlEnabled::Enabled => Ok(StepStatus::Done),
                TtlEnabled::AlreadyEnabled => Ok(StepStatus::Unchanged(format!(
                    "TTL of table {table} was enabled meanwhile"
                ))),
            },
            SetupAction::TagStream { stream, tags } => {
                tag_stream(&self.kinesis, stream, tags).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::RemoveTtlTag { stream } => {
                untag_stream(&self.kinesis, stream, &[TAG_TTL]).await?;
                Ok(StepStatus::Done)
            }
        }
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
    ttl_tag: Option<String>,
    has_ttl_tag: bool,
    table: Option<TableName>,
}

impl CurrentTags {
    fn read(stream: &StreamName, tags: &[(String, String)]) -> Result<Self, Error> {
        let value = |name: &str| {
            tags.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let table = match value(TAG_TABLE) {
            None => None,
            Some(text) => Some(TableName::new(text.trim()).map_err(|e| {
                crate::domain::config::ConfigError {
                    stream: stream.clone(),
                    tag: TAG_TABLE,
                    reason: e.to_string(),
                }
            })?),
        };
        Ok(Self {
            stream: stream.clone(),
            mode: value(TAG_MODE).and_then(|v| v.parse().ok()),
            ttl_tag: value(TAG_TTL).map(str::to_owned),
            has_ttl_tag: value(TAG_TTL).is_some(),
            table,
        })
    }

    /// The TTL to keep ([`TtlChange::Keep`]): the tag must then be valid.
    fn ttl(&self) -> Result<Option<ArchiveTtl>, Error> {
        self.ttl_tag
            .as_deref()
            .map(|text| {
                ArchiveTtl::parse_tag(text).map_err(|e| {
                    Error::Config(crate::domain::config::ConfigError {
                        stream: self.stream.clone(),
                        tag: TAG_TTL,
                        reason: format!("{e}; pass --ttl-seconds N or --no-ttl to replace it"),
                    })
                })
            })
            .transpose()
    }
}

fn key_schema_mismatch(
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
