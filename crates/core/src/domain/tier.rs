//! The pure decisions of `kinarch tier` (moving a table's old items into the Parquet
//! archive): what a file's rows are checked against before any item is deleted, which
//! records a rerun finds already archived, and what the move saves at list prices. The I/O
//! is [`crate::tier`].

use std::collections::HashMap;

use md5::{Digest, Md5};

use crate::domain::record::{ArchiveRecord, Payload};
use crate::domain::sequence::SequenceNumber;

/// Records held in memory before they are written as files (`kinarch tier` reads a table
/// faster than it can group it by shard and hour): their payload bytes together. A shard-hour
/// larger than this is written as several files, whose sequence ranges then overlap (which
/// readers handle: one row per record).
pub const BUFFER_BYTES: usize = 128 << 20;

/// What identifies a row's content: MD5 of its partition key, sequence number,
/// sub-sequence number and payload (the bytes, or an oversize row's size), each
/// length-prefixed so that no two different rows feed the same bytes. Not a security
/// measure: it tells a file that was cut short, corrupted or rewritten from the one written.
pub type RowDigest = [u8; 16];

/// The digest of one row (see [`RowDigest`]).
pub fn row_digest(record: &ArchiveRecord) -> RowDigest {
    let mut md5 = Md5::new();
    let mut field = |bytes: &[u8]| {
        md5.update((bytes.len() as u64).to_be_bytes());
        md5.update(bytes);
    };
    field(record.partition_key.as_bytes());
    field(record.sequence_number.as_str().as_bytes());
    match record.sub_sequence_number {
        Some(sub) => field(&sub.to_be_bytes()),
        None => field(b""),
    }
    match record.payload() {
        Payload::Bytes(bytes) => {
            field(b"data");
            field(bytes);
        }
        Payload::Oversize(size) => {
            field(b"oversize");
            field(&size.to_be_bytes());
        }
        Payload::Stored(stored) => {
            // Never written (the payload is fetched first); kept apart from the others.
            field(b"stored");
            field(stored.location.to_string().as_bytes());
        }
    }
    md5.finalize().into()
}

/// The rows of a file, as its check sees them: how many and one digest over all of them in
/// order. Written records and the file read back must give the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    /// Rows.
    pub rows: u64,
    /// MD5 over the rows' [`RowDigest`]s, in order.
    pub digest: RowDigest,
}

impl FileDigest {
    /// The digest of `records`, in the order given.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ArchiveRecord>) -> Self {
        let mut md5 = Md5::new();
        let mut rows = 0;
        for record in records {
            md5.update(row_digest(record));
            rows += 1;
        }
        Self {
            rows,
            digest: md5.finalize().into(),
        }
    }
}

/// A record's place in its shard: sequence number and sub-sequence number.
pub type RowKey = (SequenceNumber, Option<u64>);

/// What the files already in the archive say of the records of a group.
#[derive(Debug, Default, PartialEq)]
pub struct Presence<'a> {
    /// Not in any file yet: to write.
    pub to_write: Vec<&'a ArchiveRecord>,
    /// In a file already, with the same content (a rerun after an interrupted tier, or a
    /// record the Lambda function also wrote): its item may be deleted without writing it
    /// again.
    pub archived: Vec<&'a ArchiveRecord>,
    /// In a file already with other content: neither written again (readers would keep
    /// either row) nor deleted; reported.
    pub conflicting: Vec<&'a ArchiveRecord>,
}

/// Splits a group of records (one shard) by what the `existing` rows of that shard (their
/// keys and digests, read from the files already there) hold.
pub fn presence<'a>(
    group: &[&'a ArchiveRecord],
    existing: &HashMap<RowKey, RowDigest>,
) -> Presence<'a> {
    let mut split = Presence::default();
    for &record in group {
        let key = (record.sequence_number.clone(), record.sub_sequence_number);
        match existing.get(&key) {
            None => split.to_write.push(record),
            Some(digest) if *digest == row_digest(record) => split.archived.push(record),
            Some(_) => split.conflicting.push(record),
        }
    }
    split
}

/// Storage prices per GB-month at us-east-1 list prices (December 2026), the ones the
/// README quotes.
pub mod prices {
    /// DynamoDB Standard table storage.
    pub const DYNAMODB_STANDARD: f64 = 0.25;
    /// S3 Standard.
    pub const S3_STANDARD: f64 = 0.023;
    /// S3 Glacier Instant Retrieval (`setup --parquet-cold-after`).
    pub const S3_GLACIER_IR: f64 = 0.004;
}

/// Bytes a GB is billed as.
const GB: f64 = (1u64 << 30) as f64;

/// DynamoDB's storage overhead per item, billed on top of its attributes.
pub const ITEM_OVERHEAD_BYTES: u64 = 100;

/// What storing the tiered records costs per month, at list prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonthlyStorage {
    /// In the table (items and their per-item overhead).
    pub table: f64,
    /// In S3 Standard, as Parquet (at most: the payload bytes uncompressed).
    pub s3_standard: f64,
    /// In S3 Glacier Instant Retrieval.
    pub glacier_instant_retrieval: f64,
}

impl MonthlyStorage {
    /// The cost of `table_bytes` in the table and of `parquet_bytes` in S3.
    pub fn of(table_bytes: u64, parquet_bytes: u64) -> Self {
        let gb = |bytes: u64| bytes as f64 / GB;
        Self {
            table: gb(table_bytes) * prices::DYNAMODB_STANDARD,
            s3_standard: gb(parquet_bytes) * prices::S3_STANDARD,
            glacier_instant_retrieval: gb(parquet_bytes) * prices::S3_GLACIER_IR,
        }
    }

    /// What moving them out of the table saves each month, kept in S3 Standard.
    pub fn saving(&self) -> f64 {
        self.table - self.s3_standard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, sequence: &str, sub: Option<u64>, data: &[u8]) -> ArchiveRecord {
        let mut r = ArchiveRecord::received(
            key.into(),
            SequenceNumber::parse(sequence).unwrap(),
            "shardId-000000000000".into(),
            1.0,
            data.to_vec(),
        );
        r.sub_sequence_number = sub;
        r
    }

    #[test]
    fn row_digests_differ_in_each_field_and_not_in_the_rest() {
        let base = record("k", "12", None, b"ab");
        let same = {
            let mut r = base.clone();
            r.last_update = Some("2026-05-01 10:00:00".into());
            r.approximate_arrival_timestamp = 99.0;
            r
        };
        assert_eq!(
            row_digest(&base),
            row_digest(&same),
            "times are not content"
        );
        let others = [
            record("k1", "2", None, b"ab"),
            record("k", "1", None, b"2ab"),
            record("k", "12", Some(0), b"ab"),
            record("k", "12", None, b"ab "),
            record("k", "12", None, b""),
            {
                let mut r = record("k", "12", None, b"");
                r.oversize_bytes = Some(2);
                r
            },
        ];
        for other in &others {
            assert_ne!(row_digest(&base), row_digest(other), "{other:?}");
        }
    }

    #[test]
    fn a_file_digest_counts_rows_and_sees_order_and_content() {
        let a = record("k", "1", None, b"a");
        let b = record("k", "2", None, b"b");
        let ab = FileDigest::of([&a, &b]);
        assert_eq!(ab.rows, 2);
        assert_eq!(ab, FileDigest::of([&a.clone(), &b.clone()]));
        assert_ne!(ab, FileDigest::of([&b, &a]));
        assert_ne!(ab, FileDigest::of([&a]));
        assert_ne!(ab, FileDigest::of([&a, &record("k", "2", None, b"B")]));
    }

    #[test]
    fn presence_splits_new_archived_and_conflicting_rows() {
        let new = record("k", "1", None, b"new");
        let same = record("k", "2", Some(0), b"same");
        let changed = record("k", "3", None, b"mine");
        let existing: HashMap<RowKey, RowDigest> = [
            ((same.sequence_number.clone(), Some(0)), row_digest(&same)),
            (
                (changed.sequence_number.clone(), None),
                row_digest(&record("k", "3", None, b"theirs")),
            ),
            // Same sequence, other sub-sequence: another record.
            ((new.sequence_number.clone(), Some(0)), row_digest(&new)),
        ]
        .into_iter()
        .collect();
        let split = presence(&[&new, &same, &changed], &existing);
        assert_eq!(split.to_write, vec![&new]);
        assert_eq!(split.archived, vec![&same]);
        assert_eq!(split.conflicting, vec![&changed]);
    }

    #[test]
    fn monthly_storage_at_list_prices() {
        let cost = MonthlyStorage::of(100 << 30, 10 << 30);
        assert!((cost.table - 25.0).abs() < 1e-9);
        assert!((cost.s3_standard - 0.23).abs() < 1e-9);
        assert!((cost.glacier_instant_retrieval - 0.04).abs() < 1e-9);
        assert!((cost.saving() - 24.77).abs() < 1e-9);
    }
}
