//! The Lambda Runtime API on loopback, driving the real `bootstrap` binary as Lambda does.
//!
//! Not the test harness's `kinarch_tests::lambda`, though it serves the same API: a
//! measurement needs what a test must not do and the reverse. The bench hands over one
//! pre-serialized 6 MB event per invocation (`Arc<String>`), drains the process's output
//! instead of keeping it, reports a lost invocation as an error instead of panicking, can
//! start the binary under a profiler (and stop it with SIGTERM so the profiler writes), and
//! records when the process made its first `/invocation/next` request (its init time) and
//! its pid for `/proc` readings.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc, oneshot};

/// How an invocation ended: `Ok` with the `/response` body, `Err` with the `/error` body.
pub type Invocation = Result<Value, Value>;

struct Pending {
    id: String,
    event: Arc<String>,
    deadline_ms: u64,
}

struct Api {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    first_next: Mutex<Option<Instant>>,
    first_next_seen: Notify,
}

/// A `bootstrap` process and the Runtime API it polls.
pub struct LambdaFunction {
    child: Child,
    spawned_at: Instant,
    api: Arc<Api>,
    queue: mpsc::UnboundedSender<Pending>,
    counter: u64,
    /// Under a profiler: stop with SIGTERM so that it writes its output.
    wrapped: bool,
}

async fn next(State(api): State<Arc<Api>>) -> (StatusCode, HeaderMap, String) {
    {
        let mut first = api.first_next.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
            api.first_next_seen.notify_waiters();
        }
    }
    let pending = api.queue.lock().await.recv().await;
    let Some(p) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
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
    (StatusCode::OK, headers, p.event.as_str().to_owned())
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

fn parse(body: String) -> Value {
    serde_json::from_str(&body).unwrap_or(Value::String(body))
}

async fn response(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    finish(&api, &id, Ok(parse(body)))
}

async fn error(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    finish(&api, &id, Err(parse(body)))
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("bootstrap reported an init error: {body}");
    StatusCode::ACCEPTED
}

impl LambdaFunction {
    /// Serves the Runtime API on a free loopback port (on `runtime`) and starts `binary`
    /// against it with the environment Lambda sets plus `env`. Its output is discarded
    /// (drained, so that logging costs what it costs in Lambda, minus CloudWatch).
    /// `wrapper` (e.g. `valgrind --tool=callgrind`) goes in front of the binary, for
    /// profiling; empty for measurements.
    pub async fn start(
        runtime: &Handle,
        wrapper: &[String],
        binary: &Path,
        env: &[(String, String)],
    ) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            queue: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
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
        let listener = runtime
            .spawn(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("task runs")
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        runtime.spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
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
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/25/[$LATEST]bench")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let spawned_at = Instant::now();
        let mut child = command.spawn().expect("bootstrap starts");
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            std::thread::spawn(move || std::io::copy(&mut stream, &mut std::io::sink()));
        }
        LambdaFunction {
            child,
            spawned_at,
            api,
            queue,
            counter: 0,
            wrapped: !wrapper.is_empty(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from just before the process was spawned to its first `/invocation/next`
    /// request: the init time Lambda would see (without downloading the code).
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

    /// Invokes the function with `event` (JSON text) and a 60 s deadline; waits for the
    /// answer at most 120 s.
    pub async fn invoke(&mut self, event: Arc<String>) -> Invocation {
        self.counter += 1;
        let id = format!("bench-{:04}", self.counter);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        self.api.waiting.lock().unwrap().insert(id.clone(), tx);
        self.queue
            .send(Pending {
                id: id.clone(),
                event,
                deadline_ms: now_ms + 60_000,
            })
            .expect("runtime API is up");
        match tokio::time::timeout(Duration::from_secs(120), rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => Err(Value::String(format!(
                "invocation {id} got no answer (process status {:?})",
                self.child.try_wait()
            ))),
        }
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        if self.wrapped {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            for _ in 0..600 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
