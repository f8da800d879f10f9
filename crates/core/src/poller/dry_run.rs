//! `kinarch archive --dry-run`: what a run would do, read and written nothing. The setup is
//! checked as a run checks it (tags, table, key schema), the checkpoints are read where they
//! already are (a missing checkpoint table or file is not created), and each shard of the
//! listing is given the place a run would start it ([`where_shards_start`], pure).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_kinesis::Client as KinesisClient;

use crate::aws::region_of;
use crate::aws::streams::{ShardInfo, list_shards};
use crate::aws::tables::describe_table;
use crate::domain::config::StreamArchiveConfig;
use crate::domain::names::StreamName;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;
use crate::poller::checkpoint::{Checkpoint, CheckpointLocation, CheckpointStore, Checkpoints};
use crate::poller::{PollerOptions, StartPosition, StreamPoller};

/// Where a run would start one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardStart {
    /// Its checkpoint says it is finished: it would not be read.
    Finished,
    /// Right after its checkpoint.
    AfterCheckpoint(SequenceNumber),
    /// At the time an earlier run opened it at LATEST, less a margin (its checkpoint has no
    /// sequence number yet).
    ResumeAtTime(String),
    /// At its beginning: a child of a shard with a checkpoint, so nothing of it is missed.
    AtBeginning,
    /// At the run's start position (no checkpoint, no archived parent).
    At(StartPosition),
}

/// What `kinarch archive --dry-run` found.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveDryRun {
    /// The stream's archive configuration.
    pub config: StreamArchiveConfig,
    /// Where checkpoints would be kept.
    pub checkpoints: CheckpointLocation,
    /// Whether they exist already (a first run creates them).
    pub checkpoints_exist: bool,
    /// What a run would say of checkpoints it ignores because they speak of an earlier
    /// table of the archive's name (see [`Checkpoints::stale_note`]).
    pub stale_note: Option<String>,
    /// Each shard of the listing and where it would start, in listing order.
    pub shards: Vec<(ShardInfo, ShardStart)>,
}

impl StreamPoller {
    /// Checks what [`StreamPoller::open`] checks and lists the shards with where a run would
    /// start each, writing nothing.
    pub async fn dry_run(
        sdk: &SdkConfig,
        stream: StreamName,
        options: PollerOptions,
    ) -> Result<ArchiveDryRun, Error> {
        let kinesis = KinesisClient::new(sdk);
        let dynamodb = DynamoDbClient::new(sdk);
        let (config, table) =
            Self::checked_config(&kinesis, &dynamodb, &stream, &region_of(sdk)).await?;
        let location = match &options.checkpoints {
            Some(location) => location.clone(),
            None => CheckpointLocation::default_for(&config)?,
        };
        let exists = match &location {
            CheckpointLocation::Table(table) => describe_table(&dynamodb, table).await?.is_some(),
            CheckpointLocation::File(path) => path.exists(),
        };
        let checkpoints = match exists {
            true => {
                let incarnation = table.map(|t| t.incarnation).unwrap_or_default();
                CheckpointStore::open(&dynamodb, location.clone(), &config, incarnation)
                    .await?
                    .load()
                    .await?
            }
            false => Checkpoints::default(),
        };
        let listing = list_shards(&kinesis, &config.stream, options.list_shards_page_size).await?;
        let starts = where_shards_start(&listing, &checkpoints.current, options.start);
        Ok(ArchiveDryRun {
            stale_note: checkpoints.stale_note(&config.table, options.start),
            config,
            checkpoints: location,
            checkpoints_exist: exists,
            shards: listing.into_iter().zip(starts).collect(),
        })
    }
}

/// Where a run would start each shard of `listing`: after its checkpoint; at its beginning
/// when a parent has a checkpoint (the run reads children of archived shards from their
/// start, so nothing is missed); otherwise at `start`.
pub fn where_shards_start(
    listing: &[ShardInfo],
    checkpoints: &HashMap<String, Checkpoint>,
    start: StartPosition,
) -> Vec<ShardStart> {
    listing
        .iter()
        .map(|shard| match checkpoints.get(&shard.shard_id) {
            Some(c) if c.finished => ShardStart::Finished,
            Some(Checkpoint {
                sequence_number: Some(seq),
                ..
            }) => ShardStart::AfterCheckpoint(seq.clone()),
            Some(c) => match c.resume_time() {
                Some(time) => ShardStart::ResumeAtTime(time.to_rfc3339()),
                None => ShardStart::At(start),
            },
            None if shard.parents().any(|p| checkpoints.contains_key(p)) => ShardStart::AtBeginning,
            None => ShardStart::At(start),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parent_shard_id: parent.map(Into::into),
            adjacent_parent_shard_id: None,
            ending_sequence_number: None,
            hash_key_range: (0, u128::MAX),
        }
    }

    #[test]
    fn checkpoints_then_archived_parents_then_the_start_position() {
        let listing = [
            shard("s0", None),
            shard("s1", None),
            shard("s2", Some("s0")),
            shard("s3", None),
        ];
        let checkpoints = HashMap::from([
            ("s0".to_owned(), Checkpoint::now(None, true)),
            (
                "s1".to_owned(),
                Checkpoint::now(Some(SequenceNumber::parse("42").unwrap()), false),
            ),
        ]);
        assert_eq!(
            where_shards_start(&listing, &checkpoints, StartPosition::Latest),
            [
                ShardStart::Finished,
                ShardStart::AfterCheckpoint(SequenceNumber::parse("42").unwrap()),
                ShardStart::AtBeginning,
                ShardStart::At(StartPosition::Latest),
            ]
        );
    }
}
