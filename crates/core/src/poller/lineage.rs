//! Which shards may be read, from where, and when one is finished: decisions on the shard
//! listing and the checkpoints, which the run loop ([`StreamPoller::run`]) carries out
//! (starts readers, writes checkpoints).
//!
//! Nothing here calls AWS, sleeps or touches a file, so each rule of "Shard order" and
//! "Where reading starts" in the [module documentation](super) is tested on its own below.
//!
//! [`StreamPoller::run`]: super::StreamPoller::run

use std::collections::{BTreeMap, HashMap};

use crate::aws::streams::ShardInfo;
use crate::domain::sequence::SequenceNumber;
use crate::poller::checkpoint::Checkpoint;
use crate::poller::{Position, StartPosition};

/// Where a run stands with a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not started yet, or caught up while open and closed since (to be read to its end).
    Waiting,
    /// Its reader is running.
    Reading,
    /// Open, and every record it held was archived (without `follow`).
    CaughtUp,
    /// Closed and read to its end, in this run or an earlier one.
    Finished,
    /// Its reader was stopped (shutdown, or a fatal error elsewhere).
    Stopped,
}

/// What a run knows of a shard.
#[derive(Debug, Clone)]
pub(super) struct KnownShard {
    /// As the last listing described it.
    pub(super) info: ShardInfo,
    pub(super) phase: Phase,
    /// Its checkpoint when the run started.
    pub(super) checkpoint: Option<Checkpoint>,
    /// Listed when the run started (not created during it).
    listed_first: bool,
    /// A reader was started for it in this run.
    read_in_run: bool,
}

/// A shard that a listing shows closed, or whose end moved: its running reader, if it has
/// one, must be told, since the reader decides when the shard is read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closed {
    pub(super) shard_id: String,
    pub(super) ending: SequenceNumber,
}

/// What to do with a waiting shard whose parents are finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Read it with a new reader from `position`; `started_from` says where, for people.
    Start {
        shard_id: String,
        position: Position,
        started_from: String,
    },
    /// Go on with the reader it had in this run (it was caught up, then closed), from
    /// exactly where that reader stopped.
    Resume { shard_id: String },
    /// Checkpoint it as finished without reading it (LATEST, and already closed).
    FinishUnread { shard_id: String },
}

impl Decision {
    /// The shard it is about.
    pub(super) fn shard_id(&self) -> &str {
        match self {
            Decision::Start { shard_id, .. }
            | Decision::Resume { shard_id }
            | Decision::FinishUnread { shard_id } => shard_id,
        }
    }
}

/// The shards of one run, by id.
#[derive(Debug, Default)]
pub(super) struct Lineage {
    shards: BTreeMap<String, KnownShard>,
}

impl Lineage {
    /// Takes in a ListShards answer: adds the shards not known yet (finished if their
    /// checkpoint says so, so that a restart never reads them again and starts their
    /// children at once), and returns the shards that closed since the last listing.
    ///
    /// `first_listing`: the listing made when the run started; shards that appear later were
    /// created during the run.
    pub(super) fn merge(
        &mut self,
        listing: Vec<ShardInfo>,
        checkpoints: &HashMap<String, Checkpoint>,
        first_listing: bool,
    ) -> Vec<Closed> {
        let mut closed = Vec::new();
        for info in listing {
            match self.shards.get_mut(&info.shard_id) {
                Some(shard) => {
                    // AWS closes a shard once; an emulator may move the end later (moto
                    // keeps adding records to closed shards), so any change is passed on.
                    if let Some(ending) = &info.ending_sequence_number
                        && info.ending_sequence_number != shard.info.ending_sequence_number
                    {
                        closed.push(Closed {
                            shard_id: info.shard_id.clone(),
                            ending: ending.clone(),
                        });
                        if shard.phase == Phase::CaughtUp {
                            // Caught up while it was open; records may have come before it
                            // closed, and it must be read to its end for its children.
                            shard.phase = Phase::Waiting;
                        }
                    }
                    shard.info = info;
                }
                None => {
                    let checkpoint = checkpoints.get(&info.shard_id).cloned();
                    let phase = if checkpoint.as_ref().is_some_and(|c| c.finished) {
                        Phase::Finished
                    } else {
                        Phase::Waiting
                    };
                    self.shards.insert(
                        info.shard_id.clone(),
                        KnownShard {
                            info,
                            phase,
                            checkpoint,
                            listed_first: first_listing,
                            read_in_run: false,
                        },
                    );
                }
            }
        }
        closed
    }

    /// What to do with each waiting shard whose parents are all finished, in shard order.
    /// Changes nothing: the caller carries each decision out, then [`apply`](Self::apply)s
    /// it.
    pub(super) fn ready(&self, start: StartPosition) -> Vec<Decision> {
        self.shards
            .iter()
            .filter(|(_, shard)| shard.phase == Phase::Waiting && self.parents_finished(shard))
            .map(|(id, shard)| self.decide(id, shard, start))
            .collect()
    }

    /// A child is read only when every parent is finished (closed and read to its end), as
    /// Lambda does, so the records of one partition key are archived in the order they
    /// were written, across the reshard too. A parent that ListShards no longer lists has
    /// aged out of the stream: nothing of it is left to read, so it counts as finished.
    fn parents_finished(&self, shard: &KnownShard) -> bool {
        shard.info.parents().all(|parent| {
            self.shards
                .get(parent)
                .is_none_or(|p| p.phase == Phase::Finished)
        })
    }

    /// Whether a parent of `shard` was archived: it has a checkpoint, or was read in this
    /// run.
    fn parent_archived(&self, shard: &KnownShard) -> bool {
        shard.info.parents().any(|parent| {
            self.shards
                .get(parent)
                .is_some_and(|p| p.checkpoint.is_some() || p.read_in_run)
        })
    }

    /// Where a ready shard starts. A shard with a checkpoint continues after it; one whose
    /// checkpoint has no sequence number but a `startedAt` (an earlier run opened it at
    /// LATEST and no record came) continues AT_TIMESTAMP of it. One without starts at the
    /// configured `start`, except a child of an archived parent and a shard
    /// that appeared during the run: their records came after what was archived, so they
    /// start at TRIM_HORIZON, as skipping them would leave a gap. With LATEST, a shard that
    /// is already closed can never receive a new record: it is finished without reading.
    fn decide(&self, id: &str, shard: &KnownShard, start: StartPosition) -> Decision {
        let shard_id = id.to_owned();
        if shard.read_in_run {
            // Its reader knows how far it got in this run, past the checkpoint it started
            // from.
            return Decision::Resume { shard_id };
        }
        let checkpointed = shard
            .checkpoint
            .as_ref()
            .and_then(|c| c.sequence_number.clone());
        let started_at = shard.checkpoint.as_ref().and_then(|c| c.resume_time());
        let (position, started_from) = match (checkpointed, started_at) {
            (Some(seq), _) => {
                let from = format!("after checkpoint {seq}");
                (Position::After(seq), from)
            }
            // An earlier run opened it at LATEST and stopped before any record of it was
            // archived: the records that came since are read, from (a little before) where
            // that run began.
            (None, Some(time)) => {
                let at = StartPosition::AtTimestamp(time);
                (
                    Position::Start(at),
                    format!("{at} (where an earlier run started at LATEST)"),
                )
            }
            (None, None) if self.parent_archived(shard) => (
                Position::Start(StartPosition::TrimHorizon),
                "TRIM_HORIZON (its parents were archived)".to_owned(),
            ),
            (None, None) if !shard.listed_first => (
                Position::Start(StartPosition::TrimHorizon),
                "TRIM_HORIZON (a new shard)".to_owned(),
            ),
            (None, None) => (Position::Start(start), start.to_string()),
        };
        if position == Position::Start(StartPosition::Latest) && shard.info.is_closed() {
            return Decision::FinishUnread { shard_id };
        }
        Decision::Start {
            shard_id,
            position,
            started_from,
        }
    }

    /// Records that `decision` was carried out: the shard is being read, or (finished
    /// unread) finished.
    pub(super) fn apply(&mut self, decision: &Decision) {
        let shard = self.known_mut(decision.shard_id());
        match decision {
            Decision::Start { .. } | Decision::Resume { .. } => {
                shard.phase = Phase::Reading;
                shard.read_in_run = true;
            }
            Decision::FinishUnread { .. } => shard.phase = Phase::Finished,
        }
    }

    /// Records where a shard's reader ended.
    pub(super) fn set_phase(&mut self, shard_id: &str, phase: Phase) {
        self.known_mut(shard_id).phase = phase;
    }

    fn known_mut(&mut self, shard_id: &str) -> &mut KnownShard {
        self.shards
            .get_mut(shard_id)
            .expect("decisions and readers are about listed shards")
    }

    /// The shard `shard_id`, if it was listed.
    pub(super) fn get(&self, shard_id: &str) -> Option<&KnownShard> {
        self.shards.get(shard_id)
    }

    /// Shards finished, in this run or before.
    pub(super) fn finished_count(&self) -> usize {
        self.shards
            .values()
            .filter(|s| s.phase == Phase::Finished)
            .count()
    }

    /// Every shard, by id.
    pub(super) fn into_shards(self) -> impl Iterator<Item = (String, KnownShard)> {
        self.shards.into_iter()
    }
}

/// Whether a GetRecords page ends a shard's reading: a closed shard is finished when
/// GetRecords answers with no next iterator (what AWS does at a closed shard's end), or with
/// no records while the last sequence number archived is at least the shard's
/// EndingSequenceNumber (needed for emulators that never end a closed shard's iterator).
///
/// `ending` is the shard's EndingSequenceNumber (`None` while it is open), `archived_upto`
/// its checkpoint.
pub(super) fn read_to_end(
    next_iterator: bool,
    records: usize,
    archived_upto: Option<&SequenceNumber>,
    ending: Option<&SequenceNumber>,
) -> bool {
    if !next_iterator {
        return true;
    }
    let Some(end) = ending else {
        return false;
    };
    let zero = SequenceNumber::parse("0").expect("0 is a sequence number");
    records == 0 && archived_upto.unwrap_or(&zero) >= end
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn id(n: u32) -> String {
        format!("shardId-{n:012}")
    }

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    /// Shard `n` (`shardId-00000000000n`), split or merged from `parents`, closed at
    /// `ending`. Also for the coordinator's tests.
    pub(in crate::poller) fn shard(n: u32, parents: &[u32], ending: Option<&str>) -> ShardInfo {
        ShardInfo {
            shard_id: id(n),
            parent_shard_id: parents.first().map(|p| id(*p)),
            adjacent_parent_shard_id: parents.get(1).map(|p| id(*p)),
            ending_sequence_number: ending.map(seq),
            hash_key_range: (0, u128::MAX),
        }
    }

    fn checkpoints(entries: &[(u32, Option<&str>, bool)]) -> HashMap<String, Checkpoint> {
        entries
            .iter()
            .map(|(n, s, finished)| (id(*n), Checkpoint::now(s.map(seq), *finished)))
            .collect()
    }

    fn lineage(listing: Vec<ShardInfo>, checkpoints: &HashMap<String, Checkpoint>) -> Lineage {
        let mut lineage = Lineage::default();
        assert!(lineage.merge(listing, checkpoints, true).is_empty());
        lineage
    }

    fn start(n: u32, position: Position, started_from: &str) -> Decision {
        Decision::Start {
            shard_id: id(n),
            position,
            started_from: started_from.to_owned(),
        }
    }

    fn trim_horizon() -> Position {
        Position::Start(StartPosition::TrimHorizon)
    }

    fn phase(lineage: &Lineage, n: u32) -> Phase {
        lineage.get(&id(n)).unwrap().phase
    }

    /// Carries every ready decision out and returns them.
    fn start_all(lineage: &mut Lineage, from: StartPosition) -> Vec<Decision> {
        let ready = lineage.ready(from);
        for decision in &ready {
            lineage.apply(decision);
        }
        ready
    }

    #[test]
    fn a_child_starts_only_when_every_parent_is_finished() {
        // 0 was split into 1 and 2; 1 and 2 were merged into 3.
        let mut l = lineage(
            vec![
                shard(0, &[], Some("50")),
                shard(1, &[0], Some("80")),
                shard(2, &[0], Some("90")),
                shard(3, &[1, 2], None),
            ],
            &HashMap::new(),
        );
        let from = StartPosition::TrimHorizon;
        assert_eq!(
            start_all(&mut l, from),
            [start(0, trim_horizon(), "TRIM_HORIZON")]
        );
        assert_eq!(phase(&l, 0), Phase::Reading);
        assert!(l.ready(from).is_empty(), "started once; children wait");

        l.set_phase(&id(0), Phase::Finished);
        let archived = "TRIM_HORIZON (its parents were archived)";
        assert_eq!(
            start_all(&mut l, from),
            [
                start(1, trim_horizon(), archived),
                start(2, trim_horizon(), archived)
            ]
        );
        l.set_phase(&id(1), Phase::Finished);
        assert!(l.ready(from).is_empty(), "the merged shard waits for both");
        l.set_phase(&id(2), Phase::Stopped);
        assert!(l.ready(from).is_empty(), "a stopped parent is not finished");
        l.set_phase(&id(2), Phase::CaughtUp);
        assert!(l.ready(from).is_empty(), "nor is a caught-up one");
        l.set_phase(&id(2), Phase::Finished);
        assert_eq!(l.ready(from), [start(3, trim_horizon(), archived)]);
        assert_eq!(l.finished_count(), 3);
    }

    #[test]
    fn a_parent_no_longer_listed_counts_as_finished() {
        // 0 aged out of the stream; nothing says it was archived.
        let l = lineage(
            vec![shard(1, &[0], None), shard(2, &[0, 9], None)],
            &HashMap::new(),
        );
        assert_eq!(
            l.ready(StartPosition::Latest),
            [
                start(1, Position::Start(StartPosition::Latest), "LATEST"),
                start(2, Position::Start(StartPosition::Latest), "LATEST"),
            ]
        );
    }

    #[test]
    fn a_checkpoint_decides_where_a_shard_resumes() {
        let l = lineage(
            vec![shard(0, &[], None), shard(1, &[], Some("30"))],
            &checkpoints(&[(0, Some("40"), false), (1, Some("7"), false)]),
        );
        // With LATEST too: a closed shard with a checkpoint still has records after it.
        assert_eq!(
            l.ready(StartPosition::Latest),
            [
                start(0, Position::After(seq("40")), "after checkpoint 40"),
                start(1, Position::After(seq("7")), "after checkpoint 7"),
            ]
        );
    }

    #[test]
    fn a_shard_opened_at_latest_by_an_earlier_run_resumes_at_that_time() {
        // The earlier run stopped before any record came: whatever `--from` says now, and
        // closed or not, the shard is read from (a little before) where that run began.
        let opened = Utc.timestamp_opt(1_714_564_800, 0).unwrap();
        let mut started = checkpoints(&[]);
        started.insert(id(0), Checkpoint::started(opened));
        started.insert(id(1), Checkpoint::started(opened));
        let l = lineage(
            vec![shard(0, &[], None), shard(1, &[], Some("9"))],
            &started,
        );
        let at = StartPosition::AtTimestamp(opened - chrono::Duration::seconds(5));
        let from = format!("{at} (where an earlier run started at LATEST)");
        assert_eq!(
            l.ready(StartPosition::Latest),
            [
                start(0, Position::Start(at), &from),
                start(1, Position::Start(at), &from),
            ]
        );
        // A sequence number, once archived, wins over the time.
        let mut archived = Checkpoint::started(opened);
        archived.sequence_number = Some(seq("12"));
        let l = lineage(
            vec![shard(0, &[], None)],
            &HashMap::from([(id(0), archived)]),
        );
        assert_eq!(
            l.ready(StartPosition::TrimHorizon),
            [start(0, Position::After(seq("12")), "after checkpoint 12")]
        );
    }

    #[test]
    fn a_finished_checkpoint_finishes_the_shard_and_its_children_start_at_trim_horizon() {
        let l = lineage(
            vec![shard(0, &[], Some("50")), shard(1, &[0], None)],
            &checkpoints(&[(0, Some("50"), true)]),
        );
        assert_eq!(phase(&l, 0), Phase::Finished);
        assert_eq!(l.finished_count(), 1);
        assert_eq!(
            l.ready(StartPosition::Latest),
            [start(
                1,
                trim_horizon(),
                "TRIM_HORIZON (its parents were archived)"
            )],
            "never read again; its child has no gap"
        );
    }

    #[test]
    fn shards_without_checkpoint_start_at_the_configured_position() {
        let at = StartPosition::AtTimestamp(Utc.timestamp_opt(1_714_564_800, 0).unwrap());
        // A checkpoint that names no record yet is no position.
        let with_empty_checkpoint = checkpoints(&[(0, None, false)]);
        for from in [StartPosition::TrimHorizon, StartPosition::Latest, at] {
            let l = lineage(
                vec![shard(0, &[], None), shard(1, &[], None)],
                &with_empty_checkpoint,
            );
            let expected = [0, 1].map(|n| start(n, Position::Start(from), &from.to_string()));
            assert_eq!(l.ready(from), expected, "{from}");
        }
    }

    #[test]
    fn a_shard_that_appears_during_the_run_starts_at_trim_horizon() {
        let mut l = lineage(vec![shard(0, &[], None)], &HashMap::new());
        start_all(&mut l, StartPosition::Latest);
        assert!(
            l.merge(
                vec![shard(0, &[], None), shard(6, &[], None)],
                &HashMap::new(),
                false
            )
            .is_empty()
        );
        assert_eq!(
            l.ready(StartPosition::Latest),
            [start(6, trim_horizon(), "TRIM_HORIZON (a new shard)")]
        );
    }

    #[test]
    fn a_child_of_a_parent_read_in_this_run_starts_at_trim_horizon() {
        let mut l = lineage(
            vec![shard(0, &[], None), shard(1, &[0], None)],
            &HashMap::new(),
        );
        assert_eq!(
            start_all(&mut l, StartPosition::Latest),
            [start(0, Position::Start(StartPosition::Latest), "LATEST")]
        );
        l.set_phase(&id(0), Phase::Finished);
        assert_eq!(
            l.ready(StartPosition::Latest),
            [start(
                1,
                trim_horizon(),
                "TRIM_HORIZON (its parents were archived)"
            )]
        );
    }

    #[test]
    fn with_latest_a_closed_shard_without_checkpoint_is_finished_unread() {
        let mut l = lineage(
            vec![
                shard(4, &[], Some("9")),
                shard(5, &[4], Some("12")),
                shard(6, &[5], None),
                // A checkpoint that names no record is no position ...
                shard(7, &[], Some("3")),
                shard(8, &[7], None),
            ],
            &checkpoints(&[(7, None, false)]),
        );
        let ready = l.ready(StartPosition::Latest);
        let unread = |n| Decision::FinishUnread { shard_id: id(n) };
        assert_eq!(ready, [unread(4), unread(7)]);
        ready.iter().for_each(|d| l.apply(d));
        assert_eq!(
            (phase(&l, 4), phase(&l, 7)),
            (Phase::Finished, Phase::Finished)
        );
        // Finished unread, 4 was not archived: its child has nothing to continue from and
        // starts at LATEST too. ... but a parent with a checkpoint counts as archived.
        let ready = l.ready(StartPosition::Latest);
        assert_eq!(
            ready,
            [
                unread(5),
                start(
                    8,
                    trim_horizon(),
                    "TRIM_HORIZON (its parents were archived)"
                )
            ]
        );
        ready.iter().for_each(|d| l.apply(d));
        assert_eq!(
            l.ready(StartPosition::Latest),
            [start(6, Position::Start(StartPosition::Latest), "LATEST")]
        );
        // Other start positions read closed shards.
        let l = lineage(vec![shard(4, &[], Some("9"))], &HashMap::new());
        assert_eq!(
            l.ready(StartPosition::TrimHorizon),
            [start(4, trim_horizon(), "TRIM_HORIZON")]
        );
    }

    #[test]
    fn a_caught_up_shard_that_closes_resumes_with_its_reader() {
        let mut l = lineage(vec![shard(0, &[], None)], &HashMap::new());
        start_all(&mut l, StartPosition::TrimHorizon);
        l.set_phase(&id(0), Phase::CaughtUp);
        let closed = l.merge(
            vec![shard(0, &[], Some("20")), shard(1, &[0], None)],
            &HashMap::new(),
            false,
        );
        assert_eq!(
            closed,
            [Closed {
                shard_id: id(0),
                ending: seq("20")
            }]
        );
        assert_eq!(phase(&l, 0), Phase::Waiting);
        assert_eq!(
            l.ready(StartPosition::TrimHorizon),
            [Decision::Resume { shard_id: id(0) }],
            "the parent again, not yet its child"
        );
    }

    #[test]
    fn closing_is_reported_once_per_end_and_only_a_caught_up_shard_waits_again() {
        let mut l = lineage(
            vec![
                shard(0, &[], None),
                shard(1, &[], None),
                shard(2, &[], None),
            ],
            &HashMap::new(),
        );
        start_all(&mut l, StartPosition::TrimHorizon);
        l.set_phase(&id(1), Phase::Stopped);
        let listing = |end: &str| {
            vec![
                shard(0, &[], Some(end)),
                shard(1, &[], Some(end)),
                shard(2, &[], None),
            ]
        };
        let closed = l.merge(listing("20"), &HashMap::new(), false);
        assert_eq!(
            closed
                .iter()
                .map(|c| c.shard_id.as_str())
                .collect::<Vec<_>>(),
            [id(0), id(1)]
        );
        assert_eq!(phase(&l, 0), Phase::Reading, "its reader is told instead");
        assert_eq!(
            phase(&l, 1),
            Phase::Stopped,
            "a stopped shard stays stopped"
        );
        assert!(l.ready(StartPosition::TrimHorizon).is_empty());
        assert!(
            l.merge(listing("20"), &HashMap::new(), false).is_empty(),
            "the same end is no news"
        );
        // moto moves a closed shard's end when it adds records to it.
        let moved = l.merge(listing("25"), &HashMap::new(), false);
        assert_eq!(moved[0].ending, seq("25"));
        assert_eq!(
            l.get(&id(0)).unwrap().info.ending_sequence_number,
            Some(seq("25"))
        );
    }

    #[test]
    fn a_shard_is_read_to_its_end_without_next_iterator_or_at_its_ending_sequence_number() {
        let (ending, below, at, above) = (seq("20"), seq("19"), seq("20"), seq("21"));
        assert!(
            read_to_end(false, 3, None, None),
            "AWS ends a closed shard's iterator"
        );
        assert!(read_to_end(false, 0, Some(&below), Some(&ending)));
        assert!(read_to_end(true, 0, Some(&at), Some(&ending)));
        assert!(read_to_end(true, 0, Some(&above), Some(&ending)));
        assert!(
            !read_to_end(true, 1, Some(&at), Some(&ending)),
            "a page with records"
        );
        assert!(
            !read_to_end(true, 0, Some(&below), Some(&ending)),
            "records before its end"
        );
        assert!(
            !read_to_end(true, 0, None, Some(&ending)),
            "nothing archived yet"
        );
        assert!(read_to_end(true, 0, None, Some(&seq("0"))));
        assert!(!read_to_end(true, 0, Some(&above), None), "an open shard");
    }
}
