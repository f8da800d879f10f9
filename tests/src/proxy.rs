//! A loopback fault proxy between kinarch and the emulator.
//!
//! Every request goes through a rule that sees the AWS operation (`X-Amz-Target`) and the
//! body; the rule either lets it through to the emulator or answers with a fault. Tests use
//! it to produce what moto never does: throttling, 5xx answers, validation errors on
//! chosen records, dropped connections.
//!
//! S3 requests (REST, no `X-Amz-Target`) are seen as `S3.<operation>` ([`Call::target`]),
//! and their faults are answered in S3's XML error format.
//!
//! It keeps a log of every request it handled (operation, fault, status, body) in memory,
//! so that a failing test can say which requests carried a record that went missing
//! ([`FaultProxy::calls_carrying`]).
//!
//! It also makes moto's conditional writes atomic: moto checks a `ConditionExpression` and
//! then writes without a lock, so two concurrent conditional PutItems of one key can both
//! pass their check and the older one land last. DynamoDB applies a conditional write
//! atomically per item; the proxy sends conditional writes to moto one at a time, so tests
//! of concurrent LATEST writers (which rely on that guarantee) run through a proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, StatusCode};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What the rule sees of a request.
#[derive(Debug, Clone)]
pub struct Call {
    /// `X-Amz-Target`, e.g. `DynamoDB_20120810.BatchWriteItem`; for an S3 request
    /// `S3.PutObject`, `S3.GetObject`, `S3.HeadBucket`, ... (see [`s3_operation`]); empty if
    /// neither.
    pub target: String,
    /// The request body as text (lossy).
    pub body: String,
    /// How many requests with this target came before this one.
    pub nth_of_target: u64,
    /// The access key id that signed the request (`Credential=AKID/...` of the SigV4
    /// `Authorization` header); empty if unsigned.
    pub access_key_id: String,
    /// The request's path (for S3: `/BUCKET/KEY`).
    pub path: String,
}

impl Call {
    /// The operation name, e.g. `BatchWriteItem`.
    pub fn operation(&self) -> &str {
        self.target.rsplit('.').next().unwrap_or("")
    }
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with an AWS JSON error of this HTTP status and error type.
    Error {
        /// HTTP status.
        status: u16,
        /// AWS error type (`__type`).
        error_type: String,
    },
    /// Answer with this status and JSON body.
    Json {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// Wait, then pass the request through.
    Delay(Duration),
    /// PutRecords only: forward the request without the entries at these positions and
    /// answer them as failed with `ProvisionedThroughputExceededException`, as Kinesis does
    /// when some shards are over their limit.
    FailEntries(Vec<usize>),
    /// PutRecords only: forward the request without the entries at these positions and
    /// answer them as stored, with the shard of the first entry stored and a made-up
    /// sequence number far past it: a Kinesis that loses acknowledged records.
    LoseEntries(Vec<usize>),
    /// PutRecords only: change the first byte of the data of the entries at these positions
    /// on the way (the stream stores the altered bytes and answers success).
    AlterEntries(Vec<usize>),
    /// Start a response, then break the connection in the middle of it.
    Reset,
    /// BatchWriteItem only: write the first half of the items, answer the rest as
    /// `UnprocessedItems`, as DynamoDB does under throttling.
    Unprocessed,
}

impl Fault {
    /// A 400 error with this type, e.g. `ProvisionedThroughputExceededException`.
    pub fn client_error(error_type: &str) -> Fault {
        Fault::Error {
            status: 400,
            error_type: error_type.to_owned(),
        }
    }
}

/// A seeded random fault plan: a `share` of the requests get one of the faults of issue 6,
/// chosen at random: `ProvisionedThroughputExceededException` or `ThrottlingException`
/// (400), HTTP 500 or 503, a connection reset, an answer slower than a 1 s attempt timeout,
/// and for BatchWriteItem also `UnprocessedItems`. Use it as the proxy's rule:
/// `proxy.set_rule(move |call| plan.fault(call))` with an `Arc<FaultPlan>`.
pub struct FaultPlan {
    seed: u64,
    state: Mutex<u64>,
    share: f64,
    counts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl FaultPlan {
    /// A plan from `seed`, or from `KINARCH_FAULT_SEED` (decimal or `0x` hex) when it is
    /// set, so a rare failure can be hunted over many seeds with one test in a loop.
    pub fn new(seed: u64, share: f64) -> FaultPlan {
        let seed = match std::env::var("KINARCH_FAULT_SEED") {
            Err(_) => seed,
            Ok(text) => match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .unwrap_or_else(|_| panic!("KINARCH_FAULT_SEED={text:?} is not a number")),
        };
        FaultPlan {
            seed,
            state: Mutex::new(seed.max(1)),
            share,
            counts: Mutex::new(Default::default()),
        }
    }

    /// xorshift64*: a uniform number in [0, 1).
    fn uniform(&self) -> f64 {
        let mut x = self.state.lock().unwrap();
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        (x.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for `call`, if the plan picks one.
    pub fn fault(&self, call: &Call) -> Option<Fault> {
        if self.uniform() >= self.share {
            return None;
        }
        let batch_write = call.operation() == "BatchWriteItem";
        let kinds = if batch_write { 7.0 } else { 6.0 };
        let (name, fault) = match (self.uniform() * kinds) as u32 {
            0 => (
                "throughput exceeded",
                Fault::client_error("ProvisionedThroughputExceededException"),
            ),
            1 => ("throttling", Fault::client_error("ThrottlingException")),
            2 => (
                "http 500",
                Fault::Error {
                    status: 500,
                    error_type: "InternalServerError".into(),
                },
            ),
            3 => (
                "http 503",
                Fault::Error {
                    status: 503,
                    error_type: "ServiceUnavailable".into(),
                },
            ),
            4 => ("connection reset", Fault::Reset),
            5 => ("slow answer", Fault::Delay(Duration::from_millis(1500))),
            _ => ("unprocessed items", Fault::Unprocessed),
        };
        *self.counts.lock().unwrap().entry(name).or_default() += 1;
        Some(fault)
    }

    /// One line: the seed, the share and how many faults of each kind were injected.
    pub fn summary(&self) -> String {
        let counts = self.counts.lock().unwrap();
        let total: u64 = counts.values().sum();
        let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "fault plan seed {:#x}, {:.0}% of requests: {total} faults injected ({})",
            self.seed,
            self.share * 100.0,
            kinds.join(", ")
        )
    }

    /// How many faults were injected.
    pub fn injected(&self) -> u64 {
        self.counts.lock().unwrap().values().sum()
    }
}

/// One request as the proxy handled it.
#[derive(Debug, Clone)]
struct LoggedCall {
    /// Order of arrival at the proxy, from 0.
    n: u64,
    target: String,
    /// The fault applied, if any.
    fault: Option<String>,
    /// The status answered (a reset connection answered 200 before it broke).
    status: u16,
    /// Milliseconds since the proxy started, when the request arrived.
    at_ms: u128,
    body: Bytes,
    /// The request as the rule saw it.
    call: Call,
}

impl LoggedCall {
    /// Whether this request wrote an item with this `partitionKey` and `sequenceNumber`
    /// (BatchWriteItem or PutItem of the archive's layout).
    fn carries(&self, partition_key: &str, sequence_number: &str) -> bool {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return false;
        };
        let matches = |item: &serde_json::Value| {
            item["partitionKey"]["S"] == partition_key
                && item["sequenceNumber"]["S"] == sequence_number
        };
        if matches(&body["Item"]) {
            return true;
        }
        body["RequestItems"].as_object().is_some_and(|tables| {
            tables
                .values()
                .flat_map(|w| w.as_array().into_iter().flatten())
                .any(|w| matches(&w["PutRequest"]["Item"]))
        })
    }
}

type Rule = dyn Fn(&Call) -> Option<Fault> + Send + Sync;

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    rule: Mutex<Arc<Rule>>,
    counts: Mutex<std::collections::HashMap<String, u64>>,
    injected: AtomicU64,
    /// Requests that arrived so far.
    arrived: AtomicU64,
    /// Held while a conditional write is with moto (see the module documentation).
    conditional_write: tokio::sync::Mutex<()>,
    log: Mutex<Vec<LoggedCall>>,
    started: std::time::Instant,
}

/// A running proxy.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`) that passes
    /// everything through until [`Self::set_rule`].
    pub async fn start(upstream: &str) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rule: Mutex::new(Arc::new(|_: &Call| None)),
            counts: Mutex::new(Default::default()),
            injected: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            conditional_write: tokio::sync::Mutex::new(()),
            log: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FaultProxy { port, shared }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rule.
    pub fn set_rule(&self, rule: impl Fn(&Call) -> Option<Fault> + Send + Sync + 'static) {
        *self.shared.rule.lock().unwrap() = Arc::new(rule);
    }

    /// Lets everything through again.
    pub fn heal(&self) {
        self.set_rule(|_| None);
    }

    /// How many requests arrived so far (every operation).
    pub fn requests(&self) -> u64 {
        self.shared.arrived.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order, as the rule saw it.
    pub fn calls(&self) -> Vec<Call> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.call.clone())
            .collect()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// Every PutRecords request so far as (milliseconds since the proxy started, when it
    /// arrived; how many entries it held), in arrival order: a rate is checked where Kinesis
    /// would measure it, at the receiving end.
    pub fn put_records_arrivals(&self) -> Vec<(u128, usize)> {
        let log = self.shared.log.lock().unwrap();
        let mut arrivals: Vec<(u128, usize)> = log
            .iter()
            .filter(|c| c.target.ends_with(".PutRecords"))
            .map(|c| {
                let entries = serde_json::from_slice::<serde_json::Value>(&c.body)
                    .ok()
                    .and_then(|b| b["Records"].as_array().map(Vec::len))
                    .unwrap_or(0);
                (c.at_ms, entries)
            })
            .collect();
        arrivals.sort();
        arrivals
    }

    /// Every PutRecords request so far as (milliseconds since the proxy started, when it
    /// arrived; the partition keys of its entries), in arrival order.
    pub fn put_records_keys(&self) -> Vec<(u128, Vec<String>)> {
        let log = self.shared.log.lock().unwrap();
        let mut arrivals: Vec<(u128, Vec<String>)> = log
            .iter()
            .filter(|c| c.target.ends_with(".PutRecords"))
            .map(|c| {
                let keys = serde_json::from_slice::<serde_json::Value>(&c.body)
                    .ok()
                    .and_then(|b| {
                        b["Records"].as_array().map(|entries| {
                            entries
                                .iter()
                                .map(|e| e["PartitionKey"].as_str().unwrap_or("").to_owned())
                                .collect()
                        })
                    })
                    .unwrap_or_default();
                (c.at_ms, keys)
            })
            .collect();
        arrivals.sort();
        arrivals
    }

    /// For a failing test: each record (partition key, sequence number) with one line per
    /// request that carried it (arrival order, time, operation, fault, status).
    pub fn calls_carrying(&self, records: &[(String, String)]) -> String {
        let log = self.shared.log.lock().unwrap();
        let mut report = String::new();
        for (key, seq) in records {
            report.push_str(&format!("record ({key}, {seq}):\n"));
            let calls: Vec<&LoggedCall> = log.iter().filter(|c| c.carries(key, seq)).collect();
            if calls.is_empty() {
                report.push_str("  no request through the proxy carried it\n");
            }
            for call in calls {
                report.push_str(&format!(
                    "  #{} at {} ms: {} -> {}{}\n",
                    call.n,
                    call.at_ms,
                    call.target,
                    call.status,
                    call.fault
                        .as_deref()
                        .map(|f| format!(" (fault: {f})"))
                        .unwrap_or_default()
                ));
            }
        }
        report
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let at_ms = shared.started.elapsed().as_millis();
    let (n, call, fault, body, response) = apply_rule(&shared, request).await;
    shared.log.lock().unwrap().push(LoggedCall {
        n,
        target: call.target.clone(),
        fault: fault.map(|f| format!("{f:?}")),
        status: response.status().as_u16(),
        at_ms,
        body,
        call,
    });
    response
}

/// Applies the rule to one request: (its number, the request as the rule saw it, the fault
/// applied, its body, the answer).
async fn apply_rule(
    shared: &Shared,
    request: Request,
) -> (u64, Call, Option<Fault>, Bytes, Response<Body>) {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = match parts.headers.get("x-amz-target") {
        Some(v) => v.to_str().unwrap_or("").to_owned(),
        None => s3_operation(&parts)
            .map(|op| format!("S3.{op}"))
            .unwrap_or_default(),
    };
    let s3 = target.starts_with("S3.");
    let nth_of_target = {
        let mut counts = shared.counts.lock().unwrap();
        let n = counts.entry(target.clone()).or_default();
        *n += 1;
        *n - 1
    };
    let n = shared.arrived.fetch_add(1, Ordering::SeqCst);
    let access_key_id = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
        .unwrap_or("")
        .to_owned();
    let call = Call {
        target: target.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        nth_of_target,
        access_key_id,
        path: parts.uri.path().to_owned(),
    };
    let rule = shared.rule.lock().unwrap().clone();
    let fault = rule(&call);
    if fault.is_some()
        && !matches!(
            fault,
            Some(Fault::Unprocessed | Fault::FailEntries(_) | Fault::LoseEntries(_))
        )
    {
        // Those two count what they hold back themselves.
        shared.injected.fetch_add(1, Ordering::SeqCst);
    }
    let response = match fault.clone() {
        Some(Fault::Error { status, error_type }) if s3 => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{error_type}</Code>\
                 <Message>injected by the kinarch test fault proxy: {error_type}</Message>\
                 <RequestId>kinarch-proxy</RequestId></Error>"
            );
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/xml"));
            response
        }
        Some(Fault::Error { status, error_type }) => {
            let body = serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{error_type}"),
                "message": format!("injected by the kinarch test fault proxy: {error_type}"),
            });
            json_response(status, body.to_string())
        }
        Some(Fault::Json { status, body }) => json_response(status, body),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            forward(shared, parts, body.clone()).await
        }
        Some(Fault::Reset) => {
            let broken = futures::stream::iter([
                Ok(Bytes::from_static(b"{\"Unproc")),
                Err(std::io::Error::other(
                    "connection reset by the kinarch test fault proxy",
                )),
            ]);
            Response::new(Body::from_stream(broken))
        }
        Some(Fault::Unprocessed) => unprocessed(shared, parts, &body).await,
        Some(Fault::FailEntries(positions)) => fail_entries(shared, parts, &body, &positions).await,
        Some(Fault::LoseEntries(positions)) => lose_entries(shared, parts, &body, &positions).await,
        Some(Fault::AlterEntries(positions)) => {
            let mut request: serde_json::Value =
                serde_json::from_slice(&body).expect("PutRecords body is JSON");
            for i in positions {
                let entry = &mut request["Records"][i];
                let mut data = base64::engine::general_purpose::STANDARD
                    .decode(entry["Data"].as_str().unwrap_or(""))
                    .expect("PutRecords data is base64");
                if let Some(first) = data.first_mut() {
                    *first ^= 0x20;
                }
                entry["Data"] = base64::engine::general_purpose::STANDARD
                    .encode(data)
                    .into();
            }
            forward(shared, parts, Bytes::from(request.to_string())).await
        }
        None => forward(shared, parts, body.clone()).await,
    };
    (n, call, fault, body, response)
}

/// The S3 operation of a REST request (path-style: `/BUCKET` or `/BUCKET/KEY`), by method,
/// path and query; `None` for a request that is not S3's (the DynamoDB and Kinesis JSON
/// protocols POST to `/` with `X-Amz-Target`).
pub fn s3_operation(parts: &axum::http::request::Parts) -> Option<&'static str> {
    let path = parts.uri.path().trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    let object = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let query = parts.uri.query().unwrap_or("");
    let method = parts.method.as_str();
    Some(match (method, object) {
        ("PUT", true) => "PutObject",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("DELETE", true) => "DeleteObject",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) if query.contains("lifecycle") => "PutBucketLifecycleConfiguration",
        ("GET", false) if query.contains("lifecycle") => "GetBucketLifecycleConfiguration",
        ("PUT", false) => "CreateBucket",
        ("GET", false) => "ListObjects",
        ("DELETE", false) => "DeleteBucket",
        _ => "Other",
    })
}

async fn forward(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut builder = axum::http::Request::builder().method(parts.method).uri(uri);
    for (name, value) in parts.headers.iter() {
        // The body may have been rewritten: hyper sets the length of the body it sends.
        if name != "host" && name != "content-length" {
            builder = builder.header(name, value);
        }
    }
    let conditional = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().starts_with(b"DynamoDB_"))
        && body.windows(19).any(|w| w == b"ConditionExpression");
    let _one_at_a_time = match conditional {
        true => Some(shared.conditional_write.lock().await),
        false => None,
    };
    let upstream_request = builder.body(Full::new(body)).expect("valid request");
    match shared.client.request(upstream_request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => json_response(
            502,
            format!("{{\"message\":\"proxy could not reach the emulator: {e}\"}}"),
        ),
    }
}

fn json_response(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// Sends PutRecords without the failing entries, then answers with the upstream results and
/// a failure in each failing position.
async fn fail_entries(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: &Bytes,
    positions: &[usize],
) -> Response<Body> {
    let (entries, upstream_results) = forward_without(shared, parts, body, positions).await;
    let failed = held_back(entries.len(), positions);
    let results = answers(entries.len(), positions, upstream_results, |_| {
        serde_json::json!({
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": "Rate exceeded for shard (injected by the kinarch test fault proxy)"
        })
    });
    shared.injected.fetch_add(failed, Ordering::SeqCst);
    json_response(
        200,
        serde_json::json!({"FailedRecordCount": failed, "Records": results}).to_string(),
    )
}

/// Forwards a PutRecords without the entries at `positions`: (every entry of the request,
/// the upstream's results of the entries forwarded, in order).
async fn forward_without(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: &Bytes,
    positions: &[usize],
) -> (
    Vec<serde_json::Value>,
    std::collections::VecDeque<serde_json::Value>,
) {
    let mut request: serde_json::Value =
        serde_json::from_slice(body).expect("PutRecords body is JSON");
    let entries = request["Records"].as_array().cloned().unwrap_or_default();
    let kept: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !positions.contains(i))
        .map(|(_, e)| e.clone())
        .collect();
    if kept.is_empty() {
        return (entries, Default::default());
    }
    request["Records"] = serde_json::Value::Array(kept);
    let response = forward(shared, parts, Bytes::from(request.to_string())).await;
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer: serde_json::Value =
        serde_json::from_slice(&bytes).expect("PutRecords answer is JSON");
    let results = answer["Records"].as_array().cloned().unwrap_or_default();
    (entries, results.into())
}

/// A PutRecords answer of `entries` entries: `held_back(i)` for the entries at `positions`,
/// the upstream's results in order for the others.
fn answers(
    entries: usize,
    positions: &[usize],
    mut upstream: std::collections::VecDeque<serde_json::Value>,
    mut held_back: impl FnMut(usize) -> serde_json::Value,
) -> Vec<serde_json::Value> {
    (0..entries)
        .map(|i| match positions.contains(&i) {
            true => held_back(i),
            false => upstream
                .pop_front()
                .expect("one upstream result per kept entry"),
        })
        .collect()
}

/// How many of `positions` name one of `entries` entries.
fn held_back(entries: usize, positions: &[usize]) -> u64 {
    positions.iter().filter(|&&i| i < entries).count() as u64
}

fn count_entries(body: &Bytes) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b["Records"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Forwards a PutRecords without the entries at `positions` and answers those as stored.
async fn lose_entries(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: &Bytes,
    positions: &[usize],
) -> Response<Body> {
    assert!(
        positions.len() < count_entries(body),
        "LoseEntries keeps at least one entry of a request"
    );
    let (entries, stored) = forward_without(shared, parts, body, positions).await;
    let first = stored.front().cloned().expect("one answer per kept entry");
    let first_sequence: u128 = first["SequenceNumber"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("moto's sequence numbers are integers");
    let results = answers(entries.len(), positions, stored, |i| {
        serde_json::json!({
            "ShardId": first["ShardId"],
            "SequenceNumber": (first_sequence + 1_000_000 + i as u128).to_string(),
        })
    });
    shared
        .injected
        .fetch_add(positions.len() as u64, Ordering::SeqCst);
    json_response(
        200,
        serde_json::json!({"FailedRecordCount": 0, "Records": results}).to_string(),
    )
}

/// Forwards the first half of a BatchWriteItem's items and answers the rest as unprocessed.
async fn unprocessed(
    shared: &Shared,
    parts: axum::http::request::Parts,
    body: &Bytes,
) -> Response<Body> {
    let mut request: serde_json::Value =
        serde_json::from_slice(body).expect("BatchWriteItem body is JSON");
    let mut left = serde_json::Map::new();
    let mut held = 0u64;
    if let Some(tables) = request["RequestItems"].as_object_mut() {
        for (table, writes) in tables.iter_mut() {
            let writes = writes.as_array_mut().expect("writes are an array");
            let keep = writes.len().div_ceil(2);
            let rest: Vec<serde_json::Value> = writes.drain(keep..).collect();
            held += rest.len() as u64;
            if !rest.is_empty() {
                left.insert(table.clone(), serde_json::Value::Array(rest));
            }
        }
    }
    shared
        .injected
        .fetch_add(u64::from(held > 0), Ordering::SeqCst);
    let response = forward(shared, parts, Bytes::from(request.to_string())).await;
    if !response.status().is_success() {
        return response;
    }
    json_response(
        200,
        serde_json::json!({ "UnprocessedItems": left }).to_string(),
    )
}
