//! Archive tables as DynamoDB resources: their key schema, status, billing and TTL.
//!
//! `kinarch setup` and `kinarch status` both go through these functions, so a table is
//! described, created and checked one way only.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::update_table::UpdateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
    KeySchemaElement, KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;

use crate::aws::aws_error;
use crate::aws::error::{AwsErrorKind, kind_of};
use crate::aws::item::attr;
use crate::domain::config::ArchiveMode;
use crate::domain::names::TableName;
use crate::error::Error;

/// How a table is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Billing {
    /// On-demand (PAY_PER_REQUEST): no capacity to plan, pay per request.
    OnDemand,
    /// Provisioned capacity, in read and write capacity units (each at least 1).
    Provisioned {
        /// Read capacity units.
        read_capacity: u64,
        /// Write capacity units.
        write_capacity: u64,
    },
}

impl fmt::Display for Billing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Billing::OnDemand => f.write_str("on-demand"),
            Billing::Provisioned {
                read_capacity,
                write_capacity,
            } => write!(
                f,
                "provisioned, {read_capacity} read / {write_capacity} write capacity units"
            ),
        }
    }
}

/// Whether a key attribute is the partition (HASH) or sort (RANGE) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Partition key.
    Hash,
    /// Sort key.
    Range,
}

/// One attribute of a key schema, with its type (`S`, `N`, `B`) as the attribute
/// definitions say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyElement {
    /// HASH or RANGE.
    pub role: KeyRole,
    /// Attribute name.
    pub name: String,
    /// Attribute type; `?` when the table description does not define it.
    pub attribute_type: String,
}

/// A table's primary key, in the order DynamoDB lists it (HASH first).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeySchema(pub Vec<KeyElement>);

impl KeySchema {
    /// The key schema of the table contract for `mode`: HASH `partitionKey` (S), plus RANGE
    /// `sequenceNumber` (S) for ALL, which keeps every record of a key.
    pub fn for_mode(mode: ArchiveMode) -> Self {
        let element = |role, name: &str| KeyElement {
            role,
            name: name.to_owned(),
            attribute_type: "S".to_owned(),
        };
        let mut elements = vec![element(KeyRole::Hash, attr::PARTITION_KEY)];
        if mode == ArchiveMode::All {
            elements.push(element(KeyRole::Range, attr::SEQUENCE_NUMBER));
        }
        Self(elements)
    }

    /// The time index's key: HASH `shardId` (S), RANGE `approximateArrivalTimestamp` (N).
    /// A shard takes at most 1,000 records a second, which one index partition absorbs, and
    /// within a shard the range key orders its records by arrival: a window is one Query
    /// per shard.
    pub fn time_index() -> Self {
        Self(vec![
            KeyElement {
                role: KeyRole::Hash,
                name: attr::SHARD_ID.to_owned(),
                attribute_type: "S".to_owned(),
            },
            KeyElement {
                role: KeyRole::Range,
                name: attr::APPROXIMATE_ARRIVAL_TIMESTAMP.to_owned(),
                attribute_type: "N".to_owned(),
            },
        ])
    }

    /// Whether a table with this key schema can hold an archive of `mode`.
    pub fn fits(&self, mode: ArchiveMode) -> bool {
        *self == Self::for_mode(mode)
    }

    /// The mode this key schema fits, if any.
    pub fn mode(&self) -> Option<ArchiveMode> {
        [ArchiveMode::All, ArchiveMode::Latest]
            .into_iter()
            .find(|&mode| self.fits(mode))
    }
}

impl fmt::Display for KeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, element) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            let role = match element.role {
                KeyRole::Hash => "HASH",
                KeyRole::Range => "RANGE",
            };
            write!(f, "{role} {} ({})", element.name, element.attribute_type)?;
        }
        Ok(())
    }
}

/// What DescribeTable says about an archive table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The table.
    pub name: TableName,
    /// `ACTIVE`, `CREATING`, `UPDATING`, ...
    pub status: String,
    /// Its primary key.
    pub key_schema: KeySchema,
    /// How it is billed.
    pub billing: Billing,
    /// Items, as DynamoDB last counted them (updated about every six hours).
    pub item_count: Option<i64>,
    /// Bytes of the items, counted as `item_count` is.
    pub size_bytes: Option<i64>,
    /// The table's ARN (what exports and IAM policies name it by).
    pub arn: Option<String>,
    /// Its global secondary indexes (see [`TableInfo::time_index`]).
    pub indexes: Vec<IndexInfo>,
    /// Which table of that name it is (see [`TableIncarnation`]).
    pub incarnation: TableIncarnation,
}

/// Which table of a name a table is. A table deleted and created again under the same name
/// is another table: what was true of the first (what it holds, how far an archiver got) is
/// not true of the second. DynamoDB tells them apart by `TableId` (a UUID, returned by AWS)
/// and `CreationDateTime`; emulators may return only the latter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableIncarnation {
    /// DescribeTable's `TableId`, when given.
    pub table_id: Option<String>,
    /// DescribeTable's `CreationDateTime`, to the millisecond, when given.
    pub created_at: Option<DateTime<Utc>>,
}

impl TableIncarnation {
    /// Whether `self` and `other` are known to be different tables: their ids differ, or
    /// (without an id on both sides) their creation times do. Unknown on either side is not
    /// a difference.
    pub fn differs_from(&self, other: &TableIncarnation) -> bool {
        match (&self.table_id, &other.table_id) {
            (Some(a), Some(b)) => a != b,
            _ => matches!((self.created_at, other.created_at), (Some(a), Some(b)) if a != b),
        }
    }
}

impl fmt::Display for TableIncarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.created_at, &self.table_id) {
            (Some(created), _) => write!(
                f,
                "created {}",
                created.to_rfc3339_opts(SecondsFormat::Millis, true)
            ),
            (None, Some(id)) => write!(f, "id {id}"),
            (None, None) => f.write_str("of unknown creation"),
        }
    }
}

impl TableInfo {
    /// Whether the table takes reads and writes.
    pub fn is_active(&self) -> bool {
        self.status == TableStatus::Active.as_str()
    }

    /// The table's time index, if it has one: the index named [`TIME_INDEX`], or else any
    /// index with the time index's key schema and a projection the reader can use (one a
    /// user made by hand works too). It may still be CREATING; see [`IndexInfo::is_active`].
    pub fn time_index(&self) -> Option<&IndexInfo> {
        let usable = |i: &&IndexInfo| i.key_schema == KeySchema::time_index() && i.projects_all;
        self.indexes
            .iter()
            .filter(usable)
            .find(|i| i.name == TIME_INDEX)
            .or_else(|| self.indexes.iter().find(usable))
    }

    /// An index named [`TIME_INDEX`] that the reader cannot use (another key schema, a
    /// projection without the payload): setup refuses to touch it.
    pub fn misfit_time_index(&self) -> Option<&IndexInfo> {
        self.indexes
            .iter()
            .find(|i| i.name == TIME_INDEX && Some(*i) != self.time_index())
    }
}

/// The name of the time index `kinarch setup --time-index` creates.
pub const TIME_INDEX: &str = "kinarch-arrival-time";

/// A global secondary index, as DescribeTable gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The index name.
    pub name: String,
    /// `ACTIVE`, `CREATING`, `UPDATING`, `DELETING`.
    pub status: String,
    /// Its key, with the types the table's attribute definitions give.
    pub key_schema: KeySchema,
    /// Whether it projects every attribute (`ALL`).
    pub projects_all: bool,
    /// Whether DynamoDB is still filling it with the table's existing items.
    pub backfilling: bool,
}

impl IndexInfo {
    /// Whether the index takes queries with every item in it: ACTIVE and not backfilling.
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE" && !self.backfilling
    }
}

/// The TTL setting of a table (DescribeTimeToLive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtlState {
    /// TTL is on for this attribute.
    Enabled(String),
    /// TTL is being switched on for this attribute (takes up to an hour on AWS).
    Enabling(String),
    /// TTL is being switched off.
    Disabling(String),
    /// TTL is off.
    Disabled,
}

impl TtlState {
    /// Whether items with an `expireAfter` in the past will be deleted (now or once
    /// enabling finishes).
    pub fn expires_archive_items(&self) -> bool {
        matches!(self, TtlState::Enabled(a) | TtlState::Enabling(a) if a == attr::EXPIRE_AFTER)
    }
}

impl fmt::Display for TtlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlState::Enabled(a) => write!(f, "enabled on attribute {a}"),
            TtlState::Enabling(a) => write!(f, "being enabled on attribute {a}"),
            TtlState::Disabling(a) => write!(f, "being disabled (attribute {a})"),
            TtlState::Disabled => f.write_str("disabled"),
        }
    }
}

/// Describes a table; `None` when it does not exist.
pub async fn describe_table(
    dynamodb: &DynamoDbClient,
    table: &TableName,
) -> Result<Option<TableInfo>, Error> {
    let output = match dynamodb
        .describe_table()
        .table_name(table.as_str())
        .send()
        .await
    {
        Ok(output) => output,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(DescribeTableError::is_resource_not_found_exception) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(aws_error("DynamoDB.DescribeTable", err)),
    };
    let Some(description) = output.table else {
        return Ok(None);
    };
    let type_of = |name: &str| {
        description
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .map(|d| d.attribute_type().as_str().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    let schema_of = |elements: &[KeySchemaElement]| {
        KeySchema(
            elements
                .iter()
                .map(|k| KeyElement {
                    role: if *k.key_type() == KeyType::Range {
                        KeyRole::Range
                    } else {
                        KeyRole::Hash
                    },
                    name: k.attribute_name().to_owned(),
                    attribute_type: type_of(k.attribute_name()),
                })
                .collect(),
        )
    };
    let key_schema = schema_of(description.key_schema());
    let indexes = description
        .global_secondary_indexes()
        .iter()
        .map(|index| IndexInfo {
            name: index.index_name().unwrap_or_default().to_owned(),
            status: index
                .index_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "UNKNOWN".to_owned()),
            key_schema: schema_of(index.key_schema()),
            projects_all: index
                .projection()
                .and_then(|p| p.projection_type())
                .is_some_and(|t| *t == ProjectionType::All),
            backfilling: index.backfilling() == Some(true),
        })
        .collect();
    // A table made before on-demand billing existed has no billing summary: provisioned.
    let on_demand = description
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .is_some_and(|m| *m == BillingMode::PayPerRequest);
    let billing = if on_demand {
        Billing::OnDemand
    } else {
        let throughput = description.provisioned_throughput();
        let units = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        Billing::Provisioned {
            read_capacity: units(throughput.and_then(|t| t.read_capacity_units())),
            write_capacity: units(throughput.and_then(|t| t.write_capacity_units())),
        }
    };
    Ok(Some(TableInfo {
        name: table.clone(),
        status: description
            .table_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".to_owned()),
        key_schema,
        billing,
        item_count: description.item_count(),
        size_bytes: description.table_size_bytes(),
        arn: description.table_arn().map(str::to_owned),
        indexes,
        incarnation: TableIncarnation {
            table_id: description.table_id().map(str::to_owned),
            created_at: description
                .creation_date_time()
                .and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?)),
        },
    }))
}

/// The tags of the table with ARN `arn` (all pages of ListTagsOfResource).
pub async fn table_tags(
    dynamodb: &DynamoDbClient,
    arn: &str,
) -> Result<Vec<(String, String)>, Error> {
    let mut tags = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let output = dynamodb
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|err| aws_error("DynamoDB.ListTagsOfResource", err))?;
        tags.extend(
            output
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
        );
        match output.next_token {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => return Ok(tags),
        }
    }
}

/// Adds `tags` to the table with ARN `arn` (TagResource; other tags are kept).
pub async fn tag_table(
    dynamodb: &DynamoDbClient,
    arn: &str,
    tags: &[(String, String)],
) -> Result<(), Error> {
    let tags = tags
        .iter()
        .map(|(key, value)| {
            aws_sdk_dynamodb::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| Error::Internal(format!("a table tag: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    dynamodb
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|err| aws_error("DynamoDB.TagResource", err))?;
    Ok(())
}

/// The names of every table in the region (all pages of ListTables).
pub async fn list_tables(dynamodb: &DynamoDbClient) -> Result<Vec<TableName>, Error> {
    let names: Vec<String> = dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|err| aws_error("DynamoDB.ListTables", err))?;
    // DynamoDB only holds valid names; one it cannot hold is skipped, not fatal.
    Ok(names
        .iter()
        .filter_map(|name| TableName::new(name).ok())
        .collect())
}

/// Reads a table's TTL setting.
pub async fn describe_ttl(dynamodb: &DynamoDbClient, table: &TableName) -> Result<TtlState, Error> {
    let output = dynamodb
        .describe_time_to_live()
        .table_name(table.as_str())
        .send()
        .await
        .map_err(|err| aws_error("DynamoDB.DescribeTimeToLive", err))?;
    let Some(description) = output.time_to_live_description else {
        return Ok(TtlState::Disabled);
    };
    let attribute = description.attribute_name.unwrap_or_default();
    Ok(match description.time_to_live_status {
        Some(TimeToLiveStatus::Enabled) => TtlState::Enabled(attribute),
        Some(TimeToLiveStatus::Enabling) => TtlState::Enabling(attribute),
        Some(TimeToLiveStatus::Disabling) => TtlState::Disabling(attribute),
        _ => TtlState::Disabled,
    })
}

/// Whether a create call found the table already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The table was created (it may still be CREATING).
    Created,
    /// A table of that name existed already (created meanwhile by someone else).
    AlreadyExisted,
}

/// Creates a table with the contract's key schema for `mode`, with the time index when
/// `time_index` ([`TIME_INDEX`]): an index created with its table is ACTIVE when the table
/// is, where one added later (UpdateTable) takes minutes even on an empty table.
pub async fn create_archive_table(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    mode: ArchiveMode,
    billing: Billing,
    time_index: bool,
) -> Result<Created, Error> {
    let index = match time_index {
        true => Some(time_index_definition(billing)?),
        false => None,
    };
    create_table_with(dynamodb, table, &KeySchema::for_mode(mode), billing, index).await
}

/// Creates a table whose key attributes are all strings (S), as every table kinarch makes
/// is: archive tables and the checkpoint table of `kinarch archive`.
pub async fn create_table(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    key: &KeySchema,
    billing: Billing,
) -> Result<Created, Error> {
    create_table_with(dynamodb, table, key, billing, None).await
}

/// The time index as CreateTable takes it: key, projection ALL, and a provisioned table's
/// capacity.
fn time_index_definition(
    billing: Billing,
) -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex, Error> {
    let mut index = aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name(TIME_INDEX)
        .set_key_schema(Some(key_schema_elements(&KeySchema::time_index())?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        );
    if let Billing::Provisioned {
        read_capacity,
        write_capacity,
    } = billing
    {
        index = index.provisioned_throughput(throughput(read_capacity, write_capacity)?);
    }
    index
        .build()
        .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))
}

async fn create_table_with(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    key: &KeySchema,
    billing: Billing,
    index: Option<aws_sdk_dynamodb::types::GlobalSecondaryIndex>,
) -> Result<Created, Error> {
    let mut call = dynamodb.create_table().table_name(table.as_str());
    let index_key = KeySchema::time_index();
    let index_attributes = match index {
        Some(_) => &index_key.0[..],
        None => &[],
    };
    for element in key.0.iter().chain(index_attributes) {
        let attribute_type = match element.attribute_type.as_str() {
            "N" => ScalarAttributeType::N,
            _ => ScalarAttributeType::S,
        };
        call = call.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&element.name)
                .attribute_type(attribute_type)
                .build()
                .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))?,
        );
    }
    call = call.set_key_schema(Some(key_schema_elements(key)?));
    if let Some(index) = index {
        call = call.global_secondary_indexes(index);
    }
    call = match billing {
        Billing::OnDemand => call.billing_mode(BillingMode::PayPerRequest),
        Billing::Provisioned {
            read_capacity,
            write_capacity,
        } => call
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(throughput(read_capacity, write_capacity)?),
    };
    match call.send().await {
        Ok(_) => Ok(Created::Created),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(CreateTableError::is_resource_in_use_exception) =>
        {
            Ok(Created::AlreadyExisted)
        }
        Err(err) => Err(aws_error("DynamoDB.CreateTable", err)),
    }
}

/// Waits until a table is ACTIVE, asking every `poll` for at most `timeout`.
pub async fn wait_until_active(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    timeout: Duration,
    poll: Duration,
) -> Result<TableInfo, Error> {
    let started = Instant::now();
    loop {
        let status = match describe_table(dynamodb, table).await? {
            Some(info) if info.is_active() => return Ok(info),
            Some(info) => info.status,
            // Just created: DescribeTable may lag behind CreateTable for a moment.
            None => "not yet visible".to_owned(),
        };
        if started.elapsed() + poll > timeout {
            return Err(Error::TableNotActive {
                table: table.clone(),
                status,
                waited_seconds: started.elapsed().as_secs(),
            });
        }
        tracing::debug!(table = %table, %status, "waiting for the table to become ACTIVE");
        tokio::time::sleep(poll).await;
    }
}

/// Adds the time index ([`TIME_INDEX`], key [`KeySchema::time_index`], projection ALL) to
/// an existing table with UpdateTable. The projection is ALL because a replay needs the
/// payload, which is nearly all of an item: INCLUDE would cost the same and miss attributes
/// added later. A provisioned table's index gets the table's capacity (it takes every
/// write the table takes). DynamoDB then fills the index with the existing items
/// ([`wait_until_index_active`]).
pub async fn create_time_index(
    dynamodb: &DynamoDbClient,
    info: &TableInfo,
) -> Result<Created, Error> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        Error::Internal(format!("building a DynamoDB request: {e}"))
    };
    let index_key = KeySchema::time_index();
    let mut call = dynamodb.update_table().table_name(info.name.as_str());
    // Every key attribute of the table and the new index: AWS merges them with the table's
    // definitions, emulators may replace them.
    for element in info.key_schema.0.iter().chain(&index_key.0) {
        let attribute_type = match element.attribute_type.as_str() {
            "N" => ScalarAttributeType::N,
            "B" => ScalarAttributeType::B,
            _ => ScalarAttributeType::S,
        };
        call = call.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&element.name)
                .attribute_type(attribute_type)
                .build()
                .map_err(build)?,
        );
    }
    let mut index = CreateGlobalSecondaryIndexAction::builder()
        .index_name(TIME_INDEX)
        .set_key_schema(Some(key_schema_elements(&index_key)?))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        );
    if let Billing::Provisioned {
        read_capacity,
        write_capacity,
    } = info.billing
    {
        index = index.provisioned_throughput(throughput(read_capacity, write_capacity)?);
    }
    let update = GlobalSecondaryIndexUpdate::builder()
        .create(index.build().map_err(build)?)
        .build();
    match call.global_secondary_index_updates(update).send().await {
        Ok(_) => Ok(Created::Created),
        // Another setup is changing the table (adding the index, most likely); the wait
        // then checks it is the one wanted.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(UpdateTableError::is_resource_in_use_exception) =>
        {
            Ok(Created::AlreadyExisted)
        }
        // DynamoDB refuses to create an index that exists (ValidationException, which the
        // SDK does not model for UpdateTable): another setup added it meanwhile, as the
        // table now says.
        Err(err) if kind_of(&err) == AwsErrorKind::Validation => {
            let added = describe_table(dynamodb, &info.name)
                .await?
                .is_some_and(|now| now.indexes.iter().any(|i| i.name == TIME_INDEX));
            if added {
                Ok(Created::AlreadyExisted)
            } else {
                Err(aws_error("DynamoDB.UpdateTable", err))
            }
        }
        Err(err) => Err(aws_error("DynamoDB.UpdateTable", err)),
    }
}

/// Waits until the table's time index is ACTIVE and filled ([`IndexInfo::is_active`]),
/// asking every `poll` for at most `timeout`.
pub async fn wait_until_index_active(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    timeout: Duration,
    poll: Duration,
) -> Result<IndexInfo, Error> {
    let started = Instant::now();
    loop {
        let info = describe_table(dynamodb, table).await?;
        let index = info.as_ref().and_then(|info| {
            info.time_index()
                .or_else(|| info.indexes.iter().find(|i| i.name == TIME_INDEX))
        });
        let status = match index {
            Some(index) if index.is_active() => return Ok(index.clone()),
            Some(index) if index.backfilling => format!("{} (backfilling)", index.status),
            Some(index) => index.status.clone(),
            None => "not yet visible".to_owned(),
        };
        if started.elapsed() + poll > timeout {
            return Err(Error::IndexNotActive {
                table: table.clone(),
                index: TIME_INDEX.to_owned(),
                status,
                waited_seconds: started.elapsed().as_secs(),
            });
        }
        tracing::debug!(table = %table, %status, "waiting for the time index to become ACTIVE");
        tokio::time::sleep(poll).await;
    }
}

fn key_schema_elements(key: &KeySchema) -> Result<Vec<KeySchemaElement>, Error> {
    key.0
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(&element.name)
                .key_type(match element.role {
                    KeyRole::Hash => KeyType::Hash,
                    KeyRole::Range => KeyType::Range,
                })
                .build()
                .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))
        })
        .collect()
}

fn throughput(read_capacity: u64, write_capacity: u64) -> Result<ProvisionedThroughput, Error> {
    let units = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ProvisionedThroughput::builder()
        .read_capacity_units(units(read_capacity))
        .write_capacity_units(units(write_capacity))
        .build()
        .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))
}

/// Whether point-in-time recovery (continuous backups, which exports need) is on.
pub async fn point_in_time_recovery(
    dynamodb: &DynamoDbClient,
    table: &TableName,
) -> Result<bool, Error> {
    let output = dynamodb
        .describe_continuous_backups()
        .table_name(table.as_str())
        .send()
        .await
        .map_err(|err| aws_error("DynamoDB.DescribeContinuousBackups", err))?;
    Ok(output
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .is_some_and(|s| *s == PointInTimeRecoveryStatus::Enabled))
}

/// Switches point-in-time recovery on (idempotent: DynamoDB accepts it when it is on).
pub async fn enable_point_in_time_recovery(
    dynamodb: &DynamoDbClient,
    table: &TableName,
) -> Result<(), Error> {
    let specification = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))?;
    dynamodb
        .update_continuous_backups()
        .table_name(table.as_str())
        .point_in_time_recovery_specification(specification)
        .send()
        .await
        .map_err(|err| aws_error("DynamoDB.UpdateContinuousBackups", err))?;
    Ok(())
}

/// Whether an enable call found TTL already on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlEnabled {
    /// TTL was switched on now.
    Enabled,
    /// TTL was on already (DynamoDB refuses to enable it twice).
    AlreadyEnabled,
}

/// Switches TTL on for attribute `expireAfter`.
pub async fn enable_ttl(dynamodb: &DynamoDbClient, table: &TableName) -> Result<TtlEnabled, Error> {
    let specification = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attr::EXPIRE_AFTER)
        .build()
        .map_err(|e| Error::Internal(format!("building a DynamoDB request: {e}")))?;
    match dynamodb
        .update_time_to_live()
        .table_name(table.as_str())
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => Ok(TtlEnabled::Enabled),
        // DynamoDB refuses to enable TTL twice (ValidationException, which the SDK does not
        // model for UpdateTimeToLive): a second enable between our DescribeTimeToLive and
        // now, if TTL is now on for expireAfter.
        Err(err) if kind_of(&err) == AwsErrorKind::Validation => {
            match describe_ttl(dynamodb, table).await? {
                TtlState::Enabled(attribute) | TtlState::Enabling(attribute)
                    if attribute == attr::EXPIRE_AFTER =>
                {
                    Ok(TtlEnabled::AlreadyEnabled)
                }
                _ => Err(aws_error("DynamoDB.UpdateTimeToLive", err)),
            }
        }
        Err(err) => Err(aws_error("DynamoDB.UpdateTimeToLive", err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(role: KeyRole, name: &str, t: &str) -> KeyElement {
        KeyElement {
            role,
            name: name.into(),
            attribute_type: t.into(),
        }
    }

    #[test]
    fn contract_key_schemas() {
        let all = KeySchema::for_mode(ArchiveMode::All);
        assert_eq!(
            all.to_string(),
            "HASH partitionKey (S) + RANGE sequenceNumber (S)"
        );
        let latest = KeySchema::for_mode(ArchiveMode::Latest);
        assert_eq!(latest.to_string(), "HASH partitionKey (S)");
        assert!(all.fits(ArchiveMode::All) && !all.fits(ArchiveMode::Latest));
        assert_eq!(latest.mode(), Some(ArchiveMode::Latest));
    }

    #[test]
    fn other_key_schemas_fit_no_mode() {
        let numeric_range = KeySchema(vec![
            element(KeyRole::Hash, "partitionKey", "S"),
            element(KeyRole::Range, "sequenceNumber", "N"),
        ]);
        assert_eq!(numeric_range.mode(), None);
        let other_name = KeySchema(vec![element(KeyRole::Hash, "id", "S")]);
        assert_eq!(other_name.mode(), None);
        assert_eq!(KeySchema::default().to_string(), "(none)");
    }

    #[test]
    fn ttl_state_on_expire_after_only_counts() {
        assert!(TtlState::Enabled("expireAfter".into()).expires_archive_items());
        assert!(TtlState::Enabling("expireAfter".into()).expires_archive_items());
        assert!(!TtlState::Enabled("ttl".into()).expires_archive_items());
        assert!(!TtlState::Disabled.expires_archive_items());
    }

    #[test]
    fn a_table_recreated_under_its_name_is_another_incarnation() {
        let at = |ms| DateTime::from_timestamp_millis(ms);
        let first = TableIncarnation {
            table_id: Some("a".into()),
            created_at: at(1_000),
        };
        let recreated = TableIncarnation {
            table_id: Some("b".into()),
            created_at: at(2_000),
        };
        assert!(first.differs_from(&recreated) && !first.differs_from(&first.clone()));
        // An emulator without TableId: the creation time decides.
        let no_id = |ms| TableIncarnation {
            table_id: None,
            created_at: at(ms),
        };
        assert!(no_id(1_000).differs_from(&no_id(2_000)));
        assert!(!no_id(1_000).differs_from(&first));
        // Nothing known is no difference.
        assert!(!TableIncarnation::default().differs_from(&first));
        assert_eq!(no_id(1_500).to_string(), "created 1970-01-01T00:00:01.500Z");
    }
}
