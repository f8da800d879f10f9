//! What is done to a batch before it is planned: KPL containers replaced by their user
//! records, and replays into the source stream recognized (to be left out).

use std::borrow::Cow;

use crate::domain::config::StreamArchiveConfig;
use crate::domain::frame::ReplayFrame;
use crate::domain::kpl;
use crate::domain::record::ArchiveRecord;

/// The batch with each KPL container replaced by its user records (plain records borrowed,
/// as they are), and how many containers there were. Each user record keeps the
/// container's sequence number, shard and arrival time, with its index in the container as
/// sub-sequence number. A record that starts with the KPL magic but is not a valid
/// container is archived as the plain record it is, with a warning.
pub(super) fn deaggregate_batch<'a>(
    config: &StreamArchiveConfig,
    records: &'a [ArchiveRecord],
) -> (Vec<Cow<'a, ArchiveRecord>>, usize) {
    let mut containers = 0;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        match kpl::deaggregate(&record.data) {
            Ok(None) => out.push(Cow::Borrowed(record)),
            Ok(Some(users)) => {
                containers += 1;
                out.extend(users.into_iter().enumerate().map(|(i, user)| {
                    Cow::Owned(ArchiveRecord {
                        partition_key: user.partition_key,
                        sequence_number: record.sequence_number.clone(),
                        shard_id: record.shard_id.clone(),
                        approximate_arrival_timestamp: record.approximate_arrival_timestamp,
                        data: user.data,
                        last_update: None,
                        expire_after: None,
                        oversize_bytes: None,
                        sub_sequence_number: Some(i as u64),
                        explicit_hash_key: user.explicit_hash_key,
                        stored: None,
                    })
                }));
            }
            Err(problem) => {
                tracing::warn!(
                    stream = %config.stream,
                    shard = %record.shard_id,
                    sequence_number = %record.sequence_number,
                    error = %problem,
                    "not a valid KPL container: archived as the plain record it is"
                );
                out.push(Cow::Borrowed(record));
            }
        }
    }
    (out, containers)
}

/// Whether `record` is a replay of kinarch's into the stream it was archived from.
pub(super) fn is_own_replay(record: &ArchiveRecord) -> bool {
    ReplayFrame::recognize(&record.data).is_some_and(|frame| frame.is_replay_into_source())
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;
    use crate::domain::config::ArchiveMode;
    use crate::domain::names::StreamName;

    #[test]
    fn containers_become_user_records_with_the_containers_position_and_shard() {
        let users = vec![
            kpl::UserRecord {
                partition_key: "u1".into(),
                explicit_hash_key: Some("42".into()),
                data: b"a".to_vec(),
            },
            kpl::UserRecord {
                partition_key: "u2".into(),
                explicit_hash_key: None,
                data: b"b".to_vec(),
            },
        ];
        let mut broken = kpl::aggregate(&users);
        broken.pop();
        let batch = vec![
            record("plain", "5", b"p".to_vec()),
            record("agg", "6", kpl::aggregate(&users)),
            record("agg", "7", broken.clone()),
        ];
        let config =
            StreamArchiveConfig::new(StreamName::new("orders").unwrap(), ArchiveMode::All, None);
        let (out, containers) = deaggregate_batch(&config, &batch);
        assert_eq!(containers, 1);
        assert_eq!(out.len(), 4);
        assert_eq!(*out[0], batch[0]);
        assert!(matches!(out[0], Cow::Borrowed(_)));
        for (i, user) in out[1..3].iter().enumerate() {
            assert_eq!(user.partition_key, users[i].partition_key);
            assert_eq!(user.explicit_hash_key, users[i].explicit_hash_key);
            assert_eq!(user.data, users[i].data);
            assert_eq!(user.sequence_number.as_str(), "6");
            assert_eq!(user.sub_sequence_number, Some(i as u64));
            assert_eq!(user.shard_id, batch[1].shard_id);
            assert_eq!(user.approximate_arrival_timestamp, 1.5);
        }
        // A record with the magic that is not a valid container stays as it is.
        assert_eq!(*out[3], batch[2]);
    }
}
