//! The claim check of the writer: a payload too large for an item, of a stream with an
//! overflow bucket, is stored in S3 before its item is written (see the
//! [module documentation](super)).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::ArchiveWriter;
use crate::aws::item::{Item, PreparedItem, claim_check};
use crate::domain::config::StreamArchiveConfig;
use crate::domain::overflow::StoredPayload;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;

/// What the writes of one batch share for the claim check: the slots bounding payloads in
/// flight ([`WriterOptions::object_concurrency`](super::WriterOptions::object_concurrency))
/// and the count of payloads stored.
pub(super) struct Overflow {
    pub(super) slots: Semaphore,
    pub(super) stored: AtomicUsize,
}

impl ArchiveWriter {
    /// The claim check of one prepared item: when it is an oversize marker and the stream
    /// has an overflow bucket, stores the payload there and makes the item point at it.
    /// Other items are returned as they are. `Err`: why the payload is not stored (the
    /// record failed; its item must not be written).
    pub(super) async fn store_payload(
        &self,
        config: &StreamArchiveConfig,
        record: &ArchiveRecord,
        mut prepared: PreparedItem,
        deadline: Instant,
        overflow: &Overflow,
    ) -> Result<Item, Error> {
        let Some(target) = config.overflow.as_ref().filter(|_| prepared.oversize) else {
            return Ok(prepared.item);
        };
        let Some(objects) = &self.objects else {
            return Err(Error::InvalidInput(format!(
                "stream {} has an overflow bucket but this writer has no S3 client",
                config.stream
            )));
        };
        let location = target.location(&config.stream, record);
        let _slot = overflow
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("overflow slots closed".into()))?;
        let body = bytes::Bytes::copy_from_slice(&record.data);
        objects.put(&location, body, self.retries(deadline)).await?;
        tracing::debug!(
            stream = %config.stream,
            shard = %record.shard_id,
            sequence_number = %record.sequence_number,
            record_bytes = record.data.len(),
            location = %location,
            "record too large for a DynamoDB item: payload stored in the overflow bucket"
        );
        overflow.stored.fetch_add(1, Ordering::Relaxed);
        claim_check(
            &mut prepared.item,
            &StoredPayload {
                location,
                size: record.data.len() as u64,
            },
        );
        Ok(prepared.item)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{record, writer};
    use crate::domain::config::{ArchiveMode, StreamArchiveConfig};
    use crate::domain::names::StreamName;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test]
    async fn a_payload_that_cannot_be_stored_fails_its_record_and_writes_no_item() {
        // No S3 client, an overflow bucket: the large record fails before any DynamoDB
        // call (the client would fail one), and is never counted as written or oversize.
        let batch = vec![record("big", "7", vec![1u8; 600 * 1024])];
        for mode in [ArchiveMode::All, ArchiveMode::Latest] {
            let mut config =
                StreamArchiveConfig::new(StreamName::new("orders").unwrap(), mode, None);
            config.overflow =
                Some(crate::domain::overflow::OverflowTarget::parse("b-1/p").unwrap());
            let outcome = writer()
                .write(&config, &batch, Instant::now() + Duration::from_secs(5))
                .await
                .unwrap();
            let counts = outcome.counts;
            assert_eq!((counts.written, counts.failed), (0, 1), "{mode}");
            assert_eq!((counts.oversize, counts.overflowed), (0, 0), "{mode}");
            assert_eq!(outcome.lowest_failed.unwrap().as_str(), "7", "{mode}");
            assert!(
                outcome
                    .first_error
                    .unwrap()
                    .to_string()
                    .contains("no S3 client"),
                "{mode}"
            );
        }
    }
}
