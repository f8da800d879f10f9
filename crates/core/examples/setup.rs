//! Sets a stream up for ALL archiving with a 30-day TTL, printing the plan first; with
//! `--dry-run` it stops there.
//!
//! ```text
//! cargo run -p kinarch-core --example setup -- orders [--dry-run]
//! ```

use kinarch_core::aws::{AwsOptions, load_sdk_config};
use kinarch_core::setup::{Setup, SetupRequest, StepStatus, TtlChange};
use kinarch_core::{ArchiveMode, ArchiveTtl, Error, StreamName};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(stream) = args.first() else {
        eprintln!("usage: setup STREAM [--dry-run]");
        std::process::exit(2);
    };
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let sdk = load_sdk_config(&AwsOptions::default()).await;
    let setup = Setup::new(&sdk);
    let mut request = SetupRequest::new(StreamName::new(stream)?, ArchiveMode::All);
    request.ttl = TtlChange::Expire(ArchiveTtl::from_seconds(30 * 24 * 3600)?);

    let plan = setup.plan(&request).await?;
    for step in &plan.steps {
        match &step.status {
            StepStatus::Unchanged(why) => println!("unchanged: {why}"),
            _ => println!("to do:     {}", step.action),
        }
    }
    if dry_run || !plan.has_changes() {
        return Ok(());
    }
    let report = setup.apply(&plan).await?;
    println!(
        "done: stream {} archives into {}",
        report.config.stream, report.config.table
    );
    Ok(())
}
