//! `invoke-archiver BOOTSTRAP STREAM`: runs the real Lambda binary (`bootstrap`) on a
//! Lambda Runtime API on loopback (the test harness's) and invokes it once with a Kinesis
//! event made of every record of STREAM, as an event source mapping would deliver them.
//! Prints the function's log lines (the `archived batch` summary and the EMF metrics line)
//! and its answer. `bin/demo` uses it to show the archiver itself; the AWS settings
//! (`AWS_ENDPOINT_URL`, region, credentials) are passed on to the function from this
//! process's environment.

use std::path::PathBuf;
use std::process::ExitCode;

use kinarch_core::aws::{AwsOptions, load_sdk_config};
use kinarch_tests::kinesis;
use kinarch_tests::lambda::{Invocation, LambdaFunction};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, stream] = args.as_slice() else {
        eprintln!("usage: invoke-archiver BOOTSTRAP STREAM");
        return ExitCode::from(2);
    };
    let sdk = load_sdk_config(&AwsOptions::default()).await;
    let client = aws_sdk_kinesis::Client::new(&sdk);
    let arn = match client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
    {
        Ok(output) => output
            .stream_description_summary
            .map(|s| s.stream_arn)
            .unwrap_or_default(),
        Err(err) => {
            eprintln!("invoke-archiver: cannot describe stream {stream}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let records = kinesis::read_all(&client, stream).await;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("KINARCH_"))
        .collect();
    let mut function = LambdaFunction::start(&PathBuf::from(bootstrap), &env).await;
    println!(
        "invoking bootstrap with a Kinesis event of {} records of stream {stream}",
        records.len()
    );
    let outcome = function.invoke(kinesis::event(&arn, &records)).await;
    for line in function.logs() {
        println!("  log: {line}");
    }
    match outcome {
        Invocation::Response(body) => {
            println!("answer: {body}");
            ExitCode::SUCCESS
        }
        Invocation::Error(body) => {
            println!("function error: {body}");
            ExitCode::FAILURE
        }
    }
}
