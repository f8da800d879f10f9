//! The Lambda Runtime API on loopback, driving the real `bootstrap` binary as Lambda does.
//!
//! One implementation for the end-to-end tests and for the benchmarks (`kinarch-bench`).
//! A test starts a function with [`LambdaFunction::start`] and keeps its output to check its
//! logs; a measurement uses [`LambdaFunction::builder`] to drain the output instead, put a
//! profiler in front of the binary, or serve the API on a runtime of its own, and hands over
//! one pre-serialized event many times ([`LambdaFunction::try_invoke_shared`], which reports a
//! lost invocation as an error instead of panicking). Both can read the process id and the
//! init time (spawn to the first `/invocation/next` request).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `/response` with this body.
    Response(Value),
    /// `/error` with this body (`errorType`, `errorMessage`).
    Error(Value),
}

impl Invocation {
    /// The response body; panics on an error.
    pub fn response(self) -> Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error(e) => panic!("expected a response, the function failed: {e}"),
        }
    }

    /// The error body; panics on a response.
    pub fn error(self) -> Value {
        match self {
            Invocation::Error(e) => e,
            Invocation::Response(v) => panic!("expected a function error, got a response: {v}"),
        }
    }

    /// `Ok` with the response body, `Err` with the error body.
    pub fn into_result(self) -> Result<Value, Value> {
        match self {
            Invocation::Response(v) => Ok(v),
            Invocation::Error(e) => Err(e),
        }
    }
}

struct Pending {
    id: String,
    /// The invocation body, as Lambda passes it on (normally JSON); shared, not copied, when
    /// one event is sent many times.
    body: Bytes,
    deadline_ms: u64,
}

struct Api {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    next_requests: Mutex<u64>,
    /// When the first `/invocation/next` request came.
    first_next: Mutex<Option<Instant>>,
    first_next_seen: Notify,
}

/// A `bootstrap` process and the Runtime API it polls.
pub struct LambdaFunction {
    child: Child,
    spawned_at: Instant,
    api: Arc<Api>,
    queue: mpsc::UnboundedSender<Pending>,
    /// `None` when the output is drained instead of kept.
    logs: Option<Arc<Mutex<Vec<String>>>>,
    counter: Mutex<u64>,
    /// Under a wrapper (a profiler): stopped with SIGTERM first, so that it writes its output.
    wrapped: bool,
}

/// How to start a function beyond the binary and its environment; see
/// [`LambdaFunction::builder`].
pub struct Builder {
    binary: std::path::PathBuf,
    env: Vec<(String, String)>,
    wrapper: Vec<String>,
    keep_output: bool,
    runtime: Option<Handle>,
}

async fn next(State(api): State<Arc<Api>>) -> (StatusCode, HeaderMap, Bytes) {
    *api.next_requests.lock().unwrap() += 1;
    {
        let mut first = api.first_next.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
            api.first_next_seen.notify_waiters();
        }
    }
    let pending = api.queue.lock().await.recv().await;
    let Some(p) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let mut headers = HeaderMap::new();
    let h = |v: &str| HeaderValue::from_str(v).unwrap();
    headers.insert("lambda-runtime-aws-request-id", h(&p.id));
    headers.insert("lambda-runtime-deadline-ms", h(&p.deadline_ms.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        h("arn:aws:lambda:us-east-1:123456789012:function:kinarch-archiver"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        h("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=1;Sampled=0"),
    );
    headers.insert("content-type", h("application/json"));
    (StatusCode::OK, headers, p.body)
}

fn finish(api: &Api, id: &str, outcome: Invocation) -> StatusCode {
    match api.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    finish(&api, &id, Invocation::Response(value))
}

async fn error(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    finish(&api, &id, Invocation::Error(value))
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("bootstrap reported an init error: {body}");
    StatusCode::ACCEPTED
}

impl Builder {
    /// Adds `env` to the environment Lambda sets.
    pub fn env(mut self, env: &[(String, String)]) -> Builder {
        self.env.extend(env.iter().cloned());
        self
    }

    /// Puts `wrapper` (a program and its arguments, e.g. `valgrind --tool=callgrind`) in front
    /// of the binary; the process is then stopped with SIGTERM, so that the wrapper writes its
    /// output. Empty: no wrapper.
    pub fn wrapper(mut self, wrapper: &[String]) -> Builder {
        self.wrapper = wrapper.to_vec();
        self
    }

    /// Drains the process's output instead of keeping it for [`LambdaFunction::logs`]:
    /// logging then costs what it costs in Lambda (minus CloudWatch), and memory stays flat.
    pub fn discard_output(mut self) -> Builder {
        self.keep_output = false;
        self
    }

    /// Serves the Runtime API on `runtime` instead of the current one (a measurement keeps
    /// its servers off the runtime that drives it).
    pub fn server_runtime(mut self, runtime: Handle) -> Builder {
        self.runtime = Some(runtime);
        self
    }

    /// Serves the Runtime API on a free loopback port and starts the binary against it.
    pub async fn start(self) -> LambdaFunction {
        let (queue, rx) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            queue: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
            next_requests: Mutex::new(0),
            first_next: Mutex::new(None),
            first_next_seen: Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        // Bound here, registered with the runtime that serves it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking socket");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let serve = async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("loopback listener");
            axum::serve(listener, app).await.ok();
        };
        match &self.runtime {
            Some(runtime) => runtime.spawn(serve),
            None => tokio::spawn(serve),
        };
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "kinarch-archiver")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/kinarch-archiver")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/25/[$LATEST]test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let spawned_at = Instant::now();
        let mut child = command.spawn().expect("bootstrap starts");
        let logs = self.keep_output.then(|| Arc::new(Mutex::new(Vec::new())));
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            match logs.clone() {
                Some(logs) => std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        logs.lock().unwrap().push(line);
                    }
                }),
                None => std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stream, &mut std::io::sink());
                }),
            };
        }
        LambdaFunction {
            child,
            spawned_at,
            api,
            queue,
            logs,
            counter: Mutex::new(0),
            wrapped: !self.wrapper.is_empty(),
        }
    }
}

impl LambdaFunction {
    /// Serves the Runtime API on a free loopback port and starts `binary` against it with
    /// the environment Lambda sets, plus `env`. Its output is kept for [`Self::logs`].
    pub async fn start(binary: &Path, env: &[(String, String)]) -> LambdaFunction {
        LambdaFunction::builder(binary).env(env).start().await
    }

    /// A function to start with more choices than [`Self::start`] gives: a wrapper, drained
    /// output, the runtime of the server.
    pub fn builder(binary: &Path) -> Builder {
        Builder {
            binary: binary.to_path_buf(),
            env: Vec::new(),
            wrapper: Vec::new(),
            keep_output: true,
            runtime: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from just before the process was spawned to its first `/invocation/next`
    /// request: the init time Lambda would see (without downloading the code). `None` when
    /// that request has not come within `timeout`.
    pub async fn init_time(&self, timeout: Duration) -> Option<Duration> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.api.first_next_seen.notified();
            if let Some(at) = *self.api.first_next.lock().unwrap() {
                return Some(at - self.spawned_at);
            }
            if tokio::time::timeout_at(deadline, seen).await.is_err() {
                return None;
            }
        }
    }

    /// Invokes the function with `event` and a 60 s deadline.
    pub async fn invoke(&mut self, event: Value) -> Invocation {
        self.invoke_with_deadline(event, Duration::from_secs(60))
            .await
    }

    /// Invokes the function with `event`, the deadline `remaining` from now.
    pub async fn invoke_with_deadline(&mut self, event: Value, remaining: Duration) -> Invocation {
        self.invoke_body(event.to_string().into(), remaining).await
    }

    /// Delivers `records` of stream `arn` as one Kinesis event and checks that the function
    /// archived every one (no partial batch failure).
    pub async fn deliver(&mut self, arn: &str, records: &[crate::kinesis::StreamRecord]) {
        let response = self
            .invoke(crate::kinesis::event(arn, records))
            .await
            .response();
        assert!(failures(&response).is_empty(), "{response}");
    }

    /// Invokes the function with a body that need not be JSON at all.
    pub async fn invoke_raw(&mut self, body: &str) -> Invocation {
        self.invoke_body(
            Bytes::copy_from_slice(body.as_bytes()),
            Duration::from_secs(60),
        )
        .await
    }

    /// Invokes the function with `body` (an event serialized once and sent many times) and a
    /// 60 s deadline, for a measurement: an invocation that gets no answer within 90 s is an
    /// `Err` that says so, not a panic.
    pub async fn try_invoke_shared(&mut self, body: Bytes) -> Result<Invocation, String> {
        self.send(body, Duration::from_secs(60)).await
    }

    async fn invoke_body(&mut self, body: Bytes, remaining: Duration) -> Invocation {
        match self.send(body, remaining).await {
            Ok(outcome) => outcome,
            Err(lost) => panic!("{lost}; logs:\n{}", self.logs().join("\n")),
        }
    }

    async fn send(&mut self, body: Bytes, remaining: Duration) -> Result<Invocation, String> {
        let id = {
            let mut c = self.counter.lock().unwrap();
            *c += 1;
            format!("req-{c:04}")
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        self.api.waiting.lock().unwrap().insert(id.clone(), tx);
        self.queue
            .send(Pending {
                id: id.clone(),
                body,
                deadline_ms: now_ms + remaining.as_millis() as u64,
            })
            .expect("runtime API is up");
        let wait = remaining + Duration::from_secs(30);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => Err(format!(
                "invocation {id} got no answer within {wait:?} (process status {:?})",
                self.child.try_wait()
            )),
        }
    }

    /// Lines the process wrote to stdout and stderr so far. The lines are read by threads
    /// that may lag behind the Runtime API answer, so this waits until no new line has come
    /// for 150 ms (at most 3 s). Empty when the output is discarded.
    pub fn logs(&self) -> Vec<String> {
        let Some(logs) = &self.logs else {
            return Vec::new();
        };
        let start = std::time::Instant::now();
        let mut seen = logs.lock().unwrap().len();
        while start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(150));
            let now = logs.lock().unwrap().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        logs.lock().unwrap().clone()
    }

    /// Log lines parsed as JSON (Lambda's JSON log format); other lines are skipped.
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many `/invocation/next` requests the process has made.
    pub fn next_requests(&self) -> u64 {
        *self.api.next_requests.lock().unwrap()
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        if self.wrapped {
            // Our own child, not reaped yet, so its pid is still its own.
            let pid = self.child.id().to_string();
            let term = Command::new("kill").args(["-TERM", &pid]).status();
            if term.is_ok_and(|status| status.success()) {
                for _ in 0..600 {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sequence numbers named in a partial batch response (`batchItemFailures`).
pub fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures is an array")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}
