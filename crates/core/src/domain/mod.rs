//! The domain: names, sequence numbers, archive configuration, records, the Lambda event,
//! the replay frame, times and write planning. Pure code: no I/O, and no AWS SDK types (the
//! item codec, which speaks DynamoDB's `AttributeValue`, is [`crate::aws::item`]).

pub mod athena;
pub mod compaction;
pub mod config;
pub mod event;
pub mod filter;
pub mod frame;
pub mod function_event;
pub mod kpl;
pub mod names;
pub mod overflow;
pub mod pace;
pub mod parquet;
pub mod plan;
pub mod record;
pub mod selection;
pub mod sequence;
pub mod shard_load;
pub mod tier;
pub mod timefmt;
