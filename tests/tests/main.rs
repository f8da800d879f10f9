//! Every end-to-end test in one binary, so that the AWS SDK and the harness are linked once
//! instead of once per file (as ripgrep does: `autotests = false` and one `[[test]]`).
//!
//! Each module is a former test binary. Tests run in parallel across modules; each starts
//! its own moto server and processes, and none sets process-wide state (environment
//! variables, signal handlers), so they need no binary of their own.
//! `cargo test -p kinarch-tests --test e2e cli_read::` runs one module.

mod cli_archive;
mod cli_output;
mod cli_read;
mod cli_reinject;
mod cli_setup;
mod cold;
mod compaction;
mod cross_account;
mod demo;
mod export;
mod faults;
mod filters;
mod function_target;
mod interrupt;
mod kpl;
mod lambda;
mod overflow;
mod parquet_archive;
mod parquet_peers;
mod reinject;
mod replays;
mod shard_load;
mod template;
mod tier;
mod time_index;
mod verify;
mod windows;
