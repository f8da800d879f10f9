//! `kinarch put <stream>`: one record per line of standard input (see
//! `kinarch_core::replay::put`).

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::Stream;
use kinarch_core::aws::streams::describe_stream_summary;
use kinarch_core::read::MAX_PARTITION_KEY_CHARS;
use kinarch_core::replay::put::{PutInput, put_records};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::cli::{GlobalArgs, PutArgs};
use crate::failure::Failure;
use crate::output::count;
use crate::progress::Progress;

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
        tokio::io::stdin(),
        key_from,
        args.base64,
        Arc::clone(&problems),
    );
    let mut progress = Progress::start_status(global.quiet);
    // One call in flight: records of one key stay in order trivially, and moto (the local
    // emulator of the demo and tests) numbers concurrent PutRecords calls wrongly.
    let report = put_records(&kinesis, &args.stream, records, 1, |p| {
        progress.set(p.sent, format!("{} failed", p.failed))
    })
    .await;
    progress.clear();
    let report = report?;
    let problems = std::mem::take(&mut *problems.lock().expect("problems lock"));
    for (line, why) in &problems.listed {
        crate::say(&format!("error: line {line}: {why}; not sent"));
    }
    for failure in report.failed.iter().take(LISTED_PROBLEMS) {
        crate::say(&format!(
            "error: line {} (partition key {:?}): {}",
            failure.position, failure.partition_key, failure.reason
        ));
    }
    if !global.quiet {
        crate::say(&format!(
            "put {} into stream {} with {} in {:.1} s",
            count(report.sent, "record"),
            args.stream,
            count(report.requests, "PutRecords call"),
            report.elapsed.as_secs_f64()
        ));
    }
    let failed = problems.count + report.failed.len() as u64;
    if failed > 0 {
        return Err(Failure::Runtime(format!(
            "{failed} line(s) were not sent (listed above); the {} other records were",
            report.sent
        )));
    }
    Ok(())
}

/// The records of `input`, one per line; lines that cannot be records go to `problems`.
fn records(
    input: impl AsyncRead + Unpin,
    key_from: KeyFrom,
    base64: bool,
    problems: Arc<Mutex<Problems>>,
) -> impl Stream<Item = Result<PutInput, kinarch_core::Error>> {
    let reader = BufReader::with_capacity(256 * 1024, input);
    futures::stream::unfold(
        (reader, 0u64, Vec::new()),
        move |(mut reader, mut line_number, mut line)| {
            let key_from = key_from.clone();
            let problems = Arc::clone(&problems);
            async move {
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) => return None,
                        Ok(_) => {}
                        Err(err) => {
                            let error = kinarch_core::Error::Io {
                                context: "cannot read standard input".into(),
                                source: err,
                            };
                            return Some((Err(error), (reader, line_number, line)));
                        }
                    }
                    line_number += 1;
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if line.is_empty() {
                        continue;
                    }
                    match record(&line, &key_from, base64) {
                        Ok((partition_key, data)) => {
                            let input = PutInput {
                                position: line_number,
                                partition_key,
                                data,
                            };
                            return Some((Ok(input), (reader, line_number, line)));
                        }
                        Err(why) => problems
                            .lock()
                            .expect("problems lock")
                            .add(line_number, why),
                    }
                }
            }
        },
    )
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
        STANDARD
            .decode(text.trim_end_matches('\r'))
            .map_err(|e| format!("the line is not standard base64: {e}"))?
    } else {
        line.to_vec()
    };
    Ok((key, data))
}

/// The value of `field` in a line holding a JSON object, as a partition key.
fn key_of(line: &[u8], field: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| format!("the line is not JSON ({e}), so it has no field {field:?}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("the line is not a JSON object, so it has no field {field:?}"))?;
    match object.get(field) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(serde_json::Value::Number(number)) => Ok(number.to_string()),
        Some(serde_json::Value::Bool(flag)) => Ok(flag.to_string()),
        Some(other) => Err(format!(
            "field {field:?} is {}, not a string, number or boolean",
            match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Array(_) => "an array",
                _ => "an object",
            }
        )),
        None => Err(format!("the JSON object has no field {field:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn collect(input: &[u8], key_from: KeyFrom, base64: bool) -> (Vec<PutInput>, Problems) {
        let problems = Arc::new(Mutex::new(Problems::default()));
        let records: Vec<PutInput> = records(input, key_from, base64, Arc::clone(&problems))
            .map(|r| r.unwrap())
            .collect()
            .await;
        let problems = std::mem::take(&mut *problems.lock().unwrap());
        (records, problems)
    }

    #[tokio::test]
    async fn lines_are_records_byte_for_byte_and_empty_lines_are_skipped() {
        let input = b"first\n\nbinary \x00\xff\r\nlast without newline";
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
                (3, &b"binary \x00\xff\r"[..]),
                (4, &b"last without newline"[..])
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
