//! Metrics as CloudWatch Embedded Metric Format (EMF): one JSON line on standard output
//! with the `_aws` envelope, which CloudWatch Logs turns into metrics. No PutMetricData
//! call: no extra permission, no extra latency, no cost per call. Which metrics each
//! invocation has: [`crate::events::BatchArchived`].

use std::time::{SystemTime, UNIX_EPOCH};

use kinarch_core::Error;
use serde_json::{Map, Value, json};

/// `KINARCH_METRICS`: `on` (default) or `off`.
const ENV_METRICS: &str = "KINARCH_METRICS";
/// `KINARCH_METRICS_NAMESPACE`: the CloudWatch namespace, `kinarch` by default.
const ENV_NAMESPACE: &str = "KINARCH_METRICS_NAMESPACE";
const DEFAULT_NAMESPACE: &str = "kinarch";

/// Where metrics go: a namespace, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metrics {
    namespace: Option<String>,
}

/// One metric of an EMF line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    name: &'static str,
    unit: &'static str,
    value: Value,
}

impl Metric {
    pub(crate) fn new(name: &'static str, unit: &'static str, value: Value) -> Self {
        Self { name, unit, value }
    }
}

impl Metrics {
    /// Reads `KINARCH_METRICS` and `KINARCH_METRICS_NAMESPACE`; an invalid value is an error
    /// naming the variable.
    pub(crate) fn from_env() -> Result<Self, Error> {
        Self::from_values(
            std::env::var(ENV_METRICS).ok().as_deref(),
            std::env::var(ENV_NAMESPACE).ok().as_deref(),
        )
    }

    fn from_values(switch: Option<&str>, namespace: Option<&str>) -> Result<Self, Error> {
        let on = match switch.map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(Error::InvalidInput(format!(
                    "environment variable {ENV_METRICS}={other:?} is neither on nor off"
                )));
            }
        };
        let namespace = namespace.map(str::trim).unwrap_or(DEFAULT_NAMESPACE);
        // CloudWatch: 1 to 255 characters, and names starting with "AWS/" are AWS's own.
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(Error::InvalidInput(format!(
                "environment variable {ENV_NAMESPACE}={namespace:?} is not a CloudWatch \
                 namespace you may use (1 to 255 characters, not starting with AWS/)"
            )));
        }
        Ok(Self {
            namespace: on.then(|| namespace.to_owned()),
        })
    }

    /// Writes the EMF line of `metrics` of a stream and mode on standard output, unless
    /// metrics are off.
    pub(crate) fn emit(&self, stream: &str, mode: &str, metrics: &[Metric]) {
        if let Some(namespace) = &self.namespace {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let line = emf_document(namespace, stream, mode, metrics, now_ms).to_string();
            // println! would panic on a closed stdout; a lost metric must not fail a batch.
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// The EMF document of `metrics`: their values at the top level, and the directive that
/// names them, their units and the dimensions.
fn emf_document(
    namespace: &str,
    stream: &str,
    mode: &str,
    metrics: &[Metric],
    timestamp_ms: u64,
) -> Value {
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Stream", "Mode"], ["Stream"]],
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({"Name": m.name, "Unit": m.unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    document.insert("Stream".into(), json!(stream));
    document.insert("Mode".into(), json!(mode));
    for metric in metrics {
        document.insert(metric.name.into(), metric.value.clone());
    }
    Value::Object(document)
}

/// Now minus the oldest arrival time (epoch seconds), in seconds.
pub(crate) fn lag_seconds(oldest_arrival: Option<f64>) -> Option<f64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    oldest_arrival.map(|oldest| now - oldest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::BatchArchived;
    use kinarch_core::write::WriteCounts;

    fn figures() -> BatchArchived<'static> {
        BatchArchived {
            stream: "orders",
            shard: "shardId-000000000000",
            mode: "ALL",
            table: "orders-archive-ALL",
            records: 10,
            counts: WriteCounts {
                written: 7,
                failed: 1,
                skipped_older: 2,
                ..WriteCounts::default()
            },
            duration_ms: 35,
            lag_seconds: Some(12.5),
        }
    }

    fn document(figures: &BatchArchived, timestamp_ms: u64) -> Value {
        emf_document(
            "kinarch",
            figures.stream,
            figures.mode,
            &figures.metrics(),
            timestamp_ms,
        )
    }

    #[test]
    fn every_metric_named_by_the_directive_is_in_the_document() {
        let doc = document(&figures(), 1_764_000_000_000);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "kinarch");
        assert_eq!(doc["_aws"]["Timestamp"], 1_764_000_000_000u64);
        for dimensions in directive["Dimensions"].as_array().unwrap() {
            for dimension in dimensions.as_array().unwrap() {
                assert!(doc[dimension.as_str().unwrap()].is_string(), "{dimension}");
            }
        }
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &names {
            assert!(doc[*name].is_number(), "{name}");
        }
        assert_eq!(doc["RecordsArchived"], 7);
        assert_eq!(doc["ArchiveLagSeconds"], 12.5);
    }

    #[test]
    fn an_empty_batch_has_no_lag() {
        let mut empty = figures();
        empty.lag_seconds = None;
        let doc = document(&empty, 0);
        assert!(doc.get("ArchiveLagSeconds").is_none());
    }

    #[test]
    fn the_switch_and_namespace_are_checked() {
        assert_eq!(
            Metrics::from_values(None, None)
                .unwrap()
                .namespace
                .as_deref(),
            Some("kinarch")
        );
        assert_eq!(
            Metrics::from_values(Some("off"), None).unwrap().namespace,
            None
        );
        assert_eq!(
            Metrics::from_values(Some("on"), Some("team/archives"))
                .unwrap()
                .namespace
                .as_deref(),
            Some("team/archives")
        );
        for (switch, namespace) in [
            (Some("yes"), None),
            (None, Some("")),
            (None, Some("AWS/Lambda")),
        ] {
            let err = Metrics::from_values(switch, namespace)
                .unwrap_err()
                .to_string();
            assert!(err.contains("KINARCH_METRICS"), "{err}");
        }
    }
}
