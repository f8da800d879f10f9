//! `bootstrap`: the kinarch archiver as a Lambda function on `provided.al2023`.
//!
//! Attach it to any number of Kinesis streams with an event source mapping that has
//! `ReportBatchItemFailures`; each stream's tags say how it is archived. Invoked with
//! `{"kinarch": "compact", "streams": [...]}` (the template's `CompactionSchedule`), it
//! compacts those streams' Parquet archives instead.

#![deny(unsafe_code)]

mod allocator;
mod events;
mod handler;
mod metrics;

use kinarch_core::domain::event::FunctionEvent;
use lambda_runtime::{LambdaEvent, service_fn};

// One thread: Lambda gives a process one invocation at a time, and the requests of a batch
// are concurrent without worker threads. A worker pool only added memory (with glibc, an
// arena per thread: the warm high-water mark grew from 37 to ~50 MiB, see BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON lines when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT), level from
    // AWS_LAMBDA_LOG_LEVEL or RUST_LOG, INFO by default.
    lambda_runtime::tracing::init_default_subscriber();
    let archiver = handler::Archiver::from_env().await?;
    let archiver = &archiver;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FunctionEvent>| async move { archiver.dispatch(event).await },
    ))
    .await
}
