//! Kinesis stream metadata: tags and the archive configuration they hold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_kinesis::Client as KinesisClient;
use tokio::time::Instant;

use crate::aws::{describe, error_code};
use crate::config::StreamArchiveConfig;
use crate::error::Error;
use crate::names::StreamName;

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
            .map_err(|err| {
                if error_code(&err) == Some("ResourceNotFoundException") {
                    Error::StreamNotFound {
                        stream: stream.clone(),
                        region: region(kinesis),
                    }
                } else {
                    Error::Aws {
                        operation: "Kinesis.ListTagsForStream",
                        message: describe(&err),
                    }
                }
            })?;
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
    kinesis
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "(no region set)".into())
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
