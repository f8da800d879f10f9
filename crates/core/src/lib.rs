//! kinarch: archive Amazon Kinesis Data Streams into DynamoDB, look records up, replay them.
//!
//! This crate holds the domain (modes, sequence numbers, the table contract) and every AWS
//! call kinarch makes; the Lambda function and the `kinarch` CLI are thin layers on top.

#![warn(missing_docs)]

pub mod archive;
pub mod aws;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod event;
pub mod frame;
pub mod local;
pub mod names;
pub mod plan;
pub mod put;
pub mod record;
pub mod reinject;
mod retry;
pub mod sequence;
pub mod setup;
pub mod streams;
pub mod tables;
pub mod timefmt;
pub mod writer;

pub use archive::{Archive, QueryOptions, ScanOptions, Selection};
pub use config::{ArchiveMode, ArchiveTtl, StreamArchiveConfig};
pub use error::{Error, Result};
pub use names::{StreamName, StreamRef, TableName};
pub use record::ArchiveRecord;
pub use sequence::SequenceNumber;
pub use writer::{ArchiveWriter, WriteOutcome, WriterOptions};
