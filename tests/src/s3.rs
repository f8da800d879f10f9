//! S3 fixtures: buckets and objects of moto's S3 (the same server as DynamoDB and Kinesis),
//! for the overflow payloads of records too large for an item.

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

/// An S3 client of `sdk` with path-style addressing, as moto on 127.0.0.1 needs (a bucket
/// name cannot prefix an IP address).
pub fn client(sdk: &SdkConfig) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Creates a bucket (in us-east-1, which takes no location constraint).
pub async fn create_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket");
}

/// The bytes of an object; `None` when it does not exist.
pub async fn get(s3: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Some(out.body.collect().await.expect("read object body").to_vec()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
        Err(err) => panic!("GetObject {bucket}/{key}: {err:?}"),
    }
}

/// Writes an object.
pub async fn put(s3: &Client, bucket: &str, key: &str, data: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .expect("PutObject");
}

/// Deletes an object.
pub async fn delete(s3: &Client, bucket: &str, key: &str) {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("DeleteObject");
}

/// Every key in the bucket, sorted.
pub async fn keys(s3: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match out.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    keys.sort();
    keys
}

/// The bucket's lifecycle rules as S3 stores them; empty without a lifecycle configuration.
async fn rules(s3: &Client, bucket: &str) -> Vec<aws_sdk_s3::types::LifecycleRule> {
    match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out.rules().to_vec(),
        Err(err)
            if err.as_service_error().and_then(|e| e.meta().code())
                == Some("NoSuchLifecycleConfiguration") =>
        {
            Vec::new()
        }
        Err(err) => panic!("GetBucketLifecycleConfiguration {bucket}: {err:?}"),
    }
}

fn prefix_of(rule: &aws_sdk_s3::types::LifecycleRule) -> String {
    rule.filter()
        .and_then(|f| f.prefix())
        .unwrap_or_default()
        .to_owned()
}

/// The bucket's lifecycle rules as (id, prefix, expiration days); empty without a
/// lifecycle configuration.
pub async fn lifecycle_rules(s3: &Client, bucket: &str) -> Vec<(String, String, i32)> {
    rules(s3, bucket)
        .await
        .iter()
        .map(|r| {
            (
                r.id().unwrap_or_default().to_owned(),
                prefix_of(r),
                r.expiration().and_then(|e| e.days()).unwrap_or(0),
            )
        })
        .collect()
}

/// The bucket's lifecycle transitions as (rule id, prefix, enabled, days, storage class).
pub async fn lifecycle_transitions(
    s3: &Client,
    bucket: &str,
) -> Vec<(String, String, bool, i32, String)> {
    rules(s3, bucket)
        .await
        .iter()
        .flat_map(|r| {
            r.transitions().iter().map(|t| {
                (
                    r.id().unwrap_or_default().to_owned(),
                    prefix_of(r),
                    r.status().as_str() == "Enabled",
                    t.days().unwrap_or(0),
                    t.storage_class()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
        })
        .collect()
}

/// Rewrites the object as one of `storage_class` (`GLACIER`: it then needs a restore before
/// it can be read, as a bucket owner's lifecycle rule would leave it).
pub async fn set_storage_class(s3: &Client, bucket: &str, key: &str, storage_class: &str) {
    s3.copy_object()
        .bucket(bucket)
        .key(key)
        .copy_source(format!("{bucket}/{key}"))
        .storage_class(storage_class.into())
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy)
        .send()
        .await
        .expect("CopyObject");
}

/// Gives the bucket a lifecycle configuration of one rule `id`, expiring objects under
/// `prefix` after `days` (someone else's rule, which kinarch must keep).
pub async fn put_lifecycle_rule(s3: &Client, bucket: &str, id: &str, prefix: &str, days: i32) {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };
    let rule = LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .build()
        .expect("lifecycle rule");
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .expect("lifecycle configuration"),
        )
        .send()
        .await
        .expect("PutBucketLifecycleConfiguration");
}
