//! The Lambda Runtime API on loopback, driving the real `bootstrap` binary as Lambda does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

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
}

struct Pending {
    id: String,
    /// The invocation body, as Lambda passes it on (normally JSON).
    body: String,
    deadline_ms: u64,
}

struct Api {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    next_requests: Mutex<u64>,
}

/// A `bootstrap` process and the Runtime API it polls.
pub struct LambdaFunction {
    child: Child,
    api: Arc<Api>,
    queue: mpsc::UnboundedSender<Pending>,
    logs: Arc<Mutex<Vec<String>>>,
    counter: Mutex<u64>,
}

async fn next(State(api): State<Arc<Api>>) -> (StatusCode, HeaderMap, String) {
    *api.next_requests.lock().unwrap() += 1;
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

impl LambdaFunction {
    /// Serves the Runtime API on a free loopback port and starts `binary` against it with
    /// the environment Lambda sets, plus `env`.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> LambdaFunction {
        let (queue, rx) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            queue: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
            next_requests: Mutex::new(0),
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
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
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("bootstrap starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        LambdaFunction {
            child,
            api,
            queue,
            logs,
            counter: Mutex::new(0),
        }
    }

    /// Invokes the function with `event` and a 60 s deadline.
    pub async fn invoke(&mut self, event: Value) -> Invocation {
        self.invoke_with_deadline(event, Duration::from_secs(60))
            .await
    }

    /// Invokes the function with `event`, the deadline `remaining` from now.
    pub async fn invoke_with_deadline(&mut self, event: Value, remaining: Duration) -> Invocation {
        self.invoke_body(event.to_string(), remaining).await
    }

    /// Invokes the function with a body that need not be JSON at all.
    pub async fn invoke_raw(&mut self, body: &str) -> Invocation {
        self.invoke_body(body.to_owned(), Duration::from_secs(60))
            .await
    }

    async fn invoke_body(&mut self, body: String, remaining: Duration) -> Invocation {
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
            Ok(Ok(outcome)) => outcome,
            _ => {
                let status = self.child.try_wait();
                panic!(
                    "invocation {id} got no answer within {wait:?} (process status {status:?}); logs:\n{}",
                    self.logs().join("\n")
                )
            }
        }
    }

    /// Lines the process wrote to stdout and stderr so far. The lines are read by threads
    /// that may lag behind the Runtime API answer, so this waits until no new line has come
    /// for 150 ms (at most 3 s).
    pub fn logs(&self) -> Vec<String> {
        let start = std::time::Instant::now();
        let mut seen = self.logs.lock().unwrap().len();
        while start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.logs.lock().unwrap().len();
            if now == seen {
                break;
            }
            seen = now;
        }
        self.logs.lock().unwrap().clone()
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
