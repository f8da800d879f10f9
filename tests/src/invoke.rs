//! A Lambda Invoke endpoint on loopback (moto's Lambda runs functions in Docker only): `POST
//! /2015-03-31/functions/NAME/invocations` hands each event to a consumer and answers as
//! Lambda does (a function error with `X-Amz-Function-Error: Unhandled`), and `GET
//! /2015-03-31/functions/NAME/configuration` describes the function. The consumer is a real
//! binary behind the Runtime API ([`LambdaFunction`]) or a scripted answer. The first
//! `throttle_first` invocations are answered `429 TooManyRequestsException`. Point the
//! kinarch CLI at it with `AWS_ENDPOINT_URL_LAMBDA` ([`InvokeEndpoint::env`]).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::lambda::{Invocation, LambdaFunction};

/// A scripted consumer: the event in, its answer out.
pub type Script = Box<dyn Fn(&Value) -> Invocation + Send + Sync>;

/// Who answers the invocations.
pub enum Consumer {
    /// A real binary behind the Runtime API.
    Binary(LambdaFunction),
    /// A scripted answer.
    Script(Script),
}

struct Endpoint {
    consumer: tokio::sync::Mutex<Consumer>,
    throttle_first: AtomicU32,
    throttled: AtomicU32,
    events: Mutex<Vec<Value>>,
}

/// The endpoint, serving until dropped.
pub struct InvokeEndpoint {
    endpoint: String,
    state: Arc<Endpoint>,
    server: tokio::task::JoinHandle<()>,
}

impl InvokeEndpoint {
    /// Serves `consumer`, throttling the first `throttle_first` invocations.
    pub async fn start(consumer: Consumer, throttle_first: u32) -> InvokeEndpoint {
        let state = Arc::new(Endpoint {
            consumer: tokio::sync::Mutex::new(consumer),
            throttle_first: AtomicU32::new(throttle_first),
            throttled: AtomicU32::new(0),
            events: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invocation))
            .route(
                "/2015-03-31/functions/{name}/configuration",
                get(configuration),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        InvokeEndpoint {
            endpoint,
            state,
            server,
        }
    }

    /// `AWS_ENDPOINT_URL_LAMBDA` for the CLI.
    pub fn env(&self) -> (String, String) {
        ("AWS_ENDPOINT_URL_LAMBDA".into(), self.endpoint.clone())
    }

    /// Every event the consumer got, in order (throttled ones excluded).
    pub fn events(&self) -> Vec<Value> {
        self.state.events.lock().unwrap().clone()
    }

    /// Invocations answered 429.
    pub fn throttled(&self) -> u32 {
        self.state.throttled.load(Ordering::SeqCst)
    }
}

impl Drop for InvokeEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn configuration(UrlPath(name): UrlPath<String>) -> Response {
    let arn = match name.starts_with("arn:") {
        true => name.clone(),
        false => format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
    };
    axum::Json(json!({
        "FunctionName": name,
        "FunctionArn": arn,
        "Role": "arn:aws:iam::123456789012:role/replay-consumer",
    }))
    .into_response()
}

async fn invocation(
    State(state): State<Arc<Endpoint>>,
    UrlPath(_name): UrlPath<String>,
    body: Bytes,
) -> Response {
    if state
        .throttle_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        state.throttled.fetch_add(1, Ordering::SeqCst);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("TooManyRequestsException"),
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            axum::Json(json!({
                "Type": "User",
                "message": "Rate Exceeded.",
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            })),
        )
            .into_response();
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.events.lock().unwrap().push(event.clone());
    let answer = match &mut *state.consumer.lock().await {
        Consumer::Binary(function) => match function.try_invoke_shared(body).await {
            Ok(answer) => answer,
            Err(lost) => Invocation::Error(json!({"errorType": "Lost", "errorMessage": lost})),
        },
        Consumer::Script(script) => script(&event),
    };
    match answer {
        Invocation::Response(value) => axum::Json(value).into_response(),
        Invocation::Error(error) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            (StatusCode::OK, headers, axum::Json(error)).into_response()
        }
    }
}
