//! Value parsers of the command line: each turns one argument's text into its type, or
//! says what is allowed (clap shows it as a usage error, exit 2).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use kinarch_core::domain::names::StreamRef;
use kinarch_core::domain::timefmt::parse_time_at;
use kinarch_core::poller::{MAX_BATCH_SIZE, StartPosition};
use kinarch_core::read::{
    MAX_PARTITION_KEY_CHARS, MAX_SEGMENTS, MAX_TOTAL_SEGMENTS, WorkerSegment,
};
use kinarch_core::{ArchiveMode, ArchiveTtl, SequenceNumber, StreamName, TableName};

pub(super) fn parse_separator(text: &str) -> Result<u8, String> {
    kinarch_core::domain::frame::parse_separator(text).map_err(|e| e.to_string())
}

/// A whole number from 1 to `max`, or an error that says which rule it broke: not a whole
/// number, below 1, or too large (a number past `max`, even past any integer type, is
/// "too large", never "at least 1").
pub(crate) fn parse_count(text: &str, what: &str, max: u64) -> Result<u64, String> {
    let text = text.trim();
    let range = format!("a whole number from 1 to {max}");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        match text.parse::<u64>() {
            Ok(0) => Err(format!("{what} must be at least 1 ({range})")),
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!("{what} {text} is too large: {range}")),
        }
    } else {
        Err(format!("{what} must be {range}, not {text:?}"))
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The highest `--rate`: far above what any stream takes (1,000 records/s per shard), so a
/// larger number is a typo.
pub(crate) const MAX_RATE: u64 = 10_000_000;
/// The highest `--limit`: a trillion records, more than any archive read in one run.
pub(crate) const MAX_LIMIT: u64 = 1_000_000_000_000;
/// The highest `--concurrency` of PutRecords calls.
pub(crate) const MAX_CONCURRENCY: u64 = 64;

pub(super) fn parse_rate(text: &str) -> Result<NonZeroU32, String> {
    let n = parse_count(text, "the rate (records per second)", MAX_RATE)?;
    Ok(NonZeroU32::new(n as u32).expect("at least 1"))
}

pub(super) fn parse_concurrency(text: &str) -> Result<usize, String> {
    parse_count(
        text,
        "the concurrency (PutRecords calls in flight)",
        MAX_CONCURRENCY,
    )
    .map(|n| n as usize)
}

pub(super) fn parse_start(text: &str) -> Result<StartPosition, String> {
    StartPosition::parse(text).map_err(|e| e.to_string())
}

pub(super) fn parse_batch_size(text: &str) -> Result<usize, String> {
    parse_count(
        text,
        "the batch size (records per GetRecords call, at most GetRecords' limit)",
        MAX_BATCH_SIZE as u64,
    )
    .map(|n| n as usize)
}

pub(super) fn parse_function_batch_size(text: &str) -> Result<usize, String> {
    parse_count(
        text,
        "the batch size (records per event, at most the event source mapping's)",
        kinarch_core::domain::function_event::MAX_BATCH_RECORDS as u64,
    )
    .map(|n| n as usize)
}

pub(super) fn parse_function_attempts(text: &str) -> Result<u32, String> {
    parse_count(text, "the attempts per failed batch", 100).map(|n| n as u32)
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

/// A stream as typed: its name, or its ARN (then the region in it is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamArg {
    /// The stream's name.
    pub(crate) name: StreamName,
    /// The region of the ARN, when an ARN was given.
    pub(crate) region: Option<String>,
    /// The stream's ARN, when one was given.
    pub(crate) arn: Option<String>,
}

impl std::ops::Deref for StreamArg {
    type Target = StreamName;
    fn deref(&self) -> &StreamName {
        &self.name
    }
}

/// A stream name or a stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`), as the AWS
/// CLI accepts both.
pub(crate) fn parse_stream(text: &str) -> Result<StreamArg, String> {
    if text.starts_with("arn:") {
        let stream = StreamRef::from_arn(text).map_err(|e| e.to_string())?;
        return Ok(StreamArg {
            name: stream.name,
            region: Some(stream.region),
            arn: Some(stream.arn),
        });
    }
    StreamName::new(text)
        .map(|name| StreamArg {
            name,
            region: None,
            arn: None,
        })
        .map_err(|e| format!("{e}, or a stream ARN"))
}

/// `--max-shard-load`: a whole percentage, 1 to 100.
pub(super) fn parse_load_share(
    text: &str,
) -> Result<kinarch_core::domain::shard_load::LoadShare, String> {
    let percent: u8 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage from 1 to 100"))?;
    kinarch_core::domain::shard_load::LoadShare::new(percent)
}

/// An IAM role ARN: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
pub(super) fn parse_role_arn(text: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "{text:?} is not an IAM role ARN: give arn:aws:iam::ACCOUNT:role/NAME (12-digit \
             account id)"
        )
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(bad());
    };
    let valid = scheme == "arn"
        && !partition.is_empty()
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty() && !name.ends_with('/'));
    valid.then(|| text.to_owned()).ok_or_else(bad)
}

pub(super) fn parse_mode(text: &str) -> Result<ArchiveMode, String> {
    text.parse::<ArchiveMode>().map_err(|e| e.to_string())
}

pub(super) fn parse_sequence(text: &str) -> Result<SequenceNumber, String> {
    SequenceNumber::parse(text).map_err(|e| e.to_string())
}

/// One "now" for every relative time of a command line (`--arrived-after 2h
/// --arrived-before 1h` is exactly one hour).
static NOW: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();

pub(super) fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time_at(text, *NOW.get_or_init(Utc::now)).map_err(|e| e.to_string())
}

/// A time of a selection as given: the instant, and the text when it is relative (`30m`,
/// `now`), which a replay journal keeps (a relative time names another instant on every
/// run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeArg {
    pub(crate) time: DateTime<Utc>,
    pub(crate) relative: Option<String>,
}

pub(super) fn parse_selection_time(text: &str) -> Result<TimeArg, String> {
    Ok(TimeArg {
        time: parse_time_arg(text)?,
        relative: kinarch_core::domain::timefmt::is_relative(text).then(|| text.trim().to_owned()),
    })
}

pub(super) fn parse_limit(text: &str) -> Result<NonZeroUsize, String> {
    let n = parse_count(text, "the limit (records)", MAX_LIMIT)?;
    Ok(NonZeroUsize::new(n as usize).expect("at least 1"))
}

pub(super) fn parse_page_size(text: &str) -> Result<u32, String> {
    // DynamoDB's Limit is an Integer, and a page never holds more than 1 MB of items.
    parse_count(text, "the page size (items per request)", i32::MAX as u64).map(|n| n as u32)
}

pub(super) fn parse_segments(text: &str) -> Result<u32, String> {
    parse_count(text, "the number of segments", MAX_SEGMENTS as u64).map(|n| n as u32)
}

/// `--read-timeout SECONDS`: seconds above 0, a fraction allowed, at most an hour.
pub(super) fn parse_read_timeout(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => {
            Ok(std::time::Duration::from_secs_f64(s))
        }
        Ok(s) if s > 3600.0 => Err(format!(
            "the read timeout {text} is too large: seconds above 0, at most 3600"
        )),
        _ => Err("the read timeout is seconds above 0 (e.g. 10 or 2.5), at most 3600".into()),
    }
}

/// The bytes written after each record (`--delimiter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delimiter(pub(crate) Vec<u8>);

/// `--delimiter`: `\0`, `\n`, `\t`, `\r` and `\\` are escapes, so a shell can pass a
/// NUL byte.
pub(super) fn parse_delimiter(text: &str) -> Result<Delimiter, String> {
    crate::output::unescape(text).map(Delimiter)
}

/// `--format`: kcat-style fields, checked now so that a typo is a usage error.
pub(super) fn parse_format(text: &str) -> Result<crate::output::LineFormat, String> {
    crate::output::LineFormat::parse(text)
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
    parse_count(text, "capacity units", 1_000_000)
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
    parse_count(text, "the number of workers", MAX_TOTAL_SEGMENTS as u64).map(|n| n as u32)
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

/// The token of a `query` command line that was most likely meant as a partition key
/// starting with '-' (`kinarch query orders -neg`), which the parser reads as options: the
/// first single-dash token of three or more characters, not a number, not the value of
/// `-k`/`--partition-key` (which take such keys), after `query` and its stream. Only asked
/// after the command line failed to parse.
pub(crate) fn dash_leading_key(args: &[String]) -> Option<&str> {
    let at = args.iter().position(|a| a == "query")?;
    let mut after_key_flag = false;
    for arg in &args[at + 1..] {
        let taken_by_flag =
            std::mem::replace(&mut after_key_flag, arg == "-k" || arg == "--partition-key");
        let looks_like_key = arg.len() > 2
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && !arg[1..].starts_with(|c: char| c.is_ascii_digit());
        if looks_like_key && !taken_by_flag {
            return Some(arg);
        }
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_key_starting_with_a_dash_is_found_where_query_expects_one() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            dash_leading_key(&args("kinarch query orders -neg")),
            Some("-neg")
        );
        assert_eq!(
            dash_leading_key(&args("kinarch -v query orders -dash2 -n 3")),
            Some("-dash2")
        );
        assert_eq!(
            dash_leading_key(&args("kinarch query orders -k -neg -x1")),
            Some("-x1")
        );
        assert_eq!(
            dash_leading_key(&args("kinarch query orders -k -neg")),
            None
        );
        assert_eq!(dash_leading_key(&args("kinarch query orders k1 -n")), None);
        assert_eq!(dash_leading_key(&args("kinarch scan orders -neg")), None);
    }
    use super::*;

    #[test]
    fn export_destinations_are_s3_urls_with_the_overflow_rules() {
        let ok = parse_s3_prefix("s3://analytics-1/kinarch/orders/").unwrap();
        assert_eq!(
            (ok.bucket.as_str(), ok.prefix.as_str()),
            ("analytics-1", "kinarch/orders")
        );
        assert_eq!(parse_s3_prefix("s3://analytics").unwrap().prefix, "");
        assert!(
            parse_s3_prefix("analytics/x")
                .unwrap_err()
                .contains("not an S3 URL")
        );
        assert!(
            parse_s3_prefix("s3://Bad_Bucket/x")
                .unwrap_err()
                .contains("Bad_Bucket")
        );
        assert!(
            parse_s3_prefix("s3://analytics/a//b")
                .unwrap_err()
                .contains("//")
        );
    }

    #[test]
    fn counts_say_which_rule_they_break() {
        assert_eq!(parse_count("7", "the limit", 10), Ok(7));
        assert!(
            parse_count("0", "the limit", 10)
                .unwrap_err()
                .contains("at least 1")
        );
        let big = parse_count("99999999999999999999999", "the limit", 10).unwrap_err();
        assert!(
            big.contains("too large") && big.contains("1 to 10"),
            "{big}"
        );
        assert!(
            parse_count("11", "the limit", 10)
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_count("-1", "the limit", 10)
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            parse_count("1.5", "the limit", 10)
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn streams_are_names_or_arns() {
        let by_name = parse_stream("orders").unwrap();
        assert_eq!((by_name.as_str(), by_name.region.clone()), ("orders", None));
        let by_arn = parse_stream("arn:aws:kinesis:eu-west-1:123456789012:stream/orders").unwrap();
        assert_eq!(by_arn.as_str(), "orders");
        assert_eq!(by_arn.region.as_deref(), Some("eu-west-1"));
        assert!(
            parse_stream("arn:aws:sqs:eu-west-1:123456789012:q")
                .unwrap_err()
                .contains("ARN")
        );
        assert!(parse_stream("bad name").unwrap_err().contains("stream ARN"));
    }
}

/// An S3 location for `kinarch export`: a bucket and a key prefix (no slashes around it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Prefix {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
}

/// `s3://BUCKET[/PREFIX]`, checked by the rules of the overflow bucket's tag (one parser of
/// S3 prefixes); unlike the tag, the command line needs the `s3://`.
pub(super) fn parse_s3_prefix(text: &str) -> Result<S3Prefix, String> {
    if !text.trim().starts_with("s3://") {
        return Err(format!(
            "{text:?} is not an S3 URL: give s3://BUCKET or s3://BUCKET/PREFIX"
        ));
    }
    let target =
        kinarch_core::domain::overflow::OverflowTarget::parse(text).map_err(|e| e.to_string())?;
    Ok(S3Prefix {
        bucket: target.bucket().to_string(),
        prefix: target.prefix().to_owned(),
    })
}

pub(super) fn parse_speed(text: &str) -> Result<f64, String> {
    kinarch_core::domain::pace::OriginalPace::parse_speed(text).map_err(|e| e.to_string())
}
