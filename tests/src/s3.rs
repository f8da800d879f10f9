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
        Ok(out) => Some(
            out.body
                .collect()
                .await
                .expect("read object body")
                .to_vec(),
        ),
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
        keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        match out.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    keys.sort();
    keys
}
