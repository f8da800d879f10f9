//! Every S3 call kinarch makes: the payload objects of records too large for an item (see
//! [`crate::domain::overflow`]), written by the archiver, read back by the reader, and the
//! bucket check of `kinarch setup`.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::builders::LifecycleRuleBuilder;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, Transition, TransitionStorageClass,
};
use bytes::Bytes;

use crate::aws::error::{AwsErrorKind, Unmodeled};
use crate::aws::retry::{Budget, Retries, RetryPolicy, Verdict, retry};
use crate::aws::{aws_error_with, send_with_retries};
use crate::domain::names::StreamName;
use crate::domain::overflow::{
    BucketName, BucketUse, ExpiryRule, ObjectLocation, OverflowTarget, StoredPayload,
};
use crate::domain::parquet::{ColdRule, ParquetMarker, ParquetTarget, marker_key};
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

/// How long a read of one payload may retry throttling and server errors.
const READ_BUDGET: Duration = Duration::from_secs(60);

/// The name, under the overflow prefix, of the object `kinarch setup` writes and deletes to
/// check that the bucket takes writes.
pub const SETUP_CHECK_OBJECT: &str = ".kinarch-setup-check";

/// An object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Where it is.
    pub location: ObjectLocation,
    /// Its size in bytes.
    pub size: u64,
    /// Its storage class, when S3 names one (`STANDARD` is often left out).
    pub storage_class: Option<String>,
    /// When it was last written.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// S3 client of kinarch's objects (overflow payloads, Parquet files). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    s3: S3Client,
}

impl ObjectStore {
    /// A store using `sdk`'s client. With a custom endpoint (a VPC endpoint, a local
    /// emulator on an IP address) requests use path-style addressing: a bucket name cannot
    /// prefix an IP address or most custom host names.
    pub fn new(sdk: &SdkConfig) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            s3: S3Client::from_conf(config),
        }
    }

    /// Stores one object (a payload, a Parquet file, a marker), retrying throttling, server
    /// errors and timeouts as `retries` allows (the archiver's rule for writes: until its
    /// deadline). `Err`: why it is not stored, the failed call as its source.
    pub(crate) async fn put(
        &self,
        location: &ObjectLocation,
        body: Bytes,
        retries: Retries,
    ) -> Result<(), Error> {
        let policy = PutPayload { location };
        retry(&policy, retries, (), |_| {
            self.s3
                .put_object()
                .bucket(location.bucket.as_str())
                .key(&location.key)
                .content_length(body.len() as i64)
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await
        .map_err(|gave_up| gave_up.error)
    }

    /// Every object under `prefix` of `bucket` (all pages of ListObjectsV2), in key order.
    pub async fn list(
        &self,
        bucket: &BucketName,
        prefix: &str,
    ) -> Result<Vec<ListedObject>, Error> {
        let pages: Vec<_> = self
            .s3
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(prefix)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|err| {
                aws_error_with("S3.ListObjectsV2", err, |d| {
                    format!("of s3://{bucket}/{prefix}: {d}")
                })
            })?;
        Ok(pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|object| {
                Some(ListedObject {
                    location: ObjectLocation {
                        bucket: bucket.clone(),
                        key: object.key()?.to_owned(),
                    },
                    size: object.size().unwrap_or(0).max(0) as u64,
                    storage_class: object.storage_class().map(|c| c.as_str().to_owned()),
                    last_modified: object
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .and_then(chrono::DateTime::from_timestamp_millis),
                })
            })
            .collect())
    }

    /// Bytes `range` (end exclusive) of an object: one ranged GET, retried on throttling and
    /// server errors.
    pub async fn read_range(
        &self,
        location: &ObjectLocation,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, Error> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        self.get_object(location, Some(header)).await
    }

    /// Deletes one object (absent already is success, as S3 answers).
    pub async fn delete(&self, location: &ObjectLocation) -> Result<(), Error> {
        send_with_retries(
            READ_BUDGET,
            || {
                self.s3
                    .delete_object()
                    .bucket(location.bucket.as_str())
                    .key(&location.key)
                    .send()
            },
            |err| aws_error_with("S3.DeleteObject", err, |d| format!("of {location}: {d}")),
        )
        .await
        .map(|_| ())
    }

    /// A whole object (one GetObject, retried on throttling and server errors); `None`
    /// when it does not exist.
    pub async fn get(&self, location: &ObjectLocation) -> Result<Option<Bytes>, Error> {
        match self.get_object(location, None).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.aws_kind() == Some(AwsErrorKind::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The one GetObject: the object's bytes, or those of `range` (an HTTP `Range` value),
    /// retried on throttling and server errors.
    async fn get_object(
        &self,
        location: &ObjectLocation,
        range: Option<String>,
    ) -> Result<Bytes, Error> {
        let output = send_with_retries(
            READ_BUDGET,
            || {
                self.s3
                    .get_object()
                    .bucket(location.bucket.as_str())
                    .key(&location.key)
                    .set_range(range.clone())
                    .send()
            },
            |err| match err.as_service_error() {
                Some(GetObjectError::InvalidObjectState(state)) => Error::ObjectNeedsRestore {
                    location: location.to_string(),
                    bucket: location.bucket.to_string(),
                    key: location.key.clone(),
                    storage_class: state
                        .storage_class()
                        .map_or("GLACIER", |class| class.as_str())
                        .to_owned(),
                },
                _ => aws_error_with("S3.GetObject", err, |d| format!("of {location}: {d}")),
            },
        )
        .await?;
        let bytes =
            output.body.collect().await.map_err(|e| {
                Error::InvalidInput(format!("reading {location} failed midway: {e}"))
            })?;
        Ok(bytes.into_bytes())
    }

    /// Reads `record`'s stored payload back, checking that it has its `recordSize` bytes. Any
    /// failure is [`Error::PayloadUnavailable`] naming the location.
    pub async fn fetch(
        &self,
        record: &ArchiveRecord,
        stored: &StoredPayload,
    ) -> Result<Vec<u8>, Error> {
        let location = &stored.location;
        let unavailable = |reason: String, source: Option<Error>| Error::PayloadUnavailable {
            partition_key: record.partition_key.clone(),
            sequence_number: record.sequence_number.clone(),
            sub_sequence_number: record.sub_sequence_number,
            location: location.to_string(),
            reason,
            source: source.map(Box::new),
        };
        let bytes = match self.get(location).await {
            Ok(Some(bytes)) => bytes.to_vec(),
            Ok(None) => return Err(unavailable("the object does not exist".to_owned(), None)),
            Err(err) => {
                let reason = match err.aws_kind() {
                    Some(AwsErrorKind::AccessDenied) => {
                        "access denied (the reader needs s3:GetObject on it)".to_owned()
                    }
                    _ => err.to_string(),
                };
                return Err(unavailable(reason, Some(err)));
            }
        };
        if bytes.len() as u64 != stored.size {
            return Err(unavailable(
                format!(
                    "the object has {} bytes, the archive says recordSize {}",
                    bytes.len(),
                    stored.size
                ),
                None,
            ));
        }
        Ok(bytes)
    }

    /// Checks that a bucket given to setup (`role`) exists and is reachable (HeadBucket;
    /// read-only, so a dry run can do it).
    pub async fn check_bucket(
        &self,
        target: &OverflowTarget,
        role: BucketUse,
    ) -> Result<(), Error> {
        let bucket = target.bucket().as_str();
        send_with_retries(
            READ_BUDGET,
            || self.s3.head_bucket().bucket(bucket).send(),
            |err| aws_error_with("S3.HeadBucket", err, |d| d),
        )
        .await
        .map(|_| ())
        .map_err(|err| bucket_unusable(target, role, err))
    }

    /// Checks that objects can be written under the target's prefix: writes and deletes
    /// [`SETUP_CHECK_OBJECT`] there.
    pub async fn check_writable(
        &self,
        target: &OverflowTarget,
        role: BucketUse,
    ) -> Result<(), Error> {
        let location = ObjectLocation {
            bucket: target.bucket().clone(),
            key: target.key_for(SETUP_CHECK_OBJECT),
        };
        let retries = Retries::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(2),
            Budget::For(READ_BUDGET),
        );
        let body = Bytes::from_static(b"written by kinarch setup; safe to delete");
        self.put(&location, body, retries)
            .await
            .map_err(|err| bucket_unusable(target, role, err))?;
        self.delete(&location)
            .await
            .map_err(|err| bucket_unusable(target, role, err))
    }
}

impl ObjectStore {
    /// The marker object of `stream`'s Parquet archive under `target` (see
    /// [`ParquetMarker`]); `None` when there is none. A marker that is not kinarch's is
    /// refused, naming the object.
    pub async fn marker(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
    ) -> Result<Option<ParquetMarker>, Error> {
        let location = marker_location(target, stream);
        let Some(bytes) = self.get(&location).await? else {
            return Ok(None);
        };
        ParquetMarker::parse(&bytes).map(Some).map_err(|e| {
            Error::InvalidInput(format!(
                "the marker object {location} is not kinarch's ({e}): delete it, or run \
                 `kinarch setup` with --parquet again"
            ))
        })
    }

    /// Writes `marker` as the marker object of its stream under `target`.
    pub async fn put_marker(
        &self,
        target: &ParquetTarget,
        stream: &StreamName,
        marker: &ParquetMarker,
    ) -> Result<(), Error> {
        let retries = Retries::new(
            Duration::from_millis(200),
            Duration::from_secs(5),
            Budget::For(Duration::from_secs(60)),
        );
        self.put(
            &marker_location(target, stream),
            marker.to_json().into(),
            retries,
        )
        .await
    }
}

/// Where the marker object of `stream` under `target` is.
fn marker_location(target: &ParquetTarget, stream: &StreamName) -> ObjectLocation {
    ObjectLocation {
        bucket: target.bucket().clone(),
        key: marker_key(target, stream),
    }
}

impl ObjectStore {
    /// The bucket's lifecycle rules (none when it has no lifecycle configuration).
    async fn lifecycle_rules(&self, bucket: &str) -> Result<Vec<LifecycleRule>, Error> {
        let missing = std::cell::Cell::new(false);
        let result = send_with_retries(
            READ_BUDGET,
            || {
                self.s3
                    .get_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .send()
            },
            |err| {
                if Unmodeled::NoSuchLifecycleConfiguration.is(&err) {
                    missing.set(true);
                }
                aws_error_with("S3.GetBucketLifecycleConfiguration", err, |d| d)
            },
        )
        .await;
        match result {
            Ok(output) => Ok(output.rules.unwrap_or_default()),
            Err(_) if missing.get() => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    /// The days of `rule` in the bucket's lifecycle configuration; `None` when it has no
    /// such rule (or the rule has no expiry in days).
    pub async fn expiry_days(
        &self,
        target: &OverflowTarget,
        rule: &ExpiryRule,
    ) -> Result<Option<u64>, Error> {
        let found = self
            .lifecycle_rule(target.bucket().as_str(), &rule.id)
            .await?;
        Ok(found
            .as_ref()
            .and_then(|r| r.expiration())
            .and_then(|e| e.days())
            .map(|d| d.max(0) as u64))
    }

    /// The days after which `rule` moves the Parquet files to S3 Glacier Instant Retrieval;
    /// `None` when the bucket has no such rule.
    pub async fn cold_days(
        &self,
        target: &ParquetTarget,
        rule: &ColdRule,
    ) -> Result<Option<u64>, Error> {
        let found = self
            .lifecycle_rule(target.bucket().as_str(), &rule.id)
            .await?;
        Ok(found
            .as_ref()
            .and_then(|r| {
                r.transitions()
                    .iter()
                    .find(|t| t.storage_class() == Some(&TransitionStorageClass::GlacierIr))
            })
            .and_then(|t| t.days())
            .map(|d| d.max(0) as u64))
    }

    /// Writes `rule` with `days` (`None`: removes it) into the bucket's lifecycle
    /// configuration, every other rule kept as it was.
    pub async fn set_expiry(
        &self,
        target: &OverflowTarget,
        rule: &ExpiryRule,
        days: Option<u64>,
    ) -> Result<(), Error> {
        let wanted = days.map(|days| {
            kinarch_rule(&rule.id, &rule.prefix).expiration(
                LifecycleExpiration::builder()
                    .days(whole_days(days))
                    .build(),
            )
        });
        self.replace_rule(target.bucket().as_str(), &rule.id, wanted)
            .await
    }

    /// Writes the Parquet files' `rule` moving them to S3 Glacier Instant Retrieval after
    /// `days` (`None`: removes it), every other rule kept as it was.
    pub async fn set_cold(
        &self,
        target: &ParquetTarget,
        rule: &ColdRule,
        days: Option<u64>,
    ) -> Result<(), Error> {
        let wanted = days.map(|days| {
            kinarch_rule(&rule.id, &rule.prefix).transitions(
                Transition::builder()
                    .days(whole_days(days))
                    .storage_class(TransitionStorageClass::GlacierIr)
                    .build(),
            )
        });
        self.replace_rule(target.bucket().as_str(), &rule.id, wanted)
            .await
    }

    /// The rule `id` of the bucket's lifecycle configuration, if it has one.
    async fn lifecycle_rule(&self, bucket: &str, id: &str) -> Result<Option<LifecycleRule>, Error> {
        Ok(self
            .lifecycle_rules(bucket)
            .await?
            .into_iter()
            .find(|r| r.id() == Some(id)))
    }

    /// The bucket's lifecycle configuration with the rule `id` replaced by `wanted` (or
    /// removed), every other rule kept. S3 replaces the configuration as a whole, so this
    /// reads it first; an empty one is deleted.
    async fn replace_rule(
        &self,
        bucket: &str,
        id: &str,
        wanted: Option<LifecycleRuleBuilder>,
    ) -> Result<(), Error> {
        let wanted = wanted
            .map(LifecycleRuleBuilder::build)
            .transpose()
            .map_err(|e| Error::Internal(format!("lifecycle rule: {e}")))?;
        let mut rules: Vec<LifecycleRule> = self
            .lifecycle_rules(bucket)
            .await?
            .into_iter()
            .filter(|r| r.id() != Some(id))
            .collect();
        rules.extend(wanted);
        if rules.is_empty() {
            return send_with_retries(
                READ_BUDGET,
                || self.s3.delete_bucket_lifecycle().bucket(bucket).send(),
                |err| aws_error_with("S3.DeleteBucketLifecycle", err, |d| d),
            )
            .await
            .map(|_| ());
        }
        let configuration = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| Error::Internal(format!("lifecycle configuration: {e}")))?;
        send_with_retries(
            READ_BUDGET,
            || {
                self.s3
                    .put_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .lifecycle_configuration(configuration.clone())
                    .send()
            },
            |err| aws_error_with("S3.PutBucketLifecycleConfiguration", err, |d| d),
        )
        .await
        .map(|_| ())
    }
}

/// A rule kinarch owns: `id`, enabled, on the objects under `prefix` (its action added by
/// the caller).
fn kinarch_rule(id: &str, prefix: &str) -> LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
}

/// Days as a lifecycle rule takes them.
fn whole_days(days: u64) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}

/// The overflow PutObject of one payload: transient errors are retried.
struct PutPayload<'a> {
    location: &'a ObjectLocation,
}

impl RetryPolicy for PutPayload<'_> {
    type Request = ();
    type Answer = Result<PutObjectOutput, SdkError<PutObjectError, HttpResponse>>;
    type Output = ();

    fn operation(&self) -> &'static str {
        "S3.PutObject"
    }

    fn judge(&self, answer: Self::Answer) -> Verdict<(), ()> {
        match answer {
            Ok(_) => Verdict::Done(()),
            Err(err) => Verdict::after(aws_error_with("S3.PutObject", err, |description| {
                format!("of {}: {description}", self.location)
            })),
        }
    }
}

/// [`Error::BucketUnusable`] for a failed check of `target`.
fn bucket_unusable(target: &OverflowTarget, role: BucketUse, err: Error) -> Error {
    let reason = match (&err, err.aws_kind()) {
        (
            Error::Aws {
                status: Some(404), ..
            },
            _,
        )
        | (_, Some(AwsErrorKind::NotFound)) => {
            format!(
                "the bucket does not exist (or belongs to another account): create it first \
                 (aws s3 mb s3://{})",
                target.bucket()
            )
        }
        (
            Error::Aws {
                status: Some(403), ..
            },
            _,
        )
        | (_, Some(AwsErrorKind::AccessDenied)) => {
            "access denied: the credentials need s3:ListBucket on the bucket and s3:PutObject and \
             s3:DeleteObject under the prefix (SECURITY.md lists what setup needs)"
                .to_owned()
        }
        _ => err.to_string(),
    };
    Error::BucketUnusable {
        role,
        target: target.to_string(),
        reason,
        source: Some(Box::new(err)),
    }
}
