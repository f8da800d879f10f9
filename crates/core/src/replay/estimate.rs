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
//! Records and bytes are what the replay would send: each record framed as the replay
//! frames it (`--metadata` adds its header to every record), and records the replay would
//! refuse (payload not archived or unreadable, larger than Kinesis takes with the frame)
//! counted apart, by the very functions the replay uses.
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
use crate::domain::shard_load::LoadShare;
use crate::error::Error;
use crate::replay::reinject::{RecordId, ReinjectOptions, to_input};
use crate::replay::sender::{Input, MAX_BYTES_PER_REQUEST, MAX_RECORDS_PER_REQUEST, Outgoing};

/// What a replay of a selection would send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayEstimate {
    /// Records that would be sent.
    pub records: u64,
    /// The bytes that would be sent: each record's data as framed (what
    /// [`ReinjectReport::bytes`](crate::replay::reinject::ReinjectReport) counts).
    pub bytes: u64,
    /// The least PutRecords calls (see the module documentation).
    pub calls: u64,
    /// Distinct shards the records came from.
    pub shards: u64,
    /// Distinct partition keys.
    pub keys: u64,
    /// Earliest and latest `approximateArrivalTimestamp` (epoch seconds).
    pub arrivals: Option<(f64, f64)>,
    /// Records the replay would refuse: payload not in the archive or unreadable, or larger
    /// than a Kinesis record once framed.
    pub unsendable: u64,
    /// Items that did not follow the table contract.
    pub unreadable: u64,
    /// With a shard load: the target shard that takes the most time at its share, and how
    /// long (records and bytes against its budget).
    pub busiest_target_shard: Option<(String, Duration)>,
}

impl ReplayEstimate {
    /// How long the replay takes at least, paced (`speed`), rate-limited and held to the
    /// busiest target shard's budget.
    pub fn duration(&self, speed: Option<f64>, rate: Option<u32>) -> Duration {
        let paced = replay_duration(self.records, self.arrivals, speed, rate);
        match &self.busiest_target_shard {
            Some((_, busiest)) => paced.max(*busiest),
            None => paced,
        }
    }
}

/// Counts what a replay of `records` with `options` (framing, source and target) would
/// send.
pub async fn estimate(
    records: impl Stream<Item = Result<ArchiveRecord, Error>>,
    options: &ReinjectOptions,
) -> Result<ReplayEstimate, Error> {
    let mut counter = Counter::default();
    let mut records = std::pin::pin!(records);
    while let Some(record) = records.next().await {
        if let Err(Error::Item(_)) = record {
            counter.estimate.unreadable += 1;
            continue;
        }
        let seen = record.as_ref().ok().map(|r| {
            (
                r.approximate_arrival_timestamp,
                counter.new_shard(&r.shard_id),
            )
        });
        match (to_input(record, options)?, seen) {
            (Input::Send(outgoing), Some((arrival, shard))) if outgoing.refusal().is_none() => {
                if let Some(load) = &options.shard_load
                    && let Some(target) = load.shards.shard_of(
                        &outgoing.partition_key,
                        outgoing.explicit_hash_key.as_deref(),
                    )
                {
                    let counts = match counter.per_target_shard.get_mut(target) {
                        Some(counts) => counts,
                        None => counter
                            .per_target_shard
                            .entry(target.to_owned())
                            .or_default(),
                    };
                    counts.0 += 1;
                    counts.1 += outgoing.size() as u64;
                }
                counter.add(&outgoing, arrival, shard)
            }
            _ => counter.estimate.unsendable += 1,
        }
    }
    let share = options.shard_load.as_ref().map(|load| load.share);
    Ok(counter.finish(share))
}

#[derive(Default)]
struct Counter {
    estimate: ReplayEstimate,
    per_key: HashMap<String, u64>,
    shards: HashSet<String>,
    /// Data and partition keys: what the PutRecords byte limit counts.
    request_bytes: u64,
    /// With a shard load: records and bytes per target shard.
    per_target_shard: HashMap<String, (u64, u64)>,
}

impl Counter {
    /// The shard's id if it was not seen yet (cloned once per shard, not per record).
    fn new_shard(&self, shard: &str) -> Option<String> {
        (!self.shards.contains(shard)).then(|| shard.to_owned())
    }

    fn add(&mut self, record: &Outgoing<RecordId>, arrival: f64, new_shard: Option<String>) {
        let e = &mut self.estimate;
        e.records += 1;
        e.bytes += record.data.len() as u64;
        self.request_bytes += record.size() as u64;
        e.arrivals = Some(match e.arrivals {
            None => (arrival, arrival),
            Some((first, last)) => (first.min(arrival), last.max(arrival)),
        });
        match self.per_key.get_mut(&record.partition_key) {
            Some(count) => *count += 1,
            None => {
                self.per_key.insert(record.partition_key.clone(), 1);
            }
        }
        if let Some(shard) = new_shard {
            self.shards.insert(shard);
        }
    }

    fn finish(mut self, share: Option<LoadShare>) -> ReplayEstimate {
        if let Some(share) = share {
            self.estimate.busiest_target_shard = self
                .per_target_shard
                .into_iter()
                .map(|(shard, (records, bytes))| (shard, share.duration(records, bytes)))
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
        }
        self.estimate.keys = self.per_key.len() as u64;
        self.estimate.shards = self.shards.len() as u64;
        self.estimate.calls = calls(self.per_key.values().copied(), self.request_bytes);
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
    use crate::replay::reinject::{Framing, MAX_RECORD_BYTES};

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

    fn options(framing: Framing) -> ReinjectOptions {
        let mut options = ReinjectOptions::new(
            crate::StreamName::new("orders").unwrap(),
            crate::StreamName::new("replay").unwrap(),
        );
        options.framing = framing;
        options
    }

    #[tokio::test]
    async fn framed_bytes_and_records_too_large_once_framed_are_what_a_replay_sends() {
        let record = |key: &str, bytes: usize| {
            ArchiveRecord::received(
                key.into(),
                SequenceNumber::parse("12345").unwrap(),
                "shardId-000000000000".into(),
                1.5,
                vec![b'x'; bytes],
            )
        };
        // A payload that fits raw but not with its frame.
        let near_limit = MAX_RECORD_BYTES - 10;
        let records =
            || futures::stream::iter(vec![Ok(record("a", 5)), Ok(record("b", near_limit))]);
        let raw = estimate(records(), &options(Framing::Raw)).await.unwrap();
        assert_eq!(
            (raw.records, raw.bytes, raw.unsendable),
            (2, 5 + near_limit as u64, 0)
        );
        let framing = Framing::Metadata { separator: b'|' };
        let framed = estimate(records(), &options(framing)).await.unwrap();
        let frame_of_a = crate::domain::frame::ReplayFrame::encode(
            &crate::domain::frame::ReplayMetadata::of(&record("a", 5), Some("orders")),
            b"xxxxx",
            b'|',
        );
        assert_eq!(
            (framed.records, framed.bytes, framed.unsendable),
            (1, frame_of_a.len() as u64, 1)
        );
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
        let e = estimate(source, &options(Framing::Raw)).await.unwrap();
        assert_eq!(
            (e.records, e.bytes, e.keys, e.shards, e.calls, e.unsendable),
            (3, 12, 2, 2, 2, 1)
        );
        assert_eq!(e.arrivals, Some((10.0, 12.5)));
        assert_eq!(e.duration(Some(1.0), None), Duration::from_millis(2500));
        assert_eq!(e.duration(None, Some(1)), Duration::from_secs(2));
    }
}
