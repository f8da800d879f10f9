//! Value parsers of the command line: each turns one argument's text into its type, or
//! says what is allowed (clap shows it as a usage error, exit 2).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use kinarch_core::domain::timefmt::parse_time;
use kinarch_core::poller::{MAX_BATCH_SIZE, StartPosition};
use kinarch_core::read::{
    MAX_PARTITION_KEY_CHARS, MAX_SEGMENTS, MAX_TOTAL_SEGMENTS, WorkerSegment,
};
use kinarch_core::{ArchiveMode, ArchiveTtl, SequenceNumber, StreamName, TableName};

pub(super) fn parse_separator(text: &str) -> Result<u8, String> {
    kinarch_core::domain::frame::parse_separator(text).map_err(|e| e.to_string())
}

pub(super) fn parse_rate(text: &str) -> Result<NonZeroU32, String> {
    text.parse::<NonZeroU32>()
        .map_err(|_| "the rate is a whole number of records per second, at least 1".to_owned())
}

pub(super) fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("the concurrency is a whole number from 1 to 64".to_owned()),
    }
}

pub(super) fn parse_start(text: &str) -> Result<StartPosition, String> {
    StartPosition::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_batch_size(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_SIZE).contains(&n) => Ok(n),
        _ => Err(format!(
            "the batch size must be a whole number of records from 1 to {MAX_BATCH_SIZE} \
             (GetRecords' limit)"
        )),
    }
}

pub(super) fn parse_overflow_target(
    text: &str,
) -> Result<kinarch_core::domain::overflow::OverflowTarget, String> {
    kinarch_core::domain::overflow::OverflowTarget::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_table(text: &str) -> Result<TableName, String> {
    TableName::new(text).map_err(|e| e.to_string())
}

pub(super) fn parse_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

pub(super) fn parse_stream(text: &str) -> Result<StreamName, String> {
    StreamName::new(text).map_err(|e| e.to_string())
}

pub(super) fn parse_mode(text: &str) -> Result<ArchiveMode, String> {
    text.parse::<ArchiveMode>().map_err(|e| e.to_string())
}

pub(super) fn parse_sequence(text: &str) -> Result<SequenceNumber, String> {
    SequenceNumber::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text).map_err(|e| e.to_string())
}

pub(super) fn parse_limit(text: &str) -> Result<NonZeroUsize, String> {
    text.trim()
        .parse::<NonZeroUsize>()
        .map_err(|_| "the limit must be a whole number of records, at least 1".to_owned())
}

pub(super) fn parse_page_size(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("the page size must be a whole number of items, at least 1".to_owned()),
    }
}

pub(super) fn parse_segments(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SEGMENTS).contains(&n) => Ok(n),
        _ => Err(format!(
            "the number of segments must be a whole number from 1 to {MAX_SEGMENTS}"
        )),
    }
}

pub(super) fn parse_ttl_seconds(text: &str) -> Result<ArchiveTtl, String> {
    let seconds: u64 = text.trim().parse().map_err(|_| {
        format!(
            "the TTL must be a whole number of seconds from 1 to {} (e.g. 2592000 for 30 days)",
            ArchiveTtl::MAX_SECONDS
        )
    })?;
    ArchiveTtl::from_seconds(seconds).map_err(|_| {
        format!(
            "the TTL must be from 1 to {} seconds (100 years)",
            ArchiveTtl::MAX_SECONDS
        )
    })
}

/// Parses capacity units (1 to 1,000,000; AWS account quotas are lower and AWS says so).
pub(crate) fn parse_capacity(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("capacity units must be a whole number, at least 1".to_owned()),
    }
}

pub(super) fn parse_partition_key(text: &str) -> Result<String, String> {
    let chars = text.chars().count();
    if (1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "a partition key has 1 to {MAX_PARTITION_KEY_CHARS} characters (this one has {chars})"
        ))
    }
}

pub(super) fn parse_region(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err("an AWS region is lower-case letters, digits and '-', like eu-west-1".to_owned())
    }
}

pub(super) fn parse_endpoint(text: &str) -> Result<String, String> {
    if (text.starts_with("http://") || text.starts_with("https://")) && text.len() > 8 {
        Ok(text.to_owned())
    } else {
        Err("the endpoint must be a URL starting with http:// or https://".to_owned())
    }
}

pub(super) fn parse_worker_segment(text: &str) -> Result<WorkerSegment, String> {
    WorkerSegment::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_segments_total(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_TOTAL_SEGMENTS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of workers from 1 to {MAX_TOTAL_SEGMENTS}"
        )),
    }
}

/// The environment variable AWS Batch sets in each job of an array job: its index, from 0.
pub(crate) const ENV_BATCH_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";

/// The worker segment of `--segment I/N`, or of `--segments-total N` with the index from
/// [`ENV_BATCH_INDEX`] (refused, naming the variable, when it is missing or not an index).
pub(crate) fn worker_segment(
    segment: Option<WorkerSegment>,
    segments_total: Option<u32>,
) -> Result<Option<WorkerSegment>, String> {
    match (segment, segments_total) {
        (Some(segment), _) => Ok(Some(segment)),
        (None, None) => Ok(None),
        (None, Some(total)) => {
            let text = std::env::var(ENV_BATCH_INDEX).map_err(|_| {
                format!(
                    "--segments-total {total} takes the segment from {ENV_BATCH_INDEX}, which \
                     is not set (AWS Batch sets it in array jobs); elsewhere pass --segment I/{total}"
                )
            })?;
            let index = text
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{ENV_BATCH_INDEX}={text:?} is not a whole number"))?;
            WorkerSegment::new(index, total).map(Some).map_err(|e| {
                format!("{ENV_BATCH_INDEX}={index} with --segments-total {total}: {e}")
            })
        }
    }
}
