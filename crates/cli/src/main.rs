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

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::failure::Failure;

fn main() -> ExitCode {
    // Parse errors print clap's message and exit 2; --help and --version exit 0.
    let cli = cli::Cli::parse();
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
