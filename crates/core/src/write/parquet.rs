//! The Parquet archive of the writer: a batch's records, as files in S3, before any item
//! (see [`crate::domain::parquet`] for the layout and [`crate::parquet`] for the schema).
//!
//! The files are written first and the batch fails as a whole when one does not land by the
//! deadline: the table then holds nothing of the batch that the Parquet archive lacks, and
//! the batch is delivered again, which writes the same keys with the same rows (or, with
//! other boundaries, files that overlap; readers keep one row per record).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tokio::time::Instant;

use super::ArchiveWriter;
use crate::domain::config::StreamArchiveConfig;
use crate::domain::overflow::ObjectLocation;
use crate::domain::parquet::{ParquetTarget, files_of};
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

/// What the Parquet files of one batch came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct ParquetWritten {
    /// Files written.
    pub(super) files: u64,
    /// Their size in bytes, together.
    pub(super) bytes: u64,
}

impl ArchiveWriter {
    /// Writes `records` (de-aggregated, replays left out) as the batch's Parquet files
    /// under `target`, at most [`WriterOptions::object_concurrency`](super::WriterOptions)
    /// at once, each retried until `deadline`. `Err`: a file did not land (the batch fails).
    pub(super) async fn write_parquet(
        &self,
        config: &StreamArchiveConfig,
        target: &ParquetTarget,
        records: &[&ArchiveRecord],
        archived_at: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<ParquetWritten, Error> {
        let Some(objects) = &self.objects else {
            return Err(Error::InvalidInput(format!(
                "stream {} has a Parquet archive but this writer has no S3 client",
                config.stream
            )));
        };
        let bytes = AtomicU64::new(0);
        let files = files_of(records.iter().copied());
        let count = files.len() as u64;
        futures::stream::iter(files)
            .map(|file| {
                let bytes = &bytes;
                async move {
                    // Encoding is CPU work of a few milliseconds per MB: done inline, as the
                    // item encoding of the table writes is.
                    let body = crate::parquet::encode(&file.records, archived_at, &config.stream)?;
                    let size = body.len() as u64;
                    let location = ObjectLocation {
                        bucket: target.bucket().clone(),
                        key: file.key.key(target, &config.stream),
                    };
                    objects
                        .put(&location, Bytes::from(body), self.retries(deadline))
                        .await?;
                    tracing::debug!(
                        stream = %config.stream,
                        shard = %file.key.shard_id,
                        rows = file.records.len(),
                        bytes = size,
                        location = %location,
                        "Parquet file written"
                    );
                    bytes.fetch_add(size, Ordering::Relaxed);
                    Ok::<_, Error>(())
                }
            })
            .buffer_unordered(self.options.object_concurrency.max(1))
            .try_collect::<()>()
            .await?;
        Ok(ParquetWritten {
            files: count,
            bytes: bytes.into_inner(),
        })
    }
}
