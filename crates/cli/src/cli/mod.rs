//! The command line: every subcommand, option and help text, and the parsers that turn
//! bad values into usage errors (exit 2) before anything is called.

// The doc comments here are clap's help text, written for a terminal: `<sep>` and
// `<archive table>` are placeholders there, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use kinarch_core::domain::filter::ContentFilter;
use kinarch_core::domain::overflow::OverflowTarget;
use kinarch_core::domain::shard_load::LoadShare;
use kinarch_core::poller::{DEFAULT_BATCH_SIZE, StartPosition};
use kinarch_core::read::WorkerSegment;
use kinarch_core::{ArchiveMode, ArchiveTtl, SequenceNumber, TableName};

pub(crate) mod values;

use values::*;

const ABOUT: &str = "Archive Amazon Kinesis Data Streams in DynamoDB: set a stream up, look records up, scan the archive.";

const LONG_ABOUT: &str = "\
Archive Amazon Kinesis Data Streams in DynamoDB: set a stream up, look records up, scan the archive.

The kinarch Lambda function writes the records of every stream it is attached to into a
DynamoDB table. Each stream is configured by its tags, which `kinarch setup` writes:
  StreamArchiveMode  ALL (every record; table keyed by partitionKey + sequenceNumber) or
                     LATEST (the newest record per partition key; keyed by partitionKey)
  ArchiveTTL         expireSeconds=N: archived items expire N seconds after archiving
  ArchiveTableName   optional: the table, for archives made by other tools
The table is <stream>-archive-<MODE> unless ArchiveTableName says otherwise.

AWS access follows the usual conventions: --region/--profile/--endpoint-url, or the
AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL environment variables, or the shared config
files. A stream is given by name or by ARN (its region is then used). kinarch creates no
streams: create them with the AWS CLI (aws kinesis create-stream) or the console.

Records, and summaries asked for with -o json (one JSON document), go to standard output;
messages, warnings, errors and progress go to standard error (coloured on a terminal unless
NO_COLOR is set).

Exit status: 0 success (also when the reader of the output closes it, as `| head` does),
1 failure, 2 usage error, 130 or 143 stopped by Ctrl-C (SIGINT) or SIGTERM (query, scan,
put and reinject; query, scan and reinject first say what they printed or sent; archive
--follow stops cleanly with 0).";

const AFTER_HELP: &str = "\
Examples:
  kinarch setup orders ALL eu-west-1 --ttl-seconds 2592000
  kinarch status orders
  kinarch query orders customer-42 \\
      --from-seq 49590338271490256608559692538361571095921575989136588898
  kinarch scan orders --arrived-after 2024-05-01T00:00:00Z -o jsonl > o.jsonl
  kinarch completions bash > /etc/bash_completion.d/kinarch";

/// Help heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

/// `kinarch`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "kinarch",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// AWS options and verbosity, accepted before or after the subcommand.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of every subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// AWS region of the stream and its table [default: AWS_REGION, or the profile's region].
    #[arg(long, global = true, value_name = "REGION", value_parser = parse_region, help_heading = GLOBAL)]
    pub(crate) region: Option<String>,
    /// Named profile of the AWS config files [default: AWS_PROFILE, or "default"].
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub(crate) profile: Option<String>,
    /// Send every AWS request to this endpoint, e.g. a local emulator or a VPC endpoint
    /// [default: AWS_ENDPOINT_URL, or the service's public endpoint].
    #[arg(long, global = true, value_name = "URL", value_parser = parse_endpoint, help_heading = GLOBAL)]
    pub(crate) endpoint_url: Option<String>,
    /// More messages on standard error: -v progress of each step, -vv each AWS call
    /// (operation, table or stream, duration, status), -vvv everything. RUST_LOG, when set, overrides this.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = GLOBAL)]
    pub(crate) verbose: u8,
    /// Print errors only: no progress, no warnings, no setup report.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub(crate) quiet: bool,
    /// Give up on one HTTP attempt after this many seconds (it is retried) [default:
    /// KINARCH_ATTEMPT_TIMEOUT_MS, or 10 s].
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_read_timeout, help_heading = GLOBAL)]
    pub(crate) read_timeout: Option<std::time::Duration>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Set a stream up for archiving: tag it and create its table.
    #[command(
        long_about = "\
Set a stream up for archiving: create its DynamoDB table with the key schema the mode needs,
wait until it is ACTIVE, enable the table's TTL on attribute expireAfter when a TTL is set,
and tag the stream (StreamArchiveMode, ArchiveTTL) so the kinarch Lambda function archives it.

Safe to re-run: an existing table is accepted when its key schema fits the mode (and refused
with an explanation when it does not), tags are rewritten with the same values, a TTL that is
already enabled is left alone. Billing of an existing table is never changed. Without
--ttl-seconds or --no-ttl the stream's current TTL is kept. --no-ttl removes the ArchiveTTL tag
so new items never expire; the table's TTL setting stays, so items archived earlier with an
expiry still expire.

When standard input is a terminal and none of --yes, --dry-run or -o json is given, kinarch asks for
the TTL, the billing mode and capacities you did not pass, shows the plan and asks before
changing anything. Otherwise it uses the defaults: TTL kept, on-demand billing, 5 read and 5
write capacity units for provisioned billing.",
        after_help = "\
Examples:
  kinarch setup orders ALL eu-west-1                 # every record, kept
  kinarch setup orders LATEST --ttl-seconds 604800 --yes  # newest, 7 days
  kinarch setup orders ALL --billing provisioned \\
      --read-capacity 10 --write-capacity 50
  kinarch setup orders ALL --no-ttl --dry-run        # what would change"
    )]
    Setup(SetupArgs),

    /// Show how a stream is archived: tags, table, key schema, TTL, item count.
    #[command(
        long_about = "\
Show how a stream is archived: its tags, table, key schema, TTL, approximate item count, and
the checkpoints of `kinarch archive` (per shard: sequence number, finished, updated at; and
the newest) when its checkpoint table exists.

A health check: the exit status is 0 only when the archive is fully set up and usable, and
1 when it is not (not set up, table missing or not ACTIVE, key schema wrong for the mode, a
tag invalid, an ArchiveTTL tag while the table does not expire items). Every problem is
listed, with everything else that is known, rather than stopping at the first. With -o json
the document has \"healthy\" and \"problems\".",
        after_help = "Examples:\n  kinarch status orders --region eu-west-1\n  kinarch status orders -o json | jq .problems"
    )]
    Status(StatusArgs),

    /// Print the archived records of one partition key.
    #[command(
        long_about = "\
Print the archived records of one partition key in numeric sequence order, the order
`kinarch reinject` sends them (put in that order within a window of 10,000 records: tables
return them in string order, which differs when sequence numbers differ in length).

--from-seq and --to-seq are inclusive and compare numerically, whatever their length.
--from-seq equal to --to-seq reads that one record. A LATEST archive holds only the newest record of each key: it
is printed when it lies within the bounds.",
        after_help = "\
Examples:
  kinarch query orders customer-42
  kinarch query orders customer-42 -n 10 \\
      --from-seq 49590338271490256608559692538361571095921575989136588898
  kinarch query orders customer-42 -o jsonl | jq .sequenceNumber
  kinarch query orders -k -key-starting-with-a-dash
  kinarch query orders customer-42 --format '%o\\t%T\\t%s\\n'"
    )]
    Query(QueryArgs),

    /// Print every archived record that passes the given filters.
    #[command(
        long_about = "\
Print every archived record of a stream that passes all the given filters (they apply
together). --*-after bounds are inclusive, --*-before bounds exclusive, so consecutive
windows never share a record. --archived-* compare with the archive time (lastUpdate, whole
seconds); --arrived-* with the time the record reached Kinesis (approximateArrivalTimestamp).
TIME is any of: RFC 3339 (2026-05-01T10:00:00Z, 2026-05-01T12:00:00+02:00), a date
(2026-05-01, UTC midnight), the archive's lastUpdate form (2026-05-01 10:00:00, UTC), epoch
seconds (1777629600, 1777629600.25) or milliseconds (13 digits), now, or a duration ago
(90s, 15m, 2h, 7d, 1h30m). A date-time without a zone is refused: add Z or an offset.

A scan reads the whole table (and pays for it); --segments N reads N parts of the table in
parallel, which is faster on large tables. Records come in no particular order.",
        after_help = "\
Examples:
  kinarch scan orders --limit 10
  kinarch scan orders --archived-after 2024-05-01T00:00:00Z --segments 8
  kinarch scan orders --arrived-after 2h --arrived-before 1h -o jsonl
  kinarch scan orders \\
      --from-seq 49590338271490256608559692538361571095921575989136588898"
    )]
    Scan(ScanArgs),

    /// Replay archived records into a stream (the same one or another).
    #[command(
        long_about = "\
Replay archived records into a Kinesis stream: the stream they came from, or --target.

Which records: --partition-key K (as `kinarch query`), or the scan filters (--archived-after,
--archived-before, --segments, as `kinarch scan`); --from-seq/--to-seq and
--arrived-after/--arrived-before bound either; with neither, every archived record. --limit
caps the number read. TIME takes the forms of `kinarch scan --help`.

Records are sent with PutRecords (at most 500 records and 5 MiB per call) under their
original partition key. Records of one partition key are never sent ahead of an earlier
record of the same key: a key's next record goes only after the previous one is stored, so
order per key is kept as in the stream, even when Kinesis refuses part of a call. Refused
records are retried with backoff; a record that still fails blocks its key (its later
records are not sent) and is listed at the end, with exit status 1.

--metadata frames each record as <sep><json><sep><original bytes>, where the JSON object holds
originalApproximateArrivalTimestamp, originalShardId, originalSequenceNumber, and
originalStreamName when the target is another stream. The original bytes follow unchanged,
binary or not. kinarch_core::domain::frame::ReplayFrame::parse splits such records again.
The archiver (the Lambda function and `kinarch archive`) recognizes a framed record without
originalStreamName, a replay into its own source stream, and does not archive it again
(counted as skipped_replay): the archive stays as it was.

Without --metadata, records replayed into their source stream cannot be told from new ones
and are archived again as new records (in LATEST mode they replace the newest record of
their key). kinarch asks before sending them when standard input is a terminal, and refuses
otherwise (exit 2) unless --yes is given. --dry-run asks nothing.

--dry-run reads the selection and prints what would be sent (partition key, sequence number,
bytes per record) on standard output without sending anything; it checks that the target
stream exists, says \"would send\", and exits 0 (records that could never be sent are listed
as \"would not send\").

On a terminal a progress line shows records sent and the rate. The summary goes to standard
error; -o json prints it as one JSON document on standard output instead.",
        after_help = "\
--verify reads the replay back afterwards (GetRecords from each target shard, between the
lowest and highest sequence numbers PutRecords answered) and checks that each record is
there once, with its bytes, in its key's order; records others wrote are ignored. Exit 1
when any is missing, altered, duplicated or out of order, with the first few named.

--max-shard-load PCT holds each target shard to PCT percent of its write limit (1,000
records and 1 MiB a second), placing each record by the MD5 of its partition key; a shard
that throttles gets half its budget, then a tenth of its cap back per calm second.

Another account or region: --target takes a stream ARN of any account and region (or a name
with --target-region), and --target-role-arn ROLE [--target-external-id ID] assumes that role
for the target's calls only (PutRecords, DescribeStreamSummary, and GetRecords for --verify),
its credentials renewed before they expire; the archive is read with the caller's
credentials. --dry-run and --estimate check the target with those credentials. Errors say
which side failed (reading the archive or writing the target) and as whom. SECURITY.md has
the role and its trust policy.

Examples:
  kinarch reinject orders -k customer-42 --target orders-replay --metadata
  kinarch reinject orders --arrived-after 2024-05-01T00:00:00Z --rate 500
  kinarch reinject orders --archived-after 1714564800 --target test --dry-run
  kinarch reinject orders --metadata --separator '#' --target audit
  kinarch reinject orders --metadata \\
      --target arn:aws:kinesis:eu-west-1:210987654321:stream/orders \\
      --target-role-arn arn:aws:iam::210987654321:role/kinarch-replay"
    )]
    Reinject(ReinjectArgs),

    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  kinarch completions bash > ~/.local/share/bash-completion/completions/kinarch
  kinarch completions zsh > \"${fpath[1]}/_kinarch\"
  kinarch completions fish > ~/.config/fish/completions/kinarch.fish")]
    Completions(CompletionsArgs),

    /// Archive a stream without Lambda: read its shards and write the archive, resumably.
    #[command(
        long_about = "\
Archive a stream without Lambda: read every shard with GetRecords and write each batch with
the same archive writer the kinarch Lambda function uses (same modes, tags, TTL, oversize
rule). For containers, hosts and laptops, or to fill an archive from a stream's history.

The stream must be set up first (`kinarch setup`): its tags say the mode and the table.

Resumable: after each batch that fully landed, a checkpoint per shard records the last
archived sequence number; a new run (after a stop, a crash, a kill) continues after it, with
no gap. Writes are idempotent, so a batch written twice changes nothing. When some writes of
a batch fail, the checkpoint stays before them and the shard is read again from the lowest
failed record after a backoff: nothing is skipped. Checkpoints live in the DynamoDB table
<archive table>-checkpoints (HASH shardId, created on first use, on-demand billing), or in
--checkpoint-table NAME, or in a local JSON file with --checkpoint-file PATH.

Shards are read in parallel; after a reshard a parent shard is read to its end before its
children are started. --start-at applies only to shards without a checkpoint (and not to the
children of archived shards, which start at their beginning so nothing is missed).

Without --follow it stops when every open shard is caught up and prints a summary (records,
shards, seconds). With --follow it keeps polling (at most 5 GetRecords calls per second per
shard, waiting when a shard is idle, backing off when throttled) and picks up new shards
after a reshard, until Ctrl-C or SIGTERM: then the batch in flight is finished (or abandoned
unrecorded) and the summary printed; the exit status is 0.

AWS permissions: kinesis:ListTagsForStream, ListShards, GetShardIterator, GetRecords on the
stream; dynamodb:DescribeTable, BatchWriteItem (ALL) or PutItem (LATEST) on the archive
table; dynamodb:DescribeTable, CreateTable (first run only), Scan, PutItem on the checkpoint
table.",
        after_help = "\
Examples:
  kinarch archive orders                        # all not archived yet
  kinarch archive orders --follow               # then on, until Ctrl-C
  kinarch archive orders --start-at LATEST --follow  # from now on
  kinarch archive orders --start-at 2024-05-01T00:00:00Z \\
      --checkpoint-file orders.json
  kinarch archive orders --dry-run              # where shards would start
  kinarch archive orders --output json | jq .records"
    )]
    Archive(ArchiveArgs),

    /// Write records into a stream: one record per line of standard input.
    #[command(
        long_about = "\
Write records into a stream: one record per line of standard input. A line ends at a
newline byte (a CRLF line end is removed whole, and a UTF-8 byte order mark at the start
is skipped); every other byte is kept as it is (binary safe), and empty lines are skipped.

Records are sent as lines arrive: a PutRecords call goes when it is full (500 records or
5 MiB) or 100 ms after its first record, so `tail -f app.log | kinarch put S -k app` writes
continuously. Refused records are retried with backoff.

Order costs calls: records of one partition key are kept in order the way Kinesis keeps
them, so a record waits until the previous record of its key is stored (PutRecords may
store record 2 and refuse record 1 of the same call). One fixed key therefore sends one
record per call. --unordered drops that guarantee and fills every call: 2,000 lines of one
key take 4 calls instead of 2,000. --concurrency N allows N calls in flight.

The partition key is either fixed (-k KEY) or taken from a field of each line, a JSON object
(--key-field PATH, a dotted path like user.id; a string, number or boolean value, a number
as written). With --base64 each line is the standard base64 of one record, unwrapped
(base64 -w0), for payloads that contain newlines.

Lines that cannot be sent (bad JSON, no key, a line over the 1 MiB record limit, which is
refused as soon as it passes the limit) are reported on standard error with their line
number; the others are sent, and the exit status is then 1.",
        after_help = "\
Examples:
  echo '{\"order\":1}' | kinarch put orders --partition-key customer-1
  kinarch put orders --key-field customer.id < orders.jsonl
  tail -f app.log | kinarch put logs -k app --unordered
  base64 -w0 image.png | kinarch put images -k img-1 --base64"
    )]
    Put(PutArgs),

    /// List the archives of a region: their tables, streams, modes and item counts.
    #[command(
        long_about = "\
List the archives of a region: every DynamoDB table whose key schema is the archive layout
(HASH partitionKey S, with RANGE sequenceNumber S for ALL mode), with the stream it belongs
to when its name is <stream>-archive-<MODE> (and whether that stream still exists), its mode
(from the key schema) and its approximate item count. Checkpoint tables are left out.

AWS permissions: dynamodb:ListTables, DescribeTable; kinesis:DescribeStreamSummary.",
        after_help = "Examples:\n  kinarch list --region eu-west-1\n  kinarch list -o json | jq '.[].table'"
    )]
    List(ListArgs),

    /// Export an archive table to S3 (DynamoDB's own export) for Athena, Glue or EMR.
    #[command(
        long_about = "\
Export a stream's archive table to S3 with DynamoDB's ExportTableToPointInTime: DynamoDB
writes the table as of now, in DynamoDB JSON (gzipped lines of {\"Item\": {...}}), under
s3://BUCKET/PREFIX/AWSDynamoDB/<export id>/, from its point-in-time recovery backup: the
export reads no table capacity and does not slow the archiver. It needs point-in-time
recovery on the table (`kinarch setup STREAM MODE --pitr` turns it on); kinarch checks that
first.

kinarch waits until the export completes (an export takes minutes to hours; --no-wait returns
once it started) and prints where its manifest is. --print-athena-ddl prints a CREATE
EXTERNAL TABLE for Athena over the exported files, with the archive's attributes and their
types (see the README for a query that decodes recordData).

The archive is found as for `kinarch query` (tags, --table, or the default table names when
the stream is gone). Messages go to standard error; -o json and the DDL to standard output.

AWS permissions: dynamodb:DescribeTable, DescribeContinuousBackups, ExportTableToPointInTime,
DescribeExport on the table; s3:PutObject, s3:AbortMultipartUpload on the prefix (used by
DynamoDB on your behalf).",
        after_help = "\
Examples:
  kinarch export orders --s3 s3://analytics/kinarch/orders
  kinarch export orders --s3 s3://analytics/kinarch --print-athena-ddl > o.sql
  kinarch export orders --s3 s3://analytics/kinarch --no-wait -o json \\
      | jq -r .exportArn"
    )]
    Export(ExportArgs),

    /// Print the Athena CREATE EXTERNAL TABLE over a stream's Parquet archive.
    #[command(
        name = "athena-ddl",
        long_about = "\
Print an Athena CREATE EXTERNAL TABLE over the stream's Parquet archive (its ArchiveParquet
tag, or --parquet when the stream is gone), with the contract's columns and partition
projection on date and hour: Athena finds the partitions from the object layout, with no
crawler and no MSCK REPAIR TABLE. Run the statement in Athena, then query with a date and
hour filter so that only those prefixes are read (README, \"Athena over the Parquet
archive\").

AWS permissions: kinesis:ListTagsForStream; s3:GetObject on the marker object
(<PREFIX>/<stream>/_kinarch.json), for the first day of the projection.",
        after_help = "\
Examples:
  kinarch athena-ddl orders > orders.sql
  kinarch athena-ddl orders --parquet s3://history/kinarch
  kinarch athena-ddl orders --first-day 2025-01-01 --table-name orders_history"
    )]
    AthenaDdl(AthenaDdlArgs),

    /// Move the old items of an ALL table into the Parquet archive in S3.
    #[command(
        long_about = "\
Move the items of a stream's ALL table whose record arrived before --older-than into its
Parquet archive (the ArchiveParquet tag, or --parquet s3://BUCKET[/PREFIX]): the same object
layout and schema as the archiver's files, one file per shard and arrival hour. The table is
read as `kinarch scan` reads it: through the time index when it has one, else a Scan
(--segment I/N: one worker's share). Payloads in the overflow bucket are copied into the
files; oversize markers become rows with no data and oversize = true.

Every file is read back and checked (row count, and a digest of each row's key, sequence
number and bytes) before any item it holds is deleted. Without --delete nothing is deleted:
run it once, look (`kinarch scan STREAM --source parquet`), then again with --delete. With
--delete the checked items are deleted (and the overflow objects of those items). A record
already in the archive's files with the same content (a run that was interrupted, a record
the Lambda function also wrote) is not written again: rerun after Ctrl-C or a crash, and it
goes on where it stopped. --dry-run reads and counts: items, bytes, files, and what they cost
per month in the table and would cost in S3 at list prices.

LATEST tables hold the newest record of each key (the state), not history: they are refused.
Exit status: 0 when every item read is in a checked file (and deleted, with --delete); 1
when something was left (a file that did not check out, a record whose archived row
differs, an item that cannot be read or deleted), each named on standard error; 130/143 on
Ctrl-C/SIGTERM (what was done is said; run it again to go on).

AWS permissions: dynamodb:Scan (or Query on the time index), DescribeTable, and
BatchWriteItem with --delete; kinesis:ListTagsForStream, ListShards; s3:ListBucket,
GetObject, PutObject on the Parquet prefix; s3:GetObject (and DeleteObject with --delete)
on the overflow prefix.",
        after_help = "\
Examples:
  kinarch tier orders --older-than 90d --dry-run     # what moves, the saving
  kinarch tier orders --older-than 2026-01-01        # copy, check, keep items
  kinarch tier orders --older-than 2026-01-01 --delete
  kinarch tier gone-stream --table gone-stream-archive-all \\
      --parquet s3://history/kinarch --older-than now --delete"
    )]
    Tier(TierArgs),

    /// Rewrite the small Parquet files of each finished shard-hour into one.
    #[command(
        long_about = "\
Rewrite the Parquet files of each finished shard-hour of a stream's Parquet archive (its
ArchiveParquet tag, or --parquet) into one file: at low traffic the writer makes one small
file per invocation, shard and hour, and every file costs a reader a request. A shard-hour is
finished when its hour ended at or before --before (default: an hour ago, so that a retried
batch rarely lands in an hour already compacted; one that does is compacted by the next run).
Only shard-hours of two files or more are rewritten.

The new file has the layout's own key (<shard>-<first>-<last>.parquet), one row per record
in (sequence number, sub-sequence number) order, each row's archivedAt kept to the second.
It is written and read back before the files it replaces are deleted, so a reader running
meanwhile never misses a record nor returns one twice, and a failure in between leaves both
(readers keep one row per record; the next run deletes the old files). One output takes at
most 64 MiB of input files: a larger shard-hour becomes several files.

Messages go to standard error; -o json prints one JSON document on standard output.

AWS permissions: kinesis:ListTagsForStream; on the Parquet prefix s3:ListBucket,
s3:GetObject, s3:PutObject and s3:DeleteObject.",
        after_help = "\
Examples:
  kinarch compact orders --dry-run
  kinarch compact orders --before 2026-05-01T00:00:00Z
  kinarch compact orders --after 2d --parquet s3://history/kinarch -o json"
    )]
    Compact(CompactArgs),
}

/// `kinarch tier`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TierArgs {
    /// The stream whose ALL table is tiered (it may be gone: see --table and --parquet).
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Move the items whose record arrived before TIME (exclusive; see TIME in `kinarch scan
    /// --help`: 2026-01-01, 90d for 90 days ago, now).
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) older_than: TimeArg,
    /// Delete each item from the table (and its overflow object) once the file holding it
    /// was read back and checked.
    #[arg(long)]
    pub(crate) delete: bool,
    /// Read and count only: items, bytes, files, the monthly saving. Writes and deletes
    /// nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Write the files under s3://BUCKET[/PREFIX] instead of where the stream's
    /// ArchiveParquet tag says (needed when the stream has no tag or is gone).
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_overflow_target)]
    pub(crate) parquet: Option<OverflowTarget>,
    /// Tier this table (its mode from its key schema), whatever the stream's tags say;
    /// needed when the stream is gone and several tables could be its archive.
    #[arg(long, value_name = "NAME", value_parser = parse_table)]
    pub(crate) table: Option<TableName>,
    /// Tier the table even when its ArchivedStream tag names another stream.
    #[arg(long)]
    pub(crate) force: bool,
    /// Read only segment I of N of the table's parallel scan: one worker of N (as for
    /// `kinarch scan`).
    #[arg(long, value_name = "I/N", value_parser = parse_worker_segment)]
    pub(crate) segment: Option<WorkerSegment>,
    /// Read with a Scan even when the table has a time index.
    #[arg(long)]
    pub(crate) no_time_index: bool,
    /// How to print the report: text, or one JSON document.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// `kinarch compact`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompactArgs {
    /// The stream whose Parquet archive is compacted.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Only shard-hours that ended at or before TIME (see TIME in `kinarch scan --help`)
    /// [default: an hour ago].
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) before: Option<TimeArg>,
    /// Only shard-hours that ended after TIME [default: every hour of the archive].
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) after: Option<TimeArg>,
    /// The stream's Parquet archive is under s3://BUCKET[/PREFIX], whatever its tags say.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_overflow_target)]
    pub(crate) parquet: Option<OverflowTarget>,
    /// Say which files would be rewritten into which; read, write and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How to print the result: text (standard error), or one JSON document (standard output).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// `kinarch athena-ddl`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AthenaDdlArgs {
    /// The stream whose Parquet archive the table reads.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// The stream's Parquet archive is under s3://BUCKET[/PREFIX], whatever its tags say.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_overflow_target)]
    pub(crate) parquet: Option<OverflowTarget>,
    /// The Athena table's name [default: <stream>_parquet, lower case, [a-z0-9_]].
    #[arg(long, value_name = "NAME")]
    pub(crate) table_name: Option<String>,
    /// The first day of the date projection, YYYY-MM-DD [default: 365 days (Kinesis's
    /// longest retention) before the Parquet archive began, or before today].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub(crate) first_day: Option<chrono::NaiveDate>,
}

fn parse_where(text: &str) -> Result<ContentFilter, String> {
    ContentFilter::parse(text).map_err(|e| e.to_string())
}

fn parse_cold_days(text: &str) -> Result<u64, String> {
    values::parse_count(text, "--parquet-cold-after", 36_500)
}

fn parse_day(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a day: give YYYY-MM-DD"))
}

/// `kinarch setup`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SetupArgs {
    /// The Kinesis stream to archive.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// ALL keeps every record in the table; LATEST the newest record of each partition key;
    /// NONE keeps no table (every record in the Parquet archive only: needs --parquet).
    #[arg(value_name = "ALL|LATEST|NONE", value_parser = parse_mode)]
    pub(crate) mode: ArchiveMode,
    /// AWS region: the positional form of the original tool. Given with --region too, both
    /// must be the same.
    #[arg(value_name = "REGION", value_parser = parse_region)]
    pub(crate) setup_region: Option<String>,
    /// Archived items expire this many seconds after archiving (DynamoDB TTL).
    #[arg(long, value_name = "SECONDS", value_parser = parse_ttl_seconds, conflicts_with = "no_ttl", allow_hyphen_values = true)]
    pub(crate) ttl_seconds: Option<ArchiveTtl>,
    /// Archived items never expire: removes the stream's ArchiveTTL tag.
    #[arg(long)]
    pub(crate) no_ttl: bool,
    /// Billing of the table, if it has to be created [default: on-demand].
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) billing: Option<BillingArg>,
    /// Read capacity units of a provisioned table (implies --billing provisioned) [default: 5].
    #[arg(long, value_name = "UNITS", value_parser = parse_capacity, allow_hyphen_values = true)]
    pub(crate) read_capacity: Option<u64>,
    /// Write capacity units of a provisioned table (implies --billing provisioned) [default: 5].
    #[arg(long, value_name = "UNITS", value_parser = parse_capacity, allow_hyphen_values = true)]
    pub(crate) write_capacity: Option<u64>,
    /// Ask nothing: use the defaults for what was not given, and apply without asking.
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How to print the plan and what was done: text, or one JSON document.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
    /// Archive into this existing (or new) table instead of <stream>-archive-<MODE>: its key
    /// schema is checked, and the stream gets the ArchiveTableName tag.
    #[arg(long, value_name = "NAME", value_parser = parse_table)]
    pub(crate) table: Option<TableName>,
    /// Archive payloads too large for a DynamoDB item (over about 300 KB) in this S3 bucket,
    /// under PREFIX, the item pointing at them: the bucket is checked (it must exist and
    /// take writes), and the stream gets the ArchiveOverflow tag.
    #[arg(long, value_name = "BUCKET[/PREFIX]", value_parser = parse_overflow_target, conflicts_with = "no_overflow")]
    pub(crate) overflow_bucket: Option<OverflowTarget>,
    /// Archive payloads too large for an item as oversize markers again (their bytes are
    /// not kept): removes the stream's ArchiveOverflow tag.
    #[arg(long)]
    pub(crate) no_overflow: bool,
    /// Archive every record also as Parquet files in this S3 bucket, under PREFIX (the
    /// archive for years at S3 prices, readable by Athena, Spark, DuckDB and kinarch's
    /// --source parquet): the bucket is checked (it must exist and take writes), and the
    /// stream gets the ArchiveParquet tag.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_overflow_target, conflicts_with = "no_parquet")]
    pub(crate) parquet: Option<OverflowTarget>,
    /// Stop writing Parquet files (those written are kept): removes the stream's
    /// ArchiveParquet tag.
    #[arg(long)]
    pub(crate) no_parquet: bool,
    /// Move the stream's Parquet files to S3 Glacier Instant Retrieval DAYS days after they
    /// are written (a lifecycle rule kinarch-parquet-<stream> on their prefix; the bucket's
    /// other rules are kept): reads keep working, in milliseconds, at a lower storage price
    /// and a higher read price.
    #[arg(long, value_name = "DAYS", value_parser = parse_cold_days, conflicts_with_all = ["no_parquet_cold", "no_parquet"])]
    pub(crate) parquet_cold_after: Option<u64>,
    /// Remove that lifecycle rule (files moved already stay where they are).
    #[arg(long)]
    pub(crate) no_parquet_cold: bool,
    /// Switch on the table's point-in-time recovery (continuous backups), which
    /// `kinarch export` reads from. Never switched off by setup.
    #[arg(long)]
    pub(crate) pitr: bool,
    /// Add a time index (GSI kinarch-arrival-time: shardId, approximateArrivalTimestamp) so
    /// that scan and reinject read an arrival window with a Query per shard instead of a
    /// Scan of the table; on an existing table, waits until DynamoDB has filled it.
    #[arg(long)]
    pub(crate) time_index: bool,
}

/// Table billing as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BillingArg {
    /// Pay per request (PAY_PER_REQUEST).
    OnDemand,
    /// Provisioned read and write capacity.
    Provisioned,
}

/// Which table a reading command takes as the stream's archive: the one of every command
/// that reads one (`status`, `query`, `scan`, `reinject`, `export`).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ArchiveTableArgs {
    /// Read this table as the archive (its mode from its key schema), whatever the stream's
    /// tags say; needed when the stream is gone and several tables could be its archive.
    #[arg(long, value_name = "NAME", value_parser = parse_table)]
    pub(crate) table: Option<TableName>,
    /// Read the table even when its ArchivedStream tag names another stream (kinarch setup
    /// tags each archive table with its stream; without --force such a table is refused).
    #[arg(long)]
    pub(crate) force: bool,
    /// The stream's Parquet archive is under s3://BUCKET[/PREFIX], whatever its
    /// ArchiveParquet tag says (or when the stream is gone).
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = parse_overflow_target, conflicts_with = "table")]
    pub(crate) parquet: Option<OverflowTarget>,
}

/// `kinarch status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// The Kinesis stream.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Which table is the archive.
    #[command(flatten)]
    pub(crate) archive: ArchiveTableArgs,
    /// How to print the status: text, or one JSON document (with "healthy" and "problems").
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// `kinarch export`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExportArgs {
    /// The Kinesis stream whose archive is exported (it may be gone).
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Where DynamoDB writes the export: s3://BUCKET or s3://BUCKET/PREFIX.
    #[arg(long = "s3", value_name = "S3_URL", value_parser = parse_s3_prefix)]
    pub(crate) destination: S3Prefix,
    /// Which table is the archive.
    #[command(flatten)]
    pub(crate) archive: ArchiveTableArgs,
    /// Return once the export started, without waiting for it to complete.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Print a CREATE EXTERNAL TABLE for Athena over the exported files (standard output).
    #[arg(long)]
    pub(crate) print_athena_ddl: bool,
    /// Say what would be exported and where, and check point-in-time recovery; start nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How to print the result: text (standard error), or one JSON document (standard output).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// `kinarch list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ListArgs {
    /// How to print the archives: text, or one JSON document.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// Which records `query`, `scan` and `reinject` read, and how: one set of flags, turned into
/// one [`Selection`](kinarch_core::Selection) by `commands::selection`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Selection")]
pub(crate) struct SelectionArgs {
    /// Only the records of this partition key (one Query instead of a Scan; `-k -dash` for a
    /// key that starts with '-').
    #[arg(short = 'k', long = "partition-key", value_name = "KEY", value_parser = parse_partition_key, allow_hyphen_values = true, conflicts_with_all = ["segments", "segment", "segments_total", "no_time_index"])]
    pub(crate) key: Option<String>,
    /// Only records from this sequence number on (inclusive; numeric comparison).
    #[arg(long = "from-seq", alias = "from", value_name = "SEQ", value_parser = parse_sequence, allow_hyphen_values = true)]
    pub(crate) from_seq: Option<SequenceNumber>,
    /// Only records up to this sequence number (inclusive; numeric comparison).
    #[arg(long = "to-seq", alias = "to", value_name = "SEQ", value_parser = parse_sequence, allow_hyphen_values = true)]
    pub(crate) to_seq: Option<SequenceNumber>,
    /// Only records that reached Kinesis at or after TIME (see TIME in `kinarch scan --help`).
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) arrived_after: Option<TimeArg>,
    /// Only records that reached Kinesis before TIME (exclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) arrived_before: Option<TimeArg>,
    /// Only records archived at or after TIME.
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) archived_after: Option<TimeArg>,
    /// Only records archived before TIME (exclusive).
    #[arg(long, value_name = "TIME", value_parser = parse_selection_time, allow_hyphen_values = true)]
    pub(crate) archived_before: Option<TimeArg>,
    /// At most N records.
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_limit, allow_hyphen_values = true)]
    pub(crate) limit: Option<NonZeroUsize>,
    /// Scan the table in N parallel segments (1 to 1000).
    #[arg(long, value_name = "N", value_parser = parse_segments, allow_hyphen_values = true)]
    pub(crate) segments: Option<u32>,
    /// Read only segment I of N of the table's parallel scan (0 <= I < N <= 1000000): one
    /// worker of N. Each partition key lives in exactly one segment, so its order holds per
    /// worker, and N workers together read every record once. An arrival window read
    /// through the time index is split by shard instead (shards related by a reshard stay
    /// together).
    #[arg(long, value_name = "I/N", value_parser = parse_worker_segment, conflicts_with_all = ["segments", "segments_total"])]
    pub(crate) segment: Option<WorkerSegment>,
    /// With N workers of an AWS Batch array job: read segment AWS_BATCH_JOB_ARRAY_INDEX of N.
    #[arg(long, value_name = "N", value_parser = parse_segments_total, conflicts_with = "segments")]
    pub(crate) segments_total: Option<u32>,
    /// Only the records of the partition keys in FILE, one per line ('-': standard input),
    /// read key by key in that order (one Query per key from the table).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "segments", "segment", "segments_total"])]
    pub(crate) keys_from: Option<PathBuf>,
    /// Only records whose payload, parsed as JSON, the JMESPath expression EXPR selects
    /// (a truthy result): --where "type == 'refund' && amount > `100`". Payloads that are
    /// not JSON are not selected (counted at the end; -v names them).
    #[arg(long = "where", value_name = "EXPR", value_parser = parse_where, allow_hyphen_values = true)]
    pub(crate) content: Option<ContentFilter>,
    /// Which store to read: auto (the table when the stream's mode keeps one, else the
    /// Parquet archive), table, or parquet (every record ever archived to Parquet, also
    /// beyond the table's TTL; --no-time-index and --page-size do not apply).
    #[arg(id = "archive_source", long = "source", value_enum, value_name = "SOURCE", default_value_t = SourceArg::Auto)]
    pub(crate) read_from: SourceArg,
    /// Read an arrival window with a Scan of the table even when it has a time index.
    #[arg(long)]
    pub(crate) no_time_index: bool,
    /// Items read per DynamoDB request [default: up to 1 MB per request]. Smaller pages
    /// spread the reads of a provisioned table over time.
    #[arg(long, value_name = "ITEMS", value_parser = parse_page_size, allow_hyphen_values = true)]
    pub(crate) page_size: Option<u32>,
}

/// Which store of an archive is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SourceArg {
    /// The table when the stream's mode keeps one, else the Parquet archive.
    Auto,
    /// The DynamoDB table.
    Table,
    /// The Parquet files in S3.
    Parquet,
}

/// Options shared by `query` and `scan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct OutputArgs {
    /// How to print each record.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Data)]
    pub(crate) output: OutputFormat,
    /// What follows each record of --output data or base64 (escapes \n \t \r \0 \\):
    /// '\0' keeps records with newlines apart, as `xargs -0` reads them.
    #[arg(long, value_name = "STR", default_value = "\\n", value_parser = parse_delimiter, allow_hyphen_values = true)]
    pub(crate) delimiter: Delimiter,
    /// Print each record by this kcat-style format instead of --output: %k key, %s payload,
    /// %S payload size, %o sequence number, %T arrival time (RFC 3339), %h shard, %u
    /// lastUpdate, %% a percent sign; escapes \n \t \r \0 \\. Nothing is added after a
    /// record: end with \n for one line each, e.g. --format '%k\t%o\t%T\t%s\n'.
    #[arg(long, value_name = "FMT", value_parser = parse_format, conflicts_with_all = ["output", "delimiter"], allow_hyphen_values = true)]
    pub(crate) format: Option<crate::output::LineFormat>,
    /// Do not fetch payloads archived in S3 (records over the item limit): --output jsonl
    /// shows their recordLocation and recordSize; other formats skip them with a warning.
    #[arg(long)]
    pub(crate) no_fetch: bool,
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// The record's bytes as they are, then a newline.
    Data,
    /// One JSON object per line: every attribute; the bytes as base64 in "recordData" and,
    /// when they are UTF-8, as "text".
    Jsonl,
    /// The record's bytes in standard base64, one line per record.
    Base64,
}

/// `kinarch query`.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueryArgs {
    /// The Kinesis stream whose archive is read.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// The records' partition key (or -k KEY; a key that starts with '-' needs -k).
    #[arg(value_name = "PARTITION_KEY", value_parser = parse_partition_key, required_unless_present = "key", conflicts_with = "key", help_heading = None)]
    pub(crate) partition_key: Option<String>,
    /// Which records.
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// Which table is the archive.
    #[command(flatten)]
    pub(crate) archive: ArchiveTableArgs,
    /// Format, delimiter, fetching.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `kinarch scan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanArgs {
    /// The Kinesis stream whose archive is read.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Which records.
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// Which table is the archive.
    #[command(flatten)]
    pub(crate) archive: ArchiveTableArgs,
    /// Format, delimiter, fetching.
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// `kinarch reinject`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReinjectArgs {
    /// The stream whose archive is read.
    #[arg(value_name = "STREAM", value_parser = parse_stream)]
    pub(crate) source: StreamArg,
    /// The stream to send the records to, a name or an ARN of any account and region
    /// [default: the source stream].
    #[arg(long, value_name = "STREAM", value_parser = parse_stream)]
    pub(crate) target: Option<StreamArg>,
    /// The target's region, when it is not the source's and --target is a name.
    #[arg(long, value_name = "REGION", help_heading = "Target")]
    pub(crate) target_region: Option<String>,
    /// Assume this role (STS AssumeRole, with the caller's credentials) for the target's
    /// calls only; the archive is still read with the caller's credentials.
    #[arg(long, value_name = "ARN", value_parser = parse_role_arn, help_heading = "Target")]
    pub(crate) target_role_arn: Option<String>,
    /// The external id the role's trust policy asks for.
    #[arg(
        long,
        value_name = "ID",
        requires = "target_role_arn",
        help_heading = "Target"
    )]
    pub(crate) target_external_id: Option<String>,
    /// Invoke this Lambda function (a name or an ARN) with the records, in the events Lambda's
    /// Kinesis event source mapping delivers, instead of sending them to a stream.
    #[arg(long, value_name = "NAME|ARN", conflicts_with_all = ["target", "metadata", "verify", "max_shard_load", "target_region", "target_role_arn"], help_heading = "Function target")]
    pub(crate) target_function: Option<String>,
    /// With --target-function: records per event (1 to 10000; events also stay within 6 MB).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_function_batch_size, allow_hyphen_values = true, requires = "target_function", help_heading = "Function target")]
    pub(crate) batch_size: usize,
    /// With --target-function: invocations of a failed batch from the same first record
    /// before its shard stops (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = parse_function_attempts, allow_hyphen_values = true, requires = "target_function", help_heading = "Function target")]
    pub(crate) function_attempts: u32,
    /// Which table is the archive.
    #[command(flatten)]
    pub(crate) archive: ArchiveTableArgs,

    /// Which records.
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,

    /// Frame each record with its original metadata: <sep><json><sep><original bytes>.
    #[arg(long, help_heading = "Framing")]
    pub(crate) metadata: bool,
    /// The one-byte separator of --metadata framing.
    #[arg(long, value_name = "CHAR", default_value = "|", value_parser = parse_separator, requires = "metadata", help_heading = "Framing")]
    pub(crate) separator: u8,

    /// Send at most N records per second.
    #[arg(long, value_name = "N", value_parser = parse_rate, allow_hyphen_values = true, help_heading = "Pace")]
    pub(crate) rate: Option<NonZeroU32>,
    /// original: reproduce the gaps between the records' arrival times (across all shards,
    /// merged by arrival time). The selection is read whole and ordered by arrival first, so
    /// give it a time window.
    #[arg(long, value_enum, value_name = "PACE", help_heading = "Pace")]
    pub(crate) pace: Option<Pace>,
    /// With --pace original: divide the gaps by F (10: ten times faster; 0.5: half as fast).
    #[arg(long, value_name = "F", value_parser = parse_speed, requires = "pace", help_heading = "Pace")]
    pub(crate) speed: Option<f64>,
    /// PutRecords calls in flight at once (1 to 64); with --target-function, source shards
    /// delivered at once (one batch in flight each).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = parse_concurrency, allow_hyphen_values = true, help_heading = "Pace")]
    pub(crate) concurrency: usize,
    /// Hold each target shard to PCT percent of its write limit (1,000 records and 1 MiB a
    /// second), per shard, by each record's hash key; a shard that throttles gets half its
    /// budget, then a tenth of its cap back per calm second. Leaves room for live producers.
    #[arg(long, value_name = "PCT", value_parser = parse_load_share, help_heading = "Pace")]
    pub(crate) max_shard_load: Option<LoadShare>,
    /// Show what would be sent; send nothing.
    #[arg(long, help_heading = "Pace")]
    pub(crate) dry_run: bool,
    /// Read the selection and print what a replay would send (records, bytes, the least
    /// PutRecords calls, shards, keys, first and last arrival) and how long it takes at the
    /// given --pace/--speed and --rate; send nothing.
    #[arg(long, conflicts_with = "dry_run", help_heading = "Pace")]
    pub(crate) estimate: bool,
    /// Make the replay resumable: PATH records, per partition key, the last record Kinesis
    /// accepted; a rerun with the same selection, target and PATH sends only the rest. A
    /// journal made for another selection or target is refused. Give absolute times with
    /// it (a relative time like 2h is another time in the rerun).
    #[arg(long, value_name = "PATH", value_parser = parse_path, help_heading = "Pace")]
    pub(crate) journal: Option<PathBuf>,
    /// After the replay, read what was sent back from the target (GetRecords, from the
    /// lowest sequence number sent into each shard to the highest) and check that every
    /// record is there once, with its bytes, in its key's order; records others wrote are
    /// ignored. Exits 1 if any is missing, altered, duplicated or out of order. With
    /// --journal, the records of earlier runs are checked too (kept in PATH.sent).
    #[arg(long, conflicts_with_all = ["dry_run", "estimate"])]
    pub(crate) verify: bool,
    /// Replay into the source stream without --metadata without asking (the records are
    /// archived again as new records).
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// How to print the summary: text (on standard error), or one JSON document (on
    /// standard output).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// `kinarch completions`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// `kinarch archive`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ArchiveArgs {
    /// The Kinesis stream to archive (set up with `kinarch setup`).
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// Where shards without a checkpoint start: TRIM_HORIZON (the oldest record kept),
    /// LATEST (only records that arrive from now on), or a time (the forms of `kinarch scan
    /// --help`).
    #[arg(long, alias = "from", value_name = "POSITION", default_value = "TRIM_HORIZON", value_parser = parse_start, allow_hyphen_values = true)]
    pub(crate) start_at: StartPosition,
    /// Keep reading after catching up, until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub(crate) follow: bool,
    /// Records per GetRecords call and per batch written (1 to 10000). Bounds memory: at
    /// most 8 batches are held at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE, value_parser = parse_batch_size, allow_hyphen_values = true)]
    pub(crate) batch_size: usize,
    /// Keep checkpoints in this DynamoDB table [default: <archive table>-checkpoints].
    #[arg(long, value_name = "NAME", value_parser = parse_table, conflicts_with = "checkpoint_file")]
    pub(crate) checkpoint_table: Option<TableName>,
    /// Keep checkpoints in this local JSON file instead of a DynamoDB table.
    #[arg(long, value_name = "PATH", value_parser = parse_path)]
    pub(crate) checkpoint_file: Option<PathBuf>,
    /// Check the setup and show where each shard would start (its checkpoint, or
    /// --start-at); read nothing, write nothing (no checkpoint table is created).
    #[arg(long, conflicts_with = "follow")]
    pub(crate) dry_run: bool,
    /// How to print the summary at the end (on standard output).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

/// How a replay is paced (`--pace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Pace {
    /// The gaps between the records' arrival times.
    Original,
}

/// How a summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SummaryFormat {
    /// Lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// `kinarch put`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PutArgs {
    /// The Kinesis stream to write to.
    #[arg(value_parser = parse_stream)]
    pub(crate) stream: StreamArg,
    /// The partition key of every record.
    #[arg(short = 'k', long, value_name = "KEY", value_parser = parse_partition_key, allow_hyphen_values = true, required_unless_present = "key_field", conflicts_with = "key_field")]
    pub(crate) partition_key: Option<String>,
    /// Take each record's partition key from this field of the line, a JSON object; a dotted
    /// path (user.id) reaches into nested objects. A number is used as written (1.5e3).
    #[arg(long, value_name = "PATH", conflicts_with = "base64")]
    pub(crate) key_field: Option<String>,
    /// Each line is the standard base64 of the record bytes, on one line (base64 -w0).
    #[arg(long)]
    pub(crate) base64: bool,
    /// With --base64, take every line as one record even when the lines look like wrapped
    /// base64 (records of exactly 57 or 48 bytes encode to lines of 76 or 64 characters,
    /// the widths `base64` wraps at).
    #[arg(long, requires = "base64")]
    pub(crate) no_wrap_check: bool,
    /// Batch records freely: order per partition key is not guaranteed, but 500 records of
    /// one key go in one PutRecords call instead of 500 calls.
    #[arg(long)]
    pub(crate) unordered: bool,
    /// PutRecords calls in flight at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_concurrency, allow_hyphen_values = true)]
    pub(crate) concurrency: usize,
    /// Read and check every line, send nothing; says how many records would be sent.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How to print the summary: text (on standard error), or one JSON document (on
    /// standard output).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = SummaryFormat::Text)]
    pub(crate) output: SummaryFormat,
}

// ---- value parsers: a bad value is a usage error that says what is allowed ----------------

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kinarch").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn setup_takes_the_original_positional_form() {
        let cli = parse(&["setup", "orders", "all", "eu-west-1", "--ttl-seconds", "60"]).unwrap();
        let Command::Setup(args) = cli.command else {
            panic!("setup")
        };
        assert_eq!(args.stream.as_str(), "orders");
        assert_eq!(args.mode, ArchiveMode::All);
        assert_eq!(args.setup_region.as_deref(), Some("eu-west-1"));
        assert_eq!(args.ttl_seconds.unwrap().seconds(), 60);
    }

    #[test]
    fn bad_values_are_usage_errors_that_say_what_is_allowed() {
        let cases: &[(&[&str], &str)] = &[
            (&["setup", "orders", "EVERYTHING"], "ALL"),
            (&["setup", "bad name", "ALL"], "[a-zA-Z0-9_.-]+"),
            (&["setup", "orders", "ALL", "--ttl-seconds", "0"], "1 to"),
            (
                &["setup", "orders", "ALL", "--ttl-seconds", "60", "--no-ttl"],
                "--no-ttl",
            ),
            (&["query", "orders", "k", "--from", "12a"], "not a digit"),
            (&["query", "orders", "k", "--limit", "0"], "at least 1"),
            (
                &["query", "orders", "k", "-n", "99999999999999999999999"],
                "too large",
            ),
            (&["reinject", "orders", "--rate", "4294967296"], "too large"),
            (
                &["put", "orders", "-k", "k", "--concurrency", "65"],
                "too large",
            ),
            (&["query", "orders", "k", "-k", "j"], "--partition-key"),
            (&["query", "orders"], "PARTITION_KEY"),
            (&["scan", "orders", "--format", "%q"], "%k key"),
            (&["scan", "orders", "--delimiter", "\\x"], "escape"),
            (
                &["scan", "orders", "--format", "%s", "-o", "jsonl"],
                "--output",
            ),
            (&["archive", "orders", "--dry-run", "--follow"], "--follow"),
            (&["status", "arn:aws:sqs:eu-west-1:123456789012:q"], "ARN"),
            // After `--` everything is positional: options there are refused, not swallowed.
            (
                &[
                    "query",
                    "orders",
                    "--",
                    "-dash",
                    "--endpoint-url",
                    "http://x",
                ],
                "unexpected argument",
            ),
            (&["query", "orders", ""], "1 to 256"),
            (
                &["scan", "orders", "--arrived-after", "yesterday"],
                "RFC 3339",
            ),
            (&["scan", "orders", "--segments", "0"], "1 to 1000"),
            (&["scan", "orders", "--output", "xml"], "data"),
            (&["status", "orders", "--region", "EU WEST"], "eu-west-1"),
            (
                &["status", "orders", "--endpoint-url", "localhost:4566"],
                "http://",
            ),
            (&["status", "orders", "-v", "-q"], "--quiet"),
            (&["setup", "orders", "ALL", "EU"], "eu-west-1"),
            (
                &["archive", "orders", "--from", "yesterday"],
                "TRIM_HORIZON",
            ),
            (&["archive", "orders", "--batch-size", "0"], "1 to 10000"),
            (
                &["archive", "orders", "--batch-size", "10001"],
                "1 to 10000",
            ),
            (&["archive", "orders", "--output", "yaml"], "json"),
            (
                &["archive", "orders", "--checkpoint-table", "x"],
                "3 to 255",
            ),
            (
                &[
                    "archive",
                    "orders",
                    "--checkpoint-table",
                    "abc",
                    "--checkpoint-file",
                    "c.json",
                ],
                "--checkpoint-file",
            ),
            (&["put", "orders"], "--partition-key"),
            (
                &["put", "orders", "--partition-key", "k", "--key-field", "id"],
                "--key-field",
            ),
            (
                &["put", "orders", "--key-field", "id", "--base64"],
                "--base64",
            ),
            (&["put", "orders", "--partition-key", ""], "1 to 256"),
        ];
        for (args, expected) in cases {
            let err = parse(args).expect_err(&format!("{args:?} is refused"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert_ne!(err.kind(), ErrorKind::DisplayHelp);
            let text = err.to_string();
            assert!(text.contains(expected), "{args:?}: {text}");
        }
    }

    #[test]
    fn archive_defaults_and_start_positions() {
        let cli = parse(&["archive", "orders"]).unwrap();
        let Command::Archive(args) = cli.command else {
            panic!("archive")
        };
        assert_eq!(args.start_at, StartPosition::TrimHorizon);
        assert_eq!(args.batch_size, DEFAULT_BATCH_SIZE);
        assert!(!args.follow);
        assert_eq!(args.output, SummaryFormat::Text);
        let cli = parse(&[
            "archive",
            "orders",
            "--from",
            "latest",
            "--follow",
            "--batch-size",
            "10000",
            "--checkpoint-file",
            "c.json",
        ])
        .unwrap();
        let Command::Archive(args) = cli.command else {
            panic!("archive")
        };
        assert_eq!(args.start_at, StartPosition::Latest);
        assert_eq!(args.batch_size, 10000);
        assert_eq!(args.checkpoint_file, Some(PathBuf::from("c.json")));
    }

    #[test]
    fn one_vocabulary_and_the_old_spellings_as_hidden_aliases() {
        let Command::Query(args) = parse(&["query", "orders", "-k", "-dash", "--to-seq", "9"])
            .unwrap()
            .command
        else {
            panic!("query")
        };
        assert_eq!(args.selection.key.as_deref(), Some("-dash"));
        assert_eq!(args.selection.to_seq.unwrap().as_str(), "9");
        let Command::Query(args) = parse(&["query", "orders", "k", "--from", "3", "--to", "4"])
            .unwrap()
            .command
        else {
            panic!("query")
        };
        assert_eq!(
            (
                args.selection.from_seq.unwrap().as_str(),
                args.selection.to_seq.unwrap().as_str()
            ),
            ("3", "4")
        );
        let Command::Reinject(args) = parse(&[
            "reinject", "orders", "-k", "k", "--from", "3", "--to-seq", "4", "-n", "2",
        ])
        .unwrap()
        .command
        else {
            panic!("reinject")
        };
        assert_eq!(args.selection.from_seq.unwrap().as_str(), "3");
        assert_eq!(args.selection.to_seq.unwrap().as_str(), "4");
        let Command::Archive(args) = parse(&["archive", "orders", "--from", "LATEST"])
            .unwrap()
            .command
        else {
            panic!("archive")
        };
        assert_eq!(args.start_at, StartPosition::Latest);
        let Command::Status(args) = parse(&[
            "status",
            "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
            "-o",
            "json",
        ])
        .unwrap()
        .command
        else {
            panic!("status")
        };
        assert_eq!(args.stream.as_str(), "orders");
        assert_eq!(args.stream.region.as_deref(), Some("eu-west-1"));
        assert_eq!(args.output, SummaryFormat::Json);
        // The old spellings work but are not shown.
        let help = Cli::command()
            .find_subcommand_mut("archive")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("--start-at") && !help.contains("--from "),
            "{help}"
        );
    }

    /// Every example line of every help fits 80 columns, so no terminal of that width breaks
    /// a command in the middle, and `--format` examples show `\t` and `\n` as typed, not a
    /// real tab or line break.
    #[test]
    fn help_examples_fit_80_columns_and_show_escapes_as_typed() {
        let mut command = Cli::command().term_width(80);
        command.build();
        let mut helps = vec![command.render_long_help().to_string()];
        for sub in command.get_subcommands_mut() {
            helps.push(sub.clone().term_width(80).render_long_help().to_string());
        }
        for help in &helps {
            let examples = help.split("Examples:").nth(1).unwrap_or("");
            for line in examples.lines() {
                assert!(line.chars().count() <= 80, "{line:?}");
                assert!(!line.contains('\t'), "a real tab in {line:?}");
                // A continuation line is indented under its command.
                if !line.trim().is_empty() {
                    assert!(
                        line.starts_with("  kinarch")
                            || line.starts_with("      ")
                            || line.starts_with("  echo")
                            || line.starts_with("  tail")
                            || line.starts_with("  base64"),
                        "an example line broken by the help's wrapping: {line:?}"
                    );
                }
            }
        }
        let query = helps.iter().find(|h| h.contains("--format '%o")).unwrap();
        assert!(query.contains("--format '%o\\t%T\\t%s\\n'"), "{query}");
    }

    #[test]
    fn setup_region_positional_and_global_region_are_distinct_arguments() {
        let cli = parse(&[
            "setup",
            "orders",
            "ALL",
            "eu-west-1",
            "--region",
            "us-east-1",
        ])
        .unwrap();
        let Command::Setup(args) = cli.command else {
            panic!("setup")
        };
        assert_eq!(args.setup_region.as_deref(), Some("eu-west-1"));
        assert_eq!(cli.global.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&[
            "-vv",
            "scan",
            "orders",
            "--region",
            "us-east-1",
            "--limit",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.region.as_deref(), Some("us-east-1"));
        let Command::Scan(args) = cli.command else {
            panic!("scan")
        };
        assert_eq!(args.selection.limit.map(NonZeroUsize::get), Some(3));
        assert_eq!(args.selection.segments, None, "one reader unless asked");
        assert_eq!(args.output.output, OutputFormat::Data);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever is typed, parsing answers with a value or a usage error, never a panic.
            #[test]
            fn arbitrary_arguments_never_panic(
                stream in "\\PC{0,40}",
                key in "\\PC{0,40}",
                value in "\\PC{0,40}",
                flag in prop::sample::select(vec![
                    "--from", "--to", "--limit", "--output", "--page-size", "--region", "--endpoint-url",
                ]),
            ) {
                let _ = parse(&["query", &stream, &key, flag, &value]);
                let _ = parse(&["scan", &stream, "--arrived-after", &value]);
                let _ = parse(&["scan", &stream, "--segments", &value]);
                let _ = parse(&["setup", &stream, &key, &value, "--ttl-seconds", &value]);
                let _ = parse(&["reinject", &stream, "--metadata", "--separator", &value, "--rate", &value]);
            }

            /// Valid values come back as they were typed (a stream name may start with '-',
            /// so positionals follow `--`, as the help says).
            #[test]
            fn valid_values_round_trip(
                stream in "[a-zA-Z0-9_.-]{1,128}",
                seq in "0|[1-9][0-9]{0,128}",
                limit in 1usize..1_000_000,
                epoch in 0i64..4_000_000_000,
            ) {
                let limit_text = limit.to_string();
                let cli = parse(&["query", "--from", &seq, "--limit", &limit_text, "--", &stream, "key"]).unwrap();
                let Command::Query(args) = cli.command else { panic!("query") };
                prop_assert_eq!(args.stream.as_str(), stream.as_str());
                prop_assert_eq!(args.selection.from_seq.as_ref().map(|s| s.as_str()), Some(seq.as_str()));
                prop_assert_eq!(args.selection.limit.unwrap().get(), limit);

                let epoch_text = epoch.to_string();
                let cli = parse(&["scan", "--arrived-after", &epoch_text, "--", &stream]).unwrap();
                let Command::Scan(args) = cli.command else { panic!("scan") };
                prop_assert_eq!(args.selection.arrived_after.unwrap().time.timestamp(), epoch);
            }
        }
    }
}
