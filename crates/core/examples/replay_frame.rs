//! Reads framed records (as `kinarch reinject --metadata` sends them) from standard input,
//! one per line, and prints their original metadata and payload: what a consumer of a
//! replayed stream does with `ReplayFrame::parse`.
//!
//! ```text
//! printf '|{"originalApproximateArrivalTimestamp":1700000000.5,"originalShardId":"shardId-000000000000","originalSequenceNumber":"42"}|hello\n' \
//!   | cargo run -p kinarch-core --example replay_frame
//! ```

use std::io::BufRead;

use kinarch_core::domain::frame::{DEFAULT_SEPARATOR, ReplayFrame};

fn main() -> std::io::Result<()> {
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        let frame = ReplayFrame::parse(&line, DEFAULT_SEPARATOR);
        match frame.metadata {
            Some(m) => println!(
                "replayed: sequence {} of {} (arrived {}){}: {}",
                m.original_sequence_number,
                m.original_shard_id,
                m.original_approximate_arrival_timestamp,
                m.original_stream_name
                    .map(|s| format!(" from stream {s}"))
                    .unwrap_or_default(),
                String::from_utf8_lossy(frame.payload)
            ),
            None => println!("not framed: {}", String::from_utf8_lossy(frame.payload)),
        }
    }
    Ok(())
}
