//! Prints the archived records of one partition key, optionally from a sequence number on.
//!
//! ```text
//! cargo run -p kinarch-core --example query -- orders customer-42 [FROM_SEQUENCE_NUMBER]
//! ```
//! AWS access as usual: AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, the config files.

use futures::TryStreamExt;
use kinarch_core::aws::{AwsOptions, load_sdk_config};
use kinarch_core::read::{ArchiveReader, ReadOptions};
use kinarch_core::{Error, Selection, SelectionSpec, SequenceNumber, StreamName};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (stream, key) = match args.as_slice() {
        [stream, key, ..] => (stream, key),
        _ => {
            eprintln!("usage: query STREAM PARTITION_KEY [FROM_SEQUENCE_NUMBER]");
            std::process::exit(2);
        }
    };
    let sdk = load_sdk_config(&AwsOptions::default()).await;
    let archive = ArchiveReader::open(&sdk, StreamName::new(stream)?).await?;
    let selection = Selection::new(SelectionSpec {
        partition_key: Some(key.clone()),
        from_sequence: args.get(2).map(|s| SequenceNumber::parse(s)).transpose()?,
        limit: Some(100),
        ..SelectionSpec::default()
    })?;
    // The stream is lazy: each page is read when the previous one has been consumed.
    let mut records = archive.read(&selection, ReadOptions::default());
    while let Some(record) = records.try_next().await? {
        println!(
            "{} {} ({} bytes): {}",
            record.sequence_number,
            record.last_update.as_deref().unwrap_or("-"),
            record.data.len(),
            String::from_utf8_lossy(&record.data)
        );
    }
    Ok(())
}
