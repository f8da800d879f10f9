//! `kinarch put <stream>`: one record per line of standard input (see
//! `kinarch_core::replay::put`).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::Stream;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::read::MAX_PARTITION_KEY_CHARS;
use kinarch_core::replay::put::{PutInput, PutOptions, PutReport, put_records};
use kinarch_core::replay::sender::MAX_RECORD_BYTES;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};

use crate::cli::values::thousands;
use crate::cli::{GlobalArgs, PutArgs, SummaryFormat};
use crate::failure::Failure;
use crate::logging::labelled;
use crate::output::{count, decimal, print_json, rate};
use crate::progress::Progress;
use tracing::Level;

/// At most this many problems are listed one by one; the rest are counted.
const LISTED_PROBLEMS: usize = 100;

/// How each line becomes a record.
#[derive(Debug, Clone)]
enum KeyFrom {
    /// Every record gets this key.
    Fixed(String),
    /// The key is this field of the line, a JSON object.
    Field(String),
}

/// Lines that could not be made into records: (line number, why).
#[derive(Debug, Default)]
struct Problems {
    count: u64,
    listed: Vec<(u64, String)>,
}

impl Problems {
    fn add(&mut self, line: u64, why: String) {
        self.count += 1;
        if self.listed.len() < LISTED_PROBLEMS {
            self.listed.push((line, why));
        }
    }
}

/// Reads standard input, sends the records, reports what could not be sent.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: PutArgs,
) -> Result<(), Failure> {
    let kinesis = aws_sdk_kinesis::Client::new(sdk);
    // Fails early and clearly for an unknown stream, even when the input is empty.
    describe_stream_summary(&kinesis, &args.stream).await?;
    let stdin = tokio::io::stdin();
    if std::io::stdin().is_terminal() && !global.quiet {
        crate::say("reading records from standard input, one per line, Ctrl-D to end");
    }
    let key_from = match (args.partition_key, args.key_field) {
        (Some(key), _) => KeyFrom::Fixed(key),
        (None, Some(field)) => KeyFrom::Field(field),
        (None, None) => {
            return Err(Failure::Usage(
                "give --partition-key KEY or --key-field NAME".into(),
            ));
        }
    };
    let problems = Arc::new(Mutex::new(Problems::default()));
    let records = records(
        stdin,
        key_from,
        args.base64,
        !args.no_wrap_check,
        Arc::clone(&problems),
    );
    let json = args.output == SummaryFormat::Json;
    let mut progress = Progress::start_status(global.quiet || json);
    // One call in flight by default: moto (the local emulator of the demo and tests)
    // numbers concurrent PutRecords calls into one shard wrongly.
    let options = PutOptions {
        concurrency: args.concurrency,
        ordered: !args.unordered,
        dry_run: args.dry_run,
        ..PutOptions::default()
    };
    let report = put_records(&kinesis, &args.stream, records, &options, |p| {
        progress.set(p.sent, format!("{} failed", p.failed))
    })
    .await;
    progress.clear();
    let report = report?;
    let problems = std::mem::take(&mut *problems.lock().expect("problems lock"));
    for (line, why) in &problems.listed {
        crate::say(&labelled(
            Level::ERROR,
            &format!("line {line}: {why}; not sent"),
        ));
    }
    for failure in report.failed.iter().take(LISTED_PROBLEMS) {
        crate::say(&labelled(
            Level::ERROR,
            &format!(
                "line {} (partition key {:?}): {}",
                failure.position, failure.partition_key, failure.reason
            ),
        ));
    }
    let failed = problems.count + report.failed.len() as u64;
    if json {
        print_json(&report_json(&report, &problems, &args.stream, args.dry_run))?;
    } else if !global.quiet {
        crate::say(&summary_line(&report, &args.stream, args.dry_run));
    }
    if failed > 0 {
        return Err(Failure::Runtime(format!(
            "{failed} line(s) were not sent (listed above); the {} other records were",
            report.sent
        )));
    }
    Ok(())
}

/// `put 1,200 records into stream orders with 3 PutRecords calls in 1.2 s (1,000.0/s)`.
fn summary_line(report: &PutReport, stream: &kinarch_core::StreamName, dry_run: bool) -> String {
    let seconds = report.elapsed.as_secs_f64();
    if dry_run {
        return format!(
            "dry run: would put {} ({} bytes) into stream {stream}; nothing was sent",
            count(report.sent, "record"),
            thousands(report.bytes)
        );
    }
    format!(
        "put {} into stream {stream} with {} in {} s ({})",
        count(report.sent, "record"),
        count(report.requests, "PutRecords call"),
        decimal(seconds, 1),
        rate(report.sent, seconds)
    )
}

/// `put -o json`: `failed` counts every line not sent, `failures` lists the first of them
/// (as standard error does) by line number.
fn report_json(
    report: &PutReport,
    problems: &Problems,
    stream: &kinarch_core::StreamName,
    dry_run: bool,
) -> Value {
    let unreadable = problems
        .listed
        .iter()
        .map(|(line, why)| json!({"line": line, "partitionKey": null, "reason": why}));
    let refused =
        report.failed.iter().take(LISTED_PROBLEMS).map(
            |f| json!({"line": f.position, "partitionKey": f.partition_key, "reason": f.reason}),
        );
    json!({
        "stream": stream.as_str(),
        "dryRun": dry_run,
        "read": report.read,
        "sent": if dry_run { 0 } else { report.sent },
        "wouldSend": if dry_run { Some(report.sent) } else { None },
        "failed": problems.count + report.failed.len() as u64,
        "failures": unreadable.chain(refused).collect::<Vec<_>>(),
        "bytes": report.bytes,
        "requests": report.requests,
        "seconds": report.elapsed.as_secs_f64(),
    })
}

/// What one read of a line found.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The input ended.
    End,
    /// A line, in the buffer without its line end.
    Complete,
    /// A line longer than the limit: not kept (its bytes were skipped to its end).
    TooLong,
}

/// Reads one line into `line` (without `\n` or `\r\n`), keeping at most `max` bytes:
/// a longer line is dropped as soon as it passes the limit and read on to its end without
/// being kept, so no line is buffered whole however long it is.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    line.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            break;
        }
        any = true;
        let (take, ends) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        // The limit counts the record's bytes; the line end is not one of them.
        let body = &available[..take];
        if !too_long && line.len() + body.len() > max + 2 {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(body);
        }
        reader.consume(take);
        if ends {
            break;
        }
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if !too_long && line.len() > max {
        too_long = true;
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Complete,
    })
}

/// The UTF-8 byte order mark some editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The widths base64 tools wrap lines at: GNU coreutils `base64` (76) and `openssl base64`
/// (64).
const WRAP_WIDTHS: [usize; 2] = [76, 64];

/// What [`WrapCheck`] says of a line.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// A line to decode as one record.
    Keep(u64, Vec<u8>),
    /// A line of wrapped base64: a piece of a record, not one.
    Wrapped(u64),
}

/// Tells wrapped base64 (`base64 file`, not `base64 -w0 file`) from one record per line.
///
/// The sign is a pair: a line of exactly a wrap width without `=` padding, followed by a
/// line no longer than it (the next piece of the same encoding). Such a line is held until
/// the next one comes (on `tail -f` input, it waits for it); a pair is refused with every
/// following line of the same width and the shorter line that ends the block, so no piece
/// of a wrapped record is ever sent. A single line of that width followed by a longer line
/// or the end of input is a record. Two unwrapped records in a row, the first of exactly 57
/// or 48 bytes and the second no longer, look the same and are refused too, with the same
/// hint: loudly, never sent as pieces; `--no-wrap-check` turns the check off for inputs of
/// such fixed-size records.
#[derive(Debug, Default)]
struct WrapCheck {
    held: Option<(u64, Vec<u8>)>,
    /// Inside a refused block of this width.
    block: Option<usize>,
}

impl WrapCheck {
    fn push(&mut self, number: u64, line: Vec<u8>) -> Vec<Verdict> {
        if let Some(width) = self.block {
            match line.len() {
                n if n == width => return vec![Verdict::Wrapped(number)],
                n if n < width => {
                    self.block = None;
                    return vec![Verdict::Wrapped(number)];
                }
                _ => self.block = None,
            }
        }
        let mut verdicts = Vec::new();
        if let Some((held_number, held)) = self.held.take() {
            if line.len() <= held.len() {
                self.block = (line.len() == held.len()).then_some(held.len());
                return vec![Verdict::Wrapped(held_number), Verdict::Wrapped(number)];
            }
            verdicts.push(Verdict::Keep(held_number, held));
        }
        if WRAP_WIDTHS.contains(&line.len()) && !line.ends_with(b"=") {
            self.held = Some((number, line));
        } else {
            verdicts.push(Verdict::Keep(number, line));
        }
        verdicts
    }

    fn finish(&mut self) -> Option<Verdict> {
        self.held
            .take()
            .map(|(number, line)| Verdict::Keep(number, line))
    }
}

/// The state of reading records from lines.
struct Reading<R> {
    reader: BufReader<R>,
    line_number: u64,
    line: Vec<u8>,
    /// Lines read and checked, waiting to become records.
    ready: std::collections::VecDeque<(u64, Vec<u8>)>,
    /// With `--base64`.
    wrap: Option<WrapCheck>,
    ended: bool,
}

/// The records of `input`, one per line; lines that cannot be records go to `problems`.
fn records(
    input: impl AsyncRead + Unpin,
    key_from: KeyFrom,
    base64: bool,
    check_wrapping: bool,
    problems: Arc<Mutex<Problems>>,
) -> impl Stream<Item = Result<PutInput, kinarch_core::Error>> {
    // A base64 line is a third longer than the record it encodes.
    let max = match base64 {
        true => MAX_RECORD_BYTES.div_ceil(3) * 4,
        false => MAX_RECORD_BYTES,
    };
    let state = Reading {
        reader: BufReader::with_capacity(256 * 1024, input),
        line_number: 0,
        line: Vec::new(),
        ready: Default::default(),
        wrap: (base64 && check_wrapping).then(WrapCheck::default),
        ended: false,
    };
    futures::stream::unfold(state, move |mut state| {
        let key_from = key_from.clone();
        let problems = Arc::clone(&problems);
        async move {
            let problem = |line: u64, why: String| {
                problems.lock().expect("problems lock").add(line, why);
            };
            loop {
                if let Some((number, line)) = state.ready.pop_front() {
                    match record(&line, &key_from, base64) {
                        Ok((partition_key, data)) => {
                            let input = PutInput {
                                position: number,
                                partition_key,
                                data,
                            };
                            return Some((Ok(input), state));
                        }
                        Err(why) => problem(number, why),
                    }
                    continue;
                }
                if state.ended {
                    return None;
                }
                match read_line(&mut state.reader, &mut state.line, max).await {
                    Ok(Line::End) => {
                        state.ended = true;
                        if let Some(Verdict::Keep(number, line)) =
                            state.wrap.as_mut().and_then(WrapCheck::finish)
                        {
                            state.ready.push_back((number, line));
                        }
                        continue;
                    }
                    Ok(Line::Complete) => {}
                    Ok(Line::TooLong) => {
                        state.line_number += 1;
                        problem(
                            state.line_number,
                            format!(
                                "the line is longer than {} bytes, the most a Kinesis record \
                                 holds{}",
                                thousands(max as u64),
                                if base64 { " once decoded" } else { "" }
                            ),
                        );
                        continue;
                    }
                    Err(err) => {
                        let error = kinarch_core::Error::Io {
                            context: "cannot read standard input".into(),
                            source: err,
                        };
                        return Some((Err(error), state));
                    }
                }
                state.line_number += 1;
                let number = state.line_number;
                let mut line = std::mem::take(&mut state.line);
                if number == 1 && line.starts_with(BOM) {
                    line.drain(..BOM.len());
                }
                if line.is_empty() {
                    continue;
                }
                match &mut state.wrap {
                    None => state.ready.push_back((number, line)),
                    Some(wrap) => {
                        for verdict in wrap.push(number, line) {
                            match verdict {
                                Verdict::Keep(number, line) => {
                                    state.ready.push_back((number, line))
                                }
                                Verdict::Wrapped(number) => problem(
                                    number,
                                    "the input looks like wrapped base64 (lines of 76 or 64 \
                                     characters, as `base64` and `openssl base64` write by \
                                     default): each line must be one whole record; encode \
                                     with `base64 -w0` (on macOS `base64 -b 0`). If every \
                                     line is one record (of exactly 57 or 48 bytes), pass \
                                     --no-wrap-check"
                                        .to_owned(),
                                ),
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The partition key and bytes of one line.
fn record(line: &[u8], key_from: &KeyFrom, base64: bool) -> Result<(String, Vec<u8>), String> {
    let key = match key_from {
        KeyFrom::Fixed(key) => key.clone(),
        KeyFrom::Field(field) => key_of(line, field)?,
    };
    let chars = key.chars().count();
    if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
        return Err(format!(
            "the partition key has {chars} characters; Kinesis takes 1 to {MAX_PARTITION_KEY_CHARS}"
        ));
    }
    let data = if base64 {
        let text = std::str::from_utf8(line)
            .map_err(|_| "the line is not base64 (it is not even text)".to_owned())?;
        STANDARD.decode(text).map_err(|e| {
            format!(
                "the line is not standard base64 ({e}); each line must be one whole record, \
                 unwrapped: encode with `base64 -w0` (on macOS `base64 -b 0`)"
            )
        })?
    } else {
        line.to_vec()
    };
    Ok((key, data))
}

/// The value at `path` (dotted: `user.id`) in a line holding a JSON object, as a partition
/// key. A number is taken as written (`1.5e3` stays `1.5e3`, `007` is not JSON), so the
/// key is the text the producer wrote, not a re-formatted float.
fn key_of(line: &[u8], path: &str) -> Result<String, String> {
    type Object<'a> = std::collections::HashMap<String, &'a RawValue>;
    let mut raw: &RawValue = serde_json::from_slice(line)
        .map_err(|e| format!("the line is not JSON ({e}), so it has no field {path:?}"))?;
    let mut walked = String::new();
    for part in path.split('.') {
        let what = if walked.is_empty() {
            "the line"
        } else {
            walked.as_str()
        };
        let object: Object = serde_json::from_str(raw.get())
            .map_err(|_| format!("{what} is not a JSON object, so it has no field {path:?}"))?;
        raw = object
            .get(part)
            .copied()
            .ok_or_else(|| match walked.is_empty() {
                true => format!("the JSON object has no field {path:?}"),
                false => format!("{walked} has no field {part:?}, so there is no {path:?}"),
            })?;
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
    }
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_err(|e| e.to_string()),
        Some(b't' | b'f') => Ok(text.to_owned()),
        Some(b'-' | b'0'..=b'9') => Ok(text.to_owned()),
        other => Err(format!(
            "field {path:?} is {}, not a string, number or boolean",
            match other {
                Some(b'n') => "null",
                Some(b'[') => "an array",
                _ => "an object",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn collect(input: &[u8], key_from: KeyFrom, base64: bool) -> (Vec<PutInput>, Problems) {
        let problems = Arc::new(Mutex::new(Problems::default()));
        let records: Vec<PutInput> = records(input, key_from, base64, true, Arc::clone(&problems))
            .map(|r| r.unwrap())
            .collect()
            .await;
        let problems = std::mem::take(&mut *problems.lock().unwrap());
        (records, problems)
    }

    #[tokio::test]
    async fn lines_are_records_byte_for_byte_and_empty_lines_are_skipped() {
        let input = b"\xEF\xBB\xBFfirst\n\nbinary \x00\xff\r\nlone \r kept\nlast without newline";
        let (records, problems) = collect(input, KeyFrom::Fixed("k".into()), false).await;
        assert_eq!(problems.count, 0);
        let lines: Vec<(u64, &[u8])> = records
            .iter()
            .map(|r| (r.position, r.data.as_slice()))
            .collect();
        assert_eq!(
            lines,
            [
                (1, &b"first"[..]),
                (3, &b"binary \x00\xff"[..]),
                (4, &b"lone \r kept"[..]),
                (5, &b"last without newline"[..])
            ]
        );
        assert!(records.iter().all(|r| r.partition_key == "k"));
    }

    #[tokio::test]
    async fn keys_come_from_a_json_field_and_bad_lines_are_named() {
        let input = b"{\"id\":\"a\",\"v\":1}\n{\"id\":7}\nnot json\n{\"v\":2}\n[1]\n{\"id\":null}\n{\"id\":\"\"}\n";
        let (records, problems) = collect(input, KeyFrom::Field("id".into()), false).await;
        let keys: Vec<(u64, &str)> = records
            .iter()
            .map(|r| (r.position, r.partition_key.as_str()))
            .collect();
        assert_eq!(keys, [(1, "a"), (2, "7")]);
        assert_eq!(records[0].data, b"{\"id\":\"a\",\"v\":1}");
        assert_eq!(problems.count, 5);
        let lines: Vec<u64> = problems.listed.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert!(problems.listed[0].1.contains("not JSON"));
        assert!(problems.listed[1].1.contains("no field \"id\""));
        assert!(problems.listed[3].1.contains("null"));
        assert!(problems.listed[4].1.contains("1 to 256"));
    }

    #[test]
    fn dotted_paths_and_numbers_as_written() {
        let line = br#"{"user":{"id":1.5e3,"name":"a\"b"},"n":-7,"ok":true}"#;
        assert_eq!(key_of(line, "user.id").unwrap(), "1.5e3");
        assert_eq!(key_of(line, "user.name").unwrap(), "a\"b");
        assert_eq!(key_of(line, "n").unwrap(), "-7");
        assert_eq!(key_of(line, "ok").unwrap(), "true");
        assert!(
            key_of(line, "user.missing")
                .unwrap_err()
                .contains("user has no field")
        );
        assert!(
            key_of(line, "n.x")
                .unwrap_err()
                .contains("n is not a JSON object")
        );
        assert!(key_of(line, "user").unwrap_err().contains("an object"));
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_dropped_without_being_kept() {
        let mut input = vec![b'x'; 300];
        input.extend_from_slice(b"\nshort\n");
        let mut reader = BufReader::with_capacity(16, &input[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 100).await.unwrap(),
            Line::TooLong
        );
        assert!(line.capacity() < 300, "never buffered whole");
        assert_eq!(
            read_line(&mut reader, &mut line, 100).await.unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"short");
        assert_eq!(
            read_line(&mut reader, &mut line, 100).await.unwrap(),
            Line::End
        );
        // The limit is on the record, not its line end.
        let exact = [&[b'y'; 100][..], b"\r\n"].concat();
        let mut reader = BufReader::new(&exact[..]);
        assert_eq!(
            read_line(&mut reader, &mut line, 100).await.unwrap(),
            Line::Complete
        );
        assert_eq!(line.len(), 100);
    }

    #[test]
    fn wrapped_base64_is_told_from_one_record_per_line() {
        let w76 = || vec![b'A'; 76];
        let verdicts = |lines: Vec<Vec<u8>>| {
            let mut check = WrapCheck::default();
            let mut out: Vec<Verdict> = lines
                .into_iter()
                .enumerate()
                .flat_map(|(i, line)| check.push(i as u64 + 1, line))
                .collect();
            out.extend(check.finish());
            out
        };
        // `base64` of a 200-byte file: 76, 76, 116 % 76... every piece refused.
        let wrapped = verdicts(vec![w76(), w76(), b"AAAA==".to_vec(), b"QUJD".to_vec()]);
        assert_eq!(
            wrapped,
            [
                Verdict::Wrapped(1),
                Verdict::Wrapped(2),
                Verdict::Wrapped(3),
                Verdict::Keep(4, b"QUJD".to_vec())
            ]
        );
        // A line of 76 followed by a longer one, or alone at the end, is a record.
        let longer = vec![b'B'; 80];
        assert_eq!(
            verdicts(vec![w76(), longer.clone(), w76()]),
            [
                Verdict::Keep(1, w76()),
                Verdict::Keep(2, longer),
                Verdict::Keep(3, w76())
            ]
        );
        // Padding ends an encoding: such a line is never held.
        let mut padded = w76();
        padded[75] = b'=';
        assert_eq!(
            verdicts(vec![padded.clone(), b"QUJD".to_vec()]),
            [Verdict::Keep(1, padded), Verdict::Keep(2, b"QUJD".to_vec())]
        );
    }

    #[tokio::test]
    async fn base64_lines_are_decoded() {
        let (records, problems) =
            collect(b"AP8K\nnot base64!\n", KeyFrom::Fixed("k".into()), true).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, [0x00, 0xff, b'\n']);
        assert_eq!(problems.count, 1);
        assert!(problems.listed[0].1.contains("base64"));
    }
}
