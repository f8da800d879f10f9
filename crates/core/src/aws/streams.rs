//! Kinesis stream metadata: tags and the archive configuration they hold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use tokio::time::Instant;

use crate::aws::error::AwsErrorKind;
use crate::aws::error::{NotFound, is_not_found};
use crate::aws::{aws_error, send_with_retries};
use crate::domain::config::{StreamArchiveConfig, TAG_MODE};
use crate::domain::names::{StreamAddress, StreamName};
use crate::domain::sequence::SequenceNumber;
use crate::domain::shard_load::ShardMap;
use crate::error::Error;

/// All tags of a stream (ListTagsForStream, every page).
pub async fn list_stream_tags(
    kinesis: &KinesisClient,
    stream: &StreamName,
) -> Result<Vec<(String, String)>, Error> {
    let mut tags = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let output = kinesis
            .list_tags_for_stream()
            .stream_name(stream.as_str())
            .set_exclusive_start_tag_key(start.take())
            .send()
            .await
            .map_err(|err| not_found_or(kinesis, stream, "Kinesis.ListTagsForStream", err))?;
        let page: Vec<(String, String)> = output
            .tags
            .into_iter()
            .map(|t| (t.key, t.value.unwrap_or_default()))
            .collect();
        start = page.last().map(|(k, _)| k.clone());
        tags.extend(page);
        if !output.has_more_tags || start.is_none() {
            return Ok(tags);
        }
    }
}

fn region(kinesis: &KinesisClient) -> String {
    crate::aws::region_name(kinesis.config().region())
}

/// Reads a stream's archive configuration from its tags.
pub async fn read_stream_config(
    kinesis: &KinesisClient,
    stream: &StreamName,
) -> Result<StreamArchiveConfig, Error> {
    let tags = list_stream_tags(kinesis, stream).await?;
    Ok(StreamArchiveConfig::from_tags(
        stream,
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// What `kinarch setup` and `kinarch status` need to know about a stream itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's ARN.
    pub arn: String,
    /// `ACTIVE`, `CREATING`, `UPDATING` or `DELETING`.
    pub status: String,
    /// Number of open shards.
    pub open_shards: i32,
}

fn not_found_or<E>(
    kinesis: &KinesisClient,
    stream: &StreamName,
    operation: &'static str,
    err: aws_sdk_kinesis::error::SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
) -> Error
where
    E: NotFound
        + aws_smithy_types::retry::ProvideErrorKind
        + aws_sdk_kinesis::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    if is_not_found(&err) {
        Error::StreamNotFound {
            stream: stream.clone(),
            region: region(kinesis),
        }
    } else {
        aws_error(operation, err)
    }
}

/// Checks that a stream exists and reads its ARN and status (DescribeStreamSummary).
/// A missing stream is [`Error::StreamNotFound`].
pub async fn describe_stream_summary(
    kinesis: &KinesisClient,
    stream: &StreamName,
) -> Result<StreamSummary, Error> {
    describe_stream_summary_at(kinesis, &stream.clone().into()).await
}

/// [`describe_stream_summary`] of a stream named by name or ARN.
pub async fn describe_stream_summary_at(
    kinesis: &KinesisClient,
    stream: &StreamAddress,
) -> Result<StreamSummary, Error> {
    let output = kinesis
        .describe_stream_summary()
        .set_stream_name(stream.name_param())
        .set_stream_arn(stream.arn_param())
        .send()
        .await
        .map_err(|err| not_found_or(kinesis, &stream.name, "Kinesis.DescribeStreamSummary", err))?;
    let summary = output.stream_description_summary.ok_or_else(|| {
        Error::aws(
            "Kinesis.DescribeStreamSummary",
            AwsErrorKind::Other,
            "the answer holds no stream description",
        )
    })?;
    Ok(StreamSummary {
        arn: summary.stream_arn,
        status: summary.stream_status.as_str().to_owned(),
        open_shards: summary.open_shard_count,
    })
}

/// Adds or overwrites tags of a stream (AddTagsToStream). Tagging with the values a stream
/// already has changes nothing, so this is safe to repeat.
pub async fn tag_stream(
    kinesis: &KinesisClient,
    stream: &StreamName,
    tags: &[(String, String)],
) -> Result<(), Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut call = kinesis.add_tags_to_stream().stream_name(stream.as_str());
    for (key, value) in tags {
        call = call.tags(key, value);
    }
    call.send()
        .await
        .map_err(|err| not_found_or(kinesis, stream, "Kinesis.AddTagsToStream", err))?;
    Ok(())
}

/// Removes tags from a stream (RemoveTagsFromStream); a tag the stream does not have is
/// ignored by Kinesis, so this is safe to repeat.
pub async fn untag_stream(
    kinesis: &KinesisClient,
    stream: &StreamName,
    keys: &[&str],
) -> Result<(), Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut call = kinesis
        .remove_tags_from_stream()
        .stream_name(stream.as_str());
    for key in keys {
        call = call.tag_keys(*key);
    }
    call.send()
        .await
        .map_err(|err| not_found_or(kinesis, stream, "Kinesis.RemoveTagsFromStream", err))?;
    Ok(())
}

/// Reads the archive configuration of a stream that was set up for archiving.
///
/// Unlike [`read_stream_config`] (the archiver's view, where a missing
/// `StreamArchiveMode` tag means LATEST as in the original), a reader must not guess which
/// table holds a stream's archive: a stream without the tag is
/// [`Error::StreamNotConfigured`], whose message names `kinarch setup`.
pub async fn read_configured_stream_config(
    kinesis: &KinesisClient,
    stream: &StreamName,
) -> Result<StreamArchiveConfig, Error> {
    let tags = list_stream_tags(kinesis, stream).await?;
    if !tags.iter().any(|(key, _)| key == TAG_MODE) {
        return Err(Error::StreamNotConfigured {
            stream: stream.clone(),
            region: region(kinesis),
        });
    }
    Ok(StreamArchiveConfig::from_tags(
        stream,
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// A shard as ListShards describes it: its lineage and whether it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// `shardId-000000000000`.
    pub shard_id: String,
    /// The shard this one was split from, or the first of the two it was merged from.
    pub parent_shard_id: Option<String>,
    /// The second shard of a merge.
    pub adjacent_parent_shard_id: Option<String>,
    /// Set once the shard is closed (split or merged): no record after it will ever be
    /// added. Open shards have none.
    pub ending_sequence_number: Option<SequenceNumber>,
    /// The hash keys it takes: first and last (a record goes where its hash key falls,
    /// see [`crate::domain::shard_load`]).
    pub hash_key_range: (u128, u128),
}

impl ShardInfo {
    /// The parents (none, one after a split, two after a merge).
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(self.adjacent_parent_shard_id.iter())
            .map(String::as_str)
    }

    /// Whether the shard is closed.
    pub fn is_closed(&self) -> bool {
        self.ending_sequence_number.is_some()
    }
}

/// How long [`list_shards`] retries throttling and 5xx answers before it gives up.
const LIST_SHARDS_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Every shard of a stream, open and closed (those still within the retention period),
/// following ListShards' pagination. `page_size` caps the shards per call (1 to 10000;
/// default: the service's, 1000).
pub async fn list_shards(
    kinesis: &KinesisClient,
    stream: &StreamName,
    page_size: Option<i32>,
) -> Result<Vec<ShardInfo>, Error> {
    list_shards_at(kinesis, &stream.clone().into(), page_size).await
}

/// [`list_shards`] of a stream named by name or ARN.
pub async fn list_shards_at(
    kinesis: &KinesisClient,
    stream: &StreamAddress,
    page_size: Option<i32>,
) -> Result<Vec<ShardInfo>, Error> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    // One budget for the whole listing, however many pages it takes.
    let deadline = Instant::now() + LIST_SHARDS_RETRY_BUDGET;
    loop {
        // A call with NextToken must not name the stream: the token already does.
        let call = match &next_token {
            None => kinesis
                .list_shards()
                .set_stream_name(stream.name_param())
                .set_stream_arn(stream.arn_param()),
            Some(token) => kinesis.list_shards().next_token(token),
        };
        let call = call.set_max_results(page_size);
        let output = send_with_retries(
            deadline.saturating_duration_since(Instant::now()),
            || call.clone().send(),
            |err| not_found_or(kinesis, &stream.name, "Kinesis.ListShards", err),
        )
        .await?;
        for shard in output.shards.unwrap_or_default() {
            let ending = shard
                .sequence_number_range
                .and_then(|range| range.ending_sequence_number)
                .map(|seq| SequenceNumber::parse(&seq))
                .transpose()?;
            let hash_key_range = shard
                .hash_key_range
                .map(|range| {
                    let parse = |key: &str| {
                        key.parse::<u128>().map_err(|_| {
                            Error::aws(
                                "Kinesis.ListShards",
                                AwsErrorKind::Other,
                                format!(
                                    "shard {} has a hash key {key:?} that is not a number",
                                    shard.shard_id
                                ),
                            )
                        })
                    };
                    Ok::<_, Error>((
                        parse(&range.starting_hash_key)?,
                        parse(&range.ending_hash_key)?,
                    ))
                })
                .transpose()?
                .unwrap_or((0, u128::MAX));
            shards.push(ShardInfo {
                shard_id: shard.shard_id,
                parent_shard_id: shard.parent_shard_id,
                adjacent_parent_shard_id: shard.adjacent_parent_shard_id,
                ending_sequence_number: ending,
                hash_key_range,
            });
        }
        match output.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(shards),
        }
    }
}

/// The open shards of `shards` as a [`ShardMap`].
pub fn shard_map(shards: &[ShardInfo]) -> ShardMap {
    ShardMap::new(
        shards
            .iter()
            .filter(|shard| !shard.is_closed())
            .map(|shard| {
                (
                    shard.shard_id.clone(),
                    shard.hash_key_range.0,
                    shard.hash_key_range.1,
                )
            }),
    )
}

/// Stream configurations kept for a while, so a warm Lambda does not call
/// ListTagsForStream (5 calls per second per account) on every invocation, yet notices a
/// changed tag after `refresh_after`.
#[derive(Debug)]
pub struct StreamConfigCache {
    kinesis: KinesisClient,
    refresh_after: Duration,
    entries: Mutex<HashMap<StreamName, (Instant, StreamArchiveConfig)>>,
}

impl StreamConfigCache {
    /// Default time a configuration is trusted before it is read again.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(180);

    /// An empty cache.
    pub fn new(kinesis: KinesisClient, refresh_after: Duration) -> Self {
        Self {
            kinesis,
            refresh_after,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The stream's configuration, from the cache when fresh.
    pub async fn get(&self, stream: &StreamName) -> Result<StreamArchiveConfig, Error> {
        if let Some((read_at, config)) = self.entries.lock().expect("cache lock").get(stream)
            && read_at.elapsed() < self.refresh_after
        {
            return Ok(config.clone());
        }
        let config = read_stream_config(&self.kinesis, stream).await?;
        self.entries
            .lock()
            .expect("cache lock")
            .insert(stream.clone(), (Instant::now(), config.clone()));
        Ok(config)
    }
}
