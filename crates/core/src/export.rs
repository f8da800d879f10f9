//! Exporting an archive table to S3 for analytics (`kinarch export`): DynamoDB's own
//! ExportTableToPointInTime, which reads a backup and costs the table no read capacity.
//!
//! Why not a Scan to S3: an export of a large table by Scan would compete with the
//! archiver's writes for capacity and take one host days; DynamoDB's export runs on its
//! side, from the point-in-time recovery backup, and writes the documented layout
//! (`<prefix>/AWSDynamoDB/<export id>/manifest-summary.json`, `manifest-files.json`,
//! `data/*.json.gz`) that Athena, Glue and EMR read. It needs point-in-time recovery on
//! the table (`aws dynamodb update-continuous-backups`), which is checked first so that the
//! message says so.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::operation::export_table_to_point_in_time::ExportTableToPointInTimeError;
use aws_sdk_dynamodb::types::{ExportDescription, ExportFormat, ExportStatus};
use tokio::time::Instant;

use crate::aws::aws_error;
use crate::aws::tables::{describe_table, point_in_time_recovery};
use crate::domain::names::TableName;
use crate::error::Error;

/// Where an export goes: a bucket and a key prefix (without slashes around it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDestination {
    /// The bucket.
    pub bucket: String,
    /// The key prefix; empty for the bucket's root.
    pub prefix: String,
}

/// What an export is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportProgress {
    /// DynamoDB is writing it.
    InProgress,
    /// Every file is written.
    Completed,
    /// It stopped: DynamoDB's failure code and message.
    Failed {
        /// `S3NoSuchBucket`, `S3AccessDenied`, ...
        code: String,
        /// DynamoDB's explanation.
        message: String,
    },
}

/// An export as DescribeExport tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportState {
    /// The export's ARN (its last path segment is the export ID of the S3 layout).
    pub arn: String,
    /// Where it goes.
    pub destination: ExportDestination,
    /// Whether it is done.
    pub progress: ExportProgress,
    /// Items exported (known when it completed).
    pub item_count: Option<i64>,
    /// Bytes billed (known when it completed).
    pub billed_bytes: Option<i64>,
    /// The manifest's key, when DynamoDB gave it.
    manifest_key: Option<String>,
}

impl ExportState {
    fn from_description(d: &ExportDescription, asked: &ExportDestination) -> Result<Self, Error> {
        let arn = d
            .export_arn()
            .ok_or_else(|| Error::Internal("DynamoDB answered an export without its ARN".into()))?
            .to_owned();
        let progress = match d.export_status() {
            Some(ExportStatus::Completed) => ExportProgress::Completed,
            Some(ExportStatus::Failed) => ExportProgress::Failed {
                code: d.failure_code().unwrap_or("unknown").to_owned(),
                message: d.failure_message().unwrap_or("no message").to_owned(),
            },
            _ => ExportProgress::InProgress,
        };
        Ok(Self {
            arn,
            destination: ExportDestination {
                bucket: d.s3_bucket().unwrap_or(&asked.bucket).to_owned(),
                prefix: d
                    .s3_prefix()
                    .unwrap_or(&asked.prefix)
                    .trim_matches('/')
                    .to_owned(),
            },
            progress,
            item_count: d.item_count(),
            billed_bytes: d.billed_size_bytes(),
            manifest_key: d.export_manifest().map(str::to_owned),
        })
    }

    /// The export ID: the last path segment of the ARN, the directory of its files.
    pub fn export_id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// `s3://BUCKET/PREFIX/AWSDynamoDB/<export id>/`, where DynamoDB writes its files.
    pub fn export_location(&self) -> String {
        let prefix = if self.destination.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.destination.prefix)
        };
        format!(
            "s3://{}/{prefix}AWSDynamoDB/{}/",
            self.destination.bucket,
            self.export_id()
        )
    }

    /// The manifest summary: as DynamoDB names it, else where the documented layout puts it.
    pub fn manifest_location(&self) -> String {
        match &self.manifest_key {
            Some(key) => format!(
                "s3://{}/{}",
                self.destination.bucket,
                key.trim_start_matches('/')
            ),
            None => format!("{}manifest-summary.json", self.export_location()),
        }
    }

    /// The directory of the data files (what an Athena table's LOCATION names).
    pub fn data_location(&self) -> String {
        format!("{}data/", self.export_location())
    }
}

/// Exports of archive tables, with a client built once from the SDK configuration.
#[derive(Debug, Clone)]
pub struct Exporter {
    dynamodb: DynamoDbClient,
}

impl Exporter {
    /// An exporter using the configuration's credentials, region and endpoint.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: DynamoDbClient::new(sdk),
        }
    }

    /// Whether point-in-time recovery, which an export needs, is on for `table`.
    pub async fn point_in_time_recovery(&self, table: &TableName) -> Result<bool, Error> {
        point_in_time_recovery(&self.dynamodb, table).await
    }

    /// See [`start_export`].
    pub async fn start(
        &self,
        table: &TableName,
        destination: &ExportDestination,
    ) -> Result<ExportState, Error> {
        start_export(&self.dynamodb, table, destination).await
    }

    /// See [`wait_for_export`].
    pub async fn wait(
        &self,
        started: ExportState,
        poll: Duration,
        timeout: Duration,
        progress: impl FnMut(&ExportState),
    ) -> Result<ExportState, Error> {
        wait_for_export(&self.dynamodb, started, poll, timeout, progress).await
    }
}

/// Starts an export of `table` (DynamoDB JSON, the current point in time) to `destination`.
pub async fn start_export(
    dynamodb: &DynamoDbClient,
    table: &TableName,
    destination: &ExportDestination,
) -> Result<ExportState, Error> {
    let info = describe_table(dynamodb, table).await?.ok_or_else(|| {
        Error::InvalidInput(format!("table {table} does not exist: check --table"))
    })?;
    let arn = info
        .arn
        .ok_or_else(|| Error::Internal(format!("DescribeTable of {table} did not give its ARN")))?;
    if !point_in_time_recovery(dynamodb, table).await? {
        return Err(point_in_time_recovery_off(table));
    }
    let mut request = dynamodb
        .export_table_to_point_in_time()
        .table_arn(arn)
        .s3_bucket(&destination.bucket)
        .export_format(ExportFormat::DynamodbJson);
    if !destination.prefix.is_empty() {
        request = request.s3_prefix(&destination.prefix);
    }
    let output = match request.send().await {
        Ok(output) => output,
        Err(err)
            if err.as_service_error().is_some_and(
                ExportTableToPointInTimeError::is_point_in_time_recovery_unavailable_exception,
            ) =>
        {
            return Err(point_in_time_recovery_off(table));
        }
        Err(err) => return Err(aws_error("DynamoDB.ExportTableToPointInTime", err)),
    };
    let description = output.export_description().ok_or_else(|| {
        Error::Internal("ExportTableToPointInTime answered without a description".into())
    })?;
    ExportState::from_description(description, destination)
}

fn point_in_time_recovery_off(table: &TableName) -> Error {
    Error::PointInTimeRecoveryOff {
        table: table.clone(),
    }
}

/// Asks DynamoDB how an export is doing.
pub async fn describe_export(
    dynamodb: &DynamoDbClient,
    state: &ExportState,
) -> Result<ExportState, Error> {
    let output = dynamodb
        .describe_export()
        .export_arn(&state.arn)
        .send()
        .await
        .map_err(|err| aws_error("DynamoDB.DescribeExport", err))?;
    let description = output
        .export_description()
        .ok_or_else(|| Error::Internal("DescribeExport answered without a description".into()))?;
    ExportState::from_description(description, &state.destination)
}

/// Waits until an export completes or fails, asking every `poll` (an export of a small
/// table takes minutes on AWS, of a large one hours) and telling `progress` each answer.
/// Gives up after `timeout` with the export still running (it goes on without us).
pub async fn wait_for_export(
    dynamodb: &DynamoDbClient,
    started: ExportState,
    poll: Duration,
    timeout: Duration,
    mut progress: impl FnMut(&ExportState),
) -> Result<ExportState, Error> {
    let since = Instant::now();
    let mut state = started;
    loop {
        progress(&state);
        if state.progress != ExportProgress::InProgress {
            return Ok(state);
        }
        if since.elapsed() + poll > timeout {
            return Err(Error::ExportStillRunning {
                arn: state.arn,
                waited_seconds: since.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(poll).await;
        state = describe_export(dynamodb, &state).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(prefix: &str, manifest: Option<&str>) -> ExportState {
        ExportState {
            arn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders-archive-ALL/export/01700000000000-a1b2c3d4"
                .into(),
            destination: ExportDestination {
                bucket: "analytics".into(),
                prefix: prefix.into(),
            },
            progress: ExportProgress::Completed,
            item_count: Some(3),
            billed_bytes: Some(300),
            manifest_key: manifest.map(str::to_owned),
        }
    }

    #[test]
    fn locations_follow_the_documented_layout() {
        let s = state("kinarch/orders", None);
        assert_eq!(s.export_id(), "01700000000000-a1b2c3d4");
        assert_eq!(
            s.manifest_location(),
            "s3://analytics/kinarch/orders/AWSDynamoDB/01700000000000-a1b2c3d4/manifest-summary.json"
        );
        assert_eq!(
            s.data_location(),
            "s3://analytics/kinarch/orders/AWSDynamoDB/01700000000000-a1b2c3d4/data/"
        );
        let root = state("", None);
        assert_eq!(
            root.data_location(),
            "s3://analytics/AWSDynamoDB/01700000000000-a1b2c3d4/data/"
        );
        let named = state("p", Some("p/AWSDynamoDB/x/manifest-summary.json"));
        assert_eq!(
            named.manifest_location(),
            "s3://analytics/p/AWSDynamoDB/x/manifest-summary.json"
        );
    }
}
