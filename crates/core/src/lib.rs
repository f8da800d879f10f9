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
//!   [`poller`] (read a stream's shards itself: `kinarch archive`).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod domain;
pub mod error;
pub mod export;
pub mod poller;
pub mod read;
pub mod replay;
pub mod setup;
pub mod write;

pub use domain::config::{ArchiveMode, ArchiveTtl, StreamArchiveConfig};
pub use domain::names::{StreamName, StreamRef, TableName};
pub use domain::record::ArchiveRecord;
pub use domain::sequence::SequenceNumber;
pub use error::{Error, Result};
pub use poller::{PollerOptions, StreamPoller};
pub use read::{ArchiveReader, QueryOptions, ScanOptions, Selection};
pub use write::{ArchiveWriter, WriteCounts, WriteOutcome, WriterOptions};

/// Renamed [`ArchiveReader`].
#[deprecated(since = "0.2.0", note = "renamed ArchiveReader")]
pub type Archive = ArchiveReader;

// The module paths of 0.1, kept for one release.
macro_rules! moved_module {
    ($($old:ident => $new:path, $note:literal;)*) => {$(
        #[doc = concat!("Moved to [`", stringify!($new), "`].")]
        #[deprecated(since = "0.2.0", note = $note)]
        pub mod $old {
            pub use $new::*;
        }
    )*};
}
moved_module! {
    names => crate::domain::names, "moved to kinarch_core::domain::names";
    sequence => crate::domain::sequence, "moved to kinarch_core::domain::sequence";
    config => crate::domain::config, "moved to kinarch_core::domain::config";
    event => crate::domain::event, "moved to kinarch_core::domain::event";
    frame => crate::domain::frame, "moved to kinarch_core::domain::frame";
    timefmt => crate::domain::timefmt, "moved to kinarch_core::domain::timefmt";
    plan => crate::domain::plan, "moved to kinarch_core::domain::plan";
    streams => crate::aws::streams, "moved to kinarch_core::aws::streams";
    tables => crate::aws::tables, "moved to kinarch_core::aws::tables";
    checkpoint => crate::poller::checkpoint, "moved to kinarch_core::poller::checkpoint";
    writer => crate::write, "moved to kinarch_core::write";
    reinject => crate::replay::reinject, "moved to kinarch_core::replay::reinject";
    put => crate::replay::put, "moved to kinarch_core::replay::put";
}

/// Moved to [`read`]; `Archive` is now [`ArchiveReader`].
#[deprecated(since = "0.2.0", note = "moved to kinarch_core::read")]
pub mod archive {
    #[allow(deprecated)]
    pub use crate::Archive;
    pub use crate::read::*;
}

/// Moved to [`poller`]; `LocalArchiver` is now [`StreamPoller`].
#[deprecated(since = "0.2.0", note = "moved to kinarch_core::poller")]
pub mod local {
    pub use crate::poller::*;
    /// Renamed [`StreamPoller`].
    #[deprecated(since = "0.2.0", note = "renamed kinarch_core::StreamPoller")]
    pub type LocalArchiver = crate::poller::StreamPoller;
    /// Renamed [`PollerOptions`].
    #[deprecated(since = "0.2.0", note = "renamed kinarch_core::PollerOptions")]
    pub type LocalArchiveOptions = crate::poller::PollerOptions;
}

/// Moved: [`ArchiveRecord`] to [`domain::record`], the item codec to [`aws::item`].
#[deprecated(
    since = "0.2.0",
    note = "moved to kinarch_core::domain::record and kinarch_core::aws::item"
)]
pub mod record {
    pub use crate::aws::item::*;
    pub use crate::domain::record::*;
}
