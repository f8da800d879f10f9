//! Setting a stream up for archiving (`kinarch setup`) and reporting how it is set up
//! (`kinarch status`).
//!
//! Setup is split into a read-only [`Setup::plan`] and [`Setup::apply`], so a dry run shows
//! exactly the steps a real run would take, and a re-run finds every step already done.
//! Planning itself is two parts: [`Setup::observe`] reads the stream, its tags and its
//! table; [`plan()`] decides the steps from what was observed, without I/O (tested branch by
//! branch in `plan.rs`).
//!
//! Order of the steps: the table is created, made ACTIVE and given its TTL *before* the
//! stream is tagged. The tags are what the archiver reads, so they are the switch: once a
//! stream carries them, its records can be written at once.
//!
//! Turning TTL off removes the stream's `ArchiveTTL` tag, so new items get no `expireAfter`
//! and are kept; the table's TTL setting is left alone, so items archived earlier with an
//! expiry still expire as they were promised to (switch the table's TTL off yourself to keep
//! them too). Billing of an existing table is never changed.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;

use crate::aws::objects::ObjectStore;
use crate::aws::region_of;
use crate::aws::streams::{
    StreamSummary, describe_stream_summary, list_stream_tags, tag_stream, untag_stream,
};
use crate::aws::tables::{
    Created, TIME_INDEX, TableIncarnation, TableInfo, TtlEnabled, TtlState, create_archive_table,
    create_time_index, describe_table, describe_ttl, enable_point_in_time_recovery, enable_ttl,
    point_in_time_recovery, tag_table, wait_until_active, wait_until_index_active,
};
use crate::domain::config::{
    ArchiveTags, StreamArchiveConfig, TABLE_TAG_STREAM, TAG_OVERFLOW, TAG_PARQUET,
};
use crate::domain::names::{StreamName, TableName};
use crate::domain::overflow::{BucketUse, ExpiryRule, OverflowTarget};
use crate::domain::parquet::{ColdRule, ParquetMarker, START_MARGIN};
use crate::error::Error;
use crate::poller::checkpoint::{Checkpoint, CheckpointLocation, CheckpointStore};
use crate::read::locate::{Located, TableOwner, locate, stream_unreadable, table_owner};
use crate::read::parquet::{NewestFile, newest_files};

mod action;
pub mod health;
pub mod list;
mod plan;
mod request;

use crate::aws::table_check::key_schema_mismatch;
pub use action::{SetupAction, SetupPlan, SetupReport, SetupStep, StepStatus};
pub use plan::{Observed, plan};
pub use request::{
    BucketChange, ColdChange, SetupRequest, TtlChange, check_request, planned_table,
};

/// How a stream is set up for archiving, as `kinarch status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveStatus {
    /// The region.
    pub region: String,
    /// The stream as Kinesis describes it; `None` when it is gone or cannot be read (then
    /// [`ArchiveStatus::located`] says why and how the table was found).
    pub stream: Option<StreamSummary>,
    /// How the archive table was found: from the tags, named by the caller, or by its
    /// default name because the stream could not be read.
    pub located: Located,
    /// Whether the stream has a `StreamArchiveMode` tag (was set up).
    pub configured: bool,
    /// Why tags were left out of [`ArchiveStatus::config`]: each invalid kinarch tag's
    /// message (see [`ArchiveTags::config_despite_invalid`]).
    pub invalid_tags: Vec<String>,
    /// The configuration read from the tags (without a mode tag: the archiver's default,
    /// LATEST).
    pub config: StreamArchiveConfig,
    /// The archive table, if it exists.
    pub table: Option<TableInfo>,
    /// The table's TTL setting, if the table exists.
    pub table_ttl: Option<TtlState>,
    /// `kinarch archive`'s checkpoints, when its default checkpoint table exists.
    pub checkpoints: Option<CheckpointsStatus>,
    /// Whose archive the table's `ArchivedStream` tag says it is.
    pub owner: TableOwner,
    /// With a Parquet archive: the newest file of each shard written in the last two UTC
    /// days, or why they could not be listed.
    pub parquet_newest: Option<Result<Vec<NewestFile>, String>>,
    /// With a Parquet archive: the days after which its lifecycle rule moves the files to
    /// S3 Glacier Instant Retrieval (`Ok(None)`: no rule), or why the bucket's rules could
    /// not be read.
    pub parquet_cold: Option<Result<Option<u64>, String>>,
}

impl ArchiveStatus {
    /// Everything that keeps the archive from being fully set up and usable; empty when it
    /// is healthy.
    pub fn problems(&self) -> Vec<health::Problem> {
        health::problems(self)
    }
}

/// The checkpoints of `kinarch archive` found by [`Setup::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointsStatus {
    /// The checkpoint table (`<archive table>-checkpoints`).
    pub table: TableName,
    /// Each shard's checkpoint, by shard id; or why they could not be read (a table of
    /// another stream, a permission missing).
    pub shards: Result<Vec<(String, Checkpoint)>, String>,
    /// Checkpoints that speak of an earlier table of the archive's name, deleted and created
    /// again (or of a table that no longer exists), by shard id: `kinarch archive` ignores
    /// them (see [`crate::poller::checkpoint::Checkpoints`]).
    pub stale: Vec<(String, Checkpoint)>,
}

impl CheckpointsStatus {
    /// The newest `updatedAt` of all shards (RFC 3339 text orders like time), which says
    /// how far behind the archiver is when it does not run.
    pub fn newest_update(&self) -> Option<&str> {
        let shards = self.shards.as_ref().ok()?;
        shards.iter().map(|(_, c)| c.updated_at.as_str()).max()
    }
}

/// Sets streams up for archiving and reports their setup. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Setup {
    kinesis: KinesisClient,
    dynamodb: DynamoDbClient,
    objects: ObjectStore,
    region: String,
    wait_timeout: Duration,
    index_wait_timeout: Duration,
    poll_interval: Duration,
}

impl Setup {
    /// Default bound on waiting for a new table to become ACTIVE. Tables usually take
    /// seconds; five minutes leaves room for a busy account.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

    /// Default bound on waiting for a new time index. DynamoDB fills it with every existing
    /// item first, which on a table of millions takes minutes to hours; after this long
    /// setup stops waiting with [`Error::IndexNotActive`] (reads scan until it is ready).
    pub const DEFAULT_INDEX_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

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
            objects: ObjectStore::new(sdk),
            region: region_of(sdk),
            wait_timeout: Self::DEFAULT_WAIT_TIMEOUT,
            index_wait_timeout: Self::DEFAULT_INDEX_WAIT_TIMEOUT,
            poll_interval: Duration::from_secs(2),
        }
    }

    /// Changes how long [`Setup::apply`] waits for a table (and a new time index) to
    /// become ACTIVE.
    pub fn with_wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self.index_wait_timeout = timeout;
        self.poll_interval = self
            .poll_interval
            .min(timeout / 4)
            .max(Duration::from_millis(50));
        self
    }

    /// Reads how `stream` is set up: its tags, table, key schema, TTL and item count. With
    /// `table`, that table is reported as the archive (its mode from its key schema). A
    /// stream that is gone or cannot be read is reported with the archive table found by its
    /// default names ([`crate::read::locate`]); with no such table either, it is
    /// [`Error::StreamNotFound`]. A stream that was never set up is reported (with
    /// `configured == false`), not an error.
    ///
    /// ```no_run
    /// # async fn example(sdk: aws_config::SdkConfig) -> Result<(), kinarch_core::Error> {
    /// use kinarch_core::StreamName;
    /// use kinarch_core::setup::Setup;
    ///
    /// let status = Setup::new(&sdk).status(&StreamName::new("orders")?, None).await?;
    /// match &status.table {
    ///     Some(table) => println!("{}: about {:?} items", table.name, table.item_count),
    ///     None => println!("table {} does not exist", status.config.table),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn status(
        &self,
        stream: &StreamName,
        table: Option<&TableName>,
    ) -> Result<ArchiveStatus, Error> {
        let summary = match describe_stream_summary(&self.kinesis, stream).await {
            Ok(summary) => Some(summary),
            Err(err) if stream_unreadable(&err) => None,
            Err(err) => return Err(err),
        };
        let (config, configured, located, invalid_tags) = match (&summary, table) {
            (Some(_), None) => {
                let tags = list_stream_tags(&self.kinesis, stream).await?;
                let tags =
                    ArchiveTags::parse(stream, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                // An invalid tag is a problem to show, with everything else that is known.
                let (config, invalid) = tags.config_despite_invalid();
                (config, tags.configured(), Located::Tags, invalid)
            }
            _ => {
                // Another stream's table is a problem to show, not a refusal.
                let found = locate(
                    &self.kinesis,
                    &self.dynamodb,
                    &self.region,
                    stream,
                    table,
                    true,
                )
                .await?;
                (found.config, true, found.located, Vec::new())
            }
        };
        let table = describe_table(&self.dynamodb, &config.table).await?;
        let owner = table_owner(&self.dynamodb, table.as_ref()).await?;
        let table_ttl = match &table {
            Some(_) => Some(describe_ttl(&self.dynamodb, &config.table).await?),
            None => None,
        };
        let checkpoints = self
            .checkpoints(&config, table.as_ref().map(|t| &t.incarnation))
            .await?;
        let parquet_newest = match &config.parquet {
            None => None,
            Some(target) => Some(
                newest_files(&self.objects, target, &config.stream, chrono::Utc::now())
                    .await
                    .map_err(|e| e.to_string()),
            ),
        };
        let parquet_cold = match &config.parquet {
            None => None,
            Some(target) => Some(
                self.objects
                    .cold_days(target, &ColdRule::of(target, &config.stream))
                    .await
                    .map_err(|e| e.to_string()),
            ),
        };
        Ok(ArchiveStatus {
            region: self.region.clone(),
            stream: summary,
            located,
            configured,
            invalid_tags,
            config,
            table,
            table_ttl,
            checkpoints,
            owner,
            parquet_newest,
            parquet_cold,
        })
    }

    /// The checkpoints in the default checkpoint table, if it exists (it is never created
    /// here), split by whether they speak of the archive table `archive` (all are stale when
    /// it does not exist).
    async fn checkpoints(
        &self,
        config: &StreamArchiveConfig,
        archive: Option<&TableIncarnation>,
    ) -> Result<Option<CheckpointsStatus>, Error> {
        let Ok(CheckpointLocation::Table(table)) = CheckpointLocation::default_for(config) else {
            return Ok(None);
        };
        if describe_table(&self.dynamodb, &table).await?.is_none() {
            return Ok(None);
        }
        let location = CheckpointLocation::Table(table.clone());
        let incarnation = archive.cloned().unwrap_or_default();
        let loaded =
            match CheckpointStore::open(&self.dynamodb, location, config, incarnation).await {
                Ok(store) => store.load().await,
                Err(error) => Err(error),
            };
        let mut stale = Vec::new();
        let shards = loaded
            .map(|mut loaded| {
                // Without the archive table every checkpoint speaks of one that is gone; mode
                // NONE has no table, and its checkpoints are current.
                if archive.is_none() && config.mode.has_table() {
                    loaded.stale.extend(loaded.current.drain());
                }
                stale = loaded.stale.into_iter().collect();
                let mut shards: Vec<(String, Checkpoint)> = loaded.current.into_iter().collect();
                shards.sort_by(|a, b| a.0.cmp(&b.0));
                shards
            })
            .map_err(|error| error.to_string());
        Ok(Some(CheckpointsStatus {
            table,
            shards,
            stale,
        }))
    }

    /// Works out the steps that bring the stream to `request`, changing nothing (the
    /// `--dry-run` of `kinarch setup`): [`Setup::observe`], then the pure [`plan()`] over
    /// what was observed. See [`Setup::new`] for an example.
    ///
    /// Fails when the stream does not exist ([`Error::StreamNotFound`]), when the table
    /// exists with a key schema that does not fit the mode ([`Error::KeySchemaMismatch`]),
    /// or when the table's TTL is on another attribute ([`Error::TtlConflict`]).
    pub async fn plan(&self, request: &SetupRequest) -> Result<SetupPlan, Error> {
        check_request(request)?;
        let observed = self.observe(request).await?;
        plan(request, &observed, &self.region)
    }

    /// Reads what setup decides on: the stream (ARN) and its tags, and the table the plan
    /// would use ([`planned_table`]) with its TTL setting. A new overflow or Parquet bucket must exist
    /// ([`Error::BucketUnusable`] otherwise; HeadBucket, so a dry run checks it
    /// too).
    pub async fn observe(&self, request: &SetupRequest) -> Result<Observed, Error> {
        let stream = &request.stream;
        let summary = describe_stream_summary(&self.kinesis, stream).await?;
        if let BucketChange::Set(target) = &request.overflow {
            self.objects
                .check_bucket(target, BucketUse::Overflow)
                .await?;
        }
        if let BucketChange::Set(target) = &request.parquet {
            self.objects
                .check_bucket(target, BucketUse::Parquet)
                .await?;
        }
        let tags = list_stream_tags(&self.kinesis, stream).await?;
        let target = match &request.overflow {
            BucketChange::Set(target) => Some(target.clone()),
            BucketChange::Off => None,
            // An invalid tag is the plan's error to report.
            BucketChange::Keep => tags
                .iter()
                .find(|(k, _)| k == TAG_OVERFLOW)
                .and_then(|(_, v)| OverflowTarget::parse(v).ok()),
        };
        let overflow_expiry = match &target {
            None => None,
            Some(target) => Some(
                self.objects
                    .expiry_days(target, &ExpiryRule::of(target, stream))
                    .await
                    .map_err(|e| e.to_string()),
            ),
        };
        let parquet_target = match &request.parquet {
            BucketChange::Set(target) => Some(target.clone()),
            BucketChange::Off => None,
            BucketChange::Keep => tags
                .iter()
                .find(|(k, _)| k == TAG_PARQUET)
                .and_then(|(_, v)| OverflowTarget::parse(v).ok()),
        };
        let parquet_cold = match (&parquet_target, request.parquet_cold) {
            (_, ColdChange::Keep) | (None, _) => None,
            (Some(target), _) => Some(
                self.objects
                    .cold_days(target, &ColdRule::of(target, stream))
                    .await
                    .map_err(|e| e.to_string()),
            ),
        };
        let table_name = planned_table(request, &tags)?;
        // Mode NONE keeps no table: there is none to read.
        let table = if request.mode.has_table() {
            describe_table(&self.dynamodb, &table_name).await?
        } else {
            None
        };
        let table_ttl = match &table {
            Some(_) => Some(describe_ttl(&self.dynamodb, &table_name).await?),
            None => None,
        };
        let pitr = match &table {
            Some(_) if request.pitr => {
                Some(point_in_time_recovery(&self.dynamodb, &table_name).await?)
            }
            _ => None,
        };
        let orphan_checkpoints = match &table {
            None if request.mode.has_table() => {
                self.orphan_checkpoints(stream, request.mode, &table_name)
                    .await
            }
            _ => None,
        };
        let table_owner = table_owner(&self.dynamodb, table.as_ref()).await?;
        Ok(Observed {
            stream_arn: summary.arn,
            tags,
            table,
            table_ttl,
            pitr,
            overflow_expiry,
            parquet_cold,
            orphan_checkpoints,
            table_owner,
        })
    }

    /// The default checkpoint table of an archive table that does not exist, and how many
    /// checkpoints it holds; `None` when there is none or it cannot be read (this only feeds
    /// a note).
    async fn orphan_checkpoints(
        &self,
        stream: &StreamName,
        mode: crate::ArchiveMode,
        table: &TableName,
    ) -> Option<(TableName, usize)> {
        let mut config = StreamArchiveConfig::new(stream.clone(), mode, None);
        config.table = table.clone();
        let location = CheckpointLocation::default_for(&config).ok()?;
        let CheckpointLocation::Table(name) = &location else {
            return None;
        };
        describe_table(&self.dynamodb, name).await.ok()??;
        let store = CheckpointStore::open(
            &self.dynamodb,
            location.clone(),
            &config,
            TableIncarnation::default(),
        )
        .await
        .ok()?;
        let loaded = store.load().await.ok()?;
        Some((name.clone(), loaded.current.len() + loaded.stale.len()))
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
                time_index,
            } => match create_archive_table(&self.dynamodb, table, *mode, *billing, *time_index)
                .await?
            {
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
            SetupAction::MarkParquetStart { target, stream } => {
                // A tier's time is kept: the records it moved are still only in the files.
                let tiered_before = self
                    .objects
                    .marker(target, stream)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|marker| marker.tiered_before);
                let marker = ParquetMarker {
                    stream: stream.to_string(),
                    parquet_since: Some(chrono::Utc::now() + START_MARGIN),
                    tiered_before,
                };
                self.objects.put_marker(target, stream, &marker).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::SetParquetCold { target, rule, days } => {
                self.objects.set_cold(target, rule, *days).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::RemoveTag { stream, tag } => {
                untag_stream(&self.kinesis, stream, &[tag]).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::CheckBucket { target, role } => {
                self.objects.check_writable(target, *role).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::SetOverflowExpiry { target, rule, days } => {
                self.objects.set_expiry(target, rule, *days).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::EnablePointInTimeRecovery { table } => {
                enable_point_in_time_recovery(&self.dynamodb, table).await?;
                Ok(StepStatus::Done)
            }
            SetupAction::CreateTimeIndex { table } => {
                // Described now: a table created by this run has no description in the plan.
                let Some(info) = describe_table(&self.dynamodb, table).await? else {
                    return Err(Error::Internal(format!(
                        "table {table} disappeared before its time index could be added"
                    )));
                };
                if info.time_index().is_some() {
                    return Ok(StepStatus::Unchanged(format!(
                        "table {table} got a time index meanwhile"
                    )));
                }
                match create_time_index(&self.dynamodb, &info).await? {
                    Created::Created => Ok(StepStatus::Done),
                    Created::AlreadyExisted => Ok(StepStatus::Unchanged(format!(
                        "index {TIME_INDEX} of table {table} was added meanwhile"
                    ))),
                }
            }
            SetupAction::WaitUntilIndexActive { table } => {
                wait_until_index_active(
                    &self.dynamodb,
                    table,
                    self.index_wait_timeout,
                    self.poll_interval,
                )
                .await?;
                Ok(StepStatus::Done)
            }
            SetupAction::TagTable { table, stream } => {
                let arn = describe_table(&self.dynamodb, table)
                    .await?
                    .and_then(|info| info.arn)
                    .ok_or_else(|| {
                        Error::Internal(format!("DescribeTable of {table} gave no table ARN"))
                    })?;
                let tag = [(TABLE_TAG_STREAM.to_owned(), stream.to_string())];
                tag_table(&self.dynamodb, &arn, &tag).await?;
                Ok(StepStatus::Done)
            }
        }
    }
}
