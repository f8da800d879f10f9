//! Synthetic records shared by the benches: record `i` of a batch spread over `keys` keys,
//! with a 56-digit sequence number and a 100-byte JSON payload.

use kinarch_core::{ArchiveRecord, SequenceNumber};

pub const PAYLOAD_BYTES: usize = 100;

pub fn record(i: usize, keys: usize) -> ArchiveRecord {
    let mut data = format!("{{\"n\":{i},\"pad\":\"").into_bytes();
    data.resize(PAYLOAD_BYTES - 2, b'x');
    data.extend_from_slice(b"\"}");
    ArchiveRecord {
        partition_key: format!("key-{}", i % keys),
        sequence_number: SequenceNumber::parse(&format!(
            "4959033827149025660855969253836157109592157598{i:010}"
        ))
        .expect("digits"),
        shard_id: "shardId-000000000000".into(),
        approximate_arrival_timestamp: 1_764_100_000.0 + i as f64 * 0.001,
        data,
        last_update: None,
        expire_after: None,
        oversize_bytes: None,
    }
}

// Not every bench uses every helper.
#[allow(dead_code)]
pub fn records(n: usize, keys: usize) -> Vec<ArchiveRecord> {
    (0..n).map(|i| record(i, keys)).collect()
}
