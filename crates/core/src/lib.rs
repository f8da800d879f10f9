//! kinarch: archive Amazon Kinesis Data Streams into DynamoDB, look records up, replay them.
//!
//! This crate holds the domain (modes, sequence numbers, the table contract) and every AWS
//! call kinarch makes; the Lambda function and the `kinarch` CLI are thin layers on top.
//!
//! The modules are layers (see `ARCHITECTURE.md` at the repository root for the map):
//! - [`domain`]: pure types and decisions, no I/O;
//! - [`aws`]: the SDK configuration and every AWS call, grouped by resource;
//! - one module per use case on top of both: [`write`](mod@write) (archive a batch), [`read`] (query
//!   and scan an archive), [`replay`] (reinject and put), [`setup`] (tags and tables), and
//!   [`poller`] (read a stream's shards itself: `kinarch archive`), [`compact`] (the
//!   Parquet archive's small files rewritten into one per shard-hour);
//! - [`parquet`]: the Parquet codec of the archive in S3 (encode a batch, read a file), pure
//!   of AWS calls.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod compact;
pub mod domain;
pub mod error;
pub mod export;
pub mod parquet;
pub mod poller;
pub mod read;
pub mod replay;
pub mod setup;
pub mod tier;
pub mod write;

pub use domain::config::{ArchiveMode, ArchiveTtl, StreamArchiveConfig};
pub use domain::names::{StreamAddress, StreamName, StreamRef, TableName};
pub use domain::record::ArchiveRecord;
pub use domain::selection::{Selection, SelectionSpec};
pub use domain::sequence::SequenceNumber;
pub use error::{Error, Result};
pub use poller::{PollerOptions, StreamPoller};
pub use read::{ArchiveReader, ReadOptions};
pub use write::{ArchiveWriter, WriteCounts, WriteOutcome, WriterOptions};
