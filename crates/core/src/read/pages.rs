//! What every read is made of: pages followed to their end, items turned into records,
//! payloads fetched from S3, the total limit, numeric order within a window, and per-shard
//! streams merged by arrival time.

use std::future::Future;

use async_stream::stream;
use futures::{Stream, StreamExt};

use super::{ArchiveReader, FETCH_AHEAD, RecordStream, time_index};
use crate::aws::item::Item;
use crate::aws::objects::ObjectStore;
use crate::domain::record::{ArchiveRecord, Payload};
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

/// How many payload bytes [`in_sequence_order`] holds at most (records whose payloads are in
/// S3 are held without them): memory stays bounded for a key of large records, whose order
/// is then numeric within a smaller window.
pub(super) const REORDER_BYTES: usize = 64 * 1024 * 1024;

impl ArchiveReader {
    /// Follows a paginated read to its end: `fetch(start)` reads the page from `start`
    /// (retried) and gives its items, how many items it read (`ScannedCount`, counted in
    /// [`ArchiveReader::read_stats`]) and where the next page begins. A missing or empty
    /// `LastEvaluatedKey` is the last page; an error is the stream's last item.
    pub(super) fn paginate<F, Fut>(
        self,
        mut fetch: F,
    ) -> impl Stream<Item = Result<Vec<Item>, Error>> + Send + 'static
    where
        F: FnMut(Option<Item>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Vec<Item>, i32, Option<Item>), Error>> + Send,
    {
        stream! {
            let mut start: Option<Item> = None;
            loop {
                match fetch(start.take()).await {
                    Ok((items, scanned, next)) => {
                        self.counters.count(scanned.max(0) as u64);
                        start = next.filter(|k| !k.is_empty());
                        yield Ok(items);
                        if start.is_none() {
                            return;
                        }
                    }
                    Err(err) => {
                        yield Err(err);
                        return;
                    }
                }
            }
        }
    }
}

/// Merges per-shard streams, each in [`time_index::arrival_order`], into one in that
/// order, holding one record per shard. An item error passes through at once; any other
/// error ends the stream.
pub(super) fn merge_by_arrival(mut shards: Vec<RecordStream>) -> RecordStream {
    Box::pin(stream! {
        let mut heads: Vec<Option<ArchiveRecord>> = shards.iter().map(|_| None).collect();
        let mut ended = vec![false; shards.len()];
        loop {
            for (i, shard) in shards.iter_mut().enumerate() {
                while heads[i].is_none() && !ended[i] {
                    match shard.next().await {
                        Some(Ok(record)) => heads[i] = Some(record),
                        Some(Err(err)) if err.is_per_record() => yield Err(err),
                        Some(Err(err)) => {
                            yield Err(err);
                            return;
                        }
                        None => ended[i] = true,
                    }
                }
            }
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, head)| head.as_ref().map(|record| (i, record)))
                .min_by(|(_, a), (_, b)| time_index::arrival_order(a, b))
                .map(|(i, _)| i);
            match next.and_then(|i| heads[i].take()) {
                Some(record) => yield Ok(record),
                None => return,
            }
        }
    })
}

/// Reads an item into a record and keeps it if `keep` says so. An item that breaks the
/// contract is an error (it cannot be checked against the filters, and silently dropping
/// it would hide data).
pub(super) fn convert(
    item: &Item,
    keep: impl Fn(&ArchiveRecord) -> bool,
) -> Option<Result<ArchiveRecord, Error>> {
    match ArchiveRecord::from_item(item) {
        Ok(record) => keep(&record).then_some(Ok(record)),
        Err(err) => Some(Err(err.into())),
    }
}

/// Fetches the payloads that are in S3 (`objects`: `None` leaves them there), in stream
/// order, at most [`FETCH_AHEAD`] ahead of the consumer.
pub(super) fn resolve(
    objects: Option<ObjectStore>,
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    inner
        .map(move |result| {
            let objects = objects.clone();
            async move {
                let mut record = result?;
                let (Some(objects), Payload::Stored(stored)) = (objects, record.payload()) else {
                    return Ok(record);
                };
                let stored = stored.clone();
                record.data = objects.fetch(&record, &stored).await?;
                Ok(record)
            }
        })
        .buffered(FETCH_AHEAD)
}

/// A record stream put in numeric order of (sequence number, sub-sequence number) within a
/// window of `window` records and `bytes` payload bytes: a record goes out when the window
/// is full and it is the lowest held, or at the end. Errors about one item go out as they
/// come; another error goes out after the records held, and ends the stream. See
/// [`REORDER_WINDOW`](crate::domain::sequence::REORDER_WINDOW).
pub(super) fn in_sequence_order(
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
    window: usize,
    bytes: usize,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    /// A held record, ordered lowest first.
    struct Held(ArchiveRecord);
    impl Held {
        fn key(&self) -> (&SequenceNumber, Option<u64>) {
            (&self.0.sequence_number, self.0.sub_sequence_number)
        }
    }
    impl PartialEq for Held {
        fn eq(&self, other: &Self) -> bool {
            self.key() == other.key()
        }
    }
    impl Eq for Held {}
    impl PartialOrd for Held {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Held {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            // BinaryHeap pops the greatest: reversed, the lowest.
            other.key().cmp(&self.key())
        }
    }
    stream! {
        let mut held = std::collections::BinaryHeap::new();
        let mut held_bytes = 0usize;
        let mut inner = std::pin::pin!(inner);
        while let Some(result) = inner.next().await {
            match result {
                Ok(record) => {
                    held_bytes += record.data.len();
                    held.push(Held(record));
                    while held.len() > window || (held_bytes > bytes && held.len() > 1) {
                        let Held(lowest) = held.pop().expect("held records");
                        held_bytes -= lowest.data.len();
                        yield Ok(lowest);
                    }
                }
                Err(err) if err.is_per_record() => yield Err(err),
                Err(err) => {
                    while let Some(Held(lowest)) = held.pop() {
                        yield Ok(lowest);
                    }
                    yield Err(err);
                    return;
                }
            }
        }
        while let Some(Held(lowest)) = held.pop() {
            yield Ok(lowest);
        }
    }
}

/// Ends a record stream after `limit` records, or after an error that is not about a
/// single item.
pub(super) fn cap(
    inner: impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static,
    limit: Option<usize>,
) -> impl Stream<Item = Result<ArchiveRecord, Error>> + Send + 'static {
    stream! {
        if limit == Some(0) {
            return;
        }
        let mut inner = std::pin::pin!(inner);
        let mut records = 0usize;
        while let Some(result) = inner.next().await {
            match result {
                Ok(record) => {
                    yield Ok(record);
                    records += 1;
                    if Some(records) == limit {
                        return;
                    }
                }
                Err(err) if err.is_per_record() => yield Err(err),
                Err(err) => {
                    yield Err(err);
                    return;
                }
            }
        }
    }
}

/// DynamoDB's `Limit` for a page: the page size asked for; else, when every item read is a
/// match, the total limit (no point reading more); else none (1 MB pages, as filtering may
/// drop most items, and a small `Limit` would then mean many requests).
pub(super) fn page_limit(page_size: Option<u32>, exact: bool, limit: Option<usize>) -> Option<i32> {
    let clamp = |n: usize| n.clamp(1, i32::MAX as usize) as i32;
    match page_size {
        Some(size) => Some(clamp(size as usize)),
        None if exact => limit.map(clamp),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::tests::record;

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(Some(2), false, Some(10)), Some(2));
        assert_eq!(page_limit(None, true, Some(10)), Some(10));
        assert_eq!(page_limit(None, false, Some(10)), None);
        assert_eq!(page_limit(None, true, None), None);
        assert_eq!(page_limit(None, true, Some(usize::MAX)), Some(i32::MAX));
        assert_eq!(page_limit(Some(0), true, None), Some(1));
    }

    #[tokio::test]
    async fn cap_counts_records_not_item_errors_and_stops_after_fatal_errors() {
        use crate::aws::item::ItemError;
        let item_error = || {
            Err(Error::Item(ItemError {
                key: "k/?".into(),
                problem: "bad".into(),
            }))
        };
        let ok = |s: &str| Ok(record(s, "2024-05-01 12:00:00", 1.0));
        let source = vec![ok("1"), item_error(), ok("2"), ok("3")];
        let out: Vec<_> = cap(futures::stream::iter(source), Some(2)).collect().await;
        assert_eq!(out.len(), 3, "two records and the item error between them");
        assert!(matches!(out[1], Err(Error::Item(_))));

        let source = vec![ok("1"), Err(Error::InvalidInput("boom".into())), ok("2")];
        let out: Vec<_> = cap(futures::stream::iter(source), None).collect().await;
        assert_eq!(out.len(), 2, "nothing after a fatal error");

        let out: Vec<_> = cap(futures::stream::iter(vec![ok("1")]), Some(0))
            .collect()
            .await;
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn records_come_out_in_numeric_order_within_the_window() {
        let ok = |s: &str| Ok(record(s, "2024-05-01 12:00:00", 1.0));
        let sequences = |out: Vec<Result<ArchiveRecord, Error>>| {
            out.into_iter()
                .map(|r| {
                    r.map(|r| r.sequence_number.to_string())
                        .unwrap_or_else(|e| e.to_string())
                })
                .collect::<Vec<_>>()
        };
        // The table's string order: "10" before "9".
        let source = || vec![ok("10"), ok("11"), ok("9"), ok("100")];
        let whole = in_sequence_order(futures::stream::iter(source()), 10, usize::MAX);
        assert_eq!(sequences(whole.collect().await), ["9", "10", "11", "100"]);
        // A window of 1: ordered within it only.
        let small = in_sequence_order(futures::stream::iter(source()), 1, usize::MAX);
        assert_eq!(sequences(small.collect().await), ["10", "9", "11", "100"]);
        // Bytes bound the window too (each record here holds one payload byte).
        let by_bytes = in_sequence_order(futures::stream::iter(source()), 10, 1);
        assert_eq!(
            sequences(by_bytes.collect().await),
            ["10", "9", "11", "100"]
        );
        // A fatal error: what was held goes out first, then the error, then nothing.
        let failing = vec![
            ok("10"),
            ok("9"),
            Err(Error::InvalidInput("boom".into())),
            ok("1"),
        ];
        let out = in_sequence_order(futures::stream::iter(failing), 10, usize::MAX);
        assert_eq!(sequences(out.collect().await), ["9", "10", "boom"]);
    }
}
