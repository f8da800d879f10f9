//! Running the real `kinarch` binary against a moto server.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::moto::Moto;

/// How a `kinarch` run ended.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output, byte for byte.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both outputs unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.out(),
            self.stderr
        );
        self
    }

    /// Panics unless the run succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Standard output of a run that succeeded, parsed as one JSON value (`--output json`).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        self.ok();
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: the output is one JSON value: {}", self.out()))
    }
}

/// A `kinarch` command with a clean environment pointing at `moto` (endpoint, region,
/// dummy credentials, no config files).
pub fn command(moto: &Moto) -> Command {
    command_with_env(&moto.env())
}

/// A `kinarch` command with exactly `env` (plus PATH and HOME).
pub fn command_with_env(env: &[(String, String)]) -> Command {
    let mut command = Command::new(crate::binary("kinarch"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a prepared command to the end, feeding `input` to its standard input.
pub async fn run_command(mut command: Command, input: Option<&[u8]>) -> Run {
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("kinarch starts");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
    }
    let output = child.wait_with_output().await.expect("kinarch runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `kinarch ARGS` against `moto`.
pub async fn kinarch(moto: &Moto, args: &[&str]) -> Run {
    let mut command = command(moto);
    command.args(args);
    run_command(command, None).await
}

/// Runs `kinarch ARGS` on a pseudo-terminal made by util-linux `script`, typing `input`.
/// `args` is a shell fragment (it may redirect standard output, e.g. `scan s > FILE`).
/// Standard input, output and error of kinarch are the terminal, so everything it writes
/// to either comes back in [`Run::stdout`], along with the echo of `input`.
pub async fn kinarch_on_a_terminal(moto: &Moto, args: &str, input: &str) -> Run {
    kinarch_on_a_terminal_with(moto, &[], args, input).await
}

/// [`kinarch_on_a_terminal`] with more environment variables (`NO_COLOR`, ...).
pub async fn kinarch_on_a_terminal_with(
    moto: &Moto,
    env: &[(&str, &str)],
    args: &str,
    input: &str,
) -> Run {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("util-linux `script` is needed to give kinarch a terminal");
    let binary = crate::binary("kinarch");
    let mut command = Command::new(script);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .envs(moto.env())
        .envs(env.iter().copied())
        .args([
            "-qec",
            &format!("'{}' {args}", binary.display()),
            "/dev/null",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    run_command(command, Some(input.as_bytes())).await
}

/// A `kinarch` process left running, its standard error collected line by line.
pub struct Running {
    /// The process.
    pub child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: tokio::task::JoinHandle<Vec<u8>>,
}

impl Running {
    /// Starts `kinarch args...` with `env`.
    pub fn start(env: &[(String, String)], args: &[&str]) -> Running {
        let mut command = command_with_env(env);
        command.args(args).stdin(Stdio::null());
        let mut child = command.spawn().expect("kinarch starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes).await;
            bytes
        });
        Running {
            child,
            stderr,
            stdout,
        }
    }

    /// Standard error lines so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `count` lines of standard error contain every one of `needles`.
    pub async fn wait_for_log(&mut self, needles: &[&str], count: usize) {
        let what = format!("{count} log line(s) with {needles:?}");
        crate::world::eventually(&what, Duration::from_secs(60), || {
            let found = self
                .log()
                .iter()
                .filter(|l| needles.iter().all(|n| l.contains(n)))
                .count();
            if found < count
                && let Ok(Some(status)) = self.child.try_wait()
            {
                panic!(
                    "kinarch ended ({status}) before logging {needles:?}:\n{}",
                    self.log().join("\n")
                );
            }
            std::future::ready((found >= count).then_some(()))
        })
        .await
    }

    /// Sends the signal `name` (`TERM`, `KILL`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the end (at most a minute) and returns how it ended.
    pub async fn wait(mut self) -> Run {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("kinarch stops within a minute")
            .unwrap();
        let stdout = self.stdout.await.unwrap();
        // Standard error is read by its own task: let it take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.lock().unwrap().join("\n"),
        }
    }
}
