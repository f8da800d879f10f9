//! Counts the records archived since a given time, with a parallel scan, and shows how to
//! handle items that do not follow the table contract (reported, then skipped).
//!
//! ```text
//! cargo run -p kinarch-core --example scan -- orders 2024-05-01T00:00:00Z [SEGMENTS]
//! ```

use futures::StreamExt;
use kinarch_core::aws::{AwsOptions, load_sdk_config};
use kinarch_core::domain::timefmt::parse_time;
use kinarch_core::read::{ArchiveReader, ReadOptions, TimeWindow};
use kinarch_core::{Error, Selection, SelectionSpec, StreamName};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (stream, since) = match args.as_slice() {
        [stream, since, ..] => (stream, since),
        _ => {
            eprintln!("usage: scan STREAM SINCE(RFC 3339 or epoch seconds) [SEGMENTS]");
            std::process::exit(2);
        }
    };
    let segments = match args.get(2) {
        Some(n) => n
            .parse()
            .map_err(|_| Error::InvalidInput(format!("SEGMENTS {n:?} is not a number")))?,
        None => 4,
    };
    let sdk = load_sdk_config(&AwsOptions::default()).await;
    let archive = ArchiveReader::open(&sdk, StreamName::new(stream)?).await?;
    let selection = Selection::new(SelectionSpec {
        archived: TimeWindow::new(Some(parse_time(since)?), None),
        segments: Some(segments),
        ..SelectionSpec::default()
    })?;
    let (mut records, mut bytes, mut skipped) = (0u64, 0u64, 0u64);
    let mut stream = archive.read(&selection, ReadOptions::default());
    while let Some(result) = stream.next().await {
        match result {
            Ok(record) => {
                records += 1;
                bytes += record.data.len() as u64;
            }
            // One bad item: the stream goes on.
            Err(Error::Item(bad)) => {
                skipped += 1;
                eprintln!("skipped: {bad}");
            }
            // Anything else ends the stream.
            Err(other) => return Err(other),
        }
    }
    println!("{records} records, {bytes} bytes, {skipped} unreadable items");
    Ok(())
}
