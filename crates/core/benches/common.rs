//! Synthetic records shared by the benches: record `i` of a batch spread over `keys` keys,
//! with a 56-digit sequence number and a 100-byte JSON payload, made by
//! `kinarch_tests::synthetic` (the bench driver's records too).

use kinarch_core::ArchiveRecord;
use kinarch_tests::synthetic;

/// Payload bytes of every record.
pub const PAYLOAD_BYTES: usize = 100;

// Not every bench uses every helper.
#[allow(dead_code)]
/// Record `i` of a batch spread over `keys` keys.
pub fn record(i: usize, keys: usize) -> ArchiveRecord {
    synthetic::record(i, keys, PAYLOAD_BYTES)
}

// Not every bench uses every helper.
#[allow(dead_code)]
/// Records `0..n` spread over `keys` keys.
pub fn records(n: usize, keys: usize) -> Vec<ArchiveRecord> {
    synthetic::records(n, keys, PAYLOAD_BYTES)
}
