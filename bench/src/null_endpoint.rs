//! The "null endpoint": a loopback HTTP server that answers the DynamoDB and Kinesis calls
//! kinarch makes with valid canned successes at once, and counts requests per operation.
//!
//! It lets a benchmark measure kinarch's own cost (requests, CPU, memory) without an
//! emulator's. Operations are told apart by the `X-Amz-Target` header, as AWS does:
//!
//! | operation | answer |
//! |---|---|
//! | DynamoDB BatchWriteItem | `{"UnprocessedItems":{}}` (every item landed) |
//! | DynamoDB PutItem | `{}` (the condition held) |
//! | DynamoDB Scan, Query | pages of the [`Dataset`]'s items, ~1 MB each as DynamoDB pages |
//! | DynamoDB GetItem, DescribeTable, DescribeTimeToLive | a valid empty/ACTIVE/ENABLED answer |
//! | DynamoDB ListTagsOfResource | no tags (a table not tiered into Parquet) |
//! | Kinesis ListTagsForStream | `StreamArchiveMode` = `LATEST` for streams whose name ends in `-latest`, `NONE` and `ArchiveParquet` = `s3://bench-parquet/kinarch` for `-parquet`, else `ALL` |
//! | S3 PutObject (a `PUT` without `X-Amz-Target`) | `200`; its entries count the object's bytes |
//! | Kinesis PutRecords, PutRecord | every record stored, increasing sequence numbers |
//! | Kinesis DescribeStreamSummary | an ACTIVE stream of one shard |
//! | Lambda Invoke (`POST /2015-03-31/functions/NAME/invocations`) | `{"batchItemFailures":[]}` (the function took every record); its entries count the event's records |
//! | Lambda GetFunctionConfiguration (`GET /2015-03-31/functions/NAME/configuration`) | the function's name, ARN and role |
//!
//! Anything else is answered `400 UnknownOperationException` and counted, so a scenario
//! that makes an unexpected call shows it in its counts.
//!
//! In forwarding mode ([`NullEndpoint::forward`]) the server passes every request on to an
//! upstream (moto) and only counts: the same request figures for the end-to-end runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::data;

/// The operation name S3 PutObject requests are counted under (entries: bytes).
pub const S3_PUT_OBJECT: &str = "S3.PutObject";

/// The operation name Lambda Invoke requests are counted under (entries: the event's records).
pub const LAMBDA_INVOKE: &str = "Lambda.Invoke";

/// DynamoDB stops a Scan or Query page at 1 MB of items.
const PAGE_BYTES: usize = 1024 * 1024;

/// The items Scan and Query serve: record `i` for `i` in `0..items`, over `keys` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    /// Number of items in the (every) table.
    pub items: usize,
    /// Distinct partition keys.
    pub keys: usize,
    /// Payload bytes per record.
    pub payload_bytes: usize,
}

impl Default for Dataset {
    fn default() -> Self {
        Self {
            items: 0,
            keys: 1,
            payload_bytes: data::PAYLOAD_BYTES,
        }
    }
}

/// Requests of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Requests received.
    pub requests: u64,
    /// Entries carried: items written (BatchWriteItem), records put (PutRecords), items
    /// returned (Scan, Query); 0 for other operations.
    pub entries: u64,
    /// The most entries in one request.
    pub max_entries: u64,
}

/// Rendered items of the current dataset.
struct Items {
    dataset: Dataset,
    json: Vec<String>,
}

struct Shared {
    items: Mutex<Arc<Items>>,
    counts: Mutex<BTreeMap<String, OpCount>>,
    next_sequence: AtomicU64,
    upstream: Option<(String, Client<HttpConnector, Full<Bytes>>)>,
}

/// A running null endpoint (or counting forwarder). Stops with the runtime it runs on.
#[derive(Clone)]
pub struct NullEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl NullEndpoint {
    /// Starts a null endpoint on a free loopback port, on the runtime `runtime`.
    pub async fn start(runtime: &Handle) -> NullEndpoint {
        Self::start_with(runtime, None).await
    }

    /// Starts a counting forwarder to `upstream` (e.g. `http://127.0.0.1:PORT` of moto).
    pub async fn forward(runtime: &Handle, upstream: &str) -> NullEndpoint {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self::start_with(
            runtime,
            Some((upstream.trim_end_matches('/').to_owned(), client)),
        )
        .await
    }

    async fn start_with(
        runtime: &Handle,
        upstream: Option<(String, Client<HttpConnector, Full<Bytes>>)>,
    ) -> NullEndpoint {
        let shared = Arc::new(Shared {
            items: Mutex::new(Arc::new(Items {
                dataset: Dataset::default(),
                json: Vec::new(),
            })),
            counts: Mutex::new(BTreeMap::new()),
            next_sequence: AtomicU64::new(1),
            upstream,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = runtime
            .spawn(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("task runs")
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        runtime.spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        NullEndpoint { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `dataset` from now on (renders its items once, up front).
    pub fn set_dataset(&self, dataset: Dataset) {
        let json = (0..dataset.items)
            .map(|i| data::item_json(i, dataset.keys, dataset.payload_bytes))
            .collect();
        *self.shared.items.lock().unwrap() = Arc::new(Items { dataset, json });
    }

    /// Requests per operation (`DynamoDB.BatchWriteItem`, `Kinesis.PutRecords`, ...) since
    /// the last reset.
    pub fn counts(&self) -> BTreeMap<String, OpCount> {
        self.shared.counts.lock().unwrap().clone()
    }

    /// Requests of one operation since the last reset.
    pub fn count(&self, operation: &str) -> OpCount {
        self.counts().get(operation).copied().unwrap_or_default()
    }

    /// Forgets the counts.
    pub fn reset_counts(&self) {
        self.shared.counts.lock().unwrap().clear();
    }
}

/// `DynamoDB_20120810.BatchWriteItem` -> `DynamoDB.BatchWriteItem`.
fn operation(headers: &HeaderMap) -> String {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match target.split_once('.') {
        Some((service, op)) => {
            let service = service.split('_').next().unwrap_or(service);
            format!("{service}.{op}")
        }
        None => format!("(no X-Amz-Target) {target}"),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let s3_put = request.method() == axum::http::Method::PUT
        && !request.headers().contains_key("x-amz-target");
    let (parts, body) = request.into_parts();
    let lambda = lambda_operation(&parts.method, parts.uri.path());
    let op = if let Some((op, _)) = &lambda {
        (*op).to_owned()
    } else if s3_put {
        S3_PUT_OBJECT.to_owned()
    } else if !parts.headers.contains_key("x-amz-target") {
        // Path-style S3 (`/BUCKET` or `/BUCKET/KEY`), named as the tests' proxy names it.
        let op = kinarch_tests::proxy::s3_operation(&parts).unwrap_or("Other");
        format!("S3.{op}")
    } else {
        operation(&parts.headers)
    };
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return json_response(StatusCode::BAD_REQUEST, "", "{}".into());
    };
    if let Some((upstream, client)) = &shared.upstream {
        count(&shared, &op, request_entries(&op, &body));
        return forward(upstream, client, parts, body).await;
    }
    if let Some((op, function)) = lambda {
        let (entries, answer) = lambda_answer(op, &function, &body);
        count(&shared, op, entries);
        return json_response(StatusCode::OK, "application/json", answer);
    }
    if s3_put {
        count(&shared, &op, body.len() as u64);
        let mut response = json_response(StatusCode::OK, "", String::new());
        response.headers_mut().insert(
            "etag",
            HeaderValue::from_static("\"00000000000000000000000000000000\""),
        );
        return response;
    }
    let (status, answer, entries) = answer(&shared, &op, &body);
    count(&shared, &op, entries);
    let content_type = if op.starts_with("Kinesis.") {
        "application/x-amz-json-1.1"
    } else {
        "application/x-amz-json-1.0"
    };
    json_response(status, content_type, answer)
}

fn count(shared: &Shared, op: &str, entries: u64) {
    let mut counts = shared.counts.lock().unwrap();
    let c = counts.entry(op.to_owned()).or_default();
    c.requests += 1;
    c.entries += entries;
    c.max_entries = c.max_entries.max(entries);
}

fn json_response(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if !content_type.is_empty() {
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_str(content_type).unwrap());
    }
    response.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_static("00000000-0000-0000-0000-000000000000"),
    );
    response
}

/// A Lambda call's operation and function name, from its method and path (Lambda's REST API
/// names the operation by its path, not by `X-Amz-Target`).
fn lambda_operation(method: &axum::http::Method, path: &str) -> Option<(&'static str, String)> {
    let rest = path.strip_prefix("/2015-03-31/functions/")?;
    let (function, action) = rest.rsplit_once('/')?;
    let op = match (method.as_str(), action) {
        ("POST", "invocations") => LAMBDA_INVOKE,
        ("GET", "configuration") => "Lambda.GetFunctionConfiguration",
        _ => return None,
    };
    Some((op, function.replace("%3A", ":").replace("%3a", ":")))
}

/// An event's records (`Records`), as Lambda's Kinesis event source mapping sends them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KinesisEvent {
    records: Vec<IgnoredAny>,
}

/// The canned answer to a Lambda call: entries carried and body.
fn lambda_answer(op: &str, function: &str, body: &[u8]) -> (u64, String) {
    if op == LAMBDA_INVOKE {
        let records = serde_json::from_slice::<KinesisEvent>(body)
            .map(|e| e.records.len() as u64)
            .unwrap_or(0);
        return (records, r#"{"batchItemFailures":[]}"#.to_owned());
    }
    let arn = match function.starts_with("arn:") {
        true => function.to_owned(),
        false => format!(
            "arn:aws:lambda:{}:123456789012:function:{function}",
            crate::REGION
        ),
    };
    let answer = json!({
        "FunctionName": arn.rsplit(':').next().unwrap_or(function),
        "FunctionArn": arn,
        "Role": "arn:aws:iam::123456789012:role/bench-consumer",
        "State": "Active",
    });
    (0, answer.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWriteItemInput {
    request_items: BTreeMap<String, Vec<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsInput {
    records: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReadInput {
    table_name: Option<String>,
    stream_name: Option<String>,
    limit: Option<usize>,
    exclusive_start_key: Option<Value>,
    segment: Option<usize>,
    total_segments: Option<usize>,
    expression_attribute_values: Option<Value>,
}

/// Entries a request carries (items to write, records to put).
fn request_entries(op: &str, body: &[u8]) -> u64 {
    match op {
        "DynamoDB.BatchWriteItem" => serde_json::from_slice::<BatchWriteItemInput>(body)
            .map(|b| b.request_items.values().map(Vec::len).sum::<usize>() as u64)
            .unwrap_or(0),
        "Kinesis.PutRecords" => serde_json::from_slice::<PutRecordsInput>(body)
            .map(|p| p.records.len() as u64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// The canned answer to `op`: status, body, entries carried.
fn answer(shared: &Shared, op: &str, body: &[u8]) -> (StatusCode, String, u64) {
    let input: ReadInput = serde_json::from_slice(body).unwrap_or_default();
    let ok = |v: Value| (StatusCode::OK, v.to_string(), 0);
    match op {
        "DynamoDB.BatchWriteItem" => (
            StatusCode::OK,
            r#"{"UnprocessedItems":{}}"#.into(),
            request_entries(op, body),
        ),
        "DynamoDB.PutItem" => (StatusCode::OK, "{}".into(), 1),
        "DynamoDB.GetItem" => ok(json!({})),
        "DynamoDB.Scan" | "DynamoDB.Query" => {
            let items = shared.items.lock().unwrap().clone();
            let (page, served) = read_page(&items, op == "DynamoDB.Query", &input);
            (StatusCode::OK, page, served)
        }
        "DynamoDB.DescribeTable" => {
            let items = shared.items.lock().unwrap().clone();
            ok(describe_table(
                input.table_name.as_deref().unwrap_or("table"),
                items.dataset.items,
            ))
        }
        // An untiered table: no tags (the tier marker `tieredBefore` is a table tag).
        "DynamoDB.ListTagsOfResource" => ok(json!({ "Tags": [] })),
        "DynamoDB.DescribeTimeToLive" => ok(json!({
            "TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expireAfter"}
        })),
        "Kinesis.ListTagsForStream" => {
            let stream = input.stream_name.unwrap_or_default();
            let tags = if stream.ends_with("-latest") {
                json!([{"Key": "StreamArchiveMode", "Value": "LATEST"}])
            } else if stream.ends_with("-parquet") {
                json!([
                    {"Key": "StreamArchiveMode", "Value": "NONE"},
                    {"Key": "ArchiveParquet", "Value": "s3://bench-parquet/kinarch"}
                ])
            } else {
                json!([{"Key": "StreamArchiveMode", "Value": "ALL"}])
            };
            ok(json!({ "Tags": tags, "HasMoreTags": false }))
        }
        "Kinesis.PutRecords" => {
            let n = request_entries(op, body);
            let first = shared.next_sequence.fetch_add(n, Ordering::Relaxed);
            let records: Vec<Value> = (0..n)
                .map(|k| {
                    json!({
                        "SequenceNumber": data::sequence_number((first + k) as usize),
                        "ShardId": data::SHARD_ID
                    })
                })
                .collect();
            (
                StatusCode::OK,
                json!({"FailedRecordCount": 0, "Records": records, "EncryptionType": "NONE"})
                    .to_string(),
                n,
            )
        }
        "Kinesis.PutRecord" => {
            let seq = shared.next_sequence.fetch_add(1, Ordering::Relaxed);
            ok(json!({
                "SequenceNumber": data::sequence_number(seq as usize),
                "ShardId": data::SHARD_ID
            }))
        }
        "Kinesis.DescribeStreamSummary" => {
            let stream = input.stream_name.unwrap_or_default();
            ok(json!({"StreamDescriptionSummary": {
                "StreamName": stream,
                "StreamARN": data::stream_arn(&stream),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1.7e9,
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
                "OpenShardCount": 1
            }}))
        }
        _ => (
            StatusCode::BAD_REQUEST,
            json!({
                "__type": "com.amazon.coral.service#UnknownOperationException",
                "message": format!("the null endpoint does not answer {op}")
            })
            .to_string(),
            0,
        ),
    }
}

fn describe_table(name: &str, items: usize) -> Value {
    json!({"Table": {
        "TableName": name,
        "TableStatus": "ACTIVE",
        "TableArn": format!("arn:aws:dynamodb:{}:123456789012:table/{name}", crate::REGION),
        "KeySchema": [
            {"AttributeName": "partitionKey", "KeyType": "HASH"},
            {"AttributeName": "sequenceNumber", "KeyType": "RANGE"}
        ],
        "AttributeDefinitions": [
            {"AttributeName": "partitionKey", "AttributeType": "S"},
            {"AttributeName": "sequenceNumber", "AttributeType": "S"}
        ],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "CreationDateTime": 1.7e9,
        "ItemCount": items,
        "TableSizeBytes": items * 300
    }})
}

/// One Scan or Query page: the items after `ExclusiveStartKey` in this segment (Scan) or of
/// this key (Query), up to `Limit` items or 1 MB, with `LastEvaluatedKey` when more follow.
fn read_page(items: &Items, query: bool, input: &ReadInput) -> (String, u64) {
    let dataset = items.dataset;
    let keys = dataset.keys.max(1);
    let start = input
        .exclusive_start_key
        .as_ref()
        .and_then(|k| k["sequenceNumber"]["S"].as_str())
        .and_then(data::index_of_sequence)
        .map_or(0, |i| i + 1);
    let wanted: Box<dyn Fn(usize) -> bool> = if query {
        let key = input
            .expression_attribute_values
            .as_ref()
            .and_then(|v| v[":pk"]["S"].as_str())
            .and_then(data::key_number);
        Box::new(move |i| Some(i % keys) == key)
    } else {
        let (segment, total) = (
            input.segment.unwrap_or(0),
            input.total_segments.unwrap_or(1),
        );
        Box::new(move |i| i % total.max(1) == segment)
    };
    let limit = input.limit.unwrap_or(usize::MAX).max(1);
    let mut body = String::with_capacity(PAGE_BYTES + 4096);
    body.push_str(r#"{"Items":["#);
    let (mut served, mut bytes, mut last) = (0usize, 0usize, None);
    let mut more = false;
    for i in (start..dataset.items).filter(|&i| wanted(i)) {
        if served == limit || bytes >= PAGE_BYTES {
            more = true;
            break;
        }
        if served > 0 {
            body.push(',');
        }
        body.push_str(&items.json[i]);
        bytes += items.json[i].len();
        served += 1;
        last = Some(i);
    }
    body.push_str(&format!(r#"],"Count":{served},"ScannedCount":{served}"#));
    if let (true, Some(last)) = (more, last) {
        body.push_str(r#","LastEvaluatedKey":"#);
        body.push_str(&data::item_key_json(last, keys));
    }
    body.push('}');
    (body, served as u64)
}

async fn forward(
    upstream: &str,
    client: &Client<HttpConnector, Full<Bytes>>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = axum::http::Request::builder()
        .method(parts.method)
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let request = request.body(Full::new(body)).expect("a valid request");
    match client.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(parts, Body::from(body))
        }
        Err(err) => json_response(
            StatusCode::BAD_GATEWAY,
            "",
            json!({"message": format!("upstream: {err}")}).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize, keys: usize) -> Items {
        let dataset = Dataset {
            items: n,
            keys,
            payload_bytes: 10,
        };
        Items {
            dataset,
            json: (0..n).map(|i| data::item_json(i, keys, 10)).collect(),
        }
    }

    fn page(items: &Items, query: bool, input: Value) -> Value {
        let input: ReadInput = serde_json::from_value(input).unwrap();
        serde_json::from_str(&read_page(items, query, &input).0).unwrap()
    }

    #[test]
    fn scan_pages_by_limit_and_resumes_after_the_last_key() {
        let items = items(5, 2);
        let first = page(&items, false, json!({"Limit": 3}));
        assert_eq!(first["Count"], 3);
        let next = page(
            &items,
            false,
            json!({"Limit": 3, "ExclusiveStartKey": first["LastEvaluatedKey"]}),
        );
        assert_eq!(next["Count"], 2);
        assert!(next.get("LastEvaluatedKey").is_none());
    }

    #[test]
    fn segments_and_queries_split_the_items() {
        let items = items(10, 3);
        let seg = page(&items, false, json!({"Segment": 1, "TotalSegments": 2}));
        assert_eq!(seg["Count"], 5);
        let q = page(
            &items,
            true,
            json!({"ExpressionAttributeValues": {":pk": {"S": "key-1"}}}),
        );
        assert_eq!(q["Count"], 3); // 1, 4, 7
    }

    #[test]
    fn lambda_calls_are_told_by_their_path_and_answered() {
        let post = axum::http::Method::POST;
        let get = axum::http::Method::GET;
        let (op, function) =
            lambda_operation(&post, "/2015-03-31/functions/consumer/invocations").unwrap();
        assert_eq!((op, function.as_str()), (LAMBDA_INVOKE, "consumer"));
        let event = json!({"Records": [{"kinesis": {}}, {"kinesis": {}}]}).to_string();
        let (records, answer) = lambda_answer(op, &function, event.as_bytes());
        assert_eq!(records, 2);
        assert_eq!(answer, r#"{"batchItemFailures":[]}"#);

        let path =
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/configuration";
        let (op, function) = lambda_operation(&get, path).unwrap();
        let (_, answer) = lambda_answer(op, &function, b"");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            answer["FunctionArn"],
            "arn:aws:lambda:us-east-1:1:function:f"
        );
        assert_eq!(answer["FunctionName"], "f");
        assert!(lambda_operation(&get, "/2015-03-31/functions/f/invocations").is_none());
        assert!(lambda_operation(&post, "/bucket/key").is_none());
    }
}
