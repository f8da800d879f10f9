//! One debug line per AWS call attempt (`kinarch -vv`): the operation, the table or stream
//! it acts on, how long it took and the HTTP status (or the transport error). Logged by the
//! one HTTP client every SDK configuration gets ([`super::load_sdk_config`]), so no call can
//! slip past it, and retries show as calls of their own. Only names are logged, never a
//! payload: the table or stream name is read from the request's JSON, nothing else of it.

use std::fmt;
use std::time::Instant;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// An HTTP client that logs each call of the client it wraps.
#[derive(Debug, Clone)]
pub(super) struct LoggedClient(SharedHttpClient);

impl LoggedClient {
    pub(super) fn wrap(inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(Self(inner))
    }
}

impl HttpClient for LoggedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LoggedConnector(self.0.http_connector(settings, components)))
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

struct LoggedConnector(SharedHttpConnector);

impl fmt::Debug for LoggedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoggedConnector")
    }
}

impl HttpConnector for LoggedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.0.call(request);
        }
        let target = request.headers().get("x-amz-target");
        let operation = operation(target, request.method(), request.uri());
        // Only the JSON protocols (DynamoDB, Kinesis) name their resource in the body; an S3
        // body is a record's payload, never read here (its bucket and key are in the path).
        let resource = target
            .and(request.body().bytes())
            .and_then(resource_of)
            .unwrap_or_default();
        let call = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let started = Instant::now();
            let result = call.await;
            let ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(response) => tracing::debug!(
                    operation = %operation,
                    resource = %resource,
                    ms,
                    status = response.status().as_u16(),
                    "AWS call"
                ),
                Err(error) => tracing::debug!(
                    operation = %operation,
                    resource = %resource,
                    ms,
                    error = %error,
                    "AWS call failed"
                ),
            }
            result
        })
    }
}

/// `DynamoDB.PutItem` from `X-Amz-Target: DynamoDB_20120810.PutItem`; for calls without
/// one (credential and metadata endpoints), the method and path.
fn operation(target: Option<&str>, method: &str, uri: &str) -> String {
    match target.and_then(|t| t.split_once('.')) {
        Some((service, name)) => {
            let service = service.split('_').next().unwrap_or(service);
            format!("{service}.{name}")
        }
        None => {
            let path = uri.split("://").nth(1).unwrap_or(uri);
            let path = path.split('?').next().unwrap_or(path);
            format!("{method} {path}")
        }
    }
}

/// The table or stream a JSON request names (`TableName`, `StreamName`, `StreamARN`).
fn resource_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Names {
        table_name: Option<String>,
        stream_name: Option<String>,
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
    }
    let names: Names = serde_json::from_slice(body).ok()?;
    match (names.table_name, names.stream_name, names.stream_arn) {
        (Some(table), _, _) => Some(format!("table {table}")),
        (None, Some(stream), _) => Some(format!("stream {stream}")),
        (None, None, Some(arn)) => Some(format!("stream {arn}")),
        (None, None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_resources_are_named() {
        assert_eq!(
            operation(Some("DynamoDB_20120810.PutItem"), "POST", "https://x/"),
            "DynamoDB.PutItem"
        );
        assert_eq!(
            operation(Some("Kinesis_20131202.PutRecords"), "POST", "https://x/"),
            "Kinesis.PutRecords"
        );
        assert_eq!(
            operation(None, "GET", "http://169.254.169.254/latest/api/token?x=1"),
            "GET 169.254.169.254/latest/api/token"
        );
        assert_eq!(
            resource_of(br#"{"TableName":"t","Item":{"recordData":{"S":"secret"}}}"#).as_deref(),
            Some("table t")
        );
        assert_eq!(
            resource_of(br#"{"StreamName":"s","Records":[]}"#).as_deref(),
            Some("stream s")
        );
        assert_eq!(resource_of(b"not json"), None);
    }
}
