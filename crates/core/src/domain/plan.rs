//! Write planning: which records go into which DynamoDB request.
//!
//! Pure functions over record indices, so the rules are tested without any I/O.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};

use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;

/// BatchWriteItem takes at most 25 put requests. Emulators accept more; AWS does not.
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;

/// ALL mode: splits the records into BatchWriteItem requests of at most
/// [`MAX_BATCH_WRITE_ITEMS`], with no key (`partitionKey`, `sequenceNumber`) twice in one
/// request (DynamoDB refuses such a request as a whole). A record delivered twice in one
/// batch is written once. User records of one KPL container share its sequence number and
/// differ by sub-sequence number, so they are distinct keys.
///
/// The planning functions take records or references to them (the writer plans the records
/// of a batch that are to be archived, without copying them).
pub fn plan_all<R: Borrow<ArchiveRecord>>(records: &[R]) -> Vec<Vec<usize>> {
    let mut seen = HashSet::with_capacity(records.len());
    let unique: Vec<usize> = (0..records.len())
        .filter(|&i| {
            let record = records[i].borrow();
            seen.insert((&record.partition_key, record.position()))
        })
        .collect();
    unique
        .chunks(MAX_BATCH_WRITE_ITEMS)
        .map(<[usize]>::to_vec)
        .collect()
}

/// LATEST mode: the index of the record with the highest position (sequence number, then
/// sub-sequence number for user records of a KPL container) of each partition key, in order
/// of first appearance of the key.
pub fn reduce_latest<R: Borrow<ArchiveRecord>>(records: &[R]) -> Vec<usize> {
    let mut newest: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    let mut order = Vec::new();
    for (i, record) in records.iter().map(Borrow::borrow).enumerate() {
        match newest.get_mut(record.partition_key.as_str()) {
            None => {
                newest.insert(&record.partition_key, i);
                order.push(&record.partition_key);
            }
            Some(best) => {
                if record.position() > records[*best].borrow().position() {
                    *best = i;
                }
            }
        }
    }
    order.into_iter().map(|key| newest[key.as_str()]).collect()
}

/// The lowest sequence number among the records for which `failed` holds: the point from
/// which the event source must deliver the shard again.
pub fn lowest_sequence<R: Borrow<ArchiveRecord>>(
    records: &[R],
    failed: impl Fn(usize, &ArchiveRecord) -> bool,
) -> Option<&SequenceNumber> {
    records
        .iter()
        .map(Borrow::borrow)
        .enumerate()
        .filter(|(i, r)| failed(*i, r))
        .map(|(_, r)| &r.sequence_number)
        .min()
}

/// How many records `failed` holds for, and the lowest sequence number among them: what a
/// write outcome reports (see [`lowest_sequence`]).
pub fn failures<R: Borrow<ArchiveRecord>>(
    records: &[R],
    failed: impl Fn(usize, &ArchiveRecord) -> bool,
) -> (usize, Option<&SequenceNumber>) {
    let count = records
        .iter()
        .map(Borrow::borrow)
        .enumerate()
        .filter(|(i, r)| failed(*i, r))
        .count();
    (count, lowest_sequence(records, failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(key: &str, seq: &str) -> ArchiveRecord {
        ArchiveRecord::received(
            key.into(),
            SequenceNumber::parse(seq).unwrap(),
            "shardId-000000000000".into(),
            0.0,
            vec![],
        )
    }

    #[test]
    fn all_mode_chunks_of_25() {
        let records: Vec<_> = (1..=60).map(|i| rec("k", &i.to_string())).collect();
        let plan = plan_all(&records);
        assert_eq!(
            plan.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![25, 25, 10]
        );
    }

    #[test]
    fn all_mode_drops_duplicate_keys() {
        let records = vec![rec("a", "1"), rec("a", "1"), rec("b", "1"), rec("a", "2")];
        assert_eq!(plan_all(&records), vec![vec![0, 2, 3]]);
    }

    #[test]
    fn latest_keeps_numerically_highest_per_key() {
        let records = vec![
            rec("a", "9"),
            rec("b", "5"),
            rec("a", "10"),
            rec("a", "2"),
            rec("b", "4"),
        ];
        assert_eq!(reduce_latest(&records), vec![2, 1]);
    }

    #[test]
    fn user_records_of_a_container_are_distinct_and_ordered_by_sub_sequence() {
        let user = |key: &str, seq: &str, sub: u64| ArchiveRecord {
            sub_sequence_number: Some(sub),
            ..rec(key, seq)
        };
        let records = vec![
            rec("a", "10"),
            user("a", "10", 0),
            user("a", "10", 1),
            user("a", "10", 1),
            user("b", "9", 5),
            user("b", "9", 2),
        ];
        assert_eq!(plan_all(&records), vec![vec![0, 1, 2, 4, 5]]);
        assert_eq!(reduce_latest(&records), vec![2, 4]);
    }

    #[test]
    fn lowest_failed_is_numeric() {
        let records = vec![rec("a", "10"), rec("b", "9"), rec("c", "100")];
        let lowest = lowest_sequence(&records, |i, _| i != 1).unwrap();
        assert_eq!(lowest.as_str(), "10");
        assert!(lowest_sequence(&records, |_, _| false).is_none());
    }

    proptest! {
        #[test]
        fn planning_invariants(pairs in proptest::collection::vec((0u8..20, 1u32..200), 0..300)) {
            let records: Vec<_> = pairs.iter().map(|(k, s)| rec(&format!("k{k}"), &s.to_string())).collect();
            let plan = plan_all(&records);
            let mut written = HashSet::new();
            for request in &plan {
                prop_assert!(request.len() <= MAX_BATCH_WRITE_ITEMS && !request.is_empty());
                let mut keys = HashSet::new();
                for &i in request {
                    prop_assert!(keys.insert((&records[i].partition_key, &records[i].sequence_number)));
                    written.insert((&records[i].partition_key, &records[i].sequence_number));
                }
            }
            let distinct: HashSet<_> = records.iter().map(|r| (&r.partition_key, &r.sequence_number)).collect();
            prop_assert_eq!(written, distinct);

            let latest = reduce_latest(&records);
            let keys: HashSet<_> = records.iter().map(|r| &r.partition_key).collect();
            prop_assert_eq!(latest.len(), keys.len());
            for &i in &latest {
                let top = records.iter().filter(|r| r.partition_key == records[i].partition_key)
                    .map(|r| &r.sequence_number).max().unwrap();
                prop_assert_eq!(&records[i].sequence_number, top);
            }
        }
    }
}
