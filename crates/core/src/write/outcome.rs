//! What happened to a batch ([`WriteOutcome`]), and the counts every report of archiving is
//! made of ([`WriteCounts`]).

use crate::domain::plan::failures;
use crate::domain::record::ArchiveRecord;
use crate::domain::sequence::SequenceNumber;
use crate::error::Error;

/// What became of the records of one batch, or of many added up ([`Self::add`]): the
/// Lambda function's summary line and metrics and `kinarch archive`'s summary are made of
/// these. Records are counted after KPL de-aggregation: user records of containers and
/// plain records alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Records archived: items written (ALL: distinct records; LATEST: keys whose newest
    /// record was stored), or in mode NONE, rows written to Parquet files.
    pub written: u64,
    /// LATEST: records not written because a newer record of the same key was in the batch
    /// or already in the table. ALL: records delivered twice in the batch.
    pub skipped_older: u64,
    /// Records not written because kinarch replayed them with `--metadata` into the stream
    /// they were archived from: the archive holds them already (see the
    /// [module documentation](super)).
    pub skipped_replay: u64,
    /// KPL containers that were de-aggregated (see [`crate::domain::kpl`]).
    pub containers: u64,
    /// User records found in those containers.
    pub user_records: u64,
    /// Items written without their payload because it was too large (see README).
    pub oversize: u64,
    /// Payloads too large for an item that were stored in the stream's overflow bucket.
    pub overflowed: u64,
    /// Records whose write did not land.
    pub failed: u64,
    /// Parquet files written (streams with a Parquet archive, tag `ArchiveParquet`).
    pub parquet_files: u64,
    /// Their size in bytes, together.
    pub parquet_bytes: u64,
}

impl WriteCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &WriteCounts) {
        let WriteCounts {
            written,
            skipped_older,
            skipped_replay,
            containers,
            user_records,
            oversize,
            overflowed,
            failed,
            parquet_files,
            parquet_bytes,
        } = other;
        self.written += written;
        self.skipped_older += skipped_older;
        self.skipped_replay += skipped_replay;
        self.containers += containers;
        self.user_records += user_records;
        self.oversize += oversize;
        self.overflowed += overflowed;
        self.failed += failed;
        self.parquet_files += parquet_files;
        self.parquet_bytes += parquet_bytes;
    }
}

/// What happened to a batch.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Kinesis records handed in (a KPL container counts once).
    pub records: usize,
    /// What became of them.
    pub counts: WriteCounts,
    /// The lowest sequence number that must be delivered again, if any failed.
    pub lowest_failed: Option<SequenceNumber>,
    /// The first error met: why records failed, with its kind and the failed call as its
    /// [`source`](std::error::Error::source) when there is one.
    pub first_error: Option<Error>,
}

impl WriteOutcome {
    /// Counts the records `failed` says did not land ([`WriteCounts::failed`]), and keeps
    /// the lowest of them ([`Self::lowest_failed`]).
    pub(super) fn set_failed(
        &mut self,
        records: &[&ArchiveRecord],
        failed: impl Fn(usize, &ArchiveRecord) -> bool,
    ) {
        let (count, lowest) = failures(records, failed);
        self.counts.failed = count as u64;
        self.lowest_failed = lowest.cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_field_by_field() {
        let one = WriteCounts {
            written: 1,
            skipped_older: 2,
            skipped_replay: 3,
            containers: 4,
            user_records: 5,
            oversize: 6,
            overflowed: 7,
            failed: 8,
            parquet_files: 9,
            parquet_bytes: 10,
        };
        let mut total = WriteCounts::default();
        total.add(&one);
        total.add(&one);
        assert_eq!(
            total,
            WriteCounts {
                written: 2,
                skipped_older: 4,
                skipped_replay: 6,
                containers: 8,
                user_records: 10,
                oversize: 12,
                overflowed: 14,
                failed: 16,
                parquet_files: 18,
                parquet_bytes: 20,
            }
        );
    }
}
