//! Metrics of each invocation as CloudWatch Embedded Metric Format (EMF): one JSON line on
//! standard output with the `_aws` envelope, which CloudWatch Logs turns into metrics. No
//! PutMetricData call: no extra permission, no extra latency, no cost per call.
//!
//! Metrics, with the dimensions `Stream` and `Mode` (and `Stream` alone, for alarms over
//! every mode): `RecordsArchived`, `RecordsFailed`, `RecordsSkippedOlder`,
//! `RecordsSkippedReplay` (replays into the source stream, see the README), `RecordsOversize`,
//! `RecordsOverflowed` (payloads stored in the overflow bucket) (Count), `BatchDurationMs` (Milliseconds) and `ArchiveLagSeconds` (Seconds: now minus the
//! oldest `approximateArrivalTimestamp` of the batch, how far behind the archive is).

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

/// The figures of one archived batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchFigures<'a> {
    pub(crate) stream: &'a str,
    pub(crate) mode: &'a str,
    pub(crate) archived: usize,
    pub(crate) failed: usize,
    pub(crate) skipped_older: usize,
    /// Records kinarch replayed into their own source stream, not archived again.
    pub(crate) skipped_replay: usize,
    pub(crate) oversize: usize,
    /// Payloads too large for an item stored in the stream's overflow bucket.
    pub(crate) overflowed: usize,
    pub(crate) duration_ms: u64,
    /// Now minus the oldest arrival time of the batch; `None` for an empty batch.
    pub(crate) lag_seconds: Option<f64>,
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

    /// Writes the EMF line of a batch on standard output, unless metrics are off.
    pub(crate) fn emit(&self, figures: &BatchFigures) {
        if let Some(namespace) = &self.namespace {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let line = emf_document(namespace, figures, now_ms).to_string();
            // println! would panic on a closed stdout; a lost metric must not fail a batch.
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// The EMF document of a batch: the metric values at the top level, and the directive that
/// names them, their units and the dimensions.
fn emf_document(namespace: &str, figures: &BatchFigures, timestamp_ms: u64) -> Value {
    let mut metrics: Vec<(&str, &str, Value)> = vec![
        ("RecordsArchived", "Count", json!(figures.archived)),
        ("RecordsFailed", "Count", json!(figures.failed)),
        ("RecordsSkippedOlder", "Count", json!(figures.skipped_older)),
        (
            "RecordsSkippedReplay",
            "Count",
            json!(figures.skipped_replay),
        ),
        ("RecordsOversize", "Count", json!(figures.oversize)),
        ("RecordsOverflowed", "Count", json!(figures.overflowed)),
        (
            "BatchDurationMs",
            "Milliseconds",
            json!(figures.duration_ms),
        ),
    ];
    if let Some(lag) = figures.lag_seconds {
        metrics.push(("ArchiveLagSeconds", "Seconds", json!(lag.max(0.0))));
    }
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
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    document.insert("Stream".into(), json!(figures.stream));
    document.insert("Mode".into(), json!(figures.mode));
    for (name, _, value) in metrics {
        document.insert(name.into(), value);
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

    fn figures() -> BatchFigures<'static> {
        BatchFigures {
            stream: "orders",
            mode: "ALL",
            archived: 7,
            failed: 1,
            skipped_older: 2,
            skipped_replay: 0,
            oversize: 0,
            overflowed: 0,
            duration_ms: 35,
            lag_seconds: Some(12.5),
        }
    }

    #[test]
    fn every_metric_named_by_the_directive_is_in_the_document() {
        let doc = emf_document("kinarch", &figures(), 1_764_000_000_000);
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
        let doc = emf_document("kinarch", &empty, 0);
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
