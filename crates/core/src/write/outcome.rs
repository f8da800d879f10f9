//! What happened to a batch.

use crate::domain::sequence::SequenceNumber;

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Kinesis records handed in (a KPL container counts once).
    pub records: usize,
    /// KPL containers among them that were de-aggregated (see [`crate::domain::kpl`]).
    pub containers: usize,
    /// User records found in those containers. The other counts ([`Self::written`],
    /// [`Self::skipped_older`], ...) count user records and plain records alike.
    pub user_records: usize,
    /// Items written (ALL: distinct records; LATEST: keys whose newest record was stored).
    pub written: usize,
    /// LATEST: records not written because a newer record of the same key was in the batch
    /// or already in the table. ALL: records delivered twice in the batch.
    pub skipped_older: usize,
    /// Records not written because kinarch replayed them with `--metadata` into the stream
    /// they were archived from: the archive holds them already (see the module
    /// documentation).
    pub skipped_replay: usize,
    /// Items written without their payload because it was too large (see README).
    pub oversize: usize,
    /// Payloads too large for an item that were stored in the stream's overflow bucket.
    pub overflowed: usize,
    /// Records whose write did not land.
    pub failed: usize,
    /// The lowest sequence number that must be delivered again, if any failed.
    pub lowest_failed: Option<SequenceNumber>,
    /// The first error met, for the log.
    pub first_error: Option<String>,
}
