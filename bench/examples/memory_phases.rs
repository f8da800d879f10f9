//! Where the Lambda function's memory goes for one batch: heap in use and its peak after
//! each phase of what `bootstrap` does with an event, measured by a counting allocator.
//!
//! ```text
//! target/release/null-endpoint &                  # prints http://127.0.0.1:PORT
//! cargo run -p kinarch-bench --example memory_phases -- http://127.0.0.1:PORT [RECORDS]
//! ```
//!
//! Run the endpoint as its own process so that its allocations are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kinarch_bench::data;
use kinarch_core::domain::event::decode_event;
use kinarch_core::{ArchiveMode, ArchiveWriter, StreamArchiveConfig, StreamName, WriterOptions};

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

fn phase(name: &str) {
    println!(
        "{name:<48} heap in use {:>6.1} MiB, peak so far {:>6.1} MiB",
        mib(IN_USE.load(Ordering::Relaxed)),
        mib(PEAK.load(Ordering::Relaxed))
    );
    PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .expect("usage: memory_phases ENDPOINT [RECORDS]");
    let records: usize = args.next().map_or(10_000, |n| n.parse().expect("a number"));
    let sdk = kinarch_bench::sdk_config(&endpoint).await;
    let writer = ArchiveWriter::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        WriterOptions::default(),
    );
    let config =
        StreamArchiveConfig::new(StreamName::new("bench").unwrap(), ArchiveMode::All, None);
    phase("start (SDK client built)");
    let body = data::event("bench", records, records, data::PAYLOAD_BYTES)
        .to_string()
        .into_bytes();
    phase(&format!("event body ({:.1} MiB of JSON)", mib(body.len())));
    // What lambda_runtime does with the body for a handler taking serde_json::Value.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    drop(body);
    phase("event parsed into serde_json::Value, body freed");
    let batch = decode_event(&value).unwrap();
    phase("decode_event: Vec<ArchiveRecord>");
    drop(value);
    phase("Value dropped (as the handler does)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let outcome = writer
        .write(&config, &batch.records, deadline)
        .await
        .unwrap();
    phase(&format!(
        "ArchiveWriter::write ({} written)",
        outcome.counts.written
    ));
}
