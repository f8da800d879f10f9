//! Reading an arrival window through the time index (`kinarch setup --time-index`, see
//! [`crate::aws::tables::TIME_INDEX`]): one Query per shard, merged by arrival time, so a
//! window costs the items in it rather than a Scan of the whole table.
//!
//! # Which shards
//! A Query needs the shard id. The stream's ListShards names its shards within the
//! retention period, and their parents; older shards have been trimmed from it although
//! the archive keeps their records. Kinesis numbers shards `shardId-000000000000` upwards as
//! it creates them, so the ids below the highest one listed are queried too: an id that held
//! nothing costs one empty Query. When the stream cannot be read (deleted, no permission),
//! the shards are unknown and the reader scans instead.
//!
//! # Order
//! Records come in arrival order across all shards (`approximateArrivalTimestamp`, then the
//! sequence number for records that arrived in the same millisecond, which DynamoDB returns
//! in no particular order). A partition key lives in one shard at a time and a child shard's
//! records arrive after its parent's, so this is also each key's order.
//!
//! # Split across workers
//! With the index, a worker's `--segment I/N` is a share of the shards, not of the table:
//! shards related by a split or a merge form one group (a key moves only within its group),
//! and worker `I` reads the groups `I, I + N, I + 2N, ...` in shard-id order. Every worker
//! must see the same shard list: start them after the last reshard that touches the window.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::aws::streams::ShardInfo;
use crate::domain::record::ArchiveRecord;

/// Items per Query page: with one page in memory per shard, a stream of many shards stays
/// within a few MiB (100 items of typical size), while a page still holds enough records
/// that a request is not spent on a handful.
pub const PAGE_ITEMS: i32 = 100;

/// The number in a Kinesis shard id (`shardId-000000000042` → 42).
fn shard_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("shardId-")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn shard_id(number: u64) -> String {
    format!("shardId-{number:012}")
}

/// Every shard id that may hold archived records: the listed shards, their parents, and
/// (when the ids follow Kinesis' numbering) every number below the highest, for the shards
/// trimmed from ListShards. Sorted by id.
pub fn shards_to_query(listed: &[ShardInfo]) -> Vec<String> {
    let mut ids: BTreeSet<String> = listed
        .iter()
        .flat_map(|s| std::iter::once(s.shard_id.as_str()).chain(s.parents()))
        .map(str::to_owned)
        .collect();
    if ids.iter().all(|id| shard_number(id).is_some())
        && let Some(highest) = ids.iter().filter_map(|id| shard_number(id)).max()
    {
        ids.extend((0..highest).map(shard_id));
    }
    ids.into_iter().collect()
}

/// The shards of [`shards_to_query`] grouped by lineage (a split's parent and children, a
/// merge's two parents and child are one group), each group sorted, groups in the order of
/// their first shard id.
pub fn shard_groups(listed: &[ShardInfo]) -> Vec<Vec<String>> {
    let ids = shards_to_query(listed);
    let position: BTreeMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for shard in listed {
        let Some(&child) = position.get(shard.shard_id.as_str()) else {
            continue;
        };
        for p in shard.parents() {
            if let Some(&p) = position.get(p) {
                let (a, b) = (root(&mut parent, child), root(&mut parent, p));
                // The smaller position stays the root: groups keep their first id's order.
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(id.clone());
    }
    groups.into_values().collect()
}

/// The shards worker `index` of `total` reads: every `total`-th group from `index` on.
pub fn shards_of_worker(groups: &[Vec<String>], index: u32, total: u32) -> Vec<String> {
    groups
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64) % u64::from(total) == u64::from(index))
        .flat_map(|(_, group)| group.iter().cloned())
        .collect()
}

/// The replay order of records: arrival time, then sequence number (numeric).
pub fn arrival_order(a: &ArchiveRecord, b: &ArchiveRecord) -> Ordering {
    a.approximate_arrival_timestamp
        .total_cmp(&b.approximate_arrival_timestamp)
        .then_with(|| a.sequence_number.cmp(&b.sequence_number))
        .then_with(|| a.sub_sequence_number.cmp(&b.sub_sequence_number))
}

/// Puts one shard's pages in [`arrival_order`]. A page comes sorted by arrival time, but
/// records of the same time come in any order, and such a run may go on in the next page:
/// the run at the end of a page is held back until a later time (or the end) shows it
/// complete.
#[derive(Debug, Default)]
pub struct TieOrder {
    held: Vec<ArchiveRecord>,
}

impl TieOrder {
    /// The records of `page` that are ready, in order; the rest is held.
    pub fn page(&mut self, page: Vec<ArchiveRecord>) -> Vec<ArchiveRecord> {
        let mut records = std::mem::take(&mut self.held);
        records.extend(page);
        records.sort_by(arrival_order);
        if let Some(last) = records.last().map(|r| r.approximate_arrival_timestamp) {
            let split = records.partition_point(|r| r.approximate_arrival_timestamp < last);
            self.held = records.split_off(split);
        }
        records
    }

    /// What is held, at the end of the shard.
    pub fn finish(&mut self) -> Vec<ArchiveRecord> {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sequence::SequenceNumber;

    fn shard(id: u64, parents: &[u64]) -> ShardInfo {
        ShardInfo {
            shard_id: shard_id(id),
            parent_shard_id: parents.first().map(|&p| shard_id(p)),
            adjacent_parent_shard_id: parents.get(1).map(|&p| shard_id(p)),
            ending_sequence_number: None,
            hash_key_range: (0, u128::MAX),
        }
    }

    fn ids(numbers: &[u64]) -> Vec<String> {
        numbers.iter().map(|&n| shard_id(n)).collect()
    }

    #[test]
    fn trimmed_shards_below_the_highest_id_are_queried() {
        // Shards 0..=2 were trimmed; 3 and 4 are listed, 4 split from 3.
        assert_eq!(
            shards_to_query(&[shard(3, &[]), shard(4, &[3])]),
            ids(&[0, 1, 2, 3, 4])
        );
        assert_eq!(shards_to_query(&[shard(0, &[])]), ids(&[0]));
        assert!(shards_to_query(&[]).is_empty());
        // Ids of another form: only what is named.
        let odd = ShardInfo {
            shard_id: "custom-7".into(),
            ..shard(9, &[])
        };
        assert_eq!(shards_to_query(&[odd]), ["custom-7"]);
    }

    #[test]
    fn lineage_makes_groups_and_workers_take_every_nth() {
        // 0 split into 1 and 2; 3 alone; 4 and 5 merged into 6.
        let listed = [
            shard(1, &[0]),
            shard(2, &[0]),
            shard(3, &[]),
            shard(4, &[]),
            shard(5, &[]),
            shard(6, &[4, 5]),
        ];
        let groups = shard_groups(&listed);
        assert_eq!(groups, [ids(&[0, 1, 2]), ids(&[3]), ids(&[4, 5, 6])]);
        assert_eq!(shards_of_worker(&groups, 0, 2), ids(&[0, 1, 2, 4, 5, 6]));
        assert_eq!(shards_of_worker(&groups, 1, 2), ids(&[3]));
        assert!(shards_of_worker(&groups, 3, 4).is_empty());
        let all: usize = (0..3).map(|i| shards_of_worker(&groups, i, 3).len()).sum();
        assert_eq!(all, 7);
    }

    fn record(sequence: u64, arrival: f64) -> ArchiveRecord {
        ArchiveRecord::received(
            "k".to_owned(),
            SequenceNumber::parse(&sequence.to_string()).unwrap(),
            shard_id(0),
            arrival,
            Vec::new(),
        )
    }

    fn sequences(records: &[ArchiveRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| r.sequence_number.as_str().to_owned())
            .collect()
    }

    #[test]
    fn records_of_one_time_are_ordered_by_sequence_across_pages() {
        let mut order = TieOrder::default();
        // Same millisecond, out of order, and the run goes on in the next page.
        let ready = order.page(vec![record(1, 1.0), record(9, 2.0), record(10, 2.0)]);
        assert_eq!(sequences(&ready), ["1"]);
        let ready = order.page(vec![record(3, 2.0), record(11, 3.0)]);
        // 10 > 9 numerically although "10" < "9" as text.
        assert_eq!(sequences(&ready), ["3", "9", "10"]);
        assert_eq!(sequences(&order.finish()), ["11"]);
        assert!(order.finish().is_empty());
        assert!(order.page(Vec::new()).is_empty());
    }
}
