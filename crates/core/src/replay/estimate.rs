//! What a replay would do, without sending (`kinarch reinject --estimate`): records, bytes,
//! PutRecords calls, shards and keys, the arrival span, and how long pacing and the rate
//! make it take.
//!
//! Calls: the sender puts at most one record of a key in a request (a key's next record
//! waits for the previous one's answer), at most 500 records and 5 MiB. So a replay takes at
//! least as many calls as its largest key has records, and at least records / 500 and bytes
//! / 5 MiB. That lower bound is what is printed: which keys share a request depends on the
//! order the archive yields them and on the calls in flight, so the real count is the bound
//! or a little more (`reinject -o json` reports it).
//!
//! Why the estimate reads the payloads: DynamoDB returns an attribute's size only with the
//! attribute (a projection cannot ask for `size(recordData)`), and the bytes are what sizes
//! a replay (1 MB/s per target shard). It keeps nothing but the counts and one number per
//! partition key.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::domain::pace::replay_duration;
use crate::domain::record::ArchiveRecord;
use crate::error::Error;
use crate::replay::sender::{MAX_BYTES_PER_REQUEST, MAX_RECORDS_PER_REQUEST};

/// What a replay of a selection would send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayEstimate {
    /// Records that would be sent.
    pub records: u64,
    /// Their payload bytes (as archived; `--metadata` framing adds its header to each).
    pub bytes: u64,
    /// The least PutRecords calls (see the module documentation).
    pub calls: u64,
    /// Distinct shards the records came from.
    pub shards: u64,
    /// Distinct partition keys.
    pub keys: u64,
    /// Earliest and latest `approximateArrivalTimestamp` (epoch seconds).
    pub arrivals: Option<(f64, f64)>,
    /// Records that could not be sent (payload not in the archive).
    pub unsendable: u64,
    /// Items that did not follow the table contract.
    pub unreadable: u64,
}

impl ReplayEstimate {
    /// How long the replay takes at least, paced (`speed`) and rate-limited.
    pub fn duration(&self, speed: Option<f64>, rate: Option<u32>) -> Duration {
        replay_duration(self.records, self.arrivals, speed, rate)
    }
}

/// Counts a selection.
pub async fn estimate(
    records: impl Stream<Item = Result<ArchiveRecord, Error>>,
) -> Result<ReplayEstimate, Error> {
    let mut counter = Counter::default();
    let mut records = std::pin::pin!(records);
    while let Some(record) = records.next().await {
        match record {
            Ok(record) => counter.add(&record),
            Err(Error::Item(_)) => counter.estimate.unreadable += 1,
            Err(other) => return Err(other),
        }
    }
    Ok(counter.finish())
}

#[derive(Default)]
struct Counter {
    estimate: ReplayEstimate,
    per_key: HashMap<String, u64>,
    shards: HashSet<String>,
}

impl Counter {
    fn add(&mut self, record: &ArchiveRecord) {
        if record.oversize_bytes.is_some() {
            self.estimate.unsendable += 1;
            return;
        }
        let e = &mut self.estimate;
        e.records += 1;
        e.bytes += record.data.len() as u64;
        let arrival = record.approximate_arrival_timestamp;
        e.arrivals = Some(match e.arrivals {
            None => (arrival, arrival),
            Some((first, last)) => (first.min(arrival), last.max(arrival)),
        });
        *self
            .per_key
            .entry(record.partition_key.clone())
            .or_default() += 1;
        if !self.shards.contains(&record.shard_id) {
            self.shards.insert(record.shard_id.clone());
        }
    }

    fn finish(mut self) -> ReplayEstimate {
        self.estimate.keys = self.per_key.len() as u64;
        self.estimate.shards = self.shards.len() as u64;
        self.estimate.calls = calls(self.per_key.values().copied(), self.estimate.bytes);
        self.estimate
    }
}

/// The least PutRecords calls for keys with these record counts and these bytes (see the
/// module documentation).
pub fn calls(per_key: impl IntoIterator<Item = u64>, bytes: u64) -> u64 {
    let (mut records, mut largest) = (0u64, 0u64);
    for count in per_key {
        records += count;
        largest = largest.max(count);
    }
    largest
        .max(records.div_ceil(MAX_RECORDS_PER_REQUEST as u64))
        .max(bytes.div_ceil(MAX_BYTES_PER_REQUEST as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sequence::SequenceNumber;

    #[test]
    fn calls_are_bounded_by_the_largest_key_and_the_request_limits() {
        assert_eq!(calls([], 0), 0);
        // 10,000 keys of one record: 20 full calls.
        assert_eq!(calls(std::iter::repeat_n(1, 10_000), 0), 20);
        // One key of 2,000 records: 2,000 calls.
        assert_eq!(calls([2000], 0), 2000);
        // 100 keys of 100 records: 100 calls of 100.
        assert_eq!(calls(std::iter::repeat_n(100, 100), 0), 100);
        // 600 keys of 1 and 1 key of 3: at least 3 (603 records fit 2 calls, one key has 3).
        let mut keys = vec![1; 600];
        keys.push(3);
        assert_eq!(calls(keys, 0), 3);
        // The byte limit: 2 records of 4 MiB each need 2 calls even with 2 keys.
        assert_eq!(calls([1, 1], 8 * 1024 * 1024), 2);
    }

    #[tokio::test]
    async fn a_selection_is_counted_without_keeping_it() {
        let record = |key: &str, shard: &str, arrival: f64, bytes: usize| {
            ArchiveRecord::received(
                key.into(),
                SequenceNumber::parse("1").unwrap(),
                shard.into(),
                arrival,
                vec![0; bytes],
            )
        };
        let mut oversize = record("c", "s1", 5.0, 0);
        oversize.oversize_bytes = Some(500_000);
        let source = futures::stream::iter(vec![
            Ok(record("a", "s1", 10.0, 3)),
            Ok(record("a", "s2", 12.5, 4)),
            Ok(record("b", "s1", 11.0, 5)),
            Ok(oversize),
        ]);
        let e = estimate(source).await.unwrap();
        assert_eq!(
            (e.records, e.bytes, e.keys, e.shards, e.calls, e.unsendable),
            (3, 12, 2, 2, 2, 1)
        );
        assert_eq!(e.arrivals, Some((10.0, 12.5)));
        assert_eq!(e.duration(Some(1.0), None), Duration::from_millis(2500));
        assert_eq!(e.duration(None, Some(1)), Duration::from_secs(2));
    }
}
