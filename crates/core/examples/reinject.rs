//! Replays the archived records of one partition key into another stream, framed with the
//! original metadata.
//!
//! ```text
//! cargo run -p kinarch-core --example reinject -- orders customer-42 orders-replay
//! ```
//! AWS access as usual: AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, the config files.

use kinarch_core::aws::{AwsOptions, load_sdk_config};
use kinarch_core::read::{ArchiveReader, ReadOptions};
use kinarch_core::replay::reinject::{Framing, ReinjectOptions, reinject};
use kinarch_core::{Error, Selection, StreamName};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, key, target] = args.as_slice() else {
        eprintln!("usage: reinject SOURCE_STREAM PARTITION_KEY TARGET_STREAM");
        std::process::exit(2);
    };
    let sdk = load_sdk_config(&AwsOptions::default()).await;
    let source = StreamName::new(source)?;
    let archive = ArchiveReader::open(&sdk, source.clone()).await?;
    let mut options = ReinjectOptions::new(source, StreamName::new(target)?);
    options.framing = Framing::Metadata { separator: b'|' };
    let records = archive.read(&Selection::key(key.as_str())?, ReadOptions::default());
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let report = reinject(&kinesis, records, &options, |p| {
        eprint!("\rsent {} of {} read", p.sent, p.read);
    })
    .await?;
    eprintln!();
    println!(
        "read {}, sent {}, retried {}, failed {} in {:.1} s",
        report.read,
        report.sent,
        report.retried,
        report.failed.len(),
        report.elapsed.as_secs_f64()
    );
    for failed in &report.failed {
        println!(
            "not sent: {} {}: {}",
            failed.partition_key, failed.sequence_number, failed.reason
        );
    }
    Ok(())
}
