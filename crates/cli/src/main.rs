//! `kinarch`: set up, inspect and read Kinesis stream archives kept in DynamoDB.
//!
//! A thin layer over `kinarch_core`: the command line is defined in [`cli`], each
//! subcommand lives in [`commands`], and every failure ends in [`failure::Failure`], which
//! picks the exit code (0 success or closed output, 1 failure, 2 usage error).

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod failure;
mod logging;
mod output;
mod progress;
mod prompt;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::failure::Failure;

fn main() -> ExitCode {
    // Parse errors print clap's message and exit 2; --help and --version exit 0.
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A key like `-neg` is read as options (`-n eg`): clap's message would be about
            // those options, so say what was meant instead.
            let args: Vec<String> = std::env::args().collect();
            if error.use_stderr()
                && let Some(key) = cli::values::dash_leading_key(&args)
            {
                return Failure::Usage(format!(
                    "the partition key {key} starts with '-', so it was read as options: give \
                     it as `-k {key}` (or `--partition-key={key}`)"
                ))
                .report();
            }
            error.exit()
        }
    };
    logging::init(&cli.global);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            return Failure::Runtime(format!("cannot start the async runtime: {err}")).report();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Writes a line to standard error, ignoring failure (`eprintln!` would panic when standard
/// error is closed).
pub(crate) fn say(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}
